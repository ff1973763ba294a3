//! Correlation congruence: match the correlation between consecutive samples' embeddings.

use burn::prelude::*;
use serde::{Deserialize, Serialize};

use super::method::{Built, MethodInfo};
use super::ops::normalize_rows;
use super::role::RoleRef;
use super::term::{default_embedding_tap, BuildContext, KnowledgeTerm, Pair, Side, StepContext};
use super::Aux;
use crate::error::{DistillError, Result};

/// Catalogue entry.
pub const INFO: MethodInfo = MethodInfo {
    name: "cc",
    family: "relation",
    description:
        "correlation congruence over trainable L2-normalised embedding heads (RepDistiller's form)",
    citation: "Peng et al., Correlation Congruence for Knowledge Distillation, ICCV 2019",
    taps: "student_tap, teacher_tap: flat (default embedding)",
};

/// `method = "cc"`: CC.
///
/// # Formula
/// Embeddings `e = normalize(W f)` by a trainable linear head on each side (both trained with
/// the student); `d = |e_s − e_t|`; `L = mean over the B − 1 consecutive pairs (i, i+1) of
/// Σ_k d_i[k] · d_{i+1}[k]` — it depends on batch order, as the reference does.
///
/// # Conventions (RepDistiller `distiller_zoo/CC.py` with its `Embed` heads, `feat_dim` 128)
/// Weight 0.02 as RepDistiller's recipe. Needs a batch of at least 2.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CcConfig {
    /// Weight in the objective (default 0.02).
    #[serde(default = "default_weight")]
    pub weight: f64,
    /// Width of the embedding heads (default 128).
    #[serde(default = "default_dim")]
    pub feat_dim: usize,
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

fn default_weight() -> f64 {
    0.02
}
fn default_dim() -> usize {
    128
}

/// CC loss on already-embedded features (see [`CcConfig`]).
pub fn cc_loss(student: Tensor<2>, teacher: Tensor<2>) -> Tensor<1> {
    let [b, n] = student.dims();
    let d = (student - teacher).abs();
    let a = d.clone().slice([0..b - 1, 0..n]);
    let c = d.slice([1..b, 0..n]);
    (a * c).sum_dim(1).mean()
}

impl CcConfig {
    pub(crate) fn build(&self, ctx: &BuildContext<'_>, aux: &mut Vec<Aux>) -> Result<Built> {
        let student = ctx.student(&self.student)?;
        let teacher = ctx.teacher(&self.teacher)?;
        let s = ctx.shape(Side::Student(student), &self.student_tap)?;
        let t = ctx.shape(Side::Teacher(teacher), &self.teacher_tap)?;
        if self.feat_dim == 0 {
            return Err(DistillError::Config(
                "cc.feat_dim must be at least 1".into(),
            ));
        }
        let flat = |shape: &[usize]| shape[1..].iter().product::<usize>();
        let head = |d: usize| Aux::connector(&[2, d], &[2, self.feat_dim], ctx.device);
        aux.push(head(flat(&s))?);
        aux.push(head(flat(&t))?);
        Ok(Built::new(
            self.weight,
            Cc {
                at: Pair { student, teacher },
                cfg: self.clone(),
                heads: aux.len() - 2,
            },
        ))
    }
}

struct Cc {
    at: Pair,
    cfg: CcConfig,
    heads: usize,
}

impl KnowledgeTerm for Cc {
    fn forward(&self, aux: &[Aux], ctx: &StepContext<'_>) -> Vec<(String, Tensor<1>)> {
        let c = &self.cfg;
        let s = aux[self.heads]
            .forward(ctx.student(self.at.student, &c.student_tap))
            .flat();
        let t = aux[self.heads + 1]
            .forward(ctx.teacher(self.at.teacher, &c.teacher_tap))
            .flat();
        vec![("cc".into(), cc_loss(normalize_rows(s), normalize_rows(t)))]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::knowledge::testing::{fixture, grad_of, tensor2};

    #[test]
    fn value_and_gradients_match_repdistiller() {
        let dev = Device::flex().autodiff();
        for case in fixture("cc").cases() {
            let s = tensor2(case.input("student"), &dev).require_grad();
            let t = tensor2(case.input("teacher"), &dev).require_grad();
            let loss = cc_loss(s.clone(), t.clone());
            case.assert_value(loss.clone());
            let grads = loss.backward();
            let flat = |x: &Tensor<2>| {
                x.grad(&grads)
                    .unwrap()
                    .into_data()
                    .iter::<f32>()
                    .collect::<Vec<_>>()
            };
            case.assert_grad("student", flat(&s));
            case.assert_grad("teacher", flat(&t));
        }
    }

    #[test]
    fn identical_embeddings_give_zero() {
        let dev = Device::flex().autodiff();
        let e = Tensor::<2>::from_floats([[1.0, 2.0], [0.5, -1.0]], &dev).require_grad();
        let loss = cc_loss(e.clone(), e.clone().detach());
        assert_eq!(loss.clone().into_scalar::<f32>(), 0.0);
        assert!(grad_of(&loss, &e).iter().all(|g| g.is_finite()));
    }
}
