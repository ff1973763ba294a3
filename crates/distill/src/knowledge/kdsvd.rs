//! KDSVD: the dominant singular vectors of each feature map, compared across consecutive levels
//! through radial-basis-function correlations.

use burn::prelude::*;
use burn::tensor::TensorData;
use serde::{Deserialize, Serialize};

use super::method::{Built, MethodInfo};
use super::term::{default_stage_taps, BuildContext, KnowledgeTerm, Level, StepContext};
use super::Aux;
use crate::error::{DistillError, Result};

/// Catalogue entry.
pub const INFO: MethodInfo = MethodInfo {
    name: "kdsvd",
    family: "relation",
    description: "singular-vector knowledge: RBF correlations between the dominant right singular vectors of consecutive levels (student and teacher channels must match)",
    citation: "Lee et al., Self-supervised Knowledge Distillation Using Singular Value Decomposition, ECCV 2018",
    taps: "student_taps, teacher_taps: ≥ 2 feature maps with equal student/teacher channels (default stage1..3)",
};

/// `method = "kdsvd"`: KDSVD.
///
/// # Formula
/// Per level, `X = f` reshaped to `[B, HW, C]`; `V_t` = the teacher's top-`k` right singular
/// vectors scaled by its normalised top-`k` singular values, `V_s` = the student's top-`k+3`
/// vectors, each teacher vector matched by the student vector of largest `|cos|` (times the sign
/// of that cosine) and scaled the same way. Between consecutive levels `i−1, i`:
/// `R(V)[c, c′, j] = exp(−(V_i[c, j] − V_{i−1}[c′, j])² / 8)`,
/// `L = Σ_{i≥1} Σ (R(V_s) − R(V_t))² / B` (non-finite entries dropped, teacher side constant).
///
/// # Conventions (RepDistiller `distiller_zoo/KDSVD.py`)
/// `k = 1`; weight 1 (`-b 1`, CE at 1, no KD); student and teacher channels must match level by
/// level (the cosine and RBF differences are taken entry by entry).
///
/// # Sign rule and the SVD
/// A singular vector's sign is arbitrary (LAPACK's choice in RepDistiller), and the teacher's
/// sign changes the RBF values. distill orients each teacher vector so that its entry of largest
/// magnitude is positive; the reference fixtures apply the same rule to `torch.svd`'s output.
/// The student's sign does not matter (the alignment multiplies by the cosine's sign). The
/// vectors are the dominant eigenvectors of `X^T X`, found by orthogonal iteration (Gram-Schmidt):
/// `iters` iterations without gradient, then `grad_iters` differentiable ones from that fixed
/// point, whose gradient converges geometrically (ratio `λ_{j}/λ_{i}`) to the SVD's analytic one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KdsvdConfig {
    /// Weight in the objective (default 1).
    #[serde(default = "one")]
    pub weight: f64,
    /// Teacher singular vectors compared (default 1; the student uses `k + 3`).
    #[serde(default = "one_usize")]
    pub k: usize,
    /// Orthogonal-iteration steps without gradient (default 60).
    #[serde(default = "sixty")]
    pub iters: usize,
    /// Differentiable steps after them (default 15).
    #[serde(default = "fifteen")]
    pub grad_iters: usize,
    /// Student feature maps, shallow to deep (default stage1..3).
    #[serde(default = "default_stage_taps")]
    pub student_taps: Vec<String>,
    /// Teacher feature maps (default stage1..3).
    #[serde(default = "default_stage_taps")]
    pub teacher_taps: Vec<String>,
    /// Which student (default 0).
    #[serde(default)]
    pub student: usize,
    /// Which teacher (default 0).
    #[serde(default)]
    pub teacher: usize,
}

fn one() -> f64 {
    1.0
}
fn one_usize() -> usize {
    1
}
fn sixty() -> usize {
    60
}
fn fifteen() -> usize {
    15
}

/// `X^T X` of feature maps viewed as `[B, HW, C]`: `[B, C, C]`.
fn gram(f: Tensor<4>) -> Tensor<3> {
    let [b, c, h, w] = f.dims();
    let m = f.reshape([b, c, h * w]);
    m.clone().matmul(m.swap_dims(1, 2))
}

