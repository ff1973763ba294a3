//! End-to-end tests of the `distill` binary on small data.

use std::path::Path;
use std::process::{Command, Output};

use distill::data::idx::{encode_idx, IdxArray};

const TINY: &str = r#"
name = "tiny"
seeds = [1, 2]
[data]
train_limit = 200
test_limit = 100
[train]
epochs = 2
batch_size = 32
[[teacher]]
model = "mlp"
hidden = [32]
[[student]]
name = "scratch"
model = "mlp"
hidden = [8]
[[student.loss]]
method = "ce"
[[student]]
name = "kd"
model = "mlp"
hidden = [8]
[[student.loss]]
method = "ce"
weight = 0.1
[[student.loss]]
method = "kd"
"#;

fn distill(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_distill"))
        .args(args)
        .output()
        .expect("binary runs")
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn write(dir: &Path, name: &str, body: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, body).unwrap();
    p.to_string_lossy().into_owned()
}

/// Fails on a non-zero exit or a panic, returning stdout and stderr.
fn ok(args: &[&str]) -> (String, String) {
    let o = distill(args);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{args:?} failed:\n{out}\n{err}");
    (out, err)
}

/// Expects a clean failure (exit 1, no panic) whose message contains `needle`.
fn fails_with(args: &[&str], needle: &str) {
    let o = distill(args);
    let (out, err) = text(&o);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{args:?} should fail with exit 1:\n{out}\n{err}"
    );
    assert!(!err.contains("panicked"), "{args:?} panicked:\n{err}");
    assert!(
        err.contains(needle),
        "{args:?}: expected '{needle}' in:\n{err}"
    );
}

#[test]
fn train_eval_resume_and_refuse_to_overwrite() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = write(tmp.path(), "tiny.toml", TINY);
    let out = tmp.path().join("run");
    let out_s = out.to_string_lossy().into_owned();
    let (table, _) = ok(&["train", &cfg, "--out", &out_s, "--no-progress"]);
    assert!(
        table.contains("| teacher | mlp |")
            && table.contains("| kd | mlp |")
            && table.contains(" ± "),
        "{table}"
    );
    for f in [
        "resolved.toml",
        "results.md",
        "results.csv",
        "curves.svg",
        "teachers/mlp/best/model.bpk",
        "students/kd/seed2/metrics.jsonl",
        "students/kd/seed2/last/optimizer.bpk",
    ] {
        assert!(out.join(f).exists(), "missing {f}");
    }
    let metrics = std::fs::read_to_string(out.join("students/kd/seed1/metrics.jsonl")).unwrap();
    assert_eq!(metrics.lines().count(), 2);
    assert!(metrics.contains("\"kd\"") && metrics.contains("\"agreement\""));

    fails_with(&["train", &cfg, "--out", &out_s], "--resume");
    let (again, _) = ok(&["train", &cfg, "--out", &out_s, "--resume", "--no-progress"]);
    assert_eq!(
        again.lines().find(|l| l.starts_with("| kd")),
        table.lines().find(|l| l.starts_with("| kd"))
    );

    let best = out.join("students/kd/seed1/best");
    let (scored, _) = ok(&["eval", &best.to_string_lossy()]);
    assert!(scored.contains("test accuracy"), "{scored}");
    fails_with(
        &["eval", &tmp.path().join("nope").to_string_lossy()],
        "no such checkpoint",
    );
}

#[test]
fn sweep_files_are_validated_like_experiments() {
    let tmp = tempfile::tempdir().unwrap();
    let sweep = r#"
name = "s"
[[pair]]
teacher = { model = "mlp", hidden = [16] }
student = { model = "mlp", hidden = [4] }
[[recipe]]
name = "KD"
[[recipe.loss]]
method = "kd"
temprature = 2.0
"#;
    fails_with(
        &["sweep", &write(tmp.path(), "s.toml", sweep)],
        "did you mean `temperature`",
    );
    let good = sweep.replace("temprature", "temperature");
    let (out, _) = ok(&[
        "sweep",
        &write(tmp.path(), "t.toml", &good),
        "--dump-config",
    ]);
    assert!(
        out.contains("# pair: mlp→mlp") && out.contains("temperature = 2.0"),
        "{out}"
    );
}

#[test]
fn dump_config_shows_resolved_defaults() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = write(tmp.path(), "tiny.toml", TINY);
    let (out, _) = ok(&["train", &cfg, "--dump-config"]);
    assert!(
        out.contains("momentum = 0.9")
            && out.contains("temperature = 4.0")
            && out.contains("schedule = \"cosine\""),
        "{out}"
    );
}

#[test]
fn listings_name_methods_models_and_citations() {
    let (m, _) = ok(&["methods"]);
    assert!(
        m.contains("`kd`")
            && m.contains("Hinton")
            && m.contains("`fitnet`")
            && m.contains("Romero"),
        "{m}"
    );
    for listed in distill::knowledge::METHODS.iter().map(|i| i.name) {
        assert!(m.contains(&format!("| `{listed}` |")), "{listed} missing");
    }
    assert!(
        m.contains("`gkd::generalized_jsd_loss`") && m.contains("TRL"),
        "{m}"
    );
    let (sc, _) = ok(&["schemes"]);
    for listed in distill::schemes::SCHEMES.iter().map(|i| i.name) {
        assert!(
            sc.contains(&format!("| `{listed}` |")),
            "{listed} missing:\n{sc}"
        );
    }
    let (z, _) = ok(&["models"]);
    for name in [
        "mlp",
        "lenet",
        "resnet8",
        "resnet110",
        "resnet8x4",
        "resnet32x4",
    ] {
        assert!(z.contains(&format!("`{name}`")), "{name} missing:\n{z}");
    }
}

