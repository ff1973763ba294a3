//! Progress reporting: an indicatif bar with throughput and ETA on a terminal, one line per
//! epoch otherwise, or nothing.

use indicatif::{ProgressBar, ProgressStyle};

use super::metrics::EpochRecord;

/// Writes one line to stderr, ignoring a closed stderr (`distill train … 2>&1 | head`): losing
/// a log line must never stop a training run.
pub fn errln(text: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{text}");
}

/// An epoch's test metrics for a log line: `87.50%`, `RMSE 512.3 MAE 301.2`, or
/// `NDCG@10 0.7120 MRR@10 0.6500`, or `ppl 4.21 token acc 51.20%`.
pub fn headline(r: &EpochRecord) -> String {
    if let Some(p) = r.test_ppl {
        return format!(
            "ppl {p:.3} token acc {:.2}%",
            100.0 * r.test_token_acc.unwrap_or(f64::NAN)
        );
    }
    match (r.test_acc, r.test_rmse, r.test_ndcg) {
        (Some(a), _, _) => format!("{:.2}%", 100.0 * a),
        (None, Some(e), _) => format!("RMSE {e:.4} MAE {:.4}", r.test_mae.unwrap_or(f64::NAN)),
        (None, None, Some(n)) => format!(
            "NDCG@10 {n:.4} MRR@10 {:.4}",
            r.test_mrr.unwrap_or(f64::NAN)
        ),
        // an unlabeled transfer set: the agreement follows in the epoch line
        (None, None, None) if r.agreement.is_some() => "unlabeled".into(),
        (None, None, None) => "—".into(),
    }
}

/// A model's test metrics for a log line: `accuracy 87.50%`, `RMSE 512.3, MAE 301.2`, or
/// `NDCG@10 0.7120, MRR@10 0.6500`, or `perplexity 4.21, token accuracy 51.20%`.
pub fn evaluation_line(e: &super::Evaluation) -> String {
    if let Some(p) = e.perplexity {
        return format!(
            "perplexity {p:.3}, token accuracy {:.2}%",
            100.0 * e.token_accuracy.unwrap_or(f64::NAN)
        );
    }
    match (e.accuracy, e.rmse, e.ndcg) {
        (Some(a), _, _) => format!("accuracy {:.2}%", 100.0 * a),
        (None, Some(r), _) => format!("RMSE {r:.4}, MAE {:.4}", e.mae.unwrap_or(f64::NAN)),
        (None, None, Some(n)) => format!("NDCG@10 {n:.4}, MRR@10 {:.4}", e.mrr.unwrap_or(f64::NAN)),
        (None, None, None) if !e.predictions.is_empty() => {
            // What a constant student would agree: the share of the most frequent prediction.
            let mut counts = std::collections::HashMap::new();
            for p in &e.predictions {
                *counts.entry(p).or_insert(0usize) += 1;
            }
            let top = counts.values().copied().max().unwrap_or(0);
            format!(
                "no labels (unlabeled transfer set); {} distinct classes predicted, the most frequent on {:.2}% of the samples",
                counts.len(),
                100.0 * top as f64 / e.predictions.len() as f64
            )
        }
        (None, None, None) => "—".into(),
    }
}

/// How a run reports progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// Progress bar on a terminal (one line per epoch when stderr is not a terminal).
    Bar,
    /// One line per epoch on stderr.
    Lines,
    /// Nothing (tests).
    Quiet,
}

impl Progress {
    /// A bar of `len` steps starting at `pos` (hidden unless `Bar` on a terminal).
    pub fn bar(&self, label: &str, len: u64, pos: u64) -> ProgressBar {
        if *self != Progress::Bar {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::new(len);
        bar.set_style(
            ProgressStyle::with_template("{prefix:>18} [{bar:25.cyan/blue}] {pos}/{len} steps {per_sec:.dim} ETA {eta} {msg}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        bar.set_prefix(label.to_string());
        bar.set_position(pos);
        bar.reset_eta();
        bar
    }

    /// A plain log line.
    pub fn line(&self, text: &str) {
        if *self != Progress::Quiet {
            errln(text);
        }
    }

    /// The end-of-epoch line (printed above the bar, or alone when the bar is hidden).
    pub fn epoch_line(&self, bar: &ProgressBar, label: &str, r: &EpochRecord, epochs: usize) {
        if *self == Progress::Quiet {
            return;
        }
        let terms: Vec<String> = r.terms.iter().map(|(k, v)| format!("{k} {v:.4}")).collect();
        let agree = match (r.agreement, r.teacher_mrr) {
            (Some(n), Some(m)) => format!(" vs teacher NDCG@10 {n:.4} MRR@10 {m:.4}"),
            (Some(a), None) => format!(" agree {:.2}%", 100.0 * a),
            _ => String::new(),
        };
        let train = match (r.train_acc, r.train_rmse) {
            (Some(a), _) => format!("{:.2}%", 100.0 * a),
            (None, Some(e)) => format!("RMSE {e:.4}σ"),
            (None, None) => "—".into(),
        };
        let peers: String = r
            .peers
            .iter()
            .map(|(name, v)| match (r.test_acc, r.test_ndcg, r.test_rmse) {
                (Some(_), _, _) => format!(" {name} {:.2}%", 100.0 * v),
                (None, Some(_), _) => format!(" {name} NDCG@10 {v:.4}"),
                (None, None, Some(_)) => format!(" {name} RMSE {v:.4}"),
                // an unlabeled transfer set: the peer's agreement with the teacher
                (None, None, None) => format!(" {name} agree {:.2}%", 100.0 * v),
            })
            .collect();
        let text = format!(
            "{label}: {}epoch {}/{epochs} lr {:.4} loss {:.4} ({}) train {train} test {}{agree}{peers} [{:.1}s]",
            if r.init { "init " } else { "" },
            r.epoch,
            r.lr,
            r.train_loss,
            terms.join(", "),
            headline(r),
            r.seconds
        );
        if bar.is_hidden() {
            errln(&text);
        } else {
            bar.println(text);
        }
    }
}
