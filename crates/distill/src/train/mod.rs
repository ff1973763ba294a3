//! Training: the loop, optimisers, schedules (in [`crate::config::TrainPlan`]), checkpoints,
//! metrics and progress.

pub mod checkpoint;
pub mod eval;
pub mod metrics;
pub mod optim;
pub mod progress;
pub mod trainer;

pub use eval::{evaluate, Evaluation};
pub use metrics::EpochRecord;
pub use progress::Progress;
pub use trainer::{DataBundle, Job, JobOutcome, Prepared, Teacher, Trainable};
