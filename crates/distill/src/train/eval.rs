//! Batched evaluation of a model on a test split: accuracy and predictions for classes, RMSE and
//! MAE (in target units) for real targets, NDCG@10 and MRR@10 for lists, perplexity and
//! next-token accuracy for token targets.

use std::sync::Arc;

use burn::prelude::*;
use burn::tensor::TensorData;

use super::step::Batch;
use crate::data::{Augment, Dataset, HostBatch, HostTargets, Loader, Normalization, Targets, View};
use crate::models::Net;
use crate::tasks::ranking::{ndcg_and_rr, Lists, CUTOFF};
use crate::tasks::Target;

/// What a model scores on a split.
#[derive(Debug, Clone)]
pub struct Evaluation {
    /// Fraction of correct top-1 predictions (classes).
    pub accuracy: Option<f64>,
    /// Predicted class per sample, in data set order (classes; empty for reals).
    pub predictions: Vec<usize>,
    /// Root-mean-square error in target units (reals).
    pub rmse: Option<f64>,
    /// Mean absolute error in target units (reals).
    pub mae: Option<f64>,
    /// Mean NDCG@10 over the lists with a relevant candidate (ranking).
    pub ndcg: Option<f64>,
    /// Mean reciprocal rank@10 over the same lists (ranking).
    pub mrr: Option<f64>,
    /// Each sample's score, in data set order (ranking; empty otherwise).
    pub scores: Vec<f32>,
    /// Perplexity, `exp` of the mean next-token negative log-likelihood over the positions that
    /// have a target (generation).
    pub perplexity: Option<f64>,
    /// Fraction of those positions whose top-1 prediction is the next token (generation).
    pub token_accuracy: Option<f64>,
}

impl Evaluation {
    /// The headline metric: accuracy, RMSE, NDCG@10 or perplexity.
    pub fn primary(&self) -> f64 {
        self.accuracy
            .or(self.rmse)
            .or(self.ndcg)
            .or(self.perplexity)
            .unwrap_or(f64::NAN)
    }

    /// The task's second metric: MAE (regression), MRR@10 (ranking) or next-token accuracy
    /// (generation).
    pub fn secondary(&self) -> Option<f64> {
        self.mae.or(self.mrr).or(self.token_accuracy)
    }

    /// Fraction of samples (of positions with a target, for a language model) where both
    /// predict the same class (token).
    pub fn agreement(&self, other: &[usize]) -> f64 {
        let same = self
            .predictions
            .iter()
            .zip(other)
            .filter(|(a, b)| a == b)
            .count();
        same as f64 / self.predictions.len().max(1) as f64
    }
}

/// Uploads a host batch as `[n, c, h, w]` inputs and its targets.
pub fn upload(batch: HostBatch, geometry: [usize; 3], device: &Device) -> (Tensor<4>, Target) {
    let n = batch.len();
    let [c, h, w] = geometry;
    let x = Tensor::from_data(TensorData::new(batch.inputs, [n, c, h, w]), device);
    (x, Target::upload(batch.targets, n, device))
}

/// [`upload`], keeping each sample's index and teacher-cache key for the training step.
pub fn upload_keyed(batch: HostBatch, geometry: [usize; 3], device: &Device) -> Batch {
    let indices = batch.indices.clone();
    let keys = batch.cache_keys();
    let lists = batch.groups.as_ref().map(|g| Lists::upload(g, device));
    let (x, y) = upload(batch, geometry, device);
    Batch {
        x,
        y,
        indices,
        keys,
        lists,
    }
}

/// Evaluates `net`, reading `view` of each sample, in inference mode (no autodiff, batch norm
/// with running statistics).
pub fn evaluate(
    net: &Net,
    view: &View,
    data: &Arc<Dataset>,
    norm: &Normalization,
    batch_size: usize,
    device: &Device,
) -> Evaluation {
    let net = net.valid();
    evaluate_outputs(
        &|x| net.forward(view.apply(x)).logits,
        data,
        norm,
        batch_size,
        device,
    )
}

/// Evaluates an ensemble: the mean of its members' outputs (logits, real predictions or
/// scores), each member reading its own view, in inference mode.
pub fn evaluate_ensemble(
    members: &[(&Net, &View)],
    data: &Arc<Dataset>,
    norm: &Normalization,
    batch_size: usize,
    device: &Device,
) -> Evaluation {
    let nets: Vec<(Net, &View)> = members.iter().map(|(n, v)| (n.valid(), *v)).collect();
    evaluate_outputs(
        &|x| {
            let outs: Vec<Tensor<2>> = nets
                .iter()
                .map(|(n, v)| n.forward(v.apply(x.clone())).logits)
                .collect();
            crate::knowledge::ops::mean_of(&outs)
        },
        data,
        norm,
        batch_size,
        device,
    )
}

