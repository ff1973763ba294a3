//! The training objective: a weighted sum of named knowledge terms, stage by stage.

use burn::prelude::*;

use super::method::Built;
use super::term::{AuxUpdate, InitStage, Stage, StepContext};
use super::Aux;
use crate::data::View;

/// Weighted sum of terms; every term's unweighted value is reported for logging.
pub struct Objective {
    terms: Vec<Built>,
    teacher_taps: Vec<Vec<String>>,
    reads_teachers: bool,
    views: Vec<View>,
}

/// How a term enters the objective: its weight, and whether it is the task's supervised loss
/// (what a collapse report blames last).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TermWeight {
    /// Weight in the objective.
    pub weight: f64,
    /// Whether the term's method is of the `supervised` family.
    pub supervised: bool,
}

/// The objective's value at one step.
pub struct ObjectiveValue {
    /// `Σ weight · term`.
    pub total: Tensor<1>,
    /// Each term's unweighted value, by name (names made unique with a `#2` suffix).
    pub terms: Vec<(String, Tensor<1>)>,
    /// How each term enters `total`, in the order of `terms`.
    pub weights: Vec<TermWeight>,
    /// Non-trainable state changes to apply after the optimiser step.
    pub updates: Vec<AuxUpdate>,
}

impl Objective {
    /// An objective over built terms.
    pub fn new(terms: Vec<Built>) -> Self {
        Self {
            terms,
            teacher_taps: Vec::new(),
            reads_teachers: true,
            views: Vec::new(),
        }
    }

    /// The view each trainable role reads, in the order of [`StepContext::students`].
    pub fn reading(mut self, views: Vec<View>) -> Self {
        self.views = views;
        self
    }

    /// The view each trainable role reads (the source input for every role when unset).
    pub fn views(&self) -> &[View] {
        &self.views
    }

    /// The input of trainable role `i` from a batch of source inputs.
    pub fn input_of(&self, i: usize, x: &Tensor<4>) -> Tensor<4> {
        match self.views.get(i) {
            Some(v) => v.apply(x.clone()),
            None => x.clone(),
        }
    }

    /// Records which taps of each frozen teacher the terms read (`logits` included for every
    /// teacher they read; none for a teacher they do not read, whose forward pass the step
    /// then skips).
    pub fn with_teacher_taps(
        mut self,
        teachers: usize,
        uses: &std::collections::BTreeSet<(usize, String)>,
    ) -> Self {
        self.reads_teachers = !uses.is_empty();
        self.teacher_taps = (0..teachers)
            .map(|i| {
                if !uses.iter().any(|(t, _)| *t == i) {
                    return Vec::new();
                }
                let mut taps = vec!["logits".to_string()];
                taps.extend(
                    uses.iter()
                        .filter(|(t, name)| *t == i && name != "logits")
                        .map(|(_, name)| name.clone()),
                );
                taps
            })
            .collect();
        self
    }

    /// Whether any term reads a teacher (a recipe of cross-entropy alone does not, and its steps
    /// skip the teachers).
    pub fn reads_teachers(&self) -> bool {
        self.reads_teachers
    }

    /// The taps of frozen teacher `i` the terms read (empty: the terms do not read it).
    pub fn teacher_taps(&self, i: usize) -> &[String] {
        &self.teacher_taps[i]
    }

    /// Number of terms.
    pub fn len(&self) -> usize {
        self.terms.len()
    }

    /// Whether there is no term.
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// Whether any term contributes to the main stage.
    pub fn has_main_terms(&self) -> bool {
        self.terms.iter().any(|b| b.term.in_main_stage())
    }

    /// The initialisation stage of the run: as long as the longest one any term asks for, at the
    /// learning rate of the first term that sets one.
    pub fn init_stage(&self) -> Option<InitStage> {
        let stages: Vec<InitStage> = self
            .terms
            .iter()
            .filter_map(|b| b.term.init_stage())
            .filter(|s| s.epochs > 0)
            .collect();
        let epochs = stages.iter().map(|s| s.epochs).max()?;
        Some(InitStage {
            epochs,
            lr: stages.iter().find_map(|s| s.lr),
            weight: 1.0,
        })
    }

    /// The batch a term generates for this step, if one does (see
    /// [`super::KnowledgeTerm::rewrite_batch`]); only in the main stage.
    pub fn rewrite_batch(
        &self,
        stage: Stage,
        ctx: &super::term::RewriteContext<'_>,
    ) -> Option<(Tensor<4>, crate::tasks::Target)> {
        if stage != Stage::Main {
            return None;
        }
        self.terms.iter().find_map(|b| b.term.rewrite_batch(ctx))
    }

    /// Evaluates the terms of the step's stage and their weighted sum.
    pub fn forward(&self, aux: &[Aux], ctx: &StepContext<'_>) -> ObjectiveValue {
        let mut total: Option<Tensor<1>> = None;
        let mut named: Vec<(String, Tensor<1>)> = Vec::new();
        let mut weights = Vec::new();
        let mut updates = Vec::new();
        for built in &self.terms {
            let (terms, weight) = match (ctx.stage, built.term.init_stage()) {
                (Stage::Init, Some(stage)) => (built.term.init_forward(aux, ctx), stage.weight),
                (Stage::Init, None) => (Vec::new(), 0.0),
                (Stage::Main, _) if built.term.in_main_stage() => {
                    let step = built.term.forward_step(aux, ctx);
                    updates.extend(step.updates);
                    (step.terms, built.weight)
                }
                (Stage::Main, _) => (Vec::new(), 0.0),
            };
            for (name, value) in terms {
                let weighted = value.clone().mul_scalar(weight);
                total = Some(match total {
                    Some(t) => t + weighted,
                    None => weighted,
                });
                let mut unique = name.clone();
                let mut k = 2;
                while named.iter().any(|(n, _)| *n == unique) {
                    unique = format!("{name}#{k}");
                    k += 1;
                }
                named.push((unique, value));
                weights.push(TermWeight {
                    weight,
                    supervised: built.supervised,
                });
            }
        }
        ObjectiveValue {
            total: total
                .expect("every stage has at least one term (checked when the objective is built)"),
            terms: named,
            weights,
            updates,
        }
    }
}
