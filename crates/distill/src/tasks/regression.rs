//! Regression: mean squared error on the standardised targets; RMSE and MAE in target units
//! (see [`crate::train::evaluate`]).

use burn::prelude::*;

use crate::knowledge::{mse::MseConfig, MethodConfig, RoleRef};

/// Mean squared error at weight 1 on `role`.
pub fn supervised(role: &str) -> Vec<MethodConfig> {
    vec![MethodConfig::Mse(MseConfig {
        weight: 1.0,
        student: Some(RoleRef::from(role)),
    })]
}

/// Sum of squared errors of `outputs` `[B, D]` against `targets` `[B, D]`, as `[1]`.
pub fn squared_error(outputs: Tensor<2>, targets: Tensor<2>) -> Tensor<1> {
    (outputs - targets).powi_scalar(2).sum()
}
