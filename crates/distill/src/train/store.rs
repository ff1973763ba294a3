//! The run folder: the loop state in `last/state.json`, what each epoch writes (best and last
//! checkpoints of every trainable role, the metrics) and restores, and the `job.json` guard that
//! keeps `--resume` from mixing two recipes in one run.

use serde::{Deserialize, Serialize};

use std::path::Path;

use burn::optim::ModuleOptimizer;

use super::checkpoint::{
    load_module, model_files, module_bytes, resolve_dir, write_dir, ModelMeta,
};
use super::fit::Job;
use super::metrics::{write_history, EpochRecord};
use super::scaler::LossScaler;
use super::step::Trainable;
use crate::config::diff::RESUMABLE;
use crate::config::TrainPlan;
use crate::error::{DistillError, Result};
use crate::knowledge::MethodConfig;
use crate::knowledge::Stage;
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
    /// f16's loss scale (`None` at other precisions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) scaler: Option<LossScaler>,
}

impl TrainState {
    /// The state of a run that has not trained yet.
    pub(crate) fn fresh() -> Self {
        Self {
            completed: 0,
            best_score: f64::MIN, // finite: state.json holds it (JSON has no infinities)
            best_epoch: 0,
            seconds: 0.0,
            history: Vec::new(),
            collapsed: None,
            scaler: None,
        }
    }
}

/// Loads `last/` (or its half-renamed copy, see [`resolve_dir`]) into the trainable bundle and
/// the optimiser, if a previous run left one: its loop state, weights and optimiser state.
pub(crate) fn restore(
    last_dir: &Path,
    trainable: Trainable,
    optim: ModuleOptimizer,
) -> Result<(Option<TrainState>, Trainable, ModuleOptimizer)> {
    let Some(dir) = resolve_dir(last_dir) else {
        return Ok((None, trainable, optim));
    };
    let bad = |reason: String| DistillError::Checkpoint {
        path: dir.clone(),
        reason,
    };
    let raw = std::fs::read(dir.join("state.json"))
        .map_err(|e| bad(format!("cannot read state.json: {e}")))?;
    let state: TrainState =
        serde_json::from_slice(&raw).map_err(|e| bad(format!("corrupt state.json: {e}")))?;
    let trainable = load_module(trainable, &dir.join("trainable.bpk"))?;
    let optim = optim
        .load(dir.join("optimizer.bpk"))
        .map_err(|e| bad(format!("optimizer state does not load: {e}")))?;
    Ok((Some(state), trainable, optim))
}

/// Writes an epoch's files, each folder atomically: the recipe's student to `best/` (when its
/// score improved) and `last/` (with the whole trainable bundle, the optimiser state and the loop
/// state), each peer to `peers/<name>/best/` (when its own metric improved) and `.../last/`, and
/// the history to `metrics.jsonl`. `state` already holds the epoch's record.
pub(crate) fn save_epoch(
    dir: &Path,
    roles: &[RoleModel],
    metas: &[ModelMeta],
    trainable: &Trainable,
    optim: &ModuleOptimizer,
    state: &mut TrainState,
    stage: Stage,
) -> Result<()> {
    let last_dir = dir.join("last");
    let record = state
        .history
        .last()
        .expect("the epoch was recorded")
        .clone();
    // The student's files are serialised once and written to best/ (if improved) and last/.
    let mut files = model_files(&trainable.students[0], &metas[0], &last_dir)?;
    if stage == Stage::Main && record.score() > state.best_score {
        state.best_score = record.score();
        state.best_epoch = record.epoch;
        write_dir(&dir.join("best"), &files)?;
    }
    let earlier = &state.history[..state.history.len() - 1];
    for ((role, net), meta) in roles.iter().zip(&trainable.students).zip(metas).skip(1) {
        let score = |r: &EpochRecord| {
            r.peers
                .get(&role.name)
                .map_or(f64::NEG_INFINITY, |&v| r.oriented(v))
        };
        let before = earlier
            .iter()
            .filter(|r| !r.init)
            .map(score)
            .fold(f64::NEG_INFINITY, f64::max);
        let peer = dir.join("peers").join(&role.name);
        let peer_files = model_files(net, meta, &peer.join("last"))?;
        if stage == Stage::Main && score(&record) > before {
            write_dir(&peer.join("best"), &peer_files)?;
        }
        write_dir(&peer.join("last"), &peer_files)?;
    }
    write_history(&dir.join("metrics.jsonl"), &state.history)?;
    let optim_bytes = optim.into_bytes().map_err(|e| DistillError::Checkpoint {
        path: last_dir.join("optimizer.bpk"),
        reason: format!("serialising the optimizer state: {e}"),
    })?;
    files.push((
        "trainable.bpk",
        module_bytes(trainable, &last_dir.join("trainable.bpk"))?,
    ));
    files.push(("optimizer.bpk", optim_bytes.to_vec()));
    files.push((
        "state.json",
        serde_json::to_vec(state).expect("state serialises"),
    ));
    write_dir(&last_dir, &files)
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
    /// Whether they carry their targets (recorded only when they do not).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    unlabeled: bool,
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
        unlabeled: !job.data.train.has_targets(),
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
