//! Language models end to end at a tiny size: a text file cut into windows, a GPT teacher, a
//! student distilled with a token-level divergence and hidden states, the teacher cache's
//! per-window logits, and sampling from the saved student.

mod common;

use common::serial;

use distill::config::ExperimentConfig;
use distill::models::sample::{generate, Sampling};
use distill::models::Net;
use distill::run::{run_experiment, RunOptions};
use distill::train::checkpoint::load_model_dir;
use distill::train::Progress;

fn book() -> String {
    let mut out = String::new();
    for c in 1..=20 {
        out += &format!("CHAPTER {c}. Loomings.\n\n");
        for s in 0..10 {
            out += &format!(
                "Call me Ishmael, said the {} sailor to the sea.\n",
                c * s % 7
            );
        }
    }
    out
}

fn config(path: &std::path::Path, cache_mb: usize) -> String {
    format!(
        r#"
name = "lm"
task = "generation"
seeds = [1]
[data]
source = "text"
path = "{}"
context = 16
[train]
epochs = 2
batch_size = 16
optimizer = "adamw"
lr = 0.01
weight_decay = 0.0
[[teacher]]
model = "gpt"
dim = 16
layers = 2
heads = 2
cache_mb = {cache_mb}
[[student]]
name = "jsd"
model = "gpt"
dim = 8
layers = 1
heads = 2
[[student.loss]]
method = "gkd"
beta = 0.5
[[student.loss]]
method = "hidden"
student_tap = "hidden"
teacher_tap = "hidden"
weight = 0.1
"#,
        path.display()
    )
}

/// Validates an experiment file's text and runs it quietly into `dir`.
fn run_toml(toml: &str, dir: std::path::PathBuf) -> distill::Result<distill::report::Report> {
    let plan = ExperimentConfig::from_toml(toml, "lm.toml")?.validate()?;
    run_experiment(
        &plan,
        &RunOptions {
            run_dir: Some(dir),
            progress: Progress::Quiet,
            ..Default::default()
        },
    )
}

#[test]
fn a_language_model_pair_trains_caches_and_samples() {
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let text = tmp.path().join("book.txt");
    std::fs::write(&text, book()).unwrap();
    let mut reports = Vec::new();
    for cache_mb in [0, 64] {
        let run = tmp.path().join(format!("run{cache_mb}"));
        let report = run_toml(&config(&text, cache_mb), run.clone()).unwrap();
        reports.push((report, run));
    }
    let (plain, run) = &reports[0];
    let (cached, _) = &reports[1];
    // teacher, then the student; perplexity (of 256 byte values) well below a uniform guess
    assert_eq!(plain.rows.len(), 2);
    let student = &plain.rows[1];
    assert!(student.last.0 > 1.0 && student.last.0 < 64.0, "{student:?}");
    assert!(student.secondary.is_some_and(|(acc, _)| acc > 0.0));
    assert!(student.agreement.is_some_and(|a| a > 0.0 && a <= 1.0));
    // the cached teacher logits (one row per position of each window) train the same student
    let again = &cached.rows[1];
    assert!(
        (student.last.0 - again.last.0).abs() <= 1e-3 * student.last.0,
        "{} vs {}",
        student.last.0,
        again.last.0
    );
    // the saved student samples text, seeded, within its context
    let dev = distill::burn::prelude::Device::flex();
    let (net, meta) = load_model_dir(&run.join("students/jsd/seed1/last"), &dev).unwrap();
    assert_eq!(
        meta.tokenizer.as_ref().map(|t| t.name()),
        Some("byte".into())
    );
    let Net::Gpt(gpt) = net else {
        panic!("a gpt student")
    };
    let s = Sampling {
        max_tokens: 8,
        seed: 5,
        temperature: 0.7,
        ..Default::default()
    };
    let prompt = meta.tokenizer.unwrap().encode("Call me");
    let a = generate(&gpt, &prompt, &s, &dev).unwrap();
    assert_eq!(a, generate(&gpt, &prompt, &s, &dev).unwrap());
    assert_eq!(a.len(), 8);
}

#[test]
fn mismatched_inputs_and_settings_are_config_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let text = tmp.path().join("book.txt");
    std::fs::write(&text, book()).unwrap();
    let base = config(&text, 0);
    let err = |toml: &str| {
        run_toml(toml, tmp.path().join("bad"))
            .unwrap_err()
            .to_string()
    };
    // a token-level divergence in a classification experiment
    let e = err(&base.replace("task = \"generation\"\n", ""));
    assert!(e.contains("generation"), "{e}");
    // dim not a multiple of heads
    let e = err(&base.replace("dim = 8", "dim = 9"));
    assert!(e.contains("multiple of heads"), "{e}");
    // a language model on images
    let e = err(
        "name = \"x\"\n[data]\ntrain_limit = 64\ntest_limit = 32\n[[student]]\nmodel = \"gpt\"\n[[student.loss]]\nmethod = \"ce\"\n",
    );
    assert!(e.contains("cannot read images"), "{e}");
    // a text setting on another source
    let e = err("name = \"x\"\n[data]\ncontext = 16\n[[student]]\nmodel = \"mlp\"\n[[student.loss]]\nmethod = \"ce\"\n");
    assert!(
        e.contains("data.context applies to source = \"text\""),
        "{e}"
    );
}

