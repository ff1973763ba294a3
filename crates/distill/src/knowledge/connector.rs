//! The shared trainable helper modules that methods attach to the student ("connectors",
//! "regressors", projection heads): the convolutional and linear connectors. Together with the
//! state each method declares on its registry line (see [`super::method`]), they make up
//! [`Aux`], which lives in the trainer's trainable bundle and is optimised with it.

use crate::models::conv::ConvForward;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, LinearConfig, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::activation::relu;

use super::Aux;
use crate::error::{DistillError, Result};
use crate::models::Feature;

impl Aux {
    /// Maps a student feature into the teacher's space.
    pub fn forward(&self, f: Feature) -> Feature {
        match (self, f) {
            (Aux::Conv(c), Feature::Map(x)) => Feature::Map(c.forward(x)),
            (Aux::Linear(l), f) => Feature::Flat(l.forward(f.flat())),
            (Aux::Conv(_), f) => panic!("conv connector applied to a flat feature {:?}", f.shape()),
            (other, _) => panic!("{} is applied by its method itself", other.kind()),
        }
    }

    /// A connector from a student tap of shape `s` to a teacher tap of shape `t`
    /// (shapes include the batch dimension), as RepDistiller's `ConvReg`:
    /// equal size → 3×3 conv (pad 1); `s = 2t` → 3×3 conv stride 2; larger → valid conv of
    /// size `1 + s − t`; each followed by batch norm and ReLU. Flat taps get a linear projection.
    pub fn connector(s: &[usize], t: &[usize], device: &Device) -> Result<Aux> {
        Self::conv_reg(s, t, true, device)
    }

    /// [`Self::connector`] with or without the final ReLU (RepDistiller's `ConvReg(use_relu)`).
    pub fn conv_reg(s: &[usize], t: &[usize], relu: bool, device: &Device) -> Result<Aux> {
        match (s, t) {
            ([_, cs, hs, ws], [_, ct, ht, wt]) => {
                let (k, stride, pad) = if hs == ht && ws == wt {
                    (3, 1, 1)
                } else if *hs == 2 * ht && *ws == 2 * wt {
                    (3, 2, 1)
                } else if hs > ht && ws > wt && hs - ht == ws - wt {
                    (1 + hs - ht, 1, 0)
                } else {
                    return Err(DistillError::Shape {
                        context: "connector: student feature map vs teacher feature map".into(),
                        expected: t.to_vec(),
                        got: s.to_vec(),
                        fix: "; a connector can shrink the student's map but not enlarge it: pick a teacher tap of equal or smaller spatial size".into(),
                    });
                };
                Ok(Aux::Conv(ConvConnector {
                    conv: Conv2dConfig::new([*cs, *ct], [k, k])
                        .with_stride([stride, stride])
                        .with_padding(PaddingConfig2d::Explicit(pad, pad, pad, pad))
                        .init(device),
                    bn: BatchNormConfig::new(*ct).init(device),
                    relu,
                }))
            }
            ([_, ds], [_, dt]) => Ok(Aux::Linear(LinearConfig::new(*ds, *dt).init(device))),
            _ => Err(DistillError::Shape {
                context:
                    "connector: student and teacher taps must both be feature maps or both flat"
                        .into(),
                expected: t.to_vec(),
                got: s.to_vec(),
                fix: "; choose taps of the same kind (stage/conv taps, or embedding/fc taps)"
                    .into(),
            }),
        }
    }
}

/// Conv → batch norm (→ ReLU) regressor.
#[derive(Module, Debug)]
pub struct ConvConnector {
    conv: Conv2d,
    bn: BatchNorm,
    relu: bool,
}

impl ConvConnector {
    /// A 1×1 convolution without bias followed by batch norm, no ReLU, the convolution drawn
    /// from `N(0, 2 / (k·k·c_out))` (OFD's `build_feature_connector`; batch norm starts at 1, 0).
    pub fn conv1x1_bn(cin: usize, cout: usize, device: &Device) -> Self {
        Self {
            conv: Conv2dConfig::new([cin, cout], [1, 1])
                .with_bias(false)
                .with_initializer(burn::nn::Initializer::Normal {
                    mean: 0.0,
                    std: (2.0 / cout as f64).sqrt(),
                })
                .init(device),
            bn: BatchNormConfig::new(cout).init(device),
            relu: false,
        }
    }

    /// Forward pass.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let y = self.bn.forward(self.conv.run(x));
        if self.relu {
            relu(y)
        } else {
            y
        }
    }
}
