//! Factor transfer: a paraphraser auto-encodes the teacher's feature map into "factors" in an
//! initialisation stage; a translator then learns to produce the same factors from the student.

use crate::models::conv::ConvForward;
use burn::nn::conv::{Conv2d, Conv2dConfig, ConvTranspose2d, ConvTranspose2dConfig};
use burn::nn::loss::{MseLoss, Reduction};
use burn::nn::{BatchNorm, BatchNormConfig, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::activation::leaky_relu;
use serde::{Deserialize, Serialize};

use super::method::{Built, MethodInfo};
use super::ops::pool_to_common;
use super::role::RoleRef;
use super::term::{BuildContext, InitStage, KnowledgeTerm, Side, StepContext};
use super::Aux;
use crate::error::{DistillError, Result};

/// Catalogue entry.
pub const INFO: MethodInfo = MethodInfo {
    name: "ft",
    family: "intermediate",
    description: "factor transfer: a paraphraser (auto-encoder, trained first on the teacher map) gives factors; a translator on the student map learns to match them (L1 of normalised factor maps)",
    citation: "Kim et al., Paraphrasing Complex Network: Network Compression via Factor Transfer, NeurIPS 2018",
    taps: "student_tap, teacher_tap: feature maps (default stage3, the last stage)",
};

/// `method = "ft"`: FT with its paraphraser and translator.
///
/// # Formula
/// Initialisation stage: `L_rec = mean (P_dec(P_enc(f_t)) − f_t)²` trains the paraphraser.
/// Main stage: `F_t = P_enc(f_t)` (frozen), `F_s = T(f_s)`; if their sizes differ the larger is
/// average-pooled to the smaller; `φ(F) = normalize(mean_c F^p1)` flattened per sample;
/// `L = mean over B·HW of |φ(F_s) − φ(F_t)|^p2` (`p1 = 2`, `p2 = 1`).
///
/// # Conventions (RepDistiller `distiller_zoo/FT.py`, `models/util.py`, `helper/pretrain.py`)
/// Paraphraser: conv3×3 (C→C) → LeakyReLU(0.1) → conv3×3 (C→kC) → LeakyReLU → conv3×3 (kC→kC) →
/// LeakyReLU, and the mirror-image transposed convolutions as decoder, no batch norm; translator:
/// the same three convolutions from the student's channels to `kC`, each with batch norm; `k`
/// (`rate`) = 0.5. The paraphraser trains for `init_epochs` (default 30) with MSE, at `init_lr`
/// (default 0.01, RepDistiller's rate for its ResNet students), with weight 1 (the reconstruction
/// MSE as RepDistiller's `init()`; `weight` applies to the main stage only), then is frozen. Weight 200 in RepDistiller's recipe (`-b 200`, with CE at 1 and no KD); the loss is
/// RepDistiller's AT-style factor form, not the paper's per-element L1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FtConfig {
    /// Weight in the objective (default 200).
    #[serde(default = "default_weight")]
    pub weight: f64,
    /// Paraphrase rate `k`: factor channels = `k ×` teacher channels (default 0.5).
    #[serde(default = "half")]
    pub rate: f64,
    /// Epochs of the paraphraser's initialisation stage (default 30).
    #[serde(default = "thirty")]
    pub init_epochs: usize,
    /// Learning rate of the initialisation stage (default 0.01).
    #[serde(default = "default_init_lr")]
    pub init_lr: Option<f64>,
    /// Student feature map (default `stage3`).
    #[serde(default = "default_tap")]
    pub student_tap: String,
    /// Teacher feature map (default `stage3`).
    #[serde(default = "default_tap")]
    pub teacher_tap: String,
    /// The trainable role the term trains (default: the recipe's `student`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub student: Option<RoleRef>,
    /// The role it learns from (default: the only `[[teacher]]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub teacher: Option<RoleRef>,
}

fn default_weight() -> f64 {
    200.0
}
fn half() -> f64 {
    0.5
}
fn default_init_lr() -> Option<f64> {
    Some(0.01)
}
fn thirty() -> usize {
    30
}
fn default_tap() -> String {
    "stage3".into()
}

