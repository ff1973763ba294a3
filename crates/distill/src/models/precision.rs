//! Mixed precision: a model's compute in bf16 or f16 over its f32 master weights.
//!
//! What PyTorch's `torch.autocast` does with per-op rules, distill does per model:
//! [`Net::forward_at`] computes through a copy of the model whose weights are *read* in the
//! compute dtype. Each weight gets a [`ComputeCast`] reparameterization (Burn's mechanism behind LoRA), so the stored
//! parameter stays the f32 master copy: its identity, its record path and what the optimiser
//! updates are unchanged, and the gradient of the cast arrives on it in f32. The copy shares the
//! master tensors (and the batch-norm running statistics) with the model it came from and lives
//! for one forward pass, so checkpoints, evaluation, teachers and export never see a cast.
//!
//! Normalisation layers are left in f32, as autocast leaves them: their parameters are not cast,
//! and the models call them through [`NormF32`], which casts the activations to f32 around them
//! (mean and variance in bf16 lose too much, and batch norm's running statistics are f32). Every
//! tap leaves the model in f32 ([`Net::forward_at`]), so the knowledge layer — losses,
//! connectors, metrics — is f32 whatever the precision.

use std::collections::HashSet;

use burn::module::{ModuleVisitor, Param, Reparameterization, Reparameterizer};
use burn::nn::{BatchNorm, LayerNorm};
use burn::prelude::*;
use burn::tensor::DType;

use super::net::Net;
use super::taps::{Feature, Taps};

/// The cast of one weight to the compute dtype: the effective value of a parameter whose stored
/// base stays f32.
#[derive(Module, Debug)]
pub struct ComputeCast {
    /// Cast to f16 (otherwise bf16).
    f16: bool,
}

impl ComputeCast {
    fn dtype(&self) -> DType {
        if self.f16 {
            DType::F16
        } else {
            DType::BF16
        }
    }
}

impl Reparameterization for ComputeCast {
    const NAME: &'static str = "compute_cast";

    fn apply<const D: usize>(&self, base: Tensor<D>) -> Tensor<D> {
        base.cast(self.dtype())
    }
}

/// Attaches a [`ComputeCast`] to every float parameter outside the [`F32_LAYERS`].
struct CastWeights {
    f16: bool,
    /// Paths of the parameters left in f32.
    keep: HashSet<String>,
}

impl Reparameterizer for CastWeights {
    type Reparam = ComputeCast;

    fn reparameterize<const D: usize>(
        &mut self,
        path: &str,
        param: Param<Tensor<D>>,
    ) -> (Param<Tensor<D>>, Option<ComputeCast>) {
        let cast = (!self.keep.contains(path)).then_some(ComputeCast { f16: self.f16 });
        (param, cast)
    }
}

/// Collects the paths of the parameters that the [`F32_LAYERS`] own (a norm's scale and shift and
/// batch norm's running statistics, a GRU's weights), in the path form [`Reparameterizer`] is
/// given.
#[derive(Default)]
struct F32Params {
    path: Vec<String>,
    containers: Vec<String>,
    found: HashSet<String>,
}

/// The layers left in f32, by the container name Burn's module derive reports: the
/// normalisation layers the models use (each called through [`NormF32`]; a model that takes up
/// another norm layer adds it here and there), and the GRU (Burn's makes its hidden state in
/// the device's default dtype, f32, so it cannot run in another; `models::gru` casts around it).
const F32_LAYERS: &[&str] = &["Struct:BatchNorm", "Struct:LayerNorm", "Struct:Gru"];

impl ModuleVisitor for F32Params {
    fn enter_module(&mut self, name: &str, container: &str) {
        self.path.push(name.to_string());
        self.containers.push(container.to_string());
    }
    fn exit_module(&mut self, _name: &str, _container: &str) {
        self.path.pop();
        self.containers.pop();
    }
    fn visit_float<const D: usize>(&mut self, _param: &Param<Tensor<D>>) {
        // any enclosing container: a GRU's weights sit in its gates' linear layers
        if self
            .containers
            .iter()
            .any(|c| F32_LAYERS.contains(&c.as_str()))
        {
            self.found.insert(self.path.join("."));
        }
    }
}

