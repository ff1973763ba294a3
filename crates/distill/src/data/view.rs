//! Named views: what a role reads of each sample. Every sample carries its source input (the
//! view named `input`); `[[data.view]]` derives further views from it — a subset of a table's
//! columns, a grey or a lower-resolution image — and a role reads the view named by its `view`
//! key. Views are computed on the device from the normalised (and augmented) source batch, so
//! a teacher and a student reading different views always see the same, identically augmented
//! sample: pairing is given by construction.

use burn::prelude::*;
use burn::tensor::module::{adaptive_avg_pool2d, interpolate};
use burn::tensor::ops::{InterpolateMode, InterpolateOptions};
use burn::tensor::TensorData;
use serde::{Deserialize, Serialize};

use super::dataset::{Dataset, Inputs, Normalization};
use crate::error::{DistillError, Result};

/// The name of the source view, read by every role that names no other.
pub const SOURCE_VIEW: &str = "input";

/// `[[data.view]]` as written: a name and the transforms deriving it from the source input,
/// applied in the order `columns`, `grayscale`, `blur`, `downsample`, `resize`, `channels`, then
/// the view's own `mean`/`std` normalisation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ViewConfig {
    /// The name roles use (`view = "..."`).
    pub name: String,
    /// Keep only these table columns: feature names, or a categorical column's name for all of
    /// its one-hot features (tables only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub columns: Option<Vec<String>>,
    /// Average the channels into one grey channel (images only).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub grayscale: bool,
    /// Average `k × k` pixel blocks and scale back up (nearest), so the image keeps its size but
    /// loses detail: a degraded domain of the same geometry (images only; `k` must divide the
    /// height and the width).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blur: Option<usize>,
    /// Average `k × k` pixel blocks: a `k` times lower resolution (images only; `k` must
    /// divide the height and the width).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub downsample: Option<usize>,
    /// Resize to `[height, width]` by bilinear interpolation (PyTorch's
    /// `interpolate(mode="bilinear", align_corners=False)`): e.g. small images for a teacher
    /// trained on larger ones (images only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resize: Option<[usize; 2]>,
    /// Repeat a one-channel (grey) image into this many channels, e.g. 3 for a teacher trained
    /// on colour images (images only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channels: Option<usize>,
    /// The model's own per-channel normalisation of pixels in `[0, 1]`, in place of the data's:
    /// `(pixel - mean) / std`, e.g. ImageNet's for an imported torchvision teacher (images
    /// only; set `mean` and `std` together, one value per channel of the view).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mean: Option<Vec<f32>>,
    /// See `mean`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub std: Option<Vec<f32>>,
}

impl ViewConfig {
    /// Checks what can be checked without the data: a usable name and at least one transform.
    pub fn validate(&self) -> Result<()> {
        if self.name == SOURCE_VIEW || self.name.trim().is_empty() {
            return Err(DistillError::Config(format!(
                "[[data.view]] name = \"{}\" is reserved or empty: \"{SOURCE_VIEW}\" names the source input itself; pick another name",
                self.name
            )));
        }
        if self.columns.is_none()
            && !self.grayscale
            && self.downsample.is_none()
            && self.blur.is_none()
            && self.resize.is_none()
            && self.channels.is_none()
            && self.mean.is_none()
            && self.std.is_none()
        {
            return Err(DistillError::Config(format!(
                "[[data.view]] '{}' derives nothing from the input; set columns = [...] (tables), grayscale = true, blur = k, downsample = k, resize = [h, w], channels = n or mean/std (images)",
                self.name
            )));
        }
        if self.downsample == Some(0)
            || self.blur == Some(0)
            || self.channels == Some(0)
            || self.resize.is_some_and(|r| r.contains(&0))
        {
            return Err(DistillError::Config(format!(
                "[[data.view]] '{}': downsample, blur, channels and resize must be at least 1, got 0",
                self.name
            )));
        }
        match (&self.mean, &self.std) {
            (Some(m), Some(s)) => {
                if m.len() != s.len() || m.is_empty() {
                    return Err(DistillError::Config(format!(
                        "[[data.view]] '{}': mean has {} values and std {}; give one of each per channel of the view",
                        self.name,
                        m.len(),
                        s.len()
                    )));
                }
                if let Some(bad) = s.iter().find(|v| !(v.is_finite() && **v > 0.0)) {
                    return Err(DistillError::Config(format!(
                        "[[data.view]] '{}': std must be positive and finite, got {bad}",
                        self.name
                    )));
                }
                if let Some(bad) = m.iter().find(|v| !v.is_finite()) {
                    return Err(DistillError::Config(format!(
                        "[[data.view]] '{}': mean must be finite, got {bad}",
                        self.name
                    )));
                }
            }
            (None, None) => {}
            _ => {
                return Err(DistillError::Config(format!(
                    "[[data.view]] '{}': set mean and std together (the model's normalisation of pixels in [0, 1])",
                    self.name
                )))
            }
        }
        if self.columns.as_ref().is_some_and(Vec::is_empty) {
            return Err(DistillError::Config(format!(
                "[[data.view]] '{}': columns is empty; list at least one column",
                self.name
            )));
        }
        Ok(())
    }
}

