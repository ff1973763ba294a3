//! Class-wise self-knowledge distillation (CS-KD): each sample's predictions learn from the
//! predictions on another sample of its class, made by the same network.

use burn::prelude::*;
use serde::{Deserialize, Serialize};

use super::kd::kd_loss;
use super::method::{Built, MethodInfo};
use super::role::RoleRef;
use super::term::{BuildContext, KnowledgeTerm, Side, StepContext};
use super::Aux;
use crate::error::{DistillError, Result};

/// Catalogue entry.
pub const INFO: MethodInfo = MethodInfo {
    name: "cs-kd",
    family: "self",
    description: "class-wise self-KD: KL from the network's (detached) predictions on another sample of the same class to its predictions on each sample; needs class_pairs",
    citation: "Yun et al., Regularizing Class-wise Predictions via Self-knowledge Distillation, CVPR 2020",
    taps: "student logits",
};

/// `method = "cs-kd"`: CS-KD.
///
/// # Formula
/// For each anchor `x` and its partner `x'` of the same class (the recipe sets
/// `class_pairs = true`, so every batch holds `B` anchors each followed by its partner):
/// `L = T² · (1/B) · Σ_b KL(softmax(z(x'_b)/T) ‖ softmax(z(x_b)/T))`, the partner side detached.
///
/// # Conventions (authors' `alinlab/cs-kd`, `KDLoss` and the `--cls` branch of `train.py`)
/// `KLDivLoss(reduction="sum") · T² / B`, the same as [`kd_loss`]; the partners' predictions
/// are constants. Difference: the reference applies cross-entropy to the anchors only (and
/// runs the partners without gradients); here the recipe's `ce` term sees both halves of the
/// batch, so the partners are trained on their labels too.
///
/// # Shapes
/// logits `[2B, K]` (anchor, partner, anchor, partner, ...); output `[1]`.
///
/// # Defaults
/// `T = 4`, weight (their λ) 1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CsKdConfig {
    /// Weight in the objective, their λ (default 1).
    #[serde(default = "super::defaults::one")]
    pub weight: f64,
    /// Temperature T (default 4).
    #[serde(default = "four")]
    pub temperature: f64,
    /// The trainable role the term trains (default: the recipe's `student`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub student: Option<RoleRef>,
}

fn four() -> f64 {
    4.0
}

impl CsKdConfig {
    pub(crate) fn build(&self, ctx: &BuildContext<'_>, _aux: &mut Vec<Aux>) -> Result<Built> {
        if !ctx.class_pairs {
            return Err(DistillError::Config(
                "cs-kd learns from another sample of each sample's class: set class_pairs = true on the [[student]] recipe".into(),
            ));
        }
        if !(self.temperature.is_finite() && self.temperature > 0.0) {
            return Err(DistillError::Config(format!(
                "cs-kd.temperature must be positive, got {}",
                self.temperature
            )));
        }
        let student = ctx.student(&self.student)?;
        ctx.shape(Side::Student(student), "logits")?;
        Ok(Built::new(
            self.weight,
            CsKd {
                t: self.temperature,
                student,
            },
        ))
    }
}

struct CsKd {
    t: f64,
    student: usize,
}

/// CS-KD over a batch of class pairs laid out by `lists` (see [`CsKdConfig`]).
fn cs_kd_loss(logits: Tensor<2>, lists: &crate::tasks::ranking::Lists, t: f64) -> Tensor<1> {
    let anchors = lists.member(logits.clone(), 0);
    let partners = lists.member(logits, 1).detach();
    kd_loss(anchors, partners, t)
}

impl KnowledgeTerm for CsKd {
    fn forward(&self, _aux: &[Aux], ctx: &StepContext<'_>) -> Vec<(String, Tensor<1>)> {
        let z = ctx.students[self.student].logits.clone();
        vec![("cs-kd".into(), cs_kd_loss(z, ctx.lists(), self.t))]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::knowledge::testing::grad_of;
    use crate::tasks::ranking::Lists;

    #[test]
    fn anchors_learn_from_their_partners_and_partners_get_no_gradient() {
        let dev = Device::flex().autodiff();
        // two pairs: rows 0 ← 1 and 2 ← 3
        let z = Tensor::<2>::from_floats(
            [
                [1.0, 0.0, -1.0],
                [0.5, 0.2, 0.1],
                [2.0, -1.0, 0.0],
                [0.0, 3.0, 1.0],
            ],
            &dev,
        )
        .require_grad();
        let lists = Lists::upload(&[2, 2], &dev);
        let loss = cs_kd_loss(z.clone(), &lists, 4.0);
        let anchors = Tensor::<2>::from_floats([[1.0, 0.0, -1.0], [2.0, -1.0, 0.0]], &dev);
        let partners = Tensor::<2>::from_floats([[0.5, 0.2, 0.1], [0.0, 3.0, 1.0]], &dev);
        let want = kd_loss(anchors, partners, 4.0).into_scalar::<f32>();
        assert!((loss.clone().into_scalar::<f32>() - want).abs() < 1e-6);
        let g = grad_of(&loss, &z);
        assert!(g[..3].iter().any(|v| v.abs() > 1e-6), "anchors learn");
        assert!(g[3..6].iter().chain(&g[9..]).all(|&v| v == 0.0), "{g:?}");
    }
}
