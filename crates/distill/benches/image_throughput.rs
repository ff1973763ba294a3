//! Inference throughput of the transfer-set pair (`configs/mobilenet-transfer.toml`):
//! torchvision's ImageNet MobileNetV2 (3.5M parameters) at the 112×112 view the teacher reads
//! there and at its native 224×224, and the student CNN (convolutions 32-64-128, 1000 outputs)
//! on the 28×28 grey images it reads, each classifying batches of images (inference mode, no
//! autodiff). Weights do not change the work, so all are freshly initialised.
//! `bench/pytorch_image.py` does the same work in PyTorch.
//!
//! cargo bench -p distill --bench image_throughput -- [--batch 64] [--reps 10]
//! Prints one JSON line per model: median milliseconds per batch, images per second, parameters.

mod common;

use common::{arg, median_ms};
use distill::burn::prelude::*;
use distill::burn::tensor::TensorData;
use distill::models::net::trainable_params;
use distill::models::ModelConfig;

fn main() {
    let batch: usize = arg("--batch", "64").parse().expect("--batch N");
    let reps: usize = arg("--reps", "10")
        .parse::<usize>()
        .expect("--reps N")
        .max(1);
    let device = Device::flex();
    let student = ModelConfig::Cnn {
        hidden: Some(vec![32, 64, 128]),
    };
    let mobilenet = ModelConfig::named("mobilenetv2").expect("mobilenetv2");
    let models = [
        ("mobilenetv2 (teacher)", mobilenet.clone(), [3, 112, 112]),
        ("mobilenetv2 (teacher)", mobilenet, [3, 224, 224]),
        ("cnn 32-64-128 (student)", student, [1, 28, 28]),
    ];
    for (name, config, geometry) in models {
        let net = config
            .build(geometry, 1000, &device)
            .expect("builds")
            .valid();
        let [c, h, w] = geometry;
        let n = batch * c * h * w;
        let pixels: Vec<f32> = (0..n)
            .map(|k| ((k * 7919) % 255) as f32 / 255.0 - 0.5)
            .collect();
        let x = Tensor::<4>::from_data(TensorData::new(pixels, [batch, c, h, w]), &device);
        let run = || {
            let p: Vec<i64> = net
                .forward(x.clone())
                .logits
                .argmax(1)
                .into_data()
                .iter::<i64>()
                .collect();
            assert_eq!(p.len(), batch);
        };
        let ms = median_ms(reps, run);
        println!(
            "{{\"impl\": \"distill\", \"model\": \"{name}\", \"input\": \"{c}x{h}x{w}\", \"params\": {}, \"batch\": {batch}, \"median_ms\": {ms:.1}, \"images_per_s\": {:.1}}}",
            trainable_params(&net),
            batch as f64 / (ms / 1e3)
        );
    }
}
