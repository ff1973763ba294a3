//! Decoupled knowledge distillation: KD split into target-class and non-target-class parts.

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
    name: "dkd",
    family: "response",
    description:
        "decoupled KD: target-class (TCKD) and non-target-class (NCKD) KL terms, with warm-up",
    citation: "Zhao et al., Decoupled Knowledge Distillation, CVPR 2022",
    taps: "student logits, teacher logits, labels",
};

/// `method = "dkd"`: DKD.
///
/// # Formula
/// With `p = softmax(z / T)` and `y` the label: `b = [p_y, Σ_{k≠y} p_k]`,
/// `TCKD = T² · KL(b_t ‖ b_s)` (batchmean); `NCKD = T² · KL(p̂_t ‖ p̂_s)` (batchmean) where
/// `p̂ = softmax(z / T − 1000·onehot(y))` (the target masked out);
/// `L = min(e / warmup, 1) · (α · TCKD + β · NCKD)`, `e` the epochs done, counted per step
/// (see [`StepContext::warmup`]).
///
/// # Conventions (mdistiller `distillers/DKD.py`)
/// Batchmean reductions with `T²` inside; the binary probabilities are formed in log space
/// (mdistiller takes `log` of the summed probabilities, which underflows to `−∞` for a very
/// confident student; the values agree otherwise); the warm-up factor equals mdistiller's `min(epoch / warmup, 1)` (1-based epoch) at
/// each epoch's last step and ramps linearly per step in between (mdistiller holds it for the
/// whole epoch, which switches a short warm-up on at full strength in one step); the CE term
/// is separate (`method = "ce"`, weight 1 in mdistiller).
///
/// # Shapes
/// logits `[B, K]`, labels `[B]`; output `[1]`.
///
/// # Defaults
/// `α = 1`, `β = 8`, `T = 4`, warm-up 20 epochs (mdistiller's CIFAR-100 settings).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DkdConfig {
    /// Weight in the objective (default 1).
    #[serde(default = "super::defaults::one")]
    pub weight: f64,
    /// TCKD weight α (default 1).
    #[serde(default = "super::defaults::one")]
    pub alpha: f64,
    /// NCKD weight β (default 8).
    #[serde(default = "eight")]
    pub beta: f64,
    /// Temperature T (default 4).
    #[serde(default = "four")]
    pub temperature: f64,
    /// Epochs of linear warm-up of the whole term, ramped per step (default 20; fractions
    /// allowed; 0 disables it).
    #[serde(default = "twenty")]
    pub warmup: f64,
    /// The trainable role the term trains (default: the recipe's `student`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub student: Option<RoleRef>,
    /// The role it learns from (default: the only `[[teacher]]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub teacher: Option<RoleRef>,
}

fn eight() -> f64 {
    8.0
}
fn four() -> f64 {
    4.0
}
fn twenty() -> f64 {
    20.0
}

/// DKD loss without the warm-up factor (see [`DkdConfig`]).
pub fn dkd_loss(
    student: Tensor<2>,
    teacher: Tensor<2>,
    targets: Tensor<1, Int>,
    alpha: f64,
    beta: f64,
    temperature: f64,
) -> Tensor<1> {
    let [_, k] = student.dims();
    let gt: Tensor<2> = targets.one_hot::<2>(k).float();
    // [log p_target, log Σ_{k≠target} p_k], in log space so that neither underflows to log 0.
    let binary = |z: Tensor<2>| {
        let lsm = log_softmax(z.div_scalar(temperature), 1);
        let lp_gt = (lsm.clone() * gt.clone()).sum_dim(1);
        let others = lsm - gt.clone().mul_scalar(1e30);
        let m = others.clone().max_dim(1).detach();
        let lp_other = m.clone() + (others - m).exp().sum_dim(1).log();
        Tensor::cat(vec![lp_gt, lp_other], 1)
    };
    let t2 = temperature * temperature;
    let tckd = kl_batchmean(binary(teacher.clone()), binary(student.clone())).mul_scalar(t2);
    let masked =
        |z: Tensor<2>| log_softmax(z.div_scalar(temperature) - gt.clone().mul_scalar(1000.0), 1);
    let nckd = kl_batchmean(masked(teacher), masked(student)).mul_scalar(t2);
    tckd.mul_scalar(alpha) + nckd.mul_scalar(beta)
}

