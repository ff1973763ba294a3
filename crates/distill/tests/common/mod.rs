//! Shared helpers of the integration tests: tiny runs on the embedded data.

#![allow(dead_code, missing_docs)]

use std::path::Path;

use distill::burn::prelude::*;
use distill::config::{ExperimentConfig, Plan, TrainPlan};
use distill::data::View;
use distill::knowledge::STUDENT;
use distill::models::{ModelConfig, RoleModel};
use distill::run::load_data;
use distill::train::{DataBundle, Job, JobOutcome, Progress, Teacher};

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
# The teacher is untrained: a student that follows it stays at chance on purpose.
stop_on_collapse = false
[[teacher]]
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

/// A validated plan, its data and an untrained (but fixed-seed) frozen teacher; jobs train the
/// plan's first student recipe.
pub struct Setup {
    pub plan: Plan,
    pub data: DataBundle,
    pub teachers: [Teacher; 1],
}

impl Setup {
    pub fn new(text: &str) -> Self {
        Self::with_teacher(
            text,
            ModelConfig::Mlp {
                hidden: Some(vec![64]),
                dropout: None,
            },
        )
    }

    /// As [`Setup::new`] with another (untrained) teacher architecture.
    pub fn with_teacher(text: &str, teacher: ModelConfig) -> Self {
        let plan = plan(text);
        let mut data = load_data(&plan).unwrap();
        if !plan.students[0].labels {
            // what the experiment runner gives such a recipe (DataBundle::for_phase)
            data.train = std::sync::Arc::new((*data.train).clone().without_targets());
        }
        let device = Device::flex();
        device.seed(99);
        let name = teacher.name().to_string();
        let net = teacher
            .build(data.geometry(), data.train.num_classes, &device)
            .unwrap()
            .valid();
        let eval =
            distill::train::evaluate(&net, &View::source(), &data.test, &data.norm, 64, &device);
        let teacher = Teacher {
            name,
            shapes: net.tap_shapes(data.geometry(), &device),
            net,
            view: View::source(),
            test_predictions: eval.predictions,
            test_scores: eval.scores,
            cache: None,
            unready: None,
        };
        Self {
            plan,
            data,
            teachers: [teacher],
        }
    }

    /// A job training the first student recipe with its own training settings.
    pub fn job(&self, dir: &Path) -> Job<'_> {
        self.job_with(dir, &self.plan.students[0].train)
    }

    /// A job training the first student recipe with other training settings.
    pub fn job_with<'a>(&'a self, dir: &Path, train: &'a TrainPlan) -> Job<'a> {
        Job {
            label: "test".into(),
            dir: dir.to_path_buf(),
            seed: 7,
            roles: std::iter::once(RoleModel {
                name: STUDENT.into(),
                model: self.plan.students[0].model.clone(),
                view: self.plan.students[0].view.clone(),
            })
            .chain(self.plan.students[0].peers.iter().cloned())
            .collect(),
            losses: &self.plan.students[0].losses,
            train,
            teachers: &self.teachers,
            data: &self.data,
            device: Device::flex().autodiff(),
            replicas: Vec::new(),
            resume: false,
            interrupt: None,
            stop_after: None,
            start: None,
            progress: Progress::Quiet,
        }
    }

    /// Trains the first student recipe to the end of its budget in `dir`.
    pub fn train(&self, dir: &Path) -> JobOutcome {
        self.job(dir).prepare().unwrap().run().unwrap()
    }

    /// Resumes the run in `dir` and trains it to the end of its budget.
    pub fn resume(&self, dir: &Path) -> JobOutcome {
        let mut job = self.job(dir);
        job.resume = true;
        job.prepare().unwrap().run().unwrap()
    }

    /// Trains the first `epochs` epochs in `dir` and stops cleanly.
    pub fn run_epochs(&self, dir: &Path, epochs: usize) -> JobOutcome {
        let mut job = self.job(dir);
        job.stop_after = Some(epochs);
        job.prepare().unwrap().run().unwrap()
    }
}

/// Burn seeds its random streams per backend, process-wide: training runs that must be
/// reproducible cannot overlap in one process, so the tests that train take this lock.
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Two runs logged the same epochs with exactly the same losses, terms and accuracies.
pub fn assert_same_history(a: &JobOutcome, b: &JobOutcome) {
    assert_eq!(a.history.len(), b.history.len());
    for (x, y) in a.history.iter().zip(&b.history) {
        assert_eq!(
            (x.epoch, x.train_loss, x.test_acc, &x.terms),
            (y.epoch, y.train_loss, y.test_acc, &y.terms),
            "epoch {}",
            x.epoch
        );
    }
}
