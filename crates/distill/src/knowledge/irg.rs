//! Instance relationship graph (IRG): the student matches the teacher's outputs (vertices), the
//! batch's pairwise distances at two feature maps and the embedding (edges), and how each
//! sample moves between the two maps (transformation).

use burn::prelude::*;
use burn::tensor::module::adaptive_avg_pool2d;
use serde::{Deserialize, Serialize};

use super::method::{Built, MethodInfo};
use super::role::RoleRef;
use super::term::{default_embedding_tap, BuildContext, KnowledgeTerm, Side, StepContext};
use super::Aux;
use crate::error::{DistillError, Result};

/// Catalogue entry.
pub const INFO: MethodInfo = MethodInfo {
    name: "irg",
    family: "relation",
    description: "instance relationship graph: MSE of outputs (vertices), of max-normalised squared pairwise distances at two maps and the embedding (edges), and of each sample's distance between the two maps (transformation)",
    citation: "Liu et al., Knowledge Distillation via Instance Relationship Graph, CVPR 2019",
    taps: "student_taps, teacher_taps: two feature maps, shallow then deep (default stage2, stage3); student_tap, teacher_tap: the embedding; logits",
};

/// `method = "irg"`: IRG.
///
/// # Formula
/// Edge matrix of a feature `x` (flattened per sample): `E_ij = max(‖x_i − x_j‖², 1e-12)`,
/// `E_ii = 0`, divided by its largest entry. Transformation of maps `a` (shallow) and `b`:
/// `a` average-pooled to `b`'s size, and `b`'s channel pairs averaged when it has twice `a`'s
/// channels; `T_i = max(‖a_i − b_i‖², 1e-12)`, divided by its largest entry.
/// `L = w_v·MSE(z_s, z_t) + w_e·(MSE(E(a_s), E(a_t)) + MSE(E(b_s), E(b_t)) + MSE(E(e_s), E(e_t)))/3
///  + w_t·MSE(T_s, T_t)`, with `z` the logits and `e` the embedding.
///
/// # Conventions (Knowledge-Distillation-Zoo `kd_losses/irg.py`, after the authors' Caffe code)
/// Squared distances; every MSE is a mean over its elements; the teacher side has no gradient;
/// defaults `w_v = 0.1`, `w_e = 5`, `w_t = 5`. With `w_t = 0` the maps need no channel or size
/// relation.
///
/// # Shapes
/// maps `[B, C, H, W]` (the deep one with `C` or `2C` channels and at most the shallow one's
/// size); embedding `[B, D]`; logits `[B, K]`; output `[1]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IrgConfig {
    /// Weight in the objective (default 1; the three inner weights are inside).
    #[serde(default = "super::defaults::one")]
    pub weight: f64,
    /// Vertex weight `w_v` (default 0.1).
    #[serde(default = "point_one")]
    pub w_vertex: f64,
    /// Edge weight `w_e` (default 5).
    #[serde(default = "five")]
    pub w_edge: f64,
    /// Transformation weight `w_t` (default 5).
    #[serde(default = "five")]
    pub w_transform: f64,
    /// Two student feature maps, shallow then deep (default stage2, stage3).
    #[serde(default = "two_stages")]
    pub student_taps: Vec<String>,
    /// Two teacher feature maps, shallow then deep (default stage2, stage3).
    #[serde(default = "two_stages")]
    pub teacher_taps: Vec<String>,
    /// Student embedding (default embedding).
    #[serde(default = "default_embedding_tap")]
    pub student_tap: String,
    /// Teacher embedding (default embedding).
    #[serde(default = "default_embedding_tap")]
    pub teacher_tap: String,
    /// The trainable role the term trains (default: the recipe's `student`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub student: Option<RoleRef>,
    /// The role it learns from (default: the only `[[teacher]]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub teacher: Option<RoleRef>,
}

fn point_one() -> f64 {
    0.1
}
fn five() -> f64 {
    5.0
}
fn two_stages() -> Vec<String> {
    vec!["stage2".into(), "stage3".into()]
}

