//! Bad input is refused before anything trains: each case names the problem (a fragment of the
//! message is checked), exits with 1 without a panic, and leaves no run folder behind. Cases
//! from the hardening issue (#8) are marked with what they guard against.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use distill::data::idx::{encode_idx, IdxArray};

const TINY: &str = r#"
name = "tiny"
seeds = [1]
[data]
train_limit = 96
test_limit = 64
[train]
epochs = 1
batch_size = 32
[[teacher]]
model = "mlp"
hidden = [16]
[[student]]
name = "kd"
model = "mlp"
hidden = [8]
[[student.loss]]
method = "ce"
weight = 0.1
[[student.loss]]
method = "kd"
temperature = 4.0
"#;

fn distill(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_distill"))
        .args(args)
        .output()
        .expect("binary runs")
}

struct Case {
    /// What the case guards against.
    what: &'static str,
    /// The config file.
    config: String,
    /// Extra arguments after `train CONFIG --out DIR`.
    args: Vec<String>,
    /// A fragment of the expected error message.
    expect: &'static str,
}

fn case(what: &'static str, config: String, expect: &'static str) -> Case {
    Case {
        what,
        config,
        args: Vec::new(),
        expect,
    }
}

/// Runs `distill train` on each case and checks exit code 1, no panic, the message, and that
/// no run folder was created.
fn refuse_all(cases: Vec<Case>) {
    let tmp = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    for (i, c) in cases.iter().enumerate() {
        let cfg = tmp.path().join(format!("case{i}.toml"));
        std::fs::write(&cfg, &c.config).unwrap();
        let out = tmp.path().join(format!("run{i}"));
        let mut args = vec![
            "train".to_string(),
            cfg.display().to_string(),
            "--out".into(),
            out.display().to_string(),
            "--no-progress".into(),
        ];
        args.extend(c.args.iter().cloned());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = distill(&args);
        let err = String::from_utf8_lossy(&o.stderr);
        let problems = [
            (
                o.status.code() != Some(1),
                format!("exit {:?}", o.status.code()),
            ),
            (err.contains("panicked"), "panicked".into()),
            (
                !err.contains(c.expect),
                format!("no '{}' in the message", c.expect),
            ),
            (out.exists(), "a run folder was written".into()),
        ];
        for (bad, why) in problems {
            if bad {
                failures.push(format!("{} ({}): {why}\n  stderr: {err}", c.what, c.expect));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn idx_dir(dir: &Path, train_labels: &[u8], test_labels: &[u8]) {
    std::fs::create_dir_all(dir).unwrap();
    for (split, labels) in [("train", train_labels), ("t10k", test_labels)] {
        let n = labels.len();
        let images = IdxArray {
            dims: vec![n, 12, 12],
            data: (0..n * 144).map(|i| (i % 251) as u8).collect(),
        };
        let labels = IdxArray {
            dims: vec![n],
            data: labels.to_vec(),
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

fn with_idx(dir: &Path) -> String {
    TINY.replace(
        "[data]\n",
        &format!("[data]\nsource = \"idx\"\ndir = \"{}\"\n", dir.display()),
    )
}

#[test]
fn bad_configs_and_data_are_refused_at_validation() {
    let tmp = tempfile::tempdir().unwrap();
    let labels: Vec<u8> = (0..40).map(|i| (i % 3) as u8).collect();
    let stray = tmp.path().join("stray");
    let mut l = labels.clone();
    l[7] = 200;
    idx_dir(&stray, &l, &labels);
    let test_only = tmp.path().join("test-only");
    let mut t = labels.clone();
    t[5] = 3;
    idx_dir(&test_only, &labels, &t);

    let kd = "method = \"kd\"\ntemperature = 4.0";
    refuse_all(vec![
        case(
            "nan weight (passed validation, failed after the teacher trained)",
            TINY.replace(kd, "method = \"kd\"\nweight = nan"),
            "weight must be a finite number",
        ),
        case(
            "inf weight",
            TINY.replace(kd, "method = \"kd\"\nweight = inf"),
            "weight must be a finite number",
        ),
        case(
            "negative weight",
            TINY.replace(kd, "method = \"kd\"\nweight = -1.0"),
            "weight must be a finite number ≥ 0",
        ),
        case(
            "nan setting",
            TINY.replace("temperature = 4.0", "temperature = nan"),
            "temperature must be a finite number",
        ),
        case(
            "train_limit = 0 (trained on nothing, then a corrupt model.json)",
            TINY.replace("train_limit = 96", "train_limit = 0"),
            "data.train_limit = 0",
        ),
        case(
            "test_limit = 0 (exit 0 with 0.00 % everywhere)",
            TINY.replace("test_limit = 64", "test_limit = 0"),
            "data.test_limit = 0",
        ),
        case(
            "a stray label 200 (silently made 201 classes)",
            with_idx(&stray),
            "never occur",
        ),
        case(
            "a test-only label",
            with_idx(&test_only),
            "never occurs in the training split",
        ),
        case(
            "a label outside the declared classes",
            with_idx(&stray).replace("[data]\n", "[data]\nclasses = 3\n"),
            "has label 200, outside the 3 classes",
        ),
        case(
            "duplicate seeds (a misleading ± 0.00)",
            TINY.replace("seeds = [1]", "seeds = [1, 1]"),
            "seed 1 twice",
        ),
        case(
            "a role addressed by number (the config shape before named roles)",
            TINY.replace(kd, "method = \"kd\"\nteacher = 0"),
            "roles are named, not numbered",
        ),
        case(
            "a single [teacher] table (the config shape before named roles)",
            TINY.replace("[[teacher]]", "[teacher]"),
            "write the section as [[teacher]]",
        ),
        case(
            "a misspelt teacher name",
            TINY.replace(kd, "method = \"kd\"\nteacher = \"mpl\""),
            "did you mean 'mlp'",
        ),
        case(
            "two teachers and a term that does not say which",
            TINY.replace(
                "[[teacher]]\n",
                "[[teacher]]\nname = \"big\"\nmodel = \"mlp\"\nhidden = [32]\n[[teacher]]\n",
            ),
            "must say which it learns from: teacher = \"<name>\"",
        ),
        case(
            "a frozen teacher on the student side of a term",
            TINY.replace(kd, "method = \"kd\"\nstudent = \"mlp\""),
            "names a frozen teacher",
        ),
        case(
            "a term that reads the labels in a recipe trained without them",
            TINY.replace("name = \"kd\"\n", "name = \"kd\"\nlabels = false\n"),
            "`ce` reads the targets, but this recipe trains on unlabeled samples",
        ),
        case(
            "multi-teacher KD with one teacher",
            TINY.replace(kd, "method = \"mt-kd\""),
            "mt-kd needs at least two teachers",
        ),
        case(
            "an online ensemble without peers",
            TINY.replace(kd, "method = \"ensemble-kd\""),
            "ensemble-kd needs at least two trainable members",
        ),
        case(
            "two roles with one name",
            TINY.replace(
                "[[student.loss]]\nmethod = \"ce\"",
                "[[student.peer]]\nname = \"mlp\"\nmodel = \"mlp\"\n[[student.loss]]\nmethod = \"ce\"",
            ),
            "the name is taken",
        ),
        case(
            "no teacher at all",
            TINY.replace("[[teacher]]\nmodel = \"mlp\"\nhidden = [16]\n", ""),
            "add a [[teacher]] section",
        ),
        case(
            "`at` on an MLP (named a tap the user never wrote)",
            TINY.replace(kd, "method = \"at\""),
            "Method `at` reads student_taps, teacher_taps",
        ),
        case(
            "grad_clip = 0",
            TINY.replace("batch_size = 32", "batch_size = 32\ngrad_clip = 0.0"),
            "train.grad_clip must be a positive norm",
        ),
        case(
            "gamma = nan",
            TINY.replace("batch_size = 32", "batch_size = 32\ngamma = nan"),
            "train.gamma must be positive",
        ),
        case(
            "an unknown key",
            TINY.replace("epochs = 1", "epoch = 1"),
            "did you mean `epochs`",
        ),
        case(
            "a student's train_limit = 0",
            TINY.replace("hidden = [8]", "hidden = [8]\ntrain_limit = 0"),
            "train_limit = 0 would leave the student no images",
        ),
        case(
            "data.classes beyond a byte label",
            TINY.replace("[data]\n", "[data]\nclasses = 1000000\n"),
            "data.classes must be between 2 and 256",
        ),
        case(
            "a CSV source without its target column",
            TINY.replace("[data]\n", "[data]\nsource = \"csv\"\npath = \"t.csv\"\n"),
            "needs data.path (the CSV file) and data.target",
        ),
        case(
            "a CSV setting on an image source",
            TINY.replace("[data]\n", "[data]\ntarget = \"price\"\n"),
            "data.target applies to source = \"csv\" only",
        ),
        case(
            "a regression loss in a classification experiment",
            TINY.replace("method = \"ce\"", "method = \"mse\""),
            "`mse` reads real targets and applies to task = \"regression\" only",
        ),
        case(
            "a negative DKD warm-up",
            TINY.replace(kd, "method = \"dkd\"\nwarmup = -1.0"),
            "dkd.warmup must be ≥ 0",
        ),
        case(
            "a view named like the source input",
            TINY.replace("[train]\n", "[[data.view]]\nname = \"input\"\ndownsample = 2\n[train]\n"),
            "\"input\" names the source input itself",
        ),
        case(
            "a view that derives nothing",
            TINY.replace("[train]\n", "[[data.view]]\nname = \"same\"\n[train]\n"),
            "derives nothing from the input",
        ),
        case(
            "a role reading a view that is not declared",
            TINY.replace("hidden = [8]\n", "hidden = [8]\nview = \"small\"\n"),
            "view of student #1",
        ),
        case(
            "a teacher with two sources",
            TINY.replace(
                "hidden = [16]\n",
                "hidden = [16]\ncheckpoint = \"x\"\nfrom = \"kd\"\n",
            ),
            "`checkpoint` and `from` both say where the teacher comes from",
        ),
        case(
            "a virtual teacher that is certain",
            TINY.replace(kd, "method = \"tf-kd\"\ncorrect_prob = 1.0"),
            "tf-kd.correct_prob must be in (0, 1)",
        ),
        case(
            "BYOT on a tap that does not exist",
            TINY.replace(kd, "method = \"byot\"\ntaps = [\"stage9\"]"),
            "stage9",
        ),
        case(
            "an ensemble of one teacher",
            format!("{TINY}[[ensemble]]\nname = \"e\"\nteachers = [\"mlp\"]\n"),
            "averages at least two teachers",
        ),
        case(
            "an ensemble of an unknown teacher",
            format!("{TINY}[[ensemble]]\nname = \"e\"\nteachers = [\"mlp\", \"mpl\"]\n"),
            "did you mean 'mlp'",
        ),
        case(
            "CS-KD without class pairs",
            TINY.replace(kd, "method = \"cs-kd\""),
            "set class_pairs = true",
        ),
        case(
            "class pairs on unlabeled samples",
            TINY.replace("hidden = [8]\n", "hidden = [8]\nclass_pairs = true\nlabels = false\n"),
            "class_pairs pairs samples of the same class",
        ),
        case(
            "a ranking loss in a classification experiment",
            TINY.replace(kd, "method = \"listnet\""),
            "applies to task = \"ranking\" only",
        ),
        case(
            "the federated scheme without its section",
            format!("scheme = \"federated\"\n{TINY}"),
            "needs a [federated] section",
        ),
        case(
            "a [federated] section under another scheme",
            format!("{TINY}[federated]\nclients = 4\n"),
            "applies to scheme = \"federated\"",
        ),
        case(
            "federated with a [[teacher]]",
            format!("scheme = \"federated\"\n{TINY}[federated]\nclients = 4\n"),
            "remove the [[teacher]]",
        ),
        case(
            "FedDF without server samples",
            format!("scheme = \"federated\"\n{}[federated]\nclients = 4\n", fed_student(kd)),
            "server_samples = 0",
        ),
        case(
            "a zero Dirichlet alpha",
            format!("scheme = \"federated\"\n{}[federated]\nalpha = 0.0\n", fed_student("")),
            "federated.alpha must be a positive number",
        ),
        case(
            "participation above 1",
            format!("scheme = \"federated\"\n{}[federated]\nparticipation = 1.5\n", fed_student("")),
            "in (0, 1]",
        ),
        case(
            "more clients and server samples than training samples",
            format!("scheme = \"federated\"\n{}[federated]\nclients = 50\nserver_samples = 60\n", fed_student("")),
            "lower server_samples or clients",
        ),
        case(
            "FedDF with one client per round (mt-kd needs two teachers)",
            format!("scheme = \"federated\"\n{}[federated]\nclients = 4\nparticipation = 0.25\nserver_samples = 16\n", fed_student("method = \"mt-kd\"")),
            "at least two teachers",
        ),
    ]);
}

/// TINY's student as the only role of a federated recipe, with `loss` as its server term (none
/// when empty: FedAvg).
fn fed_student(loss: &str) -> String {
    let head = TINY.split("[[teacher]]").next().unwrap();
    let terms = if loss.is_empty() {
        "loss = []\n".to_string()
    } else {
        format!("[[student.loss]]\n{loss}\n")
    };
    format!("{head}[[student]]\nname = \"fed\"\nmodel = \"mlp\"\nhidden = [8]\n{terms}")
}

/// A trained tiny run (teacher MLP [16]) in `dir`.
fn trained(dir: &Path) -> (PathBuf, PathBuf) {
    let cfg = dir.join("tiny.toml");
    std::fs::write(&cfg, TINY).unwrap();
    let out = dir.join("run");
    let o = distill(&[
        "train",
        &cfg.to_string_lossy(),
        "--out",
        &out.to_string_lossy(),
        "--no-progress",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    (cfg, out)
}

#[test]
fn runs_checkpoints_and_resume_are_checked_before_anything_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let (cfg, run) = trained(tmp.path());
    let ckpt = run.join("teachers/mlp/best").display().to_string();
    let loads = |model: &str| {
        TINY.replace(
            "[[teacher]]\nmodel = \"mlp\"\nhidden = [16]\n",
            &format!("[[teacher]]\n{model}\ncheckpoint = \"{ckpt}\"\n"),
        )
    };
    let resume = |config: String, expect| Case {
        what: "resume",
        config,
        args: vec!["--resume".into()],
        expect,
    };
    refuse_all(vec![
        case(
            "a lenet config with an MLP checkpoint (exit 0, results called the MLP a lenet)",
            loads("model = \"lenet\""),
            "model: \"lenet\" vs \"mlp\"",
        ),
        case(
            "other hidden widths than the checkpoint",
            loads("model = \"mlp\"\nhidden = [256, 256]"),
            "hidden: [256, 256] vs [16]",
        ),
        resume(TINY.to_string(), "holds no run to continue"),
    ]);
    // the same checkpoint with the right architecture loads
    let good = tmp.path().join("good.toml");
    std::fs::write(&good, loads("model = \"mlp\"\nhidden = [16]")).unwrap();
    let o = distill(&[
        "train",
        &good.to_string_lossy(),
        "--out",
        &tmp.path().join("reuse").to_string_lossy(),
        "--no-progress",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    // A refused --resume writes nothing (it had rewritten resolved.toml) and names the setting.
    let before = std::fs::read(run.join("resolved.toml")).unwrap();
    let changed = tmp.path().join("changed.toml");
    std::fs::write(
        &changed,
        TINY.replace("temperature = 4.0", "temperature = 2.0"),
    )
    .unwrap();
    let o = distill(&[
        "train",
        &changed.to_string_lossy(),
        "--out",
        &run.to_string_lossy(),
        "--resume",
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("student 'kd'.loss[1].temperature: 4.0 vs 2.0"),
        "{err}"
    );
    assert_eq!(std::fs::read(run.join("resolved.toml")).unwrap(), before);

    // What distill writes, it reads: resolved.toml and --dump-config are experiment files.
    let o = distill(&["train", &cfg.to_string_lossy(), "--dump-config"]);
    let dumped = tmp.path().join("dumped.toml");
    std::fs::write(&dumped, &o.stdout).unwrap();
    for (name, file) in [
        ("--dump-config", dumped),
        ("resolved.toml", run.join("resolved.toml")),
    ] {
        let o = distill(&["train", &file.to_string_lossy(), "--dump-config"]);
        assert!(
            o.status.success(),
            "{name} is not accepted back: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&before),
            "{name}"
        );
    }
    // ... and resuming with the resolved file itself continues the run (nothing changed).
    let o = distill(&[
        "train",
        &run.join("resolved.toml").to_string_lossy(),
        "--out",
        &run.to_string_lossy(),
        "--resume",
        "--no-progress",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn sweep_resume_checks_every_pair_before_writing() {
    let tmp = tempfile::tempdir().unwrap();
    let sweep = r#"
name = "s"
seeds = [1]
[data]
train_limit = 64
test_limit = 32
[train]
epochs = 1
batch_size = 32
[[pair]]
teacher = { model = "mlp", hidden = [8] }
student = { model = "mlp", hidden = [4] }
[[recipe]]
name = "KD"
[[recipe.loss]]
method = "kd"
temperature = 4.0
"#;
    let file = tmp.path().join("s.toml");
    let out = tmp.path().join("sweep");
    let (f, o) = (file.to_string_lossy(), out.to_string_lossy());
    // --resume of a sweep that was never started
    std::fs::write(&file, sweep).unwrap();
    let r = distill(&["sweep", &f, "--out", &o, "--resume"]);
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(
        r.status.code() == Some(1) && err.contains("holds no sweep to continue"),
        "{err}"
    );
    assert!(!out.exists());
    let r = distill(&["sweep", &f, "--out", &o, "--no-progress"]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    // a changed recipe is refused before sweep.toml (or anything else) is rewritten
    let before = std::fs::read(out.join("sweep.toml")).unwrap();
    std::fs::write(
        &file,
        sweep.replace("temperature = 4.0", "temperature = 3.0"),
    )
    .unwrap();
    let r = distill(&["sweep", &f, "--out", &o, "--resume"]);
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(
        r.status.code() == Some(1) && err.contains("loss[0].temperature: 4.0 vs 3.0"),
        "{err}"
    );
    assert_eq!(std::fs::read(out.join("sweep.toml")).unwrap(), before);
}

#[test]
fn warnings_and_messages_are_clear() {
    let tmp = tempfile::tempdir().unwrap();
    // a batch larger than the data, and --out pointing at a folder that is not a run folder
    let other = tmp.path().join("other");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(other.join("notes.txt"), "mine").unwrap();
    let cfg = tmp.path().join("big-batch.toml");
    std::fs::write(&cfg, TINY.replace("batch_size = 32", "batch_size = 512")).unwrap();
    let o = distill(&[
        "train",
        &cfg.to_string_lossy(),
        "--out",
        &other.to_string_lossy(),
        "--no-progress",
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains("batch_size 512 is larger than the 96 training images"),
        "{err}"
    );
    assert!(err.contains("is not a run folder"), "{err}");
    assert_eq!(
        std::fs::read_to_string(other.join("notes.txt")).unwrap(),
        "mine"
    );

    // an OS error is printed once, and no Debug text reaches the user
    let o = distill(&["train", &tmp.path().join("missing.toml").to_string_lossy()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.matches("No such file").count(), 1, "{err}");
    let best = other.join("students/kd/seed1/best");
    std::fs::write(best.join("model.bpk"), b"garbage").unwrap();
    let o = distill(&["eval", &best.to_string_lossy()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("corrupt") && !err.contains("Io(\"") && !err.contains("Validation(\""),
        "{err}"
    );

    // eval --data idx names the flag it needs
    let o = distill(&[
        "eval",
        &other.join("teachers/mlp/best").to_string_lossy(),
        "--data",
        "idx",
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        o.status.code() == Some(1) && err.contains("--data-dir"),
        "{err}"
    );
}

#[test]
fn eval_reads_only_the_test_split() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("idx");
    let labels: Vec<u8> = (0..40).map(|i| (i % 3) as u8).collect();
    idx_dir(&data, &labels, &labels);
    let cfg = tmp.path().join("idx.toml");
    std::fs::write(&cfg, with_idx(&data)).unwrap();
    let run = tmp.path().join("run");
    let o = distill(&[
        "train",
        &cfg.to_string_lossy(),
        "--out",
        &run.to_string_lossy(),
        "--no-progress",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for f in ["train-images-idx3-ubyte", "train-labels-idx1-ubyte"] {
        std::fs::remove_file(data.join(f)).unwrap();
    }
    let o = distill(&[
        "eval",
        &run.join("teachers/mlp/best").to_string_lossy(),
        "--data",
        "idx",
        "--data-dir",
        &data.to_string_lossy(),
    ]);
    let (out, err) = (
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
    );
    assert!(
        o.status.success() && out.contains("on 40 images"),
        "{out}\n{err}"
    );
}

#[test]
fn a_closed_stderr_does_not_stop_training() {
    // `distill train … 2>&1 | head -1` panicked (exit 101) and left the run half-written.
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("tiny.toml");
    std::fs::write(&cfg, TINY.replace("seeds = [1]", "seeds = [1, 2]")).unwrap();
    let run = tmp.path().join("run");
    let script = format!(
        "{} train {} --out {} --no-progress 2>&1 | head -1 >/dev/null; echo \"${{PIPESTATUS[0]}}\"",
        env!("CARGO_BIN_EXE_distill"),
        cfg.display(),
        run.display()
    );
    let o = Command::new("bash").args(["-c", &script]).output().unwrap();
    let status = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        status.trim(),
        "0",
        "{status}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    for f in ["results.md", "students/kd/seed2/last/state.json"] {
        assert!(run.join(f).exists(), "missing {f}");
    }
}
