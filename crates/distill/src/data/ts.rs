//! The `.ts` time-series format of the UEA & UCR archives and sktime (`@problemName`, `@dimensions`,
//! `@equalLength`, `@classLabel true …`, then `@data` and one line per series: each dimension's
//! comma-separated values, dimensions separated by `:`, the class label last).
//!
//! Series of different lengths are zero-padded to the longest of both splits and keep their
//! lengths ([`Inputs::Sequence`]); a model reads the frames with a mask column.

use std::path::Path;

use super::dataset::{Dataset, Inputs, Targets};
use crate::error::{DistillError, Result};

/// One parsed `.ts` file: series (frames × dimensions, frame-major) and class indices.
#[derive(Debug, Clone, PartialEq)]
pub struct TsFile {
    /// Values per frame.
    pub dims: usize,
    /// The class labels as the header declares them, in order (a label's index is its class).
    pub labels: Vec<String>,
    /// Each series: `frames × dims` values, frame-major.
    pub series: Vec<Vec<f32>>,
    /// Each series' class index.
    pub classes: Vec<u8>,
}

/// Parses the text of a `.ts` file (classification: `@classLabel true`).
pub fn parse_ts(text: &str, path: &Path) -> Result<TsFile> {
    let mut dims = None;
    let mut labels: Option<Vec<String>> = None;
    let mut in_data = false;
    let (mut series, mut classes) = (Vec::new(), Vec::new());
    for (no, raw) in text.lines().enumerate() {
        let line = raw.trim();
        let at =
            |reason: String| DistillError::bad_data(path, format!("line {}: {reason}", no + 1));
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if !in_data {
            let lower = line.to_ascii_lowercase();
            let mut words = line.split_whitespace();
            let key = words.next().unwrap_or("").to_ascii_lowercase();
            match key.as_str() {
                "@dimensions" => {
                    dims = Some(
                        words
                            .next()
                            .and_then(|w| w.parse::<usize>().ok())
                            .filter(|&d| d > 0)
                            .ok_or_else(|| at("@dimensions needs a positive number".into()))?,
                    )
                }
                "@classlabel" => {
                    if words.next().map(str::to_ascii_lowercase).as_deref() != Some("true") {
                        return Err(at("@classLabel false: a file without class labels cannot train a classifier".into()));
                    }
                    let l: Vec<String> = words.map(str::to_string).collect();
                    if l.is_empty() || l.len() > 256 {
                        return Err(at(format!(
                            "@classLabel true must list 1 to 256 labels, got {}",
                            l.len()
                        )));
                    }
                    labels = Some(l);
                }
                "@data" => in_data = true,
                _ if lower.starts_with("@missing") && lower.ends_with("true") => {
                    return Err(at("@missing true: series with missing values ('?') are not supported; fill or drop them first".into()));
                }
                _ => {}
            }
            continue;
        }
        let labels = labels.as_ref().ok_or_else(|| {
            at("@data before @classLabel true: the header must declare the class labels".into())
        })?;
        let fields: Vec<&str> = line.split(':').collect();
        if fields.len() < 2 {
            return Err(at(
                "a series needs its values and its label, separated by ':'".into(),
            ));
        }
        let d = dims.unwrap_or(fields.len() - 1);
        if fields.len() != d + 1 {
            return Err(at(format!(
                "{} dimension(s) and a label expected ({} ':'-separated fields), got {} fields",
                d,
                d + 1,
                fields.len()
            )));
        }
        let label = fields[d].trim();
        let class = labels.iter().position(|l| l == label).ok_or_else(|| {
            at(format!(
                "label '{label}' is not among the header's @classLabel ({})",
                labels.join(" ")
            ))
        })?;
        let per_dim: Vec<Vec<f32>> = fields[..d]
            .iter()
            .map(|f| {
                f.split(',')
                    .map(|v| {
                        v.trim()
                            .parse::<f32>()
                            .map_err(|_| at(format!("'{}' is not a number", v.trim())))
                    })
                    .collect::<Result<Vec<f32>>>()
            })
            .collect::<Result<_>>()?;
        let frames = per_dim[0].len();
        if let Some(other) = per_dim.iter().find(|v| v.len() != frames) {
            return Err(at(format!(
                "the dimensions of one series must have the same length, got {frames} and {}",
                other.len()
            )));
        }
        if let Some(v) = per_dim.iter().flatten().find(|v| !v.is_finite()) {
            return Err(at(format!("non-finite value {v}")));
        }
        series.push(
            (0..frames)
                .flat_map(|t| per_dim.iter().map(move |dim| dim[t]))
                .collect(),
        );
        classes.push(class as u8);
        dims = Some(d);
    }
    let labels =
        labels.ok_or_else(|| DistillError::bad_data(path, "no @classLabel true header".into()))?;
    if series.is_empty() {
        return Err(DistillError::bad_data(path, "no series after @data".into()));
    }
    Ok(TsFile {
        dims: dims.unwrap_or(1),
        labels,
        series,
        classes,
    })
}

