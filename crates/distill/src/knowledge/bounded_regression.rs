//! Teacher-bounded regression: penalise the student's regression error only where it is not
//! already better than the teacher's by a margin.

use burn::prelude::*;
use serde::{Deserialize, Serialize};

use super::method::{Built, MethodInfo};
use super::role::RoleRef;
use super::term::{BuildContext, KnowledgeTerm, Pair, Side, StepContext};
use super::Aux;
use crate::error::{DistillError, Result};
use crate::tasks::Task;

/// Catalogue entry.
pub const INFO: MethodInfo = MethodInfo {
    name: "bounded-regression",
    family: "regression",
    description: "teacher-bounded L2: the student's squared error counts only where it is not below the teacher's by the margin",
    citation: "Chen et al., Learning Efficient Object Detection Models with KD, NeurIPS 2017",
    taps: "student and teacher outputs (logits), the real targets",
};

/// `method = "bounded-regression"`: the teacher's error as an upper bound (see
/// [`bounded_regression_loss`]). Errors are measured on the standardised targets, so `margin`
/// is in squared standard deviations. Chen et al. add it with weight ν = 0.5 to the supervised
/// loss (`mse` here).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BoundedRegressionConfig {
    /// Weight in the objective (default 0.5, the paper's ν).
    #[serde(default = "default_weight")]
    pub weight: f64,
    /// Margin m ≥ 0 (default 0).
    #[serde(default)]
    pub margin: f64,
    /// The trainable role the term trains (default: the recipe's `student`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub student: Option<RoleRef>,
    /// The role it learns from (default: the only `[[teacher]]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub teacher: Option<RoleRef>,
}

fn default_weight() -> f64 {
    0.5
}

impl BoundedRegressionConfig {
    pub(crate) fn build(&self, ctx: &BuildContext<'_>, _aux: &mut Vec<Aux>) -> Result<Built> {
        ctx.require_task(Task::Regression, "bounded-regression")?;
        if !(self.margin.is_finite() && self.margin >= 0.0) {
            return Err(DistillError::Config(format!(
                "bounded-regression.margin must be ≥ 0, got {}",
                self.margin
            )));
        }
        let student = ctx.student(&self.student)?;
        let teacher = ctx.teacher(&self.teacher)?;
        ctx.same_shape(
            "bounded-regression",
            (Side::Student(student), "logits"),
            (Side::Teacher(teacher), "logits"),
            "; teacher and student must predict the same targets",
        )?;
        Ok(Built::new(
            self.weight,
            BoundedRegression {
                margin: self.margin,
                at: Pair { student, teacher },
            },
        ))
    }
}

struct BoundedRegression {
    margin: f64,
    at: Pair,
}

impl KnowledgeTerm for BoundedRegression {
    fn forward(&self, _aux: &[Aux], ctx: &StepContext<'_>) -> Vec<(String, Tensor<1>)> {
        let s = ctx.students[self.at.student].logits.clone();
        let t = ctx.teacher_logits(self.at.teacher);
        vec![(
            "bounded-regression".into(),
            bounded_regression_loss(s, t, ctx.targets.reals(), self.margin),
        )]
    }
}

/// `L_b = mean_b [‖s_b − y_b‖² + m > ‖t_b − y_b‖²] · ‖s_b − y_b‖²`.
///
/// # Conventions (Chen et al., Learning Efficient Object Detection Models with Knowledge
/// Distillation, NeurIPS 2017, eq. 4; the published formula, implemented as such in the
/// reference generator)
/// The teacher acts as an upper bound, not a target; squared L2 per sample; mean over the
/// batch; the paper adds it to a smooth-L1 loss against the ground truth with weight ν.
///
/// # Shapes
/// student, teacher and target `[B, D]`; output `[1]`.
pub fn bounded_regression_loss(
    student: Tensor<2>,
    teacher: Tensor<2>,
    target: Tensor<2>,
    margin: f64,
) -> Tensor<1> {
    let es = (student - target.clone()).powi_scalar(2).sum_dim(1);
    let et = (teacher - target).powi_scalar(2).sum_dim(1).detach();
    let active = es.clone().add_scalar(margin).greater(et).float();
    (es * active).mean()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::knowledge::testing::{fixture, grad_of, tensor2};

    #[test]
    fn value_and_gradient_match_the_published_formula() {
        let dev = Device::flex().autodiff();
        for case in fixture("bounded_regression").cases() {
            let s = tensor2(case.input("student"), &dev).require_grad();
            let loss = bounded_regression_loss(
                s.clone(),
                tensor2(case.input("teacher"), &dev),
                tensor2(case.input("target"), &dev),
                case.param("margin"),
            );
            case.assert_value(loss.clone());
            case.assert_grad("student", grad_of(&loss, &s));
        }
    }
}
