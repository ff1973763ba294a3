//! Shared helpers of the integration tests: tiny runs on the embedded data.

#![allow(dead_code, missing_docs)]

use std::path::Path;
use std::sync::Arc;

use distill::burn::prelude::*;
use distill::config::{ExperimentConfig, Plan, TrainPlan};
use distill::knowledge::MethodConfig;
use distill::models::ModelConfig;
use distill::schemes::load_data;
use distill::train::{DataBundle, Job, Progress, Teacher};

pub const TINY: &str = r#"
name = "tiny"
seeds = [1]
[data]
train_limit = 256
test_limit = 128
[train]
epochs = 3
batch_size = 32
lr = 0.05
[teacher]
model = "mlp"
hidden = [64]
[[student]]
name = "kd"
model = "mlp"
hidden = [16]
dropout = 0.1
[[student.loss]]
method = "ce"
weight = 0.1
[[student.loss]]
method = "kd"
"#;

pub fn plan(text: &str) -> Plan {
    ExperimentConfig::from_toml(text, "test.toml")
        .unwrap()
        .validate()
        .unwrap()
}

pub fn data(plan: &Plan) -> DataBundle {
    load_data(plan).unwrap()
}

/// An untrained (but fixed-seed) frozen teacher.
pub fn teacher(data: &DataBundle) -> Teacher {
    let device = Device::flex();
    device.seed(99);
    let net = ModelConfig {
        model: "mlp".into(),
        hidden: Some(vec![64]),
        dropout: None,
        width: None,
    }
    .build(data.geometry(), data.train.num_classes, &device)
    .unwrap()
    .valid();
    let eval = distill::train::evaluate(&net, &data.test, &data.norm, 64, &device);
    Teacher {
        name: "mlp".into(),
        shapes: net.tap_shapes(data.geometry(), &device),
        net,
        test_predictions: eval.predictions,
        test_accuracy: eval.accuracy,
    }
}

pub fn job<'a>(
    dir: &Path,
    plan: &'a Plan,
    losses: &'a [MethodConfig],
    train: &'a TrainPlan,
    teachers: &'a [Teacher],
    data: &'a DataBundle,
) -> Job<'a> {
    Job {
        label: "test".into(),
        dir: dir.to_path_buf(),
        seed: 7,
        model: plan.students[0].model.clone(),
        losses,
        train,
        teachers,
        data,
        device: Device::flex().autodiff(),
        resume: false,
        interrupt: None,
        stop_after: None,
        progress: Progress::Quiet,
    }
}

pub fn arc<T>(t: T) -> Arc<T> {
    Arc::new(t)
}

/// Burn seeds its random streams per backend, process-wide: training runs that must be
/// reproducible cannot overlap in one process, so the tests that train take this lock.
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}
