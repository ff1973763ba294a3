//! Data-parallel training across devices with Burn's own distributed support
//! (`burn::tensor::distributed`): every device holds a replica of the trainable bundle whose
//! parameters are marked distributed, trains on its shard of each batch, and Burn's autodiff
//! all-reduces (averages) the gradients during `backward`, so the replicas' optimisers take the
//! same step. distill adds no collective of its own.
//!
//! Burn 0.22.1 implements the collective only for CUDA devices (NCCL); its `flex` CPU backend
//! has none and its wgpu runtime has no device transport, so configurations asking for several
//! devices on those backends are refused when validated, before Burn would panic. Burn 0.22.1
//! has no multi-node transport either (its `DistributedConfig` holds only the reduce operation).

use std::path::Path;

use burn::module::{ModuleMapper, Param};
use burn::optim::ModuleOptimizer;
use burn::prelude::*;
use burn::tensor::distributed::{DistributedConfig, DistributedContext, ReduceOperation};

use super::eval::upload_keyed;
use super::optim::build_optimizer;
use super::step::{train_step, StepAt, StepOutput, Teacher, Trainable};
use crate::config::TrainPlan;
use crate::data::HostBatch;
use crate::error::{DistillError, Result};
use crate::knowledge::Objective;

/// Marks every parameter for gradient all-reduce (what burn-train's DDP strategy does).
struct Shard;

impl ModuleMapper for Shard {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let (id, tensor, mapper) = param.consume();
        Param::from_mapped_value(id, tensor.set_distributed(id), mapper)
    }
}

struct Replica {
    device: Device,
    trainable: Trainable,
    optim: ModuleOptimizer,
    teachers: Vec<Teacher>,
}

/// The replicas beyond the main device, and Burn's communication context.
pub struct DataParallel {
    replicas: Vec<Replica>,
    _context: DistributedContext,
}

impl DataParallel {
    /// Starts Burn's distributed context over `main` and `others` and replicates the (possibly
    /// resumed) bundle and the teachers onto `others`; returns the main bundle marked for
    /// all-reduce. `optimizer` is the state file to resume every replica's optimiser from.
    pub fn start(
        main: &Device,
        others: &[Device],
        trainable: Trainable,
        teachers: &[Teacher],
        plan: &TrainPlan,
        optimizer: Option<&Path>,
    ) -> Result<(Self, Trainable)> {
        let mut devices = vec![main.clone()];
        devices.extend(others.iter().cloned());
        let context = DistributedContext::init(
            devices,
            DistributedConfig {
                all_reduce_op: ReduceOperation::Mean,
            },
        );
        let mut replicas = Vec::with_capacity(others.len());
        for device in others {
            let mut optim = build_optimizer(plan);
            if let Some(path) = optimizer {
                optim = optim.load(path).map_err(|e| DistillError::Checkpoint {
                    path: path.to_path_buf(),
                    reason: format!("optimizer state does not load on a replica: {e}"),
                })?;
            }
            let plain = device.clone().without_autodiff();
            replicas.push(Replica {
                device: device.clone(),
                trainable: trainable.clone().fork(device).map(&mut Shard),
                optim,
                teachers: teachers
                    .iter()
                    .map(|t| Teacher {
                        net: t.net.clone().fork(&plain),
                        ..t.clone()
                    })
                    .collect(),
            });
        }
        Ok((
            Self {
                replicas,
                _context: context,
            },
            trainable.map(&mut Shard),
        ))
    }

    /// Number of devices, the main one included.
    pub fn devices(&self) -> usize {
        self.replicas.len() + 1
    }

    /// Fresh optimisers on every replica (start of the main stage after an initialisation one).
    pub fn reset_optimizers(&mut self, plan: &TrainPlan) {
        for r in &mut self.replicas {
            r.optim = build_optimizer(plan);
        }
    }

    /// One data-parallel step: the batch in equal shards, the main device on the first. Returns
    /// the main bundle and the metrics averaged over shards (correct predictions summed).
    #[allow(clippy::too_many_arguments)]
    pub fn step(
        &mut self,
        trainable: Trainable,
        optim: &mut ModuleOptimizer,
        objective: &Objective,
        teachers: &[Teacher],
        batch: HostBatch,
        geometry: [usize; 3],
        main_device: &Device,
        at: StepAt,
    ) -> StepOutput {
        let shards = split(batch, self.devices());
        let mut shards = shards.into_iter();
        let first = shards.next().expect("one shard per device");
        let outputs: Vec<(usize, StepOutput)> = std::thread::scope(|s| {
            let mut handles = Vec::new();
            for (r, shard) in self.replicas.iter_mut().zip(shards) {
                handles.push(s.spawn(move || {
                    let batch = upload_keyed(shard, geometry, &r.device);
                    let n = batch.indices.len();
                    let out = train_step(
                        r.trainable.clone(),
                        &mut r.optim,
                        objective,
                        &r.teachers,
                        batch,
                        at,
                    );
                    r.trainable = out.trainable.clone();
                    (n, out)
                }));
            }
            let batch = upload_keyed(first, geometry, main_device);
            let n = batch.indices.len();
            let main = train_step(trainable, optim, objective, teachers, batch, at);
            let mut all = vec![(n, main)];
            all.extend(
                handles
                    .into_iter()
                    .map(|h| h.join().expect("a replica's step panicked")),
            );
            all
        });
        let n = outputs.len() as f64;
        let mut iter = outputs.into_iter();
        let (_, mut main) = iter.next().expect("the main shard");
        for (_, o) in iter {
            main.total += o.total;
            main.correct += o.correct;
            for ((_, a), (_, b)) in main.terms.iter_mut().zip(o.terms) {
                *a += b;
            }
            if main.non_finite.is_none() {
                main.non_finite = o.non_finite;
            }
            main.overflow |= o.overflow;
        }
        main.total /= n;
        for (_, v) in &mut main.terms {
            *v /= n;
        }
        main
    }
}

/// Splits a batch into `n` contiguous shards of (nearly) equal size. Batches of ranking lists
/// are not split (a data-parallel ranking plan is refused when it is validated).
fn split(b: HostBatch, n: usize) -> Vec<HostBatch> {
    assert!(
        b.groups.is_none(),
        "ranking lists are not sharded (refused at validation)"
    );
    let len = b.len();
    let per = len.div_ceil(n).max(1);
    let sample = b.inputs.len() / len.max(1);
    (0..n)
        .map(|k| {
            let r = (k * per).min(len)..((k + 1) * per).min(len);
            HostBatch {
                inputs: b.inputs[r.start * sample..r.end * sample].to_vec(),
                targets: b.targets.slice(r.clone(), len),
                indices: b.indices[r.clone()].to_vec(),
                views: b.views[r].to_vec(),
                groups: None,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_cover_the_batch_in_order() {
        let b = HostBatch {
            inputs: (0..12).map(|v| v as f32).collect(),
            targets: crate::data::HostTargets::Class(vec![0, 1, 2, 3, 4, 5]),
            indices: vec![10, 11, 12, 13, 14, 15],
            views: vec![0; 6],
            groups: None,
        };
        let s = split(b, 2);
        assert_eq!(s[0].indices, vec![10, 11, 12]);
        assert_eq!(s[1].inputs, vec![6.0, 7.0, 8.0, 9.0, 10.0, 11.0]);
    }
}
