//! Margin-MSE for ranking distillation: match the teacher's score margin between a relevant and
//! a non-relevant document (`method = "margin-mse"`).

use burn::prelude::*;
use serde::{Deserialize, Serialize};

use super::method::{Built, MethodInfo};
use super::role::RoleRef;
use super::term::{BuildContext, KnowledgeTerm, Side, StepContext};
use super::Aux;
use crate::error::Result;
use crate::tasks::Task;

/// Catalogue entry.
pub const INFO: MethodInfo = MethodInfo {
    name: "margin-mse",
    family: "ranking",
    description: "Margin-MSE: the student's score margin between each list's relevant candidate and every other candidate regresses onto the teacher's margin",
    citation: "Hofstätter et al., Improving Efficient Neural Ranking Models with Cross-Architecture Knowledge Distillation, 2020 (matchmaker)",
    taps: "student logits, teacher logits (one score per candidate); the lists' relevance grades",
};

/// `method = "margin-mse"`: [`margin_mse_lists`] over each batch's lists. Needs the relevance
/// grades (to know each list's relevant candidate) and a teacher.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MarginMseConfig {
    /// Weight in the objective (default 1).
    #[serde(default = "super::defaults::one")]
    pub weight: f64,
    /// The trainable role the term trains (default: the recipe's `student`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub student: Option<RoleRef>,
    /// The role it learns from (default: the only `[[teacher]]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub teacher: Option<RoleRef>,
}

impl MarginMseConfig {
    pub(crate) fn build(&self, ctx: &BuildContext<'_>, _aux: &mut Vec<Aux>) -> Result<Built> {
        ctx.require_task(Task::Ranking, "margin-mse")?;
        let student = ctx.student(&self.student)?;
        let teacher = ctx.teacher(&self.teacher)?;
        super::listnet::check_scores(ctx, Side::Student(student), "margin-mse")?;
        super::listnet::check_scores(ctx, Side::Teacher(teacher), "margin-mse")?;
        Ok(Built::new(self.weight, MarginMse { student, teacher }))
    }
}

struct MarginMse {
    student: usize,
    teacher: usize,
}

impl KnowledgeTerm for MarginMse {
    fn forward(&self, _aux: &[Aux], ctx: &StepContext<'_>) -> Vec<(String, Tensor<1>)> {
        let lists = ctx.lists();
        let s = lists.arrange(ctx.students[self.student].logits.clone());
        let t = lists.arrange(ctx.teacher_logits(self.teacher));
        let g = ctx.targets.relevance();
        let b = g.dims()[0];
        let g = lists.arrange(g.reshape([b, 1]));
        vec![("margin-mse".into(), margin_mse_lists(s, t, g, lists.pad()))]
    }
}

/// Margin-MSE over lists: each list's relevant candidate `p` (its highest grade; the first of
/// a tie) against every other real candidate `j`, `mean over (list, j) of
/// ((s_p − s_j) − (t_p − t_j))²` — [`margin_mse_loss`] over the triples `(p, j)` the lists
/// hold.
///
/// # Shapes
/// scores, grades and padding `[Q, N]` (padding 1 at padded slots); output `[1]`.
pub fn margin_mse_lists(
    student: Tensor<2>,
    teacher: Tensor<2>,
    grades: Tensor<2>,
    pad: Tensor<2>,
) -> Tensor<1> {
    let keep = pad.clone().neg().add_scalar(1.0);
    // the relevant candidate: the highest grade among the real slots
    let anchor = (grades - pad.mul_scalar(1e9)).argmax(1);
    let s_p = student.clone().gather(1, anchor.clone());
    let t_p = teacher.clone().gather(1, anchor);
    let diff = (s_p - student) - (t_p - teacher);
    // every real slot but the anchor (whose difference is 0) is one triple
    let triples = keep
        .clone()
        .sum()
        .sub_scalar(keep.dims()[0] as f64)
        .clamp_min(1.0);
    (diff.powi_scalar(2) * keep).sum() / triples
}

