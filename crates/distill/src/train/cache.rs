//! Teacher-output cache: a frozen teacher gives the same outputs for the same input, so offline
//! runs compute them once per (sample, augmented view) and reuse them, across epochs and across
//! the recipes and seeds of a sweep (FKD, Shen & Xing 2022, stores crop parameters with soft
//! labels the same way).
//!
//! Keys are `(sample index, view)`, where `view` encodes the augmentation parameters that
//! produced the image (crop offsets and flip; 0 without augmentation), so an augmented view is
//! only ever served the outputs of that exact view. Each tap a job's objective reads is stored
//! as one dense row per key; a batch is served from the cache only when every sample has every
//! requested tap, otherwise the teacher runs and the missing rows are stored, up to a memory
//! budget.
//!
//! **Sparse logits** (`cache_topk = k`, a language model's sparse teacher store, as DistillKit's
//! and MiniLLM's offline top-k logits): each logit row is kept as its `k` largest
//! log-probabilities (with their token ids) plus the log of the remaining mass, `2k + 1` values
//! instead of the vocabulary's; it is served as log-probabilities with the remaining mass spread
//! evenly over the other tokens. The store is lossy, so a teacher with it serves the stored form
//! from the first step on (what it computes is stored, then read back), and every epoch trains on
//! the same approximation.

use std::collections::{BTreeMap, HashMap};

use burn::prelude::*;
use burn::tensor::TensorData;

use crate::models::{Feature, Taps};

/// Cache key: sample index and augmentation view.
pub type CacheKey = (u32, u32);

#[derive(Debug)]
struct TapRows {
    /// Per-sample dimensions (without the batch).
    dims: Vec<usize>,
    /// Elements per row.
    width: usize,
    /// Sparse logits: `k` kept per logit row (each row stored as k ids, k log-probabilities
    /// and the log of the remaining mass).
    topk: Option<usize>,
    slots: HashMap<CacheKey, usize>,
    data: Vec<f32>,
}

/// One logit row as its `k` largest log-probabilities: `[ids…, log-probs…, log rest]`.
fn sparse_row(row: &[f32], k: usize, out: &mut Vec<f32>) {
    let lse = crate::tasks::generation::log_sum_exp(row);
    let mut order = crate::tasks::generation::ranked(row);
    order.truncate(k);
    let kept: f64 = order.iter().map(|&i| (row[i] as f64 - lse).exp()).sum();
    out.extend(order.iter().map(|&i| i as f32));
    out.extend(order.iter().map(|&i| (row[i] as f64 - lse) as f32));
    out.push((1.0 - kept).max(1e-30).ln() as f32);
}

/// The log-probabilities a sparse row stands for (the remaining mass spread evenly).
fn dense_row(stored: &[f32], k: usize, classes: usize, out: &mut Vec<f32>) {
    let start = out.len();
    let others = (classes - k).max(1) as f64;
    let fill = (stored[2 * k] as f64 - others.ln()) as f32;
    out.resize(start + classes, fill);
    for j in 0..k {
        out[start + stored[j] as usize] = stored[k + j];
    }
}

/// What the cache did so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Batches served without running the teacher.
    pub hits: u64,
    /// Batches for which the teacher ran.
    pub misses: u64,
    /// Bytes held.
    pub bytes: usize,
}

/// The cache of one frozen teacher on one data set.
#[derive(Debug)]
pub struct TeacherCache {
    budget: usize,
    /// Sparse logits: the `k` kept per row (`None`: rows stored whole).
    topk: Option<usize>,
    taps: BTreeMap<String, TapRows>,
    stats: CacheStats,
}

impl TeacherCache {
    /// An empty cache holding at most `budget_mb` MiB.
    pub fn new(budget_mb: usize) -> Self {
        Self {
            budget: budget_mb << 20,
            topk: None,
            taps: BTreeMap::new(),
            stats: CacheStats::default(),
        }
    }

    /// Keeps each logit row as its `k` largest log-probabilities and the remaining mass (see
    /// the module documentation); `k` at least the number of classes keeps rows whole.
    pub fn with_topk(mut self, k: Option<usize>) -> Self {
        self.topk = k;
        self
    }

