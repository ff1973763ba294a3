//! CIFAR-style ResNets (He et al., 2016) as defined by RepDistiller and mdistiller:
//! `resnet{8,14,20,32,44,56,110}` (filters 16-16-32-64) and the ×4-wide `resnet8x4` and
//! `resnet32x4` (filters 32-64-128-256). Depth = 6n + 2 with n basic blocks per stage.

use crate::models::conv::ConvForward;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Initializer, Linear, LinearConfig, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::activation::relu;

use super::precision::NormF32;
use super::taps::{Feature, Taps};

/// A `k × k` convolution without bias, padding `k / 2`, Kaiming-normal (fan-out) initialised as
/// the CIFAR reference models do (RepDistiller's ResNets and WRNs).
pub(crate) fn conv(cin: usize, cout: usize, k: usize, stride: usize, device: &Device) -> Conv2d {
    let p = k / 2;
    Conv2dConfig::new([cin, cout], [k, k])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(p, p, p, p))
        .with_bias(false)
        // kaiming_normal_(mode="fan_out", nonlinearity="relu"), as the reference models.
        .with_initializer(Initializer::KaimingNormal {
            gain: std::f64::consts::SQRT_2,
            fan_out_only: true,
        })
        .init(device)
}

/// RepDistiller's (`models/resnet.py`) names for this model's tensors, as rewrites of Burn's
/// module paths applied in order on export (normalisation `gamma`/`beta` become
/// `weight`/`bias` and linear weights are transposed by burn-store's PyTorch adapter).
pub const TO_PYTORCH: &[(&str, &str)] = &[
    (r"^stages\.0\.", "layer1."),
    (r"^stages\.1\.", "layer2."),
    (r"^stages\.2\.", "layer3."),
    (r"\.shortcut\.conv\.", ".downsample.0."),
    (r"\.shortcut\.bn\.", ".downsample.1."),
];

/// The inverse of [`TO_PYTORCH`], applied on import (also dropping the `module.` prefix of a
/// model saved from `nn.DataParallel`).
pub const FROM_PYTORCH: &[(&str, &str)] = &[
    (r"^module\.", ""),
    (r"^layer1\.", "stages.0."),
    (r"^layer2\.", "stages.1."),
    (r"^layer3\.", "stages.2."),
    (r"\.downsample\.0\.", ".shortcut.conv."),
    (r"\.downsample\.1\.", ".shortcut.bn."),
];

/// 1×1 projection shortcut used when a block changes width or resolution.
#[derive(Module, Debug)]
pub struct Shortcut {
    conv: Conv2d,
    bn: BatchNorm,
}

/// Two 3×3 convolutions with batch normalisation and a residual connection.
#[derive(Module, Debug)]
pub struct BasicBlock {
    conv1: Conv2d,
    bn1: BatchNorm,
    conv2: Conv2d,
    bn2: BatchNorm,
    shortcut: Option<Shortcut>,
}

impl BasicBlock {
    fn new(cin: usize, cout: usize, stride: usize, device: &Device) -> Self {
        let shortcut = (stride != 1 || cin != cout).then(|| Shortcut {
            conv: conv(cin, cout, 1, stride, device),
            bn: BatchNormConfig::new(cout).init(device),
        });
        Self {
            conv1: conv(cin, cout, 3, stride, device),
            bn1: BatchNormConfig::new(cout).init(device),
            conv2: conv(cout, cout, 3, 1, device),
            bn2: BatchNormConfig::new(cout).init(device),
            shortcut,
        }
    }

    /// Returns the block output before its final ReLU (the "pre-activation").
    fn forward_pre(&self, x: Tensor<4>) -> Tensor<4> {
        let out = relu(self.bn1.norm(self.conv1.run(x.clone())));
        let out = self.bn2.norm(self.conv2.run(out));
        let res = match &self.shortcut {
            Some(s) => s.bn.norm(s.conv.run(x)),
            None => x,
        };
        out + res
    }
}

/// A CIFAR-style ResNet.
///
/// Taps: `stem` (after the first conv-BN-ReLU), `stage{1,2,3}_pre` (last block of the stage before
/// its ReLU), `stage{1,2,3}`, `embedding` (global average pool) and `logits`.
#[derive(Module, Debug)]
pub struct ResNet {
    conv1: Conv2d,
    bn1: BatchNorm,
    stages: Vec<Vec<BasicBlock>>,
    fc: Linear,
}

impl ResNet {
    /// Builds a ResNet of `depth` (6n + 2) with the four filter counts (stem, stage 1..3).
    pub fn new(
        channels: usize,
        depth: usize,
        filters: [usize; 4],
        classes: usize,
        device: &Device,
    ) -> Self {
        let n = (depth - 2) / 6;
        let mut cin = filters[0];
        let stages = (0..3)
            .map(|s| {
                let cout = filters[s + 1];
                (0..n)
                    .map(|b| {
                        let stride = if s > 0 && b == 0 { 2 } else { 1 };
                        let blk = BasicBlock::new(cin, cout, stride, device);
                        cin = cout;
                        blk
                    })
                    .collect()
            })
            .collect();
        Self {
            conv1: conv(channels, filters[0], 3, 1, device),
            bn1: BatchNormConfig::new(filters[0]).init(device),
            stages,
            fc: LinearConfig::new(filters[3], classes).init(device),
        }
    }

    /// Scale and shift of the batch norm that feeds tap `stage{k}_pre` (the last block's `bn2`,
    /// before the residual sum and the ReLU), as mdistiller's `get_bn_before_relu`.
    pub fn bn_before(&self, tap: &str) -> Option<(Vec<f32>, Vec<f32>)> {
        let k: usize = tap
            .strip_prefix("stage")?
            .strip_suffix("_pre")?
            .parse()
            .ok()?;
        let bn = &self.stages.get(k.checked_sub(1)?)?.last()?.bn2;
        let read = |t: Tensor<1>| t.into_data().iter::<f32>().collect::<Vec<_>>();
        Some((read(bn.gamma.val()), read(bn.beta.val())))
    }

    /// Forward pass.
    pub fn forward(&self, x: Tensor<4>) -> Taps {
        let mut h = relu(self.bn1.norm(self.conv1.run(x)));
        let mut features = vec![("stem".to_string(), Feature::Map(h.clone()))];
        for (s, stage) in self.stages.iter().enumerate() {
            let mut pre = h.clone();
            for blk in stage {
                pre = blk.forward_pre(h);
                h = relu(pre.clone());
            }
            features.push((format!("stage{}_pre", s + 1), Feature::Map(pre)));
            features.push((format!("stage{}", s + 1), Feature::Map(h.clone())));
        }
        Taps::pooled(h, features, |p| self.fc.forward(p))
    }
}
