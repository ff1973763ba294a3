//! DIST: match the teacher's predictions by correlation, across classes and across the batch.

use burn::prelude::*;
use serde::{Deserialize, Serialize};

use super::method::{Built, MethodInfo};
use super::ops::softmax_t;
use super::role::RoleRef;
use super::term::{BuildContext, KnowledgeTerm, Pair, Side, StepContext};
use super::Aux;
use crate::error::{DistillError, Result};

/// Catalogue entry.
pub const INFO: MethodInfo = MethodInfo {
    name: "dist",
    family: "response",
    description: "Pearson-correlation matching of predictions, inter-class (per sample) and intra-class (per class)",
    citation: "Huang et al., Knowledge Distillation from A Stronger Teacher, NeurIPS 2022",
    taps: "student logits, teacher logits",
};

/// `method = "dist"`: DIST.
///
/// # Formula
/// `y = softmax(z / τ)`; `ρ(a, b) = ⟨a − ā, b − b̄⟩ / (‖a − ā‖·‖b − b̄‖ + 1e-8)` row-wise;
/// `inter = 1 − mean_b ρ(y_s[b], y_t[b])`, `intra` the same over the transposed `[K, B]`
/// matrices; `L = β·τ²·inter + γ·τ²·intra`.
///
/// # Conventions (official `DIST_KD/losses/dist_kd.py`, torchdistill `DISTLoss`)
/// eps 1e-8 added to the norm product; `τ²` inside.
///
/// # Shapes
/// logits `[B, K]`; output `[1]`.
///
/// # Defaults
/// `β = γ = 1`, `τ = 1` (the official class defaults; its CIFAR recipe uses `β = γ = 2`, `τ = 4`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DistConfig {
    /// Weight in the objective (default 1).
    #[serde(default = "super::defaults::one")]
    pub weight: f64,
    /// Inter-class weight β (default 1).
    #[serde(default = "super::defaults::one")]
    pub beta: f64,
    /// Intra-class weight γ (default 1).
    #[serde(default = "super::defaults::one")]
    pub gamma: f64,
    /// Temperature τ (default 1).
    #[serde(default = "super::defaults::one")]
    pub tau: f64,
    /// The trainable role the term trains (default: the recipe's `student`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub student: Option<RoleRef>,
    /// The role it learns from (default: the only `[[teacher]]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub teacher: Option<RoleRef>,
}

fn pearson_mean(a: Tensor<2>, b: Tensor<2>) -> Tensor<1> {
    let a = a.clone() - a.mean_dim(1);
    let b = b.clone() - b.mean_dim(1);
    let num = (a.clone() * b.clone()).sum_dim(1);
    let den = a.powi_scalar(2).sum_dim(1).sqrt() * b.powi_scalar(2).sum_dim(1).sqrt();
    (num / den.add_scalar(1e-8)).mean()
}

/// DIST loss (see [`DistConfig`]).
pub fn dist_loss(
    student: Tensor<2>,
    teacher: Tensor<2>,
    beta: f64,
    gamma: f64,
    tau: f64,
) -> Tensor<1> {
    let ys = softmax_t(student, tau);
    let yt = softmax_t(teacher, tau);
    let inter = pearson_mean(ys.clone(), yt.clone()).neg().add_scalar(1.0);
    let intra = pearson_mean(ys.transpose(), yt.transpose())
        .neg()
        .add_scalar(1.0);
    let t2 = tau * tau;
    inter.mul_scalar(beta * t2) + intra.mul_scalar(gamma * t2)
}

impl DistConfig {
    pub(crate) fn build(&self, ctx: &BuildContext<'_>, _aux: &mut Vec<Aux>) -> Result<Built> {
        let student = ctx.student(&self.student)?;
        let teacher = ctx.teacher(&self.teacher)?;
        if !(self.tau.is_finite() && self.tau > 0.0) {
            return Err(DistillError::Config(format!(
                "dist.tau must be positive, got {}",
                self.tau
            )));
        }
        ctx.same_shape(
            "dist",
            (Side::Student(student), "logits"),
            (Side::Teacher(teacher), "logits"),
            "; teacher and student must predict the same classes",
        )?;
        Ok(Built::new(
            self.weight,
            Dist(self.clone(), Pair { student, teacher }),
        ))
    }
}

struct Dist(DistConfig, Pair);

impl KnowledgeTerm for Dist {
    fn forward(&self, _aux: &[Aux], ctx: &StepContext<'_>) -> Vec<(String, Tensor<1>)> {
        let c = &self.0;
        let s = ctx.students[self.1.student].logits.clone();
        let t = ctx.teacher_logits(self.1.teacher);
        vec![("dist".into(), dist_loss(s, t, c.beta, c.gamma, c.tau))]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::knowledge::testing::{fixture, grad_of, tensor2};

    #[test]
    fn value_and_gradient_match_the_official_code() {
        let dev = Device::flex().autodiff();
        for case in fixture("dist").cases() {
            let s = tensor2(case.input("student"), &dev).require_grad();
            let t = tensor2(case.input("teacher"), &dev);
            let loss = dist_loss(
                s.clone(),
                t,
                case.param("beta"),
                case.param("gamma"),
                case.param("tau"),
            );
            case.assert_value(loss.clone());
            case.assert_grad("student", grad_of(&loss, &s));
        }
    }

    #[test]
    fn identical_predictions_give_zero() {
        let dev = Device::flex().autodiff();
        let z = Tensor::<2>::from_floats([[1.0, -2.0, 0.5], [0.0, 3.0, 1.0]], &dev).require_grad();
        let loss = dist_loss(z.clone(), z.clone().detach(), 1.0, 1.0, 1.0);
        assert!(loss.clone().into_scalar::<f32>().abs() < 1e-5);
        assert!(grad_of(&loss, &z).iter().all(|g| g.is_finite()));
    }
}
