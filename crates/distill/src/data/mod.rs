//! Data: IDX reading, in-memory data sets, augmentation and batching.

pub mod augment;
pub mod dataset;
pub mod idx;
pub mod loader;
pub mod source;

pub use augment::Augment;
pub use dataset::{Dataset, Normalization};
pub use loader::{HostBatch, Loader};
pub use source::DataSource;
