//! Contrastive representation distillation: a contrastive (NCE) bound on the mutual information
//! between student and teacher embeddings, with negatives drawn from memory banks.

use burn::module::Param;
use burn::prelude::*;
use burn::tensor::{Distribution, TensorData};
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use super::method::{Built, MethodInfo};
use super::ops::normalize_rows;
use super::role::RoleRef;
use super::term::{AuxUpdate, BuildContext, KnowledgeTerm, Side, StepContext, TermStep};
use super::Aux;
use crate::data::loader::mix;
use crate::error::{DistillError, Result};

/// Catalogue entry.
pub const INFO: MethodInfo = MethodInfo {
    name: "crd",
    family: "mutual-information",
    description: "contrastive representation distillation: NCE between embedded student and teacher features, negatives (other classes) from momentum memory banks",
    citation: "Tian et al., Contrastive Representation Distillation, ICLR 2020",
    taps: "student_tap, teacher_tap (default embedding)",
};

/// `method = "crd"`: CRD with its memory banks.
///
/// # Formula
/// Embeddings `v_s = normalize(W_s f_s)`, `v_t = normalize(W_t f_t)` (trainable linear heads,
/// `feat_dim` wide). For each sample `i` with index `y_i` and `K` negatives `j` (training samples of
/// other classes): `h_s(i, j) = exp(v_s,i · M_t[j] / τ) / Z_s`, `h_t(i, j) = exp(v_t,i · M_s[j] / τ) / Z_t`,
/// where `M_s`, `M_t` are the memory banks (one unit row per training sample) and `j = y_i` is
/// the positive. With `P_n = 1/N`:
/// `ℓ(h) = −(1/B) Σ_i [ log(h_i0 / (h_i0 + K·P_n + ε)) + Σ_j log(K·P_n / (h_ij + K·P_n + ε)) ]`,
/// `L = ℓ(h_s) + ℓ(h_t)`, `ε = 1e-7`.
///
/// # Conventions (RepDistiller `crd/criterion.py`, `crd/memory.py`, `dataset/cifar100.py`)
/// Banks start uniform in `±1/√(feat_dim/3)`; after each step the rows of the batch become
/// `normalize(m·M[y] + (1−m)·v)` (`m = 0.5`); `Z` is fixed at the first step to
/// `mean(exp(score/τ))·N`. Negatives are drawn with replacement from the other classes
/// ("exact" mode), per sample from a stream seeded by (epoch, sample index), so a resumed run
/// draws the same ones. `τ = 0.07`, `K = 16384`, `feat_dim = 128`; weight 0.8 with CE at 1
/// (RepDistiller `-b 0.8`). Scores are computed against the whole bank (`B × N`), then the `K + 1`
/// per sample are gathered: the same values as RepDistiller's `bmm` over gathered rows, at a
/// memory cost that does not grow with `K`. The banks are part of the run's checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrdConfig {
    /// Weight in the objective (default 0.8).
    #[serde(default = "default_weight")]
    pub weight: f64,
    /// Embedding width (default 128).
    #[serde(default = "default_feat_dim")]
    pub feat_dim: usize,
    /// Negatives per sample (default 16384).
    #[serde(default = "default_k")]
    pub nce_k: usize,
    /// Temperature τ (default 0.07).
    #[serde(default = "default_t")]
    pub nce_t: f64,
    /// Memory momentum (default 0.5).
    #[serde(default = "default_momentum")]
    pub momentum: f64,
    /// Student tap (default `embedding`; maps are flattened).
    #[serde(default = "super::term::default_embedding_tap")]
    pub student_tap: String,
    /// Teacher tap (default `embedding`).
    #[serde(default = "super::term::default_embedding_tap")]
    pub teacher_tap: String,
    /// The trainable role the term trains (default: the recipe's `student`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub student: Option<RoleRef>,
    /// The role it learns from (default: the only `[[teacher]]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub teacher: Option<RoleRef>,
}

fn default_weight() -> f64 {
    0.8
}
fn default_feat_dim() -> usize {
    128
}
fn default_k() -> usize {
    16384
}
fn default_t() -> f64 {
    0.07
}
fn default_momentum() -> f64 {
    0.5
}

const EPS: f64 = 1e-7;

