//! One optimisation step, the same for every run: frozen teachers (from the cache or a forward
//! pass without autodiff), trainable students, the weighted objective, backward, optional
//! gradient clipping, the optimiser update and the terms' state updates.

use std::sync::{Arc, Mutex};

use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::prelude::*;

use super::cache::{CacheKey, TeacherCache};
use super::clip::{clip_global_norm, scale_grads, squared_norm};
use super::plan::Precision;
use crate::data::View;
use crate::knowledge::{Aux, AuxUpdate, Objective, RewriteContext, Stage, StepContext, TermWeight};
use crate::models::{Net, TapShapes, Taps};
use crate::tasks::ranking::Lists;
use crate::tasks::Target;

/// Everything trainable in one run: the students and the methods' helper modules, optimised
/// together by one optimiser.
#[derive(Module, Debug)]
pub struct Trainable {
    /// The trainable roles: the recipe's student, then its peers (mutual learning).
    pub students: Vec<Net>,
    /// Connectors, projection heads and other helpers registered by the methods.
    pub aux: Vec<Aux>,
}

/// A frozen teacher, ready for inference.
#[derive(Clone)]
pub struct Teacher {
    /// Row name.
    pub name: String,
    /// The model in inference mode on a device without autodiff: no gradients, batch norm uses
    /// its running statistics.
    pub net: Net,
    /// Its tap shapes.
    pub shapes: TapShapes,
    /// The view of each sample it reads.
    pub view: View,
    /// Its predictions on the test set (for the agreement metric).
    pub test_predictions: Vec<usize>,
    /// Its scores of the test set's candidates (ranking: the agreement of rankings).
    pub test_scores: Vec<f32>,
    /// Cache of its outputs, shared by every job that distils from it (`None`: always run it).
    pub cache: Option<Arc<Mutex<TeacherCache>>>,
    /// Why it cannot be read yet, if it is trained by a later phase (its `net` is then an
    /// untrained stand-in that only gives the tap shapes, and terms may not name it).
    pub unready: Option<String>,
}

impl Teacher {
    /// The teacher's taps for a batch of source inputs `x`: from the cache when it holds every
    /// tap the objective reads for every sample, otherwise from a forward pass on its view of
    /// `x` (whose outputs are then cached).
    pub fn outputs(&self, x: Tensor<4>, keys: &[CacheKey], taps: &[String]) -> Taps {
        let Some(cache) = &self.cache else {
            return self.net.forward(self.view.apply(x));
        };
        let device = x.device();
        let mut cache = cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(hit) = cache.lookup(taps, keys, &device) {
            return hit;
        }
        let out = self.net.forward(self.view.apply(x));
        cache.insert(taps, keys, &out);
        // a sparse store trains on its stored form from the first step on
        cache.served(taps, keys, out)
    }
}

/// One training batch on the device: source inputs, targets, and each sample's index in the
/// training set and teacher-cache key.
pub struct Batch {
    /// Source inputs `[n, c, h, w]` (each role reads its view of them).
    pub x: Tensor<4>,
    /// Targets.
    pub y: Target,
    /// Index of each sample in the training set.
    pub indices: Vec<usize>,
    /// Teacher-cache key (sample, augmented view) of each sample.
    pub keys: Vec<CacheKey>,
    /// The layout of the batch's ranking lists (ranking data only).
    pub lists: Option<Lists>,
}

/// Applies the terms' state changes (memory banks) to their helper modules.
fn apply_updates(mut trainable: Trainable, updates: Vec<AuxUpdate>) -> Trainable {
    if updates.is_empty() {
        return trainable;
    }
    let mut slots: Vec<Option<Aux>> = trainable.aux.into_iter().map(Some).collect();
    for u in updates {
        let current = slots[u.aux].take().expect("one update per helper module");
        slots[u.aux] = Some((u.apply)(current));
    }
    trainable.aux = slots
        .into_iter()
        .map(|s| s.expect("every helper module is put back"))
        .collect();
    trainable
}

/// What one optimisation step returns.
pub struct StepOutput {
    /// The updated trainable bundle.
    pub trainable: Trainable,
    /// Weighted objective.
    pub total: f64,
    /// Unweighted terms, by name.
    pub terms: Vec<(String, f64)>,
    /// How each term enters the objective, in the order of `terms`.
    pub weights: Vec<TermWeight>,
    /// The recipe's student's (the first trainable role's) batch sum of the task's training
    /// metric: correct top-1 predictions, or squared errors in standardised units.
    pub correct: f64,
    /// The first non-finite term (the update is then skipped).
    pub non_finite: Option<(String, f64)>,
    /// A gradient of the loss-scaled backward was not finite: the update was skipped, and the
    /// scale should shrink (f16 only).
    pub overflow: bool,
}

/// Where a step stands in the run and how it updates.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepAt {
    /// The stage of the step.
    pub stage: Stage,
    /// Epoch of the stage, from 1.
    pub epoch: usize,
    /// Epochs of the stage done after this step, counted per step (see
    /// [`StepContext::progress`]).
    pub progress: f64,
    /// Learning rate of the update.
    pub lr: f64,
    /// Global gradient-norm clipping threshold, if any.
    pub grad_clip: Option<f64>,
    /// The dtype the students compute in.
    pub precision: Precision,
    /// The factor the objective is multiplied by before backward and the gradients divided by
    /// after it, the update skipped where one overflows: f16's dynamic loss scale (see
    /// [`crate::train::scaler`]; `None` at other precisions).
    pub loss_scale: Option<f64>,
}

