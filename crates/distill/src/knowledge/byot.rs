//! Be Your Own Teacher (BYOT): self-distillation inside one network. Auxiliary classifiers on
//! intermediate taps learn from the labels, from the network's own deepest predictions and from
//! its deepest feature; no teacher model is needed.

use crate::models::conv::ConvForward;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::{log_softmax, relu, softmax};
use serde::{Deserialize, Serialize};

use super::method::{Built, MethodInfo};
use super::role::RoleRef;
use super::term::{
    default_embedding_tap, default_stage_taps, BuildContext, KnowledgeTerm, Side, StepContext,
};
use super::Aux;
use crate::error::{DistillError, Result};
use crate::models::Feature;

/// Catalogue entry.
pub const INFO: MethodInfo = MethodInfo {
    name: "byot",
    family: "self",
    description: "self-distillation: auxiliary classifiers on intermediate taps learn from the labels, the network's deepest predictions (T²-scaled soft cross-entropy) and its deepest feature (masked L2)",
    citation: "Zhang et al., Be Your Own Teacher: Improve the Performance of CNNs via Self Distillation, ICCV 2019",
    taps: "taps: the intermediate taps that get auxiliary classifiers (default stage1..3); feature_tap: the deepest feature (default embedding); the student's logits",
};

/// `method = "byot"`: Be Your Own Teacher.
///
/// # Formula
/// For each intermediate tap `i`, a head `h_i` gives a feature `f_i` (of the deepest feature's
/// width) and logits `z_i`. With the network's logits `z` and deepest feature `f`, both
/// detached, labels `y`:
/// `L = Σ_i (1 − α)·CE(z_i, y) + α·T²·(−(1/B) Σ_b Σ_k softmax(z/T)_bk · log softmax(z_i/T)_bk)
///  + β·Σ_{b,d} (f_i − f)²·[f_i > 0 ∨ f > 0]`.
/// The deepest classifier's `(1 − α)·CE(z, y)` is the recipe's `ce` term with weight `1 − α`.
///
/// # Conventions (authors' `pytorch-be-your-own-teacher/train.py`)
/// `kd_loss_function` is a soft cross-entropy (not a KL: no teacher-entropy term), averaged
/// over the batch and multiplied by `T²`; `feature_loss_function` is a *sum* over the batch and
/// the feature (hence the tiny β), counting only elements where either feature is positive.
/// Defaults are that script's: `T = 3`, `α = 0.1`, `β = 1e-6`.
///
/// # Heads
/// The paper's bottleneck (1×1 conv, k×k strided conv, 1×1 conv with batch norm and a residual
/// path) is reduced to a 1×1 convolution to the deepest feature's width with batch norm and
/// ReLU, then global average pooling (a flat tap gets a linear layer and ReLU), and a linear
/// classifier. The heads train with the network and are dropped at inference.
///
/// # Shapes
/// intermediate taps `[B, C, H, W]` or `[B, C]`; deepest feature `[B, D]`; logits `[B, K]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ByotConfig {
    /// Weight in the objective (default 1; α and β are inside).
    #[serde(default = "super::defaults::one")]
    pub weight: f64,
    /// Temperature T (default 3).
    #[serde(default = "three")]
    pub temperature: f64,
    /// α: the share of the soft targets against the labels in each head's loss (default 0.1).
    #[serde(default = "point_one")]
    pub alpha: f64,
    /// β: weight of the feature term (default 1e-6, for its sum reduction).
    #[serde(default = "tiny")]
    pub beta: f64,
    /// Intermediate taps that get an auxiliary classifier (default stage1..3).
    #[serde(default = "default_stage_taps")]
    pub taps: Vec<String>,
    /// The deepest feature the heads' features learn from (default embedding).
    #[serde(default = "default_embedding_tap")]
    pub feature_tap: String,
    /// The trainable role the term trains (default: the recipe's `student`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub student: Option<RoleRef>,
}

fn three() -> f64 {
    3.0
}
fn point_one() -> f64 {
    0.1
}
fn tiny() -> f64 {
    1e-6
}

/// One auxiliary head: a projection to the deepest feature's width, then a classifier.
#[derive(Module, Debug)]
pub struct ByotHead {
    conv: Option<Conv2d>,
    bn: Option<BatchNorm>,
    linear: Option<Linear>,
    fc: Linear,
}

