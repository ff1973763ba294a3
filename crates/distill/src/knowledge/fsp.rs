//! Flow of solution procedure: match the Gram matrices between consecutive feature maps.

use burn::prelude::*;
use serde::{Deserialize, Serialize};

use super::method::{Built, MethodInfo};
use super::ops::pool_to_common;
use super::role::RoleRef;
use super::term::{default_stage_taps, BuildContext, KnowledgeTerm, Level, StepContext};
use super::Aux;
use crate::error::{DistillError, Result};

/// Catalogue entry.
pub const INFO: MethodInfo = MethodInfo {
    name: "fsp",
    family: "relation",
    description: "flow of solution procedure: squared distance of FSP (Gram) matrices between consecutive feature maps",
    citation: "Yim et al., A Gift from Knowledge Distillation, CVPR 2017",
    taps: "student_taps, teacher_taps: ≥ 2 feature maps each, channel counts equal per level",
};

/// `method = "fsp"`: FSP.
///
/// # Formula
/// For consecutive levels (bottom `b`, top `t`): `G[c_t, c_b] = mean over H·W of t[c_t]·b[c_b]`
/// (the larger map average-pooled to the smaller first); `L = Σ_pairs mean over B·C·C of
/// (G_s − G_t)²`: `n` levels give `n − 1` terms.
///
/// # Conventions (RepDistiller `distiller_zoo/FSP.py`)
/// Student and teacher FSP matrices must have equal shapes, so each level's channel counts must
/// match. RepDistiller uses FSP as an initialisation-stage objective before CE training; here it
/// is a term like any other (weight 1 by default) — run a short FSP-only recipe first and load
/// it as a checkpoint to reproduce the two-stage form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FspConfig {
    /// Weight in the objective (default 1).
    #[serde(default = "super::defaults::one")]
    pub weight: f64,
    /// Student feature-map taps, shallow to deep (default stage1..3).
    #[serde(default = "default_stage_taps")]
    pub student_taps: Vec<String>,
    /// Teacher feature-map taps, shallow to deep (default stage1..3).
    #[serde(default = "default_stage_taps")]
    pub teacher_taps: Vec<String>,
    /// The trainable role the term trains (default: the recipe's `student`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub student: Option<RoleRef>,
    /// The role it learns from (default: the only `[[teacher]]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub teacher: Option<RoleRef>,
}

/// FSP matrix `[B, C_top, C_bottom]` of two feature maps.
pub fn fsp_matrix(bottom: Tensor<4>, top: Tensor<4>) -> Tensor<3> {
    let (bottom, top) = pool_to_common(bottom, top);
    let [b, cb, h, w] = bottom.dims();
    let [_, ct, _, _] = top.dims();
    let bottom = bottom.reshape([b, cb, h * w]);
    let top = top.reshape([b, ct, h * w]);
    top.matmul(bottom.swap_dims(1, 2))
        .div_scalar((h * w) as f64)
}

/// FSP loss of one pair of consecutive levels (see [`FspConfig`]).
pub fn fsp_loss(
    s_bottom: Tensor<4>,
    s_top: Tensor<4>,
    t_bottom: Tensor<4>,
    t_top: Tensor<4>,
) -> Tensor<1> {
    (fsp_matrix(s_bottom, s_top) - fsp_matrix(t_bottom, t_top))
        .powi_scalar(2)
        .mean()
}

impl FspConfig {
    pub(crate) fn build(&self, ctx: &BuildContext<'_>, _aux: &mut Vec<Aux>) -> Result<Built> {
        let student = ctx.student(&self.student)?;
        let teacher = ctx.teacher(&self.teacher)?;
        let levels = ctx.levels(
            "fsp",
            (student, &self.student_taps),
            (teacher, &self.teacher_taps),
            true,
        )?;
        if levels.len() < 2 {
            return Err(DistillError::Config(
                "fsp needs at least 2 levels (it compares consecutive feature maps)".into(),
            ));
        }
        for l in &levels {
            if l.student_shape[1] != l.teacher_shape[1] {
                return Err(DistillError::Shape {
                    context: format!("fsp: channels of student tap '{}' vs teacher tap '{}'", l.student, l.teacher),
                    expected: l.teacher_shape.clone(),
                    got: l.student_shape.clone(),
                    fix: "; FSP matrices are compared entry by entry, so pick levels with equal channel counts (or use `at`, which allows different widths)".into(),
                });
            }
        }
        Ok(Built::new(
            self.weight,
            Fsp {
                levels,
                student,
                teacher,
            },
        ))
    }
}

struct Fsp {
    levels: Vec<Level>,
    student: usize,
    teacher: usize,
}

impl KnowledgeTerm for Fsp {
    fn forward(&self, _aux: &[Aux], ctx: &StepContext<'_>) -> Vec<(String, Tensor<1>)> {
        let s: Vec<Tensor<4>> = self
            .levels
            .iter()
            .map(|l| ctx.student(self.student, &l.student).into_map())
            .collect();
        let t: Vec<Tensor<4>> = self
            .levels
            .iter()
            .map(|l| ctx.teacher(self.teacher, &l.teacher).into_map())
            .collect();
        let loss = (0..s.len() - 1)
            .map(|i| {
                fsp_loss(
                    s[i].clone(),
                    s[i + 1].clone(),
                    t[i].clone(),
                    t[i + 1].clone(),
                )
            })
            .reduce(|a, b| a + b)
            .expect("at least two levels");
        vec![("fsp".into(), loss)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::knowledge::testing::{fixture, tensor4};

    #[test]
    fn value_and_gradients_match_repdistiller() {
        let dev = Device::flex().autodiff();
        for case in fixture("fsp").cases() {
            let sb = tensor4(case.input("s_bot"), &dev).require_grad();
            let st = tensor4(case.input("s_top"), &dev).require_grad();
            let loss = fsp_loss(
                sb.clone(),
                st.clone(),
                tensor4(case.input("t_bot"), &dev),
                tensor4(case.input("t_top"), &dev),
            );
            case.assert_value(loss.clone());
            let g = loss.backward();
            case.assert_grad(
                "s_bot",
                sb.grad(&g).unwrap().into_data().iter::<f32>().collect(),
            );
            case.assert_grad(
                "s_top",
                st.grad(&g).unwrap().into_data().iter::<f32>().collect(),
            );
        }
    }
}
