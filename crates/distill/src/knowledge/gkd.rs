//! Token-level generalised Jensen-Shannon divergence (GKD), with forward and reverse KL as its
//! end points — the sequence-level losses of language-model distillation. `method = "gkd"`
//! trains on the data's windows, teacher-forced (off-policy), or with `lmbda > 0` on that
//! fraction of batches on-policy: windows whose second half the student samples itself, scored
//! by the teacher (TRL's `GKDTrainer`, λ = `lmbda`).

use burn::prelude::*;
use burn::tensor::activation::log_softmax;
use serde::{Deserialize, Serialize};

use super::method::{Built, MethodInfo};
use super::ops::token_reduce;
use super::role::RoleRef;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::sequence::{Generation, TokenPair};
use super::term::{BuildContext, KnowledgeTerm, RewriteContext, Side, StepContext};
use super::Aux;
use crate::error::{DistillError, Result};
use crate::tasks::Target;

/// Catalogue entry.
pub const INFO: MethodInfo = MethodInfo {
    name: "gkd",
    family: "response (sequence)",
    description: "token-level generalised JSD with β between the next-token distributions; β = 0 forward KL, β = 1 reverse KL; −100 positions skipped",
    citation: "Agarwal et al., On-Policy Distillation of Language Models (GKD), ICLR 2024; TRL GKDTrainer",
    taps: "student logits, teacher logits (language models)",
};

/// `method = "gkd"`: [`generalized_jsd_loss`] of the student's and teacher's next-token logits
/// at every position that has a target.
///
/// # On-policy
/// With probability `lmbda` a step's batch is replaced by the student's own continuations: each
/// window keeps its first `prompt` tokens (default half the context) and the student samples the
/// rest at `sampling_temperature` (no gradient through the sampling); the loss is then taken
/// over the generated positions only. The draw and the samples are seeded by the step, so a
/// resumed run repeats them.
///
/// # Defaults
/// β = 0.5, T = 1, `sampling_temperature` = 0.9 (TRL's `GKDConfig`), `lmbda` = 0 (off-policy;
/// TRL's default is 0.5), weight 1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GkdConfig {
    /// Weight in the objective (default 1).
    #[serde(default = "super::defaults::one")]
    pub weight: f64,
    /// Interpolation β in `[0, 1]` (default 0.5).
    #[serde(default = "default_beta")]
    pub beta: f64,
    /// Softmax temperature (default 1).
    #[serde(default = "super::defaults::one")]
    pub temperature: f64,
    /// Fraction λ of batches trained on-policy, in `[0, 1]` (default 0).
    #[serde(default)]
    pub lmbda: f64,
    /// Tokens of each window kept as the prompt of an on-policy continuation (default: half
    /// the context).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<usize>,
    /// Temperature of the student's on-policy samples (default 0.9).
    #[serde(default = "default_sampling_temperature")]
    pub sampling_temperature: f64,
    /// The trainable role the term trains (default: the recipe's `student`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub student: Option<RoleRef>,
    /// The role it learns from (default: the only `[[teacher]]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub teacher: Option<RoleRef>,
}

fn default_beta() -> f64 {
    0.5
}

fn default_sampling_temperature() -> f64 {
    0.9
}

impl GkdConfig {
    pub(crate) fn build(&self, ctx: &BuildContext<'_>, _aux: &mut Vec<Aux>) -> Result<Built> {
        if !(0.0..=1.0).contains(&self.beta) {
            return Err(DistillError::Config(format!(
                "gkd.beta must be in [0, 1] (0: forward KL, 1: reverse KL), got {}",
                self.beta
            )));
        }
        if !(0.0..=1.0).contains(&self.lmbda) {
            return Err(DistillError::Config(format!(
                "gkd.lmbda is the fraction of on-policy batches, in [0, 1], got {}",
                self.lmbda
            )));
        }
        let pair = TokenPair::build(ctx, "gkd", &self.student, &self.teacher, self.temperature)?;
        let generation = Generation {
            prompt: self.prompt,
            temperature: self.sampling_temperature,
        };
        let rows = ctx.shape(Side::Student(pair.student()), "logits")?[0];
        generation.check("gkd", rows)?;
        Ok(Built::new(
            self.weight,
            Gkd {
                pair,
                beta: self.beta,
                t: self.temperature,
                lmbda: self.lmbda,
                generation,
            },
        ))
    }
}

struct Gkd {
    pair: TokenPair,
    beta: f64,
    t: f64,
    lmbda: f64,
    generation: Generation,
}

impl KnowledgeTerm for Gkd {
    fn rewrites_batches(&self) -> bool {
        self.lmbda > 0.0
    }

