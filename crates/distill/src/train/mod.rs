//! Training: the step, the fit loop, the training plan and its schedules, optimisers,
//! checkpoints, metrics and progress.

pub mod cache;
pub mod checkpoint;
pub mod clip;
pub mod collapse;
pub mod ddp;
pub mod eval;
pub mod fit;
pub mod metrics;
pub mod optim;
pub mod plan;
pub mod progress;
pub mod scaler;
pub mod step;
pub mod store;

pub use cache::{CacheKey, CacheStats, TeacherCache};
pub use eval::{evaluate, evaluate_ensemble, Evaluation};
pub use fit::{build_trainable, DataBundle, Job, JobOutcome, Prepared, PROBE_BATCH};
pub use metrics::EpochRecord;
pub use optim::build_optimizer;
pub use progress::{errln, Progress};
pub use step::{train_step, Batch, StepAt, StepOutput, Teacher, Trainable};
