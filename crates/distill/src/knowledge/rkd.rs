//! Relational KD: match the batch's pairwise distances and triplet angles.

use burn::nn::loss::{Reduction, SmoothL1LossConfig};
use burn::prelude::*;
use serde::{Deserialize, Serialize};

use super::method::{Built, MethodInfo};
use super::ops::normalize_last;
use super::role::RoleRef;
use super::term::{default_embedding_tap, BuildContext, KnowledgeTerm, Pair, Side, StepContext};
use super::Aux;
use crate::error::Result;

/// Catalogue entry.
pub const INFO: MethodInfo = MethodInfo {
    name: "rkd",
    family: "relation",
    description:
        "relational KD: smooth-L1 on normalised pairwise distances (×25) and triplet angles (×50)",
    citation: "Park et al., Relational Knowledge Distillation, CVPR 2019",
    taps: "student_tap, teacher_tap: any (default embedding)",
};

/// `method = "rkd"`: RKD, logged as two terms `rkd_distance` and `rkd_angle`.
///
/// # Formula
/// `d_ij = sqrt(max(‖e_i − e_j‖², 1e-12))` with `d_ii = 0`, divided by the mean off-diagonal
/// distance; `L_d = w_d · smoothL1(d_s, d_t)` (mean over `B²`). Angles: `cos∠(e_i − e_j, e_k − e_j)`
/// of unit difference vectors for all `B³` triples (degenerate ones are 0);
/// `L_a = w_a · smoothL1(a_s, a_t)` (mean over `B³`).
///
/// # Conventions (RepDistiller `distiller_zoo/RKD.py`)
/// Teacher side without gradient; smooth-L1 with β = 1; weights `w_d = 25`, `w_a = 50` inside.
/// Needs a batch of at least 2 (the batch-size check of the config guarantees it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RkdConfig {
    /// Weight in the objective (default 1).
    #[serde(default = "super::defaults::one")]
    pub weight: f64,
    /// Distance weight inside the loss (default 25).
    #[serde(default = "w_d")]
    pub distance_weight: f64,
    /// Angle weight inside the loss (default 50).
    #[serde(default = "w_a")]
    pub angle_weight: f64,
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

fn w_d() -> f64 {
    25.0
}
fn w_a() -> f64 {
    50.0
}

fn smooth_l1(a: Tensor<1>, b: Tensor<1>) -> Tensor<1> {
    SmoothL1LossConfig::new()
        .init()
        .forward_with_reduction(a, b, Reduction::Mean)
}

/// Pairwise distances divided by their off-diagonal mean, flattened to `[B²]`.
fn normalized_distances(e: Tensor<2>) -> Tensor<1> {
    let [b, _] = e.dims();
    let sq = e.clone().powi_scalar(2).sum_dim(1);
    let d2 = sq.clone() + sq.transpose() - e.clone().matmul(e.transpose()).mul_scalar(2.0);
    let off = Tensor::<2>::eye(b, &d2.device()).neg().add_scalar(1.0);
    let d = d2.clamp_min(1e-12).sqrt() * off;
    let mean = d.clone().sum().div_scalar((b * (b - 1)) as f64);
    (d / mean.reshape([1, 1])).reshape([b * b])
}

/// Cosines of all triplet angles, flattened to `[B³]`.
fn angles(e: Tensor<2>) -> Tensor<1> {
    let [b, n] = e.dims();
    let diff = e.clone().reshape([1, b, n]) - e.reshape([b, 1, n]); // diff[i, j] = e_j − e_i
    let unit = normalize_last(diff);
    unit.clone()
        .matmul(unit.swap_dims(1, 2))
        .reshape([b * b * b])
}

/// Distance term `w · smoothL1` (see [`RkdConfig`]).
pub fn rkd_distance_loss(student: Tensor<2>, teacher: Tensor<2>, w: f64) -> Tensor<1> {
    smooth_l1(
        normalized_distances(student),
        normalized_distances(teacher.detach()),
    )
    .mul_scalar(w)
}

/// Angle term `w · smoothL1` (see [`RkdConfig`]).
pub fn rkd_angle_loss(student: Tensor<2>, teacher: Tensor<2>, w: f64) -> Tensor<1> {
    smooth_l1(angles(student), angles(teacher.detach())).mul_scalar(w)
}

impl RkdConfig {
    pub(crate) fn build(&self, ctx: &BuildContext<'_>, _aux: &mut Vec<Aux>) -> Result<Built> {
        let student = ctx.student(&self.student)?;
        let teacher = ctx.teacher(&self.teacher)?;
        ctx.shape(Side::Student(student), &self.student_tap)?;
        ctx.shape(Side::Teacher(teacher), &self.teacher_tap)?;
        Ok(Built::new(
            self.weight,
            Rkd(self.clone(), Pair { student, teacher }),
        ))
    }
}

struct Rkd(RkdConfig, Pair);

impl KnowledgeTerm for Rkd {
    fn forward(&self, _aux: &[Aux], ctx: &StepContext<'_>) -> Vec<(String, Tensor<1>)> {
        let c = &self.0;
        let s = ctx.student(self.1.student, &c.student_tap).flat();
        let t = ctx.teacher(self.1.teacher, &c.teacher_tap).flat();
        vec![
            (
                "rkd_distance".into(),
                rkd_distance_loss(s.clone(), t.clone(), c.distance_weight),
            ),
            ("rkd_angle".into(), rkd_angle_loss(s, t, c.angle_weight)),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::knowledge::testing::{fixture, grad_of, tensor2};

    #[test]
    fn distance_matches_repdistiller() {
        let dev = Device::flex().autodiff();
        for case in fixture("rkd_distance").cases() {
            let s = tensor2(case.input("student"), &dev).require_grad();
            let t = tensor2(case.input("teacher"), &dev);
            let loss = rkd_distance_loss(s.clone(), t, case.param("w"));
            case.assert_value(loss.clone());
            case.assert_grad("student", grad_of(&loss, &s));
        }
    }

    #[test]
    fn angle_matches_repdistiller() {
        let dev = Device::flex().autodiff();
        for case in fixture("rkd_angle").cases() {
            let s = tensor2(case.input("student"), &dev).require_grad();
            let t = tensor2(case.input("teacher"), &dev);
            let loss = rkd_angle_loss(s.clone(), t, case.param("w"));
            case.assert_value(loss.clone());
            case.assert_grad("student", grad_of(&loss, &s));
        }
    }

    #[test]
    fn identical_embeddings_give_zero_with_finite_gradients() {
        let dev = Device::flex().autodiff();
        let e =
            Tensor::<2>::from_floats([[1.0, 2.0], [0.5, -1.0], [3.0, 0.0]], &dev).require_grad();
        let d = rkd_distance_loss(e.clone(), e.clone().detach(), 25.0);
        let a = rkd_angle_loss(e.clone(), e.clone().detach(), 50.0);
        let total = d + a;
        assert!(total.clone().into_scalar::<f32>().abs() < 1e-5);
        assert!(grad_of(&total, &e).iter().all(|g| g.is_finite()));
    }
}
