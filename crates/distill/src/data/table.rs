//! Tabular data from a CSV file: numeric columns as features, text columns one-hot encoded, one
//! numeric column as the real target; a seeded random train/test split. With a group column,
//! rows are the candidates of ranking lists (a query id per row), the target is their graded
//! relevance, and the split holds out whole groups.

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
    /// The column naming each row's group (a query id): the rows become ranking lists and the
    /// target their relevance grades.
    pub group: Option<&'a str>,
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
    let group_col = match spec.group {
        Some(g) => Some(
            names
                .iter()
                .position(|h| *h == g)
                .ok_or_else(|| DistillError::unknown("CSV column (data.group)", g, &names))?,
        ),
        None => None,
    };
    if group_col == Some(target_col) {
        return Err(bad(format!(
            "data.group and data.target name the same column '{}'; the group is the query id, the target the relevance",
            spec.target
        )));
    }
    let mut columns: Vec<(String, Column)> = Vec::new();
    let mut target = Vec::with_capacity(rows);
    let mut group_ids: Vec<String> = Vec::new();
    for (c, values) in cells.into_iter().enumerate() {
        let name = headers[c].clone();
        if Some(c) == group_col {
            group_ids = values;
            continue;
        }
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
                    "target column '{name}' must be numeric, but row {} holds {v:?}",
                    row + 2
                ))
            })?;
            if group_col.is_some() {
                if let Some((row, v)) = target.iter().enumerate().find(|(_, v)| **v < 0.0) {
                    return Err(bad(format!(
                        "relevance column '{name}' must hold grades ≥ 0, but row {} holds {v}",
                        row + 2
                    )));
                }
            }
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
    // The units the split shuffles: single rows, or whole groups (in order of first appearance,
    // each holding its rows in file order).
    let units: Vec<Vec<usize>> = if group_col.is_some() {
        let mut first: Vec<&str> = Vec::new();
        let mut members: std::collections::HashMap<&str, Vec<usize>> = Default::default();
        for (i, g) in group_ids.iter().enumerate() {
            let m = members.entry(g.as_str()).or_default();
            if m.is_empty() {
                first.push(g);
            }
            m.push(i);
        }
        first
            .iter()
            .map(|g| members.remove(g).unwrap_or_default())
            .collect()
    } else {
        (0..rows).map(|i| vec![i]).collect()
    };
    if units.len() < 2 {
        return Err(bad(format!(
            "the file holds {} group(s); a train/test split needs at least 2",
            units.len()
        )));
    }
    let mut order: Vec<usize> = (0..units.len()).collect();
    order.shuffle(&mut rand::rngs::SmallRng::seed_from_u64(spec.split_seed));
    let n_test =
        ((units.len() as f64 * spec.test_fraction).round() as usize).clamp(1, units.len() - 1);
    let split = |chosen: &[usize]| {
        let idx: Vec<usize> = chosen.iter().flat_map(|&u| units[u].clone()).collect();
        let y: Vec<f32> = idx.iter().map(|&i| target[i] as f32).collect();
        Dataset {
            inputs: Inputs::Table {
                values: idx.iter().flat_map(|&i| row(i)).collect(),
                features,
                names: feature_names.clone(),
            },
            targets: if group_col.is_some() {
                Targets::Relevance(y)
            } else {
                Targets::Real { values: y, dims: 1 }
            },
            num_classes: 1,
            groups: group_col.map(|_| chosen.iter().map(|&u| units[u].len()).collect()),
        }
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
            group: None,
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
            group: None,
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

    #[test]
    fn a_group_column_makes_ranking_lists_and_splits_whole_groups() {
        let f = write("qid,x,rel\nq1,1,2\nq2,5,0\nq1,2,0\nq3,7,1\nq2,6,1\nq3,8,0\nq3,9,3\n");
        let spec = CsvSpec {
            path: f.path(),
            target: "rel",
            test_fraction: 0.34,
            split_seed: 1,
            group: Some("qid"),
        };
        let (train, test) = load_csv(&spec).unwrap();
        let (tr, te) = (train.groups.clone().unwrap(), test.groups.clone().unwrap());
        assert_eq!((tr.len(), te.len()), (2, 1));
        assert_eq!(tr.iter().sum::<usize>() + te.iter().sum::<usize>(), 7);
        // each group's rows stay together, in file order: x rises within every group
        for d in [&train, &test] {
            let Inputs::Table { values, names, .. } = &d.inputs else {
                panic!()
            };
            assert_eq!(names, &["x"]);
            for r in d.units() {
                assert!(values[r].windows(2).all(|w| w[0] < w[1]), "{values:?}");
            }
            assert!(matches!(d.targets, Targets::Relevance(_)));
        }
        let e = load_csv(&CsvSpec {
            group: Some("rel"),
            ..spec.clone()
        })
        .unwrap_err()
        .to_string();
        assert!(e.contains("same column"), "{e}");
        let g = write("qid,x,rel\nq1,1,-1\nq2,2,0\n");
        let e = load_csv(&CsvSpec {
            path: g.path(),
            ..spec
        })
        .unwrap_err()
        .to_string();
        assert!(e.contains("grades ≥ 0"), "{e}");
    }
}
