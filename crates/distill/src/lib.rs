//! # distill
//!
//! Knowledge distillation for Rust, on [Burn](https://burn.dev): teachers and students with
//! named taps, a zoo of distillation losses, schemes, and a trainer that hosts them all.
//!
//! Layout follows the data flow: [`data`] → [`models`] → [`tasks`] → [`knowledge`] →
//! [`train`] → [`schemes`] → [`run`], driven by a validated [`config::Plan`].

pub mod config;
pub mod data;
pub mod error;
pub mod knowledge;
pub mod models;
pub mod report;
pub mod run;
pub mod schemes;
pub mod suggest;
pub mod tasks;
pub mod train;

pub use burn;
pub use error::{DistillError, Result};
