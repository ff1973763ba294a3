//! Margin-MSE for ranking distillation: match the teacher's score margin between a relevant and
//! a non-relevant document.
//!
//! A library loss today; it becomes a trainable method when ranking training lands.

use burn::prelude::*;

/// `mean_b ((s⁺ − s⁻) − (t⁺ − t⁻))²`.
///
/// # Conventions (Hofstätter et al., 2020; matchmaker `losses/msmargin.py`)
/// Plain mean over the batch, no ½.
///
/// # Shapes
/// each score `[B]`; output `[1]`.
pub fn margin_mse_loss(
    s_pos: Tensor<1>,
    s_neg: Tensor<1>,
    t_pos: Tensor<1>,
    t_neg: Tensor<1>,
) -> Tensor<1> {
    ((s_pos - s_neg) - (t_pos - t_neg)).powi_scalar(2).mean()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::knowledge::testing::{fixture, tensor};

    #[test]
    fn value_and_gradients_match_matchmaker() {
        let dev = Device::flex().autodiff();
        for case in fixture("margin_mse").cases() {
            let sp = tensor::<1>(case.input("s_pos"), &dev).require_grad();
            let sn = tensor::<1>(case.input("s_neg"), &dev).require_grad();
            let loss = margin_mse_loss(
                sp.clone(),
                sn.clone(),
                tensor(case.input("t_pos"), &dev),
                tensor(case.input("t_neg"), &dev),
            );
            case.assert_value(loss.clone());
            let g = loss.backward();
            case.assert_grad(
                "s_pos",
                sp.grad(&g).unwrap().into_data().iter::<f32>().collect(),
            );
            case.assert_grad(
                "s_neg",
                sn.grad(&g).unwrap().into_data().iter::<f32>().collect(),
            );
        }
    }
}
