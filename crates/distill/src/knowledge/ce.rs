//! Cross-entropy with the ground-truth labels (the "hard" term of every recipe).

use burn::nn::loss::{CrossEntropyLoss, CrossEntropyLossConfig};
use burn::prelude::*;
use serde::{Deserialize, Serialize};

use super::method::{Built, MethodInfo};
use super::role::RoleRef;
use super::term::{BuildContext, KnowledgeTerm, StepContext};
use super::Aux;
use crate::error::{DistillError, Result};

/// `method = "ce"`: cross-entropy of the student's logits with the labels.
///
/// Formula: `−mean_b log softmax(z_b)[y_b]`, with optional label smoothing ε
/// (target `(1 − ε)·onehot + ε/K`), as `torch.nn.CrossEntropyLoss(label_smoothing=ε)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CeConfig {
    /// Weight in the objective (default 1.0).
    #[serde(default = "super::defaults::one")]
    pub weight: f64,
    /// Label smoothing ε in `[0, 1)` (default 0).
    #[serde(default)]
    pub label_smoothing: f64,
    /// The trainable role the term trains (default: the recipe's `student`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub student: Option<RoleRef>,
}

/// Catalogue entry.
pub const INFO: MethodInfo = MethodInfo {
    name: "ce",
    family: "supervised",
    description: "cross-entropy with the ground-truth labels",
    citation: "—",
    taps: "student logits",
};

impl CeConfig {
    pub(crate) fn build(&self, ctx: &BuildContext<'_>, _aux: &mut Vec<Aux>) -> Result<Built> {
        ctx.require_task(crate::tasks::Task::Classification, "ce")?;
        let student = ctx.student(&self.student)?;
        if !(0.0..1.0).contains(&self.label_smoothing) {
            return Err(DistillError::Config(format!(
                "ce.label_smoothing must be in [0, 1), got {}",
                self.label_smoothing
            )));
        }
        ctx.shape(super::Side::Student(student), "logits")?;
        let mut cfg = CrossEntropyLossConfig::new();
        if self.label_smoothing > 0.0 {
            cfg = cfg.with_smoothing(Some(self.label_smoothing as f32));
        }
        Ok(Built::new(
            self.weight,
            Ce {
                loss: cfg.init(ctx.device),
                student,
            },
        ))
    }
}

struct Ce {
    loss: CrossEntropyLoss,
    student: usize,
}

impl KnowledgeTerm for Ce {
    fn forward(&self, _aux: &[Aux], ctx: &StepContext<'_>) -> Vec<(String, Tensor<1>)> {
        let logits = ctx.students[self.student].logits.clone();
        let targets = ctx.targets.classes();
        vec![("ce".into(), self.loss.forward(logits, targets))]
    }
}
