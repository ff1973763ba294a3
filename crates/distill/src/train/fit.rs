//! The fit loop: a prepared job trained epoch by epoch (stages, schedules, evaluation, best and
//! last checkpoints, resumption, interruption, collapse and non-finite checks).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use burn::prelude::*;
use serde::{Deserialize, Serialize};

use super::checkpoint::{resolve_dir, ModelMeta};
use super::collapse::{Collapse, CollapseWatch, TermShare};
use super::ddp::DataParallel;
use super::eval::{evaluate, upload, upload_keyed, Evaluation};
use super::metrics::EpochRecord;
use super::optim::build_optimizer;
use super::plan::Precision;
use super::progress::Progress;
use super::scaler::LossScaler;
use super::step::{train_step, StepAt, Teacher, Trainable};
use super::store::{check_job_spec, restore, save_epoch, CollapseRecord, TrainState};
use crate::config::TrainPlan;
use crate::data::loader::mix;
use crate::data::{Augment, Dataset, Loader, Normalization, View};
use crate::error::{DistillError, Result};
use crate::knowledge::{BuildContext, InitStage, MethodConfig, Objective, Stage, TermWeight};
use crate::models::{Net, RoleModel, TapShapes};
use crate::tasks::ranking::against_teacher;

/// The data a run uses.
#[derive(Clone)]
pub struct DataBundle {
    /// Training split.
    pub train: Arc<Dataset>,
    /// Test split.
    pub test: Arc<Dataset>,
    /// Normalisation (from the training split).
    pub norm: Normalization,
    /// Training augmentation.
    pub augment: Augment,
    /// Evaluation batch size.
    pub eval_batch: usize,
    /// Every view of the samples: the source input, then the declared ones.
    pub views: Vec<View>,
    /// Whether each training sample comes with a partner of its class (see
    /// [`Loader::with_class_pairs`]).
    pub class_pairs: bool,
    /// The graph the samples were turned into, if any (`[data.graph]`).
    pub graph: Option<crate::data::GraphSummary>,
}

impl DataBundle {
    /// The training data of a phase: its first `train_limit` samples, without their targets
    /// when it trains on an unlabeled transfer set.
    /// Sample indices are unchanged, so a teacher cache keyed by index stays valid.
    pub fn for_phase(&self, phase: &crate::schemes::Phase) -> DataBundle {
        let class_pairs = phase.class_pairs;
        if phase.train_limit.is_none() && phase.labels {
            return DataBundle {
                class_pairs,
                ..self.clone()
            };
        }
        let mut train = self.train.head(phase.train_limit.unwrap_or(usize::MAX));
        if !phase.labels {
            train = train.without_targets();
        }
        DataBundle {
            train: Arc::new(train),
            class_pairs,
            ..self.clone()
        }
    }

    /// The samples' `[channels, height, width]` (the source input's).
    pub fn geometry(&self) -> [usize; 3] {
        self.train.geometry()
    }

    /// The view named `name` (names are checked when the plan is validated).
    pub fn view(&self, name: &str) -> Result<&View> {
        self.views.iter().find(|v| v.name == name).ok_or_else(|| {
            let names: Vec<&str> = self.views.iter().map(|v| v.name.as_str()).collect();
            DistillError::unknown("view", name, &names)
        })
    }
}

/// One training run: a student recipe at one seed.
pub struct Job<'a> {
    /// Label for logs (e.g. `kd seed 2`).
    pub label: String,
    /// Folder of the run's checkpoints and metrics.
    pub dir: PathBuf,
    /// Seed of initialisation, shuffling, augmentation and dropout.
    pub seed: u64,
    /// The trainable roles: the recipe's student (whose accuracy is the job's), then its peers.
    pub roles: Vec<RoleModel>,
    /// The objective's terms.
    pub losses: &'a [MethodConfig],
    /// Optimiser, schedule and budget.
    pub train: &'a TrainPlan,
    /// Frozen teachers.
    pub teachers: &'a [Teacher],
    /// Data.
    pub data: &'a DataBundle,
    /// Device with autodiff.
    pub device: Device,
    /// Further devices for data-parallel training (see [`super::ddp`]); empty: one device.
    pub replicas: Vec<Device>,
    /// Continue from `dir/last` if it exists.
    pub resume: bool,
    /// Set (e.g. by Ctrl-C) to stop between two steps.
    pub interrupt: Option<Arc<AtomicBool>>,
    /// Stop cleanly after this many completed epochs (budgeted runs, tests of resumption).
    pub stop_after: Option<usize>,
    /// A model folder (`model.bpk` + `model.json`) whose weights the first role starts from
    /// instead of its seeded initialisation (a federated round's global model); resuming from
    /// `dir/last` still takes precedence.
    pub start: Option<PathBuf>,
    /// How to report progress.
    pub progress: Progress,
}

