//! Multi-teacher KD: the student matches several frozen teachers' softened distributions at
//! once, with the teachers combined by averaged logits, fixed weights, or per-sample confidence.

use burn::prelude::*;
use burn::tensor::activation::{log_softmax, softmax};
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
    name: "mt-kd",
    family: "response",
    description: "KD from several teachers: averaged logits, fixed weights, or per-sample confidence weights (CA-MKD)",
    citation: "You et al., Learning from Multiple Teacher Networks, KDD 2017; Zhang, Chen & Wang, Confidence-Aware Multi-Teacher KD (CA-MKD), ICASSP 2022",
    taps: "student logits, each teacher's logits",
};

/// How the teachers are combined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Weighting {
    /// KD against the mean of the teachers' logits.
    Logits,
    /// `Σ_k w_k · KD(s, t_k)` with the fixed `weights` (default: equal, `1/K`: CA-MKD's
    /// `AVERAGE_LOSS`).
    Fixed,
    /// CA-MKD's per-sample confidence weights: `w_k(b) = (1 − softmax_k(CE(t_k(b), y_b))) / (K − 1)`.
    Confidence,
}

/// `method = "mt-kd"`: KD from several teachers.
///
/// # Formula
/// With `KL_k(b) = T² Σ_c p_k[b,c] (log p_k[b,c] − log p_s[b,c])`, `p = softmax(z / T)`:
/// - `logits`: `(1/B) Σ_b KL(b)` against `z̄ = (1/K) Σ_k z_k` (Hinton KD on the mean logits);
/// - `fixed`: `Σ_k w_k (1/B) Σ_b KL_k(b)`;
/// - `confidence`: `(1/(B·K)) Σ_b Σ_k w_k(b) KL_k(b)` with
///   `w_k(b) = (1 − softmax_k(CE_k(b))) / (K − 1)`, `CE_k(b)` the teacher's cross-entropy on the
///   label.
///
/// # Conventions (CA-MKD `helper/loops.py`, `distiller_zoo/KD.py`)
/// - `T²` inside the loss, as `kd`;
/// - `confidence` divides by `B·K` although its weights already sum to 1 over the teachers (the
///   reference code does; with `K` teachers the term is `1/K` of a weighted KD), and its weights
///   are constants (computed from the frozen teachers);
/// - `fixed` weights are used as given (not renormalised).
///
/// # Shapes
/// student and teacher logits `[B, C]`, labels `[B]`; output `[1]`.
///
/// # Defaults
/// `T = 4`, weight 1, every `[[teacher]]`, `weighting = "logits"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MtKdConfig {
    /// Weight in the objective (default 1).
    #[serde(default = "super::defaults::one")]
    pub weight: f64,
    /// Softmax temperature T (default 4).
    #[serde(default = "default_temperature")]
    pub temperature: f64,
    /// How the teachers are combined (default `logits`).
    #[serde(default = "default_weighting")]
    pub weighting: Weighting,
    /// Per-teacher weights of `fixed`, in the order of `teachers`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights: Option<Vec<f64>>,
    /// The teachers (default: every frozen `[[teacher]]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub teachers: Option<Vec<RoleRef>>,
    /// The trainable role the term trains (default: the recipe's `student`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub student: Option<RoleRef>,
}

fn default_temperature() -> f64 {
    4.0
}
fn default_weighting() -> Weighting {
    Weighting::Logits
}

/// Per-sample `T² · KL(p_t ‖ p_s)` summed over classes, `[B]`.
fn kl_per_sample(student: Tensor<2>, teacher: Tensor<2>, t: f64) -> Tensor<1> {
    let log_ps = log_softmax(student.div_scalar(t), 1);
    let log_pt = log_softmax(teacher.div_scalar(t), 1);
    let n = log_ps.dims()[0];
    (log_pt.clone().exp() * (log_pt - log_ps))
        .sum_dim(1)
        .reshape([n])
        .mul_scalar(t * t)
}

