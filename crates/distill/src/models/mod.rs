//! Models: the zoo, each returning logits plus named taps.

pub mod average;
pub mod cnn;
pub mod conv1d;
pub mod gpt;
pub mod gru;
pub mod lenet;
pub mod mlp;
pub mod net;
pub mod resnet;
pub mod sample;
pub mod taps;

pub use average::average;
pub use net::{ModelConfig, ModelInfo, ModelSpec, Net, RoleModel, MODELS};
pub use taps::{Feature, TapShapes, Taps};
