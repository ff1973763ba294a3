//! Reporting: results tables and training-curve plots.

pub mod plot;
pub mod table;

pub use plot::{plot_bars, plot_curves, Bar};
pub use table::{mean_std, Metric, Report, Row};