/// KD against the mean of the teachers' logits.
pub fn mt_kd_logits(student: Tensor<2>, teachers: &[Tensor<2>], t: f64) -> Tensor<1> {
    kd_loss(student, mean_of(teachers), t)
}

/// `Σ_k w_k · KD(s, t_k)`.
pub fn mt_kd_fixed(
    student: Tensor<2>,
    teachers: &[Tensor<2>],
    weights: &[f64],
    t: f64,
) -> Tensor<1> {
    teachers
        .iter()
        .zip(weights)
        .map(|(z, &w)| kd_loss(student.clone(), z.clone(), t).mul_scalar(w))
        .reduce(|a, b| a + b)
        .expect("at least one teacher")
}

/// CA-MKD's confidence-weighted KD (see [`MtKdConfig`]).
pub fn mt_kd_confidence(
    student: Tensor<2>,
    teachers: &[Tensor<2>],
    targets: Tensor<1, Int>,
    t: f64,
) -> Tensor<1> {
    let k = teachers.len();
    let [b, _] = student.dims();
    // CE of each teacher on each sample, [K, B].
    let ce = Tensor::stack::<2>(
        teachers
            .iter()
            .map(|z| {
                -log_softmax(z.clone(), 1)
                    .gather(1, targets.clone().reshape([b, 1]))
                    .reshape([b])
            })
            .collect(),
        0,
    );
    let attention = (softmax(ce, 0).neg() + 1.0)
        .div_scalar((k - 1) as f64)
        .detach();
    let kl = Tensor::stack::<2>(
        teachers
            .iter()
            .map(|z| kl_per_sample(student.clone(), z.clone(), t))
            .collect(),
        0,
    );
    (attention * kl).sum().div_scalar((b * k) as f64)
}

impl MtKdConfig {
    pub(crate) fn build(&self, ctx: &BuildContext<'_>, _aux: &mut Vec<Aux>) -> Result<Built> {
        let cfg = |m: String| Err(DistillError::Config(m));
        if !(self.temperature.is_finite() && self.temperature > 0.0) {
            return cfg(format!(
                "mt-kd.temperature must be positive, got {}",
                self.temperature
            ));
        }
        if self.weighting == Weighting::Confidence {
            ctx.require_task(crate::tasks::Task::Classification, "mt-kd (confidence)")?;
        }
        let student = ctx.student(&self.student)?;
        let names: Vec<Option<RoleRef>> = match &self.teachers {
            Some(list) => list.iter().cloned().map(Some).collect(),
            None => ctx
                .ready_teachers()
                .into_iter()
                .map(|n| Some(RoleRef(n.to_string())))
                .collect(),
        };
        if names.len() < 2 {
            return cfg(format!(
                "mt-kd needs at least two teachers, got {} ({}); add [[teacher]] sections or list them in `teachers`, or use `kd` for one teacher",
                names.len(),
                ctx.frozen_names.join(", ")
            ));
        }
        let teachers = names
            .iter()
            .map(|n| ctx.teacher(n))
            .collect::<Result<Vec<_>>>()?;
        for &t in &teachers {
            ctx.same_shape(
                "mt-kd",
                (Side::Student(student), "logits"),
                (Side::Teacher(t), "logits"),
                "; every teacher and the student must predict the same classes",
            )?;
        }
        let weights = match (self.weighting, &self.weights) {
            (Weighting::Fixed, Some(w)) => {
                if w.len() != teachers.len() || w.iter().any(|v| !(v.is_finite() && *v >= 0.0)) {
                    return cfg(format!(
                        "mt-kd.weights must give one finite weight ≥ 0 per teacher ({} teachers), got {w:?}",
                        teachers.len()
                    ));
                }
                w.clone()
            }
            (Weighting::Fixed, None) => vec![1.0 / teachers.len() as f64; teachers.len()],
            (_, Some(_)) => {
                return cfg(
                    "mt-kd.weights applies to weighting = \"fixed\" only; remove it or set weighting = \"fixed\"".into(),
                )
            }
            (_, None) => Vec::new(),
        };
        Ok(Built::new(
            self.weight,
            MtKd {
                t: self.temperature,
                weighting: self.weighting,
                weights,
                student,
                teachers,
            },
        ))
    }
}

