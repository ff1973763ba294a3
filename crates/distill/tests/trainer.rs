//! Trainer behaviour: determinism, resumption, interruption, non-finite losses, checkpoints.

mod common;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use common::*;
use distill::train::checkpoint::load_model_dir;
use distill::DistillError;

#[test]
fn same_seed_gives_identical_metrics() {
    let _serial = serial();
    let setup = Setup::new(TINY);
    let tmp = tempfile::tempdir().unwrap();
    let a = setup.train(&tmp.path().join("a"));
    let b = setup.train(&tmp.path().join("b"));
    assert_eq!(a.history.len(), 3);
    assert_same_history(&a, &b);
    assert!(a.history[0].terms.contains_key("kd") && a.history[0].terms.contains_key("ce"));
    assert!(a.agreement.is_some());
}

#[test]
fn resumed_run_ends_like_an_uninterrupted_one() {
    let _serial = serial();
    let setup = Setup::new(TINY);
    let tmp = tempfile::tempdir().unwrap();
    let full = setup.train(&tmp.path().join("full"));

    let dir = tmp.path().join("split");
    let part = setup.run_epochs(&dir, 2);
    assert!(part.partial);
    assert_eq!(part.history.len(), 2);
    let resumed = setup.resume(&dir);
    assert_eq!(resumed.history.len(), 3);
    assert_same_history(&full, &resumed);
    let lines = std::fs::read_to_string(dir.join("metrics.jsonl")).unwrap();
    assert_eq!(lines.lines().count(), 3);
}

#[test]
fn resume_refuses_a_changed_recipe() {
    let _serial = serial();
    let setup = Setup::new(TINY);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    setup.run_epochs(&dir, 1);
    let mut other = setup.plan.students[0].train.clone();
    other.lr *= 2.0;
    let mut job = setup.job_with(&dir, &other);
    job.resume = true;
    let err = job.prepare().unwrap().run().unwrap_err().to_string();
    assert!(err.contains("train.lr: 0.05 vs 0.1"), "{err}");
    // The run is untouched and still resumes with its own settings.
    let mut job = setup.job(&dir);
    job.resume = true;
    assert_eq!(job.prepare().unwrap().run().unwrap().history.len(), 3);
}

/// Methods with an initialisation stage (AB, FT) and with state (CRD's memory bank) go through
/// the same trainer: stages run in order, and a run resumed at any epoch boundary, including
/// the one between the stages, ends exactly like an uninterrupted one.
#[test]
fn staged_and_stateful_methods_resume_exactly() {
    const STAGED: &str = r#"
name = "staged"
seeds = [1]
[data]
train_limit = 192
test_limit = 64
[train]
epochs = 2
batch_size = 32
lr = 0.02
stop_on_collapse = false # the teacher is untrained
[[teacher]]
model = "lenet"
[[student]]
name = "staged"
model = "lenet"
[[student.loss]]
method = "ce"
[[student.loss]]
method = "ab"
init_epochs = 1
student_taps = ["conv1_pre", "conv2_pre"]
teacher_taps = ["conv1_pre", "conv2_pre"]
[[student.loss]]
method = "ft"
init_epochs = 1
student_tap = "conv2"
teacher_tap = "conv2"
[[student.loss]]
method = "crd"
nce_k = 64
"#;
    let _serial = serial();
    let setup = Setup::with_teacher(
        STAGED,
        distill::models::ModelConfig::Lenet { width: Some(1) },
    );
    let tmp = tempfile::tempdir().unwrap();
    let full = setup.train(&tmp.path().join("full"));
    // Tables show the main stage only; the log keeps the initialisation epoch first.
    assert_eq!(full.history.len(), 2);
    assert!(full
        .history
        .iter()
        .all(|r| !r.init && r.terms.contains_key("crd")));
    assert!(!full.history[0].terms.contains_key("ab"));
    let log = std::fs::read_to_string(tmp.path().join("full/metrics.jsonl")).unwrap();
    let first: serde_json::Value = serde_json::from_str(log.lines().next().unwrap()).unwrap();
    assert_eq!(first["init"], true);
    assert!(first["terms"]["ab"].as_f64().unwrap() > 0.0);
    assert!(first["terms"]["ft_rec"].as_f64().unwrap() > 0.0);
    assert!(first["terms"].get("crd").is_none());
    // Stage losses carry their stage weight (1 for both), not FT's main-stage weight 200.
    let stage_sum =
        first["terms"]["ab"].as_f64().unwrap() + first["terms"]["ft_rec"].as_f64().unwrap();
    let logged = first["train_loss"].as_f64().unwrap();
    assert!(
        (logged - stage_sum).abs() <= 1e-4 * stage_sum,
        "{logged} vs {stage_sum}"
    );

    let dir = tmp.path().join("split");
    for stop in [1, 2] {
        let mut job = setup.job(&dir);
        job.resume = stop > 1;
        job.stop_after = Some(stop);
        assert!(job.prepare().unwrap().run().unwrap().partial);
    }
    let mut job = setup.job(&dir);
    job.resume = true;
    let resumed = job.prepare().unwrap().run().unwrap();
    assert_eq!(resumed.history.len(), 2);
    assert_same_history(&full, &resumed);
}

