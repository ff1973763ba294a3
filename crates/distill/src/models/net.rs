//! The model zoo: one enum over every architecture, built from a [`ModelConfig`].

use burn::prelude::*;
use serde::{Deserialize, Serialize};

use super::cnn::Cnn;
use super::lenet::LeNet;
use super::mlp::Mlp;
use super::resnet::ResNet;
use super::taps::{TapShapes, Taps};
use crate::error::{DistillError, Result};

/// Any zoo model. Every variant returns [`Taps`].
// Few instances live at a time, so the size difference between variants costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum Net {
    /// Multi-layer perceptron.
    Mlp(Mlp),
    /// LeNet-style CNN.
    LeNet(LeNet),
    /// CIFAR-style ResNet.
    ResNet(ResNet),
    /// Plain VGG-style CNN.
    Cnn(Cnn),
}

impl Net {
    /// Forward pass: logits plus named taps.
    pub fn forward(&self, x: Tensor<4>) -> Taps {
        match self {
            Net::Mlp(m) => m.forward(x),
            Net::LeNet(m) => m.forward(x),
            Net::ResNet(m) => m.forward(x),
            Net::Cnn(m) => m.forward(x),
        }
    }

    /// Scale and shift of the batch norm directly before the ReLU that follows tap `tap`, where
    /// the architecture has one (OFD's margins).
    pub fn bn_before(&self, tap: &str) -> Option<(Vec<f32>, Vec<f32>)> {
        match self {
            Net::ResNet(m) => m.bn_before(tap),
            Net::Mlp(_) | Net::LeNet(_) | Net::Cnn(_) => None,
        }
    }

    /// Shapes of every tap for `[channels, height, width]` inputs, from a probe forward pass of two
    /// zero images in inference mode (batch dimension 2 reported as given).
    pub fn tap_shapes(&self, input: [usize; 3], device: &Device) -> TapShapes {
        let [c, h, w] = input;
        let probe = self.valid();
        let x = Tensor::<4>::zeros([2, c, h, w], &device.clone().without_autodiff());
        TapShapes(probe.forward(x).shapes())
    }
}

/// Number of trainable parameters (what PyTorch's `parameters()` counts): Burn's
/// `num_params` also counts batch-norm running statistics, which are buffers, not parameters.
pub fn trainable_params<M: Module>(module: &M) -> usize {
    struct Count {
        path: Vec<String>,
        total: usize,
    }
    impl burn::module::ModuleVisitor for Count {
        fn enter_module(&mut self, name: &str, _container: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _name: &str, _container: &str) {
            self.path.pop();
        }
        fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<D>>) {
            let buffer = self
                .path
                .last()
                .is_some_and(|n| n == "running_mean" || n == "running_var");
            if !buffer {
                self.total += param.shape().num_elements();
            }
        }
    }
    let mut c = Count {
        path: Vec::new(),
        total: 0,
    };
    module.visit(&mut c);
    c.total
}

/// One row of the model catalogue (`distill models`).
#[derive(Debug, Clone, Copy)]
pub struct ModelInfo {
    /// Name used in configs.
    pub name: &'static str,
    /// One-line description.
    pub description: &'static str,
    /// Where the architecture comes from.
    pub citation: &'static str,
    /// Settings that apply to it.
    pub settings: &'static str,
}

const RESNET_CITE: &str =
    "He et al., CVPR 2016; CIFAR variants as in RepDistiller (Tian et al., ICLR 2020)";