/// The max-normalised squared-distance matrix of a batch of flattened features `[B, D]`.
fn edges(x: Tensor<2>) -> Tensor<2> {
    let [b, _] = x.dims();
    let sq = x.clone().powi_scalar(2).sum_dim(1); // [B, 1]
    let prod = x.clone().matmul(x.transpose());
    let d = (sq.clone() + sq.transpose() - prod.mul_scalar(2.0)).clamp_min(1e-12);
    let off = Tensor::<2>::eye(b, &d.device()).neg().add_scalar(1.0);
    let d = d * off;
    let max = d.clone().max().reshape([1, 1]);
    d / max
}

/// The max-normalised squared distance of each sample between a shallow map and a deep one.
fn transformation(a: Tensor<4>, b: Tensor<4>) -> Tensor<1> {
    let [n, ca, ha, _] = a.dims();
    let [_, cb, hb, wb] = b.dims();
    let a = if ha > hb {
        adaptive_avg_pool2d(a, [hb, wb])
    } else {
        a
    };
    let b = if ca < cb {
        // average each pair of channels (0, 1), (2, 3), …
        b.reshape([n, cb / 2, 2, hb, wb])
            .mean_dim(2)
            .reshape([n, cb / 2, hb, wb])
    } else {
        b
    };
    let t = (a.flatten::<2>(1, 3) - b.flatten::<2>(1, 3))
        .powi_scalar(2)
        .sum_dim(1)
        .clamp_min(1e-12)
        .reshape([n]);
    let max = t.clone().max();
    t / max
}

fn mse<const D: usize>(a: Tensor<D>, b: Tensor<D>) -> Tensor<1> {
    (a - b).powi_scalar(2).mean()
}

/// IRG's loss (see [`IrgConfig`] for the formula and conventions); `maps` are the shallow and
/// deep maps of each side. The teacher's side is detached here.
#[allow(clippy::too_many_arguments)]
pub fn irg_loss(
    s_maps: [Tensor<4>; 2],
    t_maps: [Tensor<4>; 2],
    s_embedding: Tensor<2>,
    t_embedding: Tensor<2>,
    s_logits: Tensor<2>,
    t_logits: Tensor<2>,
    w: [f64; 3],
) -> Tensor<1> {
    let [sa, sb] = s_maps;
    let [ta, tb] = t_maps.map(|m| m.detach());
    let vertex = mse(s_logits, t_logits.detach());
    let edge = (mse(edges(s_embedding), edges(t_embedding.detach()))
        + mse(
            edges(sa.clone().flatten(1, 3)),
            edges(ta.clone().flatten(1, 3)),
        )
        + mse(
            edges(sb.clone().flatten(1, 3)),
            edges(tb.clone().flatten(1, 3)),
        ))
    .div_scalar(3.0);
    let mut loss = vertex.mul_scalar(w[0]) + edge.mul_scalar(w[1]);
    if w[2] != 0.0 {
        loss = loss + mse(transformation(sa, sb), transformation(ta, tb)).mul_scalar(w[2]);
    }
    loss
}

