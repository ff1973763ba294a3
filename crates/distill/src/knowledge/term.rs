//! The one interface every distillation loss implements.

use burn::prelude::*;

use super::role::{RoleRef, STUDENT};
use crate::error::{DistillError, Result};
use crate::models::{Feature, Net, TapShapes, Taps};
use crate::tasks::ranking::Lists;
use crate::tasks::{Target, Task};

/// Which part of training a step belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// The initialisation stage some methods run first (AB, FT, FSP's two-stage form): only the
    /// terms that declare an [`InitStage`] contribute, through [`KnowledgeTerm::init_forward`].
    Init,
    /// Ordinary training: every term's [`KnowledgeTerm::forward`].
    Main,
}

/// What a term may rewrite a training batch from, before any forward pass (on-policy and
/// sequence-level distillation train on windows a model generates): the models and the batch.
pub struct RewriteContext<'a> {
    /// The trainable roles, as the optimiser holds them (a term takes `.valid()` of the one it
    /// samples from).
    pub students: &'a [crate::models::Net],
    /// The frozen teachers, in inference mode.
    pub teachers: &'a [&'a crate::models::Net],
    /// The batch's source inputs.
    pub x: &'a Tensor<4>,
    /// The batch's targets.
    pub targets: &'a Target,
    /// A seed that depends only on where the step is in the run (epoch, step, samples), so a
    /// resumed run draws what an uninterrupted one did.
    pub seed: u64,
}

impl RewriteContext<'_> {
    /// The model behind teacher-side index `i` (see [`BuildContext::teacher`]) in inference
    /// mode: a trainable role's current weights, or a frozen teacher.
    pub fn teacher_net(&self, i: usize) -> crate::models::Net {
        match i.checked_sub(self.students.len()) {
            None => self.students[i].valid(),
            Some(j) => self.teachers[j].clone(),
        }
    }
}

/// Everything a knowledge term sees at one training step.
pub struct StepContext<'a> {
    /// Taps of each trainable role (with gradients), in the order of
    /// [`BuildContext::students`].
    pub students: &'a [Taps],
    /// Taps read as constants: the trainable roles' (detached), then each frozen teacher's
    /// (`None` for a teacher no term reads, which the step does not run). Indexed by what
    /// [`BuildContext::teacher`] resolved; read them through [`Self::teacher`] and
    /// [`Self::teacher_logits`].
    pub teachers: &'a [Option<Taps>],
    /// The batch's targets (class labels, standardised reals or relevance grades, by task).
    pub targets: Target,
    /// The layout of the batch's ranking lists (ranking data; `None` otherwise).
    pub lists: Option<Lists>,
    /// Index of each sample in the training set (for memory banks and caches).
    pub indices: &'a [usize],
    /// Current epoch of the stage, starting at 1.
    pub epoch: usize,
    /// Epochs of the stage completed once this step is done, counted in steps: `epoch − 1 +
    /// (step + 1) / steps_per_epoch` (so `epoch` at an epoch's last step).
    pub progress: f64,
    /// Which stage the step belongs to.
    pub stage: Stage,
}

impl StepContext<'_> {
    /// The factor of a linear warm-up over `epochs` epochs, ramped per step:
    /// `min(progress / epochs, 1)` (1 when `epochs` is 0). At each epoch's last step it equals
    /// mdistiller's per-epoch `min(epoch / warmup, 1)`; within the epoch it rises smoothly, so a
    /// short warm-up does not switch a strong term on at full weight in the first step.
    pub fn warmup(&self, epochs: f64) -> f64 {
        warmup_factor(self.progress, epochs)
    }

    /// Tap `name` of student `i`.
    pub fn student(&self, i: usize, name: &str) -> Feature {
        self.students[i]
            .get(name)
            .expect("tap names are validated before training")
    }

    /// Tap `name` of teacher-side role `i`.
    pub fn teacher(&self, i: usize, name: &str) -> Feature {
        self.teacher_taps(i)
            .get(name)
            .expect("tap names are validated before training")
    }

    /// The layout of the batch's ranking lists. Terms that read it are built for the ranking
    /// task only, whose batches always carry it.
    pub fn lists(&self) -> &Lists {
        self.lists
            .as_ref()
            .expect("ranking terms are built for ranking data only, whose batches carry lists")
    }

    /// The logits of teacher-side role `i`.
    pub fn teacher_logits(&self, i: usize) -> Tensor<2> {
        self.teacher_taps(i).logits.clone()
    }

    fn teacher_taps(&self, i: usize) -> &Taps {
        self.teachers[i]
            .as_ref()
            .expect("a teacher a term reads was resolved when the term was built, and is run")
    }
}

