//! ReviewKD: the student's features, fused from deep to shallow by attention-based fusion
//! modules, are compared with the teacher's at every level by the hierarchical context loss.

use crate::models::conv::ConvForward;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Initializer, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::activation::sigmoid;
use burn::tensor::module::{adaptive_avg_pool2d, interpolate};
use burn::tensor::ops::{InterpolateMode, InterpolateOptions};
use serde::{Deserialize, Serialize};

use super::method::{Built, MethodInfo};
use super::role::RoleRef;
use super::term::{BuildContext, KnowledgeTerm, Level, StepContext};
use super::Aux;
use crate::error::{DistillError, Result};
use crate::models::Feature;

/// Catalogue entry.
pub const INFO: MethodInfo = MethodInfo {
    name: "reviewkd",
    family: "intermediate",
    description: "knowledge review: attention-based fusion of student features from deep to shallow, hierarchical context loss (HCL) against every teacher level",
    citation: "Chen et al., Distilling Knowledge via Knowledge Review, CVPR 2021",
    taps: "student_taps, teacher_taps: shallow to deep, maps or flat (default stage1..3 + embedding vs stage1_pre..3_pre + embedding)",
};

/// `method = "reviewkd"`: ReviewKD with its ABF modules and HCL loss.
///
/// # Formula
/// HCL per level: `ℓ = (MSE(f_s, f_t) + Σ_{L∈{4,2,1}, L<H} 2^−k·MSE(P_L f_s, P_L f_t)) / (1 + Σ 2^−k)`,
/// `P_L` adaptive average pooling to `L×L`, `k` counting the pooled terms used; levels summed.
/// The term is multiplied by the warm-up factor `min(e / warmup, 1)`, `e` the epochs done counted
/// per step (mdistiller's per-epoch factor at each epoch's last step; see
/// [`StepContext::warmup`]).
///
/// # Conventions (mdistiller `distillers/ReviewKD.py`)
/// Student taps are post-ReLU (`stu_preact = False`), teacher taps pre-ReLU, plus the pooled
/// embedding as a `1×1` map on both sides. ABF: conv1×1 (no bias) + BN to `mid =
/// min(512, deepest student channels)`; every level but the deepest fuses with the upsampled
/// (nearest) residual of the level below through a 1×1 conv + sigmoid attention; the result is
/// resized (nearest) to the teacher's size, then conv3×3 (no bias) + BN to the teacher's
/// channels. Convolutions start from `kaiming_uniform(a = 1)`. Weight 1, warm-up 20 epochs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReviewKdConfig {
    /// Weight in the objective (default 1).
    #[serde(default = "super::defaults::one")]
    pub weight: f64,
    /// Warm-up epochs of the linear ramp, per step (default 20; fractions allowed; 0 disables it).
    #[serde(default = "twenty")]
    pub warmup: f64,
    /// Cap on the fusion width (default 512).
    #[serde(default = "mid")]
    pub max_mid_channel: usize,
    /// Student taps, shallow to deep (default stage1..3, embedding).
    #[serde(default = "student_taps")]
    pub student_taps: Vec<String>,
    /// Teacher taps, shallow to deep (default stage1_pre..3_pre, embedding).
    #[serde(default = "teacher_taps")]
    pub teacher_taps: Vec<String>,
    /// The trainable role the term trains (default: the recipe's `student`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub student: Option<RoleRef>,
    /// The role it learns from (default: the only `[[teacher]]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub teacher: Option<RoleRef>,
}

fn twenty() -> f64 {
    20.0
}
fn mid() -> usize {
    512
}
fn student_taps() -> Vec<String> {
    ["stage1", "stage2", "stage3", "embedding"]
        .map(String::from)
        .to_vec()
}
fn teacher_taps() -> Vec<String> {
    ["stage1_pre", "stage2_pre", "stage3_pre", "embedding"]
        .map(String::from)
        .to_vec()
}