/// What a finished run reports.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobOutcome {
    /// Per-epoch metrics.
    pub history: Vec<EpochRecord>,
    /// The task's headline test metric (accuracy, or RMSE) at the best epoch.
    pub best: f64,
    /// The best epoch (highest accuracy, or lowest RMSE).
    pub best_epoch: usize,
    /// The headline test metric after the last epoch.
    pub last: f64,
    /// The task's second test metric after the last epoch: MAE (regression) or MRR@10
    /// (ranking).
    #[serde(default, alias = "last_mae", skip_serializing_if = "Option::is_none")]
    pub last_secondary: Option<f64>,
    /// Agreement with the first teacher after the last epoch (ranking: NDCG@10 against the
    /// teacher's ranking).
    pub agreement: Option<f64>,
    /// The MRR@10 of the teacher's top candidate after the last epoch (ranking).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub teacher_mrr: Option<f64>,
    /// Trainable parameters of the student.
    pub params: usize,
    /// The peers' results (trainable roles after the first), in the recipe's order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub peers: Vec<PeerOutcome>,
    /// Training wall time, summed over resumptions.
    pub seconds: f64,
    /// Whether the run stopped early (`stop_after`).
    pub partial: bool,
}

/// What a finished run reports of one of its peers.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PeerOutcome {
    /// Role name.
    pub name: String,
    /// Architecture.
    pub model: String,
    /// Trainable parameters.
    pub params: usize,
    /// The headline test metric (accuracy, or RMSE) at its best epoch.
    pub best: f64,
    /// Its best epoch.
    pub best_epoch: usize,
    /// The headline test metric after the last epoch.
    pub last: f64,
    /// The headline test metric of every epoch of the main stage.
    pub history: Vec<f64>,
}

impl JobOutcome {
    /// Peer `k`'s results as an outcome of their own (for its results row and curve): the
    /// job's history with the peer's test accuracies, no agreement.
    pub fn peer_outcome(&self, k: usize) -> JobOutcome {
        let p = &self.peers[k];
        JobOutcome {
            history: self
                .history
                .iter()
                .zip(&p.history)
                .map(|(r, &value)| EpochRecord {
                    test_acc: r.test_acc.map(|_| value),
                    test_rmse: r.test_rmse.map(|_| value),
                    test_ppl: r.test_ppl.map(|_| value),
                    test_token_acc: None,
                    test_mae: None,
                    test_ndcg: None,
                    test_mrr: None,
                    train_acc: None,
                    train_rmse: None,
                    agreement: None,
                    teacher_mrr: None,
                    peers: BTreeMap::new(),
                    ..r.clone()
                })
                .collect(),
            best: p.best,
            best_epoch: p.best_epoch,
            last: p.last,
            last_secondary: None,
            agreement: None,
            teacher_mrr: None,
            params: p.params,
            peers: Vec::new(),
            seconds: self.seconds,
            partial: self.partial,
        }
    }
}

/// A job whose models and objective are built and checked, ready to train.
pub struct Prepared<'a> {
    job: Job<'a>,
    trainable: Trainable,
    objective: Objective,
}

impl<'a> Job<'a> {
    /// Builds the student and the objective, checking every tap name and shape against the
    /// teachers'. Nothing is trained or written.
    pub fn prepare(self) -> Result<Prepared<'a>> {
        self.device.seed(self.seed);
        let (trainable, objective) = build_trainable(
            &self.roles,
            self.data,
            self.losses,
            self.teachers,
            &self.device,
        )
        .map_err(|e| match e {
            DistillError::Config(m) => DistillError::Config(format!("{}: {m}", self.label)),
            other => other,
        })?;
        let mut trainable = trainable;
        if let Some(dir) = &self.start {
            let (folder, meta) = super::checkpoint::read_model_meta(dir)?;
            let differs = self.roles[0].model.architecture_differences(&meta.config);
            if !differs.is_empty() {
                return Err(DistillError::Config(format!(
                    "{}: the model in {} to start from is another architecture ({})",
                    self.label,
                    dir.display(),
                    differs.join("; ")
                )));
            }
            trainable.students[0] = super::checkpoint::load_module(
                trainable.students[0].clone(),
                &folder.join("model.bpk"),
            )?;
        }
        Ok(Prepared {
            trainable,
            objective,
            job: self,
        })
    }
}

