//! Per-epoch metrics, written as JSON lines.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::checkpoint::write_atomic;
use crate::error::Result;

/// What one epoch measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// Epoch of its stage, starting at 1.
    pub epoch: usize,
    /// Whether the epoch belongs to a method's initialisation stage (AB, FT).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub init: bool,
    /// Learning rate at the epoch's last step.
    pub lr: f64,
    /// Mean weighted objective over the epoch's steps.
    pub train_loss: f64,
    /// Mean of each unweighted term over the epoch's steps.
    pub terms: BTreeMap<String, f64>,
    /// Training accuracy (on augmented batches, in training mode; classification).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_acc: Option<f64>,
    /// Test accuracy (classification).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_acc: Option<f64>,
    /// Training root-mean-square error over the epoch's batches, in target units (regression).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_rmse: Option<f64>,
    /// Test root-mean-square error, in target units (regression).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_rmse: Option<f64>,
    /// Test mean absolute error, in target units (regression).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_mae: Option<f64>,
    /// Test NDCG@10 (ranking).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_ndcg: Option<f64>,
    /// Test MRR@10 (ranking).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_mrr: Option<f64>,
    /// Test perplexity (generation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_ppl: Option<f64>,
    /// Test next-token accuracy (generation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_token_acc: Option<f64>,
    /// Top-1 agreement with the first teacher on the test set, when there is a teacher
    /// (ranking: NDCG@10 against the teacher's ranking).
    pub agreement: Option<f64>,
    /// MRR@10 of the teacher's top candidate in the student's ranking (ranking).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub teacher_mrr: Option<f64>,
    /// Test accuracy of each peer of the recipe (its trainable roles after the student).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub peers: BTreeMap<String, f64>,
    /// Wall-clock seconds of the epoch (training and evaluation).
    pub seconds: f64,
}

impl EpochRecord {
    /// The task's headline test metric: accuracy (classification), RMSE (regression),
    /// NDCG@10 (ranking) or perplexity (generation); on an unlabeled transfer set, the top-1
    /// agreement with the teacher.
    pub fn primary(&self) -> f64 {
        self.test_acc
            .or(self.test_rmse)
            .or(self.test_ndcg)
            .or(self.test_ppl)
            .or(self.agreement)
            .unwrap_or(f64::NAN)
    }

    /// A value of this epoch's headline metric (its own, or a peer's) oriented so that higher
    /// is better: an accuracy or an NDCG as it is, an RMSE or a perplexity negated.
    pub fn oriented(&self, value: f64) -> f64 {
        if self.test_acc.is_none() && (self.test_rmse.is_some() || self.test_ppl.is_some()) {
            -value
        } else {
            value
        }
    }

    /// The headline metric oriented so that higher is better (what the best checkpoint keeps).
    pub fn score(&self) -> f64 {
        match (
            self.test_acc,
            self.test_rmse,
            self.test_ndcg,
            self.test_ppl,
            self.agreement,
        ) {
            (None, None, None, None, None) => f64::NEG_INFINITY,
            _ => self.oriented(self.primary()),
        }
    }
}

/// Rewrites `metrics.jsonl` with the whole history (atomic, so a crash keeps the previous copy).
pub fn write_history(path: &Path, history: &[EpochRecord]) -> Result<()> {
    let mut out = Vec::new();
    for r in history {
        serde_json::to_writer(&mut out, r).expect("records serialise");
        out.push(b'\n');
    }
    write_atomic(path, &out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_bit_for_bit() {
        // Resume reads the history back from state.json: serde_json's default float parser was
        // off by one ulp for some values (these two, on an AVX-512 CPU), which made resumed
        // runs differ from uninterrupted ones. The `float_roundtrip` feature parses exactly.
        let mut values = vec![0.025971262017264962, 11.344565709431967, 0.1 + 0.2, 1e-308];
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..10_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let v = f64::from_bits(x);
            if v.is_finite() {
                values.push(v);
            }
        }
        for v in values {
            let r = EpochRecord {
                epoch: 1,
                init: false,
                lr: v,
                train_loss: v,
                terms: [("term".to_string(), v)].into(),
                train_acc: Some(v),
                test_acc: Some(v),
                train_rmse: None,
                test_rmse: None,
                test_mae: None,
                test_ndcg: None,
                test_mrr: None,
                test_ppl: Some(v),
                test_token_acc: None,
                agreement: Some(v),
                teacher_mrr: None,
                peers: Default::default(),
                seconds: v,
            };
            let back: EpochRecord =
                serde_json::from_slice(&serde_json::to_vec(&r).unwrap()).unwrap();
            assert_eq!(back.train_loss.to_bits(), v.to_bits(), "{v:e}");
            assert_eq!(back.terms["term"].to_bits(), v.to_bits(), "{v:e}");
        }
    }
}
