//! The model zoo: one enum over every architecture, built from a [`ModelConfig`].

use burn::prelude::*;
use serde::{Deserialize, Serialize};

use super::bert::{Bert, BertDims};
use super::cnn::Cnn;
use super::conv1d::Conv1dNet;
use super::gpt::{Gpt, GptDims};
use super::gru::GruNet;
use super::lenet::LeNet;
use super::mlp::Mlp;
use super::mobilenet::MobileNetV2;
use super::resnet::ResNet;
use super::shufflenet::ShuffleNetV2;
use super::taps::{TapShapes, Taps};
use super::vgg::Vgg;
use super::wrn::WideResNet;
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
    /// Decoder-only transformer language model.
    Gpt(Gpt),
    /// Recurrent classifier of series of frames.
    Gru(GruNet),
    /// 1-D convolutional classifier of series of frames.
    Conv1d(Conv1dNet),
    /// torchvision's MobileNetV2.
    MobileNetV2(MobileNetV2),
    /// BERT sentence encoder (a bi-encoder of query-passage pairs).
    Bert(Bert),
    /// CIFAR wide ResNet (RepDistiller's).
    WideResNet(WideResNet),
    /// CIFAR VGG with batch norm (RepDistiller's).
    Vgg(Vgg),
    /// CIFAR ShuffleNet V2 (RepDistiller's).
    ShuffleNetV2(ShuffleNetV2),
}

impl Net {
    /// Forward pass: logits plus named taps.
    pub fn forward(&self, x: Tensor<4>) -> Taps {
        match self {
            Net::Mlp(m) => m.forward(x),
            Net::LeNet(m) => m.forward(x),
            Net::ResNet(m) => m.forward(x),
            Net::Cnn(m) => m.forward(x),
            Net::Gpt(m) => m.forward(x),
            Net::Gru(m) => m.forward(x),
            Net::Conv1d(m) => m.forward(x),
            Net::MobileNetV2(m) => m.forward(x),
            Net::Bert(m) => m.forward(x),
            Net::WideResNet(m) => m.forward(x),
            Net::Vgg(m) => m.forward(x),
            Net::ShuffleNetV2(m) => m.forward(x),
        }
    }

