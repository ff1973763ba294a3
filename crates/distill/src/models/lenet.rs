//! LeNet-style convolutional network (LeCun et al., 1998), widened by a factor.

use crate::models::conv::ConvForward;
use crate::models::pool::PoolForward;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{Linear, LinearConfig, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::activation::relu;

use super::taps::{Feature, Taps};

/// `conv5×5(6w, pad 2) → ReLU → max-pool 2 → conv5×5(16w) → ReLU → max-pool 2 → fc(120w) → ReLU → fc(84w) → ReLU → fc(classes)`.
///
/// Taps: `conv1_pre`, `conv1`, `conv2_pre`, `conv2` (after pooling), `fc1`, `embedding`
/// (the 84w-wide layer) and `logits`.
#[derive(Module, Debug)]
pub struct LeNet {
    conv1: Conv2d,
    conv2: Conv2d,
    pool: MaxPool2d,
    fc1: Linear,
    fc2: Linear,
    head: Linear,
}

impl LeNet {
    /// A LeNet for `[channels, height, width]` inputs, widths multiplied by `width`.
    pub fn new(input: [usize; 3], classes: usize, width: usize, device: &Device) -> Self {
        let [c, h, w] = input;
        let (c1, c2) = (6 * width, 16 * width);
        // conv1 keeps the size (pad 2), pool halves, conv2 (valid 5×5) removes 4, pool halves.
        let side = |s: usize| (s / 2).saturating_sub(4) / 2;
        let flat = c2 * side(h).max(1) * side(w).max(1);
        Self {
            conv1: Conv2dConfig::new([c, c1], [5, 5])
                .with_padding(PaddingConfig2d::Explicit(2, 2, 2, 2))
                .init(device),
            conv2: Conv2dConfig::new([c1, c2], [5, 5]).init(device),
            pool: MaxPool2dConfig::new([2, 2]).with_strides([2, 2]).init(),
            fc1: LinearConfig::new(flat, 120 * width).init(device),
            fc2: LinearConfig::new(120 * width, 84 * width).init(device),
            head: LinearConfig::new(84 * width, classes).init(device),
        }
    }

    /// Forward pass.
    pub fn forward(&self, x: Tensor<4>) -> Taps {
        let p1 = self.conv1.run(x);
        let a1 = self.pool.run_relu(p1.clone());
        let p2 = self.conv2.run(a1.clone());
        let a2 = self.pool.run_relu(p2.clone());
        let f1 = relu(self.fc1.forward(a2.clone().flatten(1, 3)));
        let emb = relu(self.fc2.forward(f1.clone()));
        Taps {
            logits: self.head.forward(emb.clone()),
            features: vec![
                ("conv1_pre".into(), Feature::Map(p1)),
                ("conv1".into(), Feature::Map(a1)),
                ("conv2_pre".into(), Feature::Map(p2)),
                ("conv2".into(), Feature::Map(a2)),
                ("fc1".into(), Feature::Flat(f1)),
                ("embedding".into(), Feature::Flat(emb)),
            ],
        }
    }
}
