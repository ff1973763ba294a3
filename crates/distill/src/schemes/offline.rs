//! Offline distillation (the survey's first scheme): teachers are trained first, or loaded,
//! then frozen; each student recipe is trained against them once per seed.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use burn::prelude::*;

use crate::config::diff::{differences, RESUMABLE};
use crate::config::experiment::StudentConfig;
use crate::config::{ExperimentConfig, Plan, StudentPlan};
use crate::data::Dataset;
use crate::error::{DistillError, Result};
use crate::knowledge::{ce::CeConfig, MethodConfig};
use crate::models::Net;
use crate::report::{plot_curves, Report, Row};
use crate::run::device::plan_devices;
use crate::train::checkpoint::{load_model_dir, write_atomic};
use crate::train::{evaluate, DataBundle, Job, JobOutcome, Progress, Teacher, TeacherCache};

/// How to run an experiment.
#[derive(Clone)]
pub struct RunOptions {
    /// The run folder (default `output_dir/name`).
    pub run_dir: Option<PathBuf>,
    /// Continue an interrupted run in an existing folder.
    pub resume: bool,
    /// Progress reporting.
    pub progress: Progress,
    /// Set to stop between two steps (Ctrl-C).
    pub interrupt: Option<Arc<AtomicBool>>,
    /// Record a student seed whose loss goes non-finite (or that collapses) as diverged (or
    /// collapsed) and go on with the next one
    /// (sweeps), instead of stopping the experiment.
    pub keep_going: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            run_dir: None,
            resume: false,
            progress: Progress::Bar,
            interrupt: None,
            keep_going: false,
        }
    }
}

/// Loads the plan's data (train limit, test limit, normalisation from the training split).
pub fn load_data(plan: &Plan) -> Result<DataBundle> {
    let (mut train, mut test) = plan.data.source.load(plan.data.dir.as_deref())?;
    if let Some(n) = plan.data.train_limit {
        train = train.truncate(n);
    }
    if let Some(n) = plan.data.test_limit {
        test = test.truncate(n);
    }
    train.check_compatible(&test, "train vs test split")?;
    Dataset::settle_classes(
        &mut train,
        &mut test,
        plan.data.classes.or(plan.data.source.known_classes()),
    )?;
    let norm = train.normalization();
    Ok(DataBundle {
        train: Arc::new(train),
        test: Arc::new(test),
        norm,
        augment: plan.data.augment,
        eval_batch: plan.data.eval_batch_size,
    })
}

/// Checks the run folder before anything is written: a used folder needs `--resume`, and
/// `--resume` needs a run there whose settings still hold. Returns warnings to print.
pub(crate) fn check_run_dir(dir: &Path, resume: bool, plan: &Plan) -> Result<Vec<String>> {
    let resolved = dir.join("resolved.toml");
    let used = resolved.exists();
    if used && !resume {
        return Err(DistillError::Config(format!(
            "run folder {} already holds a run; pass --resume to continue it, or change `name` / --out to start a new one (nothing was overwritten)",
            dir.display()
        )));
    }
    if resume && !used {
        return Err(DistillError::Config(format!(
            "--resume: {} holds no run to continue (no resolved.toml there); check the folder name, or drop --resume to start a new run",
            dir.display()
        )));
    }
    let mut warnings = Vec::new();
    if resume {
        let text = std::fs::read_to_string(&resolved)
            .map_err(|e| DistillError::io("reading", &resolved, e))?;
        let before = ExperimentConfig::from_toml(&text, &resolved.display().to_string())
            .and_then(|e| e.validate())
            .map_err(|e| {
                DistillError::Config(format!(
                    "--resume cannot check {} against the run's settings ({e}); it was probably written by an older distill: finish that run with the version that started it, or start a new run (nothing was changed)",
                    resolved.display()
                ))
            })?;
        let changed = resume_differences(&before, plan);
        if !changed.is_empty() {
            return Err(DistillError::Config(format!(
                "--resume would continue {} with changed settings: {} (as started vs now); restore them, or start a new run with another `name` / --out (nothing was changed)",
                dir.display(),
                changed.join("; ")
            )));
        }
    } else if dir.is_dir()
        && std::fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_some())
    {
        warnings.push(format!(
            "warning: {} exists and is not a run folder; the run's files are written into it next to what it holds",
            dir.display()
        ));
    }
    Ok(warnings)
}

/// The settings in which `now` would change a run started as `before`, as `key: old vs new`.
/// Seeds and students may be added (they start fresh runs); the run's name and output root may
/// differ (the folder is given); everything else, and every student both name, must match.
fn resume_differences(before: &Plan, now: &Plan) -> Vec<String> {
    let value = |p: &Plan| {
        let mut v = serde_json::to_value(p.to_experiment()).expect("plans serialise");
        if let Some(t) = v.as_object_mut() {
            for k in ["name", "output_dir", "seeds", "student"] {
                t.remove(k);
            }
        }
        v
    };
    let mut out = Vec::new();
    differences(&value(before), &value(now), "", RESUMABLE, &mut out);
    for s in &now.students {
        if let Some(old) = before.students.iter().find(|o| o.name == s.name) {
            let json = |p: &StudentPlan| {
                serde_json::to_value(StudentConfig::from(p)).expect("students serialise")
            };
            let path = format!("student '{}'", s.name);
            differences(&json(old), &json(s), &path, RESUMABLE, &mut out);
        }
    }
    out
}

