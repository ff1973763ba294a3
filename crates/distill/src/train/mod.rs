//! Training: the loop, optimisers, schedules (in [`crate::config::TrainPlan`]), checkpoints,
//! metrics and progress.

pub mod cache;
pub mod checkpoint;
pub mod clip;
pub mod collapse;
pub mod ddp;
pub mod eval;
pub mod metrics;
pub mod optim;
pub mod progress;
pub mod trainer;

pub use cache::{CacheKey, CacheStats, TeacherCache};
pub use eval::{evaluate, Evaluation};
pub use metrics::EpochRecord;
pub use optim::build_optimizer;
pub use progress::{errln, Progress};
pub use trainer::{
    build_trainable, train_step, DataBundle, Job, JobOutcome, Prepared, StepAt, StepOutput,
    Teacher, Trainable,
};
