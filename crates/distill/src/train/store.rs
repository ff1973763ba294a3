//! The run folder's bookkeeping: the loop state in `last/state.json` and the `job.json` guard
//! that keeps `--resume` from mixing two recipes in one run.

use serde::{Deserialize, Serialize};

use super::fit::Job;
use super::metrics::EpochRecord;
use crate::config::diff::RESUMABLE;
use crate::config::TrainPlan;
use crate::error::{DistillError, Result};
use crate::knowledge::MethodConfig;
use crate::models::{ModelConfig, RoleModel};

/// The loop state saved with `last/` after every epoch.
#[derive(Serialize, Deserialize)]
pub(crate) struct TrainState {
    pub(crate) completed: usize,
    /// The best epoch's headline metric oriented so that higher is better (accuracy, −RMSE).
    pub(crate) best_score: f64,
    pub(crate) best_epoch: usize,
    pub(crate) seconds: f64,
    pub(crate) history: Vec<EpochRecord>,
    /// The collapse that stopped the run, so that `--resume` reports it again instead of
    /// finishing quietly (unless `stop_on_collapse` is now off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) collapsed: Option<CollapseRecord>,
}

/// A collapse as stored in `state.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct CollapseRecord {
    pub(crate) epoch: usize,
    pub(crate) what: String,
    pub(crate) term: String,
    pub(crate) advice: String,
}

/// What a run's results depend on, recorded as `job.json` so that `--resume` can refuse to mix
/// two different recipes in one run.
#[derive(Serialize, PartialEq)]
struct JobSpec<'a> {
    seed: u64,
    model: &'a ModelConfig,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    peers: &'a [RoleModel],
    losses: &'a [MethodConfig],
    train: &'a TrainPlan,
    teachers: Vec<&'a str>,
    /// Training images the job sees (a student's `train_limit`).
    train_images: usize,
}

/// Writes `job.json`, or, when resuming a run that has one, checks that it still describes this
/// job and names each setting that changed.
pub(crate) fn check_job_spec(job: &Job<'_>) -> Result<()> {
    let spec = JobSpec {
        seed: job.seed,
        model: &job.roles[0].model,
        peers: &job.roles[1..],
        losses: job.losses,
        train: job.train,
        teachers: job.teachers.iter().map(|t| t.name.as_str()).collect(),
        train_images: job.data.train.len(),
    };
    let mut now = serde_json::to_value(&spec).expect("job spec serialises");
    let path = job.dir.join("job.json");
    if job.resume {
        if let Ok(raw) = std::fs::read(&path) {
            let before: serde_json::Value =
                serde_json::from_slice(&raw).map_err(|e| DistillError::Checkpoint {
                    path: path.clone(),
                    reason: format!("corrupt job.json: {e}"),
                })?;
            // job.json files written before `train_images` was recorded lack it.
            if before.get("train_images").is_none() {
                if let Some(o) = now.as_object_mut() {
                    o.remove("train_images");
                }
            }
            let mut changed = Vec::new();
            crate::config::diff::differences(&before, &now, "", RESUMABLE, &mut changed);
            if !changed.is_empty() {
                return Err(DistillError::Config(format!(
                    "{}: --resume would continue a run started with other settings: {} (as started vs now, {}); restore them, or train into a new folder (--out) (nothing was changed)",
                    job.label,
                    changed.join("; "),
                    path.display()
                )));
            }
            return Ok(());
        }
    }
    std::fs::create_dir_all(&job.dir)
        .map_err(|e| DistillError::io("creating run folder", &job.dir, e))?;
    super::checkpoint::write_atomic(
        &path,
        serde_json::to_string_pretty(&now)
            .expect("job spec serialises")
            .as_bytes(),
    )
}
