//! Sweeps record a diverging recipe in the table and go on.

mod common;

use common::serial;
use distill::config::SweepConfig;
use distill::run::run_sweep;
use distill::run::RunOptions;
use distill::train::Progress;

#[test]
fn a_diverging_recipe_is_recorded_and_the_sweep_goes_on() {
    let _serial = serial();
    let cfg = SweepConfig::from_toml(
        r#"
name = "s"
seeds = [1]
[data]
train_limit = 200
test_limit = 100
[train]
epochs = 1
batch_size = 32
[[pair]]
teacher = { model = "mlp", hidden = [16] }
student = { model = "mlp", hidden = [8] }
[[recipe]]
name = "exploding"
train = { lr = 1e30 }
[[recipe.loss]]
method = "ce"
[[recipe]]
name = "KD"
[[recipe.loss]]
method = "kd"
"#,
        "s.toml",
    )
    .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let opts = RunOptions {
        run_dir: Some(tmp.path().join("s")),
        progress: Progress::Quiet,
        ..Default::default()
    };
    let report = run_sweep(&cfg, &opts).unwrap();
    let names: Vec<&str> = report.rows.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "mlp→mlp · teacher",
            "mlp→mlp · exploding [diverged: 1/1 seeds]",
            "mlp→mlp · KD"
        ]
    );
    assert!(report.rows[1].best.0.is_nan() && report.rows[2].best.0 > 0.0);
    let table = std::fs::read_to_string(tmp.path().join("s/results.md")).unwrap();
    assert!(
        table.contains(
            "| mlp→mlp · exploding [diverged: 1/1 seeds] | mlp | 0 | — | — | — | — | — |"
        ),
        "{table}"
    );
}
