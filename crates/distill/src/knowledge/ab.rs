//! Activation boundaries: teach the student where the teacher's neurons switch on, through a
//! margin loss on pre-activations, in an initialisation stage before ordinary training.

use burn::prelude::*;
use serde::{Deserialize, Serialize};

use super::method::{Built, MethodInfo};
use super::role::RoleRef;
use super::term::{BuildContext, InitStage, KnowledgeTerm, Level, StepContext};
use super::Aux;
use crate::error::{DistillError, Result};

/// Catalogue entry.
pub const INFO: MethodInfo = MethodInfo {
    name: "ab",
    family: "intermediate",
    description: "activation boundaries: margin loss on the on/off pattern of pre-activations through a connector; an initialisation stage trains the connector and the student's feature layers",
    citation: "Heo et al., Knowledge Transfer via Distillation of Activation Boundaries Formed by Hidden Neurons, AAAI 2019",
    taps: "student_taps, teacher_taps: pre-activation feature maps (default stage1_pre..stage3_pre)",
};

/// `method = "ab"`: AB, RepDistiller's two-stage form.
///
/// # Formula
/// Per level, with `s` the connector's output on the student pre-activation and `t` the teacher
/// pre-activation (margin `μ`):
/// `ℓ = Σ (s + μ)²·[s > −μ ∧ t ≤ 0] + (s − μ)²·[s ≤ μ ∧ t > 0]` over all elements;
/// level `i` of `n` (0-based, shallow to deep) is weighted `2^(i − n + 1)`;
/// `L = Σ_i 2^(i−n+1) · ℓ_i / B · 3/1000`.
///
/// # Conventions (RepDistiller `distiller_zoo/AB.py`, `helper/pretrain.py`)
/// The connector is the identity when the maps already match in channels and size, otherwise
/// `ConvReg` without ReLU (conv + batch norm). The loss acts only in the initialisation stage
/// (`init_epochs`, default 30, at `init_lr`, default the run's learning rate, with a fresh
/// optimiser): it trains the connector and, through the gradients, the student's layers below
/// the taps (the classifier gets none). Afterwards the term is silent (RepDistiller sets
/// `loss_kd = 0`) and the student trains on the recipe's other terms (RepDistiller: CE and KD).
/// `weight` multiplies the stage loss (default 1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AbConfig {
    /// Weight of the initialisation-stage loss (default 1).
    #[serde(default = "super::defaults::one")]
    pub weight: f64,
    /// Margin μ (default 1).
    #[serde(default = "super::defaults::one")]
    pub margin: f64,
    /// Epochs of the initialisation stage (default 30, as RepDistiller).
    #[serde(default = "thirty")]
    pub init_epochs: usize,
    /// Learning rate of the initialisation stage (default: the run's base learning rate).
    #[serde(default)]
    pub init_lr: Option<f64>,
    /// Student pre-activation taps (default stage1_pre..stage3_pre).
    #[serde(default = "default_preact_taps")]
    pub student_taps: Vec<String>,
    /// Teacher pre-activation taps (default stage1_pre..stage3_pre).
    #[serde(default = "default_preact_taps")]
    pub teacher_taps: Vec<String>,
    /// The trainable role the term trains (default: the recipe's `student`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub student: Option<RoleRef>,
    /// The role it learns from (default: the only `[[teacher]]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub teacher: Option<RoleRef>,
}

fn thirty() -> usize {
    30
}

/// Default taps of the pre-activation methods (AB, OFD): the CIFAR ResNets' stages before their
/// last ReLU.
pub fn default_preact_taps() -> Vec<String> {
    vec![
        "stage1_pre".into(),
        "stage2_pre".into(),
        "stage3_pre".into(),
    ]
}

/// AB's per-level loss `ℓ` (a sum over all elements, see [`AbConfig`]).
pub fn ab_level_loss(s: Tensor<4>, t: Tensor<4>, margin: f64) -> Tensor<1> {
    let t_on = t.greater_elem(0.0);
    let neg = s.clone().add_scalar(margin).powi_scalar(2).mask_fill(
        s.clone().lower_equal_elem(-margin).bool_or(t_on.clone()),
        0.0,
    );
    let pos = s
        .clone()
        .sub_scalar(margin)
        .powi_scalar(2)
        .mask_fill(s.greater_elem(margin).bool_or(t_on.bool_not()), 0.0);
    (neg + pos).sum()
}