/// A view resolved against the data: what a model's input is made of. Saved with every
/// checkpoint, so evaluation feeds the model what it was trained on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct View {
    /// Its name.
    pub name: String,
    /// Indices of the kept table features (`None`: all of them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub columns: Option<Vec<usize>>,
    /// Whether the channels are averaged into one.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub grayscale: bool,
    /// The block size of the blur (`None` or 1: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blur: Option<usize>,
    /// The block size of the lower resolution (`None` or 1: full resolution).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub downsample: Option<usize>,
    /// The `[height, width]` of a bilinear resize.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resize: Option<[usize; 2]>,
    /// The channel count a grey image is repeated into.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channels: Option<usize>,
    /// The view's own normalisation, replacing the data's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renormalize: Option<Renormalize>,
}

/// A view's own normalisation: the source batch's normalisation (the data's, recorded when the
/// view is resolved) is undone, and the model's applied after the other transforms.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Renormalize {
    /// The data's per-channel mean and std that the source batch was normalised with.
    pub source_mean: Vec<f32>,
    /// See `source_mean`.
    pub source_std: Vec<f32>,
    /// The model's per-channel mean and std of pixels in `[0, 1]`.
    pub mean: Vec<f32>,
    /// See `mean`.
    pub std: Vec<f32>,
}

impl Renormalize {
    /// What the model sees: its own mean and std. The data's, undone first, do not change the
    /// model's input, so two views of other data (or another `train_limit`) feed it alike.
    fn model_side(&self) -> (&[f32], &[f32]) {
        (&self.mean, &self.std)
    }
}

/// `x * scale + shift` per channel of an image batch `[B, C, H, W]`.
fn affine(x: Tensor<4>, scale: &[f32], shift: &[f32]) -> Tensor<4> {
    let c = scale.len();
    let device = x.device();
    let per_channel = |v: &[f32]| {
        Tensor::<1>::from_data(TensorData::new(v.to_vec(), [c]), &device).reshape([1, c, 1, 1])
    };
    x * per_channel(scale) + per_channel(shift)
}

impl Default for View {
    fn default() -> Self {
        Self::source()
    }
}

impl View {
    /// The source input itself.
    pub fn source() -> View {
        View {
            name: SOURCE_VIEW.into(),
            columns: None,
            grayscale: false,
            blur: None,
            downsample: None,
            resize: None,
            channels: None,
            renormalize: None,
        }
    }

    /// Whether the view is the source input unchanged.
    pub fn is_source(&self) -> bool {
        self.columns.is_none()
            && !self.grayscale
            && self.downsample.is_none_or(|k| k == 1)
            && self.blur.is_none_or(|k| k == 1)
            && self.resize.is_none()
            && self.channels.is_none()
            && self.renormalize.is_none()
    }

    /// Whether two views feed a model the same input (names aside).
    pub fn same_input(&self, other: &View) -> bool {
        (self.is_source() && other.is_source())
            || (self.columns == other.columns
                && self.grayscale == other.grayscale
                && self.blur.unwrap_or(1) == other.blur.unwrap_or(1)
                && self.downsample.unwrap_or(1) == other.downsample.unwrap_or(1)
                && self.resize == other.resize
                && self.channels == other.channels
                && self.renormalize.as_ref().map(Renormalize::model_side)
                    == other.renormalize.as_ref().map(Renormalize::model_side))
    }

