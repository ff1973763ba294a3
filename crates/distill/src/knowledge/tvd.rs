//! Token-level total variation distance between teacher and student distributions.
//!
//! `method = "tvd"` trains a language model on it, teacher-forced on the data's windows.

use burn::prelude::*;
use burn::tensor::activation::softmax;
use serde::{Deserialize, Serialize};

use super::method::{Built, MethodInfo};
use super::ops::token_reduce;
use super::role::RoleRef;
use super::sequence::TokenPair;
use super::term::{BuildContext, KnowledgeTerm, StepContext};
use super::Aux;
use crate::error::Result;

/// Catalogue entry.
pub const INFO: MethodInfo = MethodInfo {
    name: "tvd",
    family: "response (sequence)",
    description: "token-level total variation distance between the next-token distributions",
    citation:
        "Wen et al., f-Divergence Minimization for Sequence-Level Knowledge Distillation, ACL 2023",
    taps: "student logits, teacher logits (language models)",
};

/// `method = "tvd"`: [`tvd_loss`] at every position that has a target.
///
/// # Defaults
/// T = 1, weight 1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TvdConfig {
    /// Weight in the objective (default 1).
    #[serde(default = "super::defaults::one")]
    pub weight: f64,
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

impl TvdConfig {
    pub(crate) fn build(&self, ctx: &BuildContext<'_>, _aux: &mut Vec<Aux>) -> Result<Built> {
        let pair = TokenPair::build(ctx, "tvd", &self.student, &self.teacher, self.temperature)?;
        Ok(Built::new(
            self.weight,
            Tvd {
                pair,
                t: self.temperature,
            },
        ))
    }
}

struct Tvd {
    pair: TokenPair,
    t: f64,
}

impl KnowledgeTerm for Tvd {
    fn forward(&self, _aux: &[Aux], ctx: &StepContext<'_>) -> Vec<(String, Tensor<1>)> {
        let (s, t, labels) = self.pair.read(ctx);
        vec![("tvd".into(), tvd_loss(s, t, Some(labels), self.t))]
    }
}

/// Per token `½ Σ_v |p_t(v) − p_s(v)|` with `p = softmax(z / T)`, reduced over valid tokens as
/// [`super::gkd::generalized_jsd_loss`].
///
/// # Conventions
/// The textbook definition (bounded in `[0, 1]` per token; used for LLM distillation by
/// DistillKit and Wen et al., ACL 2023, "f-divergence minimization for sequence-level KD").
///
/// # Shapes
/// logits `[B, L, V]`, labels `[B, L]`; output `[1]`.
pub fn tvd_loss(
    student: Tensor<3>,
    teacher: Tensor<3>,
    labels: Option<Tensor<2, Int>>,
    temperature: f64,
) -> Tensor<1> {
    let p = softmax(teacher.div_scalar(temperature), 2);
    let q = softmax(student.div_scalar(temperature), 2);
    let [b, l, _] = p.dims();
    token_reduce(
        (p - q).abs().sum_dim(2).mul_scalar(0.5).reshape([b, l]),
        labels,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::knowledge::testing::{fixture, grad_of, int_tensor, tensor};

    #[test]
    fn value_and_gradient_match_the_definition() {
        let dev = Device::flex().autodiff();
        for case in fixture("tvd").cases() {
            let s = tensor::<3>(case.input("student"), &dev).require_grad();
            let t = tensor::<3>(case.input("teacher"), &dev);
            let labels = int_tensor::<2>(case.input("labels"), &dev);
            let loss = tvd_loss(s.clone(), t, Some(labels), case.param("temperature"));
            case.assert_value(loss.clone());
            case.assert_grad("student", grad_of(&loss, &s));
        }
    }
}