/// CRD's memory banks and normalisation constants: state, not parameters (no gradient, never
/// touched by the optimiser; saved with the checkpoint).
#[derive(Module, Debug)]
pub struct CrdMemory {
    /// Student-side bank `[N, feat_dim]`.
    mem_s: Param<Tensor<2>>,
    /// Teacher-side bank `[N, feat_dim]`.
    mem_t: Param<Tensor<2>>,
    /// `[Z_s, Z_t]`, negative until set at the first step.
    z: Param<Tensor<1>>,
}

impl CrdMemory {
    /// Banks of `n` rows, uniform in `±1/√(dim/3)`.
    pub fn new(n: usize, dim: usize, device: &Device) -> Self {
        let stdv = 1.0 / (dim as f64 / 3.0).sqrt();
        let bank = || {
            Param::from_tensor(Tensor::random(
                [n, dim],
                Distribution::Uniform(-stdv, stdv),
                device,
            ))
            .set_require_grad(false)
        };
        Self {
            mem_s: bank(),
            mem_t: bank(),
            z: Param::from_tensor(Tensor::full([2], -1.0, device)).set_require_grad(false),
        }
    }

    fn update(
        self,
        rows: Tensor<1, Int>,
        v_s: Tensor<2>,
        v_t: Tensor<2>,
        z: Tensor<1>,
        m: f64,
    ) -> Self {
        let step = |bank: Param<Tensor<2>>, v: Tensor<2>| {
            bank.map(|b| memory_update(b, rows.clone(), v, m))
        };
        Self {
            mem_s: step(self.mem_s, v_s),
            mem_t: step(self.mem_t, v_t),
            z: self.z.map(|_| z),
        }
    }
}

/// `M[y] ← normalize(m·M[y] + (1 − m)·v)` (RepDistiller's `index_copy_`).
pub fn memory_update(
    bank: Tensor<2>,
    rows: Tensor<1, Int>,
    v: Tensor<2>,
    momentum: f64,
) -> Tensor<2> {
    let old = bank.clone().select(0, rows.clone());
    let new = normalize_rows(old.mul_scalar(momentum) + v.mul_scalar(1.0 - momentum));
    bank.select_assign(0, rows, new, burn::tensor::IndexingUpdateOp::Assign)
}

/// Exponentiated scores `exp(v · M[idx] / τ)`, `[B, K+1]`, of embeddings `v` against a bank.
pub fn contrast_scores(v: Tensor<2>, bank: Tensor<2>, idx: Tensor<2, Int>, t: f64) -> Tensor<2> {
    v.matmul(bank.transpose())
        .gather(1, idx)
        .div_scalar(t)
        .exp()
}

/// RepDistiller's `ContrastLoss` of normalised scores `x` (`[B, K+1]`, positive first) over a
/// dataset of `n_data` samples.
pub fn contrast_loss(x: Tensor<2>, n_data: usize) -> Tensor<1> {
    let [b, k1] = x.dims();
    let m = (k1 - 1) as f64;
    let mpn = m / n_data as f64;
    let pos = x.clone().slice([0..b, 0..1]);
    let neg = x.slice([0..b, 1..k1]);
    let log_d1 = (pos.clone() / pos.add_scalar(mpn + EPS)).log();
    let log_d0 = neg.add_scalar(mpn + EPS).recip().mul_scalar(mpn).log();
    (log_d1.sum() + log_d0.sum()).neg().div_scalar(b as f64)
}

struct Crd {
    student_tap: String,
    teacher_tap: String,
    embed_s: usize,
    embed_t: usize,
    memory: usize,
    labels: Vec<u8>,
    /// Per class, the training indices of every other class.
    negatives: Vec<Vec<u32>>,
    k: usize,
    t: f64,
    momentum: f64,
    student: usize,
    teacher: usize,
}

