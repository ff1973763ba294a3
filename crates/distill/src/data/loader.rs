//! Shuffled, normalised, optionally augmented mini-batches, prepared on a background thread.

use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use super::augment::Augment;
use super::dataset::{Dataset, Inputs, Normalization, Targets};

/// The targets of a batch on the host.
#[derive(Debug, Clone, PartialEq)]
pub enum HostTargets {
    /// Class labels.
    Class(Vec<i64>),
    /// Standardised reals, `n × dims`.
    Real(Vec<f32>),
    /// Relevance grades.
    Relevance(Vec<f32>),
    /// No targets (unlabeled samples).
    None,
    /// Next-token ids, `n × context`, −100 where a position has none.
    Tokens(Vec<i64>),
}

impl HostTargets {
    /// The targets of samples `range` (of a batch with `n` samples).
    pub fn slice(&self, range: std::ops::Range<usize>, n: usize) -> HostTargets {
        match self {
            HostTargets::Class(l) => HostTargets::Class(l[range].to_vec()),
            HostTargets::Real(v) => {
                let d = v.len() / n.max(1);
                HostTargets::Real(v[range.start * d..range.end * d].to_vec())
            }
            HostTargets::Relevance(g) => HostTargets::Relevance(g[range].to_vec()),
            HostTargets::None => HostTargets::None,
            HostTargets::Tokens(t) => {
                let l = t.len() / n.max(1);
                HostTargets::Tokens(t[range.start * l..range.end * l].to_vec())
            }
        }
    }
}

/// One mini-batch on the host, ready to be uploaded to a device.
#[derive(Debug, Clone)]
pub struct HostBatch {
    /// Normalised inputs, `n × c × h × w` (`n × 1 × 1 × features` for tables).
    pub inputs: Vec<f32>,
    /// Targets.
    pub targets: HostTargets,
    /// Index of each sample in the data set (what caches and memory banks key on).
    pub indices: Vec<usize>,
    /// Augmentation view of each sample (see [`Augment::apply`]; 0 without augmentation).
    pub views: Vec<u32>,
    /// The size of each group of consecutive samples that form one list (ranking), when the
    /// data set has groups.
    pub groups: Option<Vec<usize>>,
}

impl HostBatch {
    /// Number of samples.
    pub fn len(&self) -> usize {
        self.indices.len()
    }

    /// `(sample index, augmentation view)` of each sample: what a teacher-output cache keys on.
    pub fn cache_keys(&self) -> Vec<(u32, u32)> {
        self.indices
            .iter()
            .zip(&self.views)
            .map(|(&i, &v)| (i as u32, v))
            .collect()
    }

    /// Whether the batch is empty.
    pub fn is_empty(&self) -> bool {
        self.indices.is_empty()
    }
}

/// Produces the batches of one pass over a data set. A batch holds `batch_size` units: samples,
/// whole groups when the data set has them (ranking lists: `batch_size` counts lists), or, with
/// class pairs, each sample followed by another sample of its class drawn for the epoch.
#[derive(Debug, Clone)]
pub struct Loader {
    data: Arc<Dataset>,
    units: Arc<Vec<std::ops::Range<usize>>>,
    /// The samples of each class, when every sample is paired with one of its class.
    classes: Option<Arc<Vec<Vec<usize>>>>,
    norm: Normalization,
    batch_size: usize,
    augment: Augment,
    shuffle: bool,
    seed: u64,
}

impl Loader {
    /// A loader over `data`. Shuffling and augmentation depend only on `seed` and the epoch, so a
    /// resumed run sees exactly the batches an uninterrupted run would.
    pub fn new(
        data: Arc<Dataset>,
        norm: Normalization,
        batch_size: usize,
        augment: Augment,
        shuffle: bool,
        seed: u64,
    ) -> Self {
        Self {
            units: Arc::new(data.units()),
            classes: None,
            data,
            norm,
            batch_size: batch_size.max(1),
            augment,
            shuffle,
            seed,
        }
    }