/// Gram-Schmidt on the columns of `[B, C, n]` (zero columns stay zero, without NaN).
fn orthonormalize(z: Tensor<3>) -> Tensor<3> {
    let [b, c, n] = z.dims();
    let mut qs: Vec<Tensor<3>> = Vec::with_capacity(n);
    for j in 0..n {
        let mut v = z.clone().slice([0..b, 0..c, j..j + 1]);
        for q in &qs {
            let proj = (q.clone() * v.clone()).sum_dim(1);
            v = v - q.clone() * proj;
        }
        let norm = v.clone().powi_scalar(2).sum_dim(1).clamp_min(1e-24).sqrt();
        qs.push(v / norm);
    }
    Tensor::cat(qs, 2)
}

/// The top-`n` eigenvectors of symmetric `[B, C, C]` matrices, `[B, C, n]`, by orthogonal
/// iteration from a fixed start (see [`KdsvdConfig`]).
pub fn top_eigenvectors(g: Tensor<3>, n: usize, iters: usize, grad_iters: usize) -> Tensor<3> {
    let [b, c, _] = g.dims();
    let n = n.min(c);
    // A fixed, generic start: a deterministic pseudo-random matrix (never orthogonal to the
    // dominant subspace except on a null set).
    let start: Vec<f32> = (0..c * n)
        .map(|i| {
            let x = crate::data::loader::mix(0x5bd, i as u64, 7);
            (x >> 11) as f32 / (1u64 << 53) as f32 - 0.5
        })
        .collect();
    let q0 =
        Tensor::<3>::from_data(TensorData::new(start, [1, c, n]), &g.device()).expand([b, c, n]);
    let fixed = g.clone().detach();
    let mut q = orthonormalize(q0);
    for _ in 0..iters {
        q = orthonormalize(fixed.clone().matmul(q));
    }
    q = q.detach();
    for _ in 0..grad_iters {
        q = orthonormalize(g.clone().matmul(q));
    }
    q
}

/// Orients each column so that its entry of largest magnitude is positive.
fn orient(v: Tensor<3>) -> Tensor<3> {
    let idx = v.clone().abs().argmax(1);
    let sign = v.clone().gather(1, idx).sign();
    let sign = sign.clone().mask_fill(sign.equal_elem(0.0), 1.0);
    v * sign
}

/// Normalised singular values `σ_j / ‖σ‖` of the columns `v` of `g`'s eigenvectors, `[B, 1, k]`.
fn scales(g: Tensor<3>, v: Tensor<3>) -> Tensor<3> {
    let sigma = (v.clone() * g.matmul(v)).sum_dim(1).clamp_min(0.0).sqrt(); // [B, 1, k]
    let norm = sigma
        .clone()
        .powi_scalar(2)
        .sum_dim(2)
        .clamp_min(1e-24)
        .sqrt();
    sigma / norm
}

/// Student side of one level, aligned to the teacher's (unscaled) vectors and scaled by the
/// teacher's normalised singular values.
fn student_vectors(
    f: Tensor<4>,
    teacher: &Tensor<3>,
    teacher_scale: &Tensor<3>,
    k: usize,
    iters: usize,
    grad_iters: usize,
) -> Tensor<3> {
    let v = top_eigenvectors(gram(f), k + 3, iters, grad_iters);
    let cos = v.clone().detach().swap_dims(1, 2).matmul(teacher.clone()); // [B, n, k]
    let abs = cos.clone().abs();
    let [b, n, kk] = abs.dims();
    let max = abs.clone().max_dim(1).expand([b, n, kk]);
    let mask = cos.sign().mask_fill(abs.equal(max).bool_not(), 0.0);
    v.matmul(mask) * teacher_scale.clone()
}

/// `exp(−(a[c] − b[c′])² / 8)` for every pair of entries, `[B, Ca, Cb, k]`.
fn rbf(a: Tensor<3>, b: Tensor<3>) -> Tensor<4> {
    let [n, ca, k] = a.dims();
    let cb = b.dims()[1];
    let d = a.unsqueeze_dim::<4>(2).expand([n, ca, cb, k])
        - b.unsqueeze_dim::<4>(1).expand([n, ca, cb, k]);
    d.powi_scalar(2).div_scalar(-8.0).exp()
}

