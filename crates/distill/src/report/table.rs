//! Results tables: mean ± std over seeds, best and last epoch, agreement, wall time.

use serde::{Deserialize, Serialize};

use crate::train::JobOutcome;

/// One row: a teacher, or a student recipe aggregated over its seeds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Row {
    /// Row name.
    pub name: String,
    /// Architecture.
    pub model: String,
    /// Trainable parameters.
    pub params: usize,
    /// Number of seeds aggregated.
    pub seeds: usize,
    /// The headline test metric (accuracy, RMSE or NDCG@10) at the best epoch: mean, sample
    /// std.
    pub best: (f64, f64),
    /// The headline test metric after the last epoch: mean, sample std.
    pub last: (f64, f64),
    /// The task's second test metric after the last epoch, MAE (regression) or MRR@10
    /// (ranking): mean, sample std.
    #[serde(default, alias = "mae", skip_serializing_if = "Option::is_none")]
    pub secondary: Option<(f64, f64)>,
    /// Mean best epoch.
    pub best_epoch: f64,
    /// Mean top-1 agreement with the teacher on the test set (last epoch).
    pub agreement: Option<f64>,
    /// Ranking: NDCG@10 against the teacher's ranking and MRR@10 of its top candidate (last
    /// epoch), each mean and sample std (this replaces `agreement` in the tables).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vs_teacher: Option<((f64, f64), (f64, f64))>,
    /// Mean training wall time per seed, seconds.
    pub seconds: f64,
}

/// Mean and sample standard deviation (0 for one value).
pub fn mean_std(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    if v.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let m = v.iter().sum::<f64>() / n;
    let var = if v.len() > 1 {
        v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0)
    } else {
        0.0
    };
    (m, var.sqrt())
}

impl Row {
    /// The teacher's row (one run; the headline test metric of the checkpoint used).
    pub fn teacher(
        name: &str,
        model: &str,
        params: usize,
        accuracy: f64,
        outcome: Option<&JobOutcome>,
    ) -> Row {
        Row {
            name: name.into(),
            model: model.into(),
            params,
            seeds: 1,
            best: (accuracy, 0.0),
            last: (outcome.map_or(accuracy, |o| o.last), 0.0),
            secondary: outcome.and_then(|o| o.last_secondary).map(|m| (m, 0.0)),
            best_epoch: outcome.map_or(f64::NAN, |o| o.best_epoch as f64),
            agreement: None,
            vs_teacher: None,
            seconds: outcome.map_or(0.0, |o| o.seconds),
        }
    }

    /// A student recipe's row over its seeds.
    pub fn student(name: &str, model: &str, runs: &[JobOutcome]) -> Row {
        let col = |f: &dyn Fn(&JobOutcome) -> f64| runs.iter().map(f).collect::<Vec<f64>>();
        let agreements: Vec<f64> = runs.iter().filter_map(|o| o.agreement).collect();
        Row {
            name: name.into(),
            model: model.into(),
            params: runs.first().map_or(0, |o| o.params),
            seeds: runs.len(),
            best: mean_std(&col(&|o| o.best)),
            last: mean_std(&col(&|o| o.last)),
            secondary: (!runs.is_empty() && runs.iter().all(|o| o.last_secondary.is_some()))
                .then(|| mean_std(&col(&|o| o.last_secondary.unwrap_or(f64::NAN)))),
            best_epoch: mean_std(&col(&|o| o.best_epoch as f64)).0,
            agreement: (!agreements.is_empty()).then(|| mean_std(&agreements).0),
            vs_teacher: (!runs.is_empty() && runs.iter().all(|o| o.teacher_mrr.is_some())).then(
                || {
                    (
                        mean_std(&col(&|o| o.agreement.unwrap_or(f64::NAN))),
                        mean_std(&col(&|o| o.teacher_mrr.unwrap_or(f64::NAN))),
                    )
                },
            ),
            seconds: mean_std(&col(&|o| o.seconds)).0,
        }
    }
}

/// The headline metric of a report's rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Metric {
    /// Test accuracy (classification), shown in %.
    #[default]
    Accuracy,
    /// Test RMSE in target units (regression), with the MAE beside it.
    Rmse,
    /// Test NDCG@10 (ranking), with the MRR@10 beside it.
    Ndcg,
    /// Test perplexity (generation), with the next-token accuracy beside it.
    Perplexity,
    /// Top-1 agreement with the teacher on the test split (classification on an unlabeled
    /// transfer set, which has no accuracy), shown in %.
    Agreement,
}

impl Metric {
    /// The name of the second metric's column, if the task has one (`MAE`, `MRR@10`).
    fn secondary(&self) -> Option<(&'static str, &'static str)> {
        match self {
            Metric::Accuracy | Metric::Agreement => None,
            Metric::Rmse => Some(("last test MAE", "mae")),
            Metric::Ndcg => Some(("last test MRR@10", "mrr")),
            Metric::Perplexity => Some(("last test token acc %", "token_acc")),
        }
    }
}

/// A results table.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    /// Experiment name.
    pub title: String,
    /// The headline metric of `best` and `last`.
    #[serde(default)]
    pub metric: Metric,
    /// Rows, teacher first.
    pub rows: Vec<Row>,
}

fn pct((m, s): (f64, f64), seeds: usize) -> String {
    if !m.is_finite() {
        "—".into()
    } else if seeds > 1 {
        format!("{:.2} ± {:.2}", 100.0 * m, 100.0 * s)
    } else {
        format!("{:.2}", 100.0 * m)
    }
}

