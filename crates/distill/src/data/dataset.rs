//! In-memory data sets: one input view per sample (an image, or a row of features) and a typed
//! target (a class, or a vector of reals).

use std::path::{Path, PathBuf};

use super::idx::{parse_idx, read_idx_file, IdxArray};
use crate::error::{DistillError, Result};

/// Samples held in memory: their inputs and their targets, in the same order.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// The input of every sample.
    pub inputs: Inputs,
    /// The target of every sample.
    pub targets: Targets,
    /// Width of the models' output: the number of classes (largest label + 1 over train and
    /// test, at least as declared), the target's dimensions for real targets, or 1 (a score)
    /// for relevance grades.
    pub num_classes: usize,
    /// Consecutive samples that form one list (a query's candidates, for ranking): the size of
    /// each group, in order, summing to the number of samples. `None`: every sample stands
    /// alone. A batch holds whole groups.
    pub groups: Option<Vec<usize>>,
}

/// The input view of every sample.
#[derive(Debug, Clone)]
pub enum Inputs {
    /// Images: unsigned bytes, `len × channels × height × width`, row-major.
    Image {
        /// Pixels.
        pixels: Vec<u8>,
        /// Channels per image.
        channels: usize,
        /// Image height.
        height: usize,
        /// Image width.
        width: usize,
    },
    /// Rows of real features, `len × features` (one-hot encoded categories included). Models
    /// read a row as a `1 × 1 × features` map, so every model input is `[B, C, H, W]`.
    Table {
        /// Values.
        values: Vec<f32>,
        /// Features per row.
        features: usize,
        /// Feature names (categories as `column=value`).
        names: Vec<String>,
    },
    /// Series of frames of different lengths (see [`super::ts`]), zero-padded to `max_len`
    /// frames. Models read a series as a `1 × max_len × (dims + 1)` map whose last column marks
    /// the real frames (1) and the padding (0), so every model input is `[B, C, H, W]`.
    Sequence {
        /// Values, `len × max_len × dims`, frame-major, zero after a series' end.
        values: Vec<f32>,
        /// Real frames of each series.
        lengths: Vec<usize>,
        /// Frames of the longest series.
        max_len: usize,
        /// Values per frame.
        dims: usize,
    },
    /// Token windows, `len × context` token ids (see [`super::text`]). Models read a window as
    /// a `1 × 1 × context` map of ids (exact in `f32` below 2²⁴), so every model input is
    /// `[B, C, H, W]`; a language model turns them back into integers for its embedding.
    Tokens {
        /// Token ids.
        ids: Vec<u32>,
        /// Tokens per window.
        context: usize,
        /// How the text became the ids (a model trained on them decodes with it).
        tokenizer: super::text::Tokenizer,
    },
    /// (query, passage) pairs of token ids (see [`super::retrieval`]), `len × 2 × len` ids:
    /// each side `len` tokens, padded with 0. Models read a pair as a `1 × 2 × len` map of
    /// ids (exact in `f32` below 2²⁴).
    Pairs {
        /// Token ids: per sample the query's `len`, then the passage's.
        ids: Vec<u32>,
        /// Tokens per side.
        len: usize,
        /// The tokenizer's vocabulary size.
        vocab: usize,
        /// The tokenizer file, for messages.
        tokenizer: String,
    },
}

/// The target of every sample.
#[derive(Debug, Clone)]
pub enum Targets {
    /// One class index per sample (classification).
    Class(Vec<u8>),
    /// `dims` reals per sample (regression).
    Real {
        /// Values, `len × dims`.
        values: Vec<f32>,
        /// Reals per sample.
        dims: usize,
    },
    /// A graded relevance per sample (≥ 0; ranking, within the data set's groups).
    Relevance(Vec<f32>),
    /// No target: this many unlabeled samples (a transfer set that only the teachers'
    /// outputs supervise).
    None(usize),
    /// The next token at every position of a window (language modelling), `len × context`;
    /// `-100` ([`IGNORE_INDEX`]) marks positions without a target (padding after the end of a
    /// text), which every loss and metric skips, as in PyTorch and Hugging Face.
    Tokens {
        /// Target ids, or `-100`.
        ids: Vec<i32>,
        /// Positions per window.
        context: usize,
    },
}

