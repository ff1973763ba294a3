//! KD with logit standardisation: Hinton KD on z-scored logits.

use burn::prelude::*;
use burn::tensor::activation::log_softmax;
use serde::{Deserialize, Serialize};

use super::method::{Built, MethodInfo};
use super::ops::kl_batchmean;
use super::role::RoleRef;
use super::term::{BuildContext, KnowledgeTerm, Pair, Side, StepContext};
use super::Aux;
use crate::error::{DistillError, Result};

/// Catalogue entry.
pub const INFO: MethodInfo = MethodInfo {
    name: "kd-ls",
    family: "response",
    description: "Hinton KD on standardised logits (z-score per sample), freeing the student from the teacher's logit scale",
    citation: "Sun et al., Logit Standardization in Knowledge Distillation, CVPR 2024",
    taps: "student logits, teacher logits",
};

/// `method = "kd-ls"`: KD with logit standardisation.
///
/// # Formula
/// `ẑ = (z − mean(z)) / (1e-7 + std(z))` per sample (unbiased std, as `torch.std`), then
/// `L = T² · (1/B) · Σ_b KL(softmax(ẑ_t/T) ‖ softmax(ẑ_s/T))`.
///
/// # Conventions (authors' `mdistiller/distillers/KD.py` with `logit_stand`)
/// `kl_div(reduction="none").sum(1).mean()` — the same as batchmean; `T²` inside; eps 1e-7
/// added to the standard deviation.
///
/// # Shapes
/// logits `[B, K]` with `K ≥ 2`; output `[1]`.
///
/// # Defaults
/// `T = 2`, weight 1 (scale it with the recipe: the authors pair larger KD weights with CE 0.1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KdLsConfig {
    /// Weight in the objective (default 1).
    #[serde(default = "super::defaults::one")]
    pub weight: f64,
    /// Temperature T (default 2).
    #[serde(default = "two")]
    pub temperature: f64,
    /// The trainable role the term trains (default: the recipe's `student`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub student: Option<RoleRef>,
    /// The role it learns from (default: the only `[[teacher]]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub teacher: Option<RoleRef>,
}

fn two() -> f64 {
    2.0
}

fn standardize(z: Tensor<2>) -> Tensor<2> {
    let k = z.dims()[1] as f64;
    let centred = z.clone() - z.mean_dim(1);
    let std = centred
        .clone()
        .powi_scalar(2)
        .sum_dim(1)
        .div_scalar(k - 1.0)
        .sqrt();
    centred / std.add_scalar(1e-7)
}

/// KD-LS loss (see [`KdLsConfig`]).
pub fn kd_ls_loss(student: Tensor<2>, teacher: Tensor<2>, temperature: f64) -> Tensor<1> {
    let log_ps = log_softmax(standardize(student).div_scalar(temperature), 1);
    let log_pt = log_softmax(standardize(teacher).div_scalar(temperature), 1);
    kl_batchmean(log_pt, log_ps).mul_scalar(temperature * temperature)
}

impl KdLsConfig {
    pub(crate) fn build(&self, ctx: &BuildContext<'_>, _aux: &mut Vec<Aux>) -> Result<Built> {
        let student = ctx.student(&self.student)?;
        let teacher = ctx.teacher(&self.teacher)?;
        if !(self.temperature.is_finite() && self.temperature > 0.0) {
            return Err(DistillError::Config(format!(
                "kd-ls.temperature must be positive, got {}",
                self.temperature
            )));
        }
        ctx.same_shape(
            "kd-ls",
            (Side::Student(student), "logits"),
            (Side::Teacher(teacher), "logits"),
            "; teacher and student must predict the same classes",
        )?;
        if ctx.classes < 2 {
            return Err(DistillError::Config(
                "kd-ls needs at least 2 classes".into(),
            ));
        }
        Ok(Built::new(
            self.weight,
            KdLs(self.clone(), Pair { student, teacher }),
        ))
    }
}

struct KdLs(KdLsConfig, Pair);

impl KnowledgeTerm for KdLs {
    fn forward(&self, _aux: &[Aux], ctx: &StepContext<'_>) -> Vec<(String, Tensor<1>)> {
        let c = &self.0;
        let s = ctx.students[self.1.student].logits.clone();
        let t = ctx.teacher_logits(self.1.teacher);
        vec![("kd-ls".into(), kd_ls_loss(s, t, c.temperature))]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::knowledge::testing::{fixture, grad_of, tensor2};

    #[test]
    fn value_and_gradient_match_the_authors_code() {
        let dev = Device::flex().autodiff();
        for case in fixture("kd_ls").cases() {
            let s = tensor2(case.input("student"), &dev).require_grad();
            let t = tensor2(case.input("teacher"), &dev);
            let loss = kd_ls_loss(s.clone(), t, case.param("temperature"));
            case.assert_value(loss.clone());
            case.assert_grad("student", grad_of(&loss, &s));
        }
    }

    #[test]
    fn scaled_and_shifted_teacher_logits_give_zero() {
        let dev = Device::flex().autodiff();
        let z = Tensor::<2>::from_floats([[1.0, -2.0, 0.5]], &dev).require_grad();
        let t = z.clone().detach().mul_scalar(3.0).add_scalar(7.0);
        let loss = kd_ls_loss(z.clone(), t, 2.0);
        assert!(loss.clone().into_scalar::<f32>().abs() < 1e-5);
        assert!(grad_of(&loss, &z).iter().all(|g| g.is_finite()));
    }
}
