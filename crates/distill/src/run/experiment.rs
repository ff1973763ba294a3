//! Running an experiment: data, the run folder, the checks of every phase before anything is
//! trained, then the scheme's phases in order (each a generic fit of its roles), and the report.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use burn::prelude::*;

use crate::config::diff::{differences, RESUMABLE};
use crate::config::experiment::EnsembleConfig;
use crate::config::experiment::StudentConfig;
use crate::config::{ExperimentConfig, Plan, StudentPlan};
use crate::data::graph::graph_tables;
use crate::data::retrieval::{load_retrieval, RetrievalSpec};
use crate::data::table::{load_csv, CsvSpec};
use crate::data::text::{load_text, TextSpec};
use crate::data::ts::load_ts;
use crate::data::view::resolve_views;
use crate::data::{DataSource, Dataset, Inputs};
use crate::error::{DistillError, Result};
use crate::models::Net;
use crate::report::{plot_curves, Report, Row};
use crate::run::device::plan_devices;
use crate::schemes::{Phase, PhaseOutput};
use crate::train::checkpoint::{load_model_dir, write_atomic};
use crate::train::{
    evaluate, evaluate_ensemble, DataBundle, Job, JobOutcome, Progress, Teacher, TeacherCache,
};

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
    let (mut train, mut test) = match (&plan.data.path, &plan.data.target) {
        (Some(path), Some(target)) if plan.data.source == DataSource::Csv => load_csv(&CsvSpec {
            path,
            target,
            test_fraction: plan.data.test_fraction.unwrap_or(0.2),
            split_seed: plan.data.split_seed.unwrap_or(0),
            group: plan.data.group.as_deref(),
        })?,
        (Some(path), _) if plan.data.source == DataSource::Ts => load_ts(
            path,
            plan.data.test_path.as_deref().ok_or_else(|| {
                DistillError::Config("data.source = \"ts\" needs data.test_path".into())
            })?,
        )?,
        (path, _) if plan.data.source == DataSource::Text => load_text(&TextSpec {
            path: path.as_deref().ok_or_else(|| {
                DistillError::Config(
                    "data.source = \"text\" needs data.path, the text file (scripts/fetch-data.sh moby-dick installs Moby-Dick)".into(),
                )
            })?,
            context: plan.data.context.unwrap_or(64),
            test_fraction: plan.data.test_fraction.unwrap_or(0.1),
            chapter_marker: plan.data.chapter_marker.as_deref().unwrap_or("CHAPTER"),
            tokenizer: plan.data.tokenizer.unwrap_or_default(),
            vocab_size: plan.data.vocab_size.unwrap_or(1024),
        })?,
        (Some(path), _) if plan.data.source == DataSource::Retrieval => {
            load_retrieval(&RetrievalSpec {
                path,
                tokenizer: plan.data.tokenizer_file.as_deref().ok_or_else(|| {
                    DistillError::Config(
                        "data.source = \"retrieval\" needs data.tokenizer_file".into(),
                    )
                })?,
                context: plan.data.context.unwrap_or(64),
                test_fraction: plan.data.test_fraction.unwrap_or(0.1),
                chapter_marker: plan.data.chapter_marker.as_deref().unwrap_or("CHAPTER"),
                list_size: plan.data.list_size.unwrap_or(8),
            })?
        }
        _ => plan
            .data
            .source
            .load(plan.data.dir.as_deref(), plan.data.image_size)?,
    };
    if let Some(n) = plan.data.train_limit {
        train = train.truncate(n);
    }
    if let Some(n) = plan.data.test_limit {
        test = test.truncate(n);
    }
    train.check_compatible(&test, "train vs test split")?;
    plan.task.check_data(&train)?;
    let mut graph = None;
    if let Some(g) = &plan.data.graph {
        let (tr, te, summary) = graph_tables(&train, &test, g, &Device::flex())?;
        (train, test, graph) = (tr, te, Some(summary));
    }
    if plan.data.labels {
        Dataset::settle_classes(
            &mut train,
            &mut test,
            plan.data.classes.or(plan.data.source.known_classes()),
        )?;
    } else {
        // An unlabeled transfer set: the teacher's classes (checked by `DataConfig::check`).
        let classes = plan.data.classes.unwrap_or(train.num_classes);
        train = train.without_targets().with_classes(classes);
        test = test.without_targets().with_classes(classes);
    }
    let norm = train.normalization();
    let views = resolve_views(&plan.data.view, &train, &norm)?;
    Ok(DataBundle {
        graph,
        views,
        class_pairs: false,
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

/// The frozen teachers as the plan describes them, before any phase ran: a loaded checkpoint
/// (checked against its `[[teacher]]`), or an untrained network of the described architecture,
/// used only to check the phases' tap names and shapes.
fn initial_teachers(plan: &Plan, data: &DataBundle, device: &Device) -> Result<Vec<Teacher>> {
    let geometry = data.geometry();
    let classes = data.train.num_classes;
    let mut teachers = Vec::new();
    for t in &plan.teachers {
        let view = data.view(&t.view)?.clone();
        if let Some(recipe) = t
            .from
            .as_ref()
            .and_then(|r| plan.students.iter().find(|s| &s.name == r))
        {
            let trained = data.view(&recipe.view)?.geometry(geometry);
            if trained != view.geometry(geometry) {
                return Err(DistillError::Shape {
                    context: format!(
                        "teacher '{}' reads view '{}', but recipe '{}' trains its student on view '{}'",
                        t.name, t.view, recipe.name, recipe.view
                    ),
                    expected: trained.to_vec(),
                    got: view.geometry(geometry).to_vec(),
                    fix: "; a model reads inputs of the shape it was trained on: give the teacher a view of that shape".into(),
                });
            }
        }
        let net = match &t.checkpoint {
            // someone else's weights: the section's architecture, built for this data, takes
            // them whole or the import is an error
            Some(file) if crate::models::interop::Format::of(file).is_some() => {
                if data.train.tokenizer().is_some() {
                    return Err(DistillError::Config(format!(
                        "teacher '{}': a language model's weights file {} carries no tokenizer, so nothing shows its token ids are the data's; point `checkpoint` at a checkpoint folder (model.bpk, model.json with its tokenizer), e.g. one `distill import --meta` wrote",
                        t.name,
                        file.display()
                    )));
                }
                let net = t.model.build(
                    view.geometry(geometry),
                    classes,
                    &device.clone().without_autodiff(),
                )?;
                crate::models::interop::import_weights(net, &t.model, file)?
            }
            Some(ckpt) => {
                let (net, meta) = load_model_dir(ckpt, &device.clone().without_autodiff())?;
                let differs = t.model.architecture_differences(&meta.config);
                if !differs.is_empty() {
                    return Err(DistillError::Config(format!(
                        "teacher '{}': checkpoint {} holds another architecture than its [[teacher]] section describes ({}; [[teacher]] vs the checkpoint's model.json); make the section match the checkpoint, or point `checkpoint` at a teacher of the described architecture",
                        t.name,
                        ckpt.display(),
                        differs.join("; ")
                    )));
                }
                if meta.tokenizer != data.train.tokenizer() {
                    let name = |t: Option<crate::data::text::Tokenizer>| {
                        t.map_or("none (not a language model)".into(), |t| t.name())
                    };
                    return Err(DistillError::Config(format!(
                        "teacher '{}': checkpoint {} was trained on tokens of tokenizer {}, but the data are tokenized with {}; teacher and student must share the vocabulary: set data.tokenizer to the checkpoint's, or train the teacher on this data",
                        t.name,
                        ckpt.display(),
                        name(meta.tokenizer),
                        name(data.train.tokenizer())
                    )));
                }
                if meta.input != geometry || meta.classes != classes {
                    return Err(DistillError::Shape {
                        context: format!("teacher checkpoint {} of '{}' (input geometry + classes) vs data", ckpt.display(), t.name),
                        expected: [geometry.as_slice(), &[classes]].concat(),
                        got: [meta.input.as_slice(), &[meta.classes]].concat(),
                        fix: "; train the teacher on this data set, or point data at the one it was trained on".into(),
                    });
                }
                if !meta.view.same_input(&view) {
                    return Err(DistillError::Config(format!(
                        "teacher '{}': checkpoint {} was trained on view {:?} of the samples, but its [[teacher]] section reads view '{}' ({view:?}); set the section's `view` to a [[data.view]] deriving what the checkpoint read",
                        t.name,
                        ckpt.display(),
                        meta.view,
                        t.view
                    )));
                }
                net
            }
            None => {
                device.seed(plan.seeds[0]);
                t.model
                    .build(view.geometry(geometry), classes, device)?
                    .valid()
            }
        };
        teachers.push(Teacher {
            name: t.name.clone(),
            shapes: net.tap_shapes(view.geometry(geometry), device),
            net,
            view,
            test_predictions: vec![],
            test_scores: vec![],
            cache: None,
            unready: t.from.as_ref().map(|r| {
                format!("it is the student of recipe '{r}', which trains later (or is this recipe)")
            }),
        });
    }
    Ok(teachers)
}

/// Refuses a model that cannot read the data's kind of input: a language model needs token
/// windows, a series model series of frames, and the other models images or table rows.
fn check_model_inputs(plan: &Plan, data: &Dataset) -> Result<()> {
    let roles =
        plan.teachers
            .iter()
            .map(|t| (&t.name, &t.model))
            .chain(plan.students.iter().flat_map(|s| {
                std::iter::once((&s.name, &s.model))
                    .chain(s.peers.iter().map(|p| (&p.name, &p.model)))
            }));
    let kind = match data.inputs {
        Inputs::Tokens { .. } => "token windows of a text",
        Inputs::Pairs { .. } => "query-passage pairs of token ids",
        Inputs::Sequence { .. } => "series of frames",
        Inputs::Image { .. } => "images",
        Inputs::Table { .. } => "table rows",
    };
    for (name, model) in roles {
        let fits = match data.inputs {
            Inputs::Tokens { .. } => model.reads_tokens(),
            Inputs::Pairs { .. } => model.reads_pairs(),
            // an MLP reads a padded series, mask column included, as one flat vector
            Inputs::Sequence { .. } => model.reads_series() || model.name() == "mlp",
            Inputs::Image { .. } | Inputs::Table { .. } => {
                !model.reads_tokens() && !model.reads_series() && !model.reads_pairs()
            }
        };
        if !fits {
            return Err(DistillError::Config(format!(
                "'{name}': model '{}' cannot read {kind}; use {}",
                model.name(),
                match data.inputs {
                    Inputs::Tokens { .. } => "model = \"gpt\" for a text",
                    Inputs::Pairs { .. } => "model = \"bert\" for a retrieval set",
                    Inputs::Sequence { .. } => "model = \"gru\", \"conv1d\" or \"mlp\" for series",
                    _ => "an image or table model (mlp, lenet, cnn, resnet…), or point [data] at a text (gpt) or .ts files (gru, conv1d)",
                }
            )));
        }
        if let (
            Inputs::Pairs {
                vocab, tokenizer, ..
            },
            Some(dims),
        ) = (&data.inputs, model.bert_dims())
        {
            if dims.vocab != *vocab {
                return Err(DistillError::Config(format!(
                    "'{name}': model 'bert' has a vocabulary of {} tokens, but the tokenizer {tokenizer} has {vocab}; set vocab = {vocab} in its section, or point data.tokenizer_file at the model's own tokenizer",
                    dims.vocab
                )));
            }
        }
    }
    Ok(())
}

/// Checks every phase of the plan (role names, tap names and shapes, method settings) against
/// the teachers as described, before anything is trained or written. Returns the teachers: the
/// loaded ones ready, the others untrained until their phase runs.
pub fn check_plan(
    plan: &Plan,
    data: &DataBundle,
    device: &Device,
    opts: &RunOptions,
) -> Result<Vec<Teacher>> {
    check_model_inputs(plan, &data.train)?;
    let mut teachers = initial_teachers(plan, data, device)?;
    let unready: Vec<Option<String>> = teachers.iter().map(|t| t.unready.clone()).collect();
    for phase in plan.scheme.phases(plan) {
        let phase_data = data.for_phase(&phase);
        let job = phase_job(
            &phase,
            phase.name.clone(),
            PathBuf::new(),
            plan.seeds[0],
            if phase.reads_teachers { &teachers } else { &[] },
            &phase_data,
            device,
            &[],
            opts,
        );
        match &phase.federation {
            Some(f) => crate::schemes::federated::check(f, &phase.seeds, job)?,
            None => drop(job.prepare()?),
        }
        // What the phase trains is ready for the phases after it.
        if let Some(i) = phase.output.teacher() {
            teachers[i].unready = None;
        }
    }
    for (t, u) in teachers.iter_mut().zip(unready) {
        t.unready = u;
    }
    Ok(teachers)
}

/// A teacher's row name: `teacher` when the plan has one teacher named after its architecture,
/// otherwise `teacher <name>`.
fn teacher_row_name(plan: &Plan, i: usize) -> String {
    let t = &plan.teachers[i];
    if plan.teachers.len() == 1 && t.name == t.model.name() {
        "teacher".into()
    } else {
        format!("teacher {}", t.name)
    }
}

/// Runs a whole experiment: the scheme's phases in order (teachers pretrained, then every student
/// recipe × seed for offline distillation); writes the results table, CSV, JSON and the
/// training-curve plot into the run folder and returns the report.
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
    if let Some(dir) = crate::run::device::kernel_cache_dir(plan.backend) {
        let first = !dir.exists();
        progress.line(&format!(
            "{}: kernels are compiled on first use and cached in {}{}",
            plan.backend.name(),
            dir.display(),
            if first {
                " (none cached yet: the first epochs wait for compilation, a minute or more)"
            } else {
                ""
            }
        ));
    }
    let phases = plan.scheme.phases(plan);
    let n = data.train.len();
    for p in &phases {
        let images = p.train_limit.map_or(n, |l| l.min(n));
        if p.train.batch_size > images {
            progress.line(&format!(
                "warning: {}: batch_size {} is larger than the {images} training images, so every epoch is one smaller batch; lower batch_size or use more data",
                p.name, p.train.batch_size
            ));
        }
    }
    progress.line(&format!(
        "data: {} train / {} test {}; run folder {}",
        data.train.len(),
        data.test.len(),
        match (data.train.labels(), &data.test.groups) {
            _ if data.train.tokenizer().is_some() => {
                let tk = data.train.tokenizer().unwrap_or_default();
                let per_token = match (&tk, &data.test.targets) {
                    (crate::data::text::Tokenizer::Bpe(_), crate::data::Targets::Tokens { ids, .. }) => {
                        format!(
                            "; {:.3} bytes per test target token (bits per byte = log2(ppl) / that)",
                            crate::data::text::bytes_per_token(&tk, ids)
                        )
                    }
                    _ => String::new(),
                };
                format!(
                    "windows of {} tokens ({} tokenizer, vocabulary {classes}{per_token})",
                    geometry[2],
                    tk.name()
                )
            }
            (Some(_), _) if matches!(data.train.inputs, Inputs::Sequence { .. }) => format!(
                "series of up to {} frames of {} values, {classes} classes",
                geometry[1],
                geometry[2] - 1
            ),
            (Some(_), _) if matches!(data.train.inputs, Inputs::Table { .. }) => {
                format!("rows of {} features, {classes} classes", geometry[2])
            }
            (Some(_), _) => format!("images of {geometry:?}, {classes} classes"),
            (None, None) if !data.test.has_targets() => format!(
                "images of {geometry:?} without labels (an unlabeled transfer set), {classes} teacher classes"
            ),
            (None, Some(lists)) if matches!(data.train.inputs, Inputs::Pairs { .. }) => format!(
                "(query, passage) pairs of up to {} tokens each in lists ({} test lists), relevance 1 for each query's source passage; tokenizer {}",
                geometry[2],
                lists.len(),
                match &data.train.inputs {
                    Inputs::Pairs { tokenizer, vocab, .. } => format!("{tokenizer} (vocabulary {vocab})"),
                    _ => String::new(),
                }
            ),
            (None, Some(lists)) => format!(
                "rows of {} features in lists ({} test lists), graded relevance",
                geometry[2],
                lists.len()
            ),
            (None, None) => format!(
                "rows of {} features, {classes} real target{}",
                geometry[2],
                if classes == 1 { "" } else { "s" }
            ),
        } + &data.graph.as_ref().map_or(String::new(), |g| format!(
            "; nodes of a k-NN graph ({} nodes, {} edges, {} features per node and hop; {:.1}% of training nodes agree with most of their training neighbours)",
            g.nodes, g.edges, g.features, 100.0 * g.homophily
        )),
        run_dir.display()
    ));

    // 1. Check every phase before anything is trained or written.
    let mut teachers = check_plan(plan, &data, &device, opts)?;

    std::fs::create_dir_all(&run_dir)
        .map_err(|e| DistillError::io("creating run folder", &run_dir, e))?;
    write_atomic(&run_dir.join("resolved.toml"), plan.to_toml().as_bytes())?;

    // 2. The loaded teachers are ready now; the others when their phase has run.
    let mut teacher_rows: Vec<Option<Row>> = vec![None; plan.teachers.len()];
    let mut curves = Vec::new();
    for (i, t) in plan.teachers.iter().enumerate() {
        if t.checkpoint.is_some() {
            let net = teachers[i].net.clone();
            teacher_rows[i] = Some(freeze_teacher(
                plan,
                i,
                &mut teachers[i],
                net,
                None,
                &data,
                &device,
                opts,
            ));
        }
    }

    // 3. The phases, in order.
    let mut rows: Vec<Row> = Vec::new();
    for phase in &phases {
        let phase_data = &data.for_phase(phase);
        let mut outcomes: Vec<JobOutcome> = Vec::new();
        let (mut diverged, mut collapsed) = (0, 0);
        for &seed in &phase.seeds {
            let dir = phase_dir(&run_dir, phase, seed);
            let label = match phase.output {
                PhaseOutput::Teacher(_) => phase.name.clone(),
                PhaseOutput::Rows { .. } => format!("{} seed {seed}", phase.name),
            };
            let job = phase_job(
                phase,
                label,
                dir,
                seed,
                if phase.reads_teachers { &teachers } else { &[] },
                phase_data,
                &device,
                &replicas,
                opts,
            );
            let result = match &phase.federation {
                Some(f) => crate::schemes::federated::run(f, job),
                None => job.prepare()?.run(),
            };
            match result {
                Ok(o) => outcomes.push(o),
                Err(e @ (DistillError::NonFinite { .. } | DistillError::Collapse { .. }))
                    if opts.keep_going
                        && matches!(phase.output, PhaseOutput::Rows { .. })
                        && (phase.output.teacher().is_none() || seed != phase.seeds[0]) =>
                {
                    let what = if matches!(e, DistillError::Collapse { .. }) {
                        collapsed += 1;
                        "collapsed"
                    } else {
                        diverged += 1;
                        "diverged"
                    };
                    progress.line(&format!(
                        "{} seed {seed}: {e}; recorded as {what}",
                        phase.name
                    ));
                }
                Err(e) => return Err(e),
            }
        }
        match phase.output {
            PhaseOutput::Teacher(i) => {
                let outcome = outcomes.pop().expect("a teacher phase has one seed");
                let (net, _) = load_model_dir(
                    &phase_dir(&run_dir, phase, phase.seeds[0]).join("best"),
                    &device.clone().without_autodiff(),
                )?;
                curves.push((phase.name.clone(), vec![outcome.history.clone()]));
                teacher_rows[i] = Some(freeze_teacher(
                    plan,
                    i,
                    &mut teachers[i],
                    net,
                    Some(&outcome),
                    &data,
                    &device,
                    opts,
                ));
            }
            PhaseOutput::Rows { teacher } => {
                if let Some(i) = teacher {
                    // The first seed's student teaches the recipes after this one.
                    let (net, _) = load_model_dir(
                        &phase_dir(&run_dir, phase, phase.seeds[0]).join("best"),
                        &device.clone().without_autodiff(),
                    )?;
                    let row =
                        freeze_teacher(plan, i, &mut teachers[i], net, None, &data, &device, opts);
                    // The recipe's row already scores its student; a teacher reading another
                    // view (the same model on another domain) is a new measurement.
                    if plan.teachers[i].view != phase.roles[0].view {
                        teacher_rows[i] = Some(row);
                    }
                }
                if !outcomes.is_empty() {
                    curves.push((
                        phase.name.clone(),
                        outcomes.iter().map(|o| o.history.clone()).collect(),
                    ));
                }
                let mut phase_rows = vec![Row::student(
                    &phase.name,
                    phase.roles[0].model.name(),
                    &outcomes,
                )];
                for (k, peer) in phase.roles.iter().enumerate().skip(1) {
                    let runs: Vec<JobOutcome> =
                        outcomes.iter().map(|o| o.peer_outcome(k - 1)).collect();
                    let name = format!("{} / {}", phase.name, peer.name);
                    if !runs.is_empty() {
                        curves.push((
                            name.clone(),
                            runs.iter().map(|o| o.history.clone()).collect(),
                        ));
                    }
                    phase_rows.push(Row::student(&name, peer.model.name(), &runs));
                }
                let n = phase.seeds.len();
                for row in &mut phase_rows {
                    for (count, what) in [(diverged, "diverged"), (collapsed, "collapsed")] {
                        if count > 0 {
                            row.name = format!("{} [{what}: {count}/{n} seeds]", row.name);
                        }
                    }
                }
                rows.extend(phase_rows);
            }
        }
    }

    for (t, plan_t) in teachers.iter().zip(&plan.teachers) {
        if let Some(cache) = &t.cache {
            let stats = cache.lock().unwrap_or_else(|e| e.into_inner()).stats();
            if stats.hits + stats.misses == 0 {
                continue; // no recipe read this teacher
            }
            progress.line(&format!(
                "teacher {} cache: {} batches served from the cache, {} computed, {:.1} MiB held",
                plan_t.name,
                stats.hits,
                stats.misses,
                stats.bytes as f64 / (1 << 20) as f64
            ));
        }
    }
    let mut all: Vec<Row> = teacher_rows.into_iter().flatten().collect();
    all.extend(rows);
    for e in &plan.ensembles {
        all.push(ensemble_row(e, plan, &teachers, &data, &device, opts));
    }
    let report = Report {
        title: plan.name.clone(),
        // An unlabeled transfer set has no accuracy: the agreement with the teacher heads it.
        metric: if plan.data.labels {
            plan.task.metric()
        } else {
            crate::report::Metric::Agreement
        },
        rows: all,
    };
    report.write(&run_dir)?;
    plot_curves(&run_dir.join("curves.svg"), &plan.name, &curves)?;
    Ok(report)
}

/// The results row of an ensemble of frozen teachers: their mean output on the test split.
fn ensemble_row(
    e: &EnsembleConfig,
    plan: &Plan,
    teachers: &[Teacher],
    data: &DataBundle,
    device: &Device,
    opts: &RunOptions,
) -> Row {
    // Teachers are in the plan's order; the names were checked when the plan was validated.
    let members: Vec<usize> = e
        .teachers
        .iter()
        .filter_map(|n| plan.teachers.iter().position(|t| &t.name == n))
        .collect();
    let eval = evaluate_ensemble(
        &members
            .iter()
            .map(|&i| (&teachers[i].net, &teachers[i].view))
            .collect::<Vec<_>>(),
        &data.test,
        &data.norm,
        data.eval_batch,
        device,
    );
    opts.progress.line(&format!(
        "{} (ensemble of {}): test {}",
        e.name,
        e.teachers.join(", "),
        crate::train::progress::evaluation_line(&eval)
    ));
    let params = members
        .iter()
        .map(|&i| crate::models::net::trainable_params(&teachers[i].net))
        .sum();
    let model = members
        .iter()
        .map(|&i| plan.teachers[i].model.name())
        .collect::<Vec<_>>()
        .join("+");
    let mut row = Row::teacher(&e.name, &model, params, eval.primary(), None);
    row.secondary = eval.secondary().map(|m| (m, 0.0));
    row
}

/// The folder of a phase's run at `seed`.
fn phase_dir(run_dir: &Path, phase: &Phase, seed: u64) -> PathBuf {
    match phase.output {
        PhaseOutput::Teacher(_) => run_dir.join(&phase.dir),
        PhaseOutput::Rows { .. } => run_dir.join(&phase.dir).join(format!("seed{seed}")),
    }
}

/// Makes `net` the frozen teacher `i`: evaluated on the test set, with its output cache; returns
/// its results row.
#[allow(clippy::too_many_arguments)]
fn freeze_teacher(
    plan: &Plan,
    i: usize,
    teacher: &mut Teacher,
    net: Net,
    outcome: Option<&JobOutcome>,
    data: &DataBundle,
    device: &Device,
    opts: &RunOptions,
) -> Row {
    let t = &plan.teachers[i];
    let eval = evaluate(
        &net,
        &teacher.view,
        &data.test,
        &data.norm,
        data.eval_batch,
        device,
    );
    opts.progress.line(&format!(
        "teacher {}: test {}",
        t.name,
        crate::train::progress::evaluation_line(&eval)
    ));
    let mut row = Row::teacher(
        &teacher_row_name(plan, i),
        t.model.name(),
        crate::models::net::trainable_params(&net),
        eval.primary(),
        outcome,
    );
    row.secondary = eval.secondary().map(|m| (m, 0.0));
    *teacher = Teacher {
        name: t.name.clone(),
        shapes: teacher.shapes.clone(),
        net,
        view: teacher.view.clone(),
        test_predictions: eval.predictions,
        test_scores: eval.scores,
        cache: (t.cache_mb > 0).then(|| {
            Arc::new(Mutex::new(
                TeacherCache::new(t.cache_mb).with_topk(t.cache_topk),
            ))
        }),
        unready: None,
    };
    row
}

#[allow(clippy::too_many_arguments)]
/// A job training `phase`'s roles at `seed` against `teachers`.
fn phase_job<'a>(
    phase: &'a Phase,
    label: String,
    dir: PathBuf,
    seed: u64,
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
        roles: phase.roles.clone(),
        losses: &phase.losses,
        train: &phase.train,
        teachers,
        data,
        device: device.clone(),
        replicas: replicas.to_vec(),
        resume: opts.resume,
        interrupt: opts.interrupt.clone(),
        stop_after: None,
        start: None,
        progress: opts.progress,
    }
}