/// KDSVD over levels, shallow to deep (see [`KdsvdConfig`]).
pub fn kdsvd_loss(
    student: &[Tensor<4>],
    teacher: &[Tensor<4>],
    k: usize,
    iters: usize,
    grad_iters: usize,
) -> Tensor<1> {
    let batch = student[0].dims()[0] as f64;
    let mut prev: Option<(Tensor<3>, Tensor<3>)> = None;
    let mut total: Option<Tensor<1>> = None;
    for (fs, ft) in student.iter().zip(teacher) {
        let ft = ft.clone().detach();
        let g_t = gram(ft.clone());
        let v_t = orient(top_eigenvectors(g_t.clone(), k, iters + grad_iters, 0));
        let s_t = scales(g_t, v_t.clone());
        let v_s = student_vectors(fs.clone(), &v_t, &s_t, k, iters, grad_iters);
        let v_t = v_t * s_t;
        if let Some((s_prev, t_prev)) = prev {
            let diff = (rbf(v_s.clone(), s_prev) - rbf(v_t.clone(), t_prev)).powi_scalar(2);
            let l = diff
                .clone()
                .mask_fill(diff.is_nan(), 0.0)
                .sum()
                .div_scalar(batch);
            total = Some(match total {
                Some(t) => t + l,
                None => l,
            });
        }
        prev = Some((v_s, v_t));
    }
    total.expect("at least two levels (checked when built)")
}

struct Kdsvd {
    levels: Vec<Level>,
    k: usize,
    iters: usize,
    grad_iters: usize,
    student: usize,
    teacher: usize,
}

impl KdsvdConfig {
    pub(crate) fn build(&self, ctx: &BuildContext<'_>, _aux: &mut Vec<Aux>) -> Result<Built> {
        if self.k == 0 || self.iters + self.grad_iters == 0 {
            return Err(DistillError::Config(format!(
                "kdsvd.k and kdsvd.iters + grad_iters must be ≥ 1, got {} and {}",
                self.k,
                self.iters + self.grad_iters
            )));
        }
        let levels = ctx.levels(
            "kdsvd",
            (self.student, &self.student_taps),
            (self.teacher, &self.teacher_taps),
            true,
        )?;
        if levels.len() < 2 {
            return Err(DistillError::Config(
                "kdsvd compares consecutive levels: name at least two student_taps and teacher_taps".into(),
            ));
        }
        for l in &levels {
            if l.student_shape[1] != l.teacher_shape[1] {
                return Err(DistillError::Shape {
                    context: format!(
                        "kdsvd: channels of student tap '{}' vs teacher tap '{}' (singular vectors are compared entry by entry)",
                        l.student, l.teacher
                    ),
                    expected: l.teacher_shape.clone(),
                    got: l.student_shape.clone(),
                    fix: "; pick taps with equal channel counts, or a student as wide as the teacher (e.g. resnet32x4 → resnet8x4)".into(),
                });
            }
        }
        Ok(Built::new(
            self.weight,
            Kdsvd {
                levels,
                k: self.k,
                iters: self.iters,
                grad_iters: self.grad_iters,
                student: self.student,
                teacher: self.teacher,
            },
        ))
    }
}

impl KnowledgeTerm for Kdsvd {
    fn forward(&self, _aux: &[Aux], ctx: &StepContext<'_>) -> Vec<(String, Tensor<1>)> {
        let (s, t): (Vec<_>, Vec<_>) = self
            .levels
            .iter()
            .map(|l| {
                (
                    ctx.student(self.student, &l.student).into_map(),
                    ctx.teacher(self.teacher, &l.teacher).into_map(),
                )
            })
            .unzip();
        vec![(
            "kdsvd".into(),
            kdsvd_loss(&s, &t, self.k, self.iters, self.grad_iters),
        )]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::knowledge::testing::{assert_grads, consts4, fixture, leaves4};

    #[test]
    fn value_and_gradient_match_repdistiller_svd() {
        let dev = Device::flex().autodiff();
        for case in fixture("kdsvd").cases() {
            let names = ["s0", "s1", "s2"];
            let s = leaves4(case, &names, &dev);
            let t = consts4(case, &["t0", "t1", "t2"], &dev);
            let loss = kdsvd_loss(&s, &t, 1, 60, 15);
            case.assert_value(loss.clone());
            assert_grads(case, &loss, &names, &s);
        }
    }

    #[test]
    fn identical_features_give_zero_with_finite_gradients() {
        let dev = Device::flex().autodiff();
        let f: Vec<Tensor<4>> = [[2, 3, 3, 3], [2, 3, 2, 2]]
            .iter()
            .map(|s| Tensor::random(*s, burn::tensor::Distribution::Default, &dev).require_grad())
            .collect();
        let t: Vec<Tensor<4>> = f.iter().map(|x| x.clone().detach()).collect();
        let loss = kdsvd_loss(&f, &t, 1, 60, 15);
        assert!(loss.clone().into_scalar::<f32>().abs() < 1e-6);
        let grads = loss.backward();
        for x in &f {
            assert!(x
                .grad(&grads)
                .unwrap()
                .into_data()
                .iter::<f32>()
                .all(f32::is_finite));
        }
    }
}
