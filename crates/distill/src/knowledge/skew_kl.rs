//! Skewed KL and skewed reverse KL (DistiLLM): KL against a mixture of the two distributions,
//! which keeps gradients bounded when the student puts little mass where the teacher does.
//!
//! Library losses today (token-level, `[batch, length, vocabulary]` logits); they become
//! trainable methods when language-model training lands.

use burn::prelude::*;
use burn::tensor::activation::softmax;

use super::ops::token_reduce;

fn probs(student: Tensor<3>, teacher: Tensor<3>, temperature: f64) -> (Tensor<3>, Tensor<3>) {
    (
        softmax(teacher.div_scalar(temperature), 2),
        softmax(student.div_scalar(temperature), 2),
    )
}

fn reduce(per_elem: Tensor<3>, labels: Option<Tensor<2, Int>>) -> Tensor<1> {
    let [b, l, _] = per_elem.dims();
    token_reduce(per_elem.sum_dim(2).reshape([b, l]), labels)
}

/// α-skewed KL: per token `KL(p ‖ α·p + (1 − α)·q)` with `p` the teacher's and `q` the student's
/// distribution (`softmax(z / T)`).
///
/// # Conventions
/// The published formula of Ko et al., DistiLLM, ICML 2024 (α = 0.1 there), implemented as such
/// in the reference generator; token reduction as [`super::gkd::generalized_jsd_loss`]. The
/// probabilities are formed explicitly (the mixture has no log-space shortcut), so a token whose
/// teacher probability underflows to 0 contributes 0 for it.
///
/// # Shapes
/// logits `[B, L, V]`, labels `[B, L]`; output `[1]`.
pub fn skew_kl_loss(
    student: Tensor<3>,
    teacher: Tensor<3>,
    labels: Option<Tensor<2, Int>>,
    alpha: f64,
    temperature: f64,
) -> Tensor<1> {
    let (p, q) = probs(student, teacher, temperature);
    let mix = p.clone().mul_scalar(alpha) + q.mul_scalar(1.0 - alpha);
    reduce(p.clone() * (p.clamp_min(1e-30).log() - mix.log()), labels)
}

/// α-skewed reverse KL: per token `KL(q ‖ (1 − α)·p + α·q)` (same conventions as
/// [`skew_kl_loss`]).
pub fn skew_rkl_loss(
    student: Tensor<3>,
    teacher: Tensor<3>,
    labels: Option<Tensor<2, Int>>,
    alpha: f64,
    temperature: f64,
) -> Tensor<1> {
    let (p, q) = probs(student, teacher, temperature);
    let mix = p.mul_scalar(1.0 - alpha) + q.clone().mul_scalar(alpha);
    reduce(q.clone() * (q.clamp_min(1e-30).log() - mix.log()), labels)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::knowledge::testing::{fixture, grad_of, int_tensor, tensor};

    type Loss = fn(Tensor<3>, Tensor<3>, Option<Tensor<2, Int>>, f64, f64) -> Tensor<1>;

    #[test]
    fn values_and_gradients_match_the_published_formulas() {
        let dev = Device::flex().autodiff();
        for (name, f) in [
            ("skew_kl", skew_kl_loss as Loss),
            ("skew_rkl", skew_rkl_loss as Loss),
        ] {
            for case in fixture(name).cases() {
                let s = tensor::<3>(case.input("student"), &dev).require_grad();
                let t = tensor::<3>(case.input("teacher"), &dev);
                let labels = int_tensor::<2>(case.input("labels"), &dev);
                let loss = f(
                    s.clone(),
                    t,
                    Some(labels),
                    case.param("alpha"),
                    case.param("temperature"),
                );
                case.assert_value(loss.clone());
                case.assert_grad("student", grad_of(&loss, &s));
            }
        }
    }

    #[test]
    fn identical_inputs_give_zero() {
        let dev = Device::flex().autodiff();
        let z = Tensor::<3>::random([1, 2, 4], burn::tensor::Distribution::Default, &dev)
            .require_grad();
        for f in [skew_kl_loss as Loss, skew_rkl_loss as Loss] {
            let loss = f(z.clone(), z.clone().detach(), None, 0.1, 1.0);
            assert!(loss.clone().into_scalar::<f32>().abs() < 1e-6);
            assert!(grad_of(&loss, &z).iter().all(|g| g.is_finite()));
        }
    }
}
