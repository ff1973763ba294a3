//! Neuron selectivity transfer: match the distributions of channel activations with an MMD.

use burn::prelude::*;
use serde::{Deserialize, Serialize};

use super::at::sum_map_levels;
use super::method::{Built, MethodInfo};
use super::ops::{normalize_last, pool_to_common};
use super::role::RoleRef;
use super::term::{default_stage_taps, BuildContext, KnowledgeTerm, Level, StepContext};
use super::Aux;
use crate::error::Result;

/// Catalogue entry.
pub const INFO: MethodInfo = MethodInfo {
    name: "nst",
    family: "intermediate",
    description: "neuron selectivity transfer: polynomial-kernel MMD between channel activation patterns",
    citation: "Huang & Wang, Like What You Like: Knowledge Distill via Neuron Selectivity Transfer, arXiv 2017",
    taps: "student_taps, teacher_taps: feature maps (default stage1..3)",
};

/// `method = "nst"`: NST.
///
/// # Formula
/// Per level, each channel's `H·W` map is L2-normalised; with `k(a, b) = ⟨a, b⟩²`:
/// `L = mean k(t, t) + mean k(s, s) − 2·mean k(s, t)`, each mean over `B·C·C` channel pairs
/// including the diagonal; levels summed.
///
/// # Conventions (RepDistiller `distiller_zoo/NST.py`, full loss)
/// The teacher-teacher term carries no gradient; the larger map is adaptive-average-pooled to
/// the smaller size first; channel counts may differ. Weight 50 as RepDistiller's recipe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NstConfig {
    /// Weight in the objective (default 50).
    #[serde(default = "default_weight")]
    pub weight: f64,
    /// Student feature-map taps (default stage1..3).
    #[serde(default = "default_stage_taps")]
    pub student_taps: Vec<String>,
    /// Teacher feature-map taps (default stage1..3).
    #[serde(default = "default_stage_taps")]
    pub teacher_taps: Vec<String>,
    /// The trainable role the term trains (default: the recipe's `student`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub student: Option<RoleRef>,
    /// The role it learns from (default: the only `[[teacher]]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub teacher: Option<RoleRef>,
}

fn default_weight() -> f64 {
    50.0
}

/// Mean over `B·Ca·Cb` of `⟨a_i, b_j⟩²` for `[B, C, N]` inputs.
fn poly_kernel_mean(a: Tensor<3>, b: Tensor<3>) -> Tensor<1> {
    a.matmul(b.swap_dims(1, 2)).powi_scalar(2).mean()
}

/// NST loss of one level (see [`NstConfig`]).
pub fn nst_loss(student: Tensor<4>, teacher: Tensor<4>) -> Tensor<1> {
    let (s, t) = pool_to_common(student, teacher);
    let flat = |f: Tensor<4>| {
        let [b, c, h, w] = f.dims();
        normalize_last(f.reshape([b, c, h * w]))
    };
    let (s, t) = (flat(s), flat(t));
    poly_kernel_mean(t.clone(), t.clone()).detach() + poly_kernel_mean(s.clone(), s.clone())
        - poly_kernel_mean(s, t).mul_scalar(2.0)
}

impl NstConfig {
    pub(crate) fn build(&self, ctx: &BuildContext<'_>, _aux: &mut Vec<Aux>) -> Result<Built> {
        let student = ctx.student(&self.student)?;
        let teacher = ctx.teacher(&self.teacher)?;
        let levels = ctx.levels(
            "nst",
            (student, &self.student_taps),
            (teacher, &self.teacher_taps),
            true,
        )?;
        Ok(Built::new(
            self.weight,
            Nst {
                levels,
                student,
                teacher,
            },
        ))
    }
}

struct Nst {
    levels: Vec<Level>,
    student: usize,
    teacher: usize,
}

impl KnowledgeTerm for Nst {
    fn forward(&self, _aux: &[Aux], ctx: &StepContext<'_>) -> Vec<(String, Tensor<1>)> {
        vec![(
            "nst".into(),
            sum_map_levels(&self.levels, ctx, self.student, self.teacher, nst_loss),
        )]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::knowledge::testing::{fixture, grad_of, tensor4};

    #[test]
    fn value_and_gradient_match_repdistiller() {
        let dev = Device::flex().autodiff();
        for case in fixture("nst").cases() {
            let s = tensor4(case.input("student"), &dev).require_grad();
            let t = tensor4(case.input("teacher"), &dev);
            let loss = nst_loss(s.clone(), t);
            case.assert_value(loss.clone());
            case.assert_grad("student", grad_of(&loss, &s));
        }
    }

    #[test]
    fn identical_maps_give_zero() {
        let dev = Device::flex().autodiff();
        let f = Tensor::<4>::random([2, 3, 2, 2], burn::tensor::Distribution::Default, &dev)
            .require_grad();
        let loss = nst_loss(f.clone(), f.clone().detach());
        assert!(loss.clone().into_scalar::<f32>().abs() < 1e-5);
        assert!(grad_of(&loss, &f).iter().all(|g| g.is_finite()));
    }
}