impl CrdConfig {
    pub(crate) fn build(&self, ctx: &BuildContext<'_>, aux: &mut Vec<Aux>) -> Result<Built> {
        ctx.require_task(crate::tasks::Task::Classification, "crd")?;
        let student = ctx.student(&self.student)?;
        let teacher = ctx.teacher(&self.teacher)?;
        let bad = |m: String| Err(DistillError::Config(m));
        if self.feat_dim == 0 || self.nce_k == 0 {
            return bad(format!(
                "crd.feat_dim and crd.nce_k must be ≥ 1, got {} and {}",
                self.feat_dim, self.nce_k
            ));
        }
        if !(self.nce_t.is_finite() && self.nce_t > 0.0) {
            return bad(format!("crd.nce_t must be positive, got {}", self.nce_t));
        }
        if !(0.0..1.0).contains(&self.momentum) {
            return bad(format!(
                "crd.momentum must be in [0, 1), got {}",
                self.momentum
            ));
        }
        let n = ctx.train_labels.len();
        let classes = ctx.classes.max(1);
        let mut negatives = vec![Vec::new(); classes];
        for (c, list) in negatives.iter_mut().enumerate() {
            list.extend((0..n as u32).filter(|&i| ctx.train_labels[i as usize] as usize != c));
        }
        if n == 0 || negatives.iter().any(|l| l.is_empty()) {
            return bad(format!(
                "crd draws its negatives from other classes of the training set, but the training set has {n} samples in {} class(es); it needs at least two classes",
                ctx.train_labels.iter().collect::<std::collections::BTreeSet<_>>().len()
            ));
        }
        let flat = |s: Vec<usize>| s[1..].iter().product::<usize>();
        let ds = flat(ctx.shape(Side::Student(student), &self.student_tap)?);
        let dt = flat(ctx.shape(Side::Teacher(teacher), &self.teacher_tap)?);
        aux.push(Aux::connector(&[2, ds], &[2, self.feat_dim], ctx.device)?);
        aux.push(Aux::connector(&[2, dt], &[2, self.feat_dim], ctx.device)?);
        aux.push(Aux::CrdMemory(CrdMemory::new(n, self.feat_dim, ctx.device)));
        Ok(Built::new(
            self.weight,
            Crd {
                student_tap: self.student_tap.clone(),
                teacher_tap: self.teacher_tap.clone(),
                embed_s: aux.len() - 3,
                embed_t: aux.len() - 2,
                memory: aux.len() - 1,
                labels: ctx.train_labels.to_vec(),
                negatives,
                k: self.nce_k,
                t: self.nce_t,
                momentum: self.momentum,
                student,
                teacher,
            },
        ))
    }
}

impl Crd {
    /// `[B, K+1]` bank rows: the sample itself, then `K` samples of other classes.
    fn contrast_indices(&self, indices: &[usize], epoch: usize) -> Vec<i64> {
        let mut out = Vec::with_capacity(indices.len() * (self.k + 1));
        for &i in indices {
            let pool = &self.negatives[self.labels[i] as usize];
            let mut rng = rand::rngs::SmallRng::seed_from_u64(mix(0xC5D, epoch as u64, i as u64));
            out.push(i as i64);
            out.extend((0..self.k).map(|_| pool[rng.random_range(0..pool.len())] as i64));
        }
        out
    }
}

impl KnowledgeTerm for Crd {
    fn forward(&self, aux: &[Aux], ctx: &StepContext<'_>) -> Vec<(String, Tensor<1>)> {
        self.forward_step(aux, ctx).terms
    }

