//! Where a run's data comes from: the embedded subset, the installed Fashion-MNIST, or any folder
//! of IDX files.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::dataset::Dataset;
use crate::error::{DistillError, Result};

/// Standard install path of Debian's `dataset-fashion-mnist` package.
pub const FASHION_MNIST_DIR: &str = "/usr/share/datasets/fashion-mnist";

/// Class names of Fashion-MNIST (also those of the embedded subset).
pub const FASHION_MNIST_CLASSES: [&str; 10] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];

/// A data set source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DataSource {
    /// The stratified Fashion-MNIST subset shipped inside distill (5,000 train / 2,000 test).
    #[default]
    Embedded,
    /// The full Fashion-MNIST (60,000 / 10,000) from `dir`, by default Debian's install path.
    FashionMnist,
    /// Any MNIST-style folder of `{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]` files in `dir`.
    Idx,
    /// A CSV table (`path`, `target`; see [`super::table`]), split into train and test here.
    Csv,
    /// A UTF-8 text file (`path`; see [`super::text`]) as windows of next-token targets, for
    /// language models; split into train and test by chapters.
    Text,
    /// A pair of `.ts` time-series files (`path`, `test_path`; see [`super::ts`]): series of
    /// frames with a class label each, e.g. Japanese Vowels (speaker recognition).
    Ts,
    /// A UTF-8 text file (`path`) as a passage-retrieval benchmark of re-ranking lists
    /// (`tokenizer_file`, `list_size`; see [`super::retrieval`]), for bi-encoders.
    Retrieval,
}

impl DataSource {
    /// The number of classes of a known data set (`None` for an arbitrary IDX folder).
    pub fn known_classes(&self) -> Option<usize> {
        match self {
            DataSource::Embedded | DataSource::FashionMnist => Some(FASHION_MNIST_CLASSES.len()),
            DataSource::Idx
            | DataSource::Csv
            | DataSource::Text
            | DataSource::Ts
            | DataSource::Retrieval => None,
        }
    }

    /// Loads the test split alone (what `distill eval` scores on).
    pub fn load_test(&self, dir: Option<&Path>) -> Result<Dataset> {
        match self {
            DataSource::Embedded => embedded_test(),
            DataSource::FashionMnist => {
                load_split(dir.unwrap_or(Path::new(FASHION_MNIST_DIR)), "t10k")
            }
            DataSource::Idx => load_split(self.need_dir(dir)?, "t10k"),
            DataSource::Csv | DataSource::Text | DataSource::Ts | DataSource::Retrieval => {
                Err(csv_needs_spec())
            }
        }
    }

    fn need_dir<'a>(&self, dir: Option<&'a Path>) -> Result<&'a Path> {
        dir.ok_or_else(|| {
            DistillError::Config(
                "data.source = \"idx\" needs data.dir, the folder holding the IDX files".into(),
            )
        })
    }

    /// Loads the train and test splits.
    pub fn load(&self, dir: Option<&Path>) -> Result<(Dataset, Dataset)> {
        match self {
            DataSource::Embedded => embedded(),
            DataSource::FashionMnist => load_idx_dir(dir.unwrap_or(Path::new(FASHION_MNIST_DIR))),
            DataSource::Idx => load_idx_dir(self.need_dir(dir)?),
            DataSource::Csv | DataSource::Text | DataSource::Ts | DataSource::Retrieval => {
                Err(csv_needs_spec())
            }
        }
    }
}

fn csv_needs_spec() -> DistillError {
    DistillError::Unsupported(
        "a CSV table, a text or a .ts pair is read from data.path with its settings (data::table::load_csv, data::text::load_text, data::ts::load_ts), not from a folder".into(),
    )
}

const EMBEDDED_TEST: (&[u8], &[u8]) = (
    include_bytes!("../../data/t10k-images-idx3-ubyte.gz"),
    include_bytes!("../../data/t10k-labels-idx1-ubyte.gz"),
);

/// The embedded Fashion-MNIST subset (classes are settled by `run::load_data`).
pub fn embedded() -> Result<(Dataset, Dataset)> {
    let train = Dataset::from_idx_bytes(
        include_bytes!("../../data/train-images-idx3-ubyte.gz"),
        include_bytes!("../../data/train-labels-idx1-ubyte.gz"),
        "<embedded train>",
    )?;
    Ok((train, embedded_test()?))
}

fn embedded_test() -> Result<Dataset> {
    Dataset::from_idx_bytes(EMBEDDED_TEST.0, EMBEDDED_TEST.1, "<embedded test>")
}

/// Finds `stem` or `stem.gz` in `dir`.
fn find(dir: &Path, stem: &str) -> PathBuf {
    let gz = dir.join(format!("{stem}.gz"));
    if gz.exists() {
        gz
    } else {
        dir.join(stem)
    }
}

/// Loads `{name}-{images-idx3,labels-idx1}-ubyte[.gz]` (`name`: `train` or `t10k`) from a folder.
fn load_split(dir: &Path, name: &str) -> Result<Dataset> {
    Dataset::from_idx_files(
        &find(dir, &format!("{name}-images-idx3-ubyte")),
        &find(dir, &format!("{name}-labels-idx1-ubyte")),
    )
}

/// Loads `{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]` from a folder.
pub fn load_idx_dir(dir: &Path) -> Result<(Dataset, Dataset)> {
    let train = load_split(dir, "train")?;
    let test = load_split(dir, "t10k")?;
    train.check_compatible(&test, "train vs test split")?;
    Ok((train, test))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_subset_is_stratified_fashion_mnist() {
        let (train, test) = embedded().unwrap();
        assert_eq!((train.len(), test.len()), (5000, 2000));
        assert_eq!((train.geometry(), train.num_classes), ([1, 28, 28], 10));
        for c in 0..10u8 {
            assert_eq!(
                train.labels().unwrap().iter().filter(|&&l| l == c).count(),
                500
            );
            assert_eq!(
                test.labels().unwrap().iter().filter(|&&l| l == c).count(),
                200
            );
        }
    }

    #[test]
    fn idx_source_needs_a_dir() {
        let err = DataSource::Idx.load(None).unwrap_err().to_string();
        assert!(err.contains("data.dir"), "{err}");
    }
}
