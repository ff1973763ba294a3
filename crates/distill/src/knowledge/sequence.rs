//! What the token-level divergences (`gkd`, `skew-kl`, `tvd`, `seq-kd`) share as methods: the
//! build-time checks and reading a language model's logits as one `[1, B · L, V]` sequence with
//! its −100 label mask.
//!
//! The losses reduce over the positions that have a target (TRL's convention), so laying the
//! batch's windows end to end as one sequence gives the same value as `[B, L, V]`.

use burn::prelude::*;
use burn::tensor::TensorData;
use rand::Rng;
use serde::{Deserialize, Serialize};

use super::role::RoleRef;
use super::term::{BuildContext, Side, StepContext};
use crate::data::IGNORE_INDEX;
use crate::error::{DistillError, Result};
use crate::models::sample::continue_batch;
use crate::models::Net;
use crate::tasks::{Target, Task};

/// Where a generating term's windows come from (on-policy GKD, sequence-level KD): the first
/// `prompt` tokens of each data window, continued by a model to the window's length at a
/// sampling temperature.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Generation {
    /// Tokens of each window kept as the prompt (default: half the context).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<usize>,
    /// Sampling temperature of the continuations (0: greedy).
    pub temperature: f64,
}

impl Generation {
    /// Checks the settings against the models' context (`rows` logit rows per probe batch of 2
    /// windows).
    pub fn check(&self, method: &str, logit_rows: usize) -> Result<()> {
        let context = logit_rows / 2;
        if !(self.temperature.is_finite() && self.temperature >= 0.0) {
            return Err(DistillError::Config(format!(
                "{method}: the sampling temperature must be ≥ 0 (0: greedy), got {}",
                self.temperature
            )));
        }
        if let Some(p) = self.prompt {
            if p == 0 || p >= context {
                return Err(DistillError::Config(format!(
                    "{method}.prompt must leave tokens to generate: between 1 and {} for a context of {context}, got {p}",
                    context - 1
                )));
            }
        }
        Ok(())
    }

    /// Windows continued by `net` from the prompts of `x` (`[B, 1, 1, L]` token ids), and their
    /// targets: the next token at every generated position, −100 over the prompt (whose tokens
    /// the model did not choose) and at the last position. `None` if `net` is not a language
    /// model.
    ///
    /// A window whose prompt runs into the padding after its chapter's end (its data targets
    /// reach −100 within the prompt) keeps no target at all: its continuation would follow
    /// padding, not text.
    pub fn batch(
        &self,
        net: &Net,
        x: &Tensor<4>,
        data_targets: &Target,
        rng: &mut impl Rng,
    ) -> Option<(Tensor<4>, Target)> {
        let Net::Gpt(gpt) = net else { return None };
        let [b, _, _, l] = x.dims();
        let p = self.prompt.unwrap_or(l / 2).clamp(1, l - 1);
        let ids: Vec<i64> = x
            .clone()
            .into_data()
            .iter::<f32>()
            .map(|v| v as i64)
            .collect();
        let prompts: Vec<i64> = ids.chunks_exact(l).flat_map(|w| w[..p].to_vec()).collect();
        let plain = x.device().without_autodiff();
        let prompts = Tensor::<1, Int>::from_ints(prompts.as_slice(), &plain).reshape([b, p]);
        let out: Vec<i64> = continue_batch(gpt, prompts, l - p, self.temperature, rng)
            .into_data()
            .iter::<i64>()
            .collect();
        // input position j is text when j = 0 or position j − 1 has a target
        let prompt_is_text: Vec<bool> = match data_targets {
            Target::Tokens(y) if p >= 2 => {
                let y: Vec<i64> = y.clone().into_data().iter::<i64>().collect();
                y.chunks_exact(l)
                    .map(|w| w[p - 2] != IGNORE_INDEX)
                    .collect()
            }
            _ => vec![true; b],
        };
        let targets: Vec<i64> = out
            .chunks_exact(l)
            .zip(&prompt_is_text)
            .flat_map(|(w, &text)| {
                (0..l).map(move |j| {
                    if text && j + 1 < l && j + 1 >= p {
                        w[j + 1]
                    } else {
                        IGNORE_INDEX
                    }
                })
            })
            .collect();
        let inputs: Vec<f32> = out.iter().map(|&t| t as f32).collect();
        let device = x.device();
        Some((
            Tensor::from_data(TensorData::new(inputs, [b, 1, 1, l]), &device),
            Target::Tokens(Tensor::from_data(
                TensorData::new(targets, [b * l]),
                &device,
            )),
        ))
    }
}

/// The student and teacher of a token-level term, resolved.
#[derive(Debug, Clone, Copy)]
pub struct TokenPair {
    student: usize,
    teacher: usize,
}

impl TokenPair {
    /// Checks that the experiment is a generation task, that `temperature` is positive and that
    /// the two language models predict the same vocabulary.
    pub fn build(
        ctx: &BuildContext<'_>,
        method: &str,
        student: &Option<RoleRef>,
        teacher: &Option<RoleRef>,
        temperature: f64,
    ) -> Result<Self> {
        if ctx.task != Task::Generation {
            return Err(DistillError::Config(format!(
                "`{method}` compares next-token distributions and applies to task = \"generation\" only, but this experiment's task is \"{}\"; use `kd` for class distributions",
                ctx.task.name()
            )));
        }
        if !(temperature.is_finite() && temperature > 0.0) {
            return Err(DistillError::Config(format!(
                "{method}.temperature must be positive, got {temperature}"
            )));
        }
        let student = ctx.student(student)?;
        let teacher = ctx.teacher(teacher)?;
        ctx.same_shape(
            method,
            (Side::Student(student), "logits"),
            (Side::Teacher(teacher), "logits"),
            "; teacher and student must share the vocabulary: train both on the same data.tokenizer, and the same data.context",
        )?;
        Ok(Self { student, teacher })
    }

    /// The trainable role the term trains.
    pub fn student(&self) -> usize {
        self.student
    }

    /// The teacher-side role it learns from.
    pub fn teacher(&self) -> usize {
        self.teacher
    }

    /// Student logits, teacher logits (`[1, B · L, V]`) and the label mask (`[1, B · L]`; all
    /// positions count when the batch has no targets).
    pub fn read(&self, ctx: &StepContext<'_>) -> (Tensor<3>, Tensor<3>, Tensor<2, Int>) {
        let s = ctx.students[self.student].logits.clone();
        let t = ctx.teacher_logits(self.teacher);
        let [n, v] = s.dims();
        let labels = match &ctx.targets {
            Target::Tokens(y) => y.clone(),
            _ => Tensor::zeros([n], &s.device()),
        };
        (
            s.reshape([1, n, v]),
            t.reshape([1, n, v]),
            labels.reshape([1, n]),
        )
    }
}