/// Evaluates the outputs `forward` gives for batches of source inputs (on a device without
/// autodiff) against the split's targets.
fn evaluate_outputs(
    forward: &dyn Fn(Tensor<4>) -> Tensor<2>,
    data: &Arc<Dataset>,
    norm: &Normalization,
    batch_size: usize,
    device: &Device,
) -> Evaluation {
    let device = device.clone().without_autodiff();
    let loader = Loader::new(
        data.clone(),
        norm.clone(),
        batch_size,
        Augment::default(),
        false,
        0,
    );
    let geometry = data.geometry();
    let mut predictions = Vec::with_capacity(data.len());
    let (mut correct, mut sq, mut abs, mut count) = (0usize, 0f64, 0f64, 0usize);
    let (mut scores, mut grades) = (Vec::new(), Vec::new());
    let (mut nll, mut tokens) = (0f64, 0usize);
    for batch in loader.epoch(0, 2) {
        let targets = batch.targets.clone();
        let (x, _) = upload(batch, geometry, &device);
        let out = forward(x);
        match targets {
            HostTargets::Class(labels) => {
                let pred: Vec<i64> = out.argmax(1).into_data().iter::<i64>().collect();
                for (p, y) in pred.iter().zip(&labels) {
                    correct += usize::from(p == y);
                    predictions.push(*p as usize);
                }
            }
            // An unlabeled transfer set (classification): the predictions alone, for the
            // agreement with the teacher.
            HostTargets::None => {
                predictions.extend(out.argmax(1).into_data().iter::<i64>().map(|p| p as usize));
            }
            HostTargets::Tokens(next) => {
                let vocab = out.dims()[1];
                let logits: Vec<f32> = out.into_data().iter::<f32>().collect();
                let (sum, predicted, right) =
                    crate::tasks::generation::nll_and_predictions(&logits, vocab, &next);
                nll += sum;
                correct += right;
                tokens += predicted.len();
                predictions.extend(predicted);
            }
            HostTargets::Relevance(g) => {
                scores.extend(out.into_data().iter::<f32>());
                grades.extend(g);
            }
            HostTargets::Real(values) => {
                // Errors in target units: both sides are standardised with the same mean, so
                // the error scales by the dimension's standard deviation.
                let d = norm.target_std.len().max(1);
                let pred: Vec<f32> = out.into_data().iter::<f32>().collect();
                for (k, (p, y)) in pred.iter().zip(&values).enumerate() {
                    let e = (*p as f64 - *y as f64) * norm.target_std[k % d] as f64;
                    sq += e * e;
                    abs += e.abs();
                    count += 1;
                }
            }
        }
    }
    let n = data.len().max(1) as f64;
    let none = Evaluation {
        accuracy: None,
        predictions: Vec::new(),
        rmse: None,
        mae: None,
        ndcg: None,
        mrr: None,
        scores: Vec::new(),
        perplexity: None,
        token_accuracy: None,
    };
    match data.targets {
        Targets::Class(_) => Evaluation {
            accuracy: Some(correct as f64 / n),
            predictions,
            ..none
        },
        Targets::Relevance(_) => {
            // The evaluation batches hold whole lists, in order: score each list.
            let judged: Vec<(f64, f64)> = data
                .units()
                .into_iter()
                .filter_map(|r| ndcg_and_rr(&scores[r.clone()], &grades[r], CUTOFF))
                .collect();
            let mean = |f: fn(&(f64, f64)) -> f64| {
                judged.iter().map(f).sum::<f64>() / judged.len().max(1) as f64
            };
            Evaluation {
                ndcg: Some(mean(|j| j.0)),
                mrr: Some(mean(|j| j.1)),
                scores,
                ..none
            }
        }
        Targets::Tokens { .. } => Evaluation {
            perplexity: Some((nll / tokens.max(1) as f64).exp()),
            token_accuracy: Some(correct as f64 / tokens.max(1) as f64),
            predictions,
            ..none
        },
        Targets::None(_) => Evaluation {
            predictions,
            ..none
        },
        Targets::Real { .. } => Evaluation {
            rmse: Some((sq / count.max(1) as f64).sqrt()),
            mae: Some(abs / count.max(1) as f64),
            ..none
        },
    }
}