fn conv3(cin: usize, cout: usize, device: &Device) -> Conv2d {
    Conv2dConfig::new([cin, cout], [3, 3])
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
        .init(device)
}

fn deconv3(cin: usize, cout: usize, device: &Device) -> ConvTranspose2d {
    ConvTranspose2dConfig::new([cin, cout], [3, 3])
        .with_padding([1, 1])
        .init(device)
}

/// FT's paraphraser: an auto-encoder of the teacher's feature map.
#[derive(Module, Debug)]
pub struct Paraphraser {
    encoder: Vec<Conv2d>,
    decoder: Vec<ConvTranspose2d>,
}

impl Paraphraser {
    /// Channels `c → kc` and back.
    pub fn new(c: usize, kc: usize, device: &Device) -> Self {
        Self {
            encoder: vec![
                conv3(c, c, device),
                conv3(c, kc, device),
                conv3(kc, kc, device),
            ],
            decoder: vec![
                deconv3(kc, kc, device),
                deconv3(kc, c, device),
                deconv3(c, c, device),
            ],
        }
    }

    /// The factor of a feature map.
    pub fn encode(&self, x: Tensor<4>) -> Tensor<4> {
        self.encoder
            .iter()
            .fold(x, |x, c| leaky_relu(c.run(x), 0.1))
    }

    /// The reconstruction of a factor.
    pub fn decode(&self, f: Tensor<4>) -> Tensor<4> {
        self.decoder
            .iter()
            .fold(f, |x, c| leaky_relu(c.forward(x), 0.1))
    }
}

/// FT's translator: the student's encoder into factor space.
#[derive(Module, Debug)]
pub struct Translator {
    convs: Vec<Conv2d>,
    bns: Vec<BatchNorm>,
}

impl Translator {
    /// Channels `cs → kc`.
    pub fn new(cs: usize, kc: usize, device: &Device) -> Self {
        Self {
            convs: vec![
                conv3(cs, cs, device),
                conv3(cs, kc, device),
                conv3(kc, kc, device),
            ],
            bns: vec![
                BatchNormConfig::new(cs).init(device),
                BatchNormConfig::new(kc).init(device),
                BatchNormConfig::new(kc).init(device),
            ],
        }
    }

    /// The student's factor.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.convs
            .iter()
            .zip(&self.bns)
            .fold(x, |x, (c, b)| leaky_relu(b.forward(c.run(x)), 0.1))
    }
}

/// FT's factor loss between two factor maps (see [`FtConfig`]), `p1 = 2`, `p2 = 1`.
pub fn ft_loss(factor_s: Tensor<4>, factor_t: Tensor<4>) -> Tensor<1> {
    let (s, t) = pool_to_common(factor_s, factor_t);
    let phi = |f: Tensor<4>| {
        let [b, _, h, w] = f.dims();
        super::ops::normalize_rows(f.powi_scalar(2).mean_dim(1).reshape([b, h * w]))
    };
    (phi(s) - phi(t)).abs().mean()
}

struct Ft {
    student_tap: String,
    teacher_tap: String,
    paraphraser: usize,
    translator: usize,
    stage: InitStage,
    student: usize,
    teacher: usize,
}

