//! CIFAR-10 and CIFAR-100 in their binary format (Krizhevsky, *Learning Multiple Layers of
//! Features from Tiny Images*, 2009; <https://www.cs.toronto.edu/~kriz/cifar.html>, the
//! "binary version" archives): fixed-size records of label byte(s) and a 32×32 colour image, its
//! red, green and blue planes one after the other, row by row.
//!
//! - CIFAR-10 (`cifar-10-batches-bin/`): `data_batch_1.bin` … `data_batch_5.bin` (training) and
//!   `test_batch.bin`; a record is 1 label byte (0–9) + 3,072 pixel bytes.
//! - CIFAR-100 (`cifar-100-binary/`): `train.bin` and `test.bin`; a record is 1 coarse label
//!   byte (0–19, the superclass), 1 fine label byte (0–99) + 3,072 pixel bytes. The fine labels
//!   are the classes.
//!
//! The Python pickles of the same sets are not read: download the binary version.

use std::path::{Path, PathBuf};

use super::dataset::{Dataset, Inputs, Targets};
use crate::error::{DistillError, Result};

/// Pixels of one 3×32×32 image.
const IMAGE: usize = 3 * 32 * 32;

/// Which CIFAR set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cifar {
    /// 10 classes, 50,000 / 10,000 images.
    Ten,
    /// 100 (fine) classes, 50,000 / 10,000 images.
    Hundred,
}

impl Cifar {
    /// The number of classes.
    pub fn classes(self) -> usize {
        match self {
            Cifar::Ten => 10,
            Cifar::Hundred => 100,
        }
    }

    /// Label bytes before each image.
    fn label_bytes(self) -> usize {
        match self {
            Cifar::Ten => 1,
            Cifar::Hundred => 2,
        }
    }

    /// The folder the archive unpacks to.
    fn subfolder(self) -> &'static str {
        match self {
            Cifar::Ten => "cifar-10-batches-bin",
            Cifar::Hundred => "cifar-100-binary",
        }
    }

    /// The training and test files.
    fn files(self) -> (Vec<String>, &'static str) {
        match self {
            Cifar::Ten => (
                (1..=5).map(|i| format!("data_batch_{i}.bin")).collect(),
                "test_batch.bin",
            ),
            Cifar::Hundred => (vec!["train.bin".into()], "test.bin"),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Cifar::Ten => "CIFAR-10",
            Cifar::Hundred => "CIFAR-100",
        }
    }

    /// The folder holding the files: `dir` itself, or the archive's folder inside it.
    fn folder(self, dir: &Path) -> PathBuf {
        let inner = dir.join(self.subfolder());
        if !dir.join(self.files().1).exists() && inner.join(self.files().1).exists() {
            inner
        } else {
            dir.to_path_buf()
        }
    }
}

/// Reads CIFAR records from `bytes` (the contents of `path`) into `pixels` and `labels`.
fn read_records(
    kind: Cifar,
    path: &Path,
    bytes: &[u8],
    pixels: &mut Vec<u8>,
    labels: &mut Vec<u8>,
) -> Result<()> {
    let record = kind.label_bytes() + IMAGE;
    if bytes.is_empty() || bytes.len() % record != 0 {
        return Err(DistillError::bad_data(
            path,
            format!(
                "{} bytes is not a whole number of {}-byte {} records ({} label byte{} + a 3×32×32 image); this is not a {} binary file: download the binary version (e.g. scripts/fetch-data.sh {}), not the Python one",
                bytes.len(),
                record,
                kind.name(),
                kind.label_bytes(),
                if kind.label_bytes() == 1 { "" } else { "s" },
                kind.name(),
                match kind {
                    Cifar::Ten => "cifar10",
                    Cifar::Hundred => "cifar100",
                }
            ),
        ));
    }
    for (i, r) in bytes.chunks_exact(record).enumerate() {
        let label = r[kind.label_bytes() - 1];
        if label as usize >= kind.classes() {
            return Err(DistillError::bad_data(
                path,
                format!(
                    "record #{i} has label {label}, outside {}'s {} classes; the file is corrupt or of the other CIFAR set (CIFAR-10 records have 1 label byte, CIFAR-100 records 2)",
                    kind.name(),
                    kind.classes()
                ),
            ));
        }
        labels.push(label);
        pixels.extend_from_slice(&r[kind.label_bytes()..]);
    }
    Ok(())
}