    /// Resolves a `[[data.view]]` against the (training) data and the normalisation its batches
    /// get: column names to indices, and the transforms checked against the kind and size of
    /// the input.
    pub fn resolve(cfg: &ViewConfig, data: &Dataset, norm: &Normalization) -> Result<View> {
        let bad = |reason: String| {
            DistillError::Config(format!("[[data.view]] '{}': {reason}", cfg.name))
        };
        let image = matches!(data.inputs, Inputs::Image { .. });
        let columns = match (&cfg.columns, &data.inputs) {
            (None, _) => None,
            (Some(_), Inputs::Image { .. }) => {
                return Err(bad(
                    "columns selects table features, but the data are images; use grayscale or downsample"
                        .into(),
                ))
            }
            (Some(_), Inputs::Tokens { .. } | Inputs::Sequence { .. } | Inputs::Pairs { .. }) => {
                return Err(bad(
                    "columns selects table features, but the data are token windows or series of frames"
                        .into(),
                ))
            }
            (Some(wanted), Inputs::Table { names, .. }) => {
                let mut kept = Vec::new();
                for w in wanted {
                    let found: Vec<usize> = names
                        .iter()
                        .enumerate()
                        .filter(|(_, n)| *n == w || n.split_once('=').is_some_and(|(c, _)| c == w))
                        .map(|(i, _)| i)
                        .collect();
                    if found.is_empty() {
                        let mut columns: Vec<&str> = names
                            .iter()
                            .map(|n| n.split_once('=').map_or(n.as_str(), |(c, _)| c))
                            .collect();
                        columns.dedup();
                        return Err(DistillError::unknown(
                            format!("column of [[data.view]] '{}'", cfg.name),
                            w,
                            &columns,
                        ));
                    }
                    kept.extend(found);
                }
                let mut sorted = kept.clone();
                sorted.sort_unstable();
                sorted.dedup();
                if sorted.len() != kept.len() {
                    return Err(bad(format!(
                        "columns names a feature twice: {wanted:?}"
                    )));
                }
                Some(kept)
            }
        };
        if !image
            && (cfg.grayscale
                || cfg.downsample.is_some()
                || cfg.blur.is_some()
                || cfg.resize.is_some()
                || cfg.channels.is_some()
                || cfg.mean.is_some())
        {
            return Err(bad(
                "grayscale, blur, downsample, resize, channels and mean/std transform images, but the data are not images (table rows take columns; token ids and series take no view)"
                    .into(),
            ));
        }
        let [c, h, w] = data.geometry();
        if let Some(k) = cfg.downsample {
            if h % k != 0 || w % k != 0 {
                let divisors: Vec<usize> = (2..=h.min(w))
                    .filter(|d| h % d == 0 && w % d == 0)
                    .collect();
                return Err(bad(format!(
                    "downsample = {k} must divide the images' height and width ({h}×{w}); use one of {divisors:?}"
                )));
            }
        }
        let grey = if cfg.grayscale { 1 } else { c };
        if let Some(n) = cfg.channels.filter(|&n| n != grey) {
            if grey != 1 {
                return Err(bad(format!(
                    "channels = {n} repeats a grey image, but the images have {grey} channels; drop channels, or set grayscale = true first"
                )));
            }
        }
        let mut view = View {
            name: cfg.name.clone(),
            columns,
            grayscale: cfg.grayscale,
            blur: cfg.blur,
            downsample: cfg.downsample,
            resize: cfg.resize,
            channels: cfg.channels,
            renormalize: None,
        };
        if let (Some(mean), Some(std)) = (&cfg.mean, &cfg.std) {
            let out = view.geometry([c, h, w])[0];
            if mean.len() != out {
                return Err(bad(format!(
                    "mean and std have {} values, but the view has {out} channels; give one per channel",
                    mean.len()
                )));
            }
            view.renormalize = Some(Renormalize {
                source_mean: norm.mean.clone(),
                source_std: norm.std.clone(),
                mean: mean.clone(),
                std: std.clone(),
            });
        }
        Ok(view)
    }