/// The target of a position that has none (`ignore_index` of PyTorch's cross-entropy).
pub const IGNORE_INDEX: i64 = -100;

impl Targets {
    /// Number of samples.
    pub fn len(&self) -> usize {
        match self {
            Targets::Class(l) => l.len(),
            Targets::Real { values, dims } => values.len() / dims.max(&1),
            Targets::Relevance(g) => g.len(),
            Targets::None(n) => *n,
            Targets::Tokens { ids, context } => ids.len() / context.max(&1),
        }
    }

    /// Whether there is no sample.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// What the targets are, for messages (`class labels`, `real values`).
    pub fn kind(&self) -> &'static str {
        match self {
            Targets::Class(_) => "class labels",
            Targets::Real { .. } => "real values",
            Targets::Relevance(_) => "relevance grades",
            Targets::None(_) => "absent (unlabeled)",
            Targets::Tokens { .. } => "next tokens",
        }
    }
}

/// Normalisation of the inputs, from the training split: per channel `(x / 255 − mean) / std`
/// for images, per feature `(x − mean) / std` for tables; real targets are standardised the
/// same way (`target_mean`, `target_std`), and predictions mapped back before any metric.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Normalization {
    /// Per-channel (image) or per-feature (table) mean.
    pub mean: Vec<f32>,
    /// Per-channel or per-feature standard deviation.
    pub std: Vec<f32>,
    /// Per-dimension mean of real targets (empty for classes).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub target_mean: Vec<f32>,
    /// Per-dimension standard deviation of real targets (empty for classes).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub target_std: Vec<f32>,
}

impl Dataset {
    /// Number of samples.
    pub fn len(&self) -> usize {
        self.targets.len()
    }

