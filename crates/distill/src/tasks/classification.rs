//! Classification: cross-entropy on the class labels; top-1 accuracy and top-1 agreement with the
//! first teacher (see [`crate::train::evaluate`]).

use burn::prelude::*;

use crate::knowledge::{ce::CeConfig, MethodConfig, RoleRef};

/// Cross-entropy at weight 1, without label smoothing, on `role`.
pub fn supervised(role: &str) -> Vec<MethodConfig> {
    vec![MethodConfig::Ce(CeConfig {
        weight: 1.0,
        label_smoothing: 0.0,
        student: Some(RoleRef::from(role)),
    })]
}

/// Correct top-1 predictions of `logits` `[B, C]` on `labels` `[B]`, as `[1]`.
pub fn correct(logits: Tensor<2>, labels: Tensor<1, Int>) -> Tensor<1> {
    let n = labels.dims()[0];
    logits
        .argmax(1)
        .reshape([n])
        .equal(labels)
        .int()
        .sum()
        .float()
}