/// `min(progress / epochs, 1)`, or 1 when `epochs` is 0 (see [`StepContext::warmup`]).
pub fn warmup_factor(progress: f64, epochs: f64) -> f64 {
    if epochs <= 0.0 {
        1.0
    } else {
        (progress / epochs).min(1.0)
    }
}

/// Which side of the teacher-student pair a tap belongs to, with the index the role resolved
/// to (see [`BuildContext::student`] and [`BuildContext::teacher`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// A trainable role, read with gradients: an index into [`StepContext::students`].
    Student(usize),
    /// A role read as a constant: an index into [`StepContext::teachers`] (the trainable roles,
    /// detached, then the frozen teachers).
    Teacher(usize),
}

/// The two roles a term reads, resolved: an index into [`StepContext::students`] and one into
/// [`StepContext::teachers`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pair {
    /// The trainable role.
    pub student: usize,
    /// The role read as a constant.
    pub teacher: usize,
}

/// What a term needs to know when it is built: the roles and their tap shapes.
pub struct BuildContext<'a> {
    /// Tap shapes of each trainable role of the recipe (its student first, then its peers).
    pub students: &'a [TapShapes],
    /// Names of the trainable roles.
    pub student_names: &'a [String],
    /// Tap shapes of each frozen teacher.
    pub frozen: &'a [TapShapes],
    /// Names of the frozen teachers.
    pub frozen_names: &'a [String],
    /// Why a frozen teacher cannot be read yet (trained by a later phase), by teacher; `None`
    /// for a ready one. Empty: all are ready.
    pub frozen_unready: &'a [Option<String>],
    /// Width of the models' outputs (classes, or target dimensions).
    pub classes: usize,
    /// The experiment's task (which targets the step carries).
    pub task: Task,
    /// Whether the job's training samples carry their targets (`false`: an unlabeled transfer
    /// set, see `[[student]] labels`).
    pub labelled: bool,
    /// Whether each training sample comes with a partner of its class (the batch's lists are
    /// the pairs; see `[[student]] class_pairs`).
    pub class_pairs: bool,
    /// Device on which trainable parts are created.
    pub device: &'a Device,
    /// The frozen teachers themselves (for methods that read their parameters, as OFD reads the
    /// batch-norm statistics before each stage's ReLU), in the order of `frozen`.
    pub teacher_nets: &'a [&'a Net],
    /// Computes each frozen teacher's taps on the probe batch: the first (up to 256) training
    /// images, in order, without augmentation (for methods that calibrate on data, as OFD's
    /// margins of a teacher without batch norm). Called only by methods that need it, through
    /// [`Self::teacher_probe`], once per build.
    pub probe: &'a dyn Fn() -> Vec<Taps>,
    /// The probe's result once computed.
    pub probe_cache: std::cell::OnceCell<Vec<Taps>>,
    /// Label of every training sample, by index (CRD's class-conditional negatives; empty for
    /// regression).
    pub train_labels: &'a [u8],
    /// Frozen-teacher taps the methods asked for through [`Self::shape`] (what a teacher-output
    /// cache must hold), as `(frozen teacher, tap)`.
    pub teacher_uses: std::cell::RefCell<std::collections::BTreeSet<(usize, String)>>,
}