    /// Pairs every sample with another sample of its class, drawn anew each epoch (the batch
    /// then holds `2 × batch_size` samples: each pair's anchor, then its partner; CS-KD's
    /// sampler). Needs class labels; a sample alone in its class is its own partner.
    pub fn with_class_pairs(mut self) -> Self {
        if let Some(labels) = self.data.labels() {
            let mut classes = vec![Vec::new(); 256];
            for (i, &l) in labels.iter().enumerate() {
                classes[l as usize].push(i);
            }
            self.classes = Some(Arc::new(classes));
        }
        self
    }

    /// The underlying data set.
    pub fn data(&self) -> &Dataset {
        &self.data
    }

    /// Number of batches per epoch (a trailing batch of one sample is dropped when shuffling,
    /// because batch normalisation cannot train on it; a trailing group or pair is kept).
    pub fn num_batches(&self) -> usize {
        let n = self.units.len();
        let full = n / self.batch_size;
        let rest = n % self.batch_size;
        let grouped = self.data.groups.is_some() || self.classes.is_some();
        full + usize::from(rest > 1 || (rest == 1 && (grouped || !self.shuffle)))
    }

    /// The units of an epoch, in order: the samples of each.
    fn order(&self, epoch: usize) -> Vec<Vec<usize>> {
        let mut order: Vec<usize> = (0..self.units.len()).collect();
        if self.shuffle {
            let mut rng = rand::rngs::SmallRng::seed_from_u64(mix(self.seed, epoch as u64, 1));
            order.shuffle(&mut rng);
        }
        let Some(classes) = &self.classes else {
            return order
                .iter()
                .map(|&u| self.units[u].clone().collect())
                .collect();
        };
        let labels = self.data.labels().expect("class pairs need labels");
        let mut rng = rand::rngs::SmallRng::seed_from_u64(mix(self.seed, epoch as u64, 3));
        order
            .iter()
            .map(|&i| {
                let same = &classes[labels[i] as usize];
                let partner = if same.len() > 1 {
                    // another sample of the class, uniformly: draw among n − 1 slots, the
                    // anchor's own slot standing for the last one
                    let j = same[rng.random_range(0..same.len() - 1)];
                    if j == i {
                        same[same.len() - 1]
                    } else {
                        j
                    }
                } else {
                    i
                };
                vec![i, partner]
            })
            .collect()
    }

