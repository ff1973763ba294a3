//! Teacher-bounded regression: penalise the student's regression error only where it is not
//! already better than the teacher's by a margin.
//!
//! A library loss today; it becomes a trainable method when regression training lands.

use burn::prelude::*;

/// `L_b = mean_b [‖s_b − y_b‖² + m > ‖t_b − y_b‖²] · ‖s_b − y_b‖²`.
///
/// # Conventions (Chen et al., Learning Efficient Object Detection Models with Knowledge
/// Distillation, NeurIPS 2017, eq. 4; the published formula, implemented as such in the
/// reference generator)
/// The teacher acts as an upper bound, not a target; squared L2 per sample; mean over the
/// batch; the paper adds it to a smooth-L1 loss against the ground truth with weight ν.
///
/// # Shapes
/// student, teacher and target `[B, D]`; output `[1]`.
pub fn bounded_regression_loss(
    student: Tensor<2>,
    teacher: Tensor<2>,
    target: Tensor<2>,
    margin: f64,
) -> Tensor<1> {
    let es = (student - target.clone()).powi_scalar(2).sum_dim(1);
    let et = (teacher - target).powi_scalar(2).sum_dim(1).detach();
    let active = es.clone().add_scalar(margin).greater(et).float();
    (es * active).mean()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::knowledge::testing::{fixture, grad_of, tensor2};

    #[test]
    fn value_and_gradient_match_the_published_formula() {
        let dev = Device::flex().autodiff();
        for case in fixture("bounded_regression").cases() {
            let s = tensor2(case.input("student"), &dev).require_grad();
            let loss = bounded_regression_loss(
                s.clone(),
                tensor2(case.input("teacher"), &dev),
                tensor2(case.input("target"), &dev),
                case.param("margin"),
            );
            case.assert_value(loss.clone());
            case.assert_grad("student", grad_of(&loss, &s));
        }
    }
}
