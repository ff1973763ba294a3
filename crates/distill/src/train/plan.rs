//! Optimiser, schedule and budget settings (`[train]`, and `[teacher.train]` / `[student.train]`
//! overrides).

use serde::{Deserialize, Serialize};

use crate::error::{DistillError, Result};

/// Optimiser kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    /// SGD with optional (Nesterov) momentum and L2 weight decay (PyTorch semantics, dampening 0).
    Sgd,
    /// Adam with L2 weight decay added to the gradient.
    Adam,
    /// AdamW with decoupled weight decay.
    Adamw,
}

/// The dtype the students compute in (`[train] precision`; see [`crate::models::precision`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// Everything in f32.
    #[default]
    F32,
    /// The students' forward and backward in bfloat16 over f32 master weights; normalisation
    /// layers, losses, the optimiser, teachers and evaluation in f32.
    Bf16,
    /// As `Bf16` in IEEE half precision, with dynamic loss scaling (see
    /// [`crate::train::scaler`]).
    F16,
}

impl Precision {
    /// The compute dtype.
    pub fn dtype(self) -> burn::tensor::DType {
        match self {
            Precision::F32 => burn::tensor::DType::F32,
            Precision::Bf16 => burn::tensor::DType::BF16,
            Precision::F16 => burn::tensor::DType::F16,
        }
    }

    fn is_f32(&self) -> bool {
        *self == Precision::F32
    }
}

/// Learning-rate schedule kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScheduleKind {
    /// Constant learning rate.
    Constant,
    /// Multiply by `gamma` at each epoch in `milestones` (PyTorch `MultiStepLR`).
    Multistep,
    /// Cosine annealing from `lr` to 0 over the run (per step).
    Cosine,
}

/// Training settings as written; every field is optional so that a section can override only
/// what it names. Resolved into [`TrainPlan`] with the defaults below.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// Epochs (default 10).
    pub epochs: Option<usize>,
    /// Mini-batch size (default 128).
    pub batch_size: Option<usize>,
    /// `sgd` (default), `adam` or `adamw`.
    pub optimizer: Option<OptimizerKind>,
    /// Peak learning rate (default 0.05 for SGD, 0.001 for Adam/AdamW).
    pub lr: Option<f64>,
    /// SGD momentum (default 0.9).
    pub momentum: Option<f64>,
    /// Nesterov momentum (default false).
    pub nesterov: Option<bool>,
    /// Weight decay (default 5e-4 for SGD, 0 for Adam, 0.01 for AdamW).
    pub weight_decay: Option<f64>,
    /// `constant`, `multistep` or `cosine` (default).
    pub schedule: Option<ScheduleKind>,
    /// Epochs after which the rate is multiplied by `gamma` (multistep).
    pub milestones: Option<Vec<usize>>,
    /// Multistep factor (default 0.1).
    pub gamma: Option<f64>,
    /// Linear warm-up epochs from 0 to `lr` (default 0).
    pub warmup_epochs: Option<usize>,
    /// Clip the global gradient norm of everything trained to this value before each update
    /// (PyTorch's `clip_grad_norm_`; default: no clipping).
    pub grad_clip: Option<f64>,
    /// `f32` (default), `bf16` or `f16`: the dtype the students compute in, over f32 master
    /// weights (f16 with dynamic loss scaling).
    pub precision: Option<Precision>,
    /// Stop with an error when the model collapses: test accuracy no better than predicting the
    /// most frequent class (default true).
    pub stop_on_collapse: Option<bool>,
}

/// Resolved training settings: the only form the trainer accepts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainPlan {
    /// Epochs.
    pub epochs: usize,
    /// Mini-batch size.
    pub batch_size: usize,
    /// Optimiser.
    pub optimizer: OptimizerKind,
    /// Peak learning rate.
    pub lr: f64,
    /// SGD momentum (0 disables it).
    pub momentum: f64,
    /// Nesterov momentum.
    pub nesterov: bool,
    /// Weight decay.
    pub weight_decay: f64,
    /// Schedule.
    pub schedule: ScheduleKind,
    /// Multistep milestones (epochs).
    pub milestones: Vec<usize>,
    /// Multistep factor.
    pub gamma: f64,
    /// Warm-up epochs.
    pub warmup_epochs: usize,
    /// Global gradient-norm clipping threshold (`None`: off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grad_clip: Option<f64>,
    /// The students' compute dtype.
    #[serde(default, skip_serializing_if = "Precision::is_f32")]
    pub precision: Precision,
    /// Whether a collapse (accuracy at the majority-class rate) stops the run with an error.
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub stop_on_collapse: bool,
}

fn yes() -> bool {
    true
}
fn is_true(b: &bool) -> bool {
    *b
}