/// Every model distill can build.
pub const MODELS: &[ModelInfo] = &[
    ModelInfo {
        name: "mlp",
        description: "fully connected net, ReLU + dropout; taps fc{i}_pre, fc{i}, embedding",
        citation: "Rumelhart et al., Nature 1986",
        settings: "hidden = [widths], dropout",
    },
    ModelInfo {
        name: "lenet",
        description:
            "LeNet-style CNN (2 conv + 3 fc), widths × width; taps conv{1,2}[_pre], fc1, embedding",
        citation: "LeCun et al., Proc. IEEE 1998",
        settings: "width",
    },
    ModelInfo {
        name: "cnn",
        description: "plain VGG-style CNN: 3×3 conv + ReLU per width, max-pool 2 where the width changes and at the end, global average pool; taps conv{i}, embedding",
        citation: "Simonyan & Zisserman, ICLR 2015 (VGG-style)",
        settings: "hidden = [conv widths] (default [32, 64, 128])",
    },
    ModelInfo {
        name: "resnet8",
        description: "CIFAR ResNet, 1 block/stage, filters 16-16-32-64 (78k params at 10 classes)",
        citation: RESNET_CITE,
        settings: "",
    },
    ModelInfo {
        name: "resnet14",
        description: "CIFAR ResNet, 2 blocks/stage, filters 16-16-32-64",
        citation: RESNET_CITE,
        settings: "",
    },
    ModelInfo {
        name: "resnet20",
        description: "CIFAR ResNet, 3 blocks/stage, filters 16-16-32-64",
        citation: RESNET_CITE,
        settings: "",
    },
    ModelInfo {
        name: "resnet32",
        description: "CIFAR ResNet, 5 blocks/stage, filters 16-16-32-64",
        citation: RESNET_CITE,
        settings: "",
    },
    ModelInfo {
        name: "resnet44",
        description: "CIFAR ResNet, 7 blocks/stage, filters 16-16-32-64",
        citation: RESNET_CITE,
        settings: "",
    },
    ModelInfo {
        name: "resnet56",
        description: "CIFAR ResNet, 9 blocks/stage, filters 16-16-32-64",
        citation: RESNET_CITE,
        settings: "",
    },
    ModelInfo {
        name: "resnet110",
        description: "CIFAR ResNet, 18 blocks/stage, filters 16-16-32-64",
        citation: RESNET_CITE,
        settings: "",
    },
    ModelInfo {
        name: "resnet8x4",
        description: "CIFAR ResNet ×4 width, 1 block/stage, filters 32-64-128-256",
        citation: RESNET_CITE,
        settings: "",
    },
    ModelInfo {
        name: "resnet32x4",
        description: "CIFAR ResNet ×4 width, 5 blocks/stage, filters 32-64-128-256",
        citation: RESNET_CITE,
        settings: "",
    },
];

/// A model as written in an experiment file (`[teacher]`, `[[student]]`, ...), and as saved next
/// to every checkpoint so that `distill eval` can rebuild it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// Architecture name (see `distill models`).
    pub model: String,
    /// MLP hidden widths (default `[256]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hidden: Option<Vec<usize>>,
    /// MLP dropout probability (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dropout: Option<f64>,
    /// LeNet width multiplier (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<usize>,
}

/// A trainable role of a job: its name (how terms address it) and its architecture.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoleModel {
    /// Role name.
    pub name: String,
    /// Architecture.
    pub model: ModelConfig,
}

impl ModelConfig {
    /// A config naming just an architecture.
    pub fn named(model: &str) -> Self {
        Self {
            model: model.into(),
            hidden: None,
            dropout: None,
            width: None,
        }
    }

    /// Checks the name and that only settings that apply to the architecture are given.
    pub fn validate(&self, role: &str) -> Result<()> {
        let names: Vec<&str> = MODELS.iter().map(|m| m.name).collect();
        if !names.contains(&self.model.as_str()) {
            return Err(DistillError::unknown(
                format!("{role} model"),
                &self.model,
                &names,
            ));
        }
        let misplaced = |field: &str| {
            Err(DistillError::Config(format!(
                "{role}: '{field}' does not apply to model '{}' (it has: {})",
                self.model,
                MODELS
                    .iter()
                    .find(|m| m.name == self.model)
                    .map(|m| m.settings)
                    .filter(|s| !s.is_empty())
                    .unwrap_or("no settings")
            )))
        };
        let has_hidden = self.model == "mlp" || self.model == "cnn";
        if !has_hidden && self.hidden.is_some() {
            return misplaced("hidden");
        }
        if self.model != "mlp" && self.dropout.is_some() {
            return misplaced("dropout");
        }
        if self.model != "lenet" && self.width.is_some() {
            return misplaced("width");
        }
        if let Some(h) = &self.hidden {
            if h.contains(&0) {
                return Err(DistillError::Config(format!(
                    "{role}: hidden widths must be positive, got {h:?}"
                )));
            }
        }
        if let Some(p) = self.dropout {
            if !(0.0..1.0).contains(&p) {
                return Err(DistillError::Config(format!(
                    "{role}: dropout must be in [0, 1), got {p}"
                )));
            }
        }
        if self.width == Some(0) {
            return Err(DistillError::Config(format!(
                "{role}: width must be at least 1"
            )));
        }
        Ok(())
    }

