//! Test helpers: reference values produced by `tools/gen_loss_fixtures.py` (PyTorch, float64).

use burn::prelude::*;
use burn::tensor::TensorData;
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Deserialize)]
pub struct Array {
    pub shape: Vec<usize>,
    pub data: Vec<f64>,
}

#[derive(Deserialize)]
pub struct Case {
    pub name: String,
    #[serde(default)]
    pub params: BTreeMap<String, f64>,
    pub inputs: BTreeMap<String, Array>,
    pub value: f64,
    #[serde(default)]
    pub grads: BTreeMap<String, Array>,
}

pub struct Fixture(Vec<Case>);

const FIXTURES: &str = include_str!("../../fixtures/losses.json");

/// The reference cases of one method.
pub fn fixture(method: &str) -> Fixture {
    let mut all: BTreeMap<String, Vec<Case>> =
        serde_json::from_str(FIXTURES).expect("fixtures parse");
    let cases = all
        .remove(method)
        .unwrap_or_else(|| panic!("no fixture for {method}; run tools/gen_loss_fixtures.py"));
    assert!(!cases.is_empty());
    Fixture(cases)
}

impl Fixture {
    pub fn cases(&self) -> &[Case] {
        &self.0
    }
}

fn close(got: f64, want: f64) -> bool {
    (got - want).abs() <= 1e-5 + 2e-4 * want.abs()
}

impl Case {
    pub fn input(&self, name: &str) -> &Array {
        self.inputs
            .get(name)
            .unwrap_or_else(|| panic!("{}: no input {name}", self.name))
    }

    pub fn param(&self, name: &str) -> f64 {
        self.params[name]
    }

    pub fn assert_value(&self, loss: Tensor<1>) {
        let got = loss.into_scalar::<f32>() as f64;
        assert!(
            close(got, self.value),
            "{}: value {got} vs reference {}",
            self.name,
            self.value
        );
    }

    pub fn assert_grad(&self, name: &str, got: Vec<f32>) {
        let want = &self
            .grads
            .get(name)
            .unwrap_or_else(|| panic!("{}: no grad {name}", self.name))
            .data;
        assert_eq!(got.len(), want.len(), "{}: gradient size", self.name);
        let scale = want.iter().fold(0f64, |m, v| m.max(v.abs()));
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            assert!(
                (*g as f64 - w).abs() <= 1e-6 + 2e-4 * scale,
                "{}: d/d{name}[{i}] = {g} vs reference {w}",
                self.name
            );
        }
    }
}

fn data(a: &Array) -> TensorData {
    TensorData::new(
        a.data.iter().map(|&v| v as f32).collect::<Vec<_>>(),
        a.shape.clone(),
    )
}

pub fn tensor2(a: &Array, device: &Device) -> Tensor<2> {
    Tensor::from_data(data(a), device)
}

pub fn tensor4(a: &Array, device: &Device) -> Tensor<4> {
    Tensor::from_data(data(a), device)
}

/// Gradient of `loss` with respect to the leaf `x`, flattened.
pub fn grad_of<const D: usize>(loss: &Tensor<1>, x: &Tensor<D>) -> Vec<f32> {
    let grads = loss.backward();
    x.grad(&grads)
        .expect("leaf has a gradient")
        .into_data()
        .iter::<f32>()
        .collect()
}

/// The largest absolute difference between two equally long vectors.
pub fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// Integer labels stored as floats in the fixture.
pub fn labels(a: &Array, device: &Device) -> Tensor<1, Int> {
    let v: Vec<i64> = a.data.iter().map(|&v| v as i64).collect();
    Tensor::from_data(TensorData::new(v, a.shape.clone()), device)
}

/// Any-rank tensor from a fixture array.
pub fn tensor<const D: usize>(a: &Array, device: &Device) -> Tensor<D> {
    Tensor::from_data(data(a), device)
}

/// The same values viewed as `[B, rest]`.
pub fn flat(a: &Array) -> Array {
    Array {
        shape: vec![a.shape[0], a.data.len() / a.shape[0]],
        data: a.data.clone(),
    }
}

/// Any-rank integer tensor (labels, masks) from a fixture array.
pub fn int_tensor<const D: usize>(a: &Array, device: &Device) -> Tensor<D, Int> {
    let v: Vec<i64> = a.data.iter().map(|&v| v as i64).collect();
    Tensor::from_data(TensorData::new(v, a.shape.clone()), device)
}

/// Leaf tensors (requiring gradients) of the named 4-D inputs of a case.
pub fn leaves4(case: &Case, names: &[&str], device: &Device) -> Vec<Tensor<4>> {
    names
        .iter()
        .map(|n| tensor4(case.input(n), device).require_grad())
        .collect()
}

/// Constant tensors of the named 4-D inputs of a case.
pub fn consts4(case: &Case, names: &[&str], device: &Device) -> Vec<Tensor<4>> {
    names
        .iter()
        .map(|n| tensor4(case.input(n), device))
        .collect()
}

/// Checks the gradient of `loss` with respect to each named leaf against the reference.
pub fn assert_grads<const D: usize>(
    case: &Case,
    loss: &Tensor<1>,
    names: &[&str],
    leaves: &[Tensor<D>],
) {
    let grads = loss.backward();
    for (n, x) in names.iter().zip(leaves) {
        let g: Vec<f32> = x
            .grad(&grads)
            .expect("leaf has a gradient")
            .into_data()
            .iter::<f32>()
            .collect();
        case.assert_grad(n, g);
    }
}
