//! Collapse detection: a run whose model stops learning is stopped with an error that names the
//! term most likely responsible, instead of finishing with a useless model.
//!
//! Two signs, checked after every main-stage epoch past the learning-rate warm-up:
//! - **accuracy at chance**: test *and* training accuracy no better than the majority-class
//!   rate of their split (within `max(1 point, 3 standard errors)`, so a small test set does not
//!   raise false alarms), either for two epochs in a row or after an earlier epoch had been
//!   clearly above it. One epoch at chance is allowed, since a batch-norm network can sit there
//!   after a short first epoch;
//! - **an exploding objective**: an epoch's mean objective above 1 and over 1000× the previous
//!   epoch's.

use super::metrics::EpochRecord;
use crate::data::Dataset;

/// Smallest margin above the majority-class rate that still counts as chance.
const CHANCE_MARGIN: f64 = 0.01;
/// Margin above it that shows an epoch had learned something.
const LEARNED_MARGIN: f64 = 0.05;
/// Growth of the epoch objective from one epoch to the next that counts as an explosion.
const EXPLOSION: f64 = 1000.0;

/// One term's weighted epoch mean, as the collapse report weighs it.
#[derive(Debug, Clone, PartialEq)]
pub struct TermShare {
    /// The term's logged name.
    pub name: String,
    /// Its weighted epoch mean.
    pub value: f64,
    /// Whether it is the task's supervised loss (blamed only when nothing else carries weight).
    pub supervised: bool,
}

/// What a collapse looked like.
#[derive(Debug, Clone, PartialEq)]
pub struct Collapse {
    /// The observation, in words.
    pub what: String,
    /// The term with the largest weighted epoch mean (a distillation term before the supervised
    /// loss when it carries a real share of the objective).
    pub term: String,
    /// What to try.
    pub advice: String,
}

/// The majority-class rate of a split and the margin within which an accuracy counts as
/// chance.
#[derive(Debug, Clone, Copy)]
struct Chance {
    majority: f64,
    margin: f64,
}

impl Chance {
    /// The chance level of a split's class labels (`None` for real targets, where only an
    /// exploding objective counts as a collapse).
    fn of(d: &Dataset) -> Option<Self> {
        let labels = d.labels()?;
        let mut counts = vec![0usize; 256];
        for &l in labels {
            counts[l as usize] += 1;
        }
        let n = labels.len().max(1) as f64;
        let p = counts.iter().copied().max().unwrap_or(0) as f64 / n;
        Some(Self {
            majority: p,
            margin: CHANCE_MARGIN.max(3.0 * (p * (1.0 - p) / n).sqrt()),
        })
    }

    fn holds(&self, acc: f64) -> bool {
        acc <= self.majority + self.margin
    }
}

/// Watches a run's epochs for a collapse.
#[derive(Debug, Clone)]
pub struct CollapseWatch {
    train: Option<Chance>,
    test: Option<Chance>,
    skip: usize,
    at_chance: usize,
    learned: bool,
    previous_loss: Option<f64>,
}

impl CollapseWatch {
    /// A watch for a run trained on `train` and scored on `test` whose first `warmup_epochs`
    /// main epochs (learning-rate warm-up) are not judged, replaying the main-stage epochs of
    /// `history` (a resumed run).
    pub fn new(
        train: &Dataset,
        test: &Dataset,
        warmup_epochs: usize,
        history: &[EpochRecord],
    ) -> Self {
        let mut watch = Self {
            train: Chance::of(train),
            test: Chance::of(test),
            skip: warmup_epochs,
            at_chance: 0,
            learned: false,
            previous_loss: None,
        };
        for r in history.iter().filter(|r| !r.init) {
            watch.observe(r);
        }
        watch
    }

    /// Records an epoch; returns whether it is at chance after an earlier sign, and whether its
    /// objective exploded.
    fn observe(&mut self, r: &EpochRecord) -> (bool, bool) {
        let judged = r.epoch > self.skip;
        let at = |c: &Option<Chance>, acc: Option<f64>| match (c, acc) {
            (Some(c), Some(a)) => c.holds(a),
            _ => false,
        };
        // An unlabeled training split has no accuracy: the test split alone decides.
        let train = self.train.is_none() || at(&self.train, r.train_acc);
        let chance = judged && at(&self.test, r.test_acc) && train;
        let exploded = judged
            && self
                .previous_loss
                .is_some_and(|prev| r.train_loss > 1.0 && r.train_loss > EXPLOSION * prev);
        let was = (self.at_chance, self.learned);
        self.at_chance = if chance { self.at_chance + 1 } else { 0 };
        if let (Some(c), Some(a)) = (&self.test, r.test_acc) {
            self.learned |= a > c.majority + c.margin.max(LEARNED_MARGIN);
        }
        self.previous_loss = r.train_loss.is_finite().then_some(r.train_loss.max(1e-12));
        (chance && (was.0 >= 1 || was.1), exploded)
    }