    /// What a student trains on for a batch the teacher just computed: the stored form when
    /// the cache is sparse (read back, or, when the budget could not hold the batch, the same
    /// sparse form computed on the spot, so every window is always seen the same way), the
    /// teacher's outputs otherwise.
    pub fn served(&self, taps: &[String], keys: &[CacheKey], out: Taps) -> Taps {
        let Some(k) = self.topk else { return out };
        let [rows, classes] = out.logits.dims();
        if k == 0 || k >= classes {
            return out;
        }
        let device = out.logits.device();
        if let Some(stored) = self.read(taps, keys, &device) {
            return stored;
        }
        let values: Vec<f32> = out.logits.clone().into_data().iter::<f32>().collect();
        let (mut sparse, mut dense) = (Vec::new(), Vec::with_capacity(values.len()));
        for row in values.chunks_exact(classes) {
            sparse.clear();
            sparse_row(row, k, &mut sparse);
            dense_row(&sparse, k, classes, &mut dense);
        }
        Taps {
            logits: Tensor::from_data(TensorData::new(dense, [rows, classes]), &device),
            ..out
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> CacheStats {
        self.stats
    }

    /// The requested taps (`"logits"` always among them) of a batch, if all are cached.
    pub fn lookup(&mut self, taps: &[String], keys: &[CacheKey], device: &Device) -> Option<Taps> {
        let got = self.read(taps, keys, device);
        if got.is_some() {
            self.stats.hits += 1;
        } else {
            self.stats.misses += 1;
        }
        got
    }

    /// What the cache holds for a batch, without counting a hit or a miss (a lossy store serves
    /// the batch it just stored this way).
    pub fn read(&self, taps: &[String], keys: &[CacheKey], device: &Device) -> Option<Taps> {
        let hit = taps.iter().all(|t| {
            self.taps
                .get(t)
                .is_some_and(|r| keys.iter().all(|k| r.slots.contains_key(k)))
        });
        if !hit {
            return None;
        }
        let n = keys.len();
        let mut logits = None;
        let mut features = Vec::new();
        for t in taps {
            let rows = &self.taps[t];
            let mut buf = Vec::with_capacity(n * rows.width);
            for key in keys {
                let s = rows.slots[key] * rows.width;
                let stored = &rows.data[s..s + rows.width];
                match rows.topk {
                    None => buf.extend_from_slice(stored),
                    Some(k) => {
                        let classes = *rows.dims.last().expect("logits have classes");
                        for row in stored.chunks_exact(2 * k + 1) {
                            dense_row(row, k, classes, &mut buf);
                        }
                    }
                }
            }
            if t == "logits" {
                // Logits rows per key: one for a classifier, one per position for a language
                // model (`dims` = [rows, classes]).
                let classes = *rows.dims.last().expect("logits have a class dimension");
                let per_key = buf.len() / n.max(1) / classes.max(1);
                logits = Some(Tensor::from_data(
                    TensorData::new(buf, [n * per_key, classes]),
                    device,
                ));
                continue;
            }
            let feature = match rows.dims.as_slice() {
                [c, h, w] => Feature::Map(Tensor::from_data(
                    TensorData::new(buf, [n, *c, *h, *w]),
                    device,
                )),
                // A sequence is stored with its mask as one more feature column.
                [l, d1] => {
                    let all = Tensor::<3>::from_data(TensorData::new(buf, [n, *l, *d1]), device);
                    let d = d1 - 1;
                    Feature::Seq {
                        x: all.clone().slice([0..n, 0..*l, 0..d]),
                        mask: Some(all.slice([0..n, 0..*l, d..*d1]).reshape([n, *l])),
                    }
                }
                _ => Feature::Flat(Tensor::from_data(
                    TensorData::new(buf, [n, rows.width]),
                    device,
                )),
            };
            features.push((t.clone(), feature));
        }
        Some(Taps {
            logits: logits.expect("logits are always among the cached taps"),
            features,
        })
    }

    /// Stores the requested taps of a batch the teacher just computed (as far as the budget
    /// allows; a tap is stored for the whole batch or not at all).
    pub fn insert(&mut self, taps: &[String], keys: &[CacheKey], out: &Taps) {
        for t in taps {
            let Some(f) = out.get(t) else { continue };
            // A sequence is stored with its mask (ones when it has none) as a last column.
            let f = match f {
                Feature::Seq { x, mask } => {
                    let [b, l, _] = x.dims();
                    let m = mask.unwrap_or_else(|| Tensor::ones([b, l], &x.device()));
                    Feature::Seq {
                        x: Tensor::cat(vec![x, m.reshape([b, l, 1])], 2),
                        mask: None,
                    }
                }
                other => other,
            };
            let mut shape = f.shape();
            if t == "logits" && shape[0] != keys.len() {
                // A language model's logits: one row per position of each key's window.
                shape = vec![keys.len(), shape[0] / keys.len().max(1), shape[1]];
            }
            let classes = *shape.last().expect("a tap has dimensions");
            let topk = self.topk.filter(|&k| t == "logits" && k < classes && k > 0);
            let width: usize = match topk {
                Some(k) => shape[1..].iter().product::<usize>() / classes * (2 * k + 1),
                None => shape[1..].iter().product(),
            };
            let missing: Vec<usize> = match self.taps.get(t) {
                Some(r) => (0..keys.len())
                    .filter(|&i| !r.slots.contains_key(&keys[i]))
                    .collect(),
                None => (0..keys.len()).collect(),
            };
            let bytes = missing.len() * width * 4;
            if missing.is_empty() || self.stats.bytes + bytes > self.budget {
                continue;
            }
            let mut values: Vec<f32> = f.flat().into_data().iter::<f32>().collect();
            if let Some(k) = topk {
                let mut sparse = Vec::with_capacity(keys.len() * width);
                for row in values.chunks_exact(classes) {
                    sparse_row(row, k, &mut sparse);
                }
                values = sparse;
            }
            let rows = self.taps.entry(t.clone()).or_insert_with(|| TapRows {
                dims: shape[1..].to_vec(),
                width,
                topk,
                slots: HashMap::new(),
                data: Vec::new(),
            });
            for i in missing {
                let slot = rows.data.len() / width;
                rows.data
                    .extend_from_slice(&values[i * width..(i + 1) * width]);
                rows.slots.insert(keys[i], slot);
            }
            self.stats.bytes += bytes;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn taps(device: &Device, offset: f32) -> Taps {
        Taps {
            logits: Tensor::from_data(
                TensorData::new(vec![offset, 1.0, 2.0, offset + 3.0], [2, 2]),
                device,
            ),
            features: vec![(
                "map".into(),
                Feature::Map(Tensor::from_data(
                    TensorData::new(
                        (0..8).map(|v| v as f32 + offset).collect::<Vec<_>>(),
                        [2, 1, 2, 2],
                    ),
                    device,
                )),
            )],
        }
    }

    #[test]
    fn serves_exactly_what_was_stored_for_the_same_views_only() {
        let dev = Device::flex();
        let wanted = vec!["logits".to_string(), "map".to_string()];
        let mut cache = TeacherCache::new(1);
        let keys = [(5, 0), (9, 3)];
        assert!(cache.lookup(&wanted, &keys, &dev).is_none());
        cache.insert(&wanted, &keys, &taps(&dev, 10.0));
        // Reordered batch: rows follow their keys.
        let got = cache.lookup(&wanted, &[(9, 3), (5, 0)], &dev).unwrap();
        let logits: Vec<f32> = got.logits.clone().into_data().iter::<f32>().collect();
        assert_eq!(logits, vec![2.0, 13.0, 10.0, 1.0]);
        let Some(Feature::Map(m)) = got.get("map") else {
            panic!("map tap")
        };
        assert_eq!(m.dims(), [2, 1, 2, 2]);
        // Another augmented view of sample 5 is a miss.
        assert!(cache.lookup(&wanted, &[(5, 1)], &dev).is_none());
        assert_eq!(cache.stats().hits, 1);
        assert_eq!(cache.stats().bytes, 2 * (2 + 4) * 4);
    }

    #[test]
    fn sparse_logits_keep_the_top_k_and_spread_the_rest() {
        let dev = Device::flex();
        // two windows (keys) of two positions each, five tokens
        let rows = [
            [2.0f32, 1.0, 0.0, -1.0, -2.0],
            [0.0, 0.0, 3.0, 0.0, 0.0],
            [1.0, 2.0, 3.0, 4.0, 5.0],
            [0.5, 0.5, 0.5, 0.5, 0.5],
        ];
        let flat: Vec<f32> = rows.iter().flatten().copied().collect();
        let out = Taps {
            logits: Tensor::from_data(TensorData::new(flat, [4, 5]), &dev),
            features: vec![],
        };
        let wanted = vec!["logits".to_string()];
        let keys = [(0, 0), (1, 0)];
        let mut cache = TeacherCache::new(1).with_topk(Some(2));
        cache.insert(&wanted, &keys, &out);
        // 2 keys × 2 positions × (2 ids + 2 log-probs + 1 rest)
        assert_eq!(cache.stats().bytes, 2 * 2 * 5 * 4);
        let got: Vec<f32> = cache
            .read(&wanted, &keys, &dev)
            .unwrap()
            .logits
            .into_data()
            .iter::<f32>()
            .collect();
        for (row, served) in rows.iter().zip(got.chunks_exact(5)) {
            let lse = row.iter().map(|v| (*v as f64).exp()).sum::<f64>().ln();
            let logp: Vec<f64> = row.iter().map(|v| *v as f64 - lse).collect();
            let mut order: Vec<usize> = (0..5).collect();
            order.sort_by(|&a, &b| logp[b].total_cmp(&logp[a]).then(a.cmp(&b)));
            let rest: f64 = order[2..].iter().map(|&i| logp[i].exp()).sum();
            for i in 0..5 {
                let want = if order[..2].contains(&i) {
                    logp[i]
                } else {
                    (rest / 3.0).ln()
                };
                assert!((served[i] as f64 - want).abs() < 1e-5, "{served:?}");
            }
            // the served row is a distribution
            let mass: f64 = served.iter().map(|v| (*v as f64).exp()).sum();
            assert!((mass - 1.0).abs() < 1e-5);
        }
        // a store whose budget is full serves the same sparse form, computed on the spot
        let mut full = TeacherCache::new(0).with_topk(Some(2));
        full.insert(&wanted, &keys, &out);
        assert_eq!(full.stats().bytes, 0);
        let on_the_spot: Vec<f32> = full
            .served(&wanted, &keys, out.clone())
            .logits
            .into_data()
            .iter::<f32>()
            .collect();
        assert_eq!(on_the_spot, got);
        // k at least the vocabulary keeps rows whole
        let mut whole = TeacherCache::new(1).with_topk(Some(5));
        whole.insert(&wanted, &keys, &out);
        // 2 keys × 2 positions × 5 classes, as dense rows
        assert_eq!(whole.stats().bytes, 2 * 2 * 5 * 4);
    }

    #[test]
    fn respects_the_memory_budget() {
        let dev = Device::flex();
        let wanted = vec!["logits".to_string()];
        let mut cache = TeacherCache::new(0);
        cache.insert(&wanted, &[(0, 0), (1, 0)], &taps(&dev, 0.0));
        assert_eq!(cache.stats().bytes, 0);
        assert!(cache.lookup(&wanted, &[(0, 0)], &dev).is_none());
    }

    #[test]
    fn a_sequence_round_trips_with_its_mask() {
        let dev = Device::flex();
        let x =
            Tensor::<3>::from_floats([[[1.0, 2.0], [3.0, 4.0]], [[5.0, 6.0], [7.0, 8.0]]], &dev);
        let mask = Tensor::<2>::from_floats([[1.0, 0.0], [1.0, 1.0]], &dev);
        let out = Taps {
            logits: Tensor::<2>::from_floats([[0.0, 1.0], [1.0, 0.0]], &dev),
            features: vec![(
                "seq".into(),
                Feature::Seq {
                    x,
                    mask: Some(mask),
                },
            )],
        };
        let taps = vec!["logits".to_string(), "seq".to_string()];
        let keys = [(0, 0), (1, 0)];
        let mut cache = TeacherCache::new(1);
        cache.insert(&taps, &keys, &out);
        let got = cache
            .lookup(&taps, &keys, &dev)
            .expect("both samples are cached");
        let Some(Feature::Seq { x, mask: Some(m) }) = got.get("seq") else {
            panic!("a sequence comes back as one")
        };
        assert_eq!(
            x.into_data().iter::<f32>().collect::<Vec<_>>(),
            (1..=8).map(|v| v as f32).collect::<Vec<_>>()
        );
        assert_eq!(
            m.into_data().iter::<f32>().collect::<Vec<_>>(),
            vec![1.0, 0.0, 1.0, 1.0]
        );
    }
}
