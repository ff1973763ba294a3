//! A batch's targets on the device, typed by task.

use burn::prelude::*;
use burn::tensor::TensorData;

use crate::data::HostTargets;

/// The targets of a batch.
#[derive(Debug, Clone)]
pub enum Target {
    /// Class labels `[B]`.
    Class(Tensor<1, Int>),
    /// Standardised reals `[B, D]`.
    Real(Tensor<2>),
    /// Relevance grades `[B]` (ranking).
    Relevance(Tensor<1>),
    /// No targets (an unlabeled batch).
    None,
    /// Next-token ids `[B · L]` (row `b · L + l` is position `l` of window `b`, as a language
    /// model's logits are laid out), −100 where a position has none.
    Tokens(Tensor<1, Int>),
}

impl Target {
    /// Uploads host targets of `n` samples.
    pub fn upload(t: HostTargets, n: usize, device: &Device) -> Target {
        match t {
            HostTargets::Class(l) => {
                Target::Class(Tensor::from_data(TensorData::new(l, [n]), device))
            }
            HostTargets::Real(v) => {
                let d = v.len() / n.max(1);
                Target::Real(Tensor::from_data(TensorData::new(v, [n, d]), device))
            }
            HostTargets::Relevance(g) => {
                Target::Relevance(Tensor::from_data(TensorData::new(g, [n]), device))
            }
            HostTargets::None => Target::None,
            HostTargets::Tokens(t) => {
                let len = t.len();
                Target::Tokens(Tensor::from_data(TensorData::new(t, [len]), device))
            }
        }
    }

    /// The class labels. Terms that read them are built only for labelled classification
    /// (see `BuildContext::require_task`), so other targets never reach them.
    pub fn classes(&self) -> Tensor<1, Int> {
        match self {
            Target::Class(y) => y.clone(),
            _ => panic!(
                "class labels read from a batch without them (checked when the term is built)"
            ),
        }
    }

    /// The real targets (standardised). Terms that read them are built only for labelled
    /// regression.
    pub fn reals(&self) -> Tensor<2> {
        match self {
            Target::Real(y) => y.clone(),
            _ => panic!(
                "real targets read from a batch without them (checked when the term is built)"
            ),
        }
    }

    /// The relevance grades. Terms that read them are built only for labelled ranking.
    pub fn relevance(&self) -> Tensor<1> {
        match self {
            Target::Relevance(g) => g.clone(),
            _ => panic!(
                "relevance grades read from a batch without them (checked when the term is built)"
            ),
        }
    }

    /// The next-token ids `[B · L]` (−100 at positions without a target). Terms that read them
    /// are built only for labelled language modelling.
    pub fn tokens(&self) -> Tensor<1, Int> {
        match self {
            Target::Tokens(t) => t.clone(),
            _ => panic!(
                "next tokens read from a batch without them (checked when the term is built)"
            ),
        }
    }

    /// The per-batch sum behind the training metric: correct top-1 predictions of `outputs`
    /// (classes) or their squared errors in standardised units (reals), `[1]`; ranking has no
    /// training metric (0), nor has language modelling.
    pub fn batch_sum(&self, outputs: Tensor<2>) -> Tensor<1> {
        match self {
            Target::Class(y) => super::classification::correct(outputs, y.clone()),
            Target::Real(y) => super::regression::squared_error(outputs, y.clone()),
            // Language models report held-out perplexity only.
            Target::Relevance(_) | Target::None | Target::Tokens(_) => {
                Tensor::zeros([1], &outputs.device())
            }
        }
    }

    /// The same targets on another device (data-parallel shards are uploaded per device).
    pub fn to_device(&self, device: &Device) -> Target {
        match self {
            Target::Class(y) => Target::Class(y.clone().to_device(device)),
            Target::Real(y) => Target::Real(y.clone().to_device(device)),
            Target::Relevance(g) => Target::Relevance(g.clone().to_device(device)),
            Target::None => Target::None,
            Target::Tokens(t) => Target::Tokens(t.clone().to_device(device)),
        }
    }
}