/// Size of the probe batch on which methods may calibrate (see [`BuildContext::teacher_probe`]).
pub const PROBE_BATCH: usize = 256;

/// Builds the trainable roles and the objective's terms (with their helper modules), checking
/// every role name, tap name and shape. Seed the device first for a reproducible initialisation.
pub fn build_trainable(
    roles: &[RoleModel],
    data: &DataBundle,
    losses: &[MethodConfig],
    teachers: &[Teacher],
    device: &Device,
) -> Result<(Trainable, Objective)> {
    let geometry = data.geometry();
    let classes = data.train.num_classes;
    let views = roles
        .iter()
        .map(|r| data.view(&r.view).cloned())
        .collect::<Result<Vec<_>>>()?;
    let nets = roles
        .iter()
        .zip(&views)
        .map(|(r, v)| r.model.build(v.geometry(geometry), classes, device))
        .collect::<Result<Vec<_>>>()?;
    let shapes: Vec<TapShapes> = nets
        .iter()
        .zip(&views)
        .map(|(n, v)| n.tap_shapes(v.geometry(geometry), device))
        .collect();
    let names: Vec<String> = roles.iter().map(|r| r.name.clone()).collect();
    let teacher_shapes: Vec<TapShapes> = teachers.iter().map(|t| t.shapes.clone()).collect();
    let teacher_names: Vec<String> = teachers.iter().map(|t| t.name.clone()).collect();
    let teacher_unready: Vec<Option<String>> = teachers.iter().map(|t| t.unready.clone()).collect();
    let teacher_nets: Vec<&Net> = teachers.iter().map(|t| &t.net).collect();
    let probe = || {
        if teachers.is_empty() {
            return Vec::new();
        }
        let plain = device.clone().without_autodiff();
        let loader = Loader::new(
            data.train.clone(),
            data.norm.clone(),
            PROBE_BATCH,
            Augment::default(),
            false,
            0,
        );
        let batch = loader
            .epoch(1, 1)
            .recv()
            .expect("a training set has at least one batch");
        let (x, _) = upload(batch, geometry, &plain);
        teachers
            .iter()
            .map(|t| t.net.forward(t.view.apply(x.clone())))
            .collect()
    };
    let ctx = BuildContext {
        students: &shapes,
        student_names: &names,
        frozen: &teacher_shapes,
        frozen_names: &teacher_names,
        frozen_unready: &teacher_unready,
        classes,
        device,
        teacher_nets: &teacher_nets,
        probe: &probe,
        probe_cache: Default::default(),
        train_labels: data.train.labels().unwrap_or_default(),
        task: crate::tasks::Task::of(&data.test),
        labelled: data.train.has_targets(),
        class_pairs: data.class_pairs,
        teacher_uses: Default::default(),
    };
    let mut aux = Vec::new();
    let terms = losses
        .iter()
        .map(|l| l.build(&ctx, &mut aux))
        .collect::<Result<Vec<_>>>()?;
    let rewriting: Vec<&str> = losses
        .iter()
        .zip(&terms)
        .filter(|(_, b)| b.term.rewrites_batches())
        .map(|(l, _)| l.info().name)
        .collect();
    if rewriting.len() > 1 {
        return Err(DistillError::Config(format!(
            "terms {} each generate the batches they train on; a recipe can train on one generator's batches only: keep one of them",
            rewriting.join(", ")
        )));
    }
    let objective =
        Objective::new(terms).with_teacher_taps(teachers.len(), &ctx.teacher_uses.borrow());
    if !objective.has_main_terms() {
        return Err(DistillError::Config(
            "every loss of this recipe only acts in an initialisation stage (e.g. `ab`); add the terms the student trains on afterwards, e.g. `ce` and `kd`".into(),
        ));
    }
    Ok((
        Trainable {
            students: nets,
            aux,
        },
        objective.reading(views),
    ))
}