impl From<&TrainPlan> for TrainConfig {
    /// Every setting written out (milestones only where they apply), so that resolving gives the
    /// same plan back.
    fn from(p: &TrainPlan) -> Self {
        TrainConfig {
            epochs: Some(p.epochs),
            batch_size: Some(p.batch_size),
            optimizer: Some(p.optimizer),
            lr: Some(p.lr),
            momentum: Some(p.momentum),
            nesterov: Some(p.nesterov),
            weight_decay: Some(p.weight_decay),
            schedule: Some(p.schedule),
            milestones: (p.schedule == ScheduleKind::Multistep).then(|| p.milestones.clone()),
            gamma: Some(p.gamma),
            warmup_epochs: Some(p.warmup_epochs),
            grad_clip: p.grad_clip,
            precision: (!p.precision.is_f32()).then_some(p.precision),
            stop_on_collapse: Some(p.stop_on_collapse),
        }
    }
}

macro_rules! overlay {
    ($base:expr, $over:expr, $($f:ident),*) => {
        TrainConfig { $($f: $over.$f.clone().or_else(|| $base.$f.clone())),* }
    };
}

impl TrainConfig {
    /// `over`'s values where given, else `self`'s.
    pub fn overlay(&self, over: &TrainConfig) -> TrainConfig {
        overlay!(
            self,
            over,
            epochs,
            batch_size,
            optimizer,
            lr,
            momentum,
            nesterov,
            weight_decay,
            schedule,
            milestones,
            gamma,
            warmup_epochs,
            grad_clip,
            precision,
            stop_on_collapse
        )
    }

    /// Fills in defaults and checks ranges; `role` names the section in errors.
    pub fn resolve(&self, role: &str) -> Result<TrainPlan> {
        let optimizer = self.optimizer.unwrap_or(OptimizerKind::Sgd);
        let plan = TrainPlan {
            epochs: self.epochs.unwrap_or(10),
            batch_size: self.batch_size.unwrap_or(128),
            optimizer,
            lr: self.lr.unwrap_or(match optimizer {
                OptimizerKind::Sgd => 0.05,
                _ => 1e-3,
            }),
            momentum: self.momentum.unwrap_or(0.9),
            nesterov: self.nesterov.unwrap_or(false),
            weight_decay: self.weight_decay.unwrap_or(match optimizer {
                OptimizerKind::Sgd => 5e-4,
                OptimizerKind::Adam => 0.0,
                OptimizerKind::Adamw => 0.01,
            }),
            schedule: self.schedule.unwrap_or(ScheduleKind::Cosine),
            milestones: self.milestones.clone().unwrap_or_default(),
            gamma: self.gamma.unwrap_or(0.1),
            warmup_epochs: self.warmup_epochs.unwrap_or(0),
            grad_clip: self.grad_clip,
            precision: self.precision.unwrap_or_default(),
            stop_on_collapse: self.stop_on_collapse.unwrap_or(true),
        };
        let err = |m: String| Err(DistillError::Config(format!("{role}: {m}")));
        if plan.epochs == 0 {
            return err("train.epochs must be at least 1".into());
        }
        if plan.batch_size < 2 {
            return err(format!(
                "train.batch_size must be at least 2 (batch norm needs two samples), got {}",
                plan.batch_size
            ));
        }
        if !(plan.lr.is_finite() && plan.lr > 0.0) {
            return err(format!("train.lr must be positive, got {}", plan.lr));
        }
        if !(0.0..1.0).contains(&plan.momentum) {
            return err(format!(
                "train.momentum must be in [0, 1), got {}",
                plan.momentum
            ));
        }
        if plan.nesterov && (plan.optimizer != OptimizerKind::Sgd || plan.momentum == 0.0) {
            return err("train.nesterov needs optimizer = \"sgd\" with momentum > 0".into());
        }
        if !(plan.weight_decay >= 0.0 && plan.weight_decay.is_finite()) {
            return err(format!(
                "train.weight_decay must be ≥ 0, got {}",
                plan.weight_decay
            ));
        }
        if !(plan.gamma.is_finite() && plan.gamma > 0.0) {
            return err(format!("train.gamma must be positive, got {}", plan.gamma));
        }
        if let Some(c) = plan.grad_clip {
            if !(c.is_finite() && c > 0.0) {
                return err(format!(
                    "train.grad_clip must be a positive norm (e.g. 5.0), got {c}; remove it to train without clipping"
                ));
            }
        }
        if plan.warmup_epochs >= plan.epochs {
            return err(format!(
                "train.warmup_epochs ({}) must be below train.epochs ({})",
                plan.warmup_epochs, plan.epochs
            ));
        }
        if plan.schedule == ScheduleKind::Multistep && plan.milestones.is_empty() {
            return err(
                "train.schedule = \"multistep\" needs train.milestones, e.g. [150, 180, 210]"
                    .into(),
            );
        }
        if plan.schedule != ScheduleKind::Multistep && self.milestones.is_some() {
            return err("train.milestones only apply to schedule = \"multistep\"".into());
        }
        if plan.milestones.windows(2).any(|w| w[0] >= w[1])
            || plan.milestones.iter().any(|&m| m == 0 || m >= plan.epochs)
        {
            return err(format!(
                "train.milestones must increase strictly and lie in 1..{}, got {:?}",
                plan.epochs, plan.milestones
            ));
        }
        Ok(plan)
    }
}

