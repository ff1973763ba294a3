//! Online ensemble distillation: peers trained together each match the softened distribution of
//! their ensemble (the mean of their logits, held constant), which acts as an on-the-fly teacher.

use burn::prelude::*;
use serde::{Deserialize, Serialize};

use super::kd::kd_loss;
use super::method::{Built, MethodInfo};
use super::ops::mean_of;
use super::role::RoleRef;
use super::term::{BuildContext, KnowledgeTerm, Side, StepContext};
use super::Aux;
use crate::error::{DistillError, Result};

/// Catalogue entry.
pub const INFO: MethodInfo = MethodInfo {
    name: "ensemble-kd",
    family: "response",
    description: "online ensemble teacher: every peer matches the mean of the peers' logits (constant), KDCL-naive / ONE without the gate",
    citation: "Guo et al., Online KD via Collaborative Learning (KDCL), CVPR 2020; Lan, Zhu & Gong, KD by On-the-Fly Native Ensemble (ONE), NeurIPS 2018",
    taps: "every member's logits",
};

/// `method = "ensemble-kd"`: each member distils from the members' ensemble.
///
/// # Formula
/// `L = Σ_m KD_T(z_m, sg(z̄))`, `z̄ = (1/M) Σ_m z_m`, with `KD_T` Hinton's loss (`T²` inside,
/// batch mean) and `sg` stop-gradient: the ensemble is a teacher, not a path for gradients
/// (KDCL's `ensemble_logits.detach()`; ONE's ensemble also enters its KL as the target).
///
/// # Shapes
/// every member's logits `[B, C]`; output `[1]`.
///
/// # Defaults
/// `T = 3` (ONE), weight 1, every trainable role of the recipe as a member.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnsembleKdConfig {
    /// Weight in the objective (default 1).
    #[serde(default = "super::defaults::one")]
    pub weight: f64,
    /// Softmax temperature T (default 3).
    #[serde(default = "default_temperature")]
    pub temperature: f64,
    /// The members (default: the recipe's `student` and every peer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub members: Option<Vec<RoleRef>>,
}

fn default_temperature() -> f64 {
    3.0
}

/// `Σ_m KD_T(z_m, sg(mean_m z_m))`.
pub fn ensemble_kd_loss(members: &[Tensor<2>], t: f64) -> Tensor<1> {
    let mean = mean_of(members).detach();
    members
        .iter()
        .map(|z| kd_loss(z.clone(), mean.clone(), t))
        .reduce(|a, b| a + b)
        .expect("at least one member")
}

impl EnsembleKdConfig {
    pub(crate) fn build(&self, ctx: &BuildContext<'_>, _aux: &mut Vec<Aux>) -> Result<Built> {
        if !(self.temperature.is_finite() && self.temperature > 0.0) {
            return Err(DistillError::Config(format!(
                "ensemble-kd.temperature must be positive, got {}",
                self.temperature
            )));
        }
        let members: Vec<usize> = match &self.members {
            Some(list) => list
                .iter()
                .map(|r| ctx.student(&Some(r.clone())))
                .collect::<Result<_>>()?,
            None => (0..ctx.students.len()).collect(),
        };
        if members.len() < 2 {
            return Err(DistillError::Config(format!(
                "ensemble-kd needs at least two trainable members, got {}; add [[student.peer]] sections to the recipe",
                members.len()
            )));
        }
        for &m in &members[1..] {
            ctx.same_shape(
                "ensemble-kd",
                (Side::Student(m), "logits"),
                (Side::Teacher(members[0]), "logits"),
                "; every member must predict the same classes",
            )?;
        }
        Ok(Built::new(
            self.weight,
            EnsembleKd {
                t: self.temperature,
                members,
            },
        ))
    }
}

struct EnsembleKd {
    t: f64,
    members: Vec<usize>,
}

impl KnowledgeTerm for EnsembleKd {
    fn forward(&self, _aux: &[Aux], ctx: &StepContext<'_>) -> Vec<(String, Tensor<1>)> {
        let z: Vec<Tensor<2>> = self
            .members
            .iter()
            .map(|&i| ctx.students[i].logits.clone())
            .collect();
        vec![("ensemble-kd".into(), ensemble_kd_loss(&z, self.t))]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::knowledge::testing::{fixture, tensor2};

    #[test]
    fn value_and_gradients_match_pytorch() {
        let dev = Device::flex().autodiff();
        for case in fixture("ensemble_kd").cases() {
            let a = tensor2(case.input("s0"), &dev).require_grad();
            let b = tensor2(case.input("s1"), &dev).require_grad();
            let loss = ensemble_kd_loss(&[a.clone(), b.clone()], case.param("temperature"));
            case.assert_value(loss.clone());
            let grads = loss.backward();
            let g = |x: &Tensor<2>| -> Vec<f32> {
                x.grad(&grads).unwrap().into_data().iter::<f32>().collect()
            };
            case.assert_grad("s0", g(&a));
            case.assert_grad("s1", g(&b));
        }
    }

    #[test]
    fn agreeing_members_give_zero() {
        let dev = Device::flex().autodiff();
        let z = Tensor::<2>::from_floats([[1.0, -2.0, 0.5]], &dev);
        let v: f32 = ensemble_kd_loss(&[z.clone(), z], 3.0).into_scalar();
        assert!(v.abs() < 1e-6);
    }
}
