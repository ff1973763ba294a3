//! Probabilistic knowledge transfer: match conditional probability distributions of the
//! batch's cosine similarities.

use burn::prelude::*;
use serde::{Deserialize, Serialize};

use super::method::{Built, MethodInfo};
use super::role::RoleRef;
use super::term::{default_embedding_tap, BuildContext, KnowledgeTerm, Pair, Side, StepContext};
use super::Aux;
use crate::error::Result;

/// Catalogue entry.
pub const INFO: MethodInfo = MethodInfo {
    name: "pkt",
    family: "relation",
    description: "probabilistic KT: KL between row-normalised cosine-similarity distributions of the batch",
    citation: "Passalis & Tefas, Learning Deep Representations with Probabilistic Knowledge Transfer, ECCV 2018",
    taps: "student_tap, teacher_tap: any (default embedding)",
};

/// `method = "pkt"`: PKT.
///
/// # Formula
/// Rows `x / (‖x‖ + 1e-7)`; `S = (x xᵀ + 1) / 2`, row-normalised to sum 1 (diagonal kept);
/// `L = mean over B² of P_t · log((P_t + 1e-7) / (P_s + 1e-7))`.
///
/// # Conventions (RepDistiller `distiller_zoo/PKT.py`)
/// eps 1e-7 in both places; widths may differ. Weight 30000 as RepDistiller's recipe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PktConfig {
    /// Weight in the objective (default 30000).
    #[serde(default = "default_weight")]
    pub weight: f64,
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
    30000.0
}

fn conditional(x: Tensor<2>) -> Tensor<2> {
    let x = x.clone() / x.powi_scalar(2).sum_dim(1).sqrt().add_scalar(1e-7);
    let sim = x
        .clone()
        .matmul(x.transpose())
        .add_scalar(1.0)
        .div_scalar(2.0);
    sim.clone() / sim.sum_dim(1)
}

/// PKT loss (see [`PktConfig`]).
pub fn pkt_loss(student: Tensor<2>, teacher: Tensor<2>) -> Tensor<1> {
    let ps = conditional(student);
    let pt = conditional(teacher);
    (pt.clone() * (pt.add_scalar(1e-7).log() - ps.add_scalar(1e-7).log())).mean()
}

impl PktConfig {
    pub(crate) fn build(&self, ctx: &BuildContext<'_>, _aux: &mut Vec<Aux>) -> Result<Built> {
        let student = ctx.student(&self.student)?;
        let teacher = ctx.teacher(&self.teacher)?;
        ctx.shape(Side::Student(student), &self.student_tap)?;
        ctx.shape(Side::Teacher(teacher), &self.teacher_tap)?;
        Ok(Built::new(
            self.weight,
            Pkt(self.clone(), Pair { student, teacher }),
        ))
    }
}

struct Pkt(PktConfig, Pair);

impl KnowledgeTerm for Pkt {
    fn forward(&self, _aux: &[Aux], ctx: &StepContext<'_>) -> Vec<(String, Tensor<1>)> {
        let c = &self.0;
        let s = ctx.student(self.1.student, &c.student_tap).flat();
        let t = ctx.teacher(self.1.teacher, &c.teacher_tap).flat();
        vec![("pkt".into(), pkt_loss(s, t))]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::knowledge::testing::{fixture, grad_of, tensor2};

    #[test]
    fn value_and_gradient_match_repdistiller() {
        let dev = Device::flex().autodiff();
        for case in fixture("pkt").cases() {
            let s = tensor2(case.input("student"), &dev).require_grad();
            let t = tensor2(case.input("teacher"), &dev);
            let loss = pkt_loss(s.clone(), t);
            case.assert_value(loss.clone());
            case.assert_grad("student", grad_of(&loss, &s));
        }
    }

    #[test]
    fn identical_features_are_the_minimum() {
        let dev = Device::flex().autodiff();
        let f =
            Tensor::<2>::from_floats([[1.0, 2.0, 0.0], [0.5, -1.0, 2.0], [3.0, 0.0, 1.0]], &dev)
                .require_grad();
        let loss = pkt_loss(f.clone(), f.clone().detach());
        assert!(loss.clone().into_scalar::<f32>().abs() < 1e-6);
        assert!(grad_of(&loss, &f).iter().all(|g| g.is_finite()));
    }
}
