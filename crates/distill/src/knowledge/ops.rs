//! Tensor primitives shared by the losses, with the reference implementations' conventions.

use burn::prelude::*;
use burn::tensor::module::adaptive_avg_pool2d;

/// `x / max(‖x‖₂, 1e-12)` along dimension 1 (PyTorch `F.normalize`).
///
/// Computed as `sqrt(max(‖x‖², 1e-24))`: the same value, and a zero vector gets a zero gradient
/// (as in PyTorch) instead of the NaN of `sqrt′(0)`.
pub fn normalize_rows(x: Tensor<2>) -> Tensor<2> {
    let norm = x.clone().powi_scalar(2).sum_dim(1).clamp_min(1e-24).sqrt();
    x / norm
}

/// `x / max(‖x‖₂, 1e-12)` along the last dimension of a 3-D tensor (see [`normalize_rows`]).
pub fn normalize_last(x: Tensor<3>) -> Tensor<3> {
    let norm = x.clone().powi_scalar(2).sum_dim(2).clamp_min(1e-24).sqrt();
    x / norm
}

/// When two feature maps differ in spatial size, average-pools the larger to the smaller one's
/// size (PyTorch `adaptive_avg_pool2d` windows `[⌊i·H/L⌋, ⌈(i+1)·H/L⌉)`), as RepDistiller's AT,
/// NST, FSP and VID do (they compare heights and pool to a square; for square maps this is the
/// same).
pub fn pool_to_common(s: Tensor<4>, t: Tensor<4>) -> (Tensor<4>, Tensor<4>) {
    let [_, _, sh, sw] = s.dims();
    let [_, _, th, tw] = t.dims();
    if sh > th {
        (adaptive_avg_pool2d(s, [th, tw]), t)
    } else if sh < th {
        (s, adaptive_avg_pool2d(t, [sh, sw]))
    } else {
        (s, t)
    }
}

/// The element-wise mean of equally shaped tensors (several models' logits), `[B, C]`.
pub fn mean_of(xs: &[Tensor<2>]) -> Tensor<2> {
    Tensor::stack::<3>(xs.to_vec(), 0)
        .sum_dim(0)
        .squeeze_dim::<2>(0)
        .div_scalar(xs.len() as f64)
}

/// Row-wise softmax probabilities of `z / t`.
pub fn softmax_t(z: Tensor<2>, t: f64) -> Tensor<2> {
    burn::tensor::activation::softmax(z.div_scalar(t), 1)
}

/// Sum over all elements of `p · (log p − log q)` given `log p` and `log q`, divided by the batch
/// size (KL "batchmean"); entries with `p = 0` contribute 0.
pub fn kl_batchmean(log_p: Tensor<2>, log_q: Tensor<2>) -> Tensor<1> {
    let b = log_p.dims()[0] as f64;
    (log_p.clone().exp() * (log_p - log_q)).sum().div_scalar(b)
}

pub use crate::data::IGNORE_INDEX;

/// Token-level reduction of a per-token loss `[B, L]`: with labels, positions labelled −100 are
/// excluded and the sum is divided by the number of valid tokens (at least 1, so a batch with
/// no valid token gives 0); without labels the full sum is divided by the batch size.
pub fn token_reduce(per_token: Tensor<2>, labels: Option<Tensor<2, Int>>) -> Tensor<1> {
    match labels {
        None => {
            let b = per_token.dims()[0] as f64;
            per_token.sum().div_scalar(b)
        }
        Some(labels) => {
            let mask = labels.not_equal_elem(IGNORE_INDEX).float();
            (per_token * mask.clone()).sum() / mask.sum().clamp_min(1.0)
        }
    }
}
