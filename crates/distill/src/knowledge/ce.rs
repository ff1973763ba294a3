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
///
/// For generation the rows are a language model's positions and `y` the next tokens; positions
/// labelled −100 are skipped and the mean runs over the others, as
/// `CrossEntropyLoss(ignore_index=-100)` and Hugging Face causal LMs compute it.
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
        let tokens = ctx.task == crate::tasks::Task::Generation;
        ctx.require_task(
            if tokens {
                crate::tasks::Task::Generation
            } else {
                crate::tasks::Task::Classification
            },
            "ce",
        )?;
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
                tokens,
                smoothing: self.label_smoothing,
            },
        ))
    }
}

struct Ce {
    loss: CrossEntropyLoss,
    student: usize,
    /// Next-token targets with −100 positions (generation) instead of class labels.
    tokens: bool,
    smoothing: f64,
}

/// Cross-entropy of logits `[N, V]` with targets `[N]`, skipping positions labelled −100 (mean
/// over the others, at least one), with label smoothing `ε`.
pub fn token_ce(logits: Tensor<2>, targets: Tensor<1, Int>, smoothing: f64) -> Tensor<1> {
    let [n, _] = logits.dims();
    let logp = burn::tensor::activation::log_softmax(logits, 1);
    let valid = targets.clone().greater_equal_elem(0);
    let index = targets.clamp_min(0).reshape([n, 1]);
    let nll = logp.clone().gather(1, index).reshape([n]).neg();
    let per = if smoothing > 0.0 {
        let uniform = logp.mean_dim(1).reshape([n]).neg();
        nll.mul_scalar(1.0 - smoothing) + uniform.mul_scalar(smoothing)
    } else {
        nll
    };
    let mask = valid.float();
    (per * mask.clone()).sum() / mask.sum().clamp_min(1.0)
}

impl KnowledgeTerm for Ce {
    fn forward(&self, _aux: &[Aux], ctx: &StepContext<'_>) -> Vec<(String, Tensor<1>)> {
        let logits = ctx.students[self.student].logits.clone();
        if self.tokens {
            let loss = token_ce(logits, ctx.targets.tokens(), self.smoothing);
            return vec![("ce".into(), loss)];
        }
        let targets = ctx.targets.classes();
        vec![("ce".into(), self.loss.forward(logits, targets))]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::knowledge::testing::{fixture, grad_of, int_tensor, tensor};

    #[test]
    fn token_ce_matches_pytorch_ignore_index_and_smoothing() {
        let dev = Device::flex().autodiff();
        for case in fixture("token_ce").cases() {
            let z = tensor::<2>(case.input("logits"), &dev).require_grad();
            let y = int_tensor::<1>(case.input("targets"), &dev);
            let loss = token_ce(z.clone(), y, case.param("smoothing"));
            case.assert_value(loss.clone());
            case.assert_grad("logits", grad_of(&loss, &z));
        }
    }

    #[test]
    fn a_batch_without_targets_gives_zero_not_nan() {
        let dev = Device::flex().autodiff();
        let z = Tensor::<2>::ones([2, 3], &dev).require_grad();
        let y = Tensor::<1, Int>::full([2], -100, &dev);
        let loss = token_ce(z.clone(), y, 0.0);
        assert_eq!(loss.clone().into_scalar::<f32>(), 0.0);
        assert!(grad_of(&loss, &z).iter().all(|g| *g == 0.0));
    }
}