    /// Scale and shift of the batch norm directly before the ReLU that follows tap `tap`, where
    /// the architecture has one (OFD's margins).
    pub fn bn_before(&self, tap: &str) -> Option<(Vec<f32>, Vec<f32>)> {
        match self {
            Net::ResNet(m) => m.bn_before(tap),
            Net::Mlp(_)
            | Net::LeNet(_)
            | Net::Cnn(_)
            | Net::Gpt(_)
            | Net::Gru(_)
            | Net::Conv1d(_)
            | Net::MobileNetV2(_)
            | Net::Bert(_)
            | Net::WideResNet(_)
            | Net::Vgg(_)
            | Net::ShuffleNetV2(_) => None,
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
        name: "gpt",
        description: "decoder-only transformer language model (pre-norm GPT-2 blocks, learned positions, 4× GELU MLP), KV-cached decoding; taps block{i}, attn{i}, hidden, embedding; logits per position",
        citation: "Vaswani et al., NeurIPS 2017; Radford et al., GPT-2, 2019",
        settings: "dim (default 128), layers (default 4), heads (default 4), dropout",
    },
    ModelInfo {
        name: "gru",
        description: "stacked GRUs over series of frames (padding masked), mean over the real frames; taps gru{i} (sequences), embedding",
        citation: "Cho et al., EMNLP 2014",
        settings: "hidden = [GRU widths] (default [64])",
    },
    ModelInfo {
        name: "conv1d",
        description: "1-D CNN over series of frames: kernel-3 convolutions + ReLU (padding masked), mean over the real frames; taps conv{i} (sequences), embedding",
        citation: "Wang, Yan & Oates, Time Series Classification from Scratch with Deep Neural Networks, IJCNN 2017 (FCN-style)",
        settings: "hidden = [conv widths] (default [32, 32])",
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
    ModelInfo {
        name: "mobilenetv2",
        description: "torchvision's MobileNetV2 (17 inverted residuals, ReLU6, 1280-channel last conv; 3.5M params at 1000 classes), imports torchvision's ImageNet weights; taps stem, stage{1..7}, head, embedding",
        citation: MOBILENET_CITE,
        settings: "",
    },
    ModelInfo {
        name: "mobilenetv2_x0_25",
        description: "MobileNetV2 at width 0.25 (torchvision's width_mult; widths rounded to multiples of 8, last conv 1280)",
        citation: MOBILENET_CITE,
        settings: "",
    },
    ModelInfo {
        name: "wrn_16_1",
        description: "CIFAR wide ResNet, depth 16, widening factor 1 (filters 16-16-32-64), pre-activation blocks; taps stem, stage{1,2,3}, head, embedding",
        citation: WRN_CITE,
        settings: "",
    },
    ModelInfo {
        name: "wrn_16_2",
        description: "CIFAR wide ResNet, depth 16, widening factor 2 (filters 16-32-64-128), pre-activation blocks; taps stem, stage{1,2,3}, head, embedding",
        citation: WRN_CITE,
        settings: "",
    },
    ModelInfo {
        name: "wrn_40_1",
        description: "CIFAR wide ResNet, depth 40, widening factor 1 (filters 16-16-32-64), pre-activation blocks; taps stem, stage{1,2,3}, head, embedding",
        citation: WRN_CITE,
        settings: "",
    },
    ModelInfo {
        name: "wrn_40_2",
        description: "CIFAR wide ResNet, depth 40, widening factor 2 (filters 16-32-64-128), pre-activation blocks; taps stem, stage{1,2,3}, head, embedding",
        citation: WRN_CITE,
        settings: "",
    },
    ModelInfo {
        name: "vgg8",
        description: "CIFAR VGG-8 with batch norm (1 conv per block, widths 64-128-256-512-512, global average pool); taps block{1..5}, embedding",
        citation: VGG_CITE,
        settings: "",
    },
    ModelInfo {
        name: "vgg11",
        description: "CIFAR VGG-11 with batch norm (1-1-2-2-2 convs per block, widths 64-128-256-512-512, global average pool); taps block{1..5}, embedding",
        citation: VGG_CITE,
        settings: "",
    },
    ModelInfo {
        name: "vgg13",
        description: "CIFAR VGG-13 with batch norm (2 convs per block, widths 64-128-256-512-512, global average pool); taps block{1..5}, embedding",
        citation: VGG_CITE,
        settings: "",
    },
    ModelInfo {
        name: "vgg16",
        description: "CIFAR VGG-16 with batch norm (2-2-3-3-3 convs per block, widths 64-128-256-512-512, global average pool); taps block{1..5}, embedding",
        citation: VGG_CITE,
        settings: "",
    },
    ModelInfo {
        name: "vgg19",
        description: "CIFAR VGG-19 with batch norm (2-2-4-4-4 convs per block, widths 64-128-256-512-512, global average pool); taps block{1..5}, embedding",
        citation: VGG_CITE,
        settings: "",
    },
    ModelInfo {
        name: "mobile_half",
        description: "RepDistiller's CIFAR MobileNetV2 (expansion 6, width 0.5: ReLU, an expansion conv in every block, second stage at stride 1, 1280-channel last conv); taps stem, stage{1..7}, head, embedding",
        citation: "Sandler et al., CVPR 2018; CIFAR variant of Jin et al., Knowledge Distillation via Route Constrained Optimization, ICCV 2019, as in RepDistiller (Tian et al., ICLR 2020)",
        settings: "",
    },
    ModelInfo {
        name: "shufflev2",
        description: "RepDistiller's CIFAR ShuffleNet V2 (ShuffleV2: 1×1 stem, stages of 1 down-sampling + 3/7/3 basic units, widths 116-232-464, 1024-channel last conv); taps stem, stage{1,2,3}[_pre], head, embedding",
        citation: "Ma et al., ShuffleNet V2, ECCV 2018; CIFAR variant as in RepDistiller (Tian et al., ICLR 2020)",
        settings: "",
    },
    ModelInfo {
        name: "bert",
        description: "BERT sentence encoder (post-norm blocks, 4× GELU feed-forward, mean pooling, L2-normalised) as a bi-encoder of (query, passage) pairs, score = 20 · cosine; imports Hugging Face BertModel weights (all-MiniLM-L6-v2 at the defaults); taps layer{i}, hidden (passage, masked), embedding, query",
        citation: BERT_CITE,
        settings: "dim (default 384), layers (default 6), heads (default 12), dropout, vocab (default 30522), positions (default 512)",
    },
];

const BERT_CITE: &str = "Devlin et al., BERT, NAACL 2019; as a sentence encoder, Reimers & Gurevych, Sentence-BERT, EMNLP 2019 (all-MiniLM-L6-v2: Wang et al., MiniLM, NeurIPS 2020)";

const WRN_CITE: &str = "Zagoruyko & Komodakis, Wide Residual Networks, BMVC 2016; CIFAR variants as in RepDistiller (Tian et al., ICLR 2020)";

const VGG_CITE: &str = "Simonyan & Zisserman, ICLR 2015; with batch norm, CIFAR variants as in RepDistiller (Tian et al., ICLR 2020)";

const MOBILENET_CITE: &str =
    "Sandler et al., MobileNetV2: Inverted Residuals and Linear Bottlenecks, CVPR 2018";

/// A model as written in an experiment file: the architecture's name and the settings of any
/// architecture, flat in the `[[teacher]]`, `[[student]]` and `[[student.peer]]` tables. It is
/// checked into the typed [`ModelConfig`] by [`ModelSpec::resolve`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    /// Architecture name (see `distill models`).
    pub model: String,
    /// MLP hidden widths (default `[256]`), or CNN conv widths (default `[32, 64, 128]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hidden: Option<Vec<usize>>,
    /// MLP dropout probability (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dropout: Option<f64>,
    /// LeNet width multiplier (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<usize>,
    /// GPT hidden width (default 128).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dim: Option<usize>,
    /// GPT blocks (default 4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layers: Option<usize>,
    /// GPT attention heads (default 4; `dim` must be a multiple).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heads: Option<usize>,
    /// BERT vocabulary size (default 30522, the uncased WordPiece of BERT and MiniLM).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vocab: Option<usize>,
    /// BERT positions (default 512).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub positions: Option<usize>,
}

/// A model architecture with its settings, one variant per architecture: what every role's plan
/// holds and what `model.json` next to every checkpoint records, so that the model can be
/// rebuilt from it alone. Settings left out take the architecture's defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "model", rename_all = "lowercase", deny_unknown_fields)]
pub enum ModelConfig {
    /// Multi-layer perceptron.
    Mlp {
        /// Hidden widths (default `[256]`; `[]` is a linear model).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        hidden: Option<Vec<usize>>,
        /// Dropout after each hidden layer (default 0).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        dropout: Option<f64>,
    },
    /// LeNet-style CNN.
    Lenet {
        /// Width multiplier (default 1).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        width: Option<usize>,
    },
    /// Plain VGG-style CNN.
    Cnn {
        /// Conv widths (default `[32, 64, 128]`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        hidden: Option<Vec<usize>>,
    },
    /// Decoder-only transformer language model.
    Gpt {
        /// Hidden width (default 128).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        dim: Option<usize>,
        /// Blocks (default 4).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        layers: Option<usize>,
        /// Attention heads (default 4).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        heads: Option<usize>,
        /// Dropout (default 0).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        dropout: Option<f64>,
    },
    /// Stacked GRUs over series of frames.
    Gru {
        /// GRU widths (default `[64]`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        hidden: Option<Vec<usize>>,
    },
    /// 1-D CNN over series of frames.
    Conv1d {
        /// Conv widths (default `[32, 32]`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        hidden: Option<Vec<usize>>,
    },
    /// CIFAR ResNet-8.
    Resnet8 {},
    /// CIFAR ResNet-14.
    Resnet14 {},
    /// CIFAR ResNet-20.
    Resnet20 {},
    /// CIFAR ResNet-32.
    Resnet32 {},
    /// CIFAR ResNet-44.
    Resnet44 {},
    /// CIFAR ResNet-56.
    Resnet56 {},
    /// CIFAR ResNet-110.
    Resnet110 {},
    /// CIFAR ResNet-8, ×4 width.
    Resnet8x4 {},
    /// CIFAR ResNet-32, ×4 width.
    Resnet32x4 {},
    /// torchvision's MobileNetV2.
    Mobilenetv2 {},
    /// MobileNetV2 at width 0.25.
    #[serde(rename = "mobilenetv2_x0_25")]
    Mobilenetv2X025 {},
    /// RepDistiller's CIFAR MobileNetV2 (expansion 6, width 0.5).
    #[serde(rename = "mobile_half")]
    MobileHalf {},
    /// RepDistiller's CIFAR ShuffleNet V2.
    Shufflev2 {},
    /// CIFAR wide ResNet-16-1.
    #[serde(rename = "wrn_16_1")]
    Wrn161 {},
    /// CIFAR wide ResNet-16-2.
    #[serde(rename = "wrn_16_2")]
    Wrn162 {},
    /// CIFAR wide ResNet-40-1.
    #[serde(rename = "wrn_40_1")]
    Wrn401 {},
    /// CIFAR wide ResNet-40-2.
    #[serde(rename = "wrn_40_2")]
    Wrn402 {},
    /// CIFAR VGG-8 with batch norm.
    Vgg8 {},
    /// CIFAR VGG-11 with batch norm.
    Vgg11 {},
    /// CIFAR VGG-13 with batch norm.
    Vgg13 {},
    /// CIFAR VGG-16 with batch norm.
    Vgg16 {},
    /// CIFAR VGG-19 with batch norm.
    Vgg19 {},
    /// BERT sentence encoder.
    Bert {
        /// Hidden width (default 384).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        dim: Option<usize>,
        /// Layers (default 6).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        layers: Option<usize>,
        /// Attention heads (default 12).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        heads: Option<usize>,
        /// Dropout (default 0).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        dropout: Option<f64>,
        /// Vocabulary size (default 30522).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        vocab: Option<usize>,
        /// Positions (default 512).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        positions: Option<usize>,
    },
}

/// A trainable role of a job: its name (how terms address it), its architecture and the view of
/// each sample it reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoleModel {
    /// Role name.
    pub name: String,
    /// Architecture.
    pub model: ModelConfig,
    /// The view it reads (see `[[data.view]]`; default `input`).
    #[serde(
        default = "crate::config::experiment::source_view",
        skip_serializing_if = "crate::config::experiment::is_source_view"
    )]
    pub view: String,
}

