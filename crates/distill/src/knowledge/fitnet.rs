//! FitNet hints: regress a teacher feature map from a student one through a trainable connector.

use burn::nn::loss::{MseLoss, Reduction};
use burn::prelude::*;
use serde::{Deserialize, Serialize};

use super::method::{Built, MethodInfo};
use super::role::RoleRef;
use super::term::{BuildContext, KnowledgeTerm, Pair, Side, StepContext};
use super::Aux;
use crate::error::Result;
use crate::models::Feature;

/// Catalogue entry.
pub const INFO: MethodInfo = MethodInfo {
    name: "fitnet",
    family: "intermediate",
    description: "hint learning: MSE between a connector(student feature) and a teacher feature",
    citation: "Romero et al., FitNets: Hints for Thin Deep Nets, ICLR 2015",
    taps: "student_tap, teacher_tap (any matching kind)",
};

/// `method = "fitnet"`: FitNet hint loss.
///
/// # Formula
/// `L = mean over B·C·H·W of (r(f_s) − f_t)²`, with `r` a trainable connector (RepDistiller's
/// `ConvReg`: conv + batch norm + ReLU, see [`Aux::connector`]) optimised with the student; the
/// teacher feature is a constant.
///
/// # Conventions (RepDistiller `distiller_zoo/FitNet.py`)
/// Plain element mean (`nn.MSELoss()`); weight 100 in RepDistiller's recipe with CE at 1.
///
/// # Shapes
/// student `[B, Cs, Hs, Ws]` (or `[B, Ds]`), teacher `[B, Ct, Ht, Wt]` (or `[B, Dt]`); output `[1]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FitNetConfig {
    /// Weight in the objective (default 100).
    #[serde(default = "default_weight")]
    pub weight: f64,
    /// Student tap to regress from (e.g. `stage2` or `fc1`).
    pub student_tap: String,
    /// Teacher tap to regress to.
    pub teacher_tap: String,
    /// The trainable role the term trains (default: the recipe's `student`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub student: Option<RoleRef>,
    /// The role it learns from (default: the only `[[teacher]]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub teacher: Option<RoleRef>,
}

fn default_weight() -> f64 {
    100.0
}

/// FitNet loss between an already-connected student feature and the teacher feature.
pub fn fitnet_loss(student: Feature, teacher: Feature) -> Tensor<1> {
    MseLoss::new().forward(student.flat(), teacher.flat(), Reduction::Mean)
}

impl FitNetConfig {
    pub(crate) fn build(&self, ctx: &BuildContext<'_>, aux: &mut Vec<Aux>) -> Result<Built> {
        let student = ctx.student(&self.student)?;
        let teacher = ctx.teacher(&self.teacher)?;
        let s = ctx.shape(Side::Student(student), &self.student_tap)?;
        let t = ctx.shape(Side::Teacher(teacher), &self.teacher_tap)?;
        aux.push(Aux::connector(&s, &t, ctx.device)?);
        Ok(Built::new(
            self.weight,
            FitNet {
                at: Pair { student, teacher },
                cfg: self.clone(),
                connector: aux.len() - 1,
            },
        ))
    }
}

struct FitNet {
    at: Pair,
    cfg: FitNetConfig,
    connector: usize,
}

impl KnowledgeTerm for FitNet {
    fn forward(&self, aux: &[Aux], ctx: &StepContext<'_>) -> Vec<(String, Tensor<1>)> {
        let s = aux[self.connector].forward(ctx.student(self.at.student, &self.cfg.student_tap));
        let t = ctx.teacher(self.at.teacher, &self.cfg.teacher_tap);
        vec![("fitnet".into(), fitnet_loss(s, t))]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::knowledge::testing::{fixture, grad_of, tensor4};

    #[test]
    fn value_and_gradient_match_pytorch() {
        let dev = Device::flex().autodiff();
        for case in fixture("fitnet").cases() {
            let s = tensor4(case.input("student"), &dev).require_grad();
            let t = tensor4(case.input("teacher"), &dev);
            let loss = fitnet_loss(Feature::Map(s.clone()), Feature::Map(t));
            case.assert_value(loss.clone());
            case.assert_grad("student", grad_of(&loss, &s));
        }
    }

    #[test]
    fn connector_shapes_follow_convreg() {
        let dev = Device::flex();
        let c = Aux::connector(&[2, 8, 16, 16], &[2, 32, 8, 8], &dev).unwrap();
        let x = Tensor::<4>::zeros([2, 8, 16, 16], &dev);
        assert_eq!(c.forward(Feature::Map(x)).shape(), vec![2, 32, 8, 8]);
        let err = Aux::connector(&[2, 8, 8, 8], &[2, 32, 16, 16], &dev)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("cannot") || err.contains("can shrink"),
            "{err}"
        );
    }
}