#[test]
fn interruption_keeps_the_last_complete_checkpoint() {
    let _serial = serial();
    let setup = Setup::new(TINY);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    setup.run_epochs(&dir, 1);
    let mut second = setup.job(&dir);
    second.resume = true;
    second.interrupt = Some(Arc::new(AtomicBool::new(true)));
    match second.prepare().unwrap().run() {
        Err(DistillError::Interrupted { completed }) => assert_eq!(completed, 1),
        other => panic!(
            "expected an interruption, got {:?}",
            other.map(|o| o.history.len())
        ),
    }
    let device = distill::burn::prelude::Device::flex();
    assert!(load_model_dir(&dir.join("last"), &device).is_ok());
    assert!(load_model_dir(&dir.join("best"), &device).is_ok());
}

#[test]
fn non_finite_loss_stops_and_names_the_term() {
    let _serial = serial();
    let setup = Setup::new(TINY);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    setup.run_epochs(&dir, 1);
    let before = std::fs::read(dir.join("last/state.json")).unwrap();

    // An exploding learning rate stands in for a loss that turns non-finite mid-run; the run's
    // job.json goes so that --resume accepts the changed recipe.
    std::fs::remove_file(dir.join("job.json")).unwrap();
    let mut exploding = setup.plan.students[0].train.clone();
    exploding.lr = 1e30;
    let mut second = setup.job_with(&dir, &exploding);
    second.resume = true;
    let err = second.prepare().unwrap().run().unwrap_err();
    match &err {
        DistillError::NonFinite { term, epoch, .. } => {
            assert!(term == "ce" || term == "kd", "{term}");
            assert_eq!(*epoch, 2);
        }
        other => panic!("expected NonFinite, got {other}"),
    }
    assert!(err
        .to_string()
        .contains("last complete checkpoint was kept"));
    assert_eq!(std::fs::read(dir.join("last/state.json")).unwrap(), before);
}

#[test]
fn a_collapsing_student_stops_and_names_the_term() {
    // DKD fell to chance in every seed of the Fashion-MNIST table and the run finished as if
    // nothing had happened. Following the (untrained) teacher keeps this student at chance.
    let _serial = serial();
    let setup = Setup::new(
        &TINY
            .replace("stop_on_collapse = false", "stop_on_collapse = true")
            .replace(
                "method = \"ce\"\nweight = 0.1",
                "method = \"ce\"\nweight = 0.0",
            ),
    );
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    let err = setup.job(&dir).prepare().unwrap().run().unwrap_err();
    match &err {
        DistillError::Collapse {
            term, epoch, what, ..
        } => {
            assert_eq!((term.as_str(), *epoch), ("kd", 2));
            assert!(what.contains("most frequent class"), "{what}");
        }
        other => panic!("expected Collapse, got {other}"),
    }
    let msg = err.to_string();
    assert!(
        msg.contains("train.grad_clip") && msg.contains("stop_on_collapse"),
        "{msg}"
    );
    // what was written stays: both epochs' metrics and the checkpoints
    let lines = std::fs::read_to_string(dir.join("metrics.jsonl")).unwrap();
    assert_eq!(lines.lines().count(), 2);
    let device = distill::burn::prelude::Device::flex();
    assert!(load_model_dir(&dir.join("best"), &device).is_ok());
    // --resume reports the collapse again rather than training on quietly ...
    let mut again = setup.job(&dir);
    again.resume = true;
    let err = again.prepare().unwrap().run().unwrap_err();
    assert!(
        matches!(err, DistillError::Collapse { epoch: 2, .. }),
        "{err}"
    );
    // ... unless the check is switched off, which --resume accepts as the message says.
    let mut lenient = setup.plan.students[0].train.clone();
    lenient.stop_on_collapse = false;
    let mut on = setup.job_with(&dir, &lenient);
    on.resume = true;
    assert_eq!(on.prepare().unwrap().run().unwrap().history.len(), 3);
}