/// Hierarchical context loss over levels (see [`ReviewKdConfig`]).
pub fn hcl_loss(student: &[Tensor<4>], teacher: &[Tensor<4>]) -> Tensor<1> {
    student
        .iter()
        .zip(teacher)
        .map(|(fs, ft)| {
            let h = fs.dims()[2];
            let mse = |a: Tensor<4>, b: Tensor<4>| (a - b).powi_scalar(2).mean();
            let mut loss = mse(fs.clone(), ft.clone());
            let (mut cnt, mut tot) = (1.0, 1.0);
            for l in [4, 2, 1] {
                if l >= h {
                    continue;
                }
                cnt /= 2.0;
                let p = |x: &Tensor<4>| adaptive_avg_pool2d(x.clone(), [l, l]);
                loss = loss + mse(p(fs), p(ft)).mul_scalar(cnt);
                tot += cnt;
            }
            loss.div_scalar(tot)
        })
        .reduce(|a, b| a + b)
        .expect("at least one level")
}

/// Attention-based fusion module of one level.
#[derive(Module, Debug)]
pub struct Abf {
    conv1: Conv2d,
    bn1: BatchNorm,
    conv2: Conv2d,
    bn2: BatchNorm,
    att: Option<Conv2d>,
}

fn nearest(x: Tensor<4>, size: [usize; 2]) -> Tensor<4> {
    if x.dims()[2..] == size {
        return x;
    }
    interpolate(
        x,
        InterpolateOptions::new(InterpolateMode::Nearest).with_output_size(size),
    )
}

impl Abf {
    /// `cin → mid → cout`, fusing with the level below when `fuse`.
    pub fn new(cin: usize, mid: usize, cout: usize, fuse: bool, device: &Device) -> Self {
        let kaiming = Initializer::KaimingUniform {
            gain: 1.0,
            fan_out_only: false,
        };
        Self {
            conv1: Conv2dConfig::new([cin, mid], [1, 1])
                .with_bias(false)
                .with_initializer(kaiming.clone())
                .init(device),
            bn1: BatchNormConfig::new(mid).init(device),
            conv2: Conv2dConfig::new([mid, cout], [3, 3])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .with_bias(false)
                .with_initializer(kaiming)
                .init(device),
            bn2: BatchNormConfig::new(cout).init(device),
            att: fuse.then(|| Conv2dConfig::new([2 * mid, 2], [1, 1]).init(device)),
        }
    }

    /// Returns (output at `out_size` with the teacher's channels, residual for the next level).
    pub fn forward(
        &self,
        x: Tensor<4>,
        residual: Option<Tensor<4>>,
        out_size: [usize; 2],
    ) -> (Tensor<4>, Tensor<4>) {
        let [n, _, h, w] = x.dims();
        let mut x = self.bn1.forward(self.conv1.run(x));
        if let (Some(att), Some(y)) = (&self.att, residual) {
            let y = nearest(y, [h, w]);
            let z = sigmoid(att.run(Tensor::cat(vec![x.clone(), y.clone()], 1)));
            let z0 = z.clone().slice([0..n, 0..1]);
            let z1 = z.slice([0..n, 1..2]);
            x = x * z0 + y * z1;
        }
        let x = nearest(x, out_size);
        (self.bn2.forward(self.conv2.run(x.clone())), x)
    }
}

struct ReviewKd {
    levels: Vec<Level>,
    /// ABF module index per level, shallow to deep.
    abfs: Vec<usize>,
    warmup: f64,
    student: usize,
    teacher: usize,
}

fn as_map(f: Feature) -> Tensor<4> {
    match f {
        Feature::Map(m) => m,
        other => {
            // A vector per sample is a 1×1 map (a sequence is pooled over its positions).
            let v = other.pooled();
            let [b, d] = v.dims();
            v.reshape([b, d, 1, 1])
        }
    }
}

