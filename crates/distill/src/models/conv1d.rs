//! A 1-D convolutional classifier of series of frames: temporal convolutions, global average
//! pooling over the real frames.

use burn::nn::conv::{Conv1d, Conv1dConfig};
use burn::nn::{Linear, LinearConfig, PaddingConfig1d};
use burn::prelude::*;
use burn::tensor::activation::relu;

use super::gru::{frames_and_mask, pool_and_classify};
use super::taps::{Feature, Taps};

/// Convolutions of kernel 3 over time (ReLU, padding 1), each output zeroed at the padding
/// frames so that a series' padding never leaks into its real frames, then the mean over the
/// real frames and a linear head.
///
/// Taps: `conv{i}` (`[B, L, C]`, with the frame mask), `embedding` (`[B, C]`) and `logits`.
#[derive(Module, Debug)]
pub struct Conv1dNet {
    convs: Vec<Conv1d>,
    head: Linear,
}

impl Conv1dNet {
    /// Convolutions of `widths` channels over frames of `dims` values, `classes` outputs.
    pub fn new(dims: usize, widths: &[usize], classes: usize, device: &Device) -> Self {
        let (convs, width) = super::stack(dims, widths, |cin, c| {
            Conv1dConfig::new(cin, c, 3)
                .with_padding(PaddingConfig1d::Explicit(1, 1))
                .init(device)
        });
        Self {
            convs,
            head: LinearConfig::new(width, classes).init(device),
        }
    }

    /// Forward pass over `[B, 1, L, D + 1]` series.
    pub fn forward(&self, x: Tensor<4>) -> Taps {
        let (frames, mask) = frames_and_mask(x);
        let [b, l, _] = frames.dims();
        let keep = mask.clone().reshape([b, 1, l]);
        // [B, D, L]: channels are the frame's values
        let mut h = frames.swap_dims(1, 2) * keep.clone();
        let mut features = Vec::with_capacity(self.convs.len() + 1);
        for (i, conv) in self.convs.iter().enumerate() {
            h = relu(conv.forward(h)) * keep.clone();
            features.push((
                format!("conv{}", i + 1),
                Feature::Seq {
                    x: h.clone().swap_dims(1, 2),
                    mask: Some(mask.clone()),
                },
            ));
        }
        pool_and_classify(h.swap_dims(1, 2), mask, &self.head, features)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::gru::GruNet;

    /// Two series of 4 frames of 2 values, the second with 2 real frames, as the loader lays
    /// them out (mask column last).
    fn series(dev: &Device, padding: f32) -> Tensor<4> {
        Tensor::<1>::from_floats(
            [
                1.0, 2.0, 1.0, 3.0, 4.0, 1.0, 5.0, 6.0, 1.0, 7.0, 8.0, 1.0, //
                1.0, 2.0, 1.0, 3.0, 4.0, 1.0, padding, padding, 0.0, padding, padding, 0.0,
            ],
            dev,
        )
        .reshape([2, 1, 4, 3])
    }

    #[test]
    fn padding_frames_change_nothing() {
        let dev = Device::flex();
        let conv = Conv1dNet::new(2, &[4, 5], 3, &dev);
        let gru = GruNet::new(2, &[6], 3, &dev);
        let nets: Vec<Box<dyn Fn(Tensor<4>) -> Taps>> =
            vec![Box::new(|x| conv.forward(x)), Box::new(|x| gru.forward(x))];
        for forward in &nets {
            let a = forward(series(&dev, 0.0));
            let b = forward(series(&dev, 100.0));
            assert_eq!(a.logits.dims(), [2, 3]);
            let a: Vec<f32> = a.logits.into_data().iter::<f32>().collect();
            let b: Vec<f32> = b.logits.into_data().iter::<f32>().collect();
            for (x, y) in a.iter().zip(&b) {
                assert!((x - y).abs() < 1e-5, "{a:?} vs {b:?}");
            }
        }
        let taps = conv.forward(series(&dev, 0.0));
        assert_eq!(taps.get("conv2").unwrap().shape(), vec![2, 4, 5]);
        assert_eq!(taps.get("embedding").unwrap().shape(), vec![2, 5]);
    }
}
