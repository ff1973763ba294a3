//! MobileNetV2 (Sandler et al., CVPR 2018) as torchvision builds it, so that torchvision's
//! weights (ImageNet, `mobilenet_v2-b0353104.pth`) import under their own names.
//!
//! A stride-2 3×3 stem, 17 inverted-residual blocks (1×1 expansion by t, 3×3 depthwise, 1×1
//! linear projection; a residual add where stride is 1 and the width is kept), a 1×1 conv to
//! 1280 channels, global average pooling and a linear head; batch norm after every conv, ReLU6
//! after all but the projections. Widths are multiplied by `width` and rounded to multiples of 8
//! as torchvision's `_make_divisible` does (the last conv keeps at least 1280); dropout 0.2 before
//! the head in training. Parameters start from Burn's default initialisation, not torchvision's
//! (which only matters when the model is trained from scratch).
//!
//! The methods' default taps (`stage1`…`stage3`) name early stages here (of seven); name the
//! taps in the config when distilling into or from it.
//!
//! Taps: `stem`, `stage{1..7}` (the output of each group of blocks of one width), `head` (the
//! 1280-channel map) and `embedding` (pooled).
//!
//! RepDistiller's CIFAR variant (`models/mobilenetv2.py`, after Jin et al.'s *Route Constrained
//! Optimization*; `mobile_half` = expansion 6, width 0.5) is built by [`MobileNetV2::cifar`]:
//! ReLU instead of ReLU6, an expansion convolution in every block (also where t = 1), widths
//! `int(c · width)`, the second stage at stride 1 (a 32×32 image ends at 2×2), a 1280-channel
//! last conv, no dropout, and its own names ([`cifar_from_pytorch`]). It too starts from Burn's
//! default initialisation, not RepDistiller's (normal(0, √(2 / (k² · out))) convolutions,
//! N(0, 0.01) head), which only matters when it is trained from scratch.

use crate::models::conv::ConvForward;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{
    BatchNorm, BatchNormConfig, Dropout, DropoutConfig, Linear, LinearConfig, PaddingConfig2d,
};
use burn::prelude::*;

use super::interop::{key_map, KeyMap};
use super::precision::NormF32;
use super::taps::{Feature, Taps};

/// torchvision's inverted-residual settings: expansion t, width c, blocks n, first stride s.
const SETTINGS: [(usize, usize, usize, usize); 7] = [
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
];

/// `v` rounded to the nearest multiple of 8, never below 8 nor more than 10 % below `v`
/// (torchvision's `_make_divisible`).
fn divisible(v: f64) -> usize {
    let d = 8.0;
    let mut r = ((v + d / 2.0) / d).floor() * d;
    r = r.max(d);
    if r < 0.9 * v {
        r += d;
    }
    r as usize
}

/// A convolution (no bias) and its batch norm.
#[derive(Module, Debug)]
pub struct ConvBn {
    conv: Conv2d,
    bn: BatchNorm,
}

impl ConvBn {
    fn new(
        cin: usize,
        cout: usize,
        kernel: usize,
        stride: usize,
        groups: usize,
        device: &Device,
    ) -> Self {
        let p = (kernel - 1) / 2;
        Self {
            conv: Conv2dConfig::new([cin, cout], [kernel, kernel])
                .with_stride([stride, stride])
                .with_padding(PaddingConfig2d::Explicit(p, p, p, p))
                .with_groups(groups)
                .with_bias(false)
                .init(device),
            bn: BatchNormConfig::new(cout).init(device),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.bn.norm(self.conv.run(x))
    }
}

fn relu6(x: Tensor<4>) -> Tensor<4> {
    x.clamp(0.0, 6.0)
}

/// ReLU6 (torchvision) or ReLU (RepDistiller's CIFAR variant).
fn activation(x: Tensor<4>, six: bool) -> Tensor<4> {
    if six {
        relu6(x)
    } else {
        burn::tensor::activation::relu(x)
    }
}

/// An inverted-residual block: optional 1×1 expansion, 3×3 depthwise, 1×1 linear projection.
#[derive(Module, Debug)]
pub struct InvertedResidual {
    expand: Option<ConvBn>,
    dw: ConvBn,
    project: ConvBn,
    residual: bool,
    six: bool,
}

impl InvertedResidual {
    /// A block; `always_expand`: a 1×1 expansion also where t = 1 (RepDistiller's CIFAR
    /// variant); `six`: ReLU6 rather than ReLU.
    fn new(
        cin: usize,
        cout: usize,
        stride: usize,
        t: usize,
        (always_expand, six): (bool, bool),
        device: &Device,
    ) -> Self {
        let hidden = cin * t;
        Self {
            expand: (t != 1 || always_expand).then(|| ConvBn::new(cin, hidden, 1, 1, 1, device)),
            dw: ConvBn::new(hidden, hidden, 3, stride, hidden, device),
            project: ConvBn::new(hidden, cout, 1, 1, 1, device),
            residual: stride == 1 && cin == cout,
            six,
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let mut h = x.clone();
        if let Some(e) = &self.expand {
            h = activation(e.forward(h), self.six);
        }
        let h = self
            .project
            .forward(activation(self.dw.forward(h), self.six));
        if self.residual {
            x + h
        } else {
            h
        }
    }
}

/// MobileNetV2 (see the module documentation).
#[derive(Module, Debug)]
pub struct MobileNetV2 {
    stem: ConvBn,
    blocks: Vec<InvertedResidual>,
    /// Index of the last block of each of the seven stages.
    stage_ends: Vec<usize>,
    head: ConvBn,
    dropout: Dropout,
    fc: Linear,
    six: bool,
}

impl MobileNetV2 {
    /// torchvision's MobileNetV2 for `channels`-channel images, widths × `width`, `classes`
    /// outputs.
    pub fn new(channels: usize, width: f64, classes: usize, device: &Device) -> Self {
        let widths = |c: usize| divisible(c as f64 * width);
        let last = divisible(1280.0 * width.max(1.0));
        Self::build(
            channels,
            &SETTINGS,
            widths,
            last,
            (false, true),
            0.2,
            classes,
            device,
        )
    }

