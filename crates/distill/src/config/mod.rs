//! Configuration: the experiment file, its validation into a [`Plan`], and name suggestions.

pub mod diff;
pub mod experiment;
pub mod suggest;
pub mod sweep;
pub mod train;

pub use experiment::{
    Backend, DataConfig, ExperimentConfig, Plan, StudentPlan, TeacherConfig, TeacherPlan,
};
pub use suggest::suggest;
pub use sweep::{PairConfig, RecipeConfig, SweepConfig};
pub use train::{OptimizerKind, ScheduleKind, TrainConfig, TrainPlan};
