//! Skewed KL and skewed reverse KL (DistiLLM): KL against a mixture of the two distributions,
//! which keeps gradients bounded when the student puts little mass where the teacher does.
//!
//! `method = "skew-kl"` trains a language model on either (`reverse = true`: the skewed reverse
//! KL), teacher-forced on the data's windows.

use burn::prelude::*;
use burn::tensor::activation::softmax;
use serde::{Deserialize, Serialize};

use super::method::{Built, MethodInfo};
use super::ops::token_reduce;
use super::role::RoleRef;
use super::sequence::TokenPair;
use super::term::{BuildContext, KnowledgeTerm, StepContext};
use super::Aux;
use crate::error::{DistillError, Result};

/// Catalogue entry.
pub const INFO: MethodInfo = MethodInfo {
    name: "skew-kl",
    family: "response (sequence)",
    description: "α-skewed forward KL, KL(p ‖ αp + (1−α)q), or with reverse = true the skewed reverse KL, KL(q ‖ (1−α)p + αq), per token",
    citation: "Ko et al., DistiLLM: Towards Streamlined Distillation for Large Language Models, ICML 2024",
    taps: "student logits, teacher logits (language models)",
};

/// `method = "skew-kl"`: [`skew_kl_loss`], or [`skew_rkl_loss`] with `reverse = true`.
///
/// # Defaults
/// α = 0.1 (DistiLLM), T = 1, weight 1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SkewKlConfig {
    /// Weight in the objective (default 1).
    #[serde(default = "super::defaults::one")]
    pub weight: f64,
    /// Skew α in `[0, 1)` (default 0.1).
    #[serde(default = "default_alpha")]
    pub alpha: f64,
    /// The skewed reverse KL instead of the forward one (default false).
    #[serde(default)]
    pub reverse: bool,
    /// Softmax temperature (default 1).
    #[serde(default = "super::defaults::one")]
    pub temperature: f64,
    /// The trainable role the term trains (default: the recipe's `student`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub student: Option<RoleRef>,
    /// The role it learns from (default: the only `[[teacher]]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub teacher: Option<RoleRef>,
}

fn default_alpha() -> f64 {
    0.1
}

impl SkewKlConfig {
    pub(crate) fn build(&self, ctx: &BuildContext<'_>, _aux: &mut Vec<Aux>) -> Result<Built> {
        if !(0.0..1.0).contains(&self.alpha) {
            return Err(DistillError::Config(format!(
                "skew-kl.alpha must be in [0, 1), got {}",
                self.alpha
            )));
        }
        let pair = TokenPair::build(
            ctx,
            "skew-kl",
            &self.student,
            &self.teacher,
            self.temperature,
        )?;
        Ok(Built::new(
            self.weight,
            SkewKl {
                pair,
                alpha: self.alpha,
                reverse: self.reverse,
                t: self.temperature,
            },
        ))
    }
}

struct SkewKl {
    pair: TokenPair,
    alpha: f64,
    reverse: bool,
    t: f64,
}

impl KnowledgeTerm for SkewKl {
    fn forward(&self, _aux: &[Aux], ctx: &StepContext<'_>) -> Vec<(String, Tensor<1>)> {
        let (s, t, labels) = self.pair.read(ctx);
        let (name, loss): (&str, Loss) = if self.reverse {
            ("skew-rkl", skew_rkl_loss)
        } else {
            ("skew-kl", skew_kl_loss)
        };
        vec![(name.into(), loss(s, t, Some(labels), self.alpha, self.t))]
    }
}

type Loss = fn(Tensor<3>, Tensor<3>, Option<Tensor<2, Int>>, f64, f64) -> Tensor<1>;

fn probs(student: Tensor<3>, teacher: Tensor<3>, temperature: f64) -> (Tensor<3>, Tensor<3>) {
    (
        softmax(teacher.div_scalar(temperature), 2),
        softmax(student.div_scalar(temperature), 2),
    )
}

fn reduce(per_elem: Tensor<3>, labels: Option<Tensor<2, Int>>) -> Tensor<1> {
    let [b, l, _] = per_elem.dims();
    token_reduce(per_elem.sum_dim(2).reshape([b, l]), labels)
}

/// α-skewed KL: per token `KL(p ‖ α·p + (1 − α)·q)` with `p` the teacher's and `q` the student's
/// distribution (`softmax(z / T)`).
///
/// # Conventions
/// The published formula of Ko et al., DistiLLM, ICML 2024 (α = 0.1 there), implemented as such
/// in the reference generator; token reduction as [`super::gkd::generalized_jsd_loss`]. The
/// probabilities are formed explicitly (the mixture has no log-space shortcut), so a token whose
/// teacher probability underflows to 0 contributes 0 for it.
///
/// # Shapes
/// logits `[B, L, V]`, labels `[B, L]`; output `[1]`.
pub fn skew_kl_loss(
    student: Tensor<3>,
    teacher: Tensor<3>,
    labels: Option<Tensor<2, Int>>,
    alpha: f64,
    temperature: f64,
) -> Tensor<1> {
    let (p, q) = probs(student, teacher, temperature);
    let mix = p.clone().mul_scalar(alpha) + q.mul_scalar(1.0 - alpha);
    reduce(p.clone() * (p.clamp_min(1e-30).log() - mix.log()), labels)
}

/// α-skewed reverse KL: per token `KL(q ‖ (1 − α)·p + α·q)` (same conventions as
/// [`skew_kl_loss`]).
pub fn skew_rkl_loss(
    student: Tensor<3>,
    teacher: Tensor<3>,
    labels: Option<Tensor<2, Int>>,
    alpha: f64,
    temperature: f64,
) -> Tensor<1> {
    let (p, q) = probs(student, teacher, temperature);
    let mix = p.mul_scalar(1.0 - alpha) + q.clone().mul_scalar(alpha);
    reduce(q.clone() * (q.clamp_min(1e-30).log() - mix.log()), labels)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::knowledge::testing::{fixture, grad_of, int_tensor, tensor};

    #[test]
    fn values_and_gradients_match_the_published_formulas() {
        let dev = Device::flex().autodiff();
        for (name, f) in [
            ("skew_kl", skew_kl_loss as Loss),
            ("skew_rkl", skew_rkl_loss as Loss),
        ] {
            for case in fixture(name).cases() {
                let s = tensor::<3>(case.input("student"), &dev).require_grad();
                let t = tensor::<3>(case.input("teacher"), &dev);
                let labels = int_tensor::<2>(case.input("labels"), &dev);
                let loss = f(
                    s.clone(),
                    t,
                    Some(labels),
                    case.param("alpha"),
                    case.param("temperature"),
                );
                case.assert_value(loss.clone());
                case.assert_grad("student", grad_of(&loss, &s));
            }
        }
    }

    #[test]
    fn identical_inputs_give_zero() {
        let dev = Device::flex().autodiff();
        let z = Tensor::<3>::random([1, 2, 4], burn::tensor::Distribution::Default, &dev)
            .require_grad();
        for f in [skew_kl_loss as Loss, skew_rkl_loss as Loss] {
            let loss = f(z.clone(), z.clone().detach(), None, 0.1, 1.0);
            assert!(loss.clone().into_scalar::<f32>().abs() < 1e-6);
            assert!(grad_of(&loss, &z).iter().all(|g| g.is_finite()));
        }
    }
}