impl BuildContext<'_> {
    /// Refuses a method outside the task whose targets it reads, or in a job whose training
    /// samples have no targets.
    pub fn require_task(&self, task: Task, method: &str) -> Result<()> {
        if self.task == task && !self.labelled {
            return Err(DistillError::Config(format!(
                "`{method}` reads the targets, but this recipe trains on unlabeled samples (its labels = false, or data.labels = false); remove the term, or train on labelled samples"
            )));
        }
        if self.task == task {
            return Ok(());
        }
        Err(DistillError::Config(format!(
            "`{method}` reads {} and applies to task = \"{}\" only, but this experiment's task is \"{}\"{}",
            match task {
                Task::Classification => "class labels",
                Task::Regression => "real targets",
                Task::Ranking => "relevance grades",
                Task::Generation => "next-token targets",
            },
            task.name(),
            self.task.name(),
            match self.task {
                Task::Regression => "; use `mse` for the supervised term and `output-match` or `bounded-regression` to distil",
                Task::Classification => "; use `ce` for the supervised term",
                Task::Ranking => "; use `listnet` for the supervised term and `listnet-kd` to distil",
                Task::Generation => "; use `ce` for the supervised term and `gkd`, `skew-kl`, `tvd` or `seq-kd` to distil",
            }
        )))
    }

    /// The frozen teacher behind teacher-side index `i`, if it is one (and not a trainable role
    /// read as a constant).
    pub fn frozen_index(&self, i: usize) -> Option<usize> {
        i.checked_sub(self.students.len())
            .filter(|&j| j < self.frozen.len())
    }

    /// The frozen teacher's network behind teacher-side index `i`.
    pub fn teacher_net(&self, i: usize) -> Option<&Net> {
        self.frozen_index(i)
            .and_then(|j| self.teacher_nets.get(j).copied())
    }

    /// The taps on the probe batch of the frozen teacher behind teacher-side index `i`
    /// (computed on first use; `None` for a trainable role).
    pub fn teacher_probe(&self, i: usize) -> Option<&Taps> {
        let j = self.frozen_index(i)?;
        self.probe_cache.get_or_init(|| (self.probe)()).get(j)
    }

    fn role_list(&self) -> String {
        let mut all: Vec<String> = self
            .student_names
            .iter()
            .map(|n| format!("'{n}' (trainable)"))
            .collect();
        all.extend(self.frozen_names.iter().map(|n| format!("'{n}' (teacher)")));
        all.join(", ")
    }

    /// Resolves a term's `student` key: a trainable role of the recipe (default: its student).
    pub fn student(&self, role: &Option<RoleRef>) -> Result<usize> {
        let name = role.as_ref().map_or(STUDENT, |r| r.0.as_str());
        if let Some(i) = self.student_names.iter().position(|n| n == name) {
            return Ok(i);
        }
        if self.frozen_names.iter().any(|n| n == name) {
            return Err(DistillError::Config(format!(
                "student = \"{name}\" names a frozen teacher, but the student side of a term is trained; name a trainable role: {}",
                self.student_names.iter().map(|n| format!("\"{n}\"")).collect::<Vec<_>>().join(", ")
            )));
        }
        let names: Vec<&str> = self.student_names.iter().map(String::as_str).collect();
        Err(DistillError::unknown(
            "trainable role (student = ...)",
            name,
            &names,
        ))
    }

    /// Names of the frozen teachers a term may read now (those trained by a later phase are not).
    pub fn ready_teachers(&self) -> Vec<&str> {
        self.frozen_names
            .iter()
            .enumerate()
            .filter(|(j, _)| self.frozen_unready.get(*j).is_none_or(Option::is_none))
            .map(|(_, n)| n.as_str())
            .collect()
    }

    /// Resolves a term's `teacher` key: any role, read without gradients (default: the only
    /// frozen teacher ready to be read). Returns an index into [`StepContext::teachers`].
    pub fn teacher(&self, role: &Option<RoleRef>) -> Result<usize> {
        let Some(name) = role.as_ref().map(|r| r.0.as_str()) else {
            let ready = self.ready_teachers();
            return match ready[..] {
                [one] => self.teacher(&Some(RoleRef(one.to_string()))),
                [] if self.frozen_names.is_empty() => Err(DistillError::Config(
                    "this method needs a teacher, but the experiment has none; add a [[teacher]] section, or name a peer with teacher = \"<peer name>\"".into(),
                )),
                [] => Err(DistillError::Config(format!(
                    "this method needs a teacher, but none is trained before this recipe ({}); list the recipes the teachers come from first",
                    self.frozen_names.join(", ")
                ))),
                _ => Err(DistillError::Config(format!(
                    "the experiment has {} teachers, so the term must say which it learns from: teacher = \"<name>\" (roles: {})",
                    ready.len(),
                    self.role_list()
                ))),
            };
        };
        if let Some(j) = self.frozen_names.iter().position(|n| n == name) {
            if let Some(Some(why)) = self.frozen_unready.get(j) {
                return Err(DistillError::Config(format!(
                    "teacher '{name}' is not trained yet when this recipe runs: {why}; list the [[student]] recipe it comes from before the recipes that read it"
                )));
            }
            return Ok(self.reads_frozen(j));
        }
        if let Some(i) = self.student_names.iter().position(|n| n == name) {
            return Ok(i);
        }
        let all: Vec<&str> = self
            .frozen_names
            .iter()
            .chain(self.student_names)
            .map(String::as_str)
            .collect();
        Err(DistillError::unknown("role (teacher = ...)", name, &all))
    }

    /// Records that a term reads frozen teacher `j` (so the step runs it); returns its
    /// teacher-side index.
    fn reads_frozen(&self, j: usize) -> usize {
        self.teacher_uses
            .borrow_mut()
            .insert((j, "logits".to_string()));
        self.students.len() + j
    }

    /// Shape of a tap, or an error listing the taps that exist.
    pub fn shape(&self, side: Side, tap: &str) -> Result<Vec<usize>> {
        let (shapes, role, name) = match side {
            Side::Student(i) => (self.students.get(i), "student", self.student_names.get(i)),
            Side::Teacher(i) => match self.frozen_index(i) {
                Some(j) => (self.frozen.get(j), "teacher", self.frozen_names.get(j)),
                None => (self.students.get(i), "teacher", self.student_names.get(i)),
            },
        };
        let shapes = shapes.ok_or_else(|| {
            DistillError::Config(format!(
                "{role} side {side:?} names no role of this experiment (roles: {})",
                self.role_list()
            ))
        })?;
        if let Side::Teacher(i) = side {
            if let (Some(j), Some(_)) = (self.frozen_index(i), shapes.get(tap)) {
                self.teacher_uses.borrow_mut().insert((j, tap.to_string()));
            }
        }
        shapes.get(tap).map(<[usize]>::to_vec).ok_or_else(|| {
            DistillError::unknown(
                format!(
                    "tap of {role} '{}'",
                    name.map(String::as_str).unwrap_or("?")
                ),
                tap,
                &shapes.names(),
            )
        })
    }

    /// Resolves the level pairs of a multi-level method: equal-length lists of student and teacher
    /// taps, each existing, and feature maps when `maps` is set. Returns the pairs with their
    /// shapes.
    pub fn levels(
        &self,
        method: &str,
        student: (usize, &[String]),
        teacher: (usize, &[String]),
        maps: bool,
    ) -> Result<Vec<Level>> {
        if student.1.len() != teacher.1.len() || student.1.is_empty() {
            return Err(DistillError::Config(format!(
                "{method}: student_taps and teacher_taps must name the same number (≥ 1) of taps, got {} and {}",
                student.1.len(),
                teacher.1.len()
            )));
        }
        student
            .1
            .iter()
            .zip(teacher.1)
            .map(|(s, t)| {
                let s_shape = self.shape(Side::Student(student.0), s)?;
                let t_shape = self.shape(Side::Teacher(teacher.0), t)?;
                if maps && (s_shape.len() != 4 || t_shape.len() != 4) {
                    return Err(DistillError::Shape {
                        context: format!("{method}: student tap '{s}' vs teacher tap '{t}' must both be feature maps [B, C, H, W]"),
                        expected: t_shape,
                        got: s_shape,
                        fix: "; pick stage or conv taps (see `distill models`)".into(),
                    });
                }
                Ok(Level { student: s.clone(), teacher: t.clone(), student_shape: s_shape, teacher_shape: t_shape })
            })
            .collect()
    }

    /// Checks that two taps have the same shape; `fix` suggests what would reconcile them.
    pub fn same_shape(
        &self,
        what: &str,
        student: (Side, &str),
        teacher: (Side, &str),
        fix: &str,
    ) -> Result<()> {
        let s = self.shape(student.0, student.1)?;
        let t = self.shape(teacher.0, teacher.1)?;
        if s != t {
            return Err(DistillError::Shape {
                context: format!(
                    "{what}: student tap '{}' {s:?} vs teacher tap '{}'",
                    student.1, teacher.1
                ),
                expected: t,
                got: s,
                fix: fix.to_string(),
            });
        }
        Ok(())
    }
}