/// Builds the teacher (loaded from its checkpoint, or untrained) and prepares every student
/// recipe against it, so that tap names, shapes and method settings are checked before any
/// training. Returns the loaded teacher (if any) and the teachers list used for the checks.
pub fn check_plan(
    plan: &Plan,
    data: &DataBundle,
    device: &Device,
    opts: &RunOptions,
) -> Result<(Option<Net>, Vec<Teacher>)> {
    let geometry = data.geometry();
    let classes = data.train.num_classes;
    let first_seed = plan.seeds[0];
    let loaded = match plan.teacher.as_ref().and_then(|t| t.checkpoint.as_ref()) {
        Some(ckpt) => {
            let (net, meta) = load_model_dir(ckpt, &device.clone().without_autodiff())?;
            let differs = plan
                .teacher
                .as_ref()
                .map(|t| t.model.architecture_differences(&meta.config))
                .unwrap_or_default();
            if !differs.is_empty() {
                return Err(DistillError::Config(format!(
                    "teacher checkpoint {} holds another architecture than [teacher] describes ({}; [teacher] vs the checkpoint's model.json); make [teacher] match the checkpoint, or point `checkpoint` at a teacher of the described architecture",
                    ckpt.display(),
                    differs.join("; ")
                )));
            }
            if meta.input != geometry || meta.classes != classes {
                return Err(DistillError::Shape {
                    context: format!("teacher checkpoint {} (input geometry + classes) vs data", ckpt.display()),
                    expected: [geometry.as_slice(), &[classes]].concat(),
                    got: [meta.input.as_slice(), &[meta.classes]].concat(),
                    fix: "; train the teacher on this data set, or point data at the one it was trained on".into(),
                });
            }
            Some(net)
        }
        None => None,
    };
    let mut teachers: Vec<Teacher> = Vec::new();
    if let Some(t) = &plan.teacher {
        device.seed(first_seed);
        let net = match &loaded {
            Some(n) => n.clone(),
            None => t.model.build(geometry, classes, device)?.valid(),
        };
        teachers.push(Teacher {
            name: t.model.model.clone(),
            shapes: net.tap_shapes(geometry, device),
            net,
            test_predictions: vec![],
            test_accuracy: 0.0,
            cache: None,
        });
    }
    for s in &plan.students {
        let limited = s.train_limit.map(|n| data.with_train_limit(n));
        recipe_job(
            s.name.clone(),
            PathBuf::new(),
            first_seed,
            s,
            &teachers,
            limited.as_ref().unwrap_or(data),
            device,
            &[],
            opts,
        )
        .prepare()?;
    }
    Ok((loaded, teachers))
}