impl ByotHead {
    fn new(tap: &[usize], width: usize, classes: usize, device: &Device) -> Result<Self> {
        let fc = LinearConfig::new(width, classes).init(device);
        match tap {
            [_, c, _, _] => Ok(Self {
                conv: Some(Conv2dConfig::new([*c, width], [1, 1]).init(device)),
                bn: Some(BatchNormConfig::new(width).init(device)),
                linear: None,
                fc,
            }),
            [_, c] => Ok(Self {
                conv: None,
                bn: None,
                linear: Some(LinearConfig::new(*c, width).init(device)),
                fc,
            }),
            other => Err(DistillError::Shape {
                context:
                    "byot: an intermediate tap must be a feature map [B, C, H, W] or flat [B, C]"
                        .into(),
                expected: vec![0, 0],
                got: other.to_vec(),
                fix: "; pick stage, conv or fc taps (see `distill models`)".into(),
            }),
        }
    }

    /// The head's feature `[B, D]` and logits `[B, K]`.
    fn forward(&self, f: Feature) -> (Tensor<2>, Tensor<2>) {
        let fea = match (&self.conv, &self.bn, &self.linear, f) {
            (Some(conv), Some(bn), _, Feature::Map(x)) => {
                let y = relu(bn.forward(conv.run(x)));
                let [b, c, _, _] = y.dims();
                y.mean_dim(3).mean_dim(2).reshape([b, c])
            }
            (_, _, Some(linear), f) => relu(linear.forward(f.flat())),
            (_, _, _, f) => panic!("byot head applied to a tap of another kind {:?}", f.shape()),
        };
        let logits = self.fc.forward(fea.clone());
        (fea, logits)
    }
}

/// BYOT's loss for given head outputs (see [`ByotConfig`] for the formula and conventions).
#[allow(clippy::too_many_arguments)]
pub fn byot_loss(
    head_logits: &[Tensor<2>],
    head_features: &[Tensor<2>],
    logits: Tensor<2>,
    feature: Tensor<2>,
    targets: Tensor<1, Int>,
    temperature: f64,
    alpha: f64,
    beta: f64,
) -> Tensor<1> {
    let [b, k] = logits.dims();
    let soft = softmax(logits.detach().div_scalar(temperature), 1);
    let feature = feature.detach();
    let onehot = targets.one_hot::<2>(k).float();
    head_logits
        .iter()
        .zip(head_features)
        .map(|(z, f)| {
            let ce = (onehot.clone() * log_softmax(z.clone(), 1))
                .sum()
                .neg()
                .div_scalar(b as f64);
            let kd = (soft.clone() * log_softmax(z.clone().div_scalar(temperature), 1))
                .sum()
                .neg()
                .div_scalar(b as f64)
                .mul_scalar(temperature * temperature);
            let either = f
                .clone()
                .greater_elem(0.0)
                .bool_or(feature.clone().greater_elem(0.0))
                .float();
            let feat = ((f.clone() - feature.clone()).powi_scalar(2) * either).sum();
            ce.mul_scalar(1.0 - alpha) + kd.mul_scalar(alpha) + feat.mul_scalar(beta)
        })
        .reduce(|a, b| a + b)
        .expect("at least one head")
}

impl ByotConfig {
    pub(crate) fn build(&self, ctx: &BuildContext<'_>, aux: &mut Vec<Aux>) -> Result<Built> {
        ctx.require_task(crate::tasks::Task::Classification, "byot")?;
        let cfg = |m: String| Err(DistillError::Config(m));
        if !(self.temperature.is_finite() && self.temperature > 0.0) {
            return cfg(format!(
                "byot.temperature must be positive, got {}",
                self.temperature
            ));
        }
        if !(0.0..=1.0).contains(&self.alpha) || self.beta < 0.0 {
            return cfg(format!(
                "byot.alpha must be in [0, 1] and byot.beta ≥ 0, got {} and {}",
                self.alpha, self.beta
            ));
        }
        if self.taps.is_empty() {
            return cfg("byot.taps must name at least one intermediate tap".into());
        }
        let student = ctx.student(&self.student)?;
        let feature = ctx.shape(Side::Student(student), &self.feature_tap)?;
        let [_, width] = feature[..] else {
            return Err(DistillError::Shape {
                context: format!(
                    "byot: feature_tap '{}' must be flat [B, D]",
                    self.feature_tap
                ),
                expected: vec![feature.first().copied().unwrap_or(0), 0],
                got: feature,
                fix: "; use the pooled embedding (`embedding`)".into(),
            });
        };
        let first = aux.len();
        for tap in &self.taps {
            let shape = ctx.shape(Side::Student(student), tap)?;
            aux.push(Aux::ByotHead(ByotHead::new(
                &shape,
                width,
                ctx.classes,
                ctx.device,
            )?));
        }
        Ok(Built::new(
            self.weight,
            Byot {
                cfg: self.clone(),
                first,
                student,
            },
        ))
    }
}

