//! Pins a short run's metrics so that refactors of the training layer cannot change results
//! unnoticed: a quickstart-sized experiment (a teacher trained here, a student from scratch and
//! the same student with KD, one seed) must log the same losses and accuracies as recorded.
//!
//! Floating-point results depend on the CPU's SIMD path (an AVX-512 CPU rounds matrix products
//! differently from an AVX2 one) and on the build's features. `tests/pinned/short-run.json`
//! therefore holds one record per (SIMD level, build): on a machine and build that match a record
//! the numbers must be equal **exactly**; elsewhere they are compared with the first record
//! within a small tolerance (a few test images, 0.5 % of a loss), which still catches any change
//! of behaviour while letting a user's CPU round differently. `DISTILL_PIN_RECORD=1` adds (or
//! replaces) the record of the current machine and build.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use distill::run::{run_experiment, RunOptions};
use distill::train::Progress;

const SHORT_RUN: &str = r#"
name = "pinned"
seeds = [1]
[data]
train_limit = 1000
test_limit = 500
[train]
epochs = 3
batch_size = 50
lr = 0.02
momentum = 0.9
weight_decay = 5e-4
schedule = "cosine"
[[teacher]]
model = "lenet"
train = { epochs = 2, lr = 0.05 }
[[student]]
name = "scratch"
model = "mlp"
hidden = [64]
train_limit = 300
[[student.loss]]
method = "ce"
[[student]]
name = "kd"
model = "mlp"
hidden = [64]
train_limit = 300
[[student.loss]]
method = "ce"
weight = 0.1
[[student.loss]]
method = "kd"
weight = 0.9
"#;

/// The machine's SIMD level and the build, as a record key.
fn signature() -> String {
    #[cfg(target_arch = "x86_64")]
    let simd = if std::arch::is_x86_feature_detected!("avx512f") {
        "avx512"
    } else if std::arch::is_x86_feature_detected!("fma") {
        "avx2-fma"
    } else if std::arch::is_x86_feature_detected!("avx") {
        "avx"
    } else {
        "sse"
    };
    #[cfg(not(target_arch = "x86_64"))]
    let simd = "generic";
    format!(
        "{}-{simd}-{}",
        std::env::consts::ARCH,
        if cfg!(feature = "x86-v4") {
            "default"
        } else {
            "no-default-features"
        }
    )
}

type Values = BTreeMap<String, f64>;

/// Every `metrics.jsonl` of the run, keyed by its job (folder relative to the run), as the
/// numbers each epoch logged, named `e{epoch} {key}`.
fn measured(run: &Path) -> BTreeMap<String, Values> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.file_name().is_some_and(|n| n == "metrics.jsonl") {
                out.push(p);
            }
        }
    }
    let mut files = Vec::new();
    walk(run, &mut files);
    let mut out = BTreeMap::new();
    for f in files {
        let job = f
            .parent()
            .unwrap()
            .strip_prefix(run)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        let mut values = Values::new();
        for line in std::fs::read_to_string(&f).unwrap().lines() {
            let r: serde_json::Value = serde_json::from_str(line).unwrap();
            let e = r["epoch"].as_u64().unwrap();
            let mut put = |k: &str, v: &serde_json::Value| {
                if let Some(v) = v.as_f64() {
                    values.insert(format!("e{e} {k}"), v);
                }
            };
            for k in ["train_loss", "train_acc", "test_acc", "agreement"] {
                put(k, &r[k]);
            }
            for (name, v) in r["terms"].as_object().unwrap() {
                put(&format!("term {name}"), v);
            }
        }
        out.insert(job, values);
    }
    out
}

#[test]
fn a_short_run_logs_the_pinned_metrics() {
    let _guard = common::serial();
    let tmp = tempfile::tempdir().unwrap();
    let plan = common::plan(SHORT_RUN);
    let opts = RunOptions {
        run_dir: Some(tmp.path().join("run")),
        progress: Progress::Quiet,
        ..RunOptions::default()
    };
    run_experiment(&plan, &opts).unwrap();
    let got = measured(&tmp.path().join("run"));
    assert_eq!(got.len(), 3, "teacher and two students: {:?}", got.keys());

    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/pinned/short-run.json");
    let mut records: BTreeMap<String, BTreeMap<String, Values>> =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let sig = signature();
    if std::env::var_os("DISTILL_PIN_RECORD").is_some() {
        records.insert(sig, got);
        std::fs::write(
            &file,
            serde_json::to_string_pretty(&records).unwrap() + "\n",
        )
        .unwrap();
        return;
    }
    let (exact, pinned) = match records.get(&sig) {
        Some(r) => (true, r),
        None => (false, records.values().next().expect("at least one record")),
    };
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        pinned.keys().collect::<Vec<_>>(),
        "the run's jobs"
    );
    for (job, values) in &got {
        let want = &pinned[job];
        assert_eq!(
            values.keys().collect::<Vec<_>>(),
            want.keys().collect::<Vec<_>>(),
            "{job}: logged values"
        );
        for ((k, g), w) in values.iter().zip(want.values()) {
            if exact {
                assert_eq!(
                    g.to_bits(),
                    w.to_bits(),
                    "{job}, {k}: {g} vs pinned {w} (same SIMD level and build as the record: {sig})"
                );
            } else {
                // Accuracies and agreement: 5 of 500 test images (3 of 300 training images).
                // Losses: 0.5 %.
                let tol = if k.ends_with("_acc") || k.ends_with("agreement") {
                    0.01
                } else {
                    5e-3 * w.abs()
                };
                assert!(
                    (g - w).abs() <= tol,
                    "{job}, {k}: {g} vs pinned {w} (tolerance {tol}; no record for {sig})"
                );
            }
        }
    }
}