    fn rewrite_batch(&self, ctx: &RewriteContext<'_>) -> Option<(Tensor<4>, Target)> {
        if self.lmbda == 0.0 {
            return None;
        }
        let mut rng = SmallRng::seed_from_u64(ctx.seed);
        if rng.random::<f64>() >= self.lmbda {
            return None;
        }
        let student = ctx.students[self.pair.student()].valid();
        self.generation
            .batch(&student, ctx.x, ctx.targets, &mut rng)
    }

    fn forward(&self, _aux: &[Aux], ctx: &StepContext<'_>) -> Vec<(String, Tensor<1>)> {
        let (s, t, labels) = self.pair.read(ctx);
        vec![(
            "gkd".into(),
            generalized_jsd_loss(s, t, Some(labels), self.beta, self.t),
        )]
    }
}

/// Generalised JSD between student and teacher next-token distributions.
///
/// # Formula
/// `p_s = softmax(z_s / T)`, `p_t = softmax(z_t / T)`, `M = (1 − β)·p_s + β·p_t` (computed in log
/// space); per token `β·KL(p_t ‖ M) + (1 − β)·KL(p_s ‖ M)`; `β = 0` is the forward
/// `KL(p_t ‖ p_s)`, `β = 1` the reverse `KL(p_s ‖ p_t)`.
///
/// # Conventions (Hugging Face TRL `GKDTrainer.generalized_jsd_loss`, Agarwal et al., ICLR 2024)
/// Temperature divides the logits with **no** `T²` factor; positions labelled −100 are excluded
/// and the sum is divided by the number of valid tokens (at least 1); without labels the full
/// sum is divided by the batch size (as `../shared/docs/loss-conventions.md` fixes it).
///
/// # Shapes
/// logits `[B, L, V]`, labels `[B, L]`; output `[1]`.
pub fn generalized_jsd_loss(
    student: Tensor<3>,
    teacher: Tensor<3>,
    labels: Option<Tensor<2, Int>>,
    beta: f64,
    temperature: f64,
) -> Tensor<1> {
    let s = log_softmax(student.div_scalar(temperature), 2);
    let t = log_softmax(teacher.div_scalar(temperature), 2);
    // KL(exp(a) ‖ exp(b)) per element, from log-probabilities.
    let kl = |a: Tensor<3>, b: Tensor<3>| a.clone().exp() * (a - b);
    let per_elem = if beta == 0.0 {
        kl(t, s)
    } else if beta == 1.0 {
        kl(s, t)
    } else {
        let a = s.clone().add_scalar((1.0 - beta).ln());
        let b = t.clone().add_scalar(beta.ln());
        let m = a.clone().max_pair(b.clone()).detach();
        let mix = m.clone() + ((a - m.clone()).exp() + (b - m).exp()).log();
        kl(t, mix.clone()).mul_scalar(beta) + kl(s, mix).mul_scalar(1.0 - beta)
    };
    let [bsz, len, _] = per_elem.dims();
    token_reduce(per_elem.sum_dim(2).reshape([bsz, len]), labels)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::knowledge::testing::{fixture, grad_of, int_tensor, tensor};

    #[test]
    fn value_and_gradient_match_trl() {
        let dev = Device::flex().autodiff();
        for case in fixture("gjsd").cases() {
            let s = tensor::<3>(case.input("student"), &dev).require_grad();
            let t = tensor::<3>(case.input("teacher"), &dev);
            let labels = case.inputs.get("labels").map(|l| int_tensor::<2>(l, &dev));
            let loss = generalized_jsd_loss(
                s.clone(),
                t,
                labels,
                case.param("beta"),
                case.param("temperature"),
            );
            case.assert_value(loss.clone());
            case.assert_grad("student", grad_of(&loss, &s));
        }
    }

    #[test]
    fn identical_inputs_and_empty_masks_give_zero() {
        let dev = Device::flex().autodiff();
        let z = Tensor::<3>::random([2, 3, 5], burn::tensor::Distribution::Default, &dev)
            .require_grad();
        for beta in [0.0, 0.5, 1.0] {
            let loss = generalized_jsd_loss(z.clone(), z.clone().detach(), None, beta, 1.0);
            assert!(
                loss.clone().into_scalar::<f32>().abs() < 1e-6,
                "beta {beta}"
            );
            assert!(grad_of(&loss, &z).iter().all(|g| g.is_finite()));
        }
        let none = Tensor::<2, Int>::full([2, 3], -100, &dev);
        let loss = generalized_jsd_loss(
            z.clone(),
            z.clone().detach().mul_scalar(3.0),
            Some(none),
            0.5,
            1.0,
        );
        assert_eq!(loss.clone().into_scalar::<f32>(), 0.0);
        assert!(grad_of(&loss, &z).iter().all(|g| *g == 0.0));
    }
}
