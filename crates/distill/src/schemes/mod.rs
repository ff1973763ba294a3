//! Schemes: how teachers and students are arranged in time (offline, online, self, ...).

pub mod offline;

pub use offline::{check_plan, load_data, run_experiment, RunOptions};