#[test]
fn teacher_student_shape_mismatch_is_caught_before_training() {
    let _serial = serial();
    let text = TINY.replace(
        "[[student.loss]]\nmethod = \"kd\"\n",
        "[[student.loss]]\nmethod = \"fitnet\"\nstudent_tap = \"fc1\"\nteacher_tap = \"logitz\"\n",
    );
    let setup = Setup::new(&text);
    let tmp = tempfile::tempdir().unwrap();
    let err = setup
        .job(&tmp.path().join("x"))
        .prepare()
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("unknown tap of teacher 'mlp' 'logitz'")
            && err.contains("did you mean 'logits'"),
        "{err}"
    );
    assert!(
        !tmp.path().join("x").exists(),
        "nothing is written before training"
    );
}

#[test]
fn teacher_cache_serves_later_epochs_and_keeps_the_results() {
    let _serial = serial();
    let mut setup = Setup::new(TINY);
    let tmp = tempfile::tempdir().unwrap();
    let plain = setup.train(&tmp.path().join("plain"));
    setup.teachers[0].cache = Some(std::sync::Arc::new(std::sync::Mutex::new(
        distill::train::TeacherCache::new(64),
    )));
    let cached = setup.train(&tmp.path().join("cached"));
    let stats = setup.teachers[0]
        .cache
        .as_ref()
        .unwrap()
        .lock()
        .unwrap()
        .stats();
    // 256 samples in batches of 32, no augmentation: epoch 1 computes, epochs 2 and 3 reuse.
    assert_eq!((stats.misses, stats.hits), (8, 16));
    assert!(stats.bytes > 0);
    for (a, b) in plain.history.iter().zip(&cached.history) {
        assert!(
            (a.train_loss - b.train_loss).abs() <= 1e-4 * a.train_loss.abs(),
            "epoch {}: {} vs {}",
            a.epoch,
            a.train_loss,
            b.train_loss
        );
        // The cached teacher outputs were computed in other batches than the recomputed ones;
        // a CPU whose kernels round a row differently by batch may move a prediction or two.
        assert!(
            (a.test_acc.unwrap() - b.test_acc.unwrap()).abs() <= 2.0 / 128.0,
            "epoch {}: {:?} vs {:?}",
            a.epoch,
            a.test_acc,
            b.test_acc
        );
    }
}

/// Mutual learning: two trainable roles in one job, each reading the other as a constant.
const PEERS: &str = r#"
name = "peers"
seeds = [1]
[data]
train_limit = 256
test_limit = 128
[train]
epochs = 3
batch_size = 32
lr = 0.05
[[student]]
name = "dml"
model = "mlp"
hidden = [16]
[[student.peer]]
name = "wide"
model = "mlp"
hidden = [32]
[[student.loss]]
method = "ce"
[[student.loss]]
method = "ce"
student = "wide"
[[student.loss]]
method = "kd"
teacher = "wide"
temperature = 1.0
weight = 1.0
[[student.loss]]
method = "kd"
student = "wide"
teacher = "student"
temperature = 1.0
weight = 1.0
"#;

#[test]
fn peers_train_jointly_and_resume_exactly() {
    let _serial = serial();
    let setup = Setup::new(PEERS);
    let tmp = tempfile::tempdir().unwrap();
    let full = setup.train(&tmp.path().join("full"));
    // both roles are trained, evaluated and checkpointed
    assert_eq!(full.peers.len(), 1);
    let peer = &full.peers[0];
    assert_eq!((peer.name.as_str(), peer.history.len()), ("wide", 3));
    assert!(peer.best > 0.2, "the peer learns: {peer:?}");
    assert!(
        full.history[0].terms.contains_key("kd#2"),
        "{:?}",
        full.history[0].terms
    );
    for f in [
        "best/model.bpk",
        "peers/wide/best/model.bpk",
        "peers/wide/last/model.json",
    ] {
        assert!(tmp.path().join("full").join(f).exists(), "{f}");
    }
    // and a run stopped after one epoch ends like the uninterrupted one, the peer included
    let dir = tmp.path().join("split");
    setup.run_epochs(&dir, 1);
    let resumed = setup.resume(&dir);
    assert_same_history(&full, &resumed);
    assert_eq!(resumed.peers[0].history, full.peers[0].history);
}

