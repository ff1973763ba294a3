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

use super::dataset::{Dataset, Inputs};
use crate::error::{DistillError, Result};

/// The name of the source view, read by every role that names no other.
pub const SOURCE_VIEW: &str = "input";

/// `[[data.view]]` as written: a name and the transforms deriving it from the source input,
/// applied in the order `columns`, `grayscale`, `blur`, `downsample`.
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
        {
            return Err(DistillError::Config(format!(
                "[[data.view]] '{}' derives nothing from the input; set columns = [...] (tables), grayscale = true, blur = k or downsample = k (images)",
                self.name
            )));
        }
        if self.downsample == Some(0) || self.blur == Some(0) {
            return Err(DistillError::Config(format!(
                "[[data.view]] '{}': downsample and blur must be at least 1, got 0",
                self.name
            )));
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
        }
    }

    /// Whether the view is the source input unchanged.
    pub fn is_source(&self) -> bool {
        self.columns.is_none()
            && !self.grayscale
            && self.downsample.is_none_or(|k| k == 1)
            && self.blur.is_none_or(|k| k == 1)
    }

    /// Whether two views feed a model the same input (names aside).
    pub fn same_input(&self, other: &View) -> bool {
        (self.is_source() && other.is_source())
            || (self.columns == other.columns
                && self.grayscale == other.grayscale
                && self.blur.unwrap_or(1) == other.blur.unwrap_or(1)
                && self.downsample.unwrap_or(1) == other.downsample.unwrap_or(1))
    }

    /// Resolves a `[[data.view]]` against the (training) data: column names to indices, and the
    /// transforms checked against the kind and size of the input.
    pub fn resolve(cfg: &ViewConfig, data: &Dataset) -> Result<View> {
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
        if !image && (cfg.grayscale || cfg.downsample.is_some() || cfg.blur.is_some()) {
            return Err(bad(
                "grayscale, blur and downsample transform images, but the data are not images (table rows take columns; token ids and series take no view)"
                    .into(),
            ));
        }
        let [_, h, w] = data.geometry();
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
        Ok(View {
            name: cfg.name.clone(),
            columns,
            grayscale: cfg.grayscale,
            blur: cfg.blur,
            downsample: cfg.downsample,
        })
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
        [c, h, w]
    }

    /// The view of a batch of source inputs `[B, C, H, W]` (tables are `[B, 1, 1, F]`).
    pub fn apply(&self, x: Tensor<4>) -> Tensor<4> {
        if self.is_source() {
            return x;
        }
        let mut x = x;
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
        x
    }
}

/// Every view of a data set: the source, then the declared ones, resolved.
pub fn resolve_views(declared: &[ViewConfig], data: &Dataset) -> Result<Vec<View>> {
    std::iter::once(Ok(View::source()))
        .chain(declared.iter().map(|v| View::resolve(v, data)))
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

    #[test]
    fn views_that_do_not_fit_the_data_name_the_fix() {
        let e = View::resolve(
            &ViewConfig {
                columns: Some(vec!["price".into()]),
                ..cfg("v")
            },
            &table(),
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
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("table rows take columns"), "{e}");
        assert!(cfg("v").validate().is_err());
        assert!(cfg("input").validate().is_err());
    }
}
