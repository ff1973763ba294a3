//! Weighted parameter averaging of models of one architecture: the aggregation step of federated
//! averaging (McMahan et al. 2017), done through Burn's module visitor and mapper so that every
//! float tensor of the module (weights, biases, batch-norm running statistics) is averaged, as
//! averaging PyTorch `state_dict`s does.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::prelude::*;

use super::Net;
use crate::error::{DistillError, Result};

/// Collects a module's float tensors, flattened, in visiting order.
struct Collect(Vec<Tensor<1>>);

impl ModuleVisitor for Collect {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        self.0.push(param.val().flatten(0, D - 1));
    }
}

/// Replaces each float tensor, in visiting order, by the next prepared average.
struct Replace {
    averages: std::vec::IntoIter<Tensor<1>>,
}

impl ModuleMapper for Replace {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let average = self
            .averages
            .next()
            .expect("the models were checked to have the same tensors");
        param.map(|t| {
            let require_grad = t.is_require_grad();
            let shape = t.shape();
            let out = average.reshape(shape).detach();
            if require_grad {
                out.require_grad()
            } else {
                out
            }
        })
    }
}

/// `Σ_i w_i θ_i / Σ_i w_i` over the models' float tensors (FedAvg's aggregation with `w_i` the
/// clients' sample counts). The result keeps the first model's parameter ids and device.
///
/// Errors when the list is empty, a weight is negative or not finite, the weights sum to zero,
/// or the models do not hold the same tensors (another architecture).
pub fn average(nets: &[Net], weights: &[f64]) -> Result<Net> {
    let cfg = |m: String| Err(DistillError::Config(m));
    if nets.is_empty() || nets.len() != weights.len() {
        return cfg(format!(
            "averaging needs one weight per model and at least one model, got {} models and {} weights",
            nets.len(),
            weights.len()
        ));
    }
    if weights.iter().any(|w| !(w.is_finite() && *w >= 0.0)) {
        return cfg(format!(
            "averaging weights must be finite and non-negative, got {weights:?}"
        ));
    }
    let total: f64 = weights.iter().sum();
    if total <= 0.0 {
        return cfg(format!(
            "averaging weights sum to zero ({weights:?}): at least one model must count"
        ));
    }
    let tensors: Vec<Vec<Tensor<1>>> = nets
        .iter()
        .map(|n| {
            let mut c = Collect(Vec::new());
            n.visit(&mut c);
            c.0
        })
        .collect();
    let dims = |ts: &[Tensor<1>]| ts.iter().map(|t| t.dims()[0]).collect::<Vec<_>>();
    let first = dims(&tensors[0]);
    for (i, ts) in tensors.iter().enumerate().skip(1) {
        let other = dims(ts);
        if other != first {
            return Err(DistillError::Shape {
                context: format!("averaging model {} with model 1 (tensor sizes)", i + 1),
                expected: first,
                got: other,
                fix: "; only models of one architecture can be averaged".into(),
            });
        }
    }
    let averages: Vec<Tensor<1>> = (0..first.len())
        .map(|k| {
            tensors
                .iter()
                .zip(weights)
                .map(|(ts, &w)| ts[k].clone() * (w / total))
                .reduce(|a, b| a + b)
                .expect("at least one model")
        })
        .collect();
    Ok(nets[0].clone().map(&mut Replace {
        averages: averages.into_iter(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::ModelSpec;

    fn mlp(hidden: usize, seed: u64, device: &Device) -> Net {
        device.seed(seed);
        ModelSpec {
            hidden: Some(vec![hidden]),
            ..ModelSpec::named("mlp")
        }
        .resolve("test")
        .unwrap()
        .build([1, 2, 3], 4, device)
        .unwrap()
    }

    fn flat(net: &Net) -> Vec<f32> {
        let mut c = Collect(Vec::new());
        net.visit(&mut c);
        c.0.into_iter()
            .flat_map(|t| t.into_data().iter::<f32>().collect::<Vec<_>>())
            .collect()
    }

    #[test]
    fn weighted_average_of_every_tensor() {
        let device = Device::default();
        let (a, b) = (mlp(5, 1, &device), mlp(5, 2, &device));
        let avg = average(&[a.clone(), b.clone()], &[1.0, 3.0]).unwrap();
        let (fa, fb, fm) = (flat(&a), flat(&b), flat(&avg));
        assert_eq!(fm.len(), fa.len());
        for ((x, y), m) in fa.iter().zip(&fb).zip(&fm) {
            let want = 0.25 * x + 0.75 * y;
            assert!(
                (m - want).abs() <= 1e-6 * want.abs().max(1.0),
                "{m} vs {want}"
            );
        }
        // One model with all the weight is that model.
        let same = average(&[a.clone(), b], &[2.0, 0.0]).unwrap();
        assert_eq!(flat(&same), fa);
    }

    #[test]
    fn refuses_other_architectures_and_bad_weights() {
        let device = Device::default();
        let (a, b) = (mlp(5, 1, &device), mlp(6, 1, &device));
        let e = average(&[a.clone(), b], &[1.0, 1.0])
            .unwrap_err()
            .to_string();
        assert!(e.contains("one architecture"), "{e}");
        for w in [[0.0, 0.0], [-1.0, 2.0], [f64::NAN, 1.0]] {
            assert!(average(&[a.clone(), a.clone()], &w).is_err());
        }
        assert!(average(&[], &[]).is_err());
    }
}
