//! ShuffleNet V2 (Ma et al., ECCV 2018) as RepDistiller defines it for CIFAR
//! (`models/ShuffleNetv2.py`, `ShuffleV2` = net size 1): a 1×1 stem (24 channels, stride 1),
//! three stages of one down-sampling unit and 3, 7, 3 basic units (widths 116, 232, 464), a 1×1
//! conv to 1024 channels, global average pooling (RepDistiller's 4×4 average pool on 32×32
//! inputs) and a linear head; batch norm after every convolution.
//!
//! A basic unit splits the channels in halves, passes the first through and runs the second
//! through 1×1 conv-BN-ReLU, 3×3 depthwise conv-BN, 1×1 conv-BN-ReLU, then concatenates and
//! shuffles the channels (2 groups). A down-sampling unit runs the whole input through two
//! branches (3×3 depthwise stride-2 conv-BN, 1×1 conv-BN-ReLU; and 1×1 conv-BN-ReLU, 3×3
//! depthwise stride-2 conv-BN, 1×1 conv-BN-ReLU), each to half the width, then concatenates and
//! shuffles. Initialisation is Burn's default (only matters when trained from scratch).

use crate::models::conv::ConvForward;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::activation::relu;

use super::interop::KeyMap;
use super::precision::NormF32;
use super::taps::{Feature, Taps};

/// Basic units per stage and stage widths of `ShuffleV2`.
const BLOCKS: [usize; 3] = [3, 7, 3];
const WIDTHS: [usize; 3] = [116, 232, 464];
const STEM: usize = 24;
const LAST: usize = 1024;

/// A convolution without bias: `k × k`, `stride`, padding `k / 2`, `groups`.
fn conv(
    cin: usize,
    cout: usize,
    k: usize,
    stride: usize,
    groups: usize,
    device: &Device,
) -> Conv2d {
    let p = k / 2;
    Conv2dConfig::new([cin, cout], [k, k])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(p, p, p, p))
        .with_groups(groups)
        .with_bias(false)
        .init(device)
}

fn bn(c: usize, device: &Device) -> BatchNorm {
    BatchNormConfig::new(c).init(device)
}

/// Channel shuffle with 2 groups: `[N, C, H, W] → [N, 2, C/2, H, W] → [N, C/2, 2, H, W] → [N, C, H, W]`.
fn shuffle(x: Tensor<4>) -> Tensor<4> {
    let [n, c, h, w] = x.dims();
    x.reshape([n, 2, c / 2, h, w])
        .swap_dims(1, 2)
        .reshape([n, c, h, w])
}

/// A basic unit (RepDistiller's `BasicBlock`).
#[derive(Module, Debug)]
pub struct BasicUnit {
    conv1: Conv2d,
    bn1: BatchNorm,
    conv2: Conv2d,
    bn2: BatchNorm,
    conv3: Conv2d,
    bn3: BatchNorm,
}

impl BasicUnit {
    fn new(channels: usize, device: &Device) -> Self {
        let c = channels / 2;
        Self {
            conv1: conv(c, c, 1, 1, 1, device),
            bn1: bn(c, device),
            conv2: conv(c, c, 3, 1, c, device),
            bn2: bn(c, device),
            conv3: conv(c, c, 1, 1, 1, device),
            bn3: bn(c, device),
        }
    }

    /// The unit's output and its pre-activation (the concatenation before the last ReLU and the
    /// shuffle: RepDistiller's `preact`).
    fn forward(&self, x: Tensor<4>) -> (Tensor<4>, Tensor<4>) {
        let c = x.dims()[1];
        let (x1, x2) = (x.clone().narrow(1, 0, c / 2), x.narrow(1, c / 2, c - c / 2));
        let out = relu(self.bn1.norm(self.conv1.run(x2)));
        let out = self.bn2.norm(self.conv2.run(out));
        let pre = self.bn3.norm(self.conv3.run(out));
        let out = Tensor::cat(vec![x1.clone(), relu(pre.clone())], 1);
        (shuffle(out), Tensor::cat(vec![x1, pre], 1))
    }
}

/// A down-sampling unit (RepDistiller's `DownBlock`).
#[derive(Module, Debug)]
pub struct DownUnit {
    conv1: Conv2d,
    bn1: BatchNorm,
    conv2: Conv2d,
    bn2: BatchNorm,
    conv3: Conv2d,
    bn3: BatchNorm,
    conv4: Conv2d,
    bn4: BatchNorm,
    conv5: Conv2d,
    bn5: BatchNorm,
}

