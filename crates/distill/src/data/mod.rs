//! Data: IDX reading, in-memory data sets, augmentation and batching.

pub mod augment;
pub mod cifar;
pub mod dataset;
pub mod folder;
pub mod graph;
pub mod idx;
pub mod loader;
pub mod retrieval;
pub mod source;
pub mod table;
pub mod text;
pub mod ts;
pub mod view;

pub use augment::Augment;
pub use dataset::{Dataset, Inputs, Normalization, Targets, IGNORE_INDEX};
pub use graph::{GraphConfig, GraphSummary};
pub use loader::{HostBatch, HostTargets, Loader};
pub use source::DataSource;
pub use view::{View, ViewConfig, SOURCE_VIEW};
