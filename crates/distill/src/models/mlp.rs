//! Multi-layer perceptron with ReLU and dropout.

use burn::nn::{Dropout, DropoutConfig, Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::relu;

use super::taps::{Feature, Taps};

/// Fully connected classifier over flattened inputs.
///
/// Taps: `fc{i}_pre` (before ReLU) and `fc{i}` (after) for each hidden layer `i = 1..`,
/// `embedding` (the last hidden activation, or the input when there is no hidden layer) and
/// `logits`.
#[derive(Module, Debug)]
pub struct Mlp {
    hidden: Vec<Linear>,
    dropout: Dropout,
    head: Linear,
}

impl Mlp {
    /// `inputs → hidden[0] → … → classes`, with dropout probability `dropout` after each hidden layer.
    pub fn new(
        inputs: usize,
        hidden: &[usize],
        classes: usize,
        dropout: f64,
        device: &Device,
    ) -> Self {
        let (layers, width) = super::stack(inputs, hidden, |cin, h| {
            LinearConfig::new(cin, h).init(device)
        });
        Self {
            hidden: layers,
            dropout: DropoutConfig::new(dropout).init(),
            head: LinearConfig::new(width, classes).init(device),
        }
    }

    /// Forward pass; 4-D inputs are flattened.
    pub fn forward(&self, x: Tensor<4>) -> Taps {
        let mut h: Tensor<2> = x.flatten(1, 3);
        let mut features = Vec::with_capacity(2 * self.hidden.len() + 1);
        for (i, layer) in self.hidden.iter().enumerate() {
            let pre = layer.forward(h);
            let act = relu(pre.clone());
            features.push((format!("fc{}_pre", i + 1), Feature::Flat(pre)));
            features.push((format!("fc{}", i + 1), Feature::Flat(act.clone())));
            h = self.dropout.forward(act);
        }
        features.push(("embedding".into(), Feature::Flat(h.clone())));
        Taps {
            logits: self.head.forward(h),
            features,
        }
    }
}
