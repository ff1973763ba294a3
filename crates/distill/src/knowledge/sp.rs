//! Similarity-preserving KD: match the batch's pairwise similarity matrices.

use burn::prelude::*;
use serde::{Deserialize, Serialize};

use super::method::{Built, MethodInfo};
use super::ops::normalize_rows;
use super::role::RoleRef;
use super::term::{BuildContext, KnowledgeTerm, Level, StepContext};
use super::Aux;
use crate::error::Result;

/// Catalogue entry.
pub const INFO: MethodInfo = MethodInfo {
    name: "sp",
    family: "relation",
    description:
        "similarity-preserving KD: Frobenius distance of row-normalised batch Gram matrices",
    citation: "Tung & Mori, Similarity-Preserving Knowledge Distillation, ICCV 2019",
    taps: "student_taps, teacher_taps: any (default stage3)",
};

/// `method = "sp"`: SP.
///
/// # Formula
/// `G = f fᵀ` over features flattened to `[B, D]`, each row L2-normalised;
/// `L = ‖G_t − G_s‖_F² / B²`, summed over levels.
///
/// # Conventions (RepDistiller `distiller_zoo/SP.py`)
/// Normalisation eps 1e-12; student and teacher widths may differ (only `B × B` matrices are
/// compared). Weight 3000 as RepDistiller's recipe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpConfig {
    /// Weight in the objective (default 3000).
    #[serde(default = "default_weight")]
    pub weight: f64,
    /// Student taps, one per level (default stage3).
    #[serde(default = "last_stage")]
    pub student_taps: Vec<String>,
    /// Teacher taps, one per level (default stage3).
    #[serde(default = "last_stage")]
    pub teacher_taps: Vec<String>,
    /// The trainable role the term trains (default: the recipe's `student`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub student: Option<RoleRef>,
    /// The role it learns from (default: the only `[[teacher]]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub teacher: Option<RoleRef>,
}

fn default_weight() -> f64 {
    3000.0
}
fn last_stage() -> Vec<String> {
    vec!["stage3".into()]
}

/// SP loss of one level on flattened features (see [`SpConfig`]).
pub fn sp_loss(student: Tensor<2>, teacher: Tensor<2>) -> Tensor<1> {
    let b = student.dims()[0] as f64;
    let gram = |f: Tensor<2>| normalize_rows(f.clone().matmul(f.transpose()));
    (gram(teacher) - gram(student))
        .powi_scalar(2)
        .sum()
        .div_scalar(b * b)
}

impl SpConfig {
    pub(crate) fn build(&self, ctx: &BuildContext<'_>, _aux: &mut Vec<Aux>) -> Result<Built> {
        let student = ctx.student(&self.student)?;
        let teacher = ctx.teacher(&self.teacher)?;
        let levels = ctx.levels(
            "sp",
            (student, &self.student_taps),
            (teacher, &self.teacher_taps),
            false,
        )?;
        Ok(Built::new(
            self.weight,
            Sp {
                levels,
                student,
                teacher,
            },
        ))
    }
}

struct Sp {
    levels: Vec<Level>,
    student: usize,
    teacher: usize,
}

impl KnowledgeTerm for Sp {
    fn forward(&self, _aux: &[Aux], ctx: &StepContext<'_>) -> Vec<(String, Tensor<1>)> {
        let loss = self
            .levels
            .iter()
            .map(|l| {
                sp_loss(
                    ctx.student(self.student, &l.student).flat(),
                    ctx.teacher(self.teacher, &l.teacher).flat(),
                )
            })
            .reduce(|a, b| a + b)
            .expect("at least one level");
        vec![("sp".into(), loss)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::knowledge::testing::{fixture, flat, grad_of, tensor2};

    #[test]
    fn value_and_gradient_match_repdistiller() {
        let dev = Device::flex().autodiff();
        for case in fixture("sp").cases() {
            // Feature maps enter flattened to [B, C·H·W], in the same element order.
            let s = tensor2(&flat(case.input("student")), &dev).require_grad();
            let t = tensor2(&flat(case.input("teacher")), &dev);
            let loss = sp_loss(s.clone(), t);
            case.assert_value(loss.clone());
            case.assert_grad("student", grad_of(&loss, &s));
        }
    }

    #[test]
    fn batch_of_one_gives_zero() {
        let dev = Device::flex().autodiff();
        let s = Tensor::<2>::from_floats([[1.0, 2.0]], &dev).require_grad();
        let t = Tensor::<2>::from_floats([[3.0, -1.0, 0.5]], &dev);
        let loss = sp_loss(s.clone(), t);
        assert!(loss.clone().into_scalar::<f32>().abs() < 1e-6);
        assert!(grad_of(&loss, &s).iter().all(|g| g.is_finite()));
    }
}