impl Prepared<'_> {
    /// Trains to the end of the budget (or `stop_after`), writing `metrics.jsonl`, `best/` and
    /// `last/` under the job's folder.
    pub fn run(self) -> Result<JobOutcome> {
        let Prepared {
            job,
            mut trainable,
            objective,
        } = self;
        let plan = job.train;
        let data = job.data;
        let geometry = data.geometry();
        let device = job.device.clone();
        let mut optim = build_optimizer(plan);
        let last_dir = job.dir.join("last");
        let metas: Vec<ModelMeta> = job
            .roles
            .iter()
            .zip(objective.views())
            .map(|(r, view)| ModelMeta {
                config: r.model.clone(),
                input: geometry,
                view: view.clone(),
                classes: data.train.num_classes,
                normalization: data.norm.clone(),
                tokenizer: data.train.tokenizer(),
            })
            .collect();
        let params: Vec<usize> = trainable
            .students
            .iter()
            .map(crate::models::net::trainable_params)
            .collect();

        // An unlabeled transfer set has no training metric.
        let labelled = data.train.has_targets();
        let mut state = TrainState::fresh();
        check_job_spec(&job)?;
        if job.resume {
            let restored;
            (restored, trainable, optim) = restore(&last_dir, trainable, optim)?;
            if let Some(mut restored) = restored {
                if let Some(c) = restored.collapsed.take() {
                    if plan.stop_on_collapse {
                        return Err(collapse_error(
                            &job.label,
                            c.epoch,
                            Collapse {
                                what: c.what,
                                term: c.term,
                                advice: c.advice,
                            },
                        ));
                    }
                }
                job.progress.line(&format!(
                    "{}: resuming after epoch {}",
                    job.label, restored.completed
                ));
                state = restored;
            }
        }
        // f16 scales the loss; the scale is kept with the loop state, so a resumed run scales
        // on as it was (resuming refuses a changed precision)
        if plan.precision == Precision::F16 {
            state.scaler.get_or_insert_with(LossScaler::default);
        }

        let mut parallel = None;
        if !job.replicas.is_empty() {
            let resumed_optim = resolve_dir(&last_dir)
                .filter(|_| job.resume && state.completed > 0)
                .map(|d| d.join("optimizer.bpk"));
            let (dp, main) = DataParallel::start(
                &device,
                &job.replicas,
                trainable,
                job.teachers,
                plan,
                resumed_optim.as_deref(),
            )?;
            trainable = main;
            parallel = Some(dp);
        }

        let mut loader = Loader::new(
            data.train.clone(),
            data.norm.clone(),
            plan.batch_size,
            data.augment,
            true,
            job.seed,
        );
        if data.class_pairs {
            loader = loader.with_class_pairs();
        }
        let steps = loader.num_batches();
        // Methods with an initialisation stage (AB, FT) train their parts for `init_epochs`
        // first; epochs are numbered per stage, and the run's global epoch counts both.
        let init = objective.init_stage();
        let init_epochs = init.map_or(0, |s: InitStage| s.epochs);
        let total_epochs = init_epochs + plan.epochs;
        let end = job.stop_after.map_or(total_epochs, |s| s.min(total_epochs));
        let bar = job.progress.bar(
            &job.label,
            (total_epochs * steps) as u64,
            (state.completed * steps) as u64,
        );
        let mut watch =
            CollapseWatch::new(&data.train, &data.test, plan.warmup_epochs, &state.history);
        let interrupted = || {
            job.interrupt
                .as_ref()
                .is_some_and(|f| f.load(Ordering::SeqCst))
        };

        for global in state.completed + 1..=end {
            let (stage, epoch) = if global <= init_epochs {
                (Stage::Init, global)
            } else {
                (Stage::Main, global - init_epochs)
            };
            if stage == Stage::Main && epoch == 1 && init_epochs > 0 {
                // The main stage starts with a fresh optimiser, as RepDistiller's `init()` uses
                // its own.
                optim = build_optimizer(plan);
                if let Some(dp) = parallel.as_mut() {
                    dp.reset_optimizers(plan);
                }
            }
            let started = Instant::now();
            device.seed(mix(job.seed, global as u64, 0)); // dropout stream of this epoch
            let mut sums: Vec<(String, f64)> = Vec::new();
            let (mut total_sum, mut correct, mut seen) = (0f64, 0f64, 0usize);
            let mut lr = plan.lr;
            let mut weights: Vec<TermWeight> = Vec::new();
            for (step, batch) in loader.epoch(global, 4).into_iter().enumerate() {
                if interrupted() {
                    bar.abandon();
                    return Err(DistillError::Interrupted {
                        completed: global - 1,
                    });
                }
                lr = match stage {
                    Stage::Init => init.and_then(|s| s.lr).unwrap_or(plan.lr),
                    Stage::Main => plan.lr_at(epoch, step, steps),
                };
                let at = StepAt {
                    stage,
                    epoch,
                    progress: (epoch - 1) as f64 + (step + 1) as f64 / steps as f64,
                    lr,
                    grad_clip: plan.grad_clip,
                    precision: plan.precision,
                    loss_scale: state.scaler.map(|s| s.scale),
                };
                let samples = batch.len();
                let out = match parallel.as_mut() {
                    Some(dp) => dp.step(
                        trainable,
                        &mut optim,
                        &objective,
                        job.teachers,
                        batch,
                        geometry,
                        &device,
                        at,
                    ),
                    None => train_step(
                        trainable,
                        &mut optim,
                        &objective,
                        job.teachers,
                        upload_keyed(batch, geometry, &device),
                        at,
                    ),
                };
                trainable = out.trainable;
                if let Some(scaler) = state.scaler.as_mut() {
                    scaler.update(out.overflow);
                }
                if let Some((term, value)) = out.non_finite {
                    bar.abandon();
                    return Err(DistillError::NonFinite {
                        term,
                        value,
                        epoch: global,
                    });
                }
                total_sum += out.total;
                weights = out.weights;
                for (k, (name, v)) in out.terms.into_iter().enumerate() {
                    match sums.get_mut(k) {
                        Some((_, s)) => *s += v,
                        None => sums.push((name, v)),
                    }
                }
                correct += out.correct;
                seen += samples;
                bar.inc(1);
            }
            let (eval, peers, (agreement, teacher_mrr)) =
                evaluate_roles(&trainable, &objective, &job);
            let seconds = started.elapsed().as_secs_f64();
            state.seconds += seconds;
            let weighted: Vec<TermShare> = sums
                .iter()
                .zip(&weights)
                .map(|((n, v), w)| TermShare {
                    name: n.clone(),
                    value: v / steps as f64 * w.weight,
                    supervised: w.supervised,
                })
                .collect();
            let record = EpochRecord {
                epoch,
                init: stage == Stage::Init,
                lr,
                train_loss: total_sum / steps as f64,
                terms: sums
                    .into_iter()
                    .map(|(n, s)| (n, s / steps as f64))
                    .collect::<BTreeMap<_, _>>(),
                // Classification: correct / samples. Regression: √(squared errors / values), on
                // the standardised targets.
                train_acc: (eval.accuracy.is_some() && labelled)
                    .then(|| correct / seen.max(1) as f64),
                train_rmse: (eval.rmse.is_some() && labelled)
                    .then(|| (correct / (seen * data.train.num_classes).max(1) as f64).sqrt()),
                test_acc: eval.accuracy,
                test_rmse: eval.rmse,
                test_mae: eval.mae,
                test_ndcg: eval.ndcg,
                test_mrr: eval.mrr,
                test_ppl: eval.perplexity,
                test_token_acc: eval.token_accuracy,
                agreement,
                teacher_mrr,
                peers,
                seconds,
            };
            bar.set_message(format!(
                "{}epoch {epoch}/{} loss {:.4} test {}",
                if record.init { "init " } else { "" },
                if record.init {
                    init_epochs
                } else {
                    plan.epochs
                },
                record.train_loss,
                super::progress::headline(&record)
            ));
            job.progress.epoch_line(
                &bar,
                &job.label,
                &record,
                if record.init {
                    init_epochs
                } else {
                    plan.epochs
                },
            );
            let collapse = (stage == Stage::Main && plan.stop_on_collapse)
                .then(|| watch.check(&record, &weighted))
                .flatten();
            state.history.push(record);
            state.completed = global;
            state.collapsed = collapse.as_ref().map(|c| CollapseRecord {
                epoch: global,
                what: c.what.clone(),
                term: c.term.clone(),
                advice: c.advice.clone(),
            });
            save_epoch(
                &job.dir, &job.roles, &metas, &trainable, &optim, &mut state, stage,
            )?;
            if let Some(c) = collapse {
                bar.abandon();
                return Err(collapse_error(&job.label, global, c));
            }
        }
        bar.finish();
        Ok(outcome(state, &job.roles, &params, total_epochs))
    }
}