impl Net {
    /// A copy of the model that computes in `dtype` (`F32`: the model itself): every weight
    /// outside the [`F32_LAYERS`] is read through a cast, the stored f32 weights shared with
    /// `self` (see the module docs).
    fn in_dtype(&self, dtype: DType) -> Net {
        let f16 = match dtype {
            DType::BF16 => false,
            DType::F16 => true,
            _ => return self.clone(),
        };
        let mut norms = F32Params::default();
        self.visit(&mut norms);
        self.clone().apply_reparameterization(CastWeights {
            f16,
            keep: norms.found,
        })
    }

    /// Forward pass computing in `dtype` over the f32 weights (`F32`: [`Self::forward`]): the
    /// input cast to `dtype` (token ids stay as they are: an embedding reads them as indices,
    /// and bf16 holds integers exactly only up to 256), the weights read through
    /// [`Self::in_dtype`], every tap cast back to f32.
    pub fn forward_at(&self, x: Tensor<4>, dtype: DType) -> Taps {
        if dtype == DType::F32 {
            return self.forward(x);
        }
        let x = match self {
            Net::Gpt(_) | Net::Bert(_) => x,
            _ => x.cast(dtype),
        };
        self.in_dtype(dtype).forward(x).cast(DType::F32)
    }
}

impl Taps {
    /// Every tensor cast to `dtype` (a no-op for those already in it).
    pub fn cast(self, dtype: DType) -> Taps {
        Taps {
            logits: self.logits.cast(dtype),
            features: self
                .features
                .into_iter()
                .map(|(n, f)| {
                    let f = match f {
                        Feature::Flat(t) => Feature::Flat(t.cast(dtype)),
                        Feature::Map(t) => Feature::Map(t.cast(dtype)),
                        Feature::Seq { x, mask } => Feature::Seq {
                            x: x.cast(dtype),
                            mask: mask.map(|m| m.cast(dtype)),
                        },
                    };
                    (n, f)
                })
                .collect(),
        }
    }
}

/// A normalisation layer run in f32 whatever the dtype of its input, the output cast back to
/// it. The models call their norm layers through this, so that one model runs at every
/// precision.
pub trait NormF32 {
    /// The layer applied to `x` in f32.
    fn norm<const D: usize>(&self, x: Tensor<D>) -> Tensor<D>;
}

impl NormF32 for BatchNorm {
    fn norm<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        let dtype = x.dtype();
        self.forward(x.cast(DType::F32)).cast(dtype)
    }
}

impl NormF32 for LayerNorm {
    fn norm<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        let dtype = x.dtype();
        self.forward(x.cast(DType::F32)).cast(dtype)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::net::{ModelConfig, MODELS};
    use burn::module::Module;
    use burn::tensor::Distribution;

    /// The input and class count the catalogue test uses for each kind of model.
    fn probe_input(config: &ModelConfig) -> ([usize; 3], usize) {
        if config.reads_tokens() {
            ([1, 1, 16], 10)
        } else if config.reads_pairs() {
            ([1, 2, 16], 10)
        } else if config.reads_series() {
            ([1, 29, 13], 10)
        } else {
            ([3, 32, 32], 10)
        }
    }

    fn probe_batch(
        config: &ModelConfig,
        input: [usize; 3],
        n: usize,
        device: &Device,
    ) -> Tensor<4> {
        let [c, h, w] = input;
        if config.reads_tokens() || config.reads_pairs() {
            // token ids 1..9 (0 is padding for a bi-encoder)
            Tensor::<4>::random([n, c, h, w], Distribution::Uniform(1.0, 9.99), device).floor()
        } else if config.reads_series() {
            // frames plus an all-ones mask column
            let frames =
                Tensor::<4>::random([n, c, h, w - 1], Distribution::Uniform(-1.0, 1.0), device);
            Tensor::cat(vec![frames, Tensor::ones([n, c, h, 1], device)], 3)
        } else {
            Tensor::<4>::random([n, c, h, w], Distribution::Uniform(-1.0, 1.0), device)
        }
    }

