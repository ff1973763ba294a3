//! Schemes: how teachers and students are arranged in time (offline, online, self, ...).

pub mod device;
pub mod offline;
pub mod sweep;

pub use device::training_device;
pub use offline::{check_plan, load_data, run_experiment, RunOptions};
pub use sweep::{run_sweep, sweep_dir};
