//! Where the CNN pair's convolution time goes: every 3×3 convolution of the `kd_step` CNN pair
//! (teacher 64-64-128-128-256-256, student 32-64-128, on 3×32×32 images, batch 64) timed as its
//! forward alone, forward + input gradient, and forward + weight (and bias) gradient, through
//! the backend's own autodiff, plus each ReLU + 2×2 max-pool forward + backward.
//! `bench/pytorch_conv.py` does the same work in PyTorch; `scripts/bench.sh --conv` runs both.
//!
//! `--variant distill` runs distill's convolution (`distill::models::conv::conv2d`, what every
//! model runs) instead of Burn's `conv2d`: on `flex`, its own f32 forward, Burn's input
//! gradient, and the weight gradient as matrix products (shifted views at stride 1 from 16
//! input channels, im2col otherwise); and distill's ReLU + max-pool
//! (`distill::models::pool::max_pool2d`, one pass each way) instead of Burn's two ops.
//!
//! cargo bench -p distill --bench conv_parts -- [--batch 64] [--reps 10] [--backend flex|cpu]
//!     [--variant burn|distill]
//! Prints one JSON line per layer and part: median milliseconds.

mod common;

use common::{arg, backend_arg, median_ms};
use distill::burn::nn::pool::MaxPool2dConfig;
use distill::burn::prelude::*;
use distill::burn::tensor::module::conv2d;
use distill::burn::tensor::ops::ConvOptions;
use distill::burn::tensor::{Distribution, Tensor};
use distill::config::Backend;
use distill::run::training_device;

/// One conv layer of the pair: (model, in channels, out channels, side, max-pooled after).
const LAYERS: [(&str, usize, usize, usize, bool); 9] = [
    ("teacher", 3, 64, 32, false),
    ("teacher", 64, 64, 32, true),
    ("teacher", 64, 128, 16, false),
    ("teacher", 128, 128, 16, true),
    ("teacher", 128, 256, 8, false),
    ("teacher", 256, 256, 8, true),
    ("student", 3, 32, 32, true),
    ("student", 32, 64, 16, true),
    ("student", 64, 128, 8, true),
];

fn main() {
    let batch: usize = arg("--batch", "64").parse().expect("--batch N");
    let reps: usize = arg("--reps", "10").parse().expect("--reps N");
    let backend = backend_arg(&[Backend::Flex, Backend::Cpu]);
    let ours = match arg("--variant", "burn").as_str() {
        "burn" => false,
        "distill" => true,
        other => panic!("unknown --variant {other}: burn or distill"),
    };
    let label = if ours {
        format!("{backend:?} distill-conv")
    } else {
        format!("{backend:?}")
    };
    let conv = move |x: Tensor<4>, w: Tensor<4>, b: Tensor<1>| {
        if ours {
            distill::models::conv::conv2d(x, w, Some(b), same_3x3())
        } else {
            conv2d(x, w, Some(b), same_3x3())
        }
    };
    let device = training_device(backend).unwrap_or_else(|e| panic!("{e}"));
    let plain = device.clone().without_autodiff();
    let sync = |d: &Device| d.sync().expect("device sync");
    for (model, cin, cout, side, pooled) in LAYERS {
        let dist = Distribution::Uniform(-1.0, 1.0);
        let x = Tensor::<4>::random([batch, cin, side, side], dist, &plain);
        let w = Tensor::<4>::random([cout, cin, 3, 3], dist, &plain).mul_scalar(0.1);
        let b = Tensor::<1>::random([cout], dist, &plain);
        let line = |part: &str, ms: f64| {
            println!(
                "{{\"impl\": \"distill\", \"backend\": \"{label}\", \"model\": \"{model}\", \"layer\": \"{cin}->{cout} @{side}x{side}\", \"part\": \"{part}\", \"batch\": {batch}, \"median_ms\": {ms:.3}}}",
            )
        };
        line(
            "forward",
            median_ms(reps, || {
                let y = conv(x.clone(), w.clone(), b.clone());
                sync(&plain);
                drop(y);
            }),
        );
        // Gradients through the backend's autodiff: only the leaves that require them are
        // computed, so each part is one of the two backward convolutions plus the forward.
        let backward = |x_grad: bool| {
            let xa = Tensor::<4>::from_data(x.to_data(), &device);
            let wa = Tensor::<4>::from_data(w.to_data(), &device);
            let ba = Tensor::<1>::from_data(b.to_data(), &device);
            let (xa, wa, ba) = if x_grad {
                (xa.require_grad(), wa, ba)
            } else {
                (xa, wa.require_grad(), ba.require_grad())
            };
            median_ms(reps, || {
                let y = conv(xa.clone(), wa.clone(), ba.clone());
                let grads = y.sum().backward();
                sync(&device);
                drop(grads);
            })
        };
        line("forward + input grad", backward(true));
        line("forward + weight grad", backward(false));
        if pooled {
            let pool = MaxPool2dConfig::new([2, 2]).with_strides([2, 2]).init();
            let h = Tensor::<4>::from_data(
                Tensor::<4>::random([batch, cout, side, side], dist, &plain).to_data(),
                &device,
            )
            .require_grad();
            line(
                "relu + max-pool, forward + backward",
                median_ms(reps, || {
                    let y = if ours {
                        distill::models::pool::max_pool2d(h.clone(), &pool, true)
                    } else {
                        pool.forward(distill::burn::tensor::activation::relu(h.clone()))
                    };
                    let grads = y.sum().backward();
                    sync(&device);
                    drop(grads);
                }),
            );
        }
    }
}

/// The CNN pair's convolution: 3x3, stride 1, padding 1 (output the input's size).
fn same_3x3() -> ConvOptions<2> {
    ConvOptions::new([1, 1], [1, 1], [1, 1], 1)
}
