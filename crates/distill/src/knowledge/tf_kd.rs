//! Teacher-free KD with a manually designed teacher (Tf-KD_reg): the student learns from a
//! virtual teacher that puts probability `a` on the true class and spreads the rest uniformly.

use burn::prelude::*;
use burn::tensor::activation::{log_softmax, softmax};
use serde::{Deserialize, Serialize};

use super::method::{Built, MethodInfo};
use super::role::RoleRef;
use super::term::{BuildContext, KnowledgeTerm, Side, StepContext};
use super::Aux;
use crate::error::{DistillError, Result};

/// Catalogue entry.
pub const INFO: MethodInfo = MethodInfo {
    name: "tf-kd",
    family: "response",
    description: "teacher-free KD: KL to a virtual teacher (probability a on the true class, the rest uniform), softened by T; no teacher model",
    citation: "Yuan et al., Revisiting Knowledge Distillation via Label Smoothing Regularization, CVPR 2020",
    taps: "student logits",
};

/// `method = "tf-kd"`: teacher-free KD (Tf-KD_reg).
///
/// # Formula
/// Virtual teacher `p_d(k) = a` for the true class, `(1 − a)/(K − 1)` otherwise;
/// `L = m · (1/(B·K)) · Σ_{b,k} q_bk (log q_bk − log softmax(z_b)_k)` with
/// `q = softmax(p_d / T)`.
///
/// # Conventions (authors' `my_loss_function.py`, `loss_kd_regularization`)
/// `nn.KLDivLoss()` with its default elementwise `mean` reduction (divides by `B·K`, not `B`);
/// the student's log-softmax is at temperature 1 and only the virtual teacher's probabilities
/// are divided by `T` (before a softmax); no `T²`; the result times the multiplier `m`. Their
/// cross-entropy part, `(1 − α)·CE`, is the recipe's `ce` term with weight `1 − α`, and this
/// term's weight is `α`.
///
/// # Shapes
/// logits `[B, K]` with `K ≥ 2`, labels `[B]`; output `[1]`.
///
/// # Defaults
/// The authors' CIFAR-100 ResNet-18 settings: `a = 0.99`, `T = 20`, `m = 100`, weight
/// (`α`) 0.1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TfKdConfig {
    /// Weight in the objective, their α (default 0.1).
    #[serde(default = "point_one")]
    pub weight: f64,
    /// The virtual teacher's probability of the true class `a`, in (0, 1) (default 0.99).
    #[serde(default = "correct_prob")]
    pub correct_prob: f64,
    /// Temperature T applied to the virtual teacher's probabilities (default 20).
    #[serde(default = "twenty")]
    pub temperature: f64,
    /// Multiplier `m` of the divergence (default 100).
    #[serde(default = "hundred")]
    pub multiplier: f64,
    /// The trainable role the term trains (default: the recipe's `student`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub student: Option<RoleRef>,
}

fn point_one() -> f64 {
    0.1
}
fn correct_prob() -> f64 {
    0.99
}
fn twenty() -> f64 {
    20.0
}
fn hundred() -> f64 {
    100.0
}

/// Tf-KD_reg's divergence (see [`TfKdConfig`] for the formula and conventions).
pub fn tf_kd_loss(
    student: Tensor<2>,
    targets: Tensor<1, Int>,
    correct_prob: f64,
    temperature: f64,
    multiplier: f64,
) -> Tensor<1> {
    let [b, k] = student.dims();
    let rest = (1.0 - correct_prob) / (k as f64 - 1.0);
    let onehot = targets.one_hot::<2>(k).float();
    let virtual_teacher = onehot.mul_scalar(correct_prob - rest).add_scalar(rest);
    let q = softmax(virtual_teacher.div_scalar(temperature), 1);
    let log_ps = log_softmax(student, 1);
    (q.clone() * (q.log() - log_ps))
        .sum()
        .div_scalar((b * k) as f64)
        .mul_scalar(multiplier)
}

impl TfKdConfig {
    pub(crate) fn build(&self, ctx: &BuildContext<'_>, _aux: &mut Vec<Aux>) -> Result<Built> {
        ctx.require_task(crate::tasks::Task::Classification, "tf-kd")?;
        let cfg = |m: String| Err(DistillError::Config(m));
        if !(self.correct_prob > 0.0 && self.correct_prob < 1.0) {
            return cfg(format!(
                "tf-kd.correct_prob must be in (0, 1), got {}",
                self.correct_prob
            ));
        }
        if !(self.temperature.is_finite() && self.temperature > 0.0) {
            return cfg(format!(
                "tf-kd.temperature must be positive, got {}",
                self.temperature
            ));
        }
        let student = ctx.student(&self.student)?;
        let shape = ctx.shape(Side::Student(student), "logits")?;
        if shape.get(1).is_none_or(|&k| k < 2) {
            return cfg(format!(
                "tf-kd needs at least two classes, got logits of shape {shape:?}"
            ));
        }
        Ok(Built::new(
            self.weight,
            TfKd {
                a: self.correct_prob,
                t: self.temperature,
                m: self.multiplier,
                student,
            },
        ))
    }
}

struct TfKd {
    a: f64,
    t: f64,
    m: f64,
    student: usize,
}

impl KnowledgeTerm for TfKd {
    fn forward(&self, _aux: &[Aux], ctx: &StepContext<'_>) -> Vec<(String, Tensor<1>)> {
        let s = ctx.students[self.student].logits.clone();
        let loss = tf_kd_loss(s, ctx.targets.classes(), self.a, self.t, self.m);
        vec![("tf-kd".into(), loss)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::knowledge::testing::{fixture, grad_of, labels, tensor2};

    #[test]
    fn value_and_gradient_match_pytorch() {
        let f = fixture("tf_kd");
        let dev = Device::flex().autodiff();
        for case in f.cases() {
            let s = tensor2(case.input("student"), &dev).require_grad();
            let y = labels(case.input("target"), &dev);
            let loss = tf_kd_loss(
                s.clone(),
                y,
                case.param("correct_prob"),
                case.param("temperature"),
                case.param("multiplier"),
            );
            case.assert_value(loss.clone());
            case.assert_grad("student", grad_of(&loss, &s));
        }
    }

    #[test]
    fn the_student_that_predicts_the_virtual_teacher_has_zero_loss() {
        let dev = Device::flex().autodiff();
        // softmax(p_d / T) is itself a softmax of logits p_d / T: a student with those logits
        // matches it exactly.
        let (a, t) = (0.9, 2.0);
        let rest: f64 = (1.0 - a) / 2.0;
        let z = Tensor::<2>::from_floats(
            [[(rest / t) as f32, (a / t) as f32, (rest / t) as f32]],
            &dev,
        )
        .require_grad();
        let y = Tensor::<1, Int>::from_ints([1], &dev);
        let loss = tf_kd_loss(z.clone(), y, a, t, 1.0);
        assert!(loss.clone().into_scalar::<f32>().abs() < 1e-6);
        assert!(grad_of(&loss, &z).iter().all(|g| g.abs() < 1e-6));
    }
}