#[test]
fn on_policy_and_sequence_level_students_train_and_repeat_exactly() {
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let text = tmp.path().join("book.txt");
    std::fs::write(&text, book()).unwrap();
    let toml = config(&text, 64).replace(
        "[[student]]\nname = \"jsd\"",
        r#"[[student]]
name = "on-policy"
model = "gpt"
dim = 8
layers = 1
heads = 2
[[student.loss]]
method = "gkd"
beta = 0.5
lmbda = 1.0
prompt = 4
[[student]]
name = "seq-kd"
model = "gpt"
dim = 8
layers = 1
heads = 2
[[student.loss]]
method = "seq-kd"
[[student]]
name = "jsd""#,
    );
    let run = |dir: &str| run_toml(&toml, tmp.path().join(dir)).unwrap();
    let a = run("a");
    let b = run("b");
    for name in ["on-policy", "seq-kd"] {
        let ra = a.row(name).unwrap();
        let rb = b.row(name).unwrap();
        assert!(ra.last.0.is_finite() && ra.last.0 < 256.0, "{ra:?}");
        assert_eq!(
            ra.last.0, rb.last.0,
            "{name}: the samples are seeded by the step"
        );
    }
    // two generating terms in one recipe are refused
    let two = toml.replace(
        "[[student.loss]]\nmethod = \"seq-kd\"\n",
        "[[student.loss]]\nmethod = \"seq-kd\"\n[[student.loss]]\nmethod = \"gkd\"\nlmbda = 0.5\n",
    );
    let e = run_toml(&two, tmp.path().join("two"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("generate the batches"), "{e}");
}

#[test]
fn a_bpe_tokenizer_is_trained_saved_with_the_model_and_checked_on_teachers() {
    use distill::data::text::{Bpe, Tokenizer};
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let text = tmp.path().join("book.txt");
    std::fs::write(&text, book()).unwrap();
    let bpe = |toml: String| {
        toml.replace(
            "context = 16\n",
            "context = 16\ntokenizer = \"bpe\"\nvocab_size = 300\n",
        )
    };
    let run = tmp.path().join("run");
    let report = run_toml(&bpe(config(&text, 64)), run.clone()).unwrap();
    assert!(report.rows[1].last.0.is_finite());
    // the student's checkpoint carries the tokenizer: in model.json and as tokenizer.json
    let dev = distill::burn::prelude::Device::flex();
    let ckpt = run.join("students/jsd/seed1/last");
    let (net, meta) = load_model_dir(&ckpt, &dev).unwrap();
    let Some(Tokenizer::Bpe(saved)) = &meta.tokenizer else {
        panic!("a BPE in model.json: {:?}", meta.tokenizer)
    };
    let file = std::fs::read_to_string(ckpt.join("tokenizer.json")).unwrap();
    assert_eq!(**saved, Bpe::from_json(&file).unwrap());
    assert!(saved.json().contains("\"merges\""));
    let tk = meta.tokenizer.clone().unwrap();
    assert_eq!(meta.classes, tk.vocab());
    assert!(tk.vocab() > 256 && tk.vocab() <= 300, "{}", tk.vocab());
    let line = "Call me Ishmael, said the 3 sailor — to the sea.";
    let ids = tk.encode(line);
    assert!(ids.len() < line.len(), "merges shorten the text: {ids:?}");
    assert_eq!(tk.decode(&ids), line);
    let Net::Gpt(gpt) = net else {
        panic!("a gpt student")
    };
    let s = Sampling {
        max_tokens: 4,
        seed: 1,
        ..Default::default()
    };
    let out = generate(&gpt, &tk.encode("Call me"), &s, &dev).unwrap();
    assert!(out.iter().all(|&i| (i as usize) < tk.vocab()));
    // its teacher serves a second experiment on the same text: the BPE trained there is the
    // same (training is deterministic); on bytes it is refused, naming both tokenizers
    let teachers = std::fs::read_dir(run.join("teachers")).unwrap();
    let teacher = teachers
        .map(|e| e.unwrap().path().join("best"))
        .next()
        .unwrap();
    let from_teacher = |toml: String| {
        toml.replace(
            "cache_mb = 64\n",
            &format!("cache_mb = 64\ncheckpoint = \"{}\"\n", teacher.display()),
        )
    };
    run_toml(
        &bpe(from_teacher(config(&text, 64))),
        tmp.path().join("again"),
    )
    .unwrap();
    let e = run_toml(&from_teacher(config(&text, 64)), tmp.path().join("bytes"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("tokenizer bpe (") && e.contains("tokenized with byte"),
        "{e}"
    );
    // its weights alone (an export) carry no tokenizer: refused as a teacher
    let exported = tmp.path().join("exported");
    distill::train::checkpoint::export_checkpoint(&teacher, &exported, &dev).unwrap();
    let weights_only = config(&text, 64).replace(
        "cache_mb = 64\n",
        &format!(
            "cache_mb = 64\ncheckpoint = \"{}\"\n",
            exported.join("model.safetensors").display()
        ),
    );
    let e = run_toml(&bpe(weights_only), tmp.path().join("weights"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("carries no tokenizer"), "{e}");
    // vocab_size without a BPE, or too small for one, is a config error
    let e = run_toml(
        &config(&text, 0).replace("context = 16\n", "context = 16\nvocab_size = 300\n"),
        tmp.path().join("bad"),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("data.tokenizer = \"bpe\""), "{e}");
    let e = run_toml(
        &bpe(config(&text, 0)).replace("vocab_size = 300", "vocab_size = 100"),
        tmp.path().join("bad"),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("must exceed the 256 byte tokens"), "{e}");
}