    /// The `[channels, height, width]` a model reading this view sees, for a source of
    /// `source`.
    pub fn geometry(&self, source: [usize; 3]) -> [usize; 3] {
        let [mut c, mut h, mut w] = source;
        if let Some(cols) = &self.columns {
            w = cols.len();
        }
        if self.grayscale {
            c = 1;
        }
        if let Some(k) = self.downsample.filter(|&k| k > 1) {
            (h, w) = (h / k, w / k);
        }
        if let Some([rh, rw]) = self.resize {
            (h, w) = (rh, rw);
        }
        if let Some(n) = self.channels {
            c = n;
        }
        [c, h, w]
    }

    /// The view of a batch of source inputs `[B, C, H, W]` (tables are `[B, 1, 1, F]`).
    pub fn apply(&self, x: Tensor<4>) -> Tensor<4> {
        if self.is_source() {
            return x;
        }
        let mut x = x;
        if let Some(r) = &self.renormalize {
            // back to pixels in [0, 1]: x · std + mean
            x = affine(x, &r.source_std, &r.source_mean);
        }
        if let Some(cols) = &self.columns {
            let idx: Vec<i64> = cols.iter().map(|&c| c as i64).collect();
            let n = idx.len();
            let device = x.device();
            x = x.select(3, Tensor::from_data(TensorData::new(idx, [n]), &device));
        }
        if self.grayscale {
            x = x.mean_dim(1);
        }
        if let Some(k) = self.blur.filter(|&k| k > 1) {
            let [_, _, h, w] = x.dims();
            x = interpolate(
                adaptive_avg_pool2d(x, [h / k, w / k]),
                InterpolateOptions::new(InterpolateMode::Nearest).with_output_size([h, w]),
            );
        }
        if let Some(k) = self.downsample.filter(|&k| k > 1) {
            let [_, _, h, w] = x.dims();
            x = adaptive_avg_pool2d(x, [h / k, w / k]);
        }
        if let Some(size) = self.resize {
            x = interpolate(
                x,
                InterpolateOptions::new(InterpolateMode::Bilinear)
                    .with_align_corners(false)
                    .with_output_size(size),
            );
        }
        if let Some(n) = self.channels.filter(|&n| n != x.dims()[1]) {
            x = x.repeat_dim(1, n);
        }
        if let Some(r) = &self.renormalize {
            // (pixel − mean) / std
            let scale: Vec<f32> = r.std.iter().map(|s| 1.0 / s).collect();
            let shift: Vec<f32> = r.mean.iter().zip(&r.std).map(|(m, s)| -m / s).collect();
            x = affine(x, &scale, &shift);
        }
        x
    }
}