/// Reads and parses a `.ts` file.
pub fn read_ts(path: &Path) -> Result<TsFile> {
    let text = std::fs::read_to_string(path).map_err(|e| DistillError::io("reading", path, e))?;
    parse_ts(&text, path)
}

/// Loads a train and a test `.ts` file of the same problem as padded sequences.
pub fn load_ts(train: &Path, test: &Path) -> Result<(Dataset, Dataset)> {
    let (a, b) = (read_ts(train)?, read_ts(test)?);
    if a.dims != b.dims || a.labels != b.labels {
        return Err(DistillError::bad_data(
            test,
            format!(
                "the test file has {} dimensions and labels [{}], the training file {} and [{}]; give the two files of one problem",
                b.dims,
                b.labels.join(" "),
                a.dims,
                a.labels.join(" ")
            ),
        ));
    }
    let frames = |f: &TsFile| f.series.iter().map(|s| s.len() / f.dims).max().unwrap_or(0);
    let max_len = frames(&a).max(frames(&b));
    let dataset = |f: TsFile| -> Dataset {
        let lengths: Vec<usize> = f.series.iter().map(|s| s.len() / f.dims).collect();
        let mut values = vec![0f32; f.series.len() * max_len * f.dims];
        for (i, s) in f.series.iter().enumerate() {
            values[i * max_len * f.dims..i * max_len * f.dims + s.len()].copy_from_slice(s);
        }
        Dataset {
            inputs: Inputs::Sequence {
                values,
                lengths,
                max_len,
                dims: f.dims,
            },
            targets: Targets::Class(f.classes),
            num_classes: f.labels.len(),
            groups: None,
        }
    };
    Ok((dataset(a), dataset(b)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMALL: &str = "#comment\n@problemName Tiny\n@timeStamps false\n@missing false\n@univariate false\n@dimensions 2\n@equalLength false\n@classLabel true 1 2 3\n@data\n1,2,3:4,5,6:2\n0.5,-1:7,8:3\n";

    #[test]
    fn a_generated_ts_file_parses_into_padded_sequences() {
        let f = parse_ts(SMALL, Path::new("tiny.ts")).unwrap();
        assert_eq!(f.dims, 2);
        assert_eq!(f.classes, vec![1, 2]);
        // frame-major: (1, 4), (2, 5), (3, 6)
        assert_eq!(f.series[0], vec![1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
        let dir = tempfile::tempdir().unwrap();
        let (tr, te) = (dir.path().join("a_TRAIN.ts"), dir.path().join("a_TEST.ts"));
        std::fs::write(&tr, SMALL).unwrap();
        std::fs::write(&te, SMALL.replace("1,2,3:4,5,6:2", "9,9,9,9:1,1,1,1:1")).unwrap();
        let (train, test) = load_ts(&tr, &te).unwrap();
        // padded to the longest series of both files (4 frames), plus the mask column
        assert_eq!(train.geometry(), [1, 4, 3]);
        assert_eq!(test.geometry(), [1, 4, 3]);
        let Inputs::Sequence {
            values, lengths, ..
        } = &train.inputs
        else {
            panic!("sequences")
        };
        assert_eq!(lengths, &[3, 2]);
        assert_eq!(&values[..8], &[1.0, 4.0, 2.0, 5.0, 3.0, 6.0, 0.0, 0.0]);
        assert_eq!(test.labels(), Some(&[0u8, 2][..]));
    }

    #[test]
    fn malformed_files_name_the_line_and_the_fix() {
        let e = |text: &str| parse_ts(text, Path::new("x.ts")).unwrap_err().to_string();
        assert!(e(&SMALL.replace(":2\n", ":7\n")).contains("label '7' is not among"));
        assert!(e(&SMALL.replace("1,2,3:4,5,6", "1,2,3:4,5")).contains("same length"));
        assert!(e(&SMALL.replace("0.5,-1", "0.5,abc")).contains("'abc' is not a number"));
        assert!(e(&SMALL.replace("@missing false", "@missing true")).contains("missing values"));
        assert!(e(&SMALL.replace("1,2,3:4,5,6:2", "1,2,3:2")).contains("line 10"));
        assert!(e("@data\n1,2:1\n").contains("@classLabel"));
        assert!(e("@classLabel true 1 2\n@data\n1\n").contains("separated by ':'"));
    }
}