    /// Hidden widths with the architecture's default filled in (`None`: not an MLP or CNN).
    fn effective_hidden(&self) -> Option<Vec<usize>> {
        match self.model.as_str() {
            "mlp" => Some(self.hidden.clone().unwrap_or_else(|| vec![256])),
            "cnn" => Some(self.hidden.clone().unwrap_or_else(|| vec![32, 64, 128])),
            _ => None,
        }
    }

    /// The LeNet width multiplier with its default (1) filled in.
    fn effective_width(&self) -> usize {
        self.width.unwrap_or(1)
    }

    /// Where `other` describes a different architecture than `self` (defaults filled in), one
    /// `field: self vs other` entry per setting. Dropout is not compared: it changes training,
    /// not the weights' shapes or meaning.
    pub fn architecture_differences(&self, other: &ModelConfig) -> Vec<String> {
        let mut out = Vec::new();
        if self.model != other.model {
            out.push(format!("model: \"{}\" vs \"{}\"", self.model, other.model));
            return out;
        }
        if self.effective_hidden() != other.effective_hidden() {
            out.push(format!(
                "hidden: {:?} vs {:?}",
                self.effective_hidden().unwrap_or_default(),
                other.effective_hidden().unwrap_or_default()
            ));
        }
        if self.model == "lenet" && self.effective_width() != other.effective_width() {
            out.push(format!(
                "width: {} vs {}",
                self.effective_width(),
                other.effective_width()
            ));
        }
        out
    }

