//! ListNet-style listwise ranking distillation: cross-entropy between the teacher's and the
//! student's top-one probabilities over each query's list.
//!
//! A library loss today; it becomes a trainable method when ranking training lands.

use burn::prelude::*;

/// Softmax over each row restricted to the unpadded entries (padded entries get probability 0
/// and no gradient; a fully padded row is all zeros).
fn masked_softmax(x: Tensor<2>, keep: Tensor<2>) -> Tensor<2> {
    let row_max = (x.clone() * keep.clone() + keep.clone().neg().add_scalar(1.0).mul_scalar(-1e30))
        .max_dim(1)
        .detach();
    // Padded entries are zeroed before exp (finite even for a fully padded row), then masked.
    let e = ((x - row_max) * keep.clone()).exp() * keep;
    e.clone() / e.sum_dim(1).clamp_min(1e-30)
}

/// `mean over queries of −Σ_j softmax(t)_j · log(softmax(s)_j + eps)`.
///
/// # Conventions (teacher scores as the targets)
/// `eps` inside the log is where the references differ: allRank (`models/losses/listNet.py`,
/// `eps = DEFAULT_EPS = 1e-10`) and matchmaker (`matchmaker/losses/listnet.py`, `ListNetLoss`,
/// `eps = 1e-6`, no padding) both compute `−Σ softmax(t) · log(softmax(s) + eps)`; pass the
/// one to reproduce (the smaller it is, the harder near-zero student probabilities are
/// punished). Entries with `pad = 1` are excluded from both softmaxes (zero probability, zero
/// gradient) while every row still counts in the mean; a fully padded row contributes 0
/// (allRank would give NaN).
///
/// # Shapes
/// scores and padding `[Q, N]`; output `[1]`.
pub fn listnet_loss(student: Tensor<2>, teacher: Tensor<2>, pad: Tensor<2>, eps: f64) -> Tensor<1> {
    let keep = pad.neg().add_scalar(1.0);
    let pt = masked_softmax(teacher, keep.clone());
    let ps = masked_softmax(student, keep);
    (pt * ps.add_scalar(eps).log()).sum_dim(1).neg().mean()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::knowledge::testing::{fixture, grad_of, tensor2};

    /// Cases with allRank's eps (1e-10) and matchmaker's (1e-6), the latter on scores spread
    /// widely enough that the two eps give different values.
    #[test]
    fn value_and_gradient_match_allrank_and_matchmaker() {
        let dev = Device::flex().autodiff();
        for case in fixture("listnet").cases() {
            let s = tensor2(case.input("student"), &dev).require_grad();
            let loss = listnet_loss(
                s.clone(),
                tensor2(case.input("teacher"), &dev),
                tensor2(case.input("pad"), &dev),
                case.param("eps"),
            );
            case.assert_value(loss.clone());
            case.assert_grad("student", grad_of(&loss, &s));
        }
    }

    #[test]
    fn fully_padded_rows_are_finite_and_padding_gets_no_gradient() {
        let dev = Device::flex().autodiff();
        let s = Tensor::<2>::from_floats([[1.0, 2.0, 3.0], [0.5, 0.1, 0.2]], &dev).require_grad();
        let t = Tensor::<2>::from_floats([[3.0, 2.0, 1.0], [1.0, 1.0, 1.0]], &dev);
        let pad = Tensor::<2>::from_floats([[0.0, 0.0, 1.0], [1.0, 1.0, 1.0]], &dev);
        let loss = listnet_loss(s.clone(), t, pad, 1e-10);
        assert!(loss.clone().into_scalar::<f32>().is_finite());
        let g = grad_of(&loss, &s);
        assert!(g.iter().all(|v| v.is_finite()));
        assert_eq!(&g[2..], &[0.0, 0.0, 0.0, 0.0]);
    }
}