    /// RepDistiller's CIFAR MobileNetV2 (see the module documentation) with expansion `t`,
    /// widths × `width`.
    pub fn cifar(channels: usize, t: usize, width: f64, classes: usize, device: &Device) -> Self {
        let mut settings = SETTINGS;
        for (k, s) in settings.iter_mut().enumerate().skip(1) {
            s.0 = t;
            if k == 1 {
                s.3 = 1;
            }
        }
        let widths = |c: usize| (c as f64 * width) as usize;
        let last = if width > 1.0 {
            (1280.0 * width) as usize
        } else {
            1280
        };
        Self::build(
            channels,
            &settings,
            widths,
            last,
            (true, false),
            0.0,
            classes,
            device,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn build(
        channels: usize,
        settings: &[(usize, usize, usize, usize)],
        widths: impl Fn(usize) -> usize,
        last: usize,
        (always_expand, six): (bool, bool),
        dropout: f64,
        classes: usize,
        device: &Device,
    ) -> Self {
        let mut cin = widths(32);
        let stem = ConvBn::new(channels, cin, 3, 2, 1, device);
        let (mut blocks, mut stage_ends) = (Vec::new(), Vec::new());
        for &(t, c, n, s) in settings {
            let cout = widths(c);
            for i in 0..n {
                blocks.push(InvertedResidual::new(
                    cin,
                    cout,
                    if i == 0 { s } else { 1 },
                    t,
                    (always_expand, six),
                    device,
                ));
                cin = cout;
            }
            stage_ends.push(blocks.len() - 1);
        }
        Self {
            stem,
            blocks,
            stage_ends,
            head: ConvBn::new(cin, last, 1, 1, 1, device),
            dropout: DropoutConfig::new(dropout).init(),
            fc: LinearConfig::new(last, classes).init(device),
            six,
        }
    }

    /// Logits and taps.
    pub fn forward(&self, x: Tensor<4>) -> Taps {
        let mut h = activation(self.stem.forward(x), self.six);
        let mut features = vec![("stem".to_string(), Feature::Map(h.clone()))];
        let mut stage = 1;
        for (i, block) in self.blocks.iter().enumerate() {
            h = block.forward(h);
            if self.stage_ends.contains(&i) {
                features.push((format!("stage{stage}"), Feature::Map(h.clone())));
                stage += 1;
            }
        }
        let h = activation(self.head.forward(h), self.six);
        features.push(("head".into(), Feature::Map(h.clone())));
        Taps::pooled(h, features, |p| self.fc.forward(self.dropout.forward(p)))
    }
}

/// torchvision's names for this model's tensors (17 blocks: `features.1` … `features.17`,
/// stem `features.0`, last conv `features.18`, head `classifier.1`), as rewrites applied in
/// order on import; the first block has no expansion, so its convs sit one place earlier.
pub fn from_pytorch() -> KeyMap {
    let mut m = key_map(&[
        (r"^module\.", ""),
        (r"^features\.0\.0\.", "stem.conv."),
        (r"^features\.0\.1\.", "stem.bn."),
        (r"^features\.18\.0\.", "head.conv."),
        (r"^features\.18\.1\.", "head.bn."),
        (r"^classifier\.1\.", "fc."),
        (r"^features\.1\.conv\.0\.0\.", "blocks.0.dw.conv."),
        (r"^features\.1\.conv\.0\.1\.", "blocks.0.dw.bn."),
        (r"^features\.1\.conv\.1\.", "blocks.0.project.conv."),
        (r"^features\.1\.conv\.2\.", "blocks.0.project.bn."),
    ]);
    for i in 2..=17 {
        m.push((format!(r"^features\.{i}\."), format!("blocks.{}.", i - 1)));
    }
    m.extend(key_map(&[
        (r"\.conv\.0\.0\.", ".expand.conv."),
        (r"\.conv\.0\.1\.", ".expand.bn."),
        (r"\.conv\.1\.0\.", ".dw.conv."),
        (r"\.conv\.1\.1\.", ".dw.bn."),
        (r"\.conv\.2\.", ".project.conv."),
        (r"\.conv\.3\.", ".project.bn."),
    ]));
    m
}

/// The inverse of [`from_pytorch`], applied in order on export.
pub fn to_pytorch() -> KeyMap {
    let mut m = key_map(&[
        (r"^stem\.conv\.", "features.0.0."),
        (r"^stem\.bn\.", "features.0.1."),
        (r"^head\.conv\.", "features.18.0."),
        (r"^head\.bn\.", "features.18.1."),
        (r"^fc\.", "classifier.1."),
        (r"^blocks\.0\.dw\.conv\.", "features.1.conv.0.0."),
        (r"^blocks\.0\.dw\.bn\.", "features.1.conv.0.1."),
        (r"^blocks\.0\.project\.conv\.", "features.1.conv.1."),
        (r"^blocks\.0\.project\.bn\.", "features.1.conv.2."),
        (r"\.expand\.conv\.", ".conv.0.0."),
        (r"\.expand\.bn\.", ".conv.0.1."),
        (r"\.dw\.conv\.", ".conv.1.0."),
        (r"\.dw\.bn\.", ".conv.1.1."),
        (r"\.project\.conv\.", ".conv.2."),
        (r"\.project\.bn\.", ".conv.3."),
    ]);
    for i in 1..=16 {
        m.push((format!(r"^blocks\.{i}\."), format!("features.{}.", i + 1)));
    }
    m
}

/// RepDistiller's names for the CIFAR variant's tensors (`conv1.{0,1}`, its seven stages as
/// `blocks.S.J` of `conv.{0,1}` expansion, `conv.{3,4}` depthwise and `conv.{6,7}` projection,
/// `conv2.{0,1}`, `classifier.0`), as rewrites applied in order on import.
pub fn cifar_from_pytorch() -> KeyMap {
    let mut m = key_map(&[
        (r"^module\.", ""),
        (r"^conv1\.0\.", "stem.conv."),
        (r"^conv1\.1\.", "stem.bn."),
        (r"^conv2\.0\.", "head.conv."),
        (r"^conv2\.1\.", "head.bn."),
        (r"^classifier\.0\.", "fc."),
    ]);
    for (k, (s, j)) in cifar_blocks().into_iter().enumerate() {
        m.push((format!(r"^blocks\.{s}\.{j}\."), format!("blocks.{k}.")));
    }
    for (from, to) in CIFAR_BLOCK_PARTS {
        m.push((
            format!(r"^(blocks\.\d+)\.conv\.{from}\."),
            format!("${{1}}.{to}."),
        ));
    }
    m
}

/// The inverse of [`cifar_from_pytorch`].
pub fn cifar_to_pytorch() -> KeyMap {
    let mut m = key_map(&[
        (r"^stem\.conv\.", "conv1.0."),
        (r"^stem\.bn\.", "conv1.1."),
        (r"^head\.conv\.", "conv2.0."),
        (r"^head\.bn\.", "conv2.1."),
        (r"^fc\.", "classifier.0."),
    ]);
    for (from, to) in CIFAR_BLOCK_PARTS {
        m.push((
            format!(r"^(blocks\.\d+)\.{}\.", to.replace('.', r"\.")),
            format!("${{1}}.conv.{from}."),
        ));
    }
    // block k back to stage S, block J: a rewritten name has the digit J where every block
    // rule needs `conv`, so no later rule matches it again
    for (k, (s, j)) in cifar_blocks().into_iter().enumerate() {
        m.push((
            format!(r"^blocks\.{k}\.conv\."),
            format!("blocks.{s}.{j}.conv."),
        ));
    }
    m
}

/// RepDistiller's `nn.Sequential` indices of a CIFAR block's layers and this model's names.
const CIFAR_BLOCK_PARTS: [(usize, &str); 6] = [
    (0, "expand.conv"),
    (1, "expand.bn"),
    (3, "dw.conv"),
    (4, "dw.bn"),
    (6, "project.conv"),
    (7, "project.bn"),
];

/// (stage, block in stage) of each of the 17 blocks, in order.
fn cifar_blocks() -> Vec<(usize, usize)> {
    SETTINGS
        .iter()
        .enumerate()
        .flat_map(|(s, &(_, _, n, _))| (0..n).map(move |j| (s, j)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widths_round_as_torchvision_does() {
        assert_eq!(divisible(32.0), 32);
        assert_eq!(divisible(32.0 * 0.25), 8);
        assert_eq!(divisible(24.0 * 0.35), 8);
        assert_eq!(divisible(96.0 * 0.35), 32);
        assert_eq!(divisible(1280.0 * 1.4), 1792);
    }
}