impl TrainPlan {
    /// Learning rate at `step` (0-based) of `steps_per_epoch` in `epoch` (1-based).
    ///
    /// Warm-up is linear per step over `warmup_epochs`; cosine anneals per step over the
    /// remaining steps to 0; multistep multiplies by `gamma` once per milestone passed
    /// (PyTorch `MultiStepLR`: milestone `m` applies from epoch `m + 1`).
    pub fn lr_at(&self, epoch: usize, step: usize, steps_per_epoch: usize) -> f64 {
        let spe = steps_per_epoch.max(1) as f64;
        let t = (epoch - 1) as f64 * spe + step as f64; // steps done before this one
        let warm = self.warmup_epochs as f64 * spe;
        if t < warm {
            return self.lr * (t + 1.0) / warm;
        }
        match self.schedule {
            ScheduleKind::Constant => self.lr,
            ScheduleKind::Multistep => {
                let passed = self.milestones.iter().filter(|&&m| epoch > m).count();
                self.lr * self.gamma.powi(passed as i32)
            }
            ScheduleKind::Cosine => {
                let total = self.epochs as f64 * spe - warm;
                let p = ((t - warm) / total.max(1.0)).clamp(0.0, 1.0);
                0.5 * self.lr * (1.0 + (std::f64::consts::PI * p).cos())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_follow_pytorch_conventions() {
        let mut c = TrainConfig {
            epochs: Some(10),
            lr: Some(0.1),
            ..Default::default()
        };
        c.schedule = Some(ScheduleKind::Multistep);
        c.milestones = Some(vec![5, 8]);
        let p = c.resolve("t").unwrap();
        assert_eq!(p.lr_at(5, 0, 10), 0.1);
        assert!((p.lr_at(6, 0, 10) - 0.01).abs() < 1e-12);
        assert!((p.lr_at(9, 3, 10) - 0.001).abs() < 1e-12);
        c.schedule = Some(ScheduleKind::Cosine);
        c.milestones = None;
        c.warmup_epochs = Some(1);
        let p = c.resolve("t").unwrap();
        assert!((p.lr_at(1, 0, 4) - 0.025).abs() < 1e-12);
        assert!((p.lr_at(2, 0, 4) - 0.1).abs() < 1e-12);
        assert!(p.lr_at(10, 3, 4) < 0.001);
    }

    #[test]
    fn precision_reads_f32_bf16_and_f16_and_names_them_otherwise() {
        let read = |t: &str| toml::from_str::<TrainConfig>(t);
        let bf16 = read("precision = \"bf16\"").unwrap().resolve("t").unwrap();
        assert_eq!(bf16.precision, Precision::Bf16);
        assert_eq!(bf16.precision.dtype(), burn::tensor::DType::BF16);
        let err = read("precision = \"fp16\"").unwrap_err().to_string();
        assert!(
            err.contains("fp16") && err.contains("f32") && err.contains("bf16"),
            "{err}"
        );
        // the default is f32, which a stored plan leaves out (earlier plans read back unchanged)
        let f32 = TrainConfig::default().resolve("t").unwrap();
        assert_eq!(f32.precision, Precision::F32);
        assert!(!serde_json::to_string(&f32).unwrap().contains("precision"));
        let stored = serde_json::to_string(&bf16).unwrap();
        assert_eq!(serde_json::from_str::<TrainPlan>(&stored).unwrap(), bf16);
        assert_eq!(TrainConfig::from(&bf16).resolve("t").unwrap(), bf16);
    }

    #[test]
    fn overlay_and_validation() {
        let base = TrainConfig {
            epochs: Some(5),
            lr: Some(0.1),
            ..Default::default()
        };
        let over = TrainConfig {
            epochs: Some(7),
            ..Default::default()
        };
        let p = base.overlay(&over).resolve("t").unwrap();
        assert_eq!((p.epochs, p.lr), (7, 0.1));
        let bad = TrainConfig {
            schedule: Some(ScheduleKind::Multistep),
            ..Default::default()
        };
        assert!(bad
            .resolve("t")
            .unwrap_err()
            .to_string()
            .contains("milestones"));
    }
}