/// One student-teacher tap pair of a multi-level method.
#[derive(Debug, Clone)]
pub struct Level {
    /// Student tap name.
    pub student: String,
    /// Teacher tap name.
    pub teacher: String,
    /// Its shape (batch dimension as probed).
    pub student_shape: Vec<usize>,
    /// Its shape (batch dimension as probed).
    pub teacher_shape: Vec<usize>,
}

/// Default taps of the multi-level feature methods: the three stages of the CIFAR ResNets.
pub fn default_stage_taps() -> Vec<String> {
    vec!["stage1".into(), "stage2".into(), "stage3".into()]
}

/// Default tap of the relation methods: the pooled embedding.
pub fn default_embedding_tap() -> String {
    "embedding".into()
}

/// A distillation loss term, built from its config for one experiment.
///
/// `forward` returns one or more named scalar terms (shape `[1]`) that the objective weights and
/// logs separately. Terms own no trainable state directly: trainable helpers (connectors,
/// projection heads) are [`crate::knowledge::Aux`] modules that the term asks for when it is
/// built and receives back at every step, so they are optimised with the student.
///
/// Multi-stage methods use the same interface: a term that needs an initialisation stage (AB's
/// connector and student pre-training, FT's paraphraser) returns it from [`Self::init_stage`]
/// and its stage loss from [`Self::init_forward`]; a term with non-trainable state (CRD's memory
/// bank) returns [`AuxUpdate`]s from [`Self::forward_step`], applied after the optimiser step.
/// The trainer knows none of the methods by name.
pub trait KnowledgeTerm: Send + Sync {
    /// Computes the term(s) for one step of the main stage.
    fn forward(
        &self,
        aux: &[crate::knowledge::Aux],
        ctx: &StepContext<'_>,
    ) -> Vec<(String, Tensor<1>)>;