impl DkdConfig {
    pub(crate) fn build(&self, ctx: &BuildContext<'_>, _aux: &mut Vec<Aux>) -> Result<Built> {
        ctx.require_task(crate::tasks::Task::Classification, "dkd")?;
        let student = ctx.student(&self.student)?;
        let teacher = ctx.teacher(&self.teacher)?;
        if !(self.temperature.is_finite() && self.temperature > 0.0) {
            return Err(DistillError::Config(format!(
                "dkd.temperature must be positive, got {}",
                self.temperature
            )));
        }
        if self.warmup.is_nan() || self.warmup < 0.0 {
            return Err(DistillError::Config(format!(
                "dkd.warmup must be ≥ 0 epochs (0 turns it off), got {}",
                self.warmup
            )));
        }
        ctx.same_shape(
            "dkd",
            (Side::Student(student), "logits"),
            (Side::Teacher(teacher), "logits"),
            "; teacher and student must predict the same classes",
        )?;
        Ok(Built::new(
            self.weight,
            Dkd(self.clone(), Pair { student, teacher }),
        ))
    }
}

struct Dkd(DkdConfig, Pair);

impl KnowledgeTerm for Dkd {
    fn forward(&self, _aux: &[Aux], ctx: &StepContext<'_>) -> Vec<(String, Tensor<1>)> {
        let c = &self.0;
        let warm = ctx.warmup(c.warmup);
        let loss = dkd_loss(
            ctx.students[self.1.student].logits.clone(),
            ctx.teacher_logits(self.1.teacher),
            ctx.targets.classes(),
            c.alpha,
            c.beta,
            c.temperature,
        );
        vec![("dkd".into(), loss.mul_scalar(warm))]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::knowledge::testing::{fixture, grad_of, labels, tensor2};

    #[test]
    fn value_and_gradient_match_mdistiller() {
        let dev = Device::flex().autodiff();
        for case in fixture("dkd").cases() {
            let s = tensor2(case.input("student"), &dev).require_grad();
            let t = tensor2(case.input("teacher"), &dev);
            let y = labels(case.input("target"), &dev);
            let loss = dkd_loss(
                s.clone(),
                t,
                y,
                case.param("alpha"),
                case.param("beta"),
                case.param("temperature"),
            );
            case.assert_value(loss.clone());
            case.assert_grad("student", grad_of(&loss, &s));
        }
    }

    #[test]
    fn a_very_confident_student_stays_finite() {
        // Regression: with log(Σ p) the non-target mass underflowed to log 0 and the loss to inf.
        let dev = Device::flex().autodiff();
        let s = Tensor::<2>::from_floats([[900.0, 0.0, -5.0]], &dev).require_grad();
        let t = Tensor::<2>::from_floats([[2.0, 1.0, 0.0]], &dev);
        let y = Tensor::<1, Int>::from_ints([0], &dev);
        let loss = dkd_loss(s.clone(), t, y, 1.0, 8.0, 4.0);
        assert!(loss.clone().into_scalar::<f32>().is_finite());
        assert!(grad_of(&loss, &s).iter().all(|g| g.is_finite()));
    }

    #[test]
    fn identical_logits_give_zero() {
        let dev = Device::flex().autodiff();
        let z = Tensor::<2>::from_floats([[1.0, -2.0, 0.5], [0.0, 3.0, 1.0]], &dev).require_grad();
        let y = Tensor::<1, Int>::from_ints([2, 1], &dev);
        let loss = dkd_loss(z.clone(), z.clone().detach(), y, 1.0, 8.0, 4.0);
        assert!(loss.clone().into_scalar::<f32>().abs() < 1e-5);
        assert!(grad_of(&loss, &z)
            .iter()
            .all(|g| g.is_finite() && g.abs() < 1e-4));
    }
}