/// `mean_b ((s⁺ − s⁻) − (t⁺ − t⁻))²`.
///
/// # Conventions (Hofstätter et al., 2020; matchmaker `losses/msmargin.py`)
/// Plain mean over the batch, no ½.
///
/// # Shapes
/// each score `[B]`; output `[1]`.
pub fn margin_mse_loss(
    s_pos: Tensor<1>,
    s_neg: Tensor<1>,
    t_pos: Tensor<1>,
    t_neg: Tensor<1>,
) -> Tensor<1> {
    ((s_pos - s_neg) - (t_pos - t_neg)).powi_scalar(2).mean()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::knowledge::testing::{fixture, grad_of, tensor};

    #[test]
    fn value_and_gradients_match_matchmaker() {
        let dev = Device::flex().autodiff();
        for case in fixture("margin_mse").cases() {
            let sp = tensor::<1>(case.input("s_pos"), &dev).require_grad();
            let sn = tensor::<1>(case.input("s_neg"), &dev).require_grad();
            let loss = margin_mse_loss(
                sp.clone(),
                sn.clone(),
                tensor(case.input("t_pos"), &dev),
                tensor(case.input("t_neg"), &dev),
            );
            case.assert_value(loss.clone());
            let g = loss.backward();
            case.assert_grad(
                "s_pos",
                sp.grad(&g).unwrap().into_data().iter::<f32>().collect(),
            );
            case.assert_grad(
                "s_neg",
                sn.grad(&g).unwrap().into_data().iter::<f32>().collect(),
            );
        }
    }

    /// The list form equals the triple form (checked against matchmaker above) on the triples
    /// the lists hold, in value and gradient; padding and lists of one count nothing.
    #[test]
    fn lists_are_their_triples() {
        let dev = Device::flex().autodiff();
        // list 1: relevant candidate at slot 1, three real slots; list 2: two real slots,
        // relevant at slot 0, one padded slot
        let s = [[0.3f32, 1.2, -0.4], [0.8, 0.1, 9.0]];
        let t = [[0.5f32, 2.0, 0.1], [1.5, -0.2, 7.0]];
        let grades = Tensor::<2>::from_floats([[0.0, 2.0, 1.0], [1.0, 0.0, 5.0]], &dev);
        let pad = Tensor::<2>::from_floats([[0.0, 0.0, 0.0], [0.0, 0.0, 1.0]], &dev);
        let sl = Tensor::<2>::from_floats(s, &dev).require_grad();
        let loss = margin_mse_lists(sl.clone(), Tensor::from_floats(t, &dev), grades, pad);
        // the triples (p, j): (1, 0), (1, 2) of list 1 and (0, 1) of list 2
        let st =
            Tensor::<1>::from_floats([s[0][1], s[0][1], s[1][0], s[0][0], s[0][2], s[1][1]], &dev)
                .require_grad();
        let pos = st.clone().narrow(0, 0, 3);
        let neg = st.clone().narrow(0, 3, 3);
        let want = margin_mse_loss(
            pos,
            neg,
            Tensor::from_floats([t[0][1], t[0][1], t[1][0]], &dev),
            Tensor::from_floats([t[0][0], t[0][2], t[1][1]], &dev),
        );
        let (a, b) = (
            loss.clone().into_scalar::<f32>(),
            want.clone().into_scalar::<f32>(),
        );
        assert!((a - b).abs() < 1e-6, "{a} vs {b}");
        let g = grad_of(&loss, &sl);
        let gt = grad_of(&want, &st);
        // each list entry's gradient is the sum over the triples it takes part in
        let expect = [gt[3], gt[0] + gt[1], gt[4], gt[2], gt[5], 0.0];
        for (x, y) in g.iter().zip(expect) {
            assert!((x - y).abs() < 1e-6, "{g:?} vs {expect:?}");
        }
    }
}