impl FtConfig {
    pub(crate) fn build(&self, ctx: &BuildContext<'_>, aux: &mut Vec<Aux>) -> Result<Built> {
        let student = ctx.student(&self.student)?;
        let teacher = ctx.teacher(&self.teacher)?;
        if !(self.rate > 0.0 && self.rate <= 4.0) {
            return Err(DistillError::Config(format!(
                "ft.rate must be in (0, 4], got {}",
                self.rate
            )));
        }
        if let Some(lr) = self.init_lr {
            if !(lr.is_finite() && lr > 0.0) {
                return Err(DistillError::Config(format!(
                    "ft.init_lr must be a positive number, got {lr}"
                )));
            }
        }
        let s = ctx.shape(Side::Student(student), &self.student_tap)?;
        let t = ctx.shape(Side::Teacher(teacher), &self.teacher_tap)?;
        if s.len() != 4 || t.len() != 4 {
            return Err(DistillError::Shape {
                context: format!(
                    "ft: student tap '{}' and teacher tap '{}' must both be feature maps [B, C, H, W]",
                    self.student_tap, self.teacher_tap
                ),
                expected: t,
                got: s,
                fix: "; pick stage or conv taps (see `distill models`)".into(),
            });
        }
        let kc = ((t[1] as f64 * self.rate) as usize).max(1);
        aux.push(Aux::Paraphraser(Paraphraser::new(t[1], kc, ctx.device)));
        aux.push(Aux::Translator(Translator::new(s[1], kc, ctx.device)));
        Ok(Built::new(
            self.weight,
            Ft {
                student_tap: self.student_tap.clone(),
                teacher_tap: self.teacher_tap.clone(),
                paraphraser: aux.len() - 2,
                translator: aux.len() - 1,
                // RepDistiller's initialisation loss is the plain MSE: `weight` (β) is the
                // main stage's.
                stage: InitStage {
                    epochs: self.init_epochs,
                    lr: self.init_lr,
                    weight: 1.0,
                },
                student,
                teacher,
            },
        ))
    }
}

impl Ft {
    fn parts<'a>(&self, aux: &'a [Aux]) -> (&'a Paraphraser, &'a Translator) {
        match (&aux[self.paraphraser], &aux[self.translator]) {
            (Aux::Paraphraser(p), Aux::Translator(t)) => (p, t),
            _ => unreachable!("ft registered a paraphraser and a translator"),
        }
    }
}

impl KnowledgeTerm for Ft {
    fn forward(&self, aux: &[Aux], ctx: &StepContext<'_>) -> Vec<(String, Tensor<1>)> {
        let (para, trans) = self.parts(aux);
        // The paraphraser is frozen after its stage: its factor is a constant.
        let factor_t = para
            .encode(ctx.teacher(self.teacher, &self.teacher_tap).into_map())
            .detach();
        let factor_s = trans.forward(ctx.student(self.student, &self.student_tap).into_map());
        vec![("ft".into(), ft_loss(factor_s, factor_t))]
    }

    fn init_stage(&self) -> Option<InitStage> {
        (self.stage.epochs > 0).then_some(self.stage)
    }

    fn init_forward(&self, aux: &[Aux], ctx: &StepContext<'_>) -> Vec<(String, Tensor<1>)> {
        let (para, _) = self.parts(aux);
        let f_t = ctx.teacher(self.teacher, &self.teacher_tap).into_map();
        let rec = para.decode(para.encode(f_t.clone()));
        vec![(
            "ft_rec".into(),
            MseLoss::new()
                .forward(rec, f_t, Reduction::Mean)
                .reshape([1]),
        )]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::knowledge::testing::{fixture, grad_of, tensor4};

    #[test]
    fn value_and_gradient_match_repdistiller() {
        let dev = Device::flex().autodiff();
        for case in fixture("ft").cases() {
            let s = tensor4(case.input("student"), &dev).require_grad();
            let t = tensor4(case.input("teacher"), &dev);
            let loss = ft_loss(s.clone(), t);
            case.assert_value(loss.clone());
            case.assert_grad("student", grad_of(&loss, &s));
        }
    }

    #[test]
    fn modules_keep_the_spatial_size() {
        let dev = Device::flex();
        let p = Paraphraser::new(8, 4, &dev);
        let x = Tensor::<4>::ones([2, 8, 5, 5], &dev);
        assert_eq!(p.encode(x.clone()).dims(), [2, 4, 5, 5]);
        assert_eq!(p.decode(p.encode(x)).dims(), [2, 8, 5, 5]);
        let t = Translator::new(3, 4, &dev);
        assert_eq!(
            t.forward(Tensor::ones([2, 3, 5, 5], &dev)).dims(),
            [2, 4, 5, 5]
        );
    }
}
