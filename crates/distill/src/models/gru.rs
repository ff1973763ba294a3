//! A recurrent classifier of series of frames: stacked GRUs, mean-pooled over the real frames.

use burn::nn::gru::{Gru, GruConfig};
use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::DType;

use super::taps::{Feature, Taps};

/// Splits a `[B, 1, L, D + 1]` series input (frames plus a mask column, see
/// [`crate::data::Inputs::Sequence`]) into frames `[B, L, D]` and the mask `[B, L]`.
pub fn frames_and_mask(x: Tensor<4>) -> (Tensor<3>, Tensor<2>) {
    let [b, _, l, w] = x.dims();
    let x = x.reshape([b, l, w]);
    let frames = x.clone().slice([0..b, 0..l, 0..w - 1]);
    let mask = x.slice([0..b, 0..l, w - 1..w]).reshape([b, l]);
    (frames, mask)
}

/// The end of a series model: its last states `[B, L, H]` averaged over the real frames (the
/// `embedding` tap, appended to `features`), then `head`.
pub fn pool_and_classify(
    states: Tensor<3>,
    mask: Tensor<2>,
    head: &Linear,
    mut features: Vec<(String, Feature)>,
) -> Taps {
    let pooled = Feature::Seq {
        x: states,
        mask: Some(mask),
    }
    .pooled();
    features.push(("embedding".into(), Feature::Flat(pooled.clone())));
    Taps {
        logits: head.forward(pooled),
        features,
    }
}

/// Stacked GRUs over the frames (padding after a series' end does not reach its real frames,
/// which come first), the last layer's states averaged over the real frames, then a linear head.
///
/// Taps: `gru{i}` (states of layer `i`, `[B, L, H]`, with the frame mask), `embedding` (the
/// pooled states, `[B, H]`) and `logits`.
#[derive(Module, Debug)]
pub struct GruNet {
    layers: Vec<Gru>,
    head: Linear,
}

impl GruNet {
    /// GRUs of `hidden` widths over frames of `dims` values, `classes` outputs.
    pub fn new(dims: usize, hidden: &[usize], classes: usize, device: &Device) -> Self {
        let (layers, width) = super::stack(dims, hidden, |cin, h| {
            GruConfig::new(cin, h, true).init(device)
        });
        Self {
            layers,
            head: LinearConfig::new(width, classes).init(device),
        }
    }

    /// Forward pass over `[B, 1, L, D + 1]` series.
    pub fn forward(&self, x: Tensor<4>) -> Taps {
        let (mut h, mask) = frames_and_mask(x);
        let mut features = Vec::with_capacity(self.layers.len() + 1);
        for (i, gru) in self.layers.iter().enumerate() {
            // Burn's GRU makes its state in f32, so it runs in f32 at every precision (see
            // `models::precision`)
            let dtype = h.dtype();
            h = gru.forward(h.cast(DType::F32), None).cast(dtype);
            features.push((
                format!("gru{}", i + 1),
                Feature::Seq {
                    x: h.clone(),
                    mask: Some(mask.clone()),
                },
            ));
        }
        pool_and_classify(h, mask, &self.head, features)
    }
}
