//! Running things: backends and device lists, and sweeps (grids of experiments).

pub mod device;
pub mod sweep;

pub use device::training_device;
pub use sweep::{run_sweep, sweep_dir};
