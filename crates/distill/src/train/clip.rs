//! Global gradient-norm clipping, as PyTorch's `torch.nn.utils.clip_grad_norm_`.
//!
//! Burn's `GradientClipping::Norm` clips each parameter tensor by its own norm; published
//! recipes (and `[train] grad_clip`) mean the norm of all gradients together. The scaling stays
//! on the device (no read-back): `g ← g · min(1, max_norm / (‖g‖₂ + 1e-6))`.

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::prelude::*;

/// Sums the squared entries of every gradient of a module's parameters.
struct SquaredNorm<'a> {
    grads: &'a GradientsParams,
    parts: Vec<Tensor<1>>,
}

impl ModuleVisitor for SquaredNorm<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(g) = self.grads.get::<D>(param.id) {
            self.parts.push(g.square().sum());
        }
    }
}

/// Multiplies every gradient of a module's parameters by a scalar tensor.
struct Scale<'a> {
    grads: &'a mut GradientsParams,
    factor: Tensor<1>,
}

impl ModuleVisitor for Scale<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(g) = self.grads.remove::<D>(param.id) {
            let f = self.factor.clone().to_device(&g.device());
            let shape = [1; D];
            self.grads.register(param.id, g * f.reshape(shape));
        }
    }
}

/// The sum of the squared entries of every gradient of `module`'s parameters (`None`: no
/// gradient).
pub fn squared_norm<M: Module>(grads: &GradientsParams, module: &M) -> Option<Tensor<1>> {
    let mut norm = SquaredNorm {
        grads,
        parts: Vec::new(),
    };
    module.visit(&mut norm);
    (!norm.parts.is_empty()).then(|| Tensor::cat(norm.parts, 0).sum())
}

/// Every gradient of `module`'s parameters multiplied by `factor` (a one-element tensor).
pub fn scale_grads<M: Module>(
    mut grads: GradientsParams,
    module: &M,
    factor: Tensor<1>,
) -> GradientsParams {
    module.visit(&mut Scale {
        grads: &mut grads,
        factor,
    });
    grads
}

/// Scales the gradients of `module` so that their global L2 norm is at most `max_norm`
/// (PyTorch's `clip_grad_norm_` with `eps = 1e-6`); gradients with a smaller norm are unchanged.
/// `squared`: their [`squared_norm`], where the caller has it already.
pub fn clip_global_norm<M: Module>(
    grads: GradientsParams,
    module: &M,
    max_norm: f64,
    squared: Option<Tensor<1>>,
) -> GradientsParams {
    let Some(squared) = squared.or_else(|| squared_norm(&grads, module)) else {
        return grads;
    };
    let factor = (squared.sqrt().add_scalar(1e-6).recip() * max_norm).clamp_max(1.0);
    scale_grads(grads, module, factor)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::{Linear, LinearConfig};

    fn grads_of(layer: &Linear, scale: f32, dev: &Device) -> GradientsParams {
        let x = Tensor::<2>::ones([2, 3], dev).mul_scalar(scale);
        let loss = layer.forward(x).sum();
        GradientsParams::from_grads(loss.backward(), layer)
    }

    fn norm(layer: &Linear, g: &GradientsParams) -> f64 {
        let w = g.get::<2>(layer.weight.id).unwrap();
        let b = g.get::<1>(layer.bias.as_ref().unwrap().id).unwrap();
        let sq = w.square().sum().into_scalar::<f32>() + b.square().sum().into_scalar::<f32>();
        (sq as f64).sqrt()
    }

    #[test]
    fn clips_the_global_norm_and_leaves_small_gradients_alone() {
        let dev = Device::flex().autodiff();
        let layer = LinearConfig::new(3, 4).init(&dev);
        // d(sum(xW + b))/dW = 2·scale per entry (12 entries), d/db = 2 (4 entries)
        let g = grads_of(&layer, 10.0, &dev);
        let before = norm(&layer, &g);
        assert!((before - (12.0f64 * 400.0 + 4.0 * 4.0).sqrt()).abs() < 1e-3);
        let clipped = clip_global_norm(g, &layer, 1.0, None);
        assert!((norm(&layer, &clipped) - 1.0).abs() < 1e-5);
        // direction kept: the bias/weight ratio is unchanged
        let values = |t: burn::tensor::TensorData| t.iter::<f32>().collect::<Vec<_>>();
        let w = values(clipped.get::<2>(layer.weight.id).unwrap().into_data());
        let b = values(
            clipped
                .get::<1>(layer.bias.as_ref().unwrap().id)
                .unwrap()
                .into_data(),
        );
        assert!((w[0] / b[0] - 10.0).abs() < 1e-4);
        let g = grads_of(&layer, 10.0, &dev);
        let same = clip_global_norm(g, &layer, 1e6, None);
        assert!((norm(&layer, &same) - before).abs() < 1e-3);
    }
}