impl ReviewKdConfig {
    pub(crate) fn build(&self, ctx: &BuildContext<'_>, aux: &mut Vec<Aux>) -> Result<Built> {
        let student = ctx.student(&self.student)?;
        let teacher = ctx.teacher(&self.teacher)?;
        if self.warmup.is_nan() || self.warmup < 0.0 {
            return Err(DistillError::Config(format!(
                "reviewkd.warmup must be ≥ 0 epochs (0 turns it off), got {}",
                self.warmup
            )));
        }
        if self.max_mid_channel == 0 {
            return Err(DistillError::Config(
                "reviewkd.max_mid_channel must be ≥ 1".into(),
            ));
        }
        let levels = ctx.levels(
            "reviewkd",
            (student, &self.student_taps),
            (teacher, &self.teacher_taps),
            false,
        )?;
        let dims = |s: &[usize]| -> (usize, [usize; 2]) {
            match s {
                [_, c, h, w] => (*c, [*h, *w]),
                [_, d] => (*d, [1, 1]),
                _ => (0, [0, 0]),
            }
        };
        let deepest = dims(&levels.last().expect("levels are non-empty").student_shape).0;
        let mid = deepest.min(self.max_mid_channel);
        let n = levels.len();
        let mut abfs = Vec::new();
        for (i, l) in levels.iter().enumerate() {
            let (cs, _) = dims(&l.student_shape);
            let (ct, _) = dims(&l.teacher_shape);
            aux.push(Aux::Abf(Abf::new(cs, mid, ct, i + 1 < n, ctx.device)));
            abfs.push(aux.len() - 1);
        }
        Ok(Built::new(
            self.weight,
            ReviewKd {
                levels,
                abfs,
                warmup: self.warmup,
                student,
                teacher,
            },
        ))
    }
}

impl KnowledgeTerm for ReviewKd {
    fn forward(&self, aux: &[Aux], ctx: &StepContext<'_>) -> Vec<(String, Tensor<1>)> {
        let mut outs: Vec<Tensor<4>> = Vec::with_capacity(self.levels.len());
        let mut teachers: Vec<Tensor<4>> = Vec::with_capacity(self.levels.len());
        let mut residual = None;
        for (l, &a) in self.levels.iter().zip(&self.abfs).rev() {
            let Aux::Abf(abf) = &aux[a] else {
                unreachable!("reviewkd registered its fusion modules")
            };
            let t = as_map(ctx.teacher(self.teacher, &l.teacher));
            let [_, _, th, tw] = t.dims();
            let (out, res) = abf.forward(
                as_map(ctx.student(self.student, &l.student)),
                residual,
                [th, tw],
            );
            residual = Some(res);
            outs.push(out);
            teachers.push(t);
        }
        let ramp = ctx.warmup(self.warmup);
        vec![(
            "reviewkd".into(),
            hcl_loss(&outs, &teachers).mul_scalar(ramp),
        )]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::knowledge::testing::{assert_grads, consts4, fixture, leaves4};

    #[test]
    fn hcl_value_and_gradient_match_mdistiller() {
        let dev = Device::flex().autodiff();
        for case in fixture("hcl").cases() {
            let names = ["s0", "s1", "s2"];
            let s = leaves4(case, &names, &dev);
            let t = consts4(case, &["t0", "t1", "t2"], &dev);
            let loss = hcl_loss(&s, &t);
            case.assert_value(loss.clone());
            assert_grads(case, &loss, &names, &s);
        }
    }

    #[test]
    fn fusion_upsamples_the_residual_and_resizes_to_the_teacher() {
        let dev = Device::flex();
        let deep = Abf::new(8, 4, 6, false, &dev);
        let (out, res) = deep.forward(Tensor::ones([2, 8, 1, 1], &dev), None, [1, 1]);
        assert_eq!(out.dims(), [2, 6, 1, 1]);
        let shallow = Abf::new(3, 4, 5, true, &dev);
        let (out, res) = shallow.forward(Tensor::ones([2, 3, 4, 4], &dev), Some(res), [8, 8]);
        assert_eq!(out.dims(), [2, 5, 8, 8]);
        assert_eq!(res.dims(), [2, 4, 8, 8]);
    }
}