    /// The main-stage terms plus any update of non-trainable state. The default has no state.
    fn forward_step(&self, aux: &[crate::knowledge::Aux], ctx: &StepContext<'_>) -> TermStep {
        TermStep {
            terms: self.forward(aux, ctx),
            updates: Vec::new(),
        }
    }

    /// The initialisation stage this term needs before the main training, if any.
    fn init_stage(&self) -> Option<InitStage> {
        None
    }

    /// The term's loss during the initialisation stage (called only when
    /// [`Self::init_stage`] is `Some`).
    fn init_forward(
        &self,
        _aux: &[crate::knowledge::Aux],
        _ctx: &StepContext<'_>,
    ) -> Vec<(String, Tensor<1>)> {
        Vec::new()
    }

    /// A new batch (inputs and targets) to train this step on instead of the data's, when the
    /// term generates its own (on-policy and sequence-level distillation); `None` keeps the
    /// data's. At most one term of an objective rewrites batches (checked when it is built).
    fn rewrite_batch(&self, _ctx: &RewriteContext<'_>) -> Option<(Tensor<4>, Target)> {
        None
    }

    /// Whether the term may rewrite batches (see [`Self::rewrite_batch`]).
    fn rewrites_batches(&self) -> bool {
        false
    }

    /// Whether the term contributes to the main stage (AB does not: after its initialisation
    /// stage the student trains on the other terms, as in RepDistiller).
    fn in_main_stage(&self) -> bool {
        true
    }
}

/// An initialisation stage: `epochs` epochs in which only the stage losses are optimised, with a
/// fresh optimiser of the run's kind at a constant learning rate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InitStage {
    /// Number of epochs.
    pub epochs: usize,
    /// Learning rate (default: the run's base learning rate).
    pub lr: Option<f64>,
    /// Weight of the term's stage loss (the term's objective weight belongs to the main stage).
    pub weight: f64,
}

/// A change to a helper module's non-trainable state (e.g. a memory bank), applied after the
/// optimiser step with values computed (detached) during the step.
pub struct AuxUpdate {
    /// Index of the helper module in the trainable bundle.
    pub aux: usize,
    /// The change.
    pub apply: Box<dyn FnOnce(crate::knowledge::Aux) -> crate::knowledge::Aux + Send>,
}

/// What [`KnowledgeTerm::forward_step`] returns.
pub struct TermStep {
    /// Named scalar terms.
    pub terms: Vec<(String, Tensor<1>)>,
    /// State changes to apply after the optimiser step.
    pub updates: Vec<AuxUpdate>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warmup_ramps_per_step_and_meets_the_per_epoch_factor_at_epoch_ends() {
        // 4 steps per epoch, warm-up 2 epochs: mdistiller's factor is 0.5 in epoch 1, 1 after.
        let steps = 4.0;
        let at = |epoch: usize, step: usize| (epoch - 1) as f64 + (step + 1) as f64 / steps;
        assert_eq!(warmup_factor(at(1, 0), 2.0), 0.125); // no jump to 0.5 at the first step
        assert_eq!(warmup_factor(at(1, 3), 2.0), 0.5); // = min(1 / 2, 1)
        assert_eq!(warmup_factor(at(2, 3), 2.0), 1.0);
        assert_eq!(warmup_factor(at(5, 0), 2.0), 1.0);
        assert_eq!(warmup_factor(at(1, 0), 0.0), 1.0);
        // fractional warm-ups: a quarter epoch
        assert_eq!(warmup_factor(at(1, 0), 0.25), 1.0);
    }
}
