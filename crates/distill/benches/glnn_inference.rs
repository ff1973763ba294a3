//! The inference-time gap of graph-less distillation (GLNN, Zhang et al. 2022): classifying
//! nodes that arrive after the graph was built, with the GNN teacher of `configs/glnn.toml` (a
//! SIGN-style model: it needs the new node's neighbours, found by a similarity search over every
//! graph node, and their stored propagated features) vs its graph-less MLP student (the node's
//! own features only). The graph is built over the embedded training images; the 2,000 test
//! images arrive as new nodes, in batches. Weights do not change the work, so the models are
//! freshly initialised at the config's sizes.
//!
//! cargo bench -p distill --bench glnn_inference -- [--batch 256] [--reps 20]
//! Prints one JSON line per batch size: median milliseconds per batch of each path, the share of
//! the GNN's time spent finding neighbours and gathering features, and the ratio.

mod common;

use std::time::Instant;

use common::arg;
use distill::burn::prelude::*;
use distill::burn::tensor::TensorData;
use distill::data::graph::{build_graph, node_features, node_points, GraphConfig};
use distill::data::source::embedded;
use distill::models::ModelConfig;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let reps: usize = arg("--reps", "20")
        .parse::<usize>()
        .expect("--reps N")
        .max(1);
    let batches: Vec<usize> = arg("--batch", "1,256")
        .split(',')
        .map(|b| b.parse().expect("--batch N[,N]"))
        .collect();
    let device = Device::flex();
    let (train, test) = embedded().expect("the embedded data load");
    let cfg = GraphConfig {
        k: 10,
        hops: 2,
        feature_downsample: Some(7),
    };
    // The graph over the training nodes only: the test nodes are new arrivals.
    let empty = train.head(0);
    let graph = build_graph(&train, &empty, &cfg, &device).expect("graph builds");
    let (x_new, d) = node_features(&test, cfg.feature_downsample).expect("features");
    let points_new = node_points(&test);
    let dp = test.sample_len();
    let width = d * (cfg.hops + 1);
    let mlp = |features: usize| {
        ModelConfig::Mlp {
            hidden: Some(vec![256]),
            dropout: None,
        }
        .build([1, 1, features], 10, &device)
        .expect("model builds")
        .valid()
    };
    let (gnn, student) = (mlp(width), mlp(d));
    let forward = |net: &distill::models::Net, rows: Vec<f32>, b: usize, f: usize| {
        let x = Tensor::<4>::from_data(TensorData::new(rows, [b, 1, 1, f]), &device);
        let logits: Vec<f32> = net.forward(x).logits.into_data().iter::<f32>().collect();
        logits.len()
    };
    for &b in &batches {
        let b = b.clamp(1, test.len());
        let (mut t_gnn, mut t_search, mut t_mlp) = (Vec::new(), Vec::new(), Vec::new());
        for r in 0..reps + 2 {
            let start = (r * b) % (test.len() - b + 1);
            let pts = &points_new[start * dp..(start + b) * dp];
            let xs = &x_new[start * d..(start + b) * d];
            let t0 = Instant::now();
            let rows = graph.rows_for_new(pts, dp, xs).expect("sizes match");
            let t1 = Instant::now();
            forward(&gnn, rows, b, width);
            let t2 = Instant::now();
            forward(&student, xs.to_vec(), b, d);
            let t3 = Instant::now();
            if r >= 2 {
                t_search.push((t1 - t0).as_secs_f64() * 1e3);
                t_gnn.push((t2 - t0).as_secs_f64() * 1e3);
                t_mlp.push((t3 - t2).as_secs_f64() * 1e3);
            }
        }
        let (g, s, m) = (median(t_gnn), median(t_search), median(t_mlp));
        println!(
            "{{\"batch\": {b}, \"graph_nodes\": {}, \"gnn_ms\": {g:.4}, \"gnn_neighbours_ms\": {s:.4}, \"mlp_ms\": {m:.4}, \"gnn_over_mlp\": {:.1}}}",
            graph.len(),
            g / m
        );
    }
}
