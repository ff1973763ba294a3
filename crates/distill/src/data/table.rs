//! Tabular data from a CSV file: numeric columns as features, text columns one-hot encoded, one
//! numeric column as the real target; a seeded random train/test split.

use std::collections::BTreeSet;
use std::path::Path;

use rand::seq::SliceRandom;
use rand::SeedableRng;

use super::dataset::{Dataset, Inputs, Targets};
use crate::error::{DistillError, Result};

/// How to read a CSV file.
#[derive(Debug, Clone, PartialEq)]
pub struct CsvSpec<'a> {
    /// The file.
    pub path: &'a Path,
    /// The target column.
    pub target: &'a str,
    /// Fraction of the rows held out for testing, in `(0, 1)`.
    pub test_fraction: f64,
    /// Seed of the split's shuffle.
    pub split_seed: u64,
}

/// A column of the file.
enum Column {
    Numeric(Vec<f64>),
    /// Category index per row, with the sorted category names.
    Categorical(Vec<usize>, Vec<String>),
}

/// Reads the file into a train and a test split. Columns without a header name (an index column
/// written by R or pandas) are skipped. Every feature is numeric or one-hot encoded (categories
/// sorted by name, named `column=value`).
pub fn load_csv(spec: &CsvSpec<'_>) -> Result<(Dataset, Dataset)> {
    let bad = |reason: String| DistillError::BadData {
        path: spec.path.to_path_buf(),
        reason,
    };
    let mut reader = csv::Reader::from_path(spec.path).map_err(|e| match e.kind() {
        csv::ErrorKind::Io(_) => DistillError::io(
            "reading CSV file",
            spec.path,
            std::io::Error::other(e.to_string()),
        ),
        _ => bad(e.to_string()),
    })?;
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| bad(format!("reading the header row: {e}")))?
        .iter()
        .map(str::to_string)
        .collect();
    let mut cells: Vec<Vec<String>> = vec![Vec::new(); headers.len()];
    for (r, record) in reader.records().enumerate() {
        let record = record.map_err(|e| bad(format!("row {}: {e}", r + 2)))?;
        for (c, v) in record.iter().enumerate() {
            cells[c].push(v.trim().to_string());
        }
    }
    let rows = cells.first().map_or(0, Vec::len);
    if rows < 2 {
        return Err(bad(format!(
            "the file holds {rows} data rows; a train/test split needs at least 2"
        )));
    }
    let names: Vec<&str> = headers.iter().map(String::as_str).collect();
    let target_col = names
        .iter()
        .position(|h| *h == spec.target)
        .ok_or_else(|| DistillError::unknown("CSV column (data.target)", spec.target, &names))?;
    let mut columns: Vec<(String, Column)> = Vec::new();
    let mut target = Vec::with_capacity(rows);
    for (c, values) in cells.into_iter().enumerate() {
        let name = headers[c].clone();
        if name.is_empty() {
            continue;
        }
        let numeric: Option<Vec<f64>> = values
            .iter()
            .map(|v| v.parse::<f64>().ok().filter(|x| x.is_finite()))
            .collect();
        if c == target_col {
            target = numeric.ok_or_else(|| {
                let (row, v) = values
                    .iter()
                    .enumerate()
                    .find(|(_, v)| v.parse::<f64>().map_or(true, |x| !x.is_finite()))
                    .expect("a non-numeric cell exists");
                bad(format!(
                    "target column '{name}' must be numeric for regression, but row {} holds {v:?}",
                    row + 2
                ))
            })?;
            continue;
        }
        let column = match numeric {
            Some(v) => Column::Numeric(v),
            None => {
                let cats: Vec<String> = values
                    .iter()
                    .cloned()
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .collect();
                let idx = values
                    .iter()
                    .map(|v| cats.binary_search(v).expect("every value is a category"))
                    .collect();
                Column::Categorical(idx, cats)
            }
        };
        columns.push((name, column));
    }
    let mut feature_names = Vec::new();
    for (name, col) in &columns {
        match col {
            Column::Numeric(_) => feature_names.push(name.clone()),
            Column::Categorical(_, cats) => {
                feature_names.extend(cats.iter().map(|c| format!("{name}={c}")))
            }
        }
    }
    if feature_names.is_empty() {
        return Err(bad(format!(
            "no feature column besides the target '{}'",
            spec.target
        )));
    }
    let features = feature_names.len();
    let row = |i: usize| -> Vec<f32> {
        let mut out = Vec::with_capacity(features);
        for (_, col) in &columns {
            match col {
                Column::Numeric(v) => out.push(v[i] as f32),
                Column::Categorical(idx, cats) => {
                    out.extend((0..cats.len()).map(|k| f32::from(u8::from(k == idx[i]))))
                }
            }
        }
        out
    };
    let mut order: Vec<usize> = (0..rows).collect();
    order.shuffle(&mut rand::rngs::SmallRng::seed_from_u64(spec.split_seed));
    let n_test = ((rows as f64 * spec.test_fraction).round() as usize).clamp(1, rows - 1);
    let split = |idx: &[usize]| Dataset {
        inputs: Inputs::Table {
            values: idx.iter().flat_map(|&i| row(i)).collect(),
            features,
            names: feature_names.clone(),
        },
        targets: Targets::Real {
            values: idx.iter().map(|&i| target[i] as f32).collect(),
            dims: 1,
        },
        num_classes: 1,
    };
    Ok((split(&order[n_test..]), split(&order[..n_test])))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(text: &str) -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), text).unwrap();
        f
    }

    #[test]
    fn numeric_and_categorical_columns_and_a_seeded_split() {
        let f = write(
            "\"\",size,cut,price\n1,1.5,Good,10\n2,2.0,Ideal,20\n3,0.5,Good,5\n4,1.0,Fair,8\n5,3.0,Ideal,30\n",
        );
        let spec = CsvSpec {
            path: f.path(),
            target: "price",
            test_fraction: 0.4,
            split_seed: 3,
        };
        let (train, test) = load_csv(&spec).unwrap();
        assert_eq!((train.len(), test.len()), (3, 2));
        let Inputs::Table { names, values, .. } = &train.inputs else {
            panic!()
        };
        assert_eq!(names, &["size", "cut=Fair", "cut=Good", "cut=Ideal"]);
        // every row: its size, then a one-hot cut, and its price as the target
        let Targets::Real { values: y, .. } = &train.targets else {
            panic!()
        };
        for (r, price) in values.chunks(4).zip(y) {
            let expected = [
                (1.5, 10.0),
                (2.0, 20.0),
                (0.5, 5.0),
                (1.0, 8.0),
                (3.0, 30.0),
            ]
            .iter()
            .find(|(s, _)| *s == r[0])
            .unwrap()
            .1;
            assert_eq!(*price, expected);
            assert_eq!(r[1..].iter().sum::<f32>(), 1.0);
        }
        let again = load_csv(&spec).unwrap();
        assert_eq!(again.0.len(), 3);
        assert_eq!(train.geometry(), [1, 1, 4]);
    }

    #[test]
    fn bad_files_name_the_problem() {
        let f = write("a,b\n1,2\n3,4\n");
        let spec = |t: &'static str| CsvSpec {
            path: f.path(),
            target: t,
            test_fraction: 0.5,
            split_seed: 0,
        };
        let e = load_csv(&spec("c")).unwrap_err().to_string();
        assert!(e.contains("CSV column") && e.contains("'c'"), "{e}");
        let g = write("a,b\n1,x\n3,4\n");
        let e = load_csv(&CsvSpec {
            path: g.path(),
            ..spec("b")
        })
        .unwrap_err()
        .to_string();
        assert!(e.contains("must be numeric") && e.contains("row 2"), "{e}");
        let h = write("a,b\n1,2,3\n");
        assert!(load_csv(&CsvSpec {
            path: h.path(),
            ..spec("b")
        })
        .is_err());
        let missing = Path::new("/nonexistent/file.csv");
        let e = load_csv(&CsvSpec {
            path: missing,
            ..spec("b")
        })
        .unwrap_err()
        .to_string();
        assert!(e.contains("/nonexistent/file.csv"), "{e}");
    }
}