impl ModelSpec {
    /// A spec naming just an architecture.
    pub fn named(model: &str) -> Self {
        Self {
            model: model.into(),
            hidden: None,
            dropout: None,
            width: None,
            dim: None,
            layers: None,
            heads: None,
            vocab: None,
            positions: None,
        }
    }

    /// Checks the name, that only settings that apply to the architecture are given, and their
    /// values; returns the typed config. `role` names the table in messages.
    pub fn resolve(&self, role: &str) -> Result<ModelConfig> {
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
        let has_hidden = matches!(self.model.as_str(), "mlp" | "cnn" | "gru" | "conv1d");
        if !has_hidden && self.hidden.is_some() {
            return misplaced("hidden");
        }
        let transformer = self.model == "gpt" || self.model == "bert";
        if !matches!(self.model.as_str(), "mlp" | "gpt" | "bert") && self.dropout.is_some() {
            return misplaced("dropout");
        }
        if self.model != "lenet" && self.width.is_some() {
            return misplaced("width");
        }
        if self.model != "bert" {
            for (field, value) in [("vocab", self.vocab), ("positions", self.positions)] {
                if value.is_some() {
                    return misplaced(field);
                }
            }
        }
        if !transformer {
            for (field, value) in [
                ("dim", self.dim),
                ("layers", self.layers),
                ("heads", self.heads),
            ] {
                if value.is_some() {
                    return misplaced(field);
                }
            }
        }
        for (field, value) in [
            ("dim", self.dim),
            ("layers", self.layers),
            ("heads", self.heads),
            ("vocab", self.vocab),
            ("positions", self.positions),
        ] {
            if value == Some(0) {
                return Err(DistillError::Config(format!(
                    "{role}: {field} must be at least 1"
                )));
            }
        }
        let (dim, heads) = if self.model == "bert" {
            (self.dim.unwrap_or(384), self.heads.unwrap_or(12))
        } else {
            (self.dim.unwrap_or(128), self.heads.unwrap_or(4))
        };
        if transformer && dim % heads != 0 {
            return Err(DistillError::Config(format!(
                "{role}: dim = {dim} must be a multiple of heads = {heads} (each head reads dim / heads features)"
            )));
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
        Ok(match self.model.as_str() {
            "mlp" => ModelConfig::Mlp {
                hidden: self.hidden.clone(),
                dropout: self.dropout,
            },
            "lenet" => ModelConfig::Lenet { width: self.width },
            "cnn" => ModelConfig::Cnn {
                hidden: self.hidden.clone(),
            },
            "gpt" => ModelConfig::Gpt {
                dim: self.dim,
                layers: self.layers,
                heads: self.heads,
                dropout: self.dropout,
            },
            "gru" => ModelConfig::Gru {
                hidden: self.hidden.clone(),
            },
            "conv1d" => ModelConfig::Conv1d {
                hidden: self.hidden.clone(),
            },
            "resnet8" => ModelConfig::Resnet8 {},
            "resnet14" => ModelConfig::Resnet14 {},
            "resnet20" => ModelConfig::Resnet20 {},
            "resnet32" => ModelConfig::Resnet32 {},
            "resnet44" => ModelConfig::Resnet44 {},
            "resnet56" => ModelConfig::Resnet56 {},
            "resnet110" => ModelConfig::Resnet110 {},
            "resnet8x4" => ModelConfig::Resnet8x4 {},
            "resnet32x4" => ModelConfig::Resnet32x4 {},
            "mobilenetv2" => ModelConfig::Mobilenetv2 {},
            "mobilenetv2_x0_25" => ModelConfig::Mobilenetv2X025 {},
            "mobile_half" => ModelConfig::MobileHalf {},
            "shufflev2" => ModelConfig::Shufflev2 {},
            "wrn_16_1" => ModelConfig::Wrn161 {},
            "wrn_16_2" => ModelConfig::Wrn162 {},
            "wrn_40_1" => ModelConfig::Wrn401 {},
            "wrn_40_2" => ModelConfig::Wrn402 {},
            "vgg8" => ModelConfig::Vgg8 {},
            "vgg11" => ModelConfig::Vgg11 {},
            "vgg13" => ModelConfig::Vgg13 {},
            "vgg16" => ModelConfig::Vgg16 {},
            "vgg19" => ModelConfig::Vgg19 {},
            "bert" => ModelConfig::Bert {
                dim: self.dim,
                layers: self.layers,
                heads: self.heads,
                dropout: self.dropout,
                vocab: self.vocab,
                positions: self.positions,
            },
            other => unreachable!("'{other}' is in the catalogue but has no variant"),
        })
    }
}

impl From<&ModelConfig> for ModelSpec {
    /// The flat table that resolves to `m` (what `resolved.toml` writes).
    fn from(m: &ModelConfig) -> Self {
        let mut spec = ModelSpec::named(m.name());
        match m {
            ModelConfig::Mlp { hidden, dropout } => {
                spec.hidden = hidden.clone();
                spec.dropout = *dropout;
            }
            ModelConfig::Lenet { width } => spec.width = *width,
            ModelConfig::Cnn { hidden }
            | ModelConfig::Gru { hidden }
            | ModelConfig::Conv1d { hidden } => spec.hidden = hidden.clone(),
            ModelConfig::Gpt {
                dim,
                layers,
                heads,
                dropout,
            } => {
                spec.dim = *dim;
                spec.layers = *layers;
                spec.heads = *heads;
                spec.dropout = *dropout;
            }
            ModelConfig::Bert {
                dim,
                layers,
                heads,
                dropout,
                vocab,
                positions,
            } => {
                spec.dim = *dim;
                spec.layers = *layers;
                spec.heads = *heads;
                spec.dropout = *dropout;
                spec.vocab = *vocab;
                spec.positions = *positions;
            }
            _ => {}
        }
        spec
    }
}

impl ModelConfig {
    /// The typed config of an architecture with its default settings.
    pub fn named(model: &str) -> Result<Self> {
        ModelSpec::named(model).resolve("model")
    }

