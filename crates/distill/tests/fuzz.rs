//! Bounded fuzzing of the two parsers that read user input: the experiment file (TOML → plan)
//! and the IDX reader (bytes → data set). Neither may panic, whatever it is given: every input
//! is either accepted or refused with an error. The case counts keep each property to about a
//! second in release mode.

use distill::config::{ExperimentConfig, SweepConfig};
use distill::data::idx::{encode_idx, parse_idx, IdxArray};
use distill::data::Dataset;
use proptest::prelude::*;
use std::path::Path;

const CONFIG: &str = r#"name = "fuzz"
seeds = [1, 2]
output_dir = "runs"
[data]
source = "embedded"
train_limit = 100
test_limit = 50
augment = { crop_padding = 2, hflip = true }
[train]
epochs = 2
batch_size = 16
lr = 0.05
schedule = "multistep"
milestones = [1]
[[teacher]]
model = "lenet"
width = 2
cache_mb = 16
[[student]]
name = "kd"
model = "mlp"
hidden = [32]
dropout = 0.1
[[student.loss]]
method = "ce"
weight = 0.1
[[student.loss]]
method = "kd"
weight = 0.9
temperature = 4.0
[[student.loss]]
method = "dkd"
warmup = 1
[[student.loss]]
method = "at"
student_taps = ["conv1"]
teacher_taps = ["conv1"]
"#;

/// Values a user might put on the right of any `key =`.
fn values() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("nan".to_string()),
        Just("inf".to_string()),
        Just("-inf".to_string()),
        Just("0".to_string()),
        Just("-1".to_string()),
        Just("0.0".to_string()),
        Just("1e308".to_string()),
        Just("18446744073709551615".to_string()),
        Just("\"\"".to_string()),
        Just("\"..\"".to_string()),
        Just("[]".to_string()),
        Just("[0, 0]".to_string()),
        Just("{}".to_string()),
        Just("true".to_string()),
        any::<i64>().prop_map(|v| v.to_string()),
        any::<f64>().prop_map(|v| format!("{v:?}")),
        "[a-z_]{0,8}".prop_map(|v| format!("\"{v}\"")),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() })]

    /// Replaces the value of one line of a valid experiment file.
    #[test]
    fn experiment_values_never_panic(line in 0usize..40, value in values()) {
        let lines: Vec<&str> = CONFIG.lines().collect();
        let i = line % lines.len();
        let edited: Vec<String> = lines
            .iter()
            .enumerate()
            .map(|(k, l)| match (k == i, l.split_once(" = ")) {
                (true, Some((key, _))) => format!("{key} = {value}"),
                _ => l.to_string(),
            })
            .collect();
        let text = edited.join("\n");
        if let Ok(cfg) = ExperimentConfig::from_toml(&text, "fuzz.toml") {
            if let Ok(plan) = cfg.validate() {
                // what is accepted can be written and read back to the same plan
                let again = ExperimentConfig::from_toml(&plan.to_toml(), "resolved.toml")
                    .and_then(|c| c.validate());
                prop_assert_eq!(again.ok(), Some(plan));
            }
        }
    }

    /// Deletes, duplicates or garbles one line.
    #[test]
    fn experiment_structure_never_panics(line in 0usize..40, how in 0u8..3, junk in "\\PC{0,20}") {
        let mut lines: Vec<String> = CONFIG.lines().map(String::from).collect();
        let i = line % lines.len();
        match how {
            0 => { lines.remove(i); }
            1 => { let l = lines[i].clone(); lines.insert(i, l); }
            _ => lines[i] = junk.clone(),
        }
        let text = lines.join("\n");
        let _ = ExperimentConfig::from_toml(&text, "fuzz.toml").and_then(|c| c.validate());
        let _ = SweepConfig::from_toml(&text, "fuzz.toml").and_then(|s| s.expand());
    }

    /// Arbitrary bytes.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        let _ = parse_idx(&bytes, Path::new("fuzz"));
        let text = String::from_utf8_lossy(&bytes);
        let _ = ExperimentConfig::from_toml(&text, "fuzz.toml").and_then(|c| c.validate());
    }

    /// IDX files with a plausible header: any dimensions, any amount of data, optionally
    /// gzipped and cut short; loaded as a data set when they parse.
    #[test]
    fn idx_files_never_panic(
        dims in proptest::collection::vec(0usize..6, 1..5),
        extra in -3i64..3,
        gz in any::<bool>(),
        cut in 0usize..8,
    ) {
        let n: usize = dims.iter().product();
        let len = (n as i64 + extra).max(0) as usize;
        let images = IdxArray { dims: dims.clone(), data: (0..len).map(|v| v as u8).collect() };
        let labels = IdxArray { dims: vec![dims[0]], data: (0..dims[0]).map(|v| (v % 3) as u8).collect() };
        let mut bytes = encode_idx(&images);
        if gz {
            use std::io::Write;
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(&bytes).unwrap();
            bytes = e.finish().unwrap();
        }
        bytes.truncate(bytes.len().saturating_sub(cut));
        if let Ok(ds) = Dataset::from_idx_bytes(&bytes, &encode_idx(&labels), "fuzz") {
            prop_assert!(!ds.is_empty() && ds.sample_len() > 0);
            let norm = ds.normalization();
            prop_assert_eq!(norm.mean.len(), ds.geometry()[0]);
        }
    }
}
