//! What the token-level divergences (`gkd`, `skew-kl`, `skew-rkl`, `tvd`) share as methods: the
//! build-time checks and reading a language model's logits as one `[1, B · L, V]` sequence with
//! its −100 label mask.
//!
//! The losses reduce over the positions that have a target (TRL's convention), so laying the
//! batch's windows end to end as one sequence gives the same value as `[B, L, V]`.

use burn::prelude::*;

use super::role::RoleRef;
use super::term::{BuildContext, Side, StepContext};
use crate::error::{DistillError, Result};
use crate::tasks::{Target, Task};

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
