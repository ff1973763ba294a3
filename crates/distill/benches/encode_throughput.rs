//! Encoding throughput of the retrieval teacher and student (`configs/retrieval.toml`):
//! all-MiniLM-L6-v2's size (BERT, 6 layers, width 384, 12 heads) vs the 2-layer, 128-wide
//! student, each encoding batches of texts to normalised sentence embeddings (inference mode,
//! no autodiff). Weights do not change the work, so both are freshly initialised.
//! `bench/pytorch_encode.py` does the same work with Hugging Face's `BertModel` in PyTorch.
//!
//! cargo bench -p distill --bench encode_throughput -- [--batch 64] [--len 64] [--reps 10]
//! Prints one JSON line per model: median milliseconds per batch, texts per second, parameters.

mod common;

use common::{arg, median_ms};
use distill::burn::prelude::*;
use distill::models::net::trainable_params;
use distill::models::{ModelConfig, Net};

fn main() {
    let batch: usize = arg("--batch", "64").parse().expect("--batch N");
    let len: usize = arg("--len", "64").parse().expect("--len N");
    let reps: usize = arg("--reps", "10")
        .parse::<usize>()
        .expect("--reps N")
        .max(1);
    let device = Device::flex();
    let models = [
        (
            "minilm-l6 (teacher)",
            ModelConfig::named("bert").expect("bert"),
        ),
        (
            "bert 2×128 (student)",
            ModelConfig::Bert {
                dim: Some(128),
                layers: Some(2),
                heads: Some(4),
                dropout: None,
                vocab: None,
                positions: None,
            },
        ),
    ];
    // Token ids as a tokenizer gives them: [CLS] (101), words, [SEP] (102), every text full.
    let ids: Vec<i64> = (0..batch * len)
        .map(|k| match k % len {
            0 => 101,
            p if p == len - 1 => 102,
            p => 1000 + ((k * 7919 + p * 104_729) % 28_000) as i64,
        })
        .collect();
    for (name, config) in models {
        let net = config
            .build([1, 1, len], 1, &device)
            .expect("builds")
            .valid();
        let Net::Bert(bert) = &net else {
            unreachable!("a bert config builds a bert")
        };
        let run = || {
            let x = Tensor::<1, Int>::from_ints(ids.as_slice(), &device).reshape([batch, len]);
            let e: Vec<f32> = bert.encode(x).embedding.into_data().iter::<f32>().collect();
            assert!(e.iter().all(|v| v.is_finite()));
        };
        let ms = median_ms(reps, run);
        println!(
            "{{\"impl\": \"distill\", \"model\": \"{name}\", \"params\": {}, \"batch\": {batch}, \"len\": {len}, \"median_ms\": {ms:.1}, \"texts_per_s\": {:.1}}}",
            trainable_params(&net),
            batch as f64 / (ms / 1e3)
        );
    }
}
