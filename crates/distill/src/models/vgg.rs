//! VGG networks with batch normalisation (Simonyan & Zisserman, ICLR 2015) as RepDistiller
//! defines them for CIFAR (`models/vgg.py`, the `_bn` variants its model dictionary uses):
//! `vgg8`, `vgg11`, `vgg13`, `vgg16`, `vgg19`.
//!
//! Five blocks of 3×3 convolutions (with bias) + BN + ReLU, widths 64, 128, 256, 512, 512 (one to
//! four convolutions per block); 2×2 max-pooling after blocks 1–3, and after block 4 only for
//! 64×64 inputs (RepDistiller's `if h == 64`); global average pooling and a linear head.
//! Inputs must be at least 8×8. Initialisation: Kaiming-normal (fan-out) convolutions, as
//! RepDistiller, but Burn initialises the convolution biases alike where RepDistiller zeroes
//! them (imported weights are unaffected).

use crate::models::conv::ConvForward;
use crate::models::pool::PoolForward;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Initializer, Linear, LinearConfig, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::activation::relu;

use super::interop::KeyMap;
use super::precision::NormF32;
use super::taps::{Feature, Taps};

/// The convolutions per block of each depth (RepDistiller's configurations S, A, B, D, E).
pub fn layers(depth: usize) -> Option<[usize; 5]> {
    match depth {
        8 => Some([1, 1, 1, 1, 1]),
        11 => Some([1, 1, 2, 2, 2]),
        13 => Some([2, 2, 2, 2, 2]),
        16 => Some([2, 2, 3, 3, 3]),
        19 => Some([2, 2, 4, 4, 4]),
        _ => None,
    }
}

const WIDTHS: [usize; 5] = [64, 128, 256, 512, 512];
/// The most convolutions a block has.
const MAX_CONVS: usize = 4;

/// RepDistiller's names: a block is one `nn.Sequential` of conv, BN, ReLU, conv, BN, … (the last
/// ReLU dropped), so convolution `k` of block `b` is `block{b}.{3k}` and its BN `block{b}.{3k+1}`.
pub fn from_pytorch() -> KeyMap {
    let mut m = vec![(r"^module\.".to_string(), String::new())];
    for k in 0..MAX_CONVS {
        m.push((
            format!(r"^(block\d)\.{}\.", 3 * k),
            format!("${{1}}.convs.{k}."),
        ));
        m.push((
            format!(r"^(block\d)\.{}\.", 3 * k + 1),
            format!("${{1}}.bns.{k}."),
        ));
    }
    m
}

/// The inverse of [`from_pytorch`].
pub fn to_pytorch() -> KeyMap {
    (0..MAX_CONVS)
        .flat_map(|k| {
            [
                (
                    format!(r"^(block\d)\.convs\.{k}\."),
                    format!("${{1}}.{}.", 3 * k),
                ),
                (
                    format!(r"^(block\d)\.bns\.{k}\."),
                    format!("${{1}}.{}.", 3 * k + 1),
                ),
            ]
        })
        .collect()
}

/// One block: conv-BN pairs, ReLU after each.
#[derive(Module, Debug)]
pub struct VggBlock {
    convs: Vec<Conv2d>,
    bns: Vec<BatchNorm>,
}

impl VggBlock {
    fn new(cin: usize, cout: usize, n: usize, device: &Device) -> Self {
        let convs = (0..n)
            .map(|i| {
                Conv2dConfig::new([if i == 0 { cin } else { cout }, cout], [3, 3])
                    .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                    // kaiming_normal_(mode="fan_out"), as RepDistiller's VGG
                    .with_initializer(Initializer::KaimingNormal {
                        gain: std::f64::consts::SQRT_2,
                        fan_out_only: true,
                    })
                    .init(device)
            })
            .collect();
        let bns = (0..n)
            .map(|_| BatchNormConfig::new(cout).init(device))
            .collect();
        Self { convs, bns }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.convs
            .iter()
            .zip(&self.bns)
            .fold(x, |h, (c, b)| relu(b.norm(c.run(h))))
    }
}

/// A CIFAR VGG with batch normalisation.
///
/// Taps: `block{1..5}` (each block's output after its ReLU, before pooling: RepDistiller's
/// `f0`–`f4`), `embedding` (global average pool) and `logits`.
#[derive(Module, Debug)]
pub struct Vgg {
    block0: VggBlock,
    block1: VggBlock,
    block2: VggBlock,
    block3: VggBlock,
    block4: VggBlock,
    pool: MaxPool2d,
    classifier: Linear,
}

impl Vgg {
    /// A VGG of `depth` (8, 11, 13, 16 or 19) for `channels`-channel images.
    pub fn new(channels: usize, depth: usize, classes: usize, device: &Device) -> Self {
        let n = layers(depth).expect("VGG depths are 8, 11, 13, 16 and 19");
        let block = |b: usize| {
            let cin = if b == 0 { channels } else { WIDTHS[b - 1] };
            VggBlock::new(cin, WIDTHS[b], n[b], device)
        };
        Self {
            block0: block(0),
            block1: block(1),
            block2: block(2),
            block3: block(3),
            block4: block(4),
            pool: MaxPool2dConfig::new([2, 2]).with_strides([2, 2]).init(),
            classifier: LinearConfig::new(WIDTHS[4], classes).init(device),
        }
    }

    /// Forward pass.
    pub fn forward(&self, x: Tensor<4>) -> Taps {
        let height = x.dims()[2];
        let blocks = [
            &self.block0,
            &self.block1,
            &self.block2,
            &self.block3,
            &self.block4,
        ];
        let mut h = x;
        let mut features = Vec::with_capacity(6);
        for (i, blk) in blocks.iter().enumerate() {
            h = blk.forward(h);
            features.push((format!("block{}", i + 1), Feature::Map(h.clone())));
            if i < 3 || (i == 3 && height == 64) {
                h = self.pool.run(h);
            }
        }
        Taps::pooled(h, features, |p| self.classifier.forward(p))
    }
}