#[test]
fn a_recipe_without_labels_trains_on_the_teacher_alone() {
    let _serial = serial();
    let text = TINY
        .replace("name = \"kd\"\n", "name = \"kd\"\nlabels = false\n")
        .replace("[[student.loss]]\nmethod = \"ce\"\nweight = 0.1\n", "");
    let setup = Setup::new(&text);
    assert!(!setup.plan.students[0].labels);
    let tmp = tempfile::tempdir().unwrap();
    let out = setup.train(&tmp.path().join("run"));
    let first = &out.history[0];
    // no training metric without labels; the test split keeps its labels
    assert_eq!(first.train_acc, None);
    assert!(first.test_acc.is_some() && first.terms.keys().eq(["kd"]));
    let log = std::fs::read_to_string(tmp.path().join("run/metrics.jsonl")).unwrap();
    assert!(!log.contains("train_acc"), "{log}");
    let spec = std::fs::read_to_string(tmp.path().join("run/job.json")).unwrap();
    assert!(spec.contains("\"unlabeled\": true"), "{spec}");
}

/// TINY with its `[train]` at `precision`.
fn tiny_at(precision: &str) -> String {
    TINY.replace(
        "[train]\n",
        &format!("[train]\nprecision = \"{precision}\"\n"),
    )
}

#[test]
fn half_precision_runs_train_near_f32_resume_exactly_and_store_f32_weights() {
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let f32_run = Setup::new(TINY).train(&tmp.path().join("f32"));
    for precision in ["bf16", "f16"] {
        let setup = Setup::new(&tiny_at(precision));
        let root = tmp.path().join(precision);
        let full = setup.train(&root.join("full"));
        // rounding moves the run, but not far: the same data, seed and steps
        assert_ne!(full.history[0].train_loss, f32_run.history[0].train_loss);
        for (h, f) in full.history.iter().zip(&f32_run.history) {
            assert!(
                (h.train_loss - f.train_loss).abs() < 0.05 * f.train_loss,
                "{precision} epoch {}: loss {} vs f32 {}",
                h.epoch,
                h.train_loss,
                f.train_loss
            );
        }
        // resumed from its checkpoint (f16: with its loss scale), a run ends exactly as an
        // uninterrupted one
        let dir = root.join("split");
        setup.run_epochs(&dir, 2);
        let state = std::fs::read_to_string(dir.join("last/state.json")).unwrap();
        assert_eq!(state.contains("\"scaler\""), precision == "f16", "{state}");
        assert_same_history(&full, &setup.resume(&dir));
        // the checkpoint holds the f32 master weights, and loads as any other
        let device = distill::burn::prelude::Device::flex();
        let (net, _) = load_model_dir(&dir.join("last"), &device).unwrap();
        struct Dtypes(Vec<distill::burn::tensor::DType>);
        impl distill::burn::module::ModuleVisitor for Dtypes {
            fn visit_float<const D: usize>(
                &mut self,
                p: &distill::burn::module::Param<distill::burn::prelude::Tensor<D>>,
            ) {
                self.0.push(p.val().dtype());
            }
        }
        let mut seen = Dtypes(Vec::new());
        distill::burn::module::Module::visit(&net, &mut seen);
        assert!(!seen.0.is_empty());
        assert!(seen
            .0
            .iter()
            .all(|d| *d == distill::burn::tensor::DType::F32));
    }
}

#[test]
fn f16_overflow_skips_updates_backs_off_the_scale_and_resumes_with_it() {
    let _serial = serial();
    // a CE weight of 10⁴ makes the logits' gradients ~300: scaled by 2¹⁶ they overflow f16, so
    // the first updates are skipped while the scale halves (a tiny rate keeps SGD stable)
    let text = tiny_at("f16")
        .replace("lr = 0.05", "lr = 0.000001")
        .replace("weight = 0.1", "weight = 10000.0");
    let setup = Setup::new(&text);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("split");
    setup.run_epochs(&dir, 1);
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("last/state.json")).unwrap())
            .unwrap();
    let scale = state["scaler"]["scale"].as_f64().unwrap();
    assert!(scale < 65536.0, "the scale did not back off: {scale}");
    assert!(scale > 0.0 && scale.log2().fract() == 0.0, "{scale}");
    // resumed, the run goes on from the backed-off scale exactly as an uninterrupted one
    let full = setup.train(&tmp.path().join("full"));
    assert_same_history(&full, &setup.resume(&dir));
    assert!(full.history.iter().all(|h| h.train_loss.is_finite()));
}