/// One training step: frozen teachers' forward (no autodiff), students' forward, objective,
/// backward, optional gradient clipping and optimiser update. Reads the values back from the
/// device once.
pub fn train_step(
    trainable: Trainable,
    optim: &mut ModuleOptimizer,
    objective: &Objective,
    teachers: &[Teacher],
    batch: Batch,
    at: StepAt,
) -> StepOutput {
    let Batch {
        x,
        y,
        indices,
        keys,
        lists,
    } = batch;
    // A term that generates its batches (on-policy, sequence-level KD) replaces the data's; the
    // teachers then score windows no cache has seen.
    let frozen: Vec<&Net> = teachers.iter().map(|t| &t.net).collect();
    let rewritten = objective.rewrite_batch(
        at.stage,
        &RewriteContext {
            students: &trainable.students,
            teachers: &frozen,
            x: &x,
            targets: &y,
            seed: crate::data::loader::mix(
                at.epoch as u64,
                at.progress.to_bits(),
                indices.first().map_or(0, |&i| i as u64 + 1),
            ),
        },
    );
    let (x, y, fresh) = match rewritten {
        Some((x, y)) => (x, y, true),
        None => (x, y, false),
    };
    // The students compute in the plan's precision over their f32 weights; the taps come back
    // in f32.
    let dtype = at.precision.dtype();
    let student_taps: Vec<_> = trainable
        .students
        .iter()
        .enumerate()
        .map(|(i, s)| s.forward_at(objective.input_of(i, &x), dtype))
        .collect();
    // The teacher side: every trainable role read as a constant, then the frozen teachers the
    // terms read (from their cache or a forward pass without autodiff), as
    // `BuildContext::teacher` indexes them.
    let mut teacher_taps: Vec<Option<Taps>> =
        student_taps.iter().map(|t| Some(t.detach())).collect();
    if objective.reads_teachers() {
        let x_plain = x.without_autodiff();
        teacher_taps.extend(teachers.iter().enumerate().map(|(i, t)| {
            let taps = objective.teacher_taps(i);
            (!taps.is_empty()).then(|| {
                if fresh {
                    t.net.forward(t.view.apply(x_plain.clone()))
                } else {
                    t.outputs(x_plain.clone(), &keys, taps)
                }
            })
        }));
    }
    let hits = y.batch_sum(student_taps[0].logits.clone().detach());
    let ctx = StepContext {
        students: &student_taps,
        teachers: &teacher_taps,
        targets: y,
        lists,
        indices: &indices,
        epoch: at.epoch,
        progress: at.progress,
        stage: at.stage,
    };
    let value = objective.forward(&trainable.aux, &ctx);
    let mut parts = vec![value.total.clone().detach()];
    parts.extend(value.terms.iter().map(|(_, t)| t.clone().detach()));
    parts.push(hits);
    let read: Vec<f32> = Tensor::cat(parts, 0).into_data().iter::<f32>().collect();
    let terms: Vec<(String, f64)> = value
        .terms
        .iter()
        .zip(&read[1..])
        .map(|((name, _), v)| (name.clone(), *v as f64))
        .collect();
    let non_finite = terms
        .iter()
        .find(|(_, v)| !v.is_finite())
        .cloned()
        .or_else(|| (!read[0].is_finite()).then(|| ("total".to_string(), read[0] as f64)));
    let mut overflow = false;
    let trainable = match (non_finite.is_some(), at.loss_scale) {
        (true, _) => {
            // No update, but backward all the same: under [distributed] Burn all-reduces the
            // gradients inside backward, and the other devices' backward waits for this one's
            let _ = value.total.backward();
            trainable
        }
        (false, None) => {
            let grads = GradientsParams::from_grads(value.total.backward(), &trainable);
            update(trainable, optim, grads, None, value.updates, at)
        }
        (false, Some(scale)) => {
            // Loss scaling: backward of the scaled objective, the f32 gradients unscaled, the
            // update skipped where one of them overflowed (one more read-back, as PyTorch's
            // GradScaler has).
            let device = value.total.device();
            let scaled = value.total.mul_scalar(scale).backward();
            let grads = GradientsParams::from_grads(scaled, &trainable);
            let unscale = Tensor::<1>::from_floats([(1.0 / scale) as f32], &device);
            let grads = scale_grads(grads, &trainable, unscale);
            let squared = squared_norm(&grads, &trainable);
            overflow = squared
                .clone()
                .is_some_and(|n| !n.into_scalar::<f32>().is_finite());
            if overflow {
                apply_updates(trainable, value.updates)
            } else {
                update(trainable, optim, grads, squared, value.updates, at)
            }
        }
    };
    StepOutput {
        trainable,
        total: read[0] as f64,
        terms,
        weights: value.weights,
        correct: read[read.len() - 1] as f64,
        non_finite,
        overflow,
    }
}

/// The optimiser update from `grads` (clipped first where the plan clips; `squared`: their
/// squared norm where it is known), then the terms' state changes.
fn update(
    trainable: Trainable,
    optim: &mut ModuleOptimizer,
    mut grads: GradientsParams,
    squared: Option<Tensor<1>>,
    updates: Vec<AuxUpdate>,
    at: StepAt,
) -> Trainable {
    if let Some(max_norm) = at.grad_clip {
        grads = clip_global_norm(grads, &trainable, max_norm, squared);
    }
    apply_updates(optim.step(at.lr, trainable, grads), updates)
}
