//! Collapse detection: a run whose model stops learning is stopped with an error that names the
//! term most likely responsible, instead of finishing with a useless model.
//!
//! Two signs, checked after every main-stage epoch:
//! - **accuracy at chance**: test accuracy no more than 1 point above the majority-class rate
//!   (what always predicting the most frequent test class scores), either for two epochs in a
//!   row or after an earlier epoch had been clearly (5 points) above it. One epoch at chance is
//!   allowed, since a batch-norm network can sit there after a short first epoch;
//! - **an exploding objective**: an epoch's mean objective over 1000× the lowest epoch mean seen
//!   so far (and above 1).

use super::metrics::EpochRecord;
use crate::data::Dataset;

/// Points above the majority-class rate that still count as chance.
const CHANCE_MARGIN: f64 = 0.01;
/// Points above it that show an epoch had learned something.
const LEARNED_MARGIN: f64 = 0.05;
/// Growth of the epoch objective that counts as an explosion.
const EXPLOSION: f64 = 1000.0;

/// What a collapse looked like.
#[derive(Debug, Clone, PartialEq)]
pub struct Collapse {
    /// The observation, in words.
    pub what: String,
    /// The term with the largest weighted epoch mean (distillation terms before `ce`).
    pub term: String,
    /// What to try.
    pub advice: String,
}

/// Watches a run's epochs for a collapse.
#[derive(Debug, Clone)]
pub struct CollapseWatch {
    majority: f64,
    at_chance: usize,
    learned: bool,
    lowest_loss: Option<f64>,
}

impl CollapseWatch {
    /// A watch for a run scored on `test`, replaying the main-stage epochs of `history` (a
    /// resumed run).
    pub fn new(test: &Dataset, history: &[EpochRecord]) -> Self {
        let mut counts = vec![0usize; test.num_classes.max(1)];
        for &l in &test.labels {
            if let Some(c) = counts.get_mut(l as usize) {
                *c += 1;
            }
        }
        let majority =
            counts.iter().copied().max().unwrap_or(0) as f64 / test.labels.len().max(1) as f64;
        let mut watch = Self {
            majority,
            at_chance: 0,
            learned: false,
            lowest_loss: None,
        };
        for r in history.iter().filter(|r| !r.init) {
            watch.observe(r);
        }
        watch
    }

    fn observe(&mut self, r: &EpochRecord) -> (bool, bool) {
        let chance = r.test_acc <= self.majority + CHANCE_MARGIN;
        let exploded = self
            .lowest_loss
            .is_some_and(|low| r.train_loss > 1.0 && r.train_loss > EXPLOSION * low.max(1e-12));
        let was = (self.at_chance, self.learned);
        self.at_chance = if chance { self.at_chance + 1 } else { 0 };
        self.learned |= r.test_acc > self.majority + LEARNED_MARGIN;
        if r.train_loss.is_finite() && r.train_loss > 0.0 {
            self.lowest_loss = Some(
                self.lowest_loss
                    .map_or(r.train_loss, |l| l.min(r.train_loss)),
            );
        }
        (chance && (was.0 >= 1 || was.1), exploded)
    }

    /// Records an epoch; `weighted` holds each term's weighted epoch mean. Returns the collapse
    /// if this epoch shows one.
    pub fn check(&mut self, r: &EpochRecord, weighted: &[(String, f64)]) -> Option<Collapse> {
        let lowest = self.lowest_loss;
        let (chance, exploded) = self.observe(r);
        let what = if chance {
            format!(
                "test accuracy {:.2}% is no better than always predicting the most frequent class ({:.2}%)",
                100.0 * r.test_acc,
                100.0 * self.majority
            )
        } else if exploded {
            format!(
                "the objective exploded to {:.4e} (lowest epoch mean so far {:.4e})",
                r.train_loss,
                lowest.unwrap_or(0.0)
            )
        } else {
            return None;
        };
        let term = blame(weighted);
        let advice = if term.starts_with("ce") || term == "total" {
            format!(
                "The supervised term '{term}' drives the objective: check that the data can be learnt (labels belong to their images), lower train.lr, or set train.grad_clip (e.g. 5.0)"
            )
        } else {
            format!(
                "The largest weighted term was '{term}': lower its weight, give it a (longer) warm-up where the method has one (dkd, reviewkd: warmup), set train.grad_clip (e.g. 5.0), or lower train.lr"
            )
        };
        Some(Collapse { what, term, advice })
    }
}

/// The term with the largest weighted value, preferring a distillation term over `ce`.
fn blame(weighted: &[(String, f64)]) -> String {
    let largest = |skip_ce: bool| {
        weighted
            .iter()
            .filter(|(n, v)| v.is_finite() && !(skip_ce && n.starts_with("ce")))
            .max_by(|a, b| a.1.abs().total_cmp(&b.1.abs()))
            .map(|(n, _)| n.clone())
    };
    largest(true)
        .or_else(|| largest(false))
        .unwrap_or_else(|| "total".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(epoch: usize, acc: f64, loss: f64) -> EpochRecord {
        EpochRecord {
            epoch,
            init: false,
            lr: 0.1,
            train_loss: loss,
            terms: Default::default(),
            train_acc: acc,
            test_acc: acc,
            agreement: None,
            seconds: 0.0,
        }
    }

    fn test_set() -> Dataset {
        Dataset {
            images: vec![0; 10],
            labels: vec![0, 0, 0, 0, 1, 1, 1, 2, 2, 2],
            channels: 1,
            height: 1,
            width: 1,
            num_classes: 3,
        }
    }

    #[test]
    fn chance_twice_or_after_learning_is_a_collapse() {
        let terms = [("ce".to_string(), 0.5), ("kd".to_string(), 3.0)];
        // majority 40 %: one epoch at chance is tolerated, the second is not
        let mut w = CollapseWatch::new(&test_set(), &[]);
        assert_eq!(w.check(&record(1, 0.40, 2.0), &terms), None);
        let c = w.check(&record(2, 0.41, 2.0), &terms).unwrap();
        assert_eq!(c.term, "kd");
        assert!(
            c.what.contains("41.00%") && c.what.contains("40.00%"),
            "{}",
            c.what
        );
        // learned, then fell to chance
        let mut w = CollapseWatch::new(&test_set(), &[record(1, 0.8, 1.0)]);
        assert!(w.check(&record(2, 0.4, 1.0), &terms).is_some());
        // healthy runs never trigger
        let mut w = CollapseWatch::new(&test_set(), &[]);
        for e in 1..5 {
            assert_eq!(
                w.check(&record(e, 0.5 + 0.05 * e as f64, 1.0), &terms),
                None
            );
        }
    }

    #[test]
    fn an_exploding_objective_is_a_collapse_and_ce_is_blamed_last() {
        let mut w = CollapseWatch::new(&test_set(), &[]);
        assert_eq!(w.check(&record(1, 0.9, 0.5), &[]), None);
        assert_eq!(w.check(&record(2, 0.9, 400.0), &[]), None);
        let c = w
            .check(&record(3, 0.9, 600.0), &[("ce".into(), 600.0)])
            .unwrap();
        assert!(c.what.contains("exploded"), "{}", c.what);
        assert_eq!(c.term, "ce");
    }
}
