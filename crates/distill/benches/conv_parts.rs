//! Where the CNN pair's convolution time goes: every 3×3 convolution of the `kd_step` CNN pair
//! (teacher 64-64-128-128-256-256, student 32-64-128, on 3×32×32 images, batch 64) timed as its
//! forward alone, forward + input gradient, and forward + weight (and bias) gradient, through
//! the backend's own autodiff, plus each ReLU + 2×2 max-pool forward + backward.
//! `bench/pytorch_conv.py` does the same work in PyTorch; `scripts/bench.sh --conv` runs both.
//!
//! `--variant im2col` computes each convolution from tensor operations instead of the backend's
//! conv2d (pad, the 3×3 windows as an unfolded view copied once into columns, one matrix
//! product), so that autodiff
//! takes the weight gradient as one large matrix product: the experiment behind the README's
//! CPU-convolution figures.
//!
//! cargo bench -p distill --bench conv_parts -- [--batch 64] [--reps 10] [--backend flex|cpu]
//!     [--variant burn|im2col]
//! Prints one JSON line per layer and part: median milliseconds.

mod common;

use common::{arg, backend_arg, median_ms};
use distill::burn::prelude::*;
use distill::burn::tensor::module::{conv2d, max_pool2d};
use distill::burn::tensor::ops::{ConvOptions, MaxPoolOptions, PadMode};
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
    let im2col = match arg("--variant", "burn").as_str() {
        "burn" => false,
        "im2col" => true,
        other => panic!("unknown --variant {other}: burn or im2col"),
    };
    let label = if im2col {
        format!("{backend:?} im2col")
    } else {
        format!("{backend:?}")
    };
    let conv = move |x: Tensor<4>, w: Tensor<4>, b: Tensor<1>| {
        if im2col {
            conv3x3_im2col(x, w, b)
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
        if im2col {
            // the same numbers as the backend's convolution, up to rounding
            let reference = conv2d(x.clone(), w.clone(), Some(b.clone()), same_3x3());
            let diff = (conv3x3_im2col(x.clone(), w.clone(), b.clone()) - reference)
                .abs()
                .max()
                .into_scalar::<f32>();
            assert!(diff < 1e-3, "im2col differs from conv2d by {diff}");
        }
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
            let h = Tensor::<4>::from_data(
                Tensor::<4>::random([batch, cout, side, side], dist, &plain).to_data(),
                &device,
            )
            .require_grad();
            line(
                "relu + max-pool, forward + backward",
                median_ms(reps, || {
                    let pool = MaxPoolOptions::new([2, 2]).with_stride([2, 2]);
                    let y = max_pool2d(distill::burn::tensor::activation::relu(h.clone()), pool);
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

/// A 3×3, stride-1, padding-1 convolution from tensor operations: the padded input's 3×3 windows
/// (two `unfold`s, a strided view) copied once into columns `[C·9, N·H·W]`, times the weight as
/// `[C_out, C·9]`.
fn conv3x3_im2col(x: Tensor<4>, w: Tensor<4>, b: Tensor<1>) -> Tensor<4> {
    let [n, c, h, wd] = x.dims();
    let cout = w.dims()[0];
    let windows: Tensor<6> = x
        .pad((1, 1, 1, 1), PadMode::Constant(0.0))
        .unfold::<5, _>(2, 3, 1)
        .unfold(3, 3, 1);
    let cols = windows
        .permute([1, 4, 5, 0, 2, 3])
        .reshape([c * 9, n * h * wd]);
    let y = w.reshape([cout, c * 9]).matmul(cols) + b.reshape([cout, 1]);
    y.reshape([cout, n, h, wd]).swap_dims(0, 1)
}
