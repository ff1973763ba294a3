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
        m.contains("`margin-mse` |") && m.contains("`gkd` |") && m.contains("TRL"),
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

const CHAIN: &str = r#"
name = "chain"
seeds = [1, 2]
[data]
train_limit = 200
[[data.view]]
name = "small"
downsample = 2
[train]
epochs = 2
batch_size = 32
stop_on_collapse = false
[[teacher]]
name = "big"
model = "mlp"
hidden = [32]
[[teacher]]
name = "ta"
model = "mlp"
hidden = [16]
view = "small"
from = "assistant"
[[ensemble]]
name = "big + ta"
teachers = ["big", "ta"]
[[student]]
name = "assistant"
model = "mlp"
hidden = [16]
view = "small"
[[student.loss]]
method = "ce"
weight = 0.1
[[student.loss]]
method = "kd"
[[student]]
name = "student"
model = "mlp"
hidden = [8]
view = "small"
[[student.loss]]
method = "kd"
teacher = "ta"
"#;

/// A teacher → assistant → student chain over two views: the assistant (reading 14×14 images)
/// learns from the full-resolution teacher, and its first seed's best checkpoint teaches the
/// last recipe, which runs no other teacher.
#[test]
fn a_recipe_student_teaches_later_recipes_on_another_view() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let out = t.join("run");
    let (table, log) = ok(&[
        "train",
        &write(t, "chain.toml", CHAIN),
        "--out",
        &out.to_string_lossy(),
        "--no-progress",
    ]);
    assert!(
        table.contains("| teacher big |")
            && table.contains("| assistant |")
            && table.contains("| student |")
            && table.contains("| big + ta | mlp+mlp | 28772 |")
            && !table.contains("teacher ta"),
        "{table}"
    );
    // The assistant reads the lower-resolution view, and its checkpoint says so.
    let best = out.join("students/assistant/seed1/best");
    let meta = std::fs::read_to_string(best.join("model.json")).unwrap();
    assert!(
        meta.contains("\"downsample\": 2")
            && meta.contains("\"input\": [\n    1,\n    28,\n    28"),
        "{meta}"
    );
    // `eval` feeds it the view it was trained on, and scores what the chain froze as teacher ta.
    let (scored, _) = ok(&["eval", &best.to_string_lossy()]);
    let accuracy = |s: &str| {
        s.split("accuracy ")
            .nth(1)
            .and_then(|r| r.split('%').next())
            .map(str::to_string)
    };
    let frozen = log
        .lines()
        .find(|l| l.starts_with("teacher ta: test"))
        .unwrap_or_else(|| panic!("no line for teacher ta in:\n{log}"));
    assert_eq!(accuracy(&scored), accuracy(frozen), "{scored}\n{frozen}");
    // 200 samples in batches of 32 are 7 batches an epoch: each teacher computes them once and
    // serves the other 3 epochs × 7 from its cache; `big` is not run for the last recipe.
    for (name, line) in [
        ("big", "21 batches served from the cache, 7 computed"),
        ("ta", "21 batches served from the cache, 7 computed"),
    ] {
        assert!(
            log.contains(&format!("teacher {name} cache: {line}")),
            "{name}:\n{log}"
        );
    }

    // Resuming the finished chain reloads the assistant as teacher ta and changes no row.
    let (again, _) = ok(&[
        "train",
        &t.join("chain.toml").to_string_lossy(),
        "--out",
        &out.to_string_lossy(),
        "--resume",
        "--no-progress",
    ]);
    let rows = |t: &str| -> Vec<String> {
        // every row without its wall time
        t.lines()
            .filter(|l| l.starts_with("| "))
            .map(|l| l.rsplitn(3, '|').nth(2).unwrap_or(l).to_string())
            .collect()
    };
    assert_eq!(rows(&again), rows(&table));

    // A recipe cannot read the teacher it trains itself (or one a later recipe trains).
    let own = CHAIN.replacen(
        "method = \"kd\"\n[[student]]",
        "method = \"kd\"\nteacher = \"ta\"\n[[student]]",
        1,
    );
    assert_ne!(own, CHAIN);
    fails_with(
        &["train", &write(t, "order.toml", &own)],
        "teacher 'ta' is not trained yet when this recipe runs",
    );
    fails_with(
        &[
            "train",
            &write(
                t,
                "arch.toml",
                &CHAIN.replacen("hidden = [16]", "hidden = [12]", 1),
            ),
        ],
        "whose student differs from the [[teacher]] section",
    );
    fails_with(
        &[
            "train",
            &write(
                t,
                "from.toml",
                &CHAIN.replace("from = \"assistant\"", "from = \"asistant\""),
            ),
        ],
        "did you mean 'assistant'",
    );
    fails_with(
        &[
            "train",
            &write(
                t,
                "view.toml",
                &CHAIN.replace("view = \"small\"\nfrom", "view = \"smal\"\nfrom"),
            ),
        ],
        "did you mean 'small'",
    );
    fails_with(
        &[
            "train",
            &write(
                t,
                "ds.toml",
                &CHAIN.replace("downsample = 2", "downsample = 3"),
            ),
        ],
        "must divide",
    );
}

