//! Plain VGG-style CNN: 3×3 convolutions with ReLU, max-pooled by 2 wherever the width changes
//! and after the last convolution, then global average pooling and a linear classifier.

use crate::models::conv::ConvForward;
use crate::models::pool::PoolForward;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{Linear, LinearConfig, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::activation::relu;

use super::taps::{Feature, Taps};

/// `channels = [64, 64, 128, 128, 256, 256]` gives conv-conv-pool ×3 (the benchmark's 6-conv
/// teacher); `[32, 64, 128]` gives conv-pool ×3 (its 3-conv student).
///
/// Taps: `conv{i}` (after ReLU and any pooling, 1-based), `embedding` (global average pool) and
/// `logits`.
#[derive(Module, Debug)]
pub struct Cnn {
    convs: Vec<Conv2d>,
    pool_after: Vec<bool>,
    pool: MaxPool2d,
    head: Linear,
}

impl Cnn {
    /// A CNN for `channels_in`-channel images with the given conv widths.
    pub fn new(channels_in: usize, widths: &[usize], classes: usize, device: &Device) -> Self {
        let (convs, cin) = super::stack(channels_in, widths, |cin, c| {
            Conv2dConfig::new([cin, c], [3, 3])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init(device)
        });
        let pool_after = (0..widths.len())
            .map(|i| i + 1 == widths.len() || widths[i + 1] != widths[i])
            .collect();
        Self {
            convs,
            pool_after,
            pool: MaxPool2dConfig::new([2, 2]).with_strides([2, 2]).init(),
            head: LinearConfig::new(cin, classes).init(device),
        }
    }

    /// Forward pass.
    pub fn forward(&self, x: Tensor<4>) -> Taps {
        let mut h = x;
        let mut features = Vec::with_capacity(self.convs.len() + 1);
        for (i, (conv, &pool)) in self.convs.iter().zip(&self.pool_after).enumerate() {
            h = conv.run(h);
            let [_, _, hh, ww] = h.dims();
            h = if pool && hh >= 2 && ww >= 2 {
                self.pool.run_relu(h)
            } else {
                relu(h)
            };
            features.push((format!("conv{}", i + 1), Feature::Map(h.clone())));
        }
        Taps::pooled(h, features, |p| self.head.forward(p))
    }
}