    /// Builds batch `b` of an epoch's units.
    fn build(&self, order: &[Vec<usize>], b: usize, epoch: usize) -> HostBatch {
        let d = &*self.data;
        let start = b * self.batch_size;
        let chosen = &order[start..(start + self.batch_size).min(order.len())];
        let idx: Vec<usize> = chosen.iter().flatten().copied().collect();
        let idx = &idx[..];
        let mut inputs = Vec::with_capacity(idx.len() * d.sample_len());
        let mut views = Vec::with_capacity(idx.len());
        match &d.inputs {
            Inputs::Image {
                pixels,
                channels: c,
                height: h,
                width: w,
            } => {
                let (c, h, w) = (*c, *h, *w);
                let plane = h * w;
                let n = c * plane;
                let mut scratch = vec![0u8; n];
                let scale: Vec<(f32, f32)> = (0..c)
                    .map(|ch| {
                        (
                            1.0 / (255.0 * self.norm.std[ch]),
                            self.norm.mean[ch] / self.norm.std[ch],
                        )
                    })
                    .collect();
                for &i in idx {
                    let src = &pixels[i * n..(i + 1) * n];
                    let px: &[u8] = if self.augment.is_enabled() {
                        let mut rng = rand::rngs::SmallRng::seed_from_u64(mix(
                            self.seed,
                            epoch as u64,
                            i as u64 + 2,
                        ));
                        views.push(self.augment.apply(src, &mut scratch, c, h, w, &mut rng));
                        &scratch
                    } else {
                        views.push(0);
                        src
                    };
                    for (ch, plane_px) in px.chunks_exact(plane).enumerate() {
                        let (a, b) = scale[ch];
                        inputs.extend(plane_px.iter().map(|&p| p as f32 * a - b));
                    }
                }
            }
            Inputs::Table {
                values, features, ..
            } => {
                let f = *features;
                for &i in idx {
                    views.push(0);
                    inputs.extend(
                        values[i * f..(i + 1) * f]
                            .iter()
                            .zip(self.norm.mean.iter().zip(&self.norm.std))
                            .map(|(&v, (&m, &s))| (v - m) / s),
                    );
                }
            }
            Inputs::Sequence {
                values,
                lengths,
                max_len,
                dims,
            } => {
                let (l, d) = (*max_len, *dims);
                for &i in idx {
                    views.push(0);
                    let series = &values[i * l * d..(i + 1) * l * d];
                    for (t, frame) in series.chunks_exact(d).enumerate() {
                        let real = t < lengths[i];
                        inputs.extend(
                            frame
                                .iter()
                                .zip(&self.norm.mean)
                                .zip(&self.norm.std)
                                .map(|((&v, &m), &s)| if real { (v - m) / s } else { 0.0 }),
                        );
                        inputs.push(if real { 1.0 } else { 0.0 });
                    }
                }
            }
            Inputs::Tokens { ids, context, .. } => {
                for &i in idx {
                    views.push(0);
                    inputs.extend(
                        ids[i * context..(i + 1) * context]
                            .iter()
                            .map(|&t| t as f32),
                    );
                }
            }
            Inputs::Pairs { ids, len, .. } => {
                let n = 2 * len;
                for &i in idx {
                    views.push(0);
                    inputs.extend(ids[i * n..(i + 1) * n].iter().map(|&t| t as f32));
                }
            }
        }
        let targets = match &d.targets {
            Targets::Class(labels) => {
                HostTargets::Class(idx.iter().map(|&i| labels[i] as i64).collect())
            }
            Targets::None(_) => HostTargets::None,
            Targets::Real { values, dims } => HostTargets::Real(
                idx.iter()
                    .flat_map(|&i| {
                        values[i * dims..(i + 1) * dims]
                            .iter()
                            .zip(self.norm.target_mean.iter().zip(&self.norm.target_std))
                            .map(|(&v, (&m, &s))| (v - m) / s)
                    })
                    .collect(),
            ),
            Targets::Relevance(g) => HostTargets::Relevance(idx.iter().map(|&i| g[i]).collect()),
            Targets::Tokens { ids, context } => HostTargets::Tokens(
                idx.iter()
                    .flat_map(|&i| {
                        ids[i * context..(i + 1) * context]
                            .iter()
                            .map(|&t| t as i64)
                    })
                    .collect(),
            ),
        };
        HostBatch {
            inputs,
            targets,
            indices: idx.to_vec(),
            views,
            groups: (d.groups.is_some() || self.classes.is_some())
                .then(|| chosen.iter().map(Vec::len).collect()),
        }
    }

    /// The batches of one epoch, prepared ahead on a background thread (up to `prefetch` ahead).
    pub fn epoch(&self, epoch: usize, prefetch: usize) -> Receiver<HostBatch> {
        let (tx, rx) = sync_channel(prefetch.max(1));
        let me = self.clone();
        std::thread::spawn(move || {
            let order = me.order(epoch);
            for b in 0..me.num_batches() {
                if tx.send(me.build(&order, b, epoch)).is_err() {
                    break; // the consumer stopped early
                }
            }
        });
        rx
    }
}

