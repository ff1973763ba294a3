//! Where a run's data comes from: the embedded subset, the installed Fashion-MNIST, any folder
//! of IDX files, CIFAR-10/100's binary batches, or an image folder.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::cifar::{load_cifar, load_cifar_test, Cifar};
use super::dataset::Dataset;
use super::folder::{load_image_folder, load_image_folder_test};
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
    /// CIFAR-10's binary batches in `dir` (see [`super::cifar`]).
    Cifar10,
    /// CIFAR-100's binary files in `dir` (fine labels; see [`super::cifar`]).
    Cifar100,
    /// An image folder `dir` of `train/<class>/` and `test/<class>/` (or `val/<class>/`) PNG or
    /// JPEG files, torchvision's `ImageFolder` layout (see [`super::folder`]).
    ImageFolder,
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
            DataSource::Cifar10 => Some(Cifar::Ten.classes()),
            DataSource::Cifar100 => Some(Cifar::Hundred.classes()),
            DataSource::Idx
            | DataSource::ImageFolder
            | DataSource::Csv
            | DataSource::Text
            | DataSource::Ts
            | DataSource::Retrieval => None,
        }
    }

    /// Whether the source is images (an unlabeled transfer set can be made of them).
    pub fn is_images(&self) -> bool {
        matches!(
            self,
            DataSource::Embedded
                | DataSource::FashionMnist
                | DataSource::Idx
                | DataSource::Cifar10
                | DataSource::Cifar100
                | DataSource::ImageFolder
        )
    }

    /// Whether the source reads its files from `data.dir` and needs it.
    pub fn needs_dir(&self) -> bool {
        matches!(
            self,
            DataSource::Idx | DataSource::Cifar10 | DataSource::Cifar100 | DataSource::ImageFolder
        )
    }

    /// Loads the test split alone (what `distill eval` scores on), for a model reading `input`
    /// (`[channels, height, width]`): an image folder's images are read at that size and
    /// channel count.
    pub fn load_test(&self, dir: Option<&Path>, input: [usize; 3]) -> Result<Dataset> {
        match self {
            DataSource::Embedded => embedded_test(),
            DataSource::FashionMnist => {
                load_split(dir.unwrap_or(Path::new(FASHION_MNIST_DIR)), "t10k")
            }
            DataSource::Idx => load_split(self.need_dir(dir)?, "t10k"),
            DataSource::Cifar10 => load_cifar_test(Cifar::Ten, self.need_dir(dir)?),
            DataSource::Cifar100 => load_cifar_test(Cifar::Hundred, self.need_dir(dir)?),
            DataSource::ImageFolder => load_image_folder_test(self.need_dir(dir)?, input),
            DataSource::Csv | DataSource::Text | DataSource::Ts | DataSource::Retrieval => {
                Err(csv_needs_spec())
            }
        }
    }

    fn need_dir<'a>(&self, dir: Option<&'a Path>) -> Result<&'a Path> {
        dir.ok_or_else(|| {
            DistillError::Config(format!(
                "data.source = \"{}\" needs data.dir, the folder holding {}",
                self.name(),
                match self {
                    DataSource::Cifar10 => "CIFAR-10's binary batches (cifar-10-batches-bin)",
                    DataSource::Cifar100 => "CIFAR-100's binary files (cifar-100-binary)",
                    DataSource::ImageFolder => "train/<class>/ and test/<class>/ image folders",
                    _ => "the IDX files",
                }
            ))
        })
    }

    /// The name in experiment files.
    pub fn name(&self) -> &'static str {
        match self {
            DataSource::Embedded => "embedded",
            DataSource::FashionMnist => "fashion-mnist",
            DataSource::Idx => "idx",
            DataSource::Cifar10 => "cifar10",
            DataSource::Cifar100 => "cifar100",
            DataSource::ImageFolder => "image-folder",
            DataSource::Csv => "csv",
            DataSource::Text => "text",
            DataSource::Ts => "ts",
            DataSource::Retrieval => "retrieval",
        }
    }

    /// Loads the train and test splits; an image folder's images are resized to `size`
    /// (`[height, width]`) if given.
    pub fn load(&self, dir: Option<&Path>, size: Option<[usize; 2]>) -> Result<(Dataset, Dataset)> {
        match self {
            DataSource::Embedded => embedded(),
            DataSource::FashionMnist => load_idx_dir(dir.unwrap_or(Path::new(FASHION_MNIST_DIR))),
            DataSource::Idx => load_idx_dir(self.need_dir(dir)?),
            DataSource::Cifar10 => load_cifar(Cifar::Ten, self.need_dir(dir)?),
            DataSource::Cifar100 => load_cifar(Cifar::Hundred, self.need_dir(dir)?),
            DataSource::ImageFolder => load_image_folder(self.need_dir(dir)?, size),
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
        let err = DataSource::Idx.load(None, None).unwrap_err().to_string();
        assert!(err.contains("data.dir"), "{err}");
    }
}
