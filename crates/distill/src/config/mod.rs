//! Configuration: the experiment file, its validation into a [`Plan`], and name suggestions.

pub mod diff;
pub mod experiment;
pub mod suggest;
pub mod sweep;

pub use crate::train::plan::{OptimizerKind, ScheduleKind, TrainConfig, TrainPlan};
pub use experiment::{
    Backend, DataConfig, ExperimentConfig, Plan, StudentPlan, TeacherConfig, TeacherPlan,
};
pub use suggest::suggest;
pub use sweep::{PairConfig, RecipeConfig, SweepConfig};