    #[test]
    fn shallow_models_in_bf16_and_f16_stay_close_to_f32() {
        // training mode, as the step runs them; the embedding tap, before any dropout. Only
        // shallow models: at random initialisation the rounding grows with depth (a ResNet-110
        // or MobileNetV2 differs by a sizeable fraction), which trained weights do not show
        // (the quickstart recipe's accuracy is the check there, see the README).
        let device = Device::flex().autodiff();
        for name in [
            "mlp", "lenet", "cnn", "gpt", "gru", "conv1d", "resnet8", "wrn_16_1", "vgg8", "bert",
        ] {
            let config = ModelConfig::named(name).unwrap();
            let (input, classes) = probe_input(&config);
            let net = config.build(input, classes, &device).unwrap();
            let x = probe_batch(&config, input, 8, &device);
            let embedding = |t: Taps| t.get("embedding").expect("every model has one").flat();
            let reference = embedding(net.forward_at(x.clone(), DType::F32));
            let scale = reference.clone().abs().max().into_scalar::<f32>();
            // bf16 keeps 8 bits of mantissa, f16 11
            for (dtype, within) in [(DType::BF16, 0.03), (DType::F16, 0.005)] {
                let out = embedding(net.forward_at(x.clone(), dtype));
                let gap = (out - reference.clone()).abs().max().into_scalar::<f32>();
                assert!(
                    gap <= within * scale,
                    "{name} {dtype:?}: embeddings differ by {gap} (scale {scale})"
                );
            }
        }
    }

    #[test]
    fn every_catalogue_model_trains_in_bf16_and_f16_over_f32_masters() {
        let device = Device::flex().autodiff();
        for info in MODELS {
            let config = ModelConfig::named(info.name).unwrap();
            let (input, classes) = probe_input(&config);
            let net = config.build(input, classes, &device).unwrap();
            let x = probe_batch(&config, input, 4, &device);
            for dtype in [DType::BF16, DType::F16] {
                let half = net.in_dtype(dtype);
                assert_eq!(half.num_params(), net.num_params(), "{}", info.name);
                let out = net.forward_at(x.clone(), dtype);
                // every tap leaves the model in f32
                for (name, f) in &out.features {
                    assert_eq!(f.flat().dtype(), DType::F32, "{} {name}", info.name);
                }
                assert_eq!(out.logits.dtype(), DType::F32, "{}", info.name);
                // the gradient arrives on the f32 masters of the original model, finite
                let grads = out.logits.powf_scalar(2.0).mean().backward();
                struct Grads<'a> {
                    grads: &'a burn::tensor::Gradients,
                    found: usize,
                    finite: bool,
                }
                impl ModuleVisitor for Grads<'_> {
                    fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
                        if let Some(g) = p.val().grad(self.grads) {
                            assert_eq!(g.dtype(), DType::F32);
                            self.found += 1;
                            self.finite &= g.is_finite().all().into_scalar::<bool>();
                        }
                    }
                }
                let mut seen = Grads {
                    grads: &grads,
                    found: 0,
                    finite: true,
                };
                net.visit(&mut seen);
                assert!(seen.found > 0, "{} {dtype:?}: no gradient", info.name);
                assert!(
                    seen.finite,
                    "{} {dtype:?}: a gradient is not finite",
                    info.name
                );
            }
        }
    }

    #[test]
    fn only_weights_outside_norm_layers_are_cast() {
        let device = Device::flex().autodiff();
        let net = ModelConfig::named("resnet8")
            .unwrap()
            .build([3, 32, 32], 10, &device)
            .unwrap();
        let half = net.in_dtype(DType::BF16);
        // the visitor sees each stored (f32) parameter, then the cast attached to it, if any
        #[derive(Default)]
        struct Count {
            params: usize,
            f32_bases: usize,
            cast: usize,
        }
        impl ModuleVisitor for Count {
            fn enter_module(&mut self, _name: &str, container: &str) {
                self.cast += usize::from(container == "Reparameterization");
            }
            fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
                self.params += 1;
                self.f32_bases += usize::from(p.val().dtype() == DType::F32);
            }
        }
        let mut seen = Count::default();
        half.visit(&mut seen);
        // masters all f32; the convolutions and the head read in bf16, the batch norms in f32
        assert_eq!(seen.f32_bases, seen.params);
        let (cast, kept) = (seen.cast, seen.params - seen.cast);
        assert!(cast > 0 && kept > 0, "cast {cast}, kept {kept}");
        let mut norms = F32Params::default();
        net.visit(&mut norms);
        assert_eq!(kept, norms.found.len());
        // the copy shares its masters: same ids, and f32 is the model itself
        assert_eq!(
            half.valid().into_record().len(),
            net.valid().into_record().len()
        );
    }
}