struct Byot {
    cfg: ByotConfig,
    first: usize,
    student: usize,
}

impl KnowledgeTerm for Byot {
    fn forward(&self, aux: &[Aux], ctx: &StepContext<'_>) -> Vec<(String, Tensor<1>)> {
        let (feats, logits): (Vec<_>, Vec<_>) = self
            .cfg
            .taps
            .iter()
            .enumerate()
            .map(|(i, tap)| {
                let Aux::ByotHead(head) = &aux[self.first + i] else {
                    unreachable!("registered at build")
                };
                head.forward(ctx.student(self.student, tap))
            })
            .unzip();
        let loss = byot_loss(
            &logits,
            &feats,
            ctx.students[self.student].logits.clone(),
            ctx.student(self.student, &self.cfg.feature_tap).flat(),
            ctx.targets.classes(),
            self.cfg.temperature,
            self.cfg.alpha,
            self.cfg.beta,
        );
        vec![("byot".into(), loss)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::knowledge::testing::{fixture, labels, tensor2};

    #[test]
    fn value_and_gradients_match_the_authors_loss() {
        let dev = Device::flex().autodiff();
        for case in fixture("byot").cases() {
            let z1 = tensor2(case.input("z1"), &dev).require_grad();
            let z2 = tensor2(case.input("z2"), &dev).require_grad();
            let f1 = tensor2(case.input("f1"), &dev).require_grad();
            let f2 = tensor2(case.input("f2"), &dev).require_grad();
            let z = tensor2(case.input("z"), &dev).require_grad();
            let f = tensor2(case.input("f"), &dev).require_grad();
            let loss = byot_loss(
                &[z1.clone(), z2.clone()],
                &[f1.clone(), f2.clone()],
                z.clone(),
                f.clone(),
                labels(case.input("target"), &dev),
                case.param("temperature"),
                case.param("alpha"),
                case.param("beta"),
            );
            case.assert_value(loss.clone());
            let grads = loss.backward();
            for (name, t) in [("z1", &z1), ("z2", &z2), ("f1", &f1), ("f2", &f2)] {
                case.assert_grad(
                    name,
                    t.grad(&grads).unwrap().into_data().iter::<f32>().collect(),
                );
            }
            // the deepest outputs are the targets: no gradient flows into them
            assert!(z
                .grad(&grads)
                .is_none_or(|g| g.into_data().iter::<f32>().all(|v| v == 0.0)));
            assert!(f
                .grad(&grads)
                .is_none_or(|g| g.into_data().iter::<f32>().all(|v| v == 0.0)));
        }
    }

    #[test]
    fn heads_fit_maps_and_flat_taps() {
        let dev = Device::flex();
        let map = ByotHead::new(&[2, 3, 4, 4], 5, 7, &dev).unwrap();
        let (f, z) = map.forward(Feature::Map(Tensor::ones([2, 3, 4, 4], &dev)));
        assert_eq!((f.dims(), z.dims()), ([2, 5], [2, 7]));
        let flat = ByotHead::new(&[2, 6], 5, 7, &dev).unwrap();
        let (f, z) = flat.forward(Feature::Flat(Tensor::ones([2, 6], &dev)));
        assert_eq!((f.dims(), z.dims()), ([2, 5], [2, 7]));
        assert!(ByotHead::new(&[2, 3, 4], 5, 7, &dev).is_err());
    }
}