    fn forward_step(&self, aux: &[Aux], ctx: &StepContext<'_>) -> TermStep {
        let Aux::CrdMemory(memory) = &aux[self.memory] else {
            unreachable!("crd registered its memory")
        };
        let v_s = normalize_rows(
            aux[self.embed_s]
                .forward(ctx.student(self.student, &self.student_tap))
                .flat(),
        );
        let v_t = normalize_rows(
            aux[self.embed_t]
                .forward(ctx.teacher(self.teacher, &self.teacher_tap))
                .flat(),
        );
        let device = v_s.device();
        let b = ctx.indices.len();
        let n = self.labels.len();
        let idx = Tensor::<2, Int>::from_data(
            TensorData::new(
                self.contrast_indices(ctx.indices, ctx.epoch),
                [b, self.k + 1],
            ),
            &device,
        );
        let mem_s = memory.mem_s.val().detach();
        let mem_t = memory.mem_t.val().detach();
        let out_s = contrast_scores(v_s.clone(), mem_t, idx.clone(), self.t);
        let out_t = contrast_scores(v_t.clone(), mem_s, idx, self.t);
        let mut z: Vec<f32> = memory.z.val().into_data().iter::<f32>().collect();
        if z[0] < 0.0 {
            z[0] = out_s.clone().detach().mean().into_scalar::<f32>() * n as f32;
        }
        if z[1] < 0.0 {
            z[1] = out_t.clone().detach().mean().into_scalar::<f32>() * n as f32;
        }
        let loss = contrast_loss(out_s.div_scalar(z[0] as f64), n)
            + contrast_loss(out_t.div_scalar(z[1] as f64), n);
        let rows = Tensor::<1, Int>::from_data(
            TensorData::new(
                ctx.indices.iter().map(|&i| i as i64).collect::<Vec<_>>(),
                [b],
            ),
            &device,
        );
        let (vs, vt, m) = (v_s.detach(), v_t.detach(), self.momentum);
        let z = Tensor::<1>::from_data(TensorData::new(z, [2]), &device);
        TermStep {
            terms: vec![("crd".into(), loss)],
            updates: vec![AuxUpdate {
                aux: self.memory,
                apply: Box::new(move |a| match a {
                    Aux::CrdMemory(mem) => Aux::CrdMemory(mem.update(rows, vs, vt, z, m)),
                    other => other,
                }),
            }],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::knowledge::testing::{assert_grads, fixture, int_tensor, tensor, tensor2};

    #[test]
    fn value_and_gradient_match_repdistiller() {
        let dev = Device::flex().autodiff();
        for case in fixture("crd").cases() {
            let v_s = tensor2(case.input("v_s"), &dev).require_grad();
            let v_t = tensor2(case.input("v_t"), &dev).require_grad();
            let mem_s = tensor2(case.input("mem_s"), &dev);
            let mem_t = tensor2(case.input("mem_t"), &dev);
            let idx = int_tensor::<2>(case.input("idx"), &dev);
            let z = tensor::<1>(case.input("z"), &dev)
                .into_data()
                .iter::<f32>()
                .collect::<Vec<_>>();
            let n = mem_s.dims()[0];
            let t = case.param("t");
            let loss = contrast_loss(
                contrast_scores(v_s.clone(), mem_t, idx.clone(), t).div_scalar(z[0] as f64),
                n,
            ) + contrast_loss(
                contrast_scores(v_t.clone(), mem_s, idx, t).div_scalar(z[1] as f64),
                n,
            );
            case.assert_value(loss.clone());
            assert_grads(case, &loss, &["v_s", "v_t"], &[v_s, v_t]);
        }
    }

    #[test]
    fn memory_update_matches_repdistiller() {
        let dev = Device::flex();
        for case in fixture("crd_memory").cases() {
            let bank = tensor2(case.input("bank"), &dev);
            let rows = int_tensor::<1>(case.input("rows"), &dev);
            let v = tensor2(case.input("v"), &dev);
            let got: Vec<f32> = memory_update(bank, rows, v, case.param("momentum"))
                .into_data()
                .iter::<f32>()
                .collect();
            case.assert_grad("bank", got);
        }
    }

    #[test]
    fn negatives_come_from_other_classes_and_are_reproducible() {
        let dev = Device::flex().autodiff();
        let labels: Vec<u8> = (0..40).map(|i| (i % 4) as u8).collect();
        let shapes = crate::models::TapShapes(vec![("embedding".into(), vec![2, 6])]);
        let ctx = BuildContext {
            students: std::slice::from_ref(&shapes),
            frozen: std::slice::from_ref(&shapes),
            student_names: &["student".into()],
            frozen_names: &["t".into()],
            frozen_unready: &[],
            classes: 4,
            task: crate::tasks::Task::Classification,
            labelled: true,
            class_pairs: false,
            device: &dev,
            teacher_nets: &[],
            probe: &Vec::new,
            probe_cache: Default::default(),
            train_labels: &labels,
            teacher_uses: Default::default(),
        };
        let cfg: CrdConfig = toml::from_str("nce_k = 50").unwrap();
        let mut aux = Vec::new();
        let _ = cfg.build(&ctx, &mut aux).unwrap();
        assert_eq!(aux.len(), 3);
        let crd = Crd {
            student_tap: "embedding".into(),
            teacher_tap: "embedding".into(),
            embed_s: 0,
            embed_t: 1,
            memory: 2,
            negatives: (0..4u8)
                .map(|c| (0..40u32).filter(|&i| labels[i as usize] != c).collect())
                .collect(),
            labels,
            k: 50,
            t: 0.07,
            momentum: 0.5,
            student: 0,
            teacher: 0,
        };
        let a = crd.contrast_indices(&[3, 8], 2);
        assert_eq!(a, crd.contrast_indices(&[3, 8], 2));
        assert_ne!(a, crd.contrast_indices(&[3, 8], 3));
        assert_eq!((a[0], a[51]), (3, 8));
        assert!(a[1..51].iter().all(|&j| j % 4 != 3));
        assert!(a[52..].iter().all(|&j| j % 4 != 0));
    }
}
