//! Wide residual networks (Zagoruyko & Komodakis, BMVC 2016) as RepDistiller defines them for
//! CIFAR (`models/wrn.py`): `wrn_16_1`, `wrn_16_2`, `wrn_40_1`, `wrn_40_2` (depth = 6n + 4, n
//! pre-activation blocks per stage, filters 16 · [1, k, 2k, 4k]).
//!
//! A block is BN-ReLU-conv3×3-BN-ReLU-conv3×3 plus a shortcut. Where the block changes width,
//! the first BN-ReLU is applied to the input itself and a 1×1 convolution of that activated input
//! is the shortcut (`convShortcut`); otherwise the shortcut is the input. After the last stage
//! come BN-ReLU, global average pooling (RepDistiller's 8×8 average pool on 32×32 inputs) and
//! the linear head. Convolutions have no bias.

use crate::models::conv::ConvForward;
use burn::nn::conv::Conv2d;
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::relu;

use super::interop::{key_map, KeyMap};
use super::precision::NormF32;
use super::resnet::conv;
use super::taps::{Feature, Taps};

/// RepDistiller's names: Burn's, except the shortcut convolution (`convShortcut`).
pub fn from_pytorch() -> KeyMap {
    key_map(&[(r"^module\.", ""), (r"\.convShortcut\.", ".conv_shortcut.")])
}

/// The inverse of [`from_pytorch`].
pub fn to_pytorch() -> KeyMap {
    key_map(&[(r"\.conv_shortcut\.", ".convShortcut.")])
}

/// A pre-activation block.
#[derive(Module, Debug)]
pub struct WrnBlock {
    bn1: BatchNorm,
    conv1: Conv2d,
    bn2: BatchNorm,
    conv2: Conv2d,
    conv_shortcut: Option<Conv2d>,
}

impl WrnBlock {
    fn new(cin: usize, cout: usize, stride: usize, device: &Device) -> Self {
        Self {
            bn1: BatchNormConfig::new(cin).init(device),
            conv1: conv(cin, cout, 3, stride, device),
            bn2: BatchNormConfig::new(cout).init(device),
            conv2: conv(cout, cout, 3, 1, device),
            conv_shortcut: (cin != cout).then(|| conv(cin, cout, 1, stride, device)),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let act = relu(self.bn1.norm(x.clone()));
        let out = relu(self.bn2.norm(self.conv1.run(act.clone())));
        let out = self.conv2.run(out);
        match &self.conv_shortcut {
            // the width changes: the shortcut convolves the activated input
            Some(s) => s.run(act) + out,
            None => x + out,
        }
    }
}

/// A stage: RepDistiller's `NetworkBlock` (its blocks under `layer`).
#[derive(Module, Debug)]
pub struct WrnStage {
    layer: Vec<WrnBlock>,
}

/// A CIFAR wide ResNet.
///
/// Taps: `stem` (the first convolution, RepDistiller's `f0`), `stage{1,2,3}` (each stage's
/// output, before any normalisation: its `f1`–`f3`), `head` (after the final BN-ReLU),
/// `embedding` (global average pool, its `f4`) and `logits`.
#[derive(Module, Debug)]
pub struct WideResNet {
    conv1: Conv2d,
    block1: WrnStage,
    block2: WrnStage,
    block3: WrnStage,
    bn1: BatchNorm,
    fc: Linear,
}

impl WideResNet {
    /// A WRN of `depth` (6n + 4) and widening factor `k` for `channels`-channel images.
    pub fn new(channels: usize, depth: usize, k: usize, classes: usize, device: &Device) -> Self {
        let n = (depth - 4) / 6;
        let widths = [16, 16 * k, 32 * k, 64 * k];
        let stage = |s: usize| WrnStage {
            layer: (0..n)
                .map(|b| {
                    let cin = if b == 0 { widths[s] } else { widths[s + 1] };
                    let stride = if s > 0 && b == 0 { 2 } else { 1 };
                    WrnBlock::new(cin, widths[s + 1], stride, device)
                })
                .collect(),
        };
        Self {
            conv1: conv(channels, widths[0], 3, 1, device),
            block1: stage(0),
            block2: stage(1),
            block3: stage(2),
            bn1: BatchNormConfig::new(widths[3]).init(device),
            fc: LinearConfig::new(widths[3], classes).init(device),
        }
    }

    /// Forward pass.
    pub fn forward(&self, x: Tensor<4>) -> Taps {
        let mut h = self.conv1.run(x);
        let mut features = vec![("stem".to_string(), Feature::Map(h.clone()))];
        for (s, stage) in [&self.block1, &self.block2, &self.block3]
            .iter()
            .enumerate()
        {
            for blk in &stage.layer {
                h = blk.forward(h);
            }
            features.push((format!("stage{}", s + 1), Feature::Map(h.clone())));
        }
        let h = relu(self.bn1.norm(h));
        features.push(("head".into(), Feature::Map(h.clone())));
        Taps::pooled(h, features, |p| self.fc.forward(p))
    }
}
