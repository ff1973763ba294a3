//! Hidden-state matching through a learned projection, for models of different widths (the
//! DistilBERT / TinyBERT / TextBrewer form): MSE or cosine between projected student states and
//! teacher states.

use burn::nn::loss::{MseLoss, Reduction};
use burn::prelude::*;
use serde::{Deserialize, Serialize};

use super::method::{Built, MethodInfo};
use super::ops::normalize_rows;
use super::role::RoleRef;
use super::term::{default_embedding_tap, BuildContext, KnowledgeTerm, Pair, Side, StepContext};
use super::Aux;
use crate::error::{DistillError, Result};
use crate::models::Feature;

/// Catalogue entry.
pub const INFO: MethodInfo = MethodInfo {
    name: "hidden",
    family: "intermediate",
    description: "hidden-state MSE or cosine through a trainable linear projection (student width → teacher width)",
    citation: "Sanh et al., DistilBERT, 2019 (cosine); Jiao et al., TinyBERT, EMNLP 2020 (projected MSE)",
    taps: "student_tap, teacher_tap: flat, or sequences of the same length (every position a row; default embedding)",
};

/// Loss between projected student and teacher states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HiddenLoss {
    /// Mean squared error over all elements (TinyBERT).
    Mse,
    /// `mean_b (1 − cos(s_b, t_b))` (DistilBERT's `CosineEmbeddingLoss` with target 1).
    Cosine,
}

/// `method = "hidden"`.
///
/// # Formula
/// `h = W f_s` (trainable linear projection, created only when the widths differ, or when
/// `project = true`); MSE: `mean (h − f_t)²`; cosine: `mean_b (1 − ⟨h_b, t_b⟩ / (‖h_b‖·‖t_b‖))`.
///
/// # Conventions
/// `torch.nn.MSELoss()` / `torch.nn.CosineEmbeddingLoss()` with target 1 (norms clamped at
/// 1e-12 here; PyTorch adds 1e-8 inside the square root, a difference below float32 resolution
/// for non-degenerate states). Sequence taps `[B, L, D]` (a language model's hidden states) are
/// matched position by position: each of the `B · L` positions is a row, as TinyBERT and
/// TextBrewer's hidden-state losses do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HiddenConfig {
    /// Weight in the objective (default 1).
    #[serde(default = "super::defaults::one")]
    pub weight: f64,
    /// `mse` (default) or `cosine`.
    #[serde(default = "mse")]
    pub loss: HiddenLoss,
    /// Always project, even when widths match (default false).
    #[serde(default)]
    pub project: bool,
    /// Student tap (default embedding).
    #[serde(default = "default_embedding_tap")]
    pub student_tap: String,
    /// Teacher tap (default embedding).
    #[serde(default = "default_embedding_tap")]
    pub teacher_tap: String,
    /// The trainable role the term trains (default: the recipe's `student`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub student: Option<RoleRef>,
    /// The role it learns from (default: the only `[[teacher]]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub teacher: Option<RoleRef>,
}

fn mse() -> HiddenLoss {
    HiddenLoss::Mse
}

/// The loss between (already projected) student states and teacher states.
pub fn hidden_loss(student: Tensor<2>, teacher: Tensor<2>, loss: HiddenLoss) -> Tensor<1> {
    match loss {
        HiddenLoss::Mse => MseLoss::new().forward(student, teacher, Reduction::Mean),
        HiddenLoss::Cosine => (normalize_rows(student) * normalize_rows(teacher))
            .sum_dim(1)
            .neg()
            .add_scalar(1.0)
            .mean(),
    }
}

impl HiddenConfig {
    pub(crate) fn build(&self, ctx: &BuildContext<'_>, aux: &mut Vec<Aux>) -> Result<Built> {
        let student = ctx.student(&self.student)?;
        let teacher = ctx.teacher(&self.teacher)?;
        let mut s = ctx.shape(Side::Student(student), &self.student_tap)?;
        let mut t = ctx.shape(Side::Teacher(teacher), &self.teacher_tap)?;
        if s.len() == 3 && t.len() == 3 && s[..2] == t[..2] {
            // sequences: one row per position
            s = vec![s[0] * s[1], s[2]];
            t = vec![t[0] * t[1], t[2]];
        }
        if s.len() != 2 || t.len() != 2 {
            return Err(DistillError::Shape {
                context: format!(
                    "hidden: student tap '{}' vs teacher tap '{}' must be flat [B, D], or sequences [B, L, D] of the same length",
                    self.student_tap, self.teacher_tap
                ),
                expected: t,
                got: s,
                fix: "; for feature maps use `fitnet` (conv connector) or `at`".into(),
            });
        }
        let projection = (self.project || s[1] != t[1]).then(|| {
            aux.push(
                Aux::connector(&s, &t, ctx.device).expect("flat taps get a linear projection"),
            );
            aux.len() - 1
        });
        Ok(Built::new(
            self.weight,
            Hidden {
                at: Pair { student, teacher },
                cfg: self.clone(),
                projection,
            },
        ))
    }
}

/// A flat feature as it is; a sequence `[B, L, D]` as `[B · L, D]`.
fn rows(f: Feature) -> Tensor<2> {
    match f {
        Feature::Seq { x, .. } => {
            let [b, l, d] = x.dims();
            x.reshape([b * l, d])
        }
        other => other.flat(),
    }
}

struct Hidden {
    at: Pair,
    cfg: HiddenConfig,
    projection: Option<usize>,
}

impl KnowledgeTerm for Hidden {
    fn forward(&self, aux: &[Aux], ctx: &StepContext<'_>) -> Vec<(String, Tensor<1>)> {
        let c = &self.cfg;
        let s = Feature::Flat(rows(ctx.student(self.at.student, &c.student_tap)));
        let s = match self.projection {
            Some(i) => aux[i].forward(s),
            None => s,
        };
        let t = rows(ctx.teacher(self.at.teacher, &c.teacher_tap));
        vec![("hidden".into(), hidden_loss(s.flat(), t, c.loss))]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::knowledge::testing::{fixture, grad_of, tensor2};

    #[test]
    fn cosine_matches_pytorch() {
        let dev = Device::flex().autodiff();
        for case in fixture("hidden_cosine").cases() {
            let s = tensor2(case.input("student"), &dev).require_grad();
            let loss = hidden_loss(
                s.clone(),
                tensor2(case.input("teacher"), &dev),
                HiddenLoss::Cosine,
            );
            case.assert_value(loss.clone());
            case.assert_grad("student", grad_of(&loss, &s));
        }
    }

    #[test]
    fn mse_matches_pytorch() {
        let dev = Device::flex().autodiff();
        for case in fixture("output_l2").cases() {
            let s = tensor2(case.input("student"), &dev).require_grad();
            let loss = hidden_loss(
                s.clone(),
                tensor2(case.input("teacher"), &dev),
                HiddenLoss::Mse,
            );
            case.assert_value(loss.clone());
            case.assert_grad("student", grad_of(&loss, &s));
        }
    }
}