    /// The architecture's name (as in `distill models`).
    pub fn name(&self) -> &'static str {
        match self {
            ModelConfig::Mlp { .. } => "mlp",
            ModelConfig::Lenet { .. } => "lenet",
            ModelConfig::Cnn { .. } => "cnn",
            ModelConfig::Gpt { .. } => "gpt",
            ModelConfig::Gru { .. } => "gru",
            ModelConfig::Conv1d { .. } => "conv1d",
            ModelConfig::Resnet8 {} => "resnet8",
            ModelConfig::Resnet14 {} => "resnet14",
            ModelConfig::Resnet20 {} => "resnet20",
            ModelConfig::Resnet32 {} => "resnet32",
            ModelConfig::Resnet44 {} => "resnet44",
            ModelConfig::Resnet56 {} => "resnet56",
            ModelConfig::Resnet110 {} => "resnet110",
            ModelConfig::Resnet8x4 {} => "resnet8x4",
            ModelConfig::Resnet32x4 {} => "resnet32x4",
            ModelConfig::Mobilenetv2 {} => "mobilenetv2",
            ModelConfig::Mobilenetv2X025 {} => "mobilenetv2_x0_25",
            ModelConfig::MobileHalf {} => "mobile_half",
            ModelConfig::Shufflev2 {} => "shufflev2",
            ModelConfig::Wrn161 {} => "wrn_16_1",
            ModelConfig::Wrn162 {} => "wrn_16_2",
            ModelConfig::Wrn401 {} => "wrn_40_1",
            ModelConfig::Wrn402 {} => "wrn_40_2",
            ModelConfig::Vgg8 {} => "vgg8",
            ModelConfig::Vgg11 {} => "vgg11",
            ModelConfig::Vgg13 {} => "vgg13",
            ModelConfig::Vgg16 {} => "vgg16",
            ModelConfig::Vgg19 {} => "vgg19",
            ModelConfig::Bert { .. } => "bert",
        }
    }