struct MtKd {
    t: f64,
    weighting: Weighting,
    weights: Vec<f64>,
    student: usize,
    teachers: Vec<usize>,
}

impl KnowledgeTerm for MtKd {
    fn forward(&self, _aux: &[Aux], ctx: &StepContext<'_>) -> Vec<(String, Tensor<1>)> {
        let s = ctx.students[self.student].logits.clone();
        let ts: Vec<Tensor<2>> = self
            .teachers
            .iter()
            .map(|&i| ctx.teacher_logits(i))
            .collect();
        let loss = match self.weighting {
            Weighting::Logits => mt_kd_logits(s, &ts, self.t),
            Weighting::Fixed => mt_kd_fixed(s, &ts, &self.weights, self.t),
            Weighting::Confidence => mt_kd_confidence(s, &ts, ctx.targets.classes(), self.t),
        };
        vec![("mt-kd".into(), loss)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::knowledge::testing::{fixture, grad_of, int_tensor, tensor2};

    #[test]
    fn values_and_gradients_match_pytorch() {
        let dev = Device::flex().autodiff();
        for (name, weighting) in [
            ("mt_kd_logits", Weighting::Logits),
            ("mt_kd_fixed", Weighting::Fixed),
            ("mt_kd_confidence", Weighting::Confidence),
        ] {
            for case in fixture(name).cases() {
                let s = tensor2(case.input("student"), &dev).require_grad();
                let ts: Vec<Tensor<2>> = ["t0", "t1", "t2"]
                    .iter()
                    .map(|k| tensor2(case.input(k), &dev))
                    .collect();
                let t = case.param("temperature");
                let loss = match weighting {
                    Weighting::Logits => mt_kd_logits(s.clone(), &ts, t),
                    Weighting::Fixed => mt_kd_fixed(
                        s.clone(),
                        &ts,
                        &[case.param("w0"), case.param("w1"), case.param("w2")],
                        t,
                    ),
                    Weighting::Confidence => mt_kd_confidence(
                        s.clone(),
                        &ts,
                        int_tensor::<1>(case.input("target"), &dev),
                        t,
                    ),
                };
                case.assert_value(loss.clone());
                case.assert_grad("student", grad_of(&loss, &s));
            }
        }
    }

    #[test]
    fn identical_teachers_reduce_to_kd() {
        let dev = Device::flex().autodiff();
        let s = Tensor::<2>::from_floats([[1.0, -2.0, 0.5], [0.3, 0.1, -1.0]], &dev);
        let t = Tensor::<2>::from_floats([[2.0, 0.0, -1.0], [-0.5, 1.5, 0.2]], &dev);
        let kd: f32 = kd_loss(s.clone(), t.clone(), 4.0).into_scalar();
        let ts = [t.clone(), t.clone(), t];
        let mean: f32 = mt_kd_logits(s.clone(), &ts, 4.0).into_scalar();
        let fixed: f32 = mt_kd_fixed(s.clone(), &ts, &[1.0 / 3.0; 3], 4.0).into_scalar();
        let y = Tensor::<1, Int>::from_ints([0, 1], &dev);
        // Equal confidences: every weight is (1 − 1/3) / 2 = 1/3, and the sum is divided by K.
        let conf: f32 = mt_kd_confidence(s, &ts, y, 4.0).into_scalar();
        assert!(
            (mean - kd).abs() < 1e-5 && (fixed - kd).abs() < 1e-5,
            "{mean} {fixed} {kd}"
        );
        assert!((conf - kd / 3.0).abs() < 1e-5, "{conf} vs {kd} / 3");
    }
}
