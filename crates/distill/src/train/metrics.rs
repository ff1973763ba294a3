//! Per-epoch metrics, written as JSON lines.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::checkpoint::write_atomic;
use crate::error::Result;

/// What one epoch measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// Epoch of its stage, starting at 1.
    pub epoch: usize,
    /// Whether the epoch belongs to a method's initialisation stage (AB, FT).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub init: bool,
    /// Learning rate at the epoch's last step.
    pub lr: f64,
    /// Mean weighted objective over the epoch's steps.
    pub train_loss: f64,
    /// Mean of each unweighted term over the epoch's steps.
    pub terms: BTreeMap<String, f64>,
    /// Training accuracy (on augmented batches, in training mode).
    pub train_acc: f64,
    /// Test accuracy.
    pub test_acc: f64,
    /// Top-1 agreement with teacher 0 on the test set, when there is a teacher.
    pub agreement: Option<f64>,
    /// Wall-clock seconds of the epoch (training and evaluation).
    pub seconds: f64,
}

/// Rewrites `metrics.jsonl` with the whole history (atomic, so a crash keeps the previous copy).
pub fn write_history(path: &Path, history: &[EpochRecord]) -> Result<()> {
    let mut out = Vec::new();
    for r in history {
        serde_json::to_writer(&mut out, r).expect("records serialise");
        out.push(b'\n');
    }
    write_atomic(path, &out)
}
