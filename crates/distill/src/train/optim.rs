//! Optimisers built from a [`TrainPlan`], with PyTorch's defaults.

use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{AdamConfig, AdamWConfig, ModuleOptimizer, SgdConfig};

use crate::config::{OptimizerKind, TrainPlan};

/// Builds the optimiser. SGD uses dampening 0 (PyTorch's default; Burn's is 0.1) and L2 weight
/// decay added to the gradient; Adam/AdamW use ε = 1e-8 (PyTorch's; Burn's is 1e-5).
pub fn build_optimizer(plan: &TrainPlan) -> ModuleOptimizer {
    let wd = (plan.weight_decay > 0.0).then(|| WeightDecayConfig::new(plan.weight_decay as f32));
    match plan.optimizer {
        OptimizerKind::Sgd => {
            let momentum = (plan.momentum > 0.0).then(|| {
                MomentumConfig::new()
                    .with_momentum(plan.momentum)
                    .with_dampening(0.0)
                    .with_nesterov(plan.nesterov)
            });
            SgdConfig::new()
                .with_momentum(momentum)
                .with_weight_decay(wd)
                .init()
        }
        OptimizerKind::Adam => AdamConfig::new()
            .with_epsilon(1e-8)
            .with_weight_decay(wd)
            .init(),
        OptimizerKind::Adamw => AdamWConfig::new()
            .with_epsilon(1e-8)
            .with_weight_decay(plan.weight_decay as f32)
            .init(),
    }
}
