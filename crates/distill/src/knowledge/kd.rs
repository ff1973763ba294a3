//! Hinton knowledge distillation: match the teacher's temperature-softened class distribution.

use burn::nn::loss::{KLDivLossConfig, Reduction};
use burn::prelude::*;
use burn::tensor::activation::log_softmax;
use serde::{Deserialize, Serialize};

use super::method::{Built, MethodInfo};
use super::role::RoleRef;
use super::term::{BuildContext, KnowledgeTerm, Side, StepContext};
use super::Aux;
use crate::error::{DistillError, Result};

/// Catalogue entry.
pub const INFO: MethodInfo = MethodInfo {
    name: "kd",
    family: "response",
    description: "KL divergence between temperature-softened teacher and student distributions",
    citation:
        "Hinton, Vinyals & Dean, Distilling the Knowledge in a Neural Network, NeurIPS-W 2015",
    taps: "student logits, teacher logits",
};

/// `method = "kd"`: Hinton KD.
///
/// # Formula
/// `L = T² · (1/B) · Σ_b Σ_k p_t[b,k] · (log p_t[b,k] − log p_s[b,k])`, with
/// `p = softmax(z / T)`.
///
/// # Conventions (RepDistiller `distiller_zoo/KD.py`, mdistiller `KD.py`)
/// - reduction "batchmean": the sum over batch and classes divided by the batch size, not the
///   element mean;
/// - the `T²` factor is inside the loss, so gradients keep their scale as `T` changes;
/// - terms where `p_t = 0` contribute 0 (computed in log space, never `0 · log 0`).
///
/// # Shapes
/// student and teacher logits `[B, K]`; output `[1]`.
///
/// # Defaults
/// `T = 4`, weight 0.9 (paired with `ce` at weight 0.1: RepDistiller's CIFAR-100 recipe).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KdConfig {
    /// Weight in the objective (default 0.9).
    #[serde(default = "default_weight")]
    pub weight: f64,
    /// Softmax temperature T (default 4).
    #[serde(default = "default_temperature")]
    pub temperature: f64,
    /// The trainable role the term trains (default: the recipe's `student`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub student: Option<RoleRef>,
    /// The role it learns from (default: the only `[[teacher]]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub teacher: Option<RoleRef>,
}

fn default_weight() -> f64 {
    0.9
}
fn default_temperature() -> f64 {
    4.0
}

/// Hinton KD loss (see [`KdConfig`] for the formula and conventions).
pub fn kd_loss(student: Tensor<2>, teacher: Tensor<2>, temperature: f64) -> Tensor<1> {
    let log_ps = log_softmax(student.div_scalar(temperature), 1);
    let log_pt = log_softmax(teacher.div_scalar(temperature), 1);
    KLDivLossConfig::new()
        .with_log_target(true)
        .init()
        .forward(log_ps, log_pt, Reduction::BatchMean)
        .mul_scalar(temperature * temperature)
}

impl KdConfig {
    pub(crate) fn build(&self, ctx: &BuildContext<'_>, _aux: &mut Vec<Aux>) -> Result<Built> {
        let student = ctx.student(&self.student)?;
        let teacher = ctx.teacher(&self.teacher)?;
        if !(self.temperature.is_finite() && self.temperature > 0.0) {
            return Err(DistillError::Config(format!(
                "kd.temperature must be positive, got {}",
                self.temperature
            )));
        }
        ctx.same_shape(
            "kd",
            (Side::Student(student), "logits"),
            (Side::Teacher(teacher), "logits"),
            "; teacher and student must predict the same classes",
        )?;
        Ok(Built::new(
            self.weight,
            Kd {
                t: self.temperature,
                student,
                teacher,
            },
        ))
    }
}

struct Kd {
    t: f64,
    student: usize,
    teacher: usize,
}

impl KnowledgeTerm for Kd {
    fn forward(&self, _aux: &[Aux], ctx: &StepContext<'_>) -> Vec<(String, Tensor<1>)> {
        let s = ctx.students[self.student].logits.clone();
        let t = ctx.teacher_logits(self.teacher);
        vec![("kd".into(), kd_loss(s, t, self.t))]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::knowledge::testing::{fixture, grad_of, tensor2};

    #[test]
    fn value_and_gradient_match_pytorch() {
        let f = fixture("kd");
        let dev = Device::flex().autodiff();
        for case in f.cases() {
            let s = tensor2(case.input("student"), &dev).require_grad();
            let t = tensor2(case.input("teacher"), &dev);
            let loss = kd_loss(s.clone(), t, case.param("temperature"));
            case.assert_value(loss.clone());
            case.assert_grad("student", grad_of(&loss, &s));
        }
    }

    #[test]
    fn identical_logits_give_zero_loss_and_gradient() {
        let dev = Device::flex().autodiff();
        let z = Tensor::<2>::from_floats([[1.0, -2.0, 0.5]], &dev).require_grad();
        let loss = kd_loss(z.clone(), z.clone().detach(), 4.0);
        assert!(loss.clone().into_scalar::<f32>().abs() < 1e-6);
        let g = grad_of(&loss, &z);
        assert!(g.iter().all(|v| v.abs() < 1e-6 && v.is_finite()));
    }
}
