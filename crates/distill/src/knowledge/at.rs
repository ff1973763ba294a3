//! Attention transfer: match normalised spatial attention maps of feature maps.

use burn::prelude::*;
use serde::{Deserialize, Serialize};

use super::method::{Built, MethodInfo};
use super::ops::{normalize_rows, pool_to_common};
use super::role::RoleRef;
use super::term::{default_stage_taps, BuildContext, KnowledgeTerm, Level, StepContext};
use super::Aux;
use crate::error::Result;

/// Catalogue entry.
pub const INFO: MethodInfo = MethodInfo {
    name: "at",
    family: "intermediate",
    description: "attention transfer: squared distance of L2-normalised spatial attention maps, summed over levels",
    citation: "Zagoruyko & Komodakis, Paying More Attention to Attention, ICLR 2017",
    taps: "student_taps, teacher_taps: feature maps (default stage1..3)",
};

/// `method = "at"`: attention transfer.
///
/// # Formula
/// Per level: `a(f) = normalize(mean_c f²)` over the flattened `H·W`;
/// `L_level = mean over B·HW of (a(f_s) − a(f_t))²`; `L = Σ_levels L_level`.
///
/// # Conventions (RepDistiller `distiller_zoo/AT.py`, p = 2)
/// When spatial sizes differ the larger map is adaptive-average-pooled to the smaller first;
/// normalisation eps 1e-12; channel counts may differ. The β = 1000 of the paper is the
/// default weight, applied outside the loss.
///
/// # Shapes
/// student `[B, Cs, Hs, Ws]`, teacher `[B, Ct, Ht, Wt]` per level; output `[1]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AtConfig {
    /// Weight in the objective (default 1000).
    #[serde(default = "default_weight")]
    pub weight: f64,
    /// Student feature-map taps, one per level (default stage1..3).
    #[serde(default = "default_stage_taps")]
    pub student_taps: Vec<String>,
    /// Teacher feature-map taps, one per level (default stage1..3).
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
    1000.0
}

fn attention(f: Tensor<4>) -> Tensor<2> {
    let [b, _, h, w] = f.dims();
    normalize_rows(f.powi_scalar(2).mean_dim(1).reshape([b, h * w]))
}

/// AT loss of one level (see [`AtConfig`]).
pub fn at_loss(student: Tensor<4>, teacher: Tensor<4>) -> Tensor<1> {
    let (s, t) = pool_to_common(student, teacher);
    (attention(s) - attention(t)).powi_scalar(2).mean()
}

impl AtConfig {
    pub(crate) fn build(&self, ctx: &BuildContext<'_>, _aux: &mut Vec<Aux>) -> Result<Built> {
        let student = ctx.student(&self.student)?;
        let teacher = ctx.teacher(&self.teacher)?;
        let levels = ctx.levels(
            "at",
            (student, &self.student_taps),
            (teacher, &self.teacher_taps),
            true,
        )?;
        Ok(Built::new(
            self.weight,
            At {
                levels,
                student,
                teacher,
            },
        ))
    }
}

struct At {
    levels: Vec<Level>,
    student: usize,
    teacher: usize,
}

/// Sums a per-level loss of feature maps over levels.
pub(crate) fn sum_map_levels(
    levels: &[Level],
    ctx: &StepContext<'_>,
    student: usize,
    teacher: usize,
    loss: impl Fn(Tensor<4>, Tensor<4>) -> Tensor<1>,
) -> Tensor<1> {
    levels
        .iter()
        .map(|l| {
            loss(
                ctx.student(student, &l.student).into_map(),
                ctx.teacher(teacher, &l.teacher).into_map(),
            )
        })
        .reduce(|a, b| a + b)
        .expect("at least one level")
}

impl KnowledgeTerm for At {
    fn forward(&self, _aux: &[Aux], ctx: &StepContext<'_>) -> Vec<(String, Tensor<1>)> {
        vec![(
            "at".into(),
            sum_map_levels(&self.levels, ctx, self.student, self.teacher, at_loss),
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
        for case in fixture("at").cases() {
            let s = tensor4(case.input("student"), &dev).require_grad();
            let t = tensor4(case.input("teacher"), &dev);
            let loss = at_loss(s.clone(), t);
            case.assert_value(loss.clone());
            case.assert_grad("student", grad_of(&loss, &s));
        }
    }

    #[test]
    fn identical_maps_give_zero() {
        let dev = Device::flex().autodiff();
        let f = Tensor::<4>::random([1, 2, 3, 3], burn::tensor::Distribution::Default, &dev)
            .require_grad();
        let loss = at_loss(f.clone(), f.clone().detach());
        assert!(loss.clone().into_scalar::<f32>().abs() < 1e-7);
        assert!(grad_of(&loss, &f).iter().all(|g| g.is_finite()));
    }
}
