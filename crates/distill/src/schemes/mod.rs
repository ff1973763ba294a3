//! Schemes: how teachers and students are arranged in time (offline, online, self, ...).

pub mod device;
pub mod offline;

pub use device::training_device;
pub use offline::{load_data, run_experiment, RunOptions};