impl DownUnit {
    fn new(cin: usize, cout: usize, device: &Device) -> Self {
        let mid = cout / 2;
        Self {
            conv1: conv(cin, cin, 3, 2, cin, device),
            bn1: bn(cin, device),
            conv2: conv(cin, mid, 1, 1, 1, device),
            bn2: bn(mid, device),
            conv3: conv(cin, mid, 1, 1, 1, device),
            bn3: bn(mid, device),
            conv4: conv(mid, mid, 3, 2, mid, device),
            bn4: bn(mid, device),
            conv5: conv(mid, mid, 1, 1, 1, device),
            bn5: bn(mid, device),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let left = self.bn1.norm(self.conv1.run(x.clone()));
        let left = relu(self.bn2.norm(self.conv2.run(left)));
        let right = relu(self.bn3.norm(self.conv3.run(x)));
        let right = self.bn4.norm(self.conv4.run(right));
        let right = relu(self.bn5.norm(self.conv5.run(right)));
        shuffle(Tensor::cat(vec![left, right], 1))
    }
}

/// A stage: a down-sampling unit, then basic units (RepDistiller's `layerN.0` and `layerN.1…`).
#[derive(Module, Debug)]
pub struct Stage {
    down: DownUnit,
    basic: Vec<BasicUnit>,
}

/// The most basic units a stage has.
const MAX_BASIC: usize = 7;

/// RepDistiller's names: a stage is one `nn.Sequential`, so its down-sampling unit is
/// `layerN.0` and basic unit `i` is `layerN.{i+1}`.
pub fn from_pytorch() -> KeyMap {
    let mut m = vec![
        (r"^module\.".to_string(), String::new()),
        (r"^(layer\d)\.0\.".to_string(), "${1}.down.".to_string()),
    ];
    // a rewritten name has `down` or `basic` where these rules need a digit
    for i in 1..=MAX_BASIC {
        m.push((
            format!(r"^(layer\d)\.{i}\."),
            format!("${{1}}.basic.{}.", i - 1),
        ));
    }
    m
}

/// The inverse of [`from_pytorch`].
pub fn to_pytorch() -> KeyMap {
    let mut m = vec![(r"^(layer\d)\.down\.".to_string(), "${1}.0.".to_string())];
    for k in 0..MAX_BASIC {
        m.push((
            format!(r"^(layer\d)\.basic\.{k}\."),
            format!("${{1}}.{}.", k + 1),
        ));
    }
    m
}

/// RepDistiller's CIFAR ShuffleNet V2.
///
/// Taps: `stem`, `stage{1,2,3}` (each stage's output), `stage{1,2,3}_pre` (its last unit's
/// pre-activation), `head` (the 1024-channel map after its ReLU) and `embedding` (pooled).
#[derive(Module, Debug)]
pub struct ShuffleNetV2 {
    conv1: Conv2d,
    bn1: BatchNorm,
    layer1: Stage,
    layer2: Stage,
    layer3: Stage,
    conv2: Conv2d,
    bn2: BatchNorm,
    linear: Linear,
}

impl ShuffleNetV2 {
    /// `ShuffleV2` for `channels`-channel images.
    pub fn new(channels: usize, classes: usize, device: &Device) -> Self {
        let mut cin = STEM;
        let mut stage = |s: usize| {
            let out = WIDTHS[s];
            let st = Stage {
                down: DownUnit::new(cin, out, device),
                basic: (0..BLOCKS[s])
                    .map(|_| BasicUnit::new(out, device))
                    .collect(),
            };
            cin = out;
            st
        };
        let (layer1, layer2, layer3) = (stage(0), stage(1), stage(2));
        Self {
            conv1: conv(channels, STEM, 1, 1, 1, device),
            bn1: bn(STEM, device),
            layer1,
            layer2,
            layer3,
            conv2: conv(WIDTHS[2], LAST, 1, 1, 1, device),
            bn2: bn(LAST, device),
            linear: LinearConfig::new(LAST, classes).init(device),
        }
    }

    /// Forward pass.
    pub fn forward(&self, x: Tensor<4>) -> Taps {
        let mut h = relu(self.bn1.norm(self.conv1.run(x)));
        let mut features = vec![("stem".to_string(), Feature::Map(h.clone()))];
        for (s, stage) in [&self.layer1, &self.layer2, &self.layer3]
            .iter()
            .enumerate()
        {
            h = stage.down.forward(h);
            let mut pre = h.clone();
            for unit in &stage.basic {
                (h, pre) = unit.forward(h);
            }
            features.push((format!("stage{}_pre", s + 1), Feature::Map(pre)));
            features.push((format!("stage{}", s + 1), Feature::Map(h.clone())));
        }
        let h = relu(self.bn2.norm(self.conv2.run(h)));
        features.push(("head".into(), Feature::Map(h.clone())));
        Taps::pooled(h, features, |p| self.linear.forward(p))
    }
}