    /// Hidden widths with the architecture's default filled in (`None`: not an MLP or CNN).
    fn effective_hidden(&self) -> Option<Vec<usize>> {
        match self {
            ModelConfig::Mlp { hidden, .. } => Some(hidden.clone().unwrap_or_else(|| vec![256])),
            ModelConfig::Cnn { hidden } => {
                Some(hidden.clone().unwrap_or_else(|| vec![32, 64, 128]))
            }
            ModelConfig::Gru { hidden } => Some(hidden.clone().unwrap_or_else(|| vec![64])),
            ModelConfig::Conv1d { hidden } => Some(hidden.clone().unwrap_or_else(|| vec![32, 32])),
            _ => None,
        }
    }

    /// The LeNet width multiplier with its default (1) filled in (`None`: not a LeNet).
    fn effective_width(&self) -> Option<usize> {
        match self {
            ModelConfig::Lenet { width } => Some(width.unwrap_or(1)),
            _ => None,
        }
    }

    /// Where `other` describes a different architecture than `self` (defaults filled in), one
    /// `field: self vs other` entry per setting. Dropout is not compared: it changes training,
    /// not the weights' shapes or meaning.
    pub fn architecture_differences(&self, other: &ModelConfig) -> Vec<String> {
        let mut out = Vec::new();
        if std::mem::discriminant(self) != std::mem::discriminant(other) {
            out.push(format!(
                "model: \"{}\" vs \"{}\"",
                self.name(),
                other.name()
            ));
            return out;
        }
        if self.effective_hidden() != other.effective_hidden() {
            out.push(format!(
                "hidden: {:?} vs {:?}",
                self.effective_hidden().unwrap_or_default(),
                other.effective_hidden().unwrap_or_default()
            ));
        }
        if let (Some(a), Some(b)) = (self.effective_width(), other.effective_width()) {
            if a != b {
                out.push(format!("width: {a} vs {b}"));
            }
        }
        if let (Some(a), Some(b)) = (self.bert_dims(), other.bert_dims()) {
            for (name, x, y) in [
                ("dim", a.dim, b.dim),
                ("layers", a.layers, b.layers),
                ("heads", a.heads, b.heads),
                ("vocab", a.vocab, b.vocab),
                ("positions", a.positions, b.positions),
            ] {
                if x != y {
                    out.push(format!("{name}: {x} vs {y}"));
                }
            }
        }
        if let (Some(a), Some(b)) = (self.gpt_sizes(), other.gpt_sizes()) {
            for (name, x, y) in [("dim", a.0, b.0), ("layers", a.1, b.1), ("heads", a.2, b.2)] {
                if x != y {
                    out.push(format!("{name}: {x} vs {y}"));
                }
            }
        }
        out
    }

