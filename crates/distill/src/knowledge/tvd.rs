//! Token-level total variation distance between teacher and student distributions.
//!
//! A library loss today (token-level logits); it becomes a trainable method when language-model
//! training lands.

use burn::prelude::*;
use burn::tensor::activation::softmax;

use super::ops::token_reduce;

/// Per token `½ Σ_v |p_t(v) − p_s(v)|` with `p = softmax(z / T)`, reduced over valid tokens as
/// [`super::gkd::generalized_jsd_loss`].
///
/// # Conventions
/// The textbook definition (bounded in `[0, 1]` per token; used for LLM distillation by
/// DistillKit and Wen et al., ACL 2023, "f-divergence minimization for sequence-level KD").
///
/// # Shapes
/// logits `[B, L, V]`, labels `[B, L]`; output `[1]`.
pub fn tvd_loss(
    student: Tensor<3>,
    teacher: Tensor<3>,
    labels: Option<Tensor<2, Int>>,
    temperature: f64,
) -> Tensor<1> {
    let p = softmax(teacher.div_scalar(temperature), 2);
    let q = softmax(student.div_scalar(temperature), 2);
    let [b, l, _] = p.dims();
    token_reduce(
        (p - q).abs().sum_dim(2).mul_scalar(0.5).reshape([b, l]),
        labels,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::knowledge::testing::{fixture, grad_of, int_tensor, tensor};

    #[test]
    fn value_and_gradient_match_the_definition() {
        let dev = Device::flex().autodiff();
        for case in fixture("tvd").cases() {
            let s = tensor::<3>(case.input("student"), &dev).require_grad();
            let t = tensor::<3>(case.input("teacher"), &dev);
            let labels = int_tensor::<2>(case.input("labels"), &dev);
            let loss = tvd_loss(s.clone(), t, Some(labels), case.param("temperature"));
            case.assert_value(loss.clone());
            case.assert_grad("student", grad_of(&loss, &s));
        }
    }
}
