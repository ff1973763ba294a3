//! Running things: experiments (a scheme's phases in order), sweeps (grids of experiments),
//! backends and device lists.

pub mod device;
pub mod experiment;
pub mod sweep;

pub use device::training_device;
pub use experiment::{check_plan, load_data, run_experiment, RunOptions};
pub use sweep::{merge_sweep, run_sweep, run_sweep_shard, sweep_dir, Shard};