    /// A GPT's `(dim, layers, heads)` with the defaults filled in (`None`: not a GPT).
    fn gpt_sizes(&self) -> Option<(usize, usize, usize)> {
        match self {
            ModelConfig::Gpt {
                dim, layers, heads, ..
            } => Some((dim.unwrap_or(128), layers.unwrap_or(4), heads.unwrap_or(4))),
            _ => None,
        }
    }

    /// A BERT's sizes with the defaults filled in (`None`: not a BERT).
    pub fn bert_dims(&self) -> Option<BertDims> {
        match self {
            ModelConfig::Bert {
                dim,
                layers,
                heads,
                vocab,
                positions,
                ..
            } => Some(BertDims {
                vocab: vocab.unwrap_or(30522),
                positions: positions.unwrap_or(512),
                dim: dim.unwrap_or(384),
                layers: layers.unwrap_or(6),
                heads: heads.unwrap_or(12),
            }),
            _ => None,
        }
    }

    /// Whether the architecture reads pairs of token sequences (a bi-encoder; see
    /// [`crate::data::Inputs::Pairs`]).
    pub fn reads_pairs(&self) -> bool {
        matches!(self, ModelConfig::Bert { .. })
    }

    /// Whether the architecture reads token windows (a language model) rather than images or
    /// table rows.
    pub fn reads_tokens(&self) -> bool {
        matches!(self, ModelConfig::Gpt { .. })
    }

    /// Whether the architecture reads series of frames with a mask column (see
    /// [`crate::data::Inputs::Sequence`]).
    pub fn reads_series(&self) -> bool {
        matches!(self, ModelConfig::Gru { .. } | ModelConfig::Conv1d { .. })
    }

    /// A CIFAR ResNet of RepDistiller's family (`resnet8` … `resnet32x4`).
    pub fn is_resnet(&self) -> bool {
        self.name().starts_with("resnet")
    }

