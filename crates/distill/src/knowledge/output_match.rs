//! Output matching: L1, L2 or smooth-L1 distance between a student output and the teacher's
//! (logit regression in the manner of Ba & Caruana, 2014, or regression-output distillation).

use burn::nn::loss::{MseLoss, Reduction, SmoothL1LossConfig};
use burn::prelude::*;
use serde::{Deserialize, Serialize};

use super::method::{Built, MethodInfo};
use super::role::RoleRef;
use super::term::{BuildContext, KnowledgeTerm, Pair, Side, StepContext};
use super::Aux;
use crate::error::Result;

/// Catalogue entry.
pub const INFO: MethodInfo = MethodInfo {
    name: "output-match",
    family: "response",
    description: "L1 / L2 / smooth-L1 between student and teacher outputs of the same shape (logit or regression matching)",
    citation: "Ba & Caruana, Do Deep Nets Really Need to be Deep?, NeurIPS 2014",
    taps: "student_tap, teacher_tap of equal shape (default logits)",
};

/// Distance used by [`OutputMatchConfig`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Distance {
    /// Mean absolute error.
    L1,
    /// Mean squared error.
    L2,
    /// Smooth-L1 with β = 1 (Huber with δ = 1), mean.
    SmoothL1,
}

/// `method = "output-match"`.
///
/// # Formula
/// `mean over all elements of d(s, t)` with `d` = `|s − t|`, `(s − t)²` or smooth-L1 (β = 1).
///
/// # Conventions
/// PyTorch's `l1_loss`, `mse_loss` and `smooth_l1_loss(beta=1)` with mean reduction; the teacher
/// output is a constant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputMatchConfig {
    /// Weight in the objective (default 1).
    #[serde(default = "super::defaults::one")]
    pub weight: f64,
    /// `l1`, `l2` (default) or `smooth-l1`.
    #[serde(default = "l2")]
    pub distance: Distance,
    /// Student tap (default logits).
    #[serde(default = "logits")]
    pub student_tap: String,
    /// Teacher tap (default logits).
    #[serde(default = "logits")]
    pub teacher_tap: String,
    /// The trainable role the term trains (default: the recipe's `student`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub student: Option<RoleRef>,
    /// The role it learns from (default: the only `[[teacher]]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub teacher: Option<RoleRef>,
}

fn l2() -> Distance {
    Distance::L2
}
fn logits() -> String {
    "logits".into()
}

/// The distance between two flattened outputs (see [`OutputMatchConfig`]).
pub fn output_match_loss(student: Tensor<2>, teacher: Tensor<2>, distance: Distance) -> Tensor<1> {
    match distance {
        Distance::L1 => (student - teacher).abs().mean(),
        Distance::L2 => MseLoss::new().forward(student, teacher, Reduction::Mean),
        Distance::SmoothL1 => SmoothL1LossConfig::new().init().forward_with_reduction(
            student,
            teacher,
            Reduction::Mean,
        ),
    }
}

impl OutputMatchConfig {
    pub(crate) fn build(&self, ctx: &BuildContext<'_>, _aux: &mut Vec<Aux>) -> Result<Built> {
        let student = ctx.student(&self.student)?;
        let teacher = ctx.teacher(&self.teacher)?;
        ctx.same_shape(
            "output-match",
            (Side::Student(student), &self.student_tap),
            (Side::Teacher(teacher), &self.teacher_tap),
            "; use `fitnet` (with a trained connector) for outputs of different shapes",
        )?;
        Ok(Built::new(
            self.weight,
            OutputMatch(self.clone(), Pair { student, teacher }),
        ))
    }
}

struct OutputMatch(OutputMatchConfig, Pair);

impl KnowledgeTerm for OutputMatch {
    fn forward(&self, _aux: &[Aux], ctx: &StepContext<'_>) -> Vec<(String, Tensor<1>)> {
        let c = &self.0;
        let s = ctx.student(self.1.student, &c.student_tap).flat();
        let t = ctx.teacher(self.1.teacher, &c.teacher_tap).flat();
        vec![("output-match".into(), output_match_loss(s, t, c.distance))]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::knowledge::testing::{fixture, grad_of, tensor2};

    #[test]
    fn values_and_gradients_match_pytorch() {
        let dev = Device::flex().autodiff();
        for (name, d) in [
            ("output_l1", Distance::L1),
            ("output_l2", Distance::L2),
            ("output_smooth_l1", Distance::SmoothL1),
        ] {
            for case in fixture(name).cases() {
                let s = tensor2(case.input("student"), &dev).require_grad();
                let loss = output_match_loss(s.clone(), tensor2(case.input("teacher"), &dev), d);
                case.assert_value(loss.clone());
                case.assert_grad("student", grad_of(&loss, &s));
            }
        }
    }
}