    /// Whether the data set holds no sample.
    pub fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }

    /// Whether the samples carry targets (`false` for an unlabeled transfer set).
    pub fn has_targets(&self) -> bool {
        !matches!(self.targets, Targets::None(_))
    }

    /// The class labels, when the targets are classes.
    pub fn labels(&self) -> Option<&[u8]> {
        match &self.targets {
            Targets::Class(l) => Some(l),
            Targets::Real { .. }
            | Targets::Relevance(_)
            | Targets::None(_)
            | Targets::Tokens { .. } => None,
        }
    }

    /// The same samples, their models predicting `classes` outputs (an unlabeled transfer set's
    /// teacher's classes).
    pub fn with_classes(self, classes: usize) -> Dataset {
        Dataset {
            num_classes: classes,
            ..self
        }
    }

    /// The same samples without their targets (an unlabeled transfer set; `num_classes` kept,
    /// so the models still predict the task's outputs).
    pub fn without_targets(self) -> Dataset {
        Dataset {
            targets: Targets::None(self.len()),
            ..self
        }
    }

    /// The samples of each unit a batch is made of, in order: each group (ranking lists), or
    /// each sample alone.
    pub fn units(&self) -> Vec<std::ops::Range<usize>> {
        match &self.groups {
            Some(sizes) => {
                let mut start = 0;
                sizes
                    .iter()
                    .map(|&n| {
                        start += n;
                        start - n..start
                    })
                    .collect()
            }
            None => (0..self.len()).map(|i| i..i + 1).collect(),
        }
    }

    /// The groups of the first `limit` samples (a group cut by the limit keeps its first ones).
    fn groups_head(&self, limit: usize) -> Option<Vec<usize>> {
        self.groups.as_ref().map(|sizes| {
            let mut left = limit;
            sizes
                .iter()
                .map_while(|&n| {
                    let take = n.min(left);
                    left -= take;
                    (take > 0).then_some(take)
                })
                .collect()
        })
    }

    /// The model input's `[channels, height, width]` (`[1, 1, features]` for a table).
    pub fn geometry(&self) -> [usize; 3] {
        match &self.inputs {
            Inputs::Image {
                channels,
                height,
                width,
                ..
            } => [*channels, *height, *width],
            Inputs::Table { features, .. } => [1, 1, *features],
            Inputs::Tokens { context, .. } => [1, 1, *context],
            Inputs::Pairs { len, .. } => [1, 2, *len],
            Inputs::Sequence { max_len, dims, .. } => [1, *max_len, dims + 1],
        }
    }

    /// The tokenizer of token windows (`None` for images and tables).
    pub fn tokenizer(&self) -> Option<super::text::Tokenizer> {
        match &self.inputs {
            Inputs::Tokens { tokenizer, .. } => Some(tokenizer.clone()),
            _ => None,
        }
    }

    /// Values per sample's input.
    pub fn sample_len(&self) -> usize {
        self.geometry().iter().product()
    }

    /// Builds a data set from an images array (`[n, h, w]` grey or `[n, c, h, w]`) and a labels
    /// array (`[n]`), checking that they agree.
    pub fn from_idx_arrays(images: IdxArray, labels: IdxArray, origin: &Path) -> Result<Self> {
        let bad = |reason: String| DistillError::BadData {
            path: origin.to_path_buf(),
            reason,
        };
        let (n, c, h, w) = match images.dims[..] {
            [n, h, w] => (n, 1, h, w),
            [n, c, h, w] => (n, c, h, w),
            _ => {
                return Err(bad(format!(
                    "images must have 3 ([n, h, w]) or 4 ([n, c, h, w]) dimensions, got {:?}",
                    images.dims
                )))
            }
        };
        if labels.dims.len() != 1 {
            return Err(bad(format!(
                "labels must have 1 dimension ([n]), got {:?}",
                labels.dims
            )));
        }
        if labels.dims[0] != n {
            return Err(bad(format!(
                "label count mismatch: {n} images but {} labels; the images and labels files must come from the same split",
                labels.dims[0]
            )));
        }
        if n == 0 {
            return Err(bad("the data set holds no image".into()));
        }
        if c == 0 || h == 0 || w == 0 {
            return Err(bad(format!(
                "images must have at least one channel, row and column, got {c}×{h}×{w}"
            )));
        }
        let num_classes = labels.data.iter().copied().max().unwrap_or(0) as usize + 1;
        Ok(Self {
            inputs: Inputs::Image {
                pixels: images.data,
                channels: c,
                height: h,
                width: w,
            },
            targets: Targets::Class(labels.data),
            num_classes,
            groups: None,
        })
    }

    /// Loads an IDX images/labels pair from disk.
    pub fn from_idx_files(images: &Path, labels: &Path) -> Result<Self> {
        let imgs = read_idx_file(images)?;
        let labs = read_idx_file(labels)?;
        Self::from_idx_arrays(imgs, labs, labels)
    }

    /// Loads an IDX images/labels pair held in memory (e.g. embedded in the binary).
    pub fn from_idx_bytes(images: &[u8], labels: &[u8], origin: &str) -> Result<Self> {
        let origin = PathBuf::from(origin);
        let imgs = parse_idx(images, &origin)?;
        let labs = parse_idx(labels, &origin)?;
        Self::from_idx_arrays(imgs, labs, &origin)
    }

    /// A copy of the first `limit` samples (copying only those), as [`Self::truncate`] keeps.
    pub fn head(&self, limit: usize) -> Dataset {
        let limit = limit.min(self.len());
        Dataset {
            groups: self.groups_head(limit),
            ..self.select(&(0..limit).collect::<Vec<_>>())
        }
    }

    /// A copy of the samples at `indices`, in that order (a federated client's share). The
    /// copy has no lists: selecting from a ranking set would split its groups.
    pub fn select(&self, indices: &[usize]) -> Dataset {
        fn pick<T: Copy>(values: &[T], width: usize, indices: &[usize]) -> Vec<T> {
            indices
                .iter()
                .flat_map(|&i| values[i * width..(i + 1) * width].iter().copied())
                .collect()
        }
        let n = self.sample_len();
        let inputs = match &self.inputs {
            Inputs::Image {
                pixels,
                channels,
                height,
                width,
            } => Inputs::Image {
                pixels: pick(pixels, n, indices),
                channels: *channels,
                height: *height,
                width: *width,
            },
            Inputs::Table {
                values,
                features,
                names,
            } => Inputs::Table {
                values: pick(values, n, indices),
                features: *features,
                names: names.clone(),
            },
            Inputs::Sequence {
                values,
                lengths,
                max_len,
                dims,
            } => Inputs::Sequence {
                values: pick(values, max_len * dims, indices),
                lengths: pick(lengths, 1, indices),
                max_len: *max_len,
                dims: *dims,
            },
            Inputs::Tokens {
                ids,
                context,
                tokenizer,
            } => Inputs::Tokens {
                ids: pick(ids, n, indices),
                context: *context,
                tokenizer: tokenizer.clone(),
            },
            Inputs::Pairs {
                ids,
                len,
                vocab,
                tokenizer,
            } => Inputs::Pairs {
                ids: pick(ids, n, indices),
                len: *len,
                vocab: *vocab,
                tokenizer: tokenizer.clone(),
            },
        };
        let targets = match &self.targets {
            Targets::Class(l) => Targets::Class(pick(l, 1, indices)),
            Targets::Real { values, dims } => Targets::Real {
                values: pick(values, *dims, indices),
                dims: *dims,
            },
            Targets::Relevance(g) => Targets::Relevance(pick(g, 1, indices)),
            Targets::None(_) => Targets::None(indices.len()),
            Targets::Tokens { ids, context } => Targets::Tokens {
                ids: pick(ids, *context, indices),
                context: *context,
            },
        };
        Dataset {
            inputs,
            targets,
            num_classes: self.num_classes,
            groups: None,
        }
    }

    /// Keeps the first `limit` images (the embedded and Fashion-MNIST files are shuffled, so a
    /// prefix is close to stratified).
    pub fn truncate(mut self, limit: usize) -> Self {
        // lists stay whole: as many whole lists as fit, at least one
        let limit = match &self.groups {
            Some(sizes) => {
                let mut kept = 0;
                for &n in sizes {
                    if kept + n > limit && kept > 0 {
                        break;
                    }
                    kept += n;
                }
                kept
            }
            None => limit,
        };
        if limit < self.len() {
            let n = self.sample_len();
            match &mut self.inputs {
                Inputs::Image { pixels, .. } => pixels.truncate(limit * n),
                Inputs::Table { values, .. } => values.truncate(limit * n),
                Inputs::Tokens { ids, .. } | Inputs::Pairs { ids, .. } => ids.truncate(limit * n),
                Inputs::Sequence {
                    values,
                    lengths,
                    max_len,
                    dims,
                } => {
                    values.truncate(limit * *max_len * *dims);
                    lengths.truncate(limit);
                }
            }
            match &mut self.targets {
                Targets::Class(l) => l.truncate(limit),
                Targets::Real { values, dims } => values.truncate(limit * *dims),
                Targets::Relevance(g) => g.truncate(limit),
                Targets::None(n) => *n = limit,
                Targets::Tokens { ids, context } => ids.truncate(limit * *context),
            }
            self.groups = self.groups_head(limit);
        }
        self
    }

    /// The normalisation of this (training) split: per-channel mean and standard deviation of
    /// the pixels scaled to `[0, 1]`, or per-feature of the table's values; and per-dimension of
    /// real targets.
    pub fn normalization(&self) -> Normalization {
        fn moments(
            groups: usize,
            values: impl Iterator<Item = (usize, f64)>,
        ) -> (Vec<f32>, Vec<f32>) {
            let mut sum = vec![0f64; groups];
            let mut sq = vec![0f64; groups];
            let mut count = vec![0f64; groups];
            for (g, v) in values {
                sum[g] += v;
                sq[g] += v * v;
                count[g] += 1.0;
            }
            let mean: Vec<f64> = sum
                .iter()
                .zip(&count)
                .map(|(s, c)| s / c.max(1.0))
                .collect();
            let std = sq
                .iter()
                .zip(&mean)
                .zip(&count)
                .map(|((s, m), c)| ((s / c.max(1.0) - m * m).max(1e-12)).sqrt() as f32)
                .collect();
            (mean.into_iter().map(|m| m as f32).collect(), std)
        }
        let (mean, std) = match &self.inputs {
            Inputs::Image {
                pixels,
                channels,
                height,
                width,
            } => {
                let plane = height * width;
                moments(
                    *channels,
                    pixels
                        .iter()
                        .enumerate()
                        .map(|(k, &p)| ((k / plane) % channels, p as f64 / 255.0)),
                )
            }
            Inputs::Table {
                values, features, ..
            } => moments(
                *features,
                values
                    .iter()
                    .enumerate()
                    .map(|(k, &v)| (k % features, v as f64)),
            ),
            // Token ids are read as they are.
            Inputs::Tokens { .. } | Inputs::Pairs { .. } => (vec![0.0], vec![1.0]),
            // Per value of a frame over the real frames; the mask column as it is.
            Inputs::Sequence {
                values,
                lengths,
                max_len,
                dims,
            } => {
                let (mut mean, mut std) = moments(
                    *dims,
                    lengths.iter().enumerate().flat_map(|(i, &len)| {
                        let start = i * max_len * dims;
                        values[start..start + len * dims]
                            .iter()
                            .enumerate()
                            .map(|(k, &v)| (k % dims, v as f64))
                    }),
                );
                mean.push(0.0);
                std.push(1.0);
                (mean, std)
            }
        };
        let (target_mean, target_std) = match &self.targets {
            Targets::Class(_)
            | Targets::Relevance(_)
            | Targets::None(_)
            | Targets::Tokens { .. } => (Vec::new(), Vec::new()),
            Targets::Real { values, dims } => moments(
                *dims,
                values
                    .iter()
                    .enumerate()
                    .map(|(k, &v)| (k % dims, v as f64)),
            ),
        };
        Normalization {
            mean,
            std,
            target_mean,
            target_std,
        }
    }

    /// Fixes the number of classes of a train/test pair and checks every label against it.
    ///
    /// With `declared` classes (the config's `data.classes`, or a known data set's count), every
    /// label must lie below it. Without, the count is the largest training label + 1, every class
    /// below it must occur in the training split (a stray label such as 200 among 0–9 would
    /// otherwise silently add 191 empty classes), and no test label may exceed it.
    pub fn settle_classes(
        train: &mut Dataset,
        test: &mut Dataset,
        declared: Option<usize>,
    ) -> Result<usize> {
        let (Some(train_labels), Some(_)) = (train.labels(), test.labels()) else {
            // Real targets: the models' output width is the target's dimensions.
            return Ok(train.num_classes);
        };
        let train_labels = train_labels.to_vec();
        let first_above = |d: &Dataset, k: usize| {
            d.labels()
                .unwrap_or_default()
                .iter()
                .enumerate()
                .find(|(_, &l)| l as usize >= k)
                .map(|(i, &l)| (i, l))
        };
        let classes = match declared {
            Some(k) => {
                for (split, d) in [("training", &*train), ("test", &*test)] {
                    if let Some((i, l)) = first_above(d, k) {
                        return Err(DistillError::Config(format!(
                            "{split} image #{i} has label {l}, outside the {k} classes 0..={}; fix the labels, or set data.classes to the true number of classes",
                            k - 1
                        )));
                    }
                }
                k
            }
            None => {
                let k = train_labels
                    .iter()
                    .copied()
                    .max()
                    .map_or(0, |m| m as usize + 1);
                let mut seen = vec![false; k];
                for &l in &train_labels {
                    seen[l as usize] = true;
                }
                let missing: Vec<usize> = (0..k).filter(|&c| !seen[c]).collect();
                if !missing.is_empty() {
                    let shown: Vec<String> =
                        missing.iter().take(8).map(|c| c.to_string()).collect();
                    return Err(DistillError::Config(format!(
                        "the training labels run up to {} but {} of the classes below never occur ({}{}); labels must be 0..N-1: fix the stray labels, or set data.classes = N to declare N classes explicitly",
                        k - 1,
                        missing.len(),
                        shown.join(", "),
                        if missing.len() > 8 { ", ..." } else { "" }
                    )));
                }
                if let Some((i, l)) = first_above(test, k) {
                    return Err(DistillError::Config(format!(
                        "test image #{i} has label {l}, a class that never occurs in the training split (labels 0..={}); fix the test labels, or set data.classes to declare more classes",
                        k - 1
                    )));
                }
                k
            }
        };
        train.num_classes = classes;
        test.num_classes = classes;
        Ok(classes)
    }

    /// Checks that `other` (e.g. the test split) has the same input geometry and kind of target.
    pub fn check_compatible(&self, other: &Dataset, what: &str) -> Result<()> {
        if self.targets.kind() != other.targets.kind() {
            return Err(DistillError::Config(format!(
                "{what}: the targets are {} vs {}",
                self.targets.kind(),
                other.targets.kind()
            )));
        }
        let a = self.geometry();
        let b = other.geometry();
        if a != b {
            return Err(DistillError::Shape {
                context: format!("{what}: input geometry (channels, height, width)"),
                expected: a.to_vec(),
                got: b.to_vec(),
                fix: String::new(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::idx::encode_idx;

    fn arrays(n_img: usize, n_lab: usize) -> (Vec<u8>, Vec<u8>) {
        let images = IdxArray {
            dims: vec![n_img, 2, 2],
            data: (0..n_img * 4).map(|v| (v * 10) as u8).collect(),
        };
        let labels = IdxArray {
            dims: vec![n_lab],
            data: (0..n_lab).map(|v| (v % 3) as u8).collect(),
        };
        (encode_idx(&images), encode_idx(&labels))
    }

    #[test]
    fn label_count_mismatch_is_an_error() {
        let (i, l) = arrays(4, 3);
        let err = Dataset::from_idx_bytes(&i, &l, "mem")
            .unwrap_err()
            .to_string();
        assert!(err.contains("4 images but 3 labels"), "{err}");
    }

    #[test]
    fn loads_and_normalizes() {
        let (i, l) = arrays(4, 4);
        let ds = Dataset::from_idx_bytes(&i, &l, "mem").unwrap();
        assert_eq!((ds.len(), ds.geometry()), (4, [1, 2, 2]));
        assert_eq!(ds.num_classes, 3);
        let n = ds.normalization();
        let mean = (0..16).map(|v| v as f64 * 10.0 / 255.0).sum::<f64>() / 16.0;
        assert!((n.mean[0] as f64 - mean).abs() < 1e-6);
        // a copied prefix is what truncating keeps
        let head = ds.head(2);
        assert_eq!(head.len(), 2);
        assert_eq!(head.labels(), ds.clone().truncate(2).labels());
        assert_eq!(ds.head(10).len(), 4);
        assert_eq!(ds.clone().truncate(2).len(), 2);
        // selected samples keep their pixels and labels, in the order asked
        let picked = ds.select(&[3, 1]);
        let Inputs::Image { pixels, .. } = &picked.inputs else {
            panic!("images stay images")
        };
        assert_eq!(pixels, &[120, 130, 140, 150, 40, 50, 60, 70]);
        assert_eq!(picked.labels(), Some(&[0u8, 1][..]));
    }

    #[test]
    fn stray_and_test_only_labels_are_refused() {
        let (i, l) = arrays(6, 6); // labels 0, 1, 2, 0, 1, 2
        let base = Dataset::from_idx_bytes(&i, &l, "mem").unwrap();
        let (mut tr, mut te) = (base.clone(), base.clone());
        assert_eq!(Dataset::settle_classes(&mut tr, &mut te, None).unwrap(), 3);
        // a stray label 200 leaves classes 3..199 empty
        let mut tr = base.clone();
        let Targets::Class(l) = &mut tr.targets else {
            unreachable!()
        };
        l[4] = 200;
        let err = Dataset::settle_classes(&mut tr, &mut base.clone(), None).unwrap_err();
        assert!(
            err.to_string()
                .contains("197 of the classes below never occur"),
            "{err}"
        );
        // ... unless the classes are declared, and then 200 is outside them
        let err = Dataset::settle_classes(&mut tr, &mut base.clone(), Some(10)).unwrap_err();
        assert!(
            err.to_string().contains("training image #4 has label 200"),
            "{err}"
        );
        // a test-only class
        let mut te = base.clone();
        let Targets::Class(l) = &mut te.targets else {
            unreachable!()
        };
        l[1] = 3;
        let err = Dataset::settle_classes(&mut base.clone(), &mut te, None).unwrap_err();
        assert!(
            err.to_string()
                .contains("never occurs in the training split"),
            "{err}"
        );
        let (mut tr, mut te2) = (base.clone(), te.clone());
        assert_eq!(
            Dataset::settle_classes(&mut tr, &mut te2, Some(4)).unwrap(),
            4
        );
        assert_eq!((tr.num_classes, te2.num_classes), (4, 4));
    }
}
