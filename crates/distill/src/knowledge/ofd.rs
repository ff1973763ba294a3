//! Overhaul of feature distillation: pre-ReLU teacher features, a margin for the teacher's
//! negative responses, and a partial L2 that ignores what the ReLU would discard anyway.

use burn::prelude::*;
use burn::tensor::module::adaptive_avg_pool2d;
use burn::tensor::TensorData;
use serde::{Deserialize, Serialize};

use super::ab::default_preact_taps;
use super::connector::ConvConnector;
use super::method::{Built, MethodInfo};
use super::role::RoleRef;
use super::term::{BuildContext, KnowledgeTerm, Level, StepContext};
use super::Aux;
use crate::error::Result;
use crate::models::Feature;

/// Catalogue entry.
pub const INFO: MethodInfo = MethodInfo {
    name: "ofd",
    family: "intermediate",
    description: "overhaul of feature distillation: partial L2 between a 1×1 conv-BN connector of the student's and the teacher's pre-ReLU maps, negatives clipped at a per-channel margin",
    citation: "Heo et al., A Comprehensive Overhaul of Feature Distillation, ICCV 2019",
    taps: "student_taps, teacher_taps: pre-activation feature maps (default stage1_pre..stage3_pre)",
};

/// `method = "ofd"`: OFD.
///
/// # Formula
/// Per level, with `s` the connector output, `t` the teacher pre-activation (average-pooled to
/// `s`'s size) and `m` the channel's margin:
/// `ℓ = Σ_{C,H,W} mean_B [ (s − m)²·[s > m ∧ t ≤ m] + (s − t)²·[s > t ∧ m < t ≤ 0] + (s − t)²·[t > 0] ]`;
/// `L = Σ_i ℓ_i / 2^(n−i−1)` (deepest level weight 1).
///
/// # Margin
/// `m = E[x | x < 0]` for `x ~ N(μ, σ²)`: `m = −σ·φ(μ/σ)/Φ(−μ/σ) + μ`, or `−3σ` when
/// `Φ(−μ/σ) ≤ 0.001`. As mdistiller, `σ = |γ|`, `μ = β` of the teacher's batch norm before the
/// ReLU when the teacher has one there (CIFAR ResNets' `stage{k}_pre`); for a teacher without
/// batch norm (LeNet, MLP) `μ`, `σ` are the channel's mean and (unbiased) standard deviation on
/// the probe batch, as the data-calibrated variant of OFD does.
///
/// # Conventions (mdistiller `distillers/OFD.py`)
/// Connector: 1×1 conv (no bias, `N(0, 2/c_out)`) + batch norm; weight 0.001 (mdistiller
/// `FEAT_WEIGHT`, i.e. the original code's `/ 1000`) with CE at 1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OfdConfig {
    /// Weight in the objective (default 0.001).
    #[serde(default = "default_weight")]
    pub weight: f64,
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

fn default_weight() -> f64 {
    1e-3
}

/// Standard normal CDF.
fn phi_cdf(x: f64) -> f64 {
    0.5 * libm::erfc(-x / std::f64::consts::SQRT_2)
}

/// OFD's margin of one channel with pre-activation mean `mean` and scale `std`.
pub fn ofd_margin(std: f64, mean: f64) -> f64 {
    let s = std.abs().max(1e-12);
    let cdf = phi_cdf(-mean / s);
    if cdf > 0.001 {
        -s * (-(mean / s).powi(2) / 2.0).exp() / (2.0 * std::f64::consts::PI).sqrt() / cdf + mean
    } else {
        -3.0 * s
    }
}

/// OFD's loss of one level (see [`OfdConfig`]); `margin` is `[C]`.
pub fn ofd_level_loss(s: Tensor<4>, t: Tensor<4>, margin: Tensor<1>) -> Tensor<1> {
    let [b, c, h, w] = s.dims();
    let t = if t.dims()[2..] == [h, w] {
        t
    } else {
        adaptive_avg_pool2d(t, [h, w])
    };
    let m = margin.reshape([1, c, 1, 1]).expand([b, c, h, w]);
    let t_le_m = t.clone().lower_equal(m.clone());
    let first = (s.clone() - m.clone()).powi_scalar(2).mask_fill(
        s.clone()
            .lower_equal(m.clone())
            .bool_or(t_le_m.clone().bool_not()),
        0.0,
    );
    let diff = (s.clone() - t.clone()).powi_scalar(2);
    let t_pos = t.clone().greater_elem(0.0);
    // [s > t ∧ m < t ≤ 0] or [t > 0]
    let keep = s
        .greater(t)
        .bool_and(t_le_m.bool_not())
        .bool_and(t_pos.clone().bool_not())
        .bool_or(t_pos);
    let second = diff.mask_fill(keep.bool_not(), 0.0);
    (first + second).sum().div_scalar(b as f64)
}

