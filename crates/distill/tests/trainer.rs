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
    let a = setup
        .job(&tmp.path().join("a"))
        .prepare()
        .unwrap()
        .run()
        .unwrap();
    let b = setup
        .job(&tmp.path().join("b"))
        .prepare()
        .unwrap()
        .run()
        .unwrap();
    assert_eq!(a.history.len(), 3);
    for (x, y) in a.history.iter().zip(&b.history) {
        assert_eq!(
            (x.train_loss, x.test_acc, &x.terms),
            (y.train_loss, y.test_acc, &y.terms)
        );
    }
    assert!(a.history[0].terms.contains_key("kd") && a.history[0].terms.contains_key("ce"));
    assert!(a.agreement.is_some());
}

#[test]
fn resumed_run_ends_like_an_uninterrupted_one() {
    let _serial = serial();
    let setup = Setup::new(TINY);
    let tmp = tempfile::tempdir().unwrap();
    let full = setup
        .job(&tmp.path().join("full"))
        .prepare()
        .unwrap()
        .run()
        .unwrap();

    let dir = tmp.path().join("split");
    let part = setup.run_epochs(&dir, 2);
    assert!(part.partial);
    assert_eq!(part.history.len(), 2);
    let mut second = setup.job(&dir);
    second.resume = true;
    let resumed = second.prepare().unwrap().run().unwrap();
    assert_eq!(resumed.history.len(), 3);
    for (x, y) in full.history.iter().zip(&resumed.history) {
        assert_eq!(
            (x.epoch, x.train_loss, x.test_acc),
            (y.epoch, y.train_loss, y.test_acc),
            "epoch {}",
            x.epoch
        );
    }
    let lines = std::fs::read_to_string(dir.join("metrics.jsonl")).unwrap();
    assert_eq!(lines.lines().count(), 3);
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