/// Every view of a data set: the source, then the declared ones, resolved.
pub fn resolve_views(
    declared: &[ViewConfig],
    data: &Dataset,
    norm: &Normalization,
) -> Result<Vec<View>> {
    std::iter::once(Ok(View::source()))
        .chain(declared.iter().map(|v| View::resolve(v, data, norm)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Targets;

    fn table() -> Dataset {
        Dataset {
            inputs: Inputs::Table {
                values: vec![1.0, 2.0, 0.0, 1.0, 3.0, 4.0, 1.0, 0.0],
                features: 4,
                names: vec![
                    "a".into(),
                    "b".into(),
                    "cut=Good".into(),
                    "cut=Ideal".into(),
                ],
            },
            targets: Targets::Real {
                values: vec![1.0, 2.0],
                dims: 1,
            },
            num_classes: 1,
            groups: None,
        }
    }

    fn image() -> Dataset {
        Dataset {
            inputs: Inputs::Image {
                pixels: vec![0; 3 * 4 * 4],
                channels: 3,
                height: 4,
                width: 4,
            },
            targets: Targets::Class(vec![0]),
            num_classes: 1,
            groups: None,
        }
    }

    fn cfg(name: &str) -> ViewConfig {
        ViewConfig {
            name: name.into(),
            columns: None,
            grayscale: false,
            blur: None,
            downsample: None,
            resize: None,
            channels: None,
            mean: None,
            std: None,
        }
    }

    fn norm() -> Normalization {
        Normalization {
            mean: vec![0.5],
            std: vec![0.25],
            target_mean: vec![],
            target_std: vec![],
        }
    }

    #[test]
    fn a_column_view_keeps_the_named_features_and_whole_categories() {
        let v = View::resolve(
            &ViewConfig {
                columns: Some(vec!["cut".into(), "a".into()]),
                ..cfg("some")
            },
            &table(),
            &norm(),
        )
        .unwrap();
        assert_eq!(v.columns, Some(vec![2, 3, 0]));
        assert_eq!(v.geometry([1, 1, 4]), [1, 1, 3]);
        let dev = Device::flex();
        let x =
            Tensor::<4>::from_floats([[[[1.0, 2.0, 0.0, 1.0]]], [[[3.0, 4.0, 1.0, 0.0]]]], &dev);
        let got: Vec<f32> = v.apply(x).into_data().iter::<f32>().collect();
        assert_eq!(got, vec![0.0, 1.0, 1.0, 1.0, 0.0, 3.0]);
    }

    #[test]
    fn an_image_view_averages_channels_and_pixel_blocks() {
        let v = View::resolve(
            &ViewConfig {
                grayscale: true,
                downsample: Some(2),
                ..cfg("small")
            },
            &image(),
            &norm(),
        )
        .unwrap();
        assert_eq!(v.geometry([3, 4, 4]), [1, 2, 2]);
        let dev = Device::flex();
        // channel c holds c everywhere, except one 2×2 block of channel 0 holding 4
        let mut px = vec![0f32; 3 * 16];
        for c in 0..3 {
            for i in 0..16 {
                px[c * 16 + i] = c as f32;
            }
        }
        for i in [0, 1, 4, 5] {
            px[i] = 4.0;
        }
        let x = Tensor::<4>::from_data(TensorData::new(px, [1, 3, 4, 4]), &dev);
        let got: Vec<f32> = v.apply(x).into_data().iter::<f32>().collect();
        // grey = mean of (4 or 0), 1, 2 → 7/3 in the top-left block, 1 elsewhere
        assert!((got[0] - 7.0 / 3.0).abs() < 1e-6, "{got:?}");
        assert!(got[1..].iter().all(|g| (g - 1.0).abs() < 1e-6), "{got:?}");
    }

    #[test]
    fn a_blurred_view_keeps_the_size_and_averages_blocks() {
        let v = View::resolve(
            &ViewConfig {
                blur: Some(2),
                ..cfg("blurred")
            },
            &image(),
            &norm(),
        )
        .unwrap();
        assert_eq!(v.geometry([3, 4, 4]), [3, 4, 4]);
        let dev = Device::flex();
        let px: Vec<f32> = (0..16).map(|i| i as f32).collect();
        let x = Tensor::<4>::from_data(TensorData::new(px, [1, 1, 4, 4]), &dev);
        let got: Vec<f32> = v.apply(x).into_data().iter::<f32>().collect();
        // the top-left 2×2 block (0, 1, 4, 5) averages to 2.5 in all four of its pixels
        for i in [0, 1, 4, 5] {
            assert_eq!(got[i], 2.5, "{got:?}");
        }
        assert_eq!(got[15], 12.5);
    }

    fn grey() -> Dataset {
        Dataset {
            inputs: Inputs::Image {
                pixels: vec![0; 2 * 2],
                channels: 1,
                height: 2,
                width: 2,
            },
            targets: Targets::Class(vec![0]),
            num_classes: 1,
            groups: None,
        }
    }

    #[test]
    fn a_teacher_view_resizes_repeats_grey_and_renormalises() {
        let v = View::resolve(
            &ViewConfig {
                resize: Some([4, 4]),
                channels: Some(3),
                mean: Some(vec![0.5, 0.25, 0.0]),
                std: Some(vec![0.5, 0.25, 1.0]),
                ..cfg("imagenet")
            },
            &grey(),
            &norm(),
        )
        .unwrap();
        assert_eq!(v.geometry([1, 2, 2]), [3, 4, 4]);
        assert!(!v.is_source() && !v.same_input(&View::source()));
        let dev = Device::flex();
        // pixels 0 and 1 in each row, normalised by the data's mean 0.5 and std 0.25
        let x = Tensor::<4>::from_floats([[[[-2.0, 2.0], [-2.0, 2.0]]]], &dev);
        let got: Vec<f32> = v.apply(x).into_data().iter::<f32>().collect();
        // PyTorch's bilinear upsampling (align_corners=False) of a row [0, 1] to 4 pixels gives
        // [0, 0.25, 0.75, 1]; each channel is then (p − mean) / std
        let row = [0.0f32, 0.25, 0.75, 1.0];
        for (c, (m, s)) in [(0.5f32, 0.5f32), (0.25, 0.25), (0.0, 1.0)]
            .iter()
            .enumerate()
        {
            for y in 0..4 {
                for (x, p) in row.iter().enumerate() {
                    let want = (p - m) / s;
                    let g = got[c * 16 + y * 4 + x];
                    assert!(
                        (g - want).abs() < 1e-6,
                        "channel {c} ({y}, {x}): {g} vs {want}"
                    );
                }
            }
        }
        // a checkpoint's view is saved and read back as it was
        let back: View = serde_json::from_str(&serde_json::to_string(&v).unwrap()).unwrap();
        assert_eq!(back, v);
        // the same view of data normalised otherwise feeds the model the same input; another
        // model normalisation does not
        let other = Normalization {
            mean: vec![0.3],
            std: vec![0.1],
            ..norm()
        };
        let cfg = ViewConfig {
            resize: Some([4, 4]),
            channels: Some(3),
            mean: Some(vec![0.5, 0.25, 0.0]),
            std: Some(vec![0.5, 0.25, 1.0]),
            ..cfg("imagenet")
        };
        assert!(View::resolve(&cfg, &grey(), &other).unwrap().same_input(&v));
        let mut shifted = cfg.clone();
        shifted.mean = Some(vec![0.5, 0.25, 0.1]);
        assert!(!View::resolve(&shifted, &grey(), &norm())
            .unwrap()
            .same_input(&v));
    }

    #[test]
    fn teacher_view_settings_that_cannot_work_name_the_fix() {
        let e = View::resolve(
            &ViewConfig {
                channels: Some(1),
                ..cfg("v")
            },
            &image(),
            &norm(),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("set grayscale = true first"), "{e}");
        let e = View::resolve(
            &ViewConfig {
                channels: Some(3),
                mean: Some(vec![0.5]),
                std: Some(vec![0.5]),
                ..cfg("v")
            },
            &grey(),
            &norm(),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("the view has 3 channels"), "{e}");
        let half = ViewConfig {
            mean: Some(vec![0.5]),
            ..cfg("v")
        };
        assert!(half
            .validate()
            .unwrap_err()
            .to_string()
            .contains("together"));
        let zero = ViewConfig {
            mean: Some(vec![0.5]),
            std: Some(vec![0.0]),
            ..cfg("v")
        };
        assert!(zero
            .validate()
            .unwrap_err()
            .to_string()
            .contains("positive"));
        let e = View::resolve(
            &ViewConfig {
                resize: Some([8, 8]),
                ..cfg("v")
            },
            &table(),
            &norm(),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("not images"), "{e}");
    }

    #[test]
    fn views_that_do_not_fit_the_data_name_the_fix() {
        let e = View::resolve(
            &ViewConfig {
                columns: Some(vec!["price".into()]),
                ..cfg("v")
            },
            &table(),
            &norm(),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("'price'") && e.contains("cut"), "{e}");
        let e = View::resolve(
            &ViewConfig {
                downsample: Some(3),
                ..cfg("v")
            },
            &image(),
            &norm(),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("must divide") && e.contains("[2, 4]"), "{e}");
        let e = View::resolve(
            &ViewConfig {
                grayscale: true,
                ..cfg("v")
            },
            &table(),
            &norm(),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("table rows take columns"), "{e}");
        assert!(cfg("v").validate().is_err());
        assert!(cfg("input").validate().is_err());
    }
}
