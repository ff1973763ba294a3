//! Mean squared error with the real targets (the supervised term of regression).

use burn::nn::loss::{MseLoss, Reduction};
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
    name: "mse",
    family: "supervised",
    description: "mean squared error with the (standardised) real targets",
    citation: "—",
    taps: "student logits (the outputs)",
};

/// `method = "mse"`: mean squared error of the student's outputs with the targets.
///
/// # Formula
/// `L = (1 / (B·D)) Σ_b Σ_d (s[b,d] − y[b,d])²`, as `torch.nn.functional.mse_loss` (mean over
/// every element), on targets standardised with the training split's mean and std.
///
/// # Shapes
/// outputs and targets `[B, D]`; output `[1]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MseConfig {
    /// Weight in the objective (default 1).
    #[serde(default = "super::defaults::one")]
    pub weight: f64,
    /// The trainable role the term trains (default: the recipe's `student`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub student: Option<RoleRef>,
}

/// The loss (see [`MseConfig`]).
pub fn mse_loss(outputs: Tensor<2>, targets: Tensor<2>) -> Tensor<1> {
    MseLoss::new().forward(outputs, targets, Reduction::Mean)
}

impl MseConfig {
    pub(crate) fn build(&self, ctx: &BuildContext<'_>, _aux: &mut Vec<Aux>) -> Result<Built> {
        ctx.require_task(Task::Regression, "mse")?;
        let student = ctx.student(&self.student)?;
        ctx.shape(Side::Student(student), "logits")?;
        Ok(Built::new(self.weight, Mse { student }))
    }
}

struct Mse {
    student: usize,
}

impl KnowledgeTerm for Mse {
    fn forward(&self, _aux: &[Aux], ctx: &StepContext<'_>) -> Vec<(String, Tensor<1>)> {
        let s = ctx.students[self.student].logits.clone();
        vec![("mse".into(), mse_loss(s, ctx.targets.reals()))]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::knowledge::testing::grad_of;

    #[test]
    fn value_and_gradient_are_the_element_mean() {
        let dev = Device::flex().autodiff();
        let s = Tensor::<2>::from_floats([[1.0, 2.0], [0.5, -1.0]], &dev).require_grad();
        let y = Tensor::<2>::from_floats([[0.0, 2.0], [1.5, 1.0]], &dev);
        let loss = mse_loss(s.clone(), y);
        // (1 + 0 + 1 + 4) / 4
        assert!((loss.clone().into_scalar::<f32>() - 1.5).abs() < 1e-6);
        // d/ds = 2 (s − y) / 4
        assert_eq!(grad_of(&loss, &s), vec![0.5, 0.0, -0.5, -1.0]);
    }
}
