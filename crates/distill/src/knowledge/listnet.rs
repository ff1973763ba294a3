//! ListNet: cross-entropy between two top-one probability distributions over each query's
//! list — the relevance grades' and the student's scores' (`listnet`, the ranking task's
//! supervised loss), or a teacher's scores' and the student's (`listnet-kd`, listwise ranking
//! distillation, in `listnet_kd.rs`).

use burn::prelude::*;
use serde::{Deserialize, Serialize};

use super::method::{Built, MethodInfo};
use super::role::RoleRef;
use super::term::{BuildContext, KnowledgeTerm, Side, StepContext};
use super::Aux;
use crate::error::{DistillError, Result};
use crate::tasks::Task;

/// Catalogue entry of `listnet`.
pub const INFO: MethodInfo = MethodInfo {
    name: "listnet",
    family: "supervised",
    description: "ListNet: listwise cross-entropy between the relevance grades' and the student's top-one probabilities (ranking)",
    citation: "Cao et al., Learning to Rank: From Pairwise Approach to Listwise Approach (ListNet), ICML 2007; allRank",
    taps: "student logits (one score per candidate)",
};

/// `method = "listnet"`: ListNet against the relevance grades, `listnet_loss(scores, grades)`
/// over each batch's lists (see [`listnet_loss`] for the formula and conventions). The ranking
/// task's supervised loss.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListNetConfig {
    /// Weight in the objective (default 1).
    #[serde(default = "super::defaults::one")]
    pub weight: f64,
    /// `eps` inside the log (default 1e-10, allRank's).
    #[serde(default = "ListNetConfig::default_eps")]
    pub eps: f64,
    /// The trainable role the term trains (default: the recipe's `student`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub student: Option<RoleRef>,
}

impl ListNetConfig {
    /// allRank's `DEFAULT_EPS`.
    pub fn default_eps() -> f64 {
        1e-10
    }
}

/// Refuses a ListNet term outside the ranking task, or on models that do not give one score
/// per candidate.
pub(crate) fn check_scores(ctx: &BuildContext<'_>, side: Side, method: &str) -> Result<()> {
    if ctx.task != Task::Ranking {
        return Err(DistillError::Config(format!(
            "`{method}` ranks lists of candidates and applies to task = \"ranking\" only, but this experiment's task is \"{}\"",
            ctx.task.name()
        )));
    }
    let shape = ctx.shape(side, "logits")?;
    if shape.get(1) != Some(&1) {
        return Err(DistillError::Shape {
            context: format!("{method}: model output (one score per candidate)"),
            expected: vec![shape.first().copied().unwrap_or(0), 1],
            got: shape,
            fix: "; ranking models give one score per candidate".into(),
        });
    }
    Ok(())
}

impl ListNetConfig {
    pub(crate) fn build(&self, ctx: &BuildContext<'_>, _aux: &mut Vec<Aux>) -> Result<Built> {
        ctx.require_task(Task::Ranking, "listnet")?;
        let student = ctx.student(&self.student)?;
        check_scores(ctx, Side::Student(student), "listnet")?;
        Ok(Built::new(
            self.weight,
            ListNet {
                eps: self.eps,
                student,
                teacher: None,
            },
        ))
    }
}

/// ListNet of a student role against the grades (`teacher: None`) or a teacher role's scores.
pub(crate) struct ListNet {
    pub(crate) eps: f64,
    pub(crate) student: usize,
    pub(crate) teacher: Option<usize>,
}

impl KnowledgeTerm for ListNet {
    fn forward(&self, _aux: &[Aux], ctx: &StepContext<'_>) -> Vec<(String, Tensor<1>)> {
        let lists = ctx.lists();
        let s = lists.arrange(ctx.students[self.student].logits.clone());
        let (name, t) = match self.teacher {
            None => {
                let g = ctx.targets.relevance();
                let b = g.dims()[0];
                ("listnet", lists.arrange(g.reshape([b, 1])))
            }
            Some(t) => ("listnet-kd", lists.arrange(ctx.teacher_logits(t))),
        };
        vec![(name.into(), listnet_loss(s, t, lists.pad(), self.eps))]
    }
}

/// Softmax over each row restricted to the unpadded entries (padded entries get probability 0
/// and no gradient; a fully padded row is all zeros).
fn masked_softmax(x: Tensor<2>, keep: Tensor<2>) -> Tensor<2> {
    let row_max = (x.clone() * keep.clone() + keep.clone().neg().add_scalar(1.0).mul_scalar(-1e30))
        .max_dim(1)
        .detach();
    // Padded entries are zeroed before exp (finite even for a fully padded row), then masked.
    let e = ((x - row_max) * keep.clone()).exp() * keep;
    e.clone() / e.sum_dim(1).clamp_min(1e-30)
}

/// `mean over queries of −Σ_j softmax(t)_j · log(softmax(s)_j + eps)`.
///
/// # Conventions (teacher scores as the targets)
/// `eps` inside the log is where the references differ: allRank (`models/losses/listNet.py`,
/// `eps = DEFAULT_EPS = 1e-10`) and matchmaker (`matchmaker/losses/listnet.py`, `ListNetLoss`,
/// `eps = 1e-6`, no padding) both compute `−Σ softmax(t) · log(softmax(s) + eps)`; pass the
/// one to reproduce (the smaller it is, the harder near-zero student probabilities are
/// punished). Entries with `pad = 1` are excluded from both softmaxes (zero probability, zero
/// gradient) while every row still counts in the mean; a fully padded row contributes 0
/// (allRank would give NaN).
///
/// # Shapes
/// scores and padding `[Q, N]`; output `[1]`.
pub fn listnet_loss(student: Tensor<2>, teacher: Tensor<2>, pad: Tensor<2>, eps: f64) -> Tensor<1> {
    let keep = pad.neg().add_scalar(1.0);
    let pt = masked_softmax(teacher, keep.clone());
    let ps = masked_softmax(student, keep);
    (pt * ps.add_scalar(eps).log()).sum_dim(1).neg().mean()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::knowledge::testing::{fixture, grad_of, tensor2};

    /// Cases with allRank's eps (1e-10) and matchmaker's (1e-6), the latter on scores spread
    /// widely enough that the two eps give different values.
    #[test]
    fn value_and_gradient_match_allrank_and_matchmaker() {
        let dev = Device::flex().autodiff();
        for case in fixture("listnet").cases() {
            let s = tensor2(case.input("student"), &dev).require_grad();
            let loss = listnet_loss(
                s.clone(),
                tensor2(case.input("teacher"), &dev),
                tensor2(case.input("pad"), &dev),
                case.param("eps"),
            );
            case.assert_value(loss.clone());
            case.assert_grad("student", grad_of(&loss, &s));
        }
    }

    #[test]
    fn fully_padded_rows_are_finite_and_padding_gets_no_gradient() {
        let dev = Device::flex().autodiff();
        let s = Tensor::<2>::from_floats([[1.0, 2.0, 3.0], [0.5, 0.1, 0.2]], &dev).require_grad();
        let t = Tensor::<2>::from_floats([[3.0, 2.0, 1.0], [1.0, 1.0, 1.0]], &dev);
        let pad = Tensor::<2>::from_floats([[0.0, 0.0, 1.0], [1.0, 1.0, 1.0]], &dev);
        let loss = listnet_loss(s.clone(), t, pad, 1e-10);
        assert!(loss.clone().into_scalar::<f32>().is_finite());
        let g = grad_of(&loss, &s);
        assert!(g.iter().all(|v| v.is_finite()));
        assert_eq!(&g[2..], &[0.0, 0.0, 0.0, 0.0]);
    }
}