    /// Builds the model for `[channels, height, width]` inputs and `classes` outputs.
    pub fn build(&self, input: [usize; 3], classes: usize, device: &Device) -> Result<Net> {
        self.validate("model")?;
        let [c, h, w] = input;
        Ok(match self.model.as_str() {
            "mlp" => Net::Mlp(Mlp::new(
                c * h * w,
                &self.effective_hidden().expect("an mlp has hidden widths"),
                classes,
                self.dropout.unwrap_or(0.0),
                device,
            )),
            "cnn" => Net::Cnn(Cnn::new(
                c,
                &self.effective_hidden().expect("a cnn has hidden widths"),
                classes,
                device,
            )),
            "lenet" => {
                if h < 12 || w < 12 {
                    return Err(DistillError::Config(format!(
                        "lenet needs images of at least 12×12, got {h}×{w}"
                    )));
                }
                Net::LeNet(LeNet::new(input, classes, self.effective_width(), device))
            }
            name => {
                let (depth, wide) = match name.strip_prefix("resnet") {
                    Some(rest) => match rest.strip_suffix("x4") {
                        Some(d) => (d, true),
                        None => (rest, false),
                    },
                    None => unreachable!("validated above"),
                };
                let depth: usize = depth.parse().expect("catalogue names are valid");
                let filters = if wide {
                    [32, 64, 128, 256]
                } else {
                    [16, 16, 32, 64]
                };
                Net::ResNet(ResNet::new(c, depth, filters, classes, device))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_catalogue_model_builds_and_reports_taps() {
        let device = Device::flex();
        for info in MODELS {
            let net = ModelConfig::named(info.name)
                .build([1, 28, 28], 10, &device)
                .unwrap();
            let shapes = net.tap_shapes([1, 28, 28], &device);
            assert_eq!(shapes.get("logits"), Some(&[2, 10][..]), "{}", info.name);
            assert!(shapes.get("embedding").is_some(), "{}", info.name);
        }
    }

    #[test]
    fn resnet_taps_and_sizes_match_the_reference_layout() {
        let device = Device::flex();
        let net = ModelConfig::named("resnet8x4")
            .build([3, 32, 32], 100, &device)
            .unwrap();
        let s = net.tap_shapes([3, 32, 32], &device);
        assert_eq!(s.get("stem"), Some(&[2, 32, 32, 32][..]));
        assert_eq!(s.get("stage1"), Some(&[2, 64, 32, 32][..]));
        assert_eq!(s.get("stage2_pre"), Some(&[2, 128, 16, 16][..]));
        assert_eq!(s.get("stage3"), Some(&[2, 256, 8, 8][..]));
        assert_eq!(s.get("embedding"), Some(&[2, 256][..]));
        // Parameter counts of the PyTorch models in bench/pytorch_reference.py (RepDistiller's).
        assert_eq!(trainable_params(&net), 1_233_540);
        let r20 = ModelConfig::named("resnet20")
            .build([3, 32, 32], 100, &device)
            .unwrap();
        assert_eq!(trainable_params(&r20), 278_324);
        let mlp = ModelConfig {
            hidden: Some(vec![32]),
            ..ModelConfig::named("mlp")
        }
        .build([1, 28, 28], 10, &device)
        .unwrap();
        assert_eq!(trainable_params(&mlp), 25_450);
        // bench/pytorch_reference.py's cnn(): 1 147 978 and 94 538 parameters.
        let cnn = |w: Vec<usize>| {
            ModelConfig {
                hidden: Some(w),
                ..ModelConfig::named("cnn")
            }
            .build([3, 32, 32], 10, &device)
            .unwrap()
        };
        let teacher = cnn(vec![64, 64, 128, 128, 256, 256]);
        assert_eq!(trainable_params(&teacher), 1_147_978);
        assert_eq!(trainable_params(&cnn(vec![32, 64, 128])), 94_538);
        let shapes = teacher.tap_shapes([3, 32, 32], &device);
        assert_eq!(shapes.get("conv2"), Some(&[2, 64, 16, 16][..]));
        assert_eq!(shapes.get("conv6"), Some(&[2, 256, 4, 4][..]));
    }

    #[test]
    fn architecture_differences_fill_in_defaults_and_name_the_field() {
        let with = |model: &str, hidden: Option<Vec<usize>>, width: Option<usize>| ModelConfig {
            hidden,
            width,
            ..ModelConfig::named(model)
        };
        let mlp = ModelConfig::named("mlp");
        assert!(mlp
            .architecture_differences(&with("mlp", Some(vec![256]), None))
            .is_empty());
        assert_eq!(
            mlp.architecture_differences(&with("mlp", Some(vec![64]), None)),
            ["hidden: [256] vs [64]"]
        );
        assert_eq!(
            with("lenet", None, Some(2)).architecture_differences(&ModelConfig::named("lenet")),
            ["width: 2 vs 1"]
        );
        assert_eq!(
            ModelConfig::named("lenet").architecture_differences(&mlp),
            ["model: \"lenet\" vs \"mlp\""]
        );
        // dropout does not change the weights a checkpoint holds
        let dropped = ModelConfig {
            dropout: Some(0.5),
            ..ModelConfig::named("mlp")
        };
        assert!(mlp.architecture_differences(&dropped).is_empty());
    }

    #[test]
    fn bad_model_configs_are_rejected() {
        let err = ModelConfig::named("resnet2O")
            .validate("student")
            .unwrap_err()
            .to_string();
        assert!(err.contains("did you mean 'resnet20'"), "{err}");
        let mut m = ModelConfig::named("resnet20");
        m.hidden = Some(vec![3]);
        assert!(m
            .validate("teacher")
            .unwrap_err()
            .to_string()
            .contains("'hidden' does not apply"));
    }
}