    /// Records an epoch; `weighted` holds each term's weighted epoch mean. Returns the collapse
    /// if this epoch shows one.
    pub fn check(&mut self, r: &EpochRecord, weighted: &[TermShare]) -> Option<Collapse> {
        let previous = self.previous_loss;
        let (chance, exploded) = self.observe(r);
        let what = if chance {
            format!(
                "test accuracy {:.2}% (training {:.2}%) is no better than always predicting the most frequent class ({:.2}%)",
                100.0 * r.test_acc.unwrap_or(f64::NAN),
                100.0 * r.train_acc.unwrap_or(f64::NAN),
                100.0 * self.test.as_ref().map_or(f64::NAN, |c| c.majority)
            )
        } else if exploded {
            format!(
                "the objective exploded to {:.4e} (previous epoch {:.4e})",
                r.train_loss,
                previous.unwrap_or(0.0)
            )
        } else {
            return None;
        };
        let (term, supervised) = blame(weighted);
        let advice = if supervised {
            format!(
                "The supervised term '{term}' drives the objective: check that the data can be learnt (labels belong to their images), lower train.lr, or set train.grad_clip (e.g. 5.0)"
            )
        } else {
            format!(
                "The largest weighted term was '{term}': lower its weight, give it a (longer) warm-up where its method has one (a `warmup` setting), set train.grad_clip (e.g. 5.0), or lower train.lr"
            )
        };
        Some(Collapse { what, term, advice })
    }
}

/// The term with the largest weighted value, and whether it is the supervised loss; a
/// distillation term is preferred over the supervised loss when it carries at least a quarter
/// of the largest value. With no finite term, the whole objective (`total`) is named.
fn blame(weighted: &[TermShare]) -> (String, bool) {
    let finite = || weighted.iter().filter(|t| t.value.is_finite());
    let by_size = |a: &&TermShare, b: &&TermShare| a.value.abs().total_cmp(&b.value.abs());
    let Some(top) = finite().max_by(by_size) else {
        return ("total".into(), true);
    };
    let t = finite()
        .filter(|t| !t.supervised && t.value.abs() >= 0.25 * top.value.abs())
        .max_by(by_size)
        .unwrap_or(top);
    (t.name.clone(), t.supervised)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn share(name: &str, value: f64, supervised: bool) -> TermShare {
        TermShare {
            name: name.into(),
            value,
            supervised,
        }
    }

    fn record(epoch: usize, acc: f64, loss: f64) -> EpochRecord {
        EpochRecord {
            epoch,
            init: false,
            lr: 0.1,
            train_loss: loss,
            terms: Default::default(),
            train_acc: Some(acc),
            test_acc: Some(acc),
            train_rmse: None,
            test_rmse: None,
            test_mae: None,
            test_ndcg: None,
            test_mrr: None,
            test_ppl: None,
            test_token_acc: None,
            agreement: None,
            teacher_mrr: None,
            peers: Default::default(),
            seconds: 0.0,
        }
    }

    fn test_set() -> Dataset {
        // 1,000 labels, 40 % of them class 0: chance is 40 % ± 4.6 points (3 standard errors)
        Dataset {
            inputs: crate::data::Inputs::Image {
                pixels: vec![0; 1000],
                channels: 1,
                height: 1,
                width: 1,
            },
            targets: crate::data::Targets::Class(
                (0..1000)
                    .map(|i| [0, 0, 0, 0, 1, 1, 1, 2, 2, 2][i % 10])
                    .collect(),
            ),
            num_classes: 3,
            groups: None,
        }
    }

    #[test]
    fn chance_twice_or_after_learning_is_a_collapse() {
        let terms = [share("label", 0.5, true), share("soft", 3.0, false)];
        // majority 40 %: one epoch at chance is tolerated, the second is not
        let mut w = CollapseWatch::new(&test_set(), &test_set(), 0, &[]);
        assert_eq!(w.check(&record(1, 0.40, 2.0), &terms), None);
        let c = w.check(&record(2, 0.41, 2.0), &terms).unwrap();
        assert_eq!(c.term, "soft");
        assert!(
            c.what.contains("41.00%") && c.what.contains("40.00%"),
            "{}",
            c.what
        );
        // learned, then fell to chance
        let mut w = CollapseWatch::new(&test_set(), &test_set(), 0, &[record(1, 0.8, 1.0)]);
        assert!(w.check(&record(2, 0.4, 1.0), &terms).is_some());
        // healthy runs never trigger
        let mut w = CollapseWatch::new(&test_set(), &test_set(), 0, &[]);
        for e in 1..5 {
            assert_eq!(
                w.check(&record(e, 0.5 + 0.05 * e as f64, 1.0), &terms),
                None
            );
        }
    }

    #[test]
    fn an_exploding_objective_is_a_collapse_and_ce_is_blamed_last() {
        let mut w = CollapseWatch::new(&test_set(), &test_set(), 0, &[]);
        assert_eq!(w.check(&record(1, 0.9, 0.5), &[]), None);
        assert_eq!(w.check(&record(2, 0.9, 400.0), &[]), None); // 800× the previous epoch
        let c = w
            .check(
                &record(3, 0.9, 500_000.0),
                &[
                    share("label", 400_000.0, true),
                    share("soft", 50_000.0, false),
                ],
            )
            .unwrap();
        assert!(c.what.contains("exploded"), "{}", c.what);
        // the distillation term carries less than a quarter of the objective
        assert_eq!(c.term, "label");
        assert!(c.advice.contains("supervised term 'label'"), "{}", c.advice);
        // epochs of the learning-rate warm-up are not judged
        let mut w = CollapseWatch::new(&test_set(), &test_set(), 2, &[]);
        assert_eq!(w.check(&record(1, 0.4, 1.0), &[]), None);
        assert_eq!(w.check(&record(2, 0.4, 1.0), &[]), None);
        assert_eq!(w.check(&record(3, 0.4, 1.0), &[]), None);
        assert!(w.check(&record(4, 0.4, 1.0), &[]).is_some());
    }
}
