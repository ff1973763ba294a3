//! Configuration: the experiment and sweep files, their validation into a [`Plan`], and the
//! differences a `--resume` refuses.

pub mod diff;
pub mod experiment;
pub mod sweep;

pub use crate::train::plan::{OptimizerKind, Precision, ScheduleKind, TrainConfig, TrainPlan};
pub use experiment::{
    Backend, DataConfig, ExperimentConfig, FederatedConfig, FederatedPlan, Plan, StudentPlan,
    TeacherConfig, TeacherPlan,
};
pub use sweep::{PairConfig, RecipeConfig, SweepConfig};