/// Runs a whole experiment: teacher, then every student recipe × seed; writes the results table,
/// CSV, JSON and the training-curve plot into the run folder and returns the report.
pub fn run_experiment(plan: &Plan, opts: &RunOptions) -> Result<Report> {
    let (device, replicas) = plan_devices(plan.backend, &plan.devices)?;
    let data = load_data(plan)?;
    let run_dir = opts
        .run_dir
        .clone()
        .unwrap_or_else(|| plan.output_dir.join(&plan.name));
    let warnings = check_run_dir(&run_dir, opts.resume, plan)?;
    let geometry = data.geometry();
    let classes = data.train.num_classes;
    let progress = opts.progress;
    for w in &warnings {
        progress.line(w);
    }
    let n = data.train.len();
    let batches = plan
        .teacher
        .iter()
        .filter(|t| t.checkpoint.is_none())
        .map(|t| ("the teacher", t.train.batch_size, n))
        .chain(plan.students.iter().map(|s| {
            let images = s.train_limit.map_or(n, |l| l.min(n));
            (s.name.as_str(), s.train.batch_size, images)
        }));
    for (who, batch, images) in batches {
        if batch > images {
            progress.line(&format!(
                "warning: {who}: batch_size {batch} is larger than the {images} training images, so every epoch is one smaller batch; lower batch_size or use more data"
            ));
        }
    }
    progress.line(&format!(
        "data: {} train / {} test images of {:?}, {classes} classes; run folder {}",
        data.train.len(),
        data.test.len(),
        geometry,
        run_dir.display()
    ));

    // 1. Check every student recipe against the (untrained or loaded) teacher before anything
    //    is trained or written.
    let first_seed = plan.seeds[0];
    let (loaded, mut teachers) = check_plan(plan, &data, &device, opts)?;

    std::fs::create_dir_all(&run_dir)
        .map_err(|e| DistillError::io("creating run folder", &run_dir, e))?;
    write_atomic(&run_dir.join("resolved.toml"), plan.to_toml().as_bytes())?;

    // 2. The teacher.
    let mut rows = Vec::new();
    let mut curves = Vec::new();
    if let Some(t) = &plan.teacher {
        let teacher_dir = run_dir.join("teacher");
        let (net, outcome) = match loaded {
            Some(net) => (net, None),
            None => {
                // The teacher is trained like a student recipe whose objective is cross-entropy alone.
                let recipe = StudentPlan {
                    name: format!("teacher {}", t.model.model),
                    model: t.model.clone(),
                    train_limit: None,
                    losses: vec![MethodConfig::Ce(CeConfig {
                        weight: 1.0,
                        label_smoothing: 0.0,
                        student: 0,
                    })],
                    train: t.train.clone(),
                };
                let job = recipe_job(
                    recipe.name.clone(),
                    teacher_dir.clone(),
                    first_seed,
                    &recipe,
                    &[],
                    &data,
                    &device,
                    &replicas,
                    opts,
                );
                let outcome = job.prepare()?.run()?;
                let (net, _) = load_model_dir(
                    &teacher_dir.join("best"),
                    &device.clone().without_autodiff(),
                )?;
                (net, Some(outcome))
            }
        };
        let eval = evaluate(&net, &data.test, &data.norm, data.eval_batch, &device);
        progress.line(&format!(
            "teacher {}: test accuracy {:.2}%",
            t.model.model,
            100.0 * eval.accuracy
        ));
        if let Some(o) = &outcome {
            curves.push((
                format!("teacher {}", t.model.model),
                vec![o.history.clone()],
            ));
        }
        rows.push(Row::teacher(
            &t.model.model,
            crate::models::net::trainable_params(&net),
            eval.accuracy,
            outcome.as_ref(),
        ));
        teachers[0] = Teacher {
            name: t.model.model.clone(),
            shapes: teachers[0].shapes.clone(),
            net,
            test_accuracy: eval.accuracy,
            test_predictions: eval.predictions,
            cache: (t.cache_mb > 0)
                .then(|| std::sync::Arc::new(std::sync::Mutex::new(TeacherCache::new(t.cache_mb)))),
        };
    }

    // 3. Every student recipe, once per seed.
    for s in &plan.students {
        let limited = s.train_limit.map(|n| data.with_train_limit(n));
        let student_data = limited.as_ref().unwrap_or(&data);
        let mut outcomes: Vec<JobOutcome> = Vec::new();
        let (mut diverged, mut collapsed) = (0, 0);
        for &seed in &plan.seeds {
            let dir = run_dir
                .join("students")
                .join(sanitize(&s.name))
                .join(format!("seed{seed}"));
            let job = recipe_job(
                format!("{} seed {seed}", s.name),
                dir,
                seed,
                s,
                &teachers,
                student_data,
                &device,
                &replicas,
                opts,
            );
            match job.prepare()?.run() {
                Ok(o) => outcomes.push(o),
                Err(e @ (DistillError::NonFinite { .. } | DistillError::Collapse { .. }))
                    if opts.keep_going =>
                {
                    let what = if matches!(e, DistillError::Collapse { .. }) {
                        collapsed += 1;
                        "collapsed"
                    } else {
                        diverged += 1;
                        "diverged"
                    };
                    progress.line(&format!("{} seed {seed}: {e}; recorded as {what}", s.name));
                }
                Err(e) => return Err(e),
            }
        }
        if !outcomes.is_empty() {
            curves.push((
                s.name.clone(),
                outcomes.iter().map(|o| o.history.clone()).collect(),
            ));
        }
        let mut row = Row::student(&s.name, &s.model.model, &outcomes);
        let n = plan.seeds.len();
        for (count, what) in [(diverged, "diverged"), (collapsed, "collapsed")] {
            if count > 0 {
                row.name = format!("{} [{what}: {count}/{n} seeds]", row.name);
            }
        }
        rows.push(row);
    }

    if let Some(cache) = teachers.first().and_then(|t| t.cache.as_ref()) {
        let stats = cache.lock().unwrap_or_else(|e| e.into_inner()).stats();
        progress.line(&format!(
            "teacher cache: {} batches served from the cache, {} computed, {:.1} MiB held",
            stats.hits,
            stats.misses,
            stats.bytes as f64 / (1 << 20) as f64
        ));
    }
    let report = Report {
        title: plan.name.clone(),
        rows,
    };
    report.write(&run_dir)?;
    plot_curves(&run_dir.join("curves.svg"), &plan.name, &curves)?;
    Ok(report)
}

#[allow(clippy::too_many_arguments)]
/// A job training `recipe` at `seed` against `teachers`.
fn recipe_job<'a>(
    label: String,
    dir: PathBuf,
    seed: u64,
    s: &'a StudentPlan,
    teachers: &'a [Teacher],
    data: &'a DataBundle,
    device: &Device,
    replicas: &[Device],
    opts: &RunOptions,
) -> Job<'a> {
    Job {
        label,
        dir,
        seed,
        model: s.model.clone(),
        losses: &s.losses,
        train: &s.train,
        teachers,
        data,
        device: device.clone(),
        replicas: replicas.to_vec(),
        resume: opts.resume,
        interrupt: opts.interrupt.clone(),
        stop_after: None,
        progress: opts.progress,
    }
}

fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.+".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}