impl IrgConfig {
    pub(crate) fn build(&self, ctx: &BuildContext<'_>, _aux: &mut Vec<Aux>) -> Result<Built> {
        let student = ctx.student(&self.student)?;
        let teacher = ctx.teacher(&self.teacher)?;
        if self.student_taps.len() != 2 || self.teacher_taps.len() != 2 {
            return Err(DistillError::Config(format!(
                "irg reads two feature maps per side, shallow then deep: student_taps and teacher_taps must name two taps each, got {:?} and {:?}",
                self.student_taps, self.teacher_taps
            )));
        }
        for (side, taps) in [
            (Side::Student(student), &self.student_taps),
            (Side::Teacher(teacher), &self.teacher_taps),
        ] {
            let a = ctx.shape(side, &taps[0])?;
            let b = ctx.shape(side, &taps[1])?;
            if a.len() != 4 || b.len() != 4 {
                return Err(DistillError::Shape {
                    context: format!(
                        "irg: taps '{}' and '{}' must be feature maps",
                        taps[0], taps[1]
                    ),
                    expected: vec![a[0], 0, 0, 0],
                    got: if a.len() != 4 { a } else { b },
                    fix: "; pick stage or conv taps (see `distill models`)".into(),
                });
            }
            let fits = (b[1] == a[1] || b[1] == 2 * a[1]) && b[2] <= a[2] && b[3] <= a[3];
            if self.w_transform != 0.0 && !fits {
                return Err(DistillError::Config(format!(
                    "irg's transformation term compares tap '{}' {a:?} with the deeper '{}' {b:?}, which must have as many or twice the channels and no larger maps; pick such a pair, or set w_transform = 0",
                    taps[0], taps[1]
                )));
            }
        }
        ctx.same_shape(
            "irg",
            (Side::Student(student), "logits"),
            (Side::Teacher(teacher), "logits"),
            "; teacher and student must predict the same classes",
        )?;
        ctx.shape(Side::Student(student), &self.student_tap)?;
        ctx.shape(Side::Teacher(teacher), &self.teacher_tap)?;
        Ok(Built::new(
            self.weight,
            Irg {
                cfg: self.clone(),
                student,
                teacher,
            },
        ))
    }
}

struct Irg {
    cfg: IrgConfig,
    student: usize,
    teacher: usize,
}

impl KnowledgeTerm for Irg {
    fn forward(&self, _aux: &[Aux], ctx: &StepContext<'_>) -> Vec<(String, Tensor<1>)> {
        let c = &self.cfg;
        let s = |tap: &str| ctx.student(self.student, tap);
        let t = |tap: &str| ctx.teacher(self.teacher, tap);
        let loss = irg_loss(
            [
                s(&c.student_taps[0]).into_map(),
                s(&c.student_taps[1]).into_map(),
            ],
            [
                t(&c.teacher_taps[0]).into_map(),
                t(&c.teacher_taps[1]).into_map(),
            ],
            s(&c.student_tap).flat(),
            t(&c.teacher_tap).flat(),
            ctx.students[self.student].logits.clone(),
            ctx.teacher_logits(self.teacher),
            [c.w_vertex, c.w_edge, c.w_transform],
        );
        vec![("irg".into(), loss)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::knowledge::testing::{fixture, tensor, tensor2};

    #[test]
    fn value_and_gradients_match_the_reference() {
        let dev = Device::flex().autodiff();
        for case in fixture("irg").cases() {
            let sa = tensor::<4>(case.input("fm_s1"), &dev).require_grad();
            let sb = tensor::<4>(case.input("fm_s2"), &dev).require_grad();
            let se = tensor2(case.input("feat_s"), &dev).require_grad();
            let so = tensor2(case.input("out_s"), &dev).require_grad();
            let loss = irg_loss(
                [sa.clone(), sb.clone()],
                [
                    tensor::<4>(case.input("fm_t1"), &dev),
                    tensor::<4>(case.input("fm_t2"), &dev),
                ],
                se.clone(),
                tensor2(case.input("feat_t"), &dev),
                so.clone(),
                tensor2(case.input("out_t"), &dev),
                [
                    case.param("w_vert"),
                    case.param("w_edge"),
                    case.param("w_tran"),
                ],
            );
            case.assert_value(loss.clone());
            let grads = loss.backward();
            case.assert_grad(
                "fm_s1",
                sa.grad(&grads).unwrap().into_data().iter::<f32>().collect(),
            );
            case.assert_grad(
                "fm_s2",
                sb.grad(&grads).unwrap().into_data().iter::<f32>().collect(),
            );
            case.assert_grad(
                "feat_s",
                se.grad(&grads).unwrap().into_data().iter::<f32>().collect(),
            );
            case.assert_grad(
                "out_s",
                so.grad(&grads).unwrap().into_data().iter::<f32>().collect(),
            );
        }
    }
}
