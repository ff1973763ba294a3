//! Generation (language modelling): next-token cross-entropy on the token targets, positions
//! labelled −100 skipped; held-out perplexity `exp(mean token NLL)`, next-token accuracy and
//! top-1 token agreement with the first teacher (see [`crate::train::evaluate`]).

use crate::knowledge::{ce::CeConfig, MethodConfig, RoleRef};

/// Cross-entropy at weight 1 on `role` (over the positions that have a target).
pub fn supervised(role: &str) -> Vec<MethodConfig> {
    vec![MethodConfig::Ce(CeConfig {
        weight: 1.0,
        label_smoothing: 0.0,
        student: Some(RoleRef::from(role)),
    })]
}

/// Sum of the negative log-likelihoods, the top-1 prediction of every position that has a
/// target (in order), and how many of those are right, from logits `[N, V]` (row-major) and
/// targets `[N]`.
pub fn nll_and_predictions(
    logits: &[f32],
    vocab: usize,
    targets: &[i64],
) -> (f64, Vec<usize>, usize) {
    let (mut nll, mut predictions, mut correct) = (0f64, Vec::new(), 0usize);
    for (row, &t) in logits.chunks_exact(vocab).zip(targets) {
        if t < 0 {
            continue;
        }
        nll += log_sum_exp(row) - row[t as usize] as f64;
        let p = argmax(row);
        correct += usize::from(p == t as usize);
        predictions.push(p);
    }
    (nll, predictions, correct)
}

/// `ln Σ exp(row)`, computed stably in `f64`.
pub fn log_sum_exp(row: &[f32]) -> f64 {
    let max = row.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v)) as f64;
    max + row
        .iter()
        .map(|&v| (v as f64 - max).exp())
        .sum::<f64>()
        .ln()
}

/// The indices of `row` from its largest value to its smallest (ties by index).
pub fn ranked(row: &[f32]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..row.len()).collect();
    order.sort_by(|&a, &b| row[b].total_cmp(&row[a]).then(a.cmp(&b)));
    order
}

/// Index of the largest value (the first of ties).
pub fn argmax(row: &[f32]) -> usize {
    let mut best = 0;
    for (i, &v) in row.iter().enumerate() {
        if v > row[best] {
            best = i;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perplexity_parts_skip_ignored_positions() {
        // uniform over 4 tokens: NLL ln 4 per position; the −100 position is skipped
        let logits = [0.0f32; 12];
        let (nll, predictions, correct) = nll_and_predictions(&logits, 4, &[0, -100, 3]);
        assert_eq!(predictions, [0, 0]);
        assert!((nll - 2.0 * 4f64.ln()).abs() < 1e-12);
        assert_eq!(correct, 1, "ties pick token 0");
        let (nll, _, correct) = nll_and_predictions(&[0.0, 10.0, 0.0, 0.0], 4, &[1]);
        assert_eq!(correct, 1);
        assert!(nll < 1e-3);
    }
}