    /// Builds the model for `[channels, height, width]` inputs and `classes` outputs.
    pub fn build(&self, input: [usize; 3], classes: usize, device: &Device) -> Result<Net> {
        let [c, h, w] = input;
        let resnet = |depth: usize, wide: bool| {
            let filters = if wide {
                [32, 64, 128, 256]
            } else {
                [16, 16, 32, 64]
            };
            Net::ResNet(ResNet::new(c, depth, filters, classes, device))
        };
        if let Some((dim, layers, heads)) = self.gpt_sizes() {
            if c != 1 || h != 1 || w < 2 {
                return Err(DistillError::Config(format!(
                    "gpt is a language model and reads token windows (data.source = \"text\"), got inputs of {c}×{h}×{w}"
                )));
            }
            let dropout = match self {
                ModelConfig::Gpt { dropout, .. } => dropout.unwrap_or(0.0),
                _ => 0.0,
            };
            return Ok(Net::Gpt(Gpt::new(
                GptDims {
                    vocab: classes,
                    context: w,
                    dim,
                    layers,
                    heads,
                },
                dropout,
                device,
            )));
        }
        if let Some(dims) = self.bert_dims() {
            if c != 1 || !(h == 1 || h == 2) || w > dims.positions {
                return Err(DistillError::Config(format!(
                    "bert reads query-passage pairs or texts of at most {} tokens (data.source = \"retrieval\"), got inputs of {c}×{h}×{w}",
                    dims.positions
                )));
            }
            let dropout = match self {
                ModelConfig::Bert { dropout, .. } => dropout.unwrap_or(0.0),
                _ => 0.0,
            };
            return Ok(Net::Bert(Bert::new(dims, dropout, device)));
        }
        if self.reads_series() {
            if c != 1 || w < 2 {
                return Err(DistillError::Config(format!(
                    "{} reads series of frames (data.source = \"ts\"), got inputs of {c}×{h}×{w}",
                    self.name()
                )));
            }
            let widths = self.effective_hidden().expect("series models have widths");
            return Ok(match self {
                ModelConfig::Gru { .. } => Net::Gru(GruNet::new(w - 1, &widths, classes, device)),
                _ => Net::Conv1d(Conv1dNet::new(w - 1, &widths, classes, device)),
            });
        }
        if !matches!(self, ModelConfig::Mlp { .. }) && (h < 4 || w < 4) {
            return Err(DistillError::Config(format!(
                "{} is an image model and needs images, got inputs of {h}×{w} (a table is read as 1×1×features: use mlp)",
                self.name()
            )));
        }
        Ok(match self {
            ModelConfig::Mlp { dropout, .. } => Net::Mlp(Mlp::new(
                c * h * w,
                &self.effective_hidden().expect("an mlp has hidden widths"),
                classes,
                dropout.unwrap_or(0.0),
                device,
            )),
            ModelConfig::Cnn { .. } => Net::Cnn(Cnn::new(
                c,
                &self.effective_hidden().expect("a cnn has hidden widths"),
                classes,
                device,
            )),
            ModelConfig::Vgg8 {}
            | ModelConfig::Vgg11 {}
            | ModelConfig::Vgg13 {}
            | ModelConfig::Vgg16 {}
            | ModelConfig::Vgg19 {}
                if h < 8 || w < 8 =>
            {
                return Err(DistillError::Config(format!(
                    "{} pools its input by 2 three times and needs images of at least 8×8, got {h}×{w}",
                    self.name()
                )));
            }
            ModelConfig::Lenet { .. } => {
                if h < 12 || w < 12 {
                    return Err(DistillError::Config(format!(
                        "lenet needs images of at least 12×12, got {h}×{w}"
                    )));
                }
                Net::LeNet(LeNet::new(
                    input,
                    classes,
                    self.effective_width().expect("a lenet has a width"),
                    device,
                ))
            }
            ModelConfig::Gpt { .. }
            | ModelConfig::Gru { .. }
            | ModelConfig::Conv1d { .. }
            | ModelConfig::Bert { .. } => {
                unreachable!("built above")
            }
            ModelConfig::Resnet8 {} => resnet(8, false),
            ModelConfig::Resnet14 {} => resnet(14, false),
            ModelConfig::Resnet20 {} => resnet(20, false),
            ModelConfig::Resnet32 {} => resnet(32, false),
            ModelConfig::Resnet44 {} => resnet(44, false),
            ModelConfig::Resnet56 {} => resnet(56, false),
            ModelConfig::Resnet110 {} => resnet(110, false),
            ModelConfig::Resnet8x4 {} => resnet(8, true),
            ModelConfig::Resnet32x4 {} => resnet(32, true),
            ModelConfig::Mobilenetv2 {} => {
                Net::MobileNetV2(MobileNetV2::new(c, 1.0, classes, device))
            }
            ModelConfig::Mobilenetv2X025 {} => {
                Net::MobileNetV2(MobileNetV2::new(c, 0.25, classes, device))
            }
            ModelConfig::MobileHalf {} => {
                Net::MobileNetV2(MobileNetV2::cifar(c, 6, 0.5, classes, device))
            }
            ModelConfig::Shufflev2 {} => Net::ShuffleNetV2(ShuffleNetV2::new(c, classes, device)),
            ModelConfig::Wrn161 {} => Net::WideResNet(WideResNet::new(c, 16, 1, classes, device)),
            ModelConfig::Wrn162 {} => Net::WideResNet(WideResNet::new(c, 16, 2, classes, device)),
            ModelConfig::Wrn401 {} => Net::WideResNet(WideResNet::new(c, 40, 1, classes, device)),
            ModelConfig::Wrn402 {} => Net::WideResNet(WideResNet::new(c, 40, 2, classes, device)),
            ModelConfig::Vgg8 {} => Net::Vgg(Vgg::new(c, 8, classes, device)),
            ModelConfig::Vgg11 {} => Net::Vgg(Vgg::new(c, 11, classes, device)),
            ModelConfig::Vgg13 {} => Net::Vgg(Vgg::new(c, 13, classes, device)),
            ModelConfig::Vgg16 {} => Net::Vgg(Vgg::new(c, 16, classes, device)),
            ModelConfig::Vgg19 {} => Net::Vgg(Vgg::new(c, 19, classes, device)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_vgg_refuses_images_it_would_pool_to_nothing() {
        let device = Device::flex();
        let vgg = ModelConfig::named("vgg8").unwrap();
        let e = vgg.build([1, 7, 7], 10, &device).unwrap_err().to_string();
        assert!(e.contains("at least 8×8") && e.contains("7×7"), "{e}");
        let net = vgg.build([1, 8, 8], 10, &device).unwrap();
        let out = net.forward(Tensor::<4>::zeros([2, 1, 8, 8], &device));
        assert_eq!(out.logits.dims(), [2, 10]);
    }

    #[test]
    fn every_catalogue_model_builds_and_reports_taps() {
        let device = Device::flex();
        for info in MODELS {
            let config = ModelConfig::named(info.name).unwrap();
            // a language model reads token windows: two windows of 16 give 32 logit rows
            let (input, rows, outputs) = if config.reads_tokens() {
                ([1, 1, 16], 32, 10)
            } else if config.reads_pairs() {
                // a bi-encoder scores each (query, passage) pair
                ([1, 2, 16], 2, 1)
            } else if config.reads_series() {
                ([1, 29, 13], 2, 10)
            } else {
                ([1, 28, 28], 2, 10)
            };
            let net = config.build(input, 10, &device).unwrap();
            let shapes = net.tap_shapes(input, &device);
            assert_eq!(
                shapes.get("logits"),
                Some(&[rows, outputs][..]),
                "{}",
                info.name
            );
            assert!(shapes.get("embedding").is_some(), "{}", info.name);
        }
    }

    #[test]
    fn resnet_taps_and_sizes_match_the_reference_layout() {
        let device = Device::flex();
        let net = ModelConfig::named("resnet8x4")
            .unwrap()
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
            .unwrap()
            .build([3, 32, 32], 100, &device)
            .unwrap();
        assert_eq!(trainable_params(&r20), 278_324);
        let mlp = ModelConfig::Mlp {
            hidden: Some(vec![32]),
            dropout: None,
        }
        .build([1, 28, 28], 10, &device)
        .unwrap();
        assert_eq!(trainable_params(&mlp), 25_450);
        // bench/pytorch_reference.py's cnn(): 1 147 978 and 94 538 parameters.
        let cnn = |w: Vec<usize>| {
            ModelConfig::Cnn { hidden: Some(w) }
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
        let with = |model: &str, hidden: Option<Vec<usize>>, width: Option<usize>| {
            ModelSpec {
                hidden,
                width,
                ..ModelSpec::named(model)
            }
            .resolve("test")
            .unwrap()
        };
        let mlp = ModelConfig::named("mlp").unwrap();
        assert!(mlp
            .architecture_differences(&with("mlp", Some(vec![256]), None))
            .is_empty());
        assert_eq!(
            mlp.architecture_differences(&with("mlp", Some(vec![64]), None)),
            ["hidden: [256] vs [64]"]
        );
        assert_eq!(
            with("lenet", None, Some(2))
                .architecture_differences(&ModelConfig::named("lenet").unwrap()),
            ["width: 2 vs 1"]
        );
        assert_eq!(
            ModelConfig::named("lenet")
                .unwrap()
                .architecture_differences(&mlp),
            ["model: \"lenet\" vs \"mlp\""]
        );
        // BERT sizes, defaults filled in
        let bert = ModelConfig::named("bert").unwrap();
        let small = ModelSpec {
            dim: Some(128),
            heads: Some(4),
            vocab: Some(30522),
            ..ModelSpec::named("bert")
        }
        .resolve("test")
        .unwrap();
        assert_eq!(
            bert.architecture_differences(&small),
            ["dim: 384 vs 128", "heads: 12 vs 4"]
        );
        // dropout does not change the weights a checkpoint holds
        let dropped = ModelConfig::Mlp {
            hidden: None,
            dropout: Some(0.5),
        };
        assert!(mlp.architecture_differences(&dropped).is_empty());
    }

    #[test]
    fn bad_model_configs_are_rejected() {
        let err = ModelSpec::named("resnet2O")
            .resolve("student")
            .unwrap_err()
            .to_string();
        assert!(err.contains("did you mean 'resnet20'"), "{err}");
        let mut m = ModelSpec::named("resnet20");
        m.hidden = Some(vec![3]);
        assert!(m
            .resolve("teacher")
            .unwrap_err()
            .to_string()
            .contains("'hidden' does not apply"));
    }

    #[test]
    fn the_typed_config_reads_the_flat_model_json_of_earlier_checkpoints() {
        // model.json written before the typed enum: the same keys, so it still loads.
        let m: ModelConfig = serde_json::from_str(r#"{"model":"mlp","hidden":[64]}"#).unwrap();
        assert_eq!(
            m,
            ModelConfig::Mlp {
                hidden: Some(vec![64]),
                dropout: None
            }
        );
        let r: ModelConfig = serde_json::from_str(r#"{"model":"resnet8x4"}"#).unwrap();
        assert_eq!(r, ModelConfig::Resnet8x4 {});
        assert_eq!(
            serde_json::to_string(&m).unwrap(),
            r#"{"model":"mlp","hidden":[64]}"#
        );
        // a setting of another architecture is refused by type
        assert!(serde_json::from_str::<ModelConfig>(r#"{"model":"resnet8","width":2}"#).is_err());
        // every catalogue name has a variant, and the spec round-trips
        for info in MODELS {
            let m = ModelConfig::named(info.name).unwrap();
            assert_eq!(m.name(), info.name);
            assert_eq!(ModelSpec::from(&m).resolve("x").unwrap(), m);
        }
    }
}
