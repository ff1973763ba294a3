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

/// Sum of the negative log-likelihoods and the number of correct top-1 predictions of the
/// positions that have a target, from logits `[N, V]` (row-major) and targets `[N]`.
pub fn nll_and_correct(logits: &[f32], vocab: usize, targets: &[i64]) -> (f64, usize, usize) {
    let (mut nll, mut correct, mut count) = (0f64, 0usize, 0usize);
    for (row, &t) in logits.chunks_exact(vocab).zip(targets) {
        if t < 0 {
            continue;
        }
        nll += log_sum_exp(row) - row[t as usize] as f64;
        correct += usize::from(argmax(row) == t as usize);
        count += 1;
    }
    (nll, correct, count)
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
        let (nll, correct, count) = nll_and_correct(&logits, 4, &[0, -100, 3]);
        assert_eq!(count, 2);
        assert!((nll - 2.0 * 4f64.ln()).abs() < 1e-12);
        assert_eq!(correct, 1, "ties pick token 0");
        let (nll, correct, _) = nll_and_correct(&[0.0, 10.0, 0.0, 0.0], 4, &[1]);
        assert_eq!(correct, 1);
        assert!(nll < 1e-3);
    }
}