#[test]
fn bad_configs_fail_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    fails_with(
        &[
            "train",
            &write(t, "a.toml", &TINY.replace("epochs = 2", "epoch = 2")),
        ],
        "did you mean `epochs`",
    );
    fails_with(
        &[
            "train",
            &write(t, "b.toml", &TINY.replace("epochs = 2", "epochs = \"two\"")),
        ],
        "epochs",
    );
    fails_with(
        &[
            "train",
            &write(
                t,
                "c.toml",
                &TINY.replace("method = \"kd\"", "method = \"kdd\""),
            ),
        ],
        "did you mean `kd`",
    );
    fails_with(
        &[
            "train",
            &write(
                t,
                "d.toml",
                &TINY.replace("hidden = [32]", "hidden = [32]\nwidth = 2"),
            ),
        ],
        "'width' does not apply",
    );
    fails_with(
        &[
            "train",
            &write(
                t,
                "e.toml",
                "name = \"x\"\n[[student]]\nmodel = \"mlp\"\n[[student.loss]]\nmethod = \"kd\"\n",
            ),
        ],
        "add a [[teacher]] section",
    );
    fails_with(
        &["train", &write(t, "f.toml", "this is not toml")],
        "f.toml",
    );
    fails_with(
        &["train", &t.join("missing.toml").to_string_lossy()],
        "reading experiment file",
    );
}

fn idx_dir(dir: &Path, n_images: usize, n_labels: usize) {
    std::fs::create_dir_all(dir).unwrap();
    for split in ["train", "t10k"] {
        let images = IdxArray {
            dims: vec![n_images, 8, 8],
            data: (0..n_images * 64).map(|i| (i % 251) as u8).collect(),
        };
        let labels = IdxArray {
            dims: vec![n_labels],
            data: (0..n_labels).map(|i| (i % 3) as u8).collect(),
        };
        std::fs::write(
            dir.join(format!("{split}-images-idx3-ubyte")),
            encode_idx(&images),
        )
        .unwrap();
        std::fs::write(
            dir.join(format!("{split}-labels-idx1-ubyte")),
            encode_idx(&labels),
        )
        .unwrap();
    }
}

#[test]
fn data_problems_fail_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    // The generated images carry no signal: a model stays at chance, which is not a collapse here.
    let with_dir = |dir: &Path| {
        TINY.replace(
            "[data]\n",
            &format!("[data]\nsource = \"idx\"\ndir = \"{}\"\n", dir.display()),
        )
        .replace(
            "batch_size = 32\n",
            "batch_size = 32\nstop_on_collapse = false\n",
        )
    };
    fails_with(
        &["train", &write(t, "m.toml", &with_dir(&t.join("absent")))],
        "fetch-data.sh",
    );

    let mismatch = t.join("mismatch");
    idx_dir(&mismatch, 40, 39);
    fails_with(
        &["train", &write(t, "n.toml", &with_dir(&mismatch))],
        "40 images but 39 labels",
    );

    let corrupt = t.join("corrupt");
    idx_dir(&corrupt, 40, 40);
    let p = corrupt.join("train-images-idx3-ubyte");
    let mut bytes = std::fs::read(&p).unwrap();
    bytes.truncate(bytes.len() - 10);
    std::fs::write(&p, &bytes).unwrap();
    fails_with(
        &["train", &write(t, "o.toml", &with_dir(&corrupt))],
        "truncated",
    );

    let magic = t.join("magic");
    idx_dir(&magic, 40, 40);
    std::fs::write(magic.join("t10k-labels-idx1-ubyte"), b"PK\x03\x04 not idx").unwrap();
    fails_with(
        &["train", &write(t, "p.toml", &with_dir(&magic))],
        "wrong magic",
    );

    // a good IDX folder of 8×8 images trains end to end
    let good = t.join("good");
    idx_dir(&good, 40, 40);
    let out = t.join("run-good").to_string_lossy().into_owned();
    ok(&[
        "train",
        &write(t, "q.toml", &with_dir(&good)),
        "--out",
        &out,
        "--no-progress",
    ]);

    // its 8×8 teacher does not fit the 28×28 embedded data: caught before training, nothing written
    let ckpt = t.join("run-good/teachers/mlp/best");
    let reuse = TINY.replace(
        "hidden = [32]\n",
        &format!("hidden = [32]\ncheckpoint = \"{}\"\n", ckpt.display()),
    );
    let out2 = t.join("run-mismatch");
    fails_with(
        &[
            "train",
            &write(t, "r.toml", &reuse),
            "--out",
            &out2.to_string_lossy(),
        ],
        "teacher checkpoint",
    );
    assert!(
        !out2.exists(),
        "nothing is written when the teacher does not fit"
    );
}
