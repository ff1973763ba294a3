//! The f32 matrix products under the KD steps, alone: the MLP pair's layers (forward, and the
//! student's weight gradient with its transposed input, as autodiff passes it), the CNN pair's
//! largest convolution written as one im2col product, and a 1024 square; shapes from
//! `bench/matmul_shapes.json`, shared with `bench/pytorch_matmul.py` (`scripts/bench.sh
//! --matmul` runs both). What a step can reach is bounded by what the backend's matrix product
//! reaches.
//!
//! cargo bench -p distill --bench matmul -- [--reps 20] [--backend flex|cpu]
//! Prints one JSON line per shape: median milliseconds and GFLOP/s.

mod common;

use common::{arg, backend_arg, median_ms};
use distill::burn::tensor::{Distribution, Tensor};
use distill::config::Backend;
use distill::run::training_device;

#[derive(serde::Deserialize)]
struct Shape {
    name: String,
    m: usize,
    k: usize,
    n: usize,
    lhs_transposed: bool,
}

fn main() {
    let reps: usize = arg("--reps", "20").parse().expect("--reps N");
    let backend = backend_arg(&[Backend::Flex, Backend::Cpu]);
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../bench/matmul_shapes.json"
    );
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let shapes: Vec<Shape> = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
    let device = training_device(backend)
        .unwrap_or_else(|e| panic!("{e}"))
        .without_autodiff();
    let dist = Distribution::Uniform(0.0, 1.0);
    for s in shapes {
        let lhs = if s.lhs_transposed {
            Tensor::<2>::random([s.k, s.m], dist, &device).transpose()
        } else {
            Tensor::<2>::random([s.m, s.k], dist, &device)
        };
        let rhs = Tensor::<2>::random([s.k, s.n], dist, &device);
        let ms = median_ms(reps, || {
            let y = lhs.clone().matmul(rhs.clone());
            device.sync().expect("device sync");
            drop(y);
        });
        let gflops = 2.0 * (s.m * s.k * s.n) as f64 / ms / 1e6;
        println!(
            "{{\"impl\": \"distill\", \"backend\": \"{}\", \"shape\": \"{}\", \"m\": {}, \"k\": {}, \"n\": {}, \"median_ms\": {ms:.4}, \"gflops\": {gflops:.1}}}",
            backend.name(),
            s.name,
            s.m,
            s.k,
            s.n
        );
    }
}