/// Learning with privileged information: the teacher reads every column of a table, the
/// student only the columns it will have at inference.
#[test]
fn a_student_reads_fewer_columns_than_its_teacher() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let mut csv = String::from("a,b,kind,y\n");
    for i in 0..300 {
        let (a, b) = ((i % 17) as f64 / 17.0, (i % 5) as f64);
        let kind = ["x", "y", "z"][i % 3];
        csv += &format!("{a},{b},{kind},{}\n", 3.0 * a + b + (i % 3) as f64);
    }
    let path = write(t, "t.csv", &csv);
    let cfg = format!(
        r#"
name = "pi"
task = "regression"
[data]
source = "csv"
path = "{path}"
target = "y"
[[data.view]]
name = "cheap"
columns = ["a", "kind"]
[train]
epochs = 2
batch_size = 32
[[teacher]]
model = "mlp"
hidden = [16]
[[student]]
name = "student"
model = "mlp"
hidden = [8]
view = "cheap"
[[student.loss]]
method = "mse"
[[student.loss]]
method = "output-match"
"#
    );
    let out = t.join("run");
    ok(&[
        "train",
        &write(t, "pi.toml", &cfg),
        "--out",
        &out.to_string_lossy(),
        "--no-progress",
    ]);
    let meta = std::fs::read_to_string(out.join("students/student/seed1/best/model.json")).unwrap();
    // a, then the three one-hot kinds
    assert!(
        meta.contains("\"columns\": [\n      0,\n      2,\n      3,\n      4\n    ]"),
        "{meta}"
    );
    fails_with(
        &[
            "train",
            &write(t, "bad.toml", &cfg.replace("\"kind\"]", "\"knd\"]")),
        ],
        "did you mean 'kind'",
    );
    fails_with(
        &[
            "train",
            &write(
                t,
                "img.toml",
                &cfg.replace("columns = [\"a\", \"kind\"]", "grayscale = true"),
            ),
        ],
        "table rows take columns",
    );
}

/// Ranking lists from a CSV file with a query column: every query's 8 candidates are graded by
/// a hidden linear score of their features.
fn ranking_csv(queries: usize) -> String {
    let mut csv = String::from("qid,a,b,c,rel\n");
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x % 1000) as f64 / 1000.0
    };
    for q in 0..queries {
        for _ in 0..8 {
            let (a, b, c) = (next(), next(), next());
            let score = 2.0 * a + b - 0.5 * c + 0.3 * next();
            let rel = (score * 1.6).floor().clamp(0.0, 3.0);
            csv += &format!("q{q},{a:.3},{b:.3},{c:.3},{rel}\n");
        }
    }
    csv
}

