//! Variational information distillation: maximise a variational lower bound on the mutual
//! information between teacher and student features.

use crate::models::conv::ConvForward;
use burn::module::Param;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::prelude::*;
use burn::tensor::activation::{relu, softplus};
use serde::{Deserialize, Serialize};

use super::method::{Built, MethodInfo};
use super::ops::pool_to_common;
use super::role::RoleRef;
use super::term::{default_stage_taps, BuildContext, KnowledgeTerm, Level, StepContext};
use super::Aux;
use crate::error::{DistillError, Result};

/// Catalogue entry.
pub const INFO: MethodInfo = MethodInfo {
    name: "vid",
    family: "mutual-information",
    description: "variational information distillation: Gaussian log-likelihood of teacher maps under a regressor of student maps",
    citation: "Ahn et al., Variational Information Distillation for Knowledge Transfer, CVPR 2019",
    taps: "student_taps, teacher_taps: feature maps (default stage1..3)",
};

/// `method = "vid"`: VID.
///
/// # Formula
/// Per level: `μ = r(f_s)` with `r` = conv1×1 → ReLU → conv1×1 → ReLU → conv1×1 (no bias);
/// per-channel variance `σ² = softplus(log_scale) + 1e-5`;
/// `L = mean over all elements of 0.5·((μ − f_t)² / σ² + log σ²)` (no `log 2π`); levels summed.
///
/// # Conventions (RepDistiller `distiller_zoo/VID.py`)
/// `log_scale` is initialised so that `σ² = 5`; the middle width equals the teacher's channels;
/// the larger map is adaptive-average-pooled to the smaller size before the regressor. The
/// regressor and `log_scale` are trainable modules owned by the method. Weight 1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VidConfig {
    /// Weight in the objective (default 1).
    #[serde(default = "super::defaults::one")]
    pub weight: f64,
    /// Initial predicted variance (default 5).
    #[serde(default = "five")]
    pub init_var: f64,
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

fn five() -> f64 {
    5.0
}

const EPS: f64 = 1e-5;

/// The VID regressor and its per-channel log-scale.
#[derive(Module, Debug)]
pub struct VidRegressor {
    convs: Vec<Conv2d>,
    log_scale: Param<Tensor<1>>,
}

impl VidRegressor {
    /// `cin → cmid → cmid → cout` 1×1 convolutions; variance initialised to `init_var`.
    pub fn new(cin: usize, cmid: usize, cout: usize, init_var: f64, device: &Device) -> Self {
        let conv = |a, b| {
            Conv2dConfig::new([a, b], [1, 1])
                .with_bias(false)
                .init(device)
        };
        let init = ((init_var - EPS).exp() - 1.0).ln();
        Self {
            convs: vec![conv(cin, cmid), conv(cmid, cmid), conv(cmid, cout)],
            log_scale: Param::from_tensor(Tensor::full([cout], init, device)),
        }
    }

    /// Predicted mean of the teacher map.
    pub fn mean(&self, x: Tensor<4>) -> Tensor<4> {
        let x = relu(self.convs[0].run(x));
        let x = relu(self.convs[1].run(x));
        self.convs[2].run(x)
    }
}

/// VID negative log-likelihood given the regressor's mean (see [`VidConfig`]).
pub fn vid_loss(pred_mean: Tensor<4>, target: Tensor<4>, log_scale: Tensor<1>) -> Tensor<1> {
    let c = log_scale.dims()[0];
    let var = softplus(log_scale, 1.0)
        .add_scalar(EPS)
        .reshape([1, c, 1, 1]);
    ((pred_mean - target).powi_scalar(2) / var.clone() + var.log())
        .mul_scalar(0.5)
        .mean()
}

impl VidConfig {
    pub(crate) fn build(&self, ctx: &BuildContext<'_>, aux: &mut Vec<Aux>) -> Result<Built> {
        let student = ctx.student(&self.student)?;
        let teacher = ctx.teacher(&self.teacher)?;
        if !(self.init_var.is_finite() && self.init_var > EPS) {
            return Err(DistillError::Config(format!(
                "vid.init_var must be above 1e-5, got {}",
                self.init_var
            )));
        }
        let levels = ctx.levels(
            "vid",
            (student, &self.student_taps),
            (teacher, &self.teacher_taps),
            true,
        )?;
        let first = aux.len();
        for l in &levels {
            let (cs, ct) = (l.student_shape[1], l.teacher_shape[1]);
            aux.push(Aux::Vid(VidRegressor::new(
                cs,
                ct,
                ct,
                self.init_var,
                ctx.device,
            )));
        }
        Ok(Built::new(
            self.weight,
            Vid {
                levels,
                first,
                student,
                teacher,
            },
        ))
    }
}

struct Vid {
    levels: Vec<Level>,
    first: usize,
    student: usize,
    teacher: usize,
}

impl KnowledgeTerm for Vid {
    fn forward(&self, aux: &[Aux], ctx: &StepContext<'_>) -> Vec<(String, Tensor<1>)> {
        let loss = self
            .levels
            .iter()
            .enumerate()
            .map(|(i, l)| {
                let Aux::Vid(reg) = &aux[self.first + i] else {
                    unreachable!("registered at build")
                };
                let (s, t) = pool_to_common(
                    ctx.student(self.student, &l.student).into_map(),
                    ctx.teacher(self.teacher, &l.teacher).into_map(),
                );
                vid_loss(reg.mean(s), t, reg.log_scale.val())
            })
            .reduce(|a, b| a + b)
            .expect("at least one level");
        vec![("vid".into(), loss)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::knowledge::testing::{fixture, tensor};

    #[test]
    fn value_and_gradients_match_repdistiller() {
        let dev = Device::flex().autodiff();
        for case in fixture("vid").cases() {
            let mu = tensor::<4>(case.input("pred_mean"), &dev).require_grad();
            let t = tensor::<4>(case.input("target"), &dev);
            let ls = tensor::<1>(case.input("log_scale"), &dev).require_grad();
            let loss = vid_loss(mu.clone(), t, ls.clone());
            case.assert_value(loss.clone());
            let grads = loss.backward();
            case.assert_grad(
                "pred_mean",
                mu.grad(&grads).unwrap().into_data().iter::<f32>().collect(),
            );
            case.assert_grad(
                "log_scale",
                ls.grad(&grads).unwrap().into_data().iter::<f32>().collect(),
            );
        }
    }

    #[test]
    fn initial_variance_is_init_var() {
        let dev = Device::flex();
        let r = VidRegressor::new(2, 3, 3, 5.0, &dev);
        let var = softplus(r.log_scale.val(), 1.0).add_scalar(EPS);
        for v in var.into_data().iter::<f32>() {
            assert!((v - 5.0).abs() < 1e-4, "{v}");
        }
    }
}