fn fraction((m, s): (f64, f64), seeds: usize) -> String {
    if !m.is_finite() {
        "—".into()
    } else if seeds > 1 {
        format!("{m:.4} ± {s:.4}")
    } else {
        format!("{m:.4}")
    }
}

fn plain((m, s): (f64, f64), seeds: usize) -> String {
    if !m.is_finite() {
        "—".into()
    } else if seeds > 1 {
        format!("{m:.1} ± {s:.1}")
    } else {
        format!("{m:.1}")
    }
}

impl Report {
    /// Writes `results.md`, `results.csv` and `results.json` into `dir` (each atomically).
    pub fn write(&self, dir: &std::path::Path) -> crate::error::Result<()> {
        use crate::train::checkpoint::write_atomic;
        write_atomic(&dir.join("results.md"), self.markdown().as_bytes())?;
        write_atomic(&dir.join("results.csv"), self.csv().as_bytes())?;
        let json = serde_json::to_string_pretty(self).expect("a report serialises");
        write_atomic(&dir.join("results.json"), json.as_bytes())
    }

    /// A Markdown table (also what the CLI prints).
    pub fn markdown(&self) -> String {
        type Format = fn((f64, f64), usize) -> String;
        let (header, value): (String, Format) = match self.metric {
            Metric::Accuracy => ("best test acc % | last test acc %".into(), pct),
            Metric::Rmse => ("best test RMSE | last test RMSE".into(), plain),
            Metric::Ndcg => ("best test NDCG@10 | last test NDCG@10".into(), fraction),
            Metric::Perplexity => ("best test ppl | last test ppl".into(), fraction),
            Metric::Agreement => (
                "best agreement w/ teacher % | last agreement w/ teacher %".into(),
                pct,
            ),
        };
        // A perplexity's second metric is an accuracy, shown in %.
        let second: Format = if matches!(self.metric, Metric::Perplexity) {
            pct
        } else {
            value
        };
        let (header, cols) = match self.metric.secondary() {
            Some((name, _)) => (format!("{header} | {name}"), "---:|"),
            None => (header, ""),
        };
        // Ranking compares orders with the teacher's: two columns instead of an agreement.
        let ranking = self.metric == Metric::Ndcg;
        let (agreement, cols) = if ranking {
            (
                "NDCG@10 vs teacher | MRR@10 vs teacher",
                format!("{cols}---:|"),
            )
        } else {
            ("agreement w/ teacher %", cols.to_string())
        };
        let mut out = format!(
            "| {} | model | params | {header} | best epoch | {agreement} | wall time / seed |\n|---|---|---:|---:|---:|{cols}---:|---:|---:|\n",
            self.title
        );
        for r in &self.rows {
            let mut metrics = format!("{} | {}", value(r.best, r.seeds), value(r.last, r.seeds));
            if self.metric.secondary().is_some() {
                metrics += &format!(
                    " | {}",
                    r.secondary.map_or("—".into(), |m| second(m, r.seeds))
                );
            }
            out += &format!(
                "| {} | {} | {} | {metrics} | {} | {} | {} |\n",
                r.name,
                r.model,
                r.params,
                if r.best_epoch.is_nan() {
                    "—".into()
                } else {
                    format!("{:.1}", r.best_epoch)
                },
                if ranking {
                    r.vs_teacher.map_or("— | —".into(), |(n, m)| {
                        format!("{} | {}", fraction(n, r.seeds), fraction(m, r.seeds))
                    })
                } else {
                    r.agreement
                        .map_or("—".into(), |a| format!("{:.2}", 100.0 * a))
                },
                if r.seconds.is_finite() {
                    format!("{:.1} s", r.seconds)
                } else {
                    "—".into()
                }
            );
        }
        out
    }

    /// CSV with one row per line.
    pub fn csv(&self) -> String {
        let mut out = String::from("name,model,params,seeds,best_mean,best_std,last_mean,last_std,best_epoch,agreement,seconds");
        if let Some((_, key)) = self.metric.secondary() {
            out += &format!(",{key}_mean,{key}_std");
        }
        let ranking = self.metric == Metric::Ndcg;
        if ranking {
            out +=
                ",vs_teacher_ndcg_mean,vs_teacher_ndcg_std,vs_teacher_mrr_mean,vs_teacher_mrr_std";
        }
        out.push('\n');
        for r in &self.rows {
            out += &format!(
                "{},{},{},{},{:.6},{:.6},{:.6},{:.6},{:.2},{},{:.3}",
                r.name,
                r.model,
                r.params,
                r.seeds,
                r.best.0,
                r.best.1,
                r.last.0,
                r.last.1,
                r.best_epoch,
                r.agreement
                    .filter(|_| !ranking)
                    .map_or(String::new(), |a| format!("{a:.6}")),
                r.seconds
            );
            if self.metric.secondary().is_some() {
                let (m, s) = r.secondary.unwrap_or((f64::NAN, f64::NAN));
                out += &format!(",{m:.6},{s:.6}");
            }
            if ranking {
                match r.vs_teacher {
                    Some(((n, ns), (m, ms))) => out += &format!(",{n:.6},{ns:.6},{m:.6},{ms:.6}"),
                    None => out += ",,,,",
                }
            }
            out.push('\n');
        }
        out
    }

    /// The row of a name.
    pub fn row(&self, name: &str) -> Option<&Row> {
        self.rows.iter().find(|r| r.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_and_sample_std() {
        let (m, s) = mean_std(&[0.5, 0.7, 0.6]);
        assert!((m - 0.6).abs() < 1e-12 && (s - 0.1).abs() < 1e-12);
        assert_eq!(mean_std(&[0.3]), (0.3, 0.0));
    }
}