/// How the student agrees with the teacher: top-1 agreement (or, ranking, NDCG@10 against the
/// teacher's ranking), and the MRR@10 of the teacher's top candidate (ranking).
type TeacherAgreement = (Option<f64>, Option<f64>);

/// Evaluates every trainable role on the test split: the recipe's student (with its agreement
/// with the first teacher it reads, for classification) and each peer's headline metric.
fn evaluate_roles(
    trainable: &Trainable,
    objective: &Objective,
    job: &Job<'_>,
) -> (Evaluation, BTreeMap<String, f64>, TeacherAgreement) {
    let data = job.data;
    let views = objective.views();
    let eval = |net, view| {
        evaluate(
            net,
            view,
            &data.test,
            &data.norm,
            data.eval_batch,
            &job.device,
        )
    };
    let student = eval(&trainable.students[0], &views[0]);
    let teacher_predictions = job
        .teachers
        .first()
        .map_or(&[][..], |t| t.test_predictions.as_slice());
    let peers = trainable.students[1..]
        .iter()
        .zip(&job.roles[1..])
        .zip(&views[1..])
        .map(|((net, r), view)| {
            let e = eval(net, view);
            // an unlabeled transfer set has no headline of its own: the agreement stands in
            let v = match e.primary() {
                v if v.is_nan() && !e.predictions.is_empty() && !teacher_predictions.is_empty() => {
                    e.agreement(teacher_predictions)
                }
                v => v,
            };
            (r.name.clone(), v)
        })
        .collect();
    // Top-1 agreement needs predicted classes (or tokens): regression has none. It is
    // measured with the first teacher the terms read (or the first teacher, when none is read).
    // Ranking measures how the student's order follows the teacher's: NDCG@10 with grades from
    // the teacher's order, and the MRR@10 of the teacher's top candidate.
    let teacher = (0..job.teachers.len())
        .find(|&i| !objective.teacher_taps(i).is_empty())
        .or((!job.teachers.is_empty()).then_some(0))
        .map(|i| &job.teachers[i]);
    let agreement = match teacher {
        Some(t) if !student.predictions.is_empty() && !t.test_predictions.is_empty() => {
            (Some(student.agreement(&t.test_predictions)), None)
        }
        Some(t) if !student.scores.is_empty() && !t.test_scores.is_empty() => {
            match against_teacher(&student.scores, &t.test_scores, &data.test.units()) {
                Some((ndcg, mrr)) => (Some(ndcg), Some(mrr)),
                None => (None, None),
            }
        }
        _ => (None, None),
    };
    (student, peers, agreement)
}