/// OFD over levels (shallow to deep), with the `2^−(n−i−1)` level weights.
pub fn ofd_loss(levels: Vec<(Tensor<4>, Tensor<4>, Tensor<1>)>) -> Tensor<1> {
    let n = levels.len() as i32;
    levels
        .into_iter()
        .enumerate()
        .map(|(i, (s, t, m))| ofd_level_loss(s, t, m).div_scalar(2f64.powi(n - i as i32 - 1)))
        .reduce(|a, b| a + b)
        .expect("at least one level")
}

struct Ofd {
    levels: Vec<Level>,
    connectors: Vec<usize>,
    margins: Vec<Vec<f32>>,
    student: usize,
    teacher: usize,
}

impl OfdConfig {
    pub(crate) fn build(&self, ctx: &BuildContext<'_>, aux: &mut Vec<Aux>) -> Result<Built> {
        let student = ctx.student(&self.student)?;
        let teacher = ctx.teacher(&self.teacher)?;
        let levels = ctx.levels(
            "ofd",
            (student, &self.student_taps),
            (teacher, &self.teacher_taps),
            true,
        )?;
        let mut connectors = Vec::new();
        let mut margins = Vec::new();
        for l in &levels {
            aux.push(Aux::Conv(ConvConnector::conv1x1_bn(
                l.student_shape[1],
                l.teacher_shape[1],
                ctx.device,
            )));
            connectors.push(aux.len() - 1);
            let stats = ctx
                .teacher_nets
                .get(teacher)
                .and_then(|n| n.bn_before(&l.teacher))
                .map(|(g, b)| {
                    g.iter()
                        .zip(&b)
                        .map(|(&g, &b)| (g as f64, b as f64))
                        .collect::<Vec<_>>()
                })
                .or_else(|| {
                    ctx.teacher_probe(teacher)
                        .and_then(|taps| taps.get(&l.teacher))
                        .map(channel_stats)
                })
                .unwrap_or_else(|| vec![(1.0, 0.0); l.teacher_shape[1]]);
            margins.push(
                stats
                    .into_iter()
                    .map(|(std, mean)| ofd_margin(std, mean) as f32)
                    .collect(),
            );
        }
        Ok(Built::new(
            self.weight,
            Ofd {
                levels,
                connectors,
                margins,
                student,
                teacher,
            },
        ))
    }
}

/// Per-channel `(std, mean)` of a feature map over batch and space (unbiased std).
fn channel_stats(f: Feature) -> Vec<(f64, f64)> {
    let Feature::Map(m) = f else {
        unreachable!("levels are checked to be feature maps")
    };
    let [b, c, h, w] = m.dims();
    let v: Vec<f32> = m.swap_dims(0, 1).into_data().iter::<f32>().collect();
    let per = b * h * w;
    (0..c)
        .map(|ch| {
            let xs = &v[ch * per..(ch + 1) * per];
            let mean = xs.iter().map(|&x| x as f64).sum::<f64>() / per as f64;
            let var = xs.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>()
                / (per.max(2) - 1) as f64;
            (var.sqrt(), mean)
        })
        .collect()
}

impl KnowledgeTerm for Ofd {
    fn forward(&self, aux: &[Aux], ctx: &StepContext<'_>) -> Vec<(String, Tensor<1>)> {
        let levels = self
            .levels
            .iter()
            .zip(&self.connectors)
            .zip(&self.margins)
            .map(|((l, &c), m)| {
                let s = aux[c]
                    .forward(ctx.student(self.student, &l.student))
                    .into_map();
                let t = ctx.teacher(self.teacher, &l.teacher).into_map();
                let margin = Tensor::from_data(TensorData::new(m.clone(), [m.len()]), &s.device());
                (s, t, margin)
            })
            .collect();
        vec![("ofd".into(), ofd_loss(levels))]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::knowledge::testing::{assert_grads, fixture, leaves4, tensor, tensor4};

    #[test]
    fn value_and_gradient_match_mdistiller() {
        let dev = Device::flex().autodiff();
        for case in fixture("ofd").cases() {
            let names = ["s0", "s1"];
            let s = leaves4(case, &names, &dev);
            let levels = s
                .iter()
                .enumerate()
                .map(|(i, x)| {
                    (
                        x.clone(),
                        tensor4(case.input(&format!("t{i}")), &dev),
                        tensor::<1>(case.input(&format!("m{i}")), &dev),
                    )
                })
                .collect();
            let loss = ofd_loss(levels);
            case.assert_value(loss.clone());
            assert_grads(case, &loss, &names, &s);
        }
    }

    #[test]
    fn margin_matches_reference_formula() {
        // mdistiller's formula, Φ from math.erfc (what scipy.stats.norm.cdf computes), float64.
        for case in fixture("ofd_margin").cases() {
            let got = ofd_margin(case.param("std"), case.param("mean"));
            assert!(
                (got - case.value).abs() < 1e-9,
                "{}: {got} vs {}",
                case.name,
                case.value
            );
        }
    }
}
