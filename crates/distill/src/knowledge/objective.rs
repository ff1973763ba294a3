//! The training objective: a weighted sum of named knowledge terms.

use burn::prelude::*;

use super::method::Built;
use super::term::StepContext;
use super::Aux;

/// Weighted sum of terms; every term's unweighted value is reported for logging.
pub struct Objective {
    terms: Vec<Built>,
}

/// The objective's value at one step.
pub struct ObjectiveValue {
    /// `Σ weight · term`.
    pub total: Tensor<1>,
    /// Each term's unweighted value, by name (names made unique with a `#2` suffix).
    pub terms: Vec<(String, Tensor<1>)>,
}

impl Objective {
    /// An objective over built terms.
    pub fn new(terms: Vec<Built>) -> Self {
        Self { terms }
    }

    /// Number of terms.
    pub fn len(&self) -> usize {
        self.terms.len()
    }

    /// Whether there is no term.
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// Evaluates every term and their weighted sum.
    pub fn forward(&self, aux: &[Aux], ctx: &StepContext<'_>) -> ObjectiveValue {
        let mut total: Option<Tensor<1>> = None;
        let mut named: Vec<(String, Tensor<1>)> = Vec::new();
        for built in &self.terms {
            for (name, value) in built.term.forward(aux, ctx) {
                let weighted = value.clone().mul_scalar(built.weight);
                total = Some(match total {
                    Some(t) => t + weighted,
                    None => weighted,
                });
                let mut unique = name.clone();
                let mut k = 2;
                while named.iter().any(|(n, _)| *n == unique) {
                    unique = format!("{name}#{k}");
                    k += 1;
                }
                named.push((unique, value));
            }
        }
        ObjectiveValue {
            total: total.expect("an objective has at least one term (checked by the config)"),
            terms: named,
        }
    }
}