/// AB's loss over levels (shallow to deep), including the level weights, `1/B` and `3/1000`.
pub fn ab_loss(levels: Vec<(Tensor<4>, Tensor<4>)>, margin: f64) -> Tensor<1> {
    let n = levels.len() as i32;
    let b = levels[0].0.dims()[0] as f64;
    levels
        .into_iter()
        .enumerate()
        .map(|(i, (s, t))| {
            ab_level_loss(s, t, margin).mul_scalar(2f64.powi(i as i32 - n + 1) / b * 3.0 / 1000.0)
        })
        .reduce(|a, b| a + b)
        .expect("at least one level")
}

struct Ab {
    levels: Vec<Level>,
    /// Connector index per level (`None`: identity).
    connectors: Vec<Option<usize>>,
    margin: f64,
    stage: InitStage,
    student: usize,
    teacher: usize,
}

impl AbConfig {
    pub(crate) fn build(&self, ctx: &BuildContext<'_>, aux: &mut Vec<Aux>) -> Result<Built> {
        let student = ctx.student(&self.student)?;
        let teacher = ctx.teacher(&self.teacher)?;
        if !(self.margin.is_finite() && self.margin >= 0.0) {
            return Err(DistillError::Config(format!(
                "ab.margin must be a finite number ≥ 0, got {}",
                self.margin
            )));
        }
        if self.init_epochs == 0 {
            return Err(DistillError::Config(
                "ab.init_epochs must be ≥ 1: AB's loss acts only in its initialisation stage"
                    .into(),
            ));
        }
        if let Some(lr) = self.init_lr {
            if !(lr.is_finite() && lr > 0.0) {
                return Err(DistillError::Config(format!(
                    "ab.init_lr must be a positive number, got {lr}"
                )));
            }
        }
        let levels = ctx.levels(
            "ab",
            (student, &self.student_taps),
            (teacher, &self.teacher_taps),
            true,
        )?;
        let mut connectors = Vec::new();
        for l in &levels {
            let (s, t) = (&l.student_shape, &l.teacher_shape);
            if s[1] == t[1] && s[2] == t[2] && s[3] == t[3] {
                connectors.push(None);
            } else {
                aux.push(Aux::conv_reg(s, t, false, ctx.device)?);
                connectors.push(Some(aux.len() - 1));
            }
        }
        Ok(Built::new(
            self.weight,
            Ab {
                levels,
                connectors,
                margin: self.margin,
                stage: InitStage {
                    epochs: self.init_epochs,
                    lr: self.init_lr,
                    weight: self.weight,
                },
                student,
                teacher,
            },
        ))
    }
}

impl KnowledgeTerm for Ab {
    fn forward(&self, _aux: &[Aux], _ctx: &StepContext<'_>) -> Vec<(String, Tensor<1>)> {
        Vec::new()
    }

    fn init_stage(&self) -> Option<InitStage> {
        Some(self.stage)
    }

    fn init_forward(&self, aux: &[Aux], ctx: &StepContext<'_>) -> Vec<(String, Tensor<1>)> {
        let pairs = self
            .levels
            .iter()
            .zip(&self.connectors)
            .map(|(l, c)| {
                let s = ctx.student(self.student, &l.student);
                let s = match c {
                    Some(i) => aux[*i].forward(s),
                    None => s,
                };
                (
                    s.into_map(),
                    ctx.teacher(self.teacher, &l.teacher).into_map(),
                )
            })
            .collect();
        vec![("ab".into(), ab_loss(pairs, self.margin))]
    }

    fn in_main_stage(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::knowledge::testing::{assert_grads, consts4, fixture, grad_of, leaves4};

    #[test]
    fn value_and_gradient_match_repdistiller() {
        let dev = Device::flex().autodiff();
        for case in fixture("ab").cases() {
            let names = ["s0", "s1"];
            let s = leaves4(case, &names, &dev);
            let t = consts4(case, &["t0", "t1"], &dev);
            let loss = ab_loss(s.iter().cloned().zip(t).collect(), case.param("margin"));
            case.assert_value(loss.clone());
            assert_grads(case, &loss, &names, &s);
        }
    }

    #[test]
    fn matching_signs_outside_the_margin_give_zero() {
        let dev = Device::flex().autodiff();
        let t = Tensor::<4>::from_floats([[[[-2.0, 3.0], [0.5, -0.1]]]], &dev);
        let s = Tensor::<4>::from_floats([[[[-1.5, 1.2], [2.0, -1.0]]]], &dev).require_grad();
        let loss = ab_level_loss(s.clone(), t, 1.0);
        assert_eq!(loss.clone().into_scalar::<f32>(), 0.0);
        assert!(grad_of(&loss, &s).iter().all(|g| *g == 0.0));
    }
}
