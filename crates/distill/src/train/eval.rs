//! Batched evaluation of a model on a labelled data set.

use std::sync::Arc;

use burn::prelude::*;
use burn::tensor::TensorData;

use super::step::Batch;
use crate::data::{Augment, Dataset, HostBatch, Loader, Normalization};
use crate::models::Net;

/// Accuracy and the predicted class of every sample.
#[derive(Debug, Clone)]
pub struct Evaluation {
    /// Fraction of correct top-1 predictions.
    pub accuracy: f64,
    /// Predicted class per sample, in data set order.
    pub predictions: Vec<usize>,
}

impl Evaluation {
    /// Fraction of samples where both predict the same class.
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

/// Uploads a host batch as `[n, c, h, w]` images and `[n]` labels.
pub fn upload(
    batch: HostBatch,
    geometry: [usize; 3],
    device: &Device,
) -> (Tensor<4>, Tensor<1, Int>) {
    let n = batch.len();
    let [c, h, w] = geometry;
    let x = Tensor::from_data(TensorData::new(batch.images, [n, c, h, w]), device);
    let y = Tensor::from_data(TensorData::new(batch.labels, [n]), device);
    (x, y)
}

/// [`upload`], keeping each sample's index and teacher-cache key for the training step.
pub fn upload_keyed(batch: HostBatch, geometry: [usize; 3], device: &Device) -> Batch {
    let indices = batch.indices.clone();
    let keys = batch.cache_keys();
    let (x, y) = upload(batch, geometry, device);
    Batch {
        x,
        y,
        indices,
        keys,
    }
}

/// Evaluates `net` in inference mode (no autodiff, batch norm with running statistics).
pub fn evaluate(
    net: &Net,
    data: &Arc<Dataset>,
    norm: &Normalization,
    batch_size: usize,
    device: &Device,
) -> Evaluation {
    let device = device.clone().without_autodiff();
    let net = net.valid();
    let loader = Loader::new(
        data.clone(),
        norm.clone(),
        batch_size,
        Augment::default(),
        false,
        0,
    );
    let geometry = [data.channels, data.height, data.width];
    let mut predictions = Vec::with_capacity(data.len());
    let mut correct = 0usize;
    for batch in loader.epoch(0, 2) {
        let labels = batch.labels.clone();
        let (x, _) = upload(batch, geometry, &device);
        let pred: Vec<i64> = net
            .forward(x)
            .logits
            .argmax(1)
            .into_data()
            .iter::<i64>()
            .collect();
        for (p, y) in pred.iter().zip(&labels) {
            correct += usize::from(p == y);
            predictions.push(*p as usize);
        }
    }
    Evaluation {
        accuracy: correct as f64 / data.len().max(1) as f64,
        predictions,
    }
}
