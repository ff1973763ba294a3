//! In-memory image classification data set.

use std::path::{Path, PathBuf};

use super::idx::{parse_idx, read_idx_file, IdxArray};
use crate::error::{DistillError, Result};

/// Images (unsigned bytes, channel-first) and their class labels, held in memory.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// Pixels, `len × channels × height × width`, row-major.
    pub images: Vec<u8>,
    /// One class index per image.
    pub labels: Vec<u8>,
    /// Channels per image.
    pub channels: usize,
    /// Image height.
    pub height: usize,
    /// Image width.
    pub width: usize,
    /// Number of classes (largest label + 1 over train and test, at least as declared).
    pub num_classes: usize,
}

/// Per-channel normalisation `(x / 255 − mean) / std`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Normalization {
    /// Per-channel mean of `x / 255`.
    pub mean: Vec<f32>,
    /// Per-channel standard deviation of `x / 255`.
    pub std: Vec<f32>,
}

impl Dataset {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether the data set holds no image.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Pixels of one image.
    pub fn image(&self, i: usize) -> &[u8] {
        let n = self.sample_len();
        &self.images[i * n..(i + 1) * n]
    }

    /// Values per image (`channels × height × width`).
    pub fn sample_len(&self) -> usize {
        self.channels * self.height * self.width
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
            images: images.data,
            labels: labels.data,
            channels: c,
            height: h,
            width: w,
            num_classes,
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

    /// Keeps the first `limit` images (the embedded and Fashion-MNIST files are shuffled, so a
    /// prefix is close to stratified).
    pub fn truncate(mut self, limit: usize) -> Self {
        if limit < self.len() {
            self.images.truncate(limit * self.sample_len());
            self.labels.truncate(limit);
        }
        self
    }

    /// Per-channel mean and standard deviation of the pixels scaled to `[0, 1]`.
    pub fn normalization(&self) -> Normalization {
        let plane = self.height * self.width;
        let mut sum = vec![0f64; self.channels];
        let mut sq = vec![0f64; self.channels];
        for img in self.images.chunks_exact(self.sample_len()) {
            for (c, px) in img.chunks_exact(plane).enumerate() {
                for &p in px {
                    let v = p as f64 / 255.0;
                    sum[c] += v;
                    sq[c] += v * v;
                }
            }
        }
        let count = (self.len() * plane) as f64;
        let mean: Vec<f64> = sum.iter().map(|s| s / count).collect();
        let std = sq
            .iter()
            .zip(&mean)
            .map(|(s, m)| ((s / count - m * m).max(1e-12)).sqrt() as f32)
            .collect();
        Normalization {
            mean: mean.into_iter().map(|m| m as f32).collect(),
            std,
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
        let first_above = |d: &Dataset, k: usize| {
            d.labels
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
                let k = train
                    .labels
                    .iter()
                    .copied()
                    .max()
                    .map_or(0, |m| m as usize + 1);
                let mut seen = vec![false; k];
                for &l in &train.labels {
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

    /// Checks that `other` (e.g. the test split) has the same image geometry.
    pub fn check_compatible(&self, other: &Dataset, what: &str) -> Result<()> {
        let a = [self.channels, self.height, self.width];
        let b = [other.channels, other.height, other.width];
        if a != b {
            return Err(DistillError::Shape {
                context: format!("{what}: image geometry (channels, height, width)"),
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
        assert_eq!((ds.len(), ds.channels, ds.height, ds.width), (4, 1, 2, 2));
        assert_eq!(ds.num_classes, 3);
        let n = ds.normalization();
        let mean = (0..16).map(|v| v as f64 * 10.0 / 255.0).sum::<f64>() / 16.0;
        assert!((n.mean[0] as f64 - mean).abs() < 1e-6);
        assert_eq!(ds.truncate(2).len(), 2);
    }

    #[test]
    fn stray_and_test_only_labels_are_refused() {
        let (i, l) = arrays(6, 6); // labels 0, 1, 2, 0, 1, 2
        let base = Dataset::from_idx_bytes(&i, &l, "mem").unwrap();
        let (mut tr, mut te) = (base.clone(), base.clone());
        assert_eq!(Dataset::settle_classes(&mut tr, &mut te, None).unwrap(), 3);
        // a stray label 200 leaves classes 3..199 empty
        let mut tr = base.clone();
        tr.labels[4] = 200;
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
        te.labels[1] = 3;
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