/// Loads files of CIFAR records as one split.
fn load_split(kind: Cifar, folder: &Path, files: &[String]) -> Result<Dataset> {
    let (mut pixels, mut labels) = (Vec::new(), Vec::new());
    for f in files {
        let path = folder.join(f);
        let bytes = std::fs::read(&path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                DistillError::bad_data(
                    &path,
                    format!(
                        "{} file missing: data.dir must hold {} (or its folder {}/), as the binary archive unpacks",
                        kind.name(),
                        kind.files().0.join(", ") + ", " + kind.files().1,
                        kind.subfolder()
                    ),
                )
            } else {
                DistillError::io("reading", &path, e)
            }
        })?;
        read_records(kind, &path, &bytes, &mut pixels, &mut labels)?;
    }
    Ok(Dataset {
        inputs: Inputs::Image {
            pixels,
            channels: 3,
            height: 32,
            width: 32,
        },
        targets: Targets::Class(labels),
        num_classes: kind.classes(),
        groups: None,
    })
}

/// Loads the training and test splits of a CIFAR set from `dir` (the binary files, or the folder
/// the archive unpacks to).
pub fn load_cifar(kind: Cifar, dir: &Path) -> Result<(Dataset, Dataset)> {
    let train = load_split(kind, &kind.folder(dir), &kind.files().0)?;
    Ok((train, load_cifar_test(kind, dir)?))
}

/// Loads the test split alone (what `distill eval` scores on).
pub fn load_cifar_test(kind: Cifar, dir: &Path) -> Result<Dataset> {
    let folder = kind.folder(dir);
    load_split(kind, &folder, &[kind.files().1.to_string()])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes `n` records of a CIFAR set: record `i` has label `i % classes` and pixel values
    /// `(i + p) % 256` at byte `p` of its image.
    fn write(kind: Cifar, path: &Path, n: usize, offset: usize) {
        let mut out = Vec::new();
        for i in 0..n {
            let label = ((i + offset) % kind.classes()) as u8;
            if kind == Cifar::Hundred {
                out.push(label / 5); // coarse
            }
            out.push(label);
            out.extend((0..IMAGE).map(|p| ((i + offset + p) % 256) as u8));
        }
        std::fs::write(path, out).unwrap();
    }

    #[test]
    fn cifar10_binary_batches_load_as_colour_images() {
        let dir = tempfile::tempdir().unwrap();
        let inner = dir.path().join("cifar-10-batches-bin");
        std::fs::create_dir(&inner).unwrap();
        for b in 1..=5 {
            write(
                Cifar::Ten,
                &inner.join(format!("data_batch_{b}.bin")),
                3,
                3 * (b - 1),
            );
        }
        write(Cifar::Ten, &inner.join("test_batch.bin"), 4, 100);
        // the folder the archive unpacks to is found inside data.dir
        let (train, test) = load_cifar(Cifar::Ten, dir.path()).unwrap();
        assert_eq!((train.len(), test.len()), (15, 4));
        assert_eq!((train.geometry(), train.num_classes), ([3, 32, 32], 10));
        assert_eq!(
            train.labels().unwrap(),
            &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1, 2, 3, 4]
        );
        let Inputs::Image { pixels, .. } = &train.inputs else {
            panic!("images")
        };
        // image 4 (batch 2, record 1): red plane first, byte p holds (4 + p) % 256
        assert_eq!(pixels[4 * IMAGE], 4);
        assert_eq!(pixels[4 * IMAGE + 1024], ((4 + 1024) % 256) as u8);
        assert_eq!(
            load_cifar_test(Cifar::Ten, &inner)
                .unwrap()
                .labels()
                .unwrap(),
            &[0, 1, 2, 3]
        );
    }

    #[test]
    fn cifar100_records_carry_the_fine_label() {
        let dir = tempfile::tempdir().unwrap();
        write(Cifar::Hundred, &dir.path().join("train.bin"), 5, 95);
        write(Cifar::Hundred, &dir.path().join("test.bin"), 2, 0);
        let (train, test) = load_cifar(Cifar::Hundred, dir.path()).unwrap();
        assert_eq!(train.labels().unwrap(), &[95, 96, 97, 98, 99]);
        assert_eq!((test.len(), test.num_classes), (2, 100));
    }

    #[test]
    fn a_wrong_or_missing_file_names_the_problem() {
        let dir = tempfile::tempdir().unwrap();
        let e = load_cifar(Cifar::Ten, dir.path()).unwrap_err().to_string();
        assert!(
            e.contains("data_batch_1.bin") && e.contains("cifar-10-batches-bin"),
            "{e}"
        );
        // CIFAR-100 records read as CIFAR-10 do not divide into 3,073-byte records
        write(Cifar::Hundred, &dir.path().join("test_batch.bin"), 3, 0);
        let e = load_cifar_test(Cifar::Ten, dir.path())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("3073-byte CIFAR-10 records") && e.contains("binary version"),
            "{e}"
        );
        // a label outside the classes
        let mut bytes = vec![0u8; 3073];
        bytes[0] = 10;
        std::fs::write(dir.path().join("test_batch.bin"), bytes).unwrap();
        let e = load_cifar_test(Cifar::Ten, dir.path())
            .unwrap_err()
            .to_string();
        assert!(e.contains("record #0 has label 10"), "{e}");
    }
}