/// What a finished (or stopped) run reports: the main stage's history and best and last
/// metrics, for the recipe's student and each peer.
fn outcome(
    mut state: TrainState,
    roles: &[RoleModel],
    params: &[usize],
    total_epochs: usize,
) -> JobOutcome {
    // Tables and curves show the main stage; metrics.jsonl keeps the initialisation epochs.
    state.history.retain(|r| !r.init);
    let last = state.history.last().cloned();
    let peers = roles[1..]
        .iter()
        .zip(&params[1..])
        .map(|(r, &params)| {
            let history: Vec<f64> = state
                .history
                .iter()
                .map(|e| e.peers.get(&r.name).copied().unwrap_or(f64::NAN))
                .collect();
            // The first epoch of the highest oriented value (accuracy, or −RMSE), as the
            // peer's best/ checkpoint was chosen.
            let (best_epoch, best, _) = state.history.iter().zip(&history).enumerate().fold(
                (0, f64::NAN, f64::NEG_INFINITY),
                |b, (i, (e, &v))| {
                    if b.0 == 0 || e.oriented(v) > b.2 {
                        (i + 1, v, e.oriented(v))
                    } else {
                        b
                    }
                },
            );
            PeerOutcome {
                name: r.name.clone(),
                model: r.model.name().to_string(),
                params,
                best,
                best_epoch,
                last: history.last().copied().unwrap_or(f64::NAN),
                history,
            }
        })
        .collect();
    let best = state
        .history
        .iter()
        .find(|r| r.epoch == state.best_epoch)
        .map_or(0.0, EpochRecord::primary);
    JobOutcome {
        best,
        best_epoch: state.best_epoch,
        last: last.as_ref().map_or(0.0, EpochRecord::primary),
        last_secondary: last
            .as_ref()
            .and_then(|r| r.test_mae.or(r.test_mrr).or(r.test_token_acc)),
        agreement: last.as_ref().and_then(|r| r.agreement),
        teacher_mrr: last.as_ref().and_then(|r| r.teacher_mrr),
        params: params[0],
        peers,
        seconds: state.seconds,
        partial: state.completed < total_epochs,
        history: state.history,
    }
}

/// The error of a run stopped by [`CollapseWatch`].
fn collapse_error(label: &str, epoch: usize, c: Collapse) -> DistillError {
    DistillError::Collapse {
        run: label.to_string(),
        epoch,
        what: c.what,
        term: c.term,
        advice: c.advice,
    }
}