/// The ranking task end to end: a teacher trained with ListNet on the grades, a small student
/// with and without listwise distillation, and one that learns from the teacher's scores alone
/// (`labels = false`); NDCG@10 and MRR@10 in the table.
#[test]
fn ranking_lists_train_distil_and_report_ndcg() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let path = write(t, "rank.csv", &ranking_csv(60));
    let cfg = format!(
        r#"
name = "rank"
task = "ranking"
seeds = [1, 2]
[data]
source = "csv"
path = "{path}"
target = "rel"
group = "qid"
test_fraction = 0.25
[train]
epochs = 6
batch_size = 8
optimizer = "adam"
lr = 0.01
[[teacher]]
model = "mlp"
hidden = [32]
[[student]]
name = "listnet"
model = "mlp"
hidden = [4]
[[student.loss]]
method = "listnet"
[[student]]
name = "listnet + kd"
model = "mlp"
hidden = [4]
[[student.loss]]
method = "listnet"
[[student.loss]]
method = "listnet-kd"
[[student]]
name = "kd, no labels"
model = "mlp"
hidden = [4]
labels = false
[[student.loss]]
method = "listnet-kd"
"#
    );
    let out = t.join("run");
    let (table, log) = ok(&[
        "train",
        &write(t, "rank.toml", &cfg),
        "--out",
        &out.to_string_lossy(),
        "--no-progress",
    ]);
    assert!(
        table.contains("best test NDCG@10 | last test NDCG@10 | last test MRR@10"),
        "{table}"
    );
    // every row's NDCG@10 is a fraction, and the features predict the grades well
    for row in table.lines().filter(|l| l.starts_with("| ")).skip(1) {
        let best: f64 = row
            .split('|')
            .nth(4)
            .unwrap()
            .trim()
            .split(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!((0.7..=1.0).contains(&best), "{row}\n{log}");
    }
    assert!(
        log.contains("teacher mlp: test NDCG@10")
            || log.contains("teacher: test NDCG@10")
            || log.contains("NDCG@10"),
        "{log}"
    );
    let csv = std::fs::read_to_string(out.join("results.csv")).unwrap();
    // the ranking metrics against the teacher's ranking, mean and std over seeds
    assert!(
        csv.lines()
            .next()
            .unwrap()
            .ends_with(",mrr_mean,mrr_std,vs_teacher_ndcg_mean,vs_teacher_ndcg_std,vs_teacher_mrr_mean,vs_teacher_mrr_std"),
        "{csv}"
    );

    // ranking terms outside the ranking task, and the ranking task without lists, are refused
    let classification = TINY.replace("method = \"kd\"", "method = \"listnet-kd\"");
    fails_with(
        &["train", &write(t, "c.toml", &classification)],
        "applies to task = \"ranking\" only",
    );
    fails_with(
        &[
            "train",
            &write(t, "g.toml", &cfg.replace("group = \"qid\"\n", "")),
        ],
        "needs lists",
    );
    fails_with(
        &[
            "train",
            &write(
                t,
                "q.toml",
                &cfg.replace("group = \"qid\"", "group = \"qidd\""),
            ),
        ],
        "did you mean 'qid'",
    );
}