/// Mixes seeds into one (SplitMix64 finaliser), so nearby inputs give unrelated streams.
pub fn mix(a: u64, b: u64, c: u64) -> u64 {
    let mut z = a
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(b.wrapping_mul(0xBF58_476D_1CE4_E5B9))
        .wrapping_add(c.wrapping_mul(0x94D0_49BB_1331_11EB));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny(n: usize) -> Arc<Dataset> {
        Arc::new(Dataset {
            inputs: Inputs::Image {
                pixels: (0..n * 4).map(|v| v as u8).collect(),
                channels: 1,
                height: 2,
                width: 2,
            },
            targets: Targets::Class((0..n).map(|v| (v % 2) as u8).collect()),
            num_classes: 2,
            groups: None,
        })
    }

    #[test]
    fn epochs_are_reproducible_and_cover_all_samples() {
        let data = tiny(10);
        let norm = Normalization {
            mean: vec![0.0],
            std: vec![1.0],
            target_mean: vec![],
            target_std: vec![],
        };
        let l = Loader::new(data, norm, 4, Augment::default(), true, 7);
        let a: Vec<HostBatch> = l.epoch(3, 2).into_iter().collect();
        let b: Vec<HostBatch> = l.epoch(3, 2).into_iter().collect();
        let c: Vec<HostBatch> = l.epoch(4, 2).into_iter().collect();
        assert_eq!(a.len(), 3);
        let ia: Vec<usize> = a.iter().flat_map(|x| x.indices.clone()).collect();
        let ib: Vec<usize> = b.iter().flat_map(|x| x.indices.clone()).collect();
        let ic: Vec<usize> = c.iter().flat_map(|x| x.indices.clone()).collect();
        assert_eq!(ia, ib);
        assert_ne!(ia, ic);
        let mut sorted = ia.clone();
        sorted.sort();
        assert_eq!(sorted, (0..10).collect::<Vec<_>>());
        // pixel i*4 of sample i scaled to [0, 1]
        let first = &a[0];
        assert!((first.inputs[0] - (first.indices[0] * 4) as f32 / 255.0).abs() < 1e-6);
    }

    #[test]
    fn trailing_single_sample_is_dropped_when_shuffling() {
        let norm = Normalization {
            mean: vec![0.0],
            std: vec![1.0],
            target_mean: vec![],
            target_std: vec![],
        };
        let l = Loader::new(tiny(9), norm.clone(), 4, Augment::default(), true, 1);
        assert_eq!(l.num_batches(), 2);
        let l = Loader::new(tiny(9), norm, 4, Augment::default(), false, 1);
        assert_eq!(l.num_batches(), 3);
    }

    #[test]
    fn class_pairs_put_a_sample_of_the_same_class_after_each_anchor() {
        let n = 12;
        let data = Arc::new(Dataset {
            inputs: Inputs::Table {
                values: (0..n).map(|v| v as f32).collect(),
                features: 1,
                names: vec!["x".into()],
            },
            // classes 0, 1, 2 four times each, and one class of a single sample
            targets: Targets::Class(
                (0..n)
                    .map(|v| if v == 11 { 3 } else { (v % 3) as u8 })
                    .collect(),
            ),
            num_classes: 4,
            groups: None,
        });
        let norm = Normalization {
            mean: vec![0.0],
            std: vec![1.0],
            target_mean: vec![],
            target_std: vec![],
        };
        let l = Loader::new(data.clone(), norm, 4, Augment::default(), true, 5).with_class_pairs();
        assert_eq!(l.num_batches(), 3);
        let labels = data.labels().unwrap();
        let mut seen = Vec::new();
        for b in l.epoch(1, 1) {
            assert_eq!(b.groups, Some(vec![2; b.len() / 2]));
            for pair in b.indices.chunks(2) {
                let (i, j) = (pair[0], pair[1]);
                assert_eq!(labels[i], labels[j]);
                assert!(i != j || i == 11, "{pair:?}");
                seen.push(i);
            }
        }
        seen.sort_unstable();
        assert_eq!(
            seen,
            (0..n).collect::<Vec<_>>(),
            "every sample anchors one pair"
        );
        let again: Vec<Vec<usize>> = l.epoch(1, 1).into_iter().map(|b| b.indices).collect();
        let first: Vec<Vec<usize>> = l.epoch(1, 1).into_iter().map(|b| b.indices).collect();
        assert_eq!(
            again, first,
            "an epoch's pairs depend on the seed and epoch only"
        );
    }
}
