//! Models: the zoo, each returning logits plus named taps.

pub mod average;
pub mod bert;
pub mod cnn;
pub mod conv;
pub mod conv1d;
pub mod gpt;
pub mod gru;
pub mod interop;
pub mod lenet;
pub mod mlp;
pub mod mobilenet;
pub mod net;
pub mod pool;
pub mod precision;
pub mod resnet;
pub mod sample;
pub mod shufflenet;
pub mod taps;
pub mod vgg;
pub mod wrn;

pub use average::average;

/// Layers of the given output widths, each reading the previous one's (the first reads
/// `inputs`), built by `layer(in, out)`; returns them and the last width.
pub(crate) fn stack<L>(
    inputs: usize,
    widths: &[usize],
    mut layer: impl FnMut(usize, usize) -> L,
) -> (Vec<L>, usize) {
    let mut width = inputs;
    let layers = widths
        .iter()
        .map(|&w| {
            let l = layer(width, w);
            width = w;
            l
        })
        .collect();
    (layers, width)
}
pub use net::{ModelConfig, ModelInfo, ModelSpec, Net, RoleModel, MODELS};
pub use taps::{Feature, TapShapes, Taps};