/// FedAvg and FedDF on a tiny non-IID federation: one row each, a curve point and a global model
/// per round, the working folders removed, an exact resume, and `eval` of the best global model.
#[test]
fn federated_rounds_average_distil_and_resume() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = write(
        tmp.path(),
        "fed.toml",
        r#"
name = "fed"
seeds = [1]
scheme = "federated"
[data]
train_limit = 240
test_limit = 100
[train]
batch_size = 16
[federated]
clients = 4
rounds = 3
participation = 0.5
alpha = 0.5
server_samples = 40
local = { epochs = 1, lr = 0.05 }
[[student]]
name = "fedavg"
model = "mlp"
hidden = [16]
loss = []
[[student]]
name = "feddf"
model = "mlp"
hidden = [16]
train = { optimizer = "adam", lr = 0.001, epochs = 1 }
[[student.loss]]
method = "mt-kd"
temperature = 1.0
"#,
    );
    let out = tmp.path().join("run");
    let out_s = out.to_string_lossy().into_owned();
    let (table, log) = ok(&["train", &cfg, "--out", &out_s, "--no-progress"]);
    assert!(
        table.contains("| fedavg | mlp |") && table.contains("| feddf | mlp |"),
        "{table}"
    );
    assert!(log.contains("fedavg seed 1 round 3/3: clients "), "{log}");
    for recipe in ["fedavg", "feddf"] {
        let seed = out.join("students").join(recipe).join("seed1");
        let metrics = std::fs::read_to_string(seed.join("metrics.jsonl")).unwrap();
        assert_eq!(metrics.lines().count(), 3, "{metrics}");
        for r in 0..=3 {
            assert!(seed.join(format!("round{r}/global/model.bpk")).is_file());
        }
        // only the global models stay: the clients' and the server's fits are removed
        let left: Vec<String> = std::fs::read_dir(seed.join("round2"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(left, vec!["global".to_string()]);
        assert!(seed.join("best/model.bpk").is_file());
    }
    let feddf = std::fs::read_to_string(out.join("students/feddf/seed1/metrics.jsonl")).unwrap();
    assert!(feddf.contains("\"server mt-kd\""), "{feddf}");

    // A run stopped after round 2 resumes to the same table.
    std::fs::remove_dir_all(out.join("students/feddf/seed1/round3")).unwrap();
    let (again, _) = ok(&["train", &cfg, "--out", &out_s, "--resume", "--no-progress"]);
    // every column but the wall time, which the rerun round measures anew
    let scores = |t: &str| -> Vec<String> {
        let row = t.lines().find(|l| l.starts_with("| feddf")).unwrap();
        row.split('|').take(7).map(str::to_string).collect()
    };
    assert_eq!(scores(&again), scores(&table));
    let best = out.join("students/fedavg/seed1/best");
    let (scored, _) = ok(&["eval", &best.to_string_lossy()]);
    assert!(scored.contains("test accuracy"), "{scored}");
}

/// A sweep run as two slices into one folder (a cluster job array), then merged, gives the same
/// table as the whole sweep; a merge before every slice finished, and a bad slice, are refused.
#[test]
fn sharded_sweeps_merge_into_the_whole_table() {
    let tmp = tempfile::tempdir().unwrap();
    let sweep = write(
        tmp.path(),
        "s.toml",
        r#"
name = "s"
seeds = [1]
[data]
train_limit = 160
test_limit = 80
[train]
epochs = 1
batch_size = 32
[[pair]]
name = "wide"
teacher = { model = "mlp", hidden = [24] }
student = { model = "mlp", hidden = [6] }
[[pair]]
name = "narrow"
teacher = { model = "mlp", hidden = [12] }
student = { model = "mlp", hidden = [4] }
[[pair]]
name = "tiny"
teacher = { model = "mlp", hidden = [8] }
student = { model = "mlp", hidden = [3] }
[[recipe]]
name = "KD"
[[recipe.loss]]
method = "kd"
"#,
    );
    let whole = tmp.path().join("whole").to_string_lossy().into_owned();
    let sliced = tmp.path().join("sliced").to_string_lossy().into_owned();
    let (table, _) = ok(&["sweep", &sweep, "--out", &whole, "--no-progress"]);
    let (first, _) = ok(&[
        "sweep",
        &sweep,
        "--out",
        &sliced,
        "--shard",
        "1/2",
        "--resume",
        "--no-progress",
    ]);
    assert!(first.contains("slice finished"), "{first}");
    let sliced_dir = tmp.path().join("sliced");
    assert!(sliced_dir.join("pair1").is_dir() && sliced_dir.join("pair3").is_dir());
    assert!(!sliced_dir.join("pair2").exists() && !sliced_dir.join("results.md").exists());
    fails_with(&["sweep", &sweep, "--out", &sliced, "--merge"], "pair2");
    // a slice's script always passes --resume: a first run, then a rerun, both succeed
    for _ in 0..2 {
        ok(&[
            "sweep",
            &sweep,
            "--out",
            &sliced,
            "--shard",
            "2/2",
            "--resume",
            "--no-progress",
        ]);
    }
    let (merged, _) = ok(&["sweep", &sweep, "--out", &sliced, "--merge"]);
    // every column but the wall time
    let scores = |t: &str| -> Vec<Vec<String>> {
        t.lines()
            .filter(|l| l.starts_with("| "))
            .map(|l| l.split('|').take(7).map(str::to_string).collect())
            .collect()
    };
    assert_eq!(scores(&merged), scores(&table));
    assert!(sliced_dir.join("results.csv").is_file() && sliced_dir.join("bars.svg").is_file());
    let changed = write(
        tmp.path(),
        "s2.toml",
        &std::fs::read_to_string(&sweep)
            .unwrap()
            .replace("epochs = 1", "epochs = 2"),
    );
    fails_with(
        &["sweep", &changed, "--out", &sliced, "--merge"],
        "another sweep file",
    );
    fails_with(&["sweep", &sweep, "--shard", "3/2"], "1 ≤ i ≤ n");
    fails_with(&["sweep", &sweep, "--shard", "x"], "--shard takes i/n");
}

#[test]
fn export_import_and_a_teacher_read_from_safetensors() {
    let tmp = tempfile::tempdir().unwrap();
    let one_seed = TINY.replace("seeds = [1, 2]", "seeds = [1]");
    let cfg = write(tmp.path(), "tiny.toml", &one_seed);
    let run = tmp.path().join("run");
    let (table, _) = ok(&[
        "train",
        &cfg,
        "--out",
        &run.to_string_lossy(),
        "--no-progress",
    ]);
    // the teacher's name, model, parameters and accuracies (not its epoch: a loaded teacher
    // has none)
    let teacher_row = |t: &str| {
        let row = t.lines().find(|l| l.starts_with("| teacher")).unwrap();
        row.split('|').take(6).collect::<Vec<_>>().join("|")
    };
    let best = run.join("teachers/mlp/best");
    let (scored, _) = ok(&["eval", &best.to_string_lossy()]);
    // export: safetensors under PyTorch's names, beside model.json
    let exported = tmp.path().join("exported");
    ok(&[
        "export",
        &best.to_string_lossy(),
        "--out",
        &exported.to_string_lossy(),
    ]);
    let file = exported.join("model.safetensors");
    // import it back as a checkpoint folder, described by the exported model.json: eval
    // scores it the same
    let imported = tmp.path().join("imported");
    ok(&[
        "import",
        &file.to_string_lossy(),
        "--meta",
        &exported.join("model.json").to_string_lossy(),
        "--out",
        &imported.to_string_lossy(),
    ]);
    let (again, _) = ok(&["eval", &imported.to_string_lossy()]);
    let accuracy = |s: &str| s.split("test accuracy").nth(1).unwrap().to_string();
    assert_eq!(accuracy(&again), accuracy(&scored));
    // a [[teacher]] section reads the file directly: the same teacher row
    let from_file = one_seed.replace(
        "hidden = [32]\n",
        &format!("hidden = [32]\ncheckpoint = \"{}\"\n", file.display()),
    );
    let cfg2 = write(tmp.path(), "from-file.toml", &from_file);
    let (table2, _) = ok(&[
        "train",
        &cfg2,
        "--out",
        &tmp.path().join("run2").to_string_lossy(),
        "--no-progress",
    ]);
    assert_eq!(teacher_row(&table2), teacher_row(&table), "{table2}");
    // a file of another shape is refused, naming the tensors, and writes nothing
    fails_with(
        &[
            "import",
            &file.to_string_lossy(),
            "--model",
            "mlp",
            "--classes",
            "7",
            "--input",
            "1,28,28",
            "--out",
            &tmp.path().join("bad").to_string_lossy(),
        ],
        "head.weight: the model expects [256, 7], the file has [32, 10]",
    );
    assert!(!tmp.path().join("bad").exists());
    // a folder that is not a model folder is never replaced
    fails_with(
        &[
            "export",
            &best.to_string_lossy(),
            "--out",
            &tmp.path().to_string_lossy(),
        ],
        "is not a model folder",
    );
    assert!(tmp.path().join("tiny.toml").is_file());
    // nor a checkpoint folder (exporting over itself), nor a path that names no folder
    fails_with(
        &[
            "export",
            &best.to_string_lossy(),
            "--out",
            &best.to_string_lossy(),
        ],
        "holds a checkpoint (model.bpk)",
    );
    assert!(best.join("model.bpk").is_file());
    fails_with(
        &[
            "export",
            &best.to_string_lossy(),
            "--out",
            &format!("{}/..", imported.display()),
        ],
        "is not a folder name",
    );
}

#[test]
fn eval_scores_an_imported_classifier_on_cifar_and_image_folders() {
    let tmp = tempfile::tempdir().unwrap();
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../distill/fixtures/import/resnet8.pth"
    );
    let teacher = tmp.path().join("resnet8");
    ok(&[
        "import",
        fixture,
        "--model",
        "resnet8",
        "--classes",
        "10",
        "--input",
        "3,32,32",
        "--out",
        &teacher.to_string_lossy(),
    ]);
    // CIFAR-10's binary test batch: 20 records of a label byte and a 3×32×32 image
    let cifar = tmp.path().join("cifar").join("cifar-10-batches-bin");
    std::fs::create_dir_all(&cifar).unwrap();
    let mut batch = Vec::new();
    for i in 0..20usize {
        batch.push((i % 10) as u8);
        batch.extend((0..3072).map(|p| ((i * 31 + p) % 256) as u8));
    }
    std::fs::write(cifar.join("test_batch.bin"), &batch).unwrap();
    let (out, _) = ok(&[
        "eval",
        &teacher.to_string_lossy(),
        "--data",
        "cifar10",
        "--data-dir",
        &tmp.path().join("cifar").to_string_lossy(),
    ]);
    assert!(
        out.contains("test accuracy") && out.contains("on 20 images"),
        "{out}"
    );
    // a val/ folder alone (its class folders are the classes) of 40×40 colour images, resized
    // to the model's 32×32, and a grey one, read as RGB as the model reads
    let folder = tmp.path().join("folder");
    std::fs::create_dir_all(folder.join("val").join("a")).unwrap();
    image::GrayImage::from_fn(40, 40, |x, _| image::Luma([x as u8]))
        .save(folder.join("val").join("a").join("grey.png"))
        .unwrap();
    for (class, n) in [("a", 2u8), ("b", 3)] {
        let dir = folder.join("val").join(class);
        std::fs::create_dir_all(&dir).unwrap();
        for k in 0..n {
            image::RgbImage::from_fn(40, 40, |x, y| image::Rgb([k * 50, x as u8, y as u8]))
                .save(dir.join(format!("{k}.png")))
                .unwrap();
        }
    }
    let (out, _) = ok(&[
        "eval",
        &teacher.to_string_lossy(),
        "--data",
        "image-folder",
        "--data-dir",
        &folder.to_string_lossy(),
    ]);
    assert!(out.contains("on 6 images"), "{out}");
    // a folder that is not CIFAR names the files it needs
    fails_with(
        &[
            "eval",
            &teacher.to_string_lossy(),
            "--data",
            "cifar100",
            "--data-dir",
            &tmp.path().join("cifar").to_string_lossy(),
        ],
        "test.bin",
    );
    fails_with(
        &["eval", &teacher.to_string_lossy(), "--data", "cifar10"],
        "--data cifar10 needs --data-dir",
    );
}
