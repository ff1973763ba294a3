//! Ranking: every sample is a candidate of one list (a query's documents), the model gives each
//! a score, and the metrics are NDCG@10 and MRR@10 of the lists ordered by score. Batches hold
//! whole lists; [`Lists`] lays a batch's per-sample values out as a padded `[lists, longest]`
//! grid, which is what listwise losses read (and picks the members of class pairs, which the
//! loader forms as lists of two).

use burn::prelude::*;
use burn::tensor::TensorData;

use crate::knowledge::{listnet::ListNetConfig, MethodConfig, RoleRef};

/// The cut-off of the reported metrics.
pub const CUTOFF: usize = 10;

/// ListNet against the relevance grades at weight 1 on `role`.
pub fn supervised(role: &str) -> Vec<MethodConfig> {
    vec![MethodConfig::Listnet(ListNetConfig {
        weight: 1.0,
        eps: ListNetConfig::default_eps(),
        student: Some(RoleRef::from(role)),
    })]
}

/// The layout of a batch's lists: which sample fills each slot of a `[Q, N]` grid (`Q` lists,
/// `N` the longest), and which slots are padding.
#[derive(Debug, Clone)]
pub struct Lists {
    slots: Tensor<1, Int>,
    pad: Tensor<2>,
    shape: [usize; 2],
}

impl Lists {
    /// The layout of consecutive lists of `sizes` samples.
    pub fn upload(sizes: &[usize], device: &Device) -> Lists {
        let q = sizes.len();
        let n = sizes.iter().copied().max().unwrap_or(1).max(1);
        let mut slots = vec![0i64; q * n];
        let mut pad = vec![1f32; q * n];
        let mut start = 0;
        for (row, &size) in sizes.iter().enumerate() {
            for k in 0..size {
                slots[row * n + k] = (start + k) as i64;
                pad[row * n + k] = 0.0;
            }
            start += size;
        }
        Lists {
            slots: Tensor::from_data(TensorData::new(slots, [q * n]), device),
            pad: Tensor::from_data(TensorData::new(pad, [q, n]), device),
            shape: [q, n],
        }
    }

    /// One value per sample (`[B, 1]` scores, or `[B]` grades as `[B, 1]`) laid out as the
    /// `[Q, N]` grid; padding slots hold the first sample's value (mask them with [`Self::pad`]).
    pub fn arrange(&self, per_sample: Tensor<2>) -> Tensor<2> {
        let [b, d] = per_sample.dims();
        debug_assert_eq!(d, 1, "one score per sample");
        per_sample
            .reshape([b])
            .select(0, self.slots.clone())
            .reshape(self.shape)
    }

    /// Member `k` of every list, one row each (`[Q, D]` from per-sample `[B, D]`): the anchors
    /// (`k = 0`) or partners (`k = 1`) of class pairs. Every list must have `k + 1` members.
    pub fn member(&self, per_sample: Tensor<2>, k: usize) -> Tensor<2> {
        let [q, n] = self.shape;
        let rows = self
            .slots
            .clone()
            .reshape([q, n])
            .slice([0..q, k..k + 1])
            .reshape([q]);
        per_sample.select(0, rows)
    }

    /// `[Q, N]`: 1 at padding slots, 0 at real ones.
    pub fn pad(&self) -> Tensor<2> {
        self.pad.clone()
    }

    /// The same layout on another device.
    pub fn to_device(&self, device: &Device) -> Lists {
        Lists {
            slots: self.slots.clone().to_device(device),
            pad: self.pad.clone().to_device(device),
            shape: self.shape,
        }
    }
}

/// NDCG@k and reciprocal rank@k of one list: `scores` order the candidates, `grades` are their
/// relevance. Gains `2^g − 1`, discounts `1 / log2(rank + 1)` (Järvelin and Kekäläinen; as
/// allRank and LightGBM); ties in the scores keep the list's order. `None` for a list without
/// any relevant candidate (its NDCG is undefined; it is left out of the mean, and of the MRR
/// too, so both average over the same lists).
pub fn ndcg_and_rr(scores: &[f32], grades: &[f32], k: usize) -> Option<(f64, f64)> {
    if !grades.iter().any(|&g| g > 0.0) {
        return None;
    }
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let gain = |g: f32| 2f64.powf(g as f64) - 1.0;
    let dcg = |ranked: &mut dyn Iterator<Item = f32>| -> f64 {
        ranked
            .take(k)
            .enumerate()
            .map(|(r, g)| gain(g) / ((r + 2) as f64).log2())
            .sum()
    };
    let mut ideal: Vec<f32> = grades.to_vec();
    ideal.sort_by(|a, b| b.total_cmp(a));
    let ndcg = dcg(&mut order.iter().map(|&i| grades[i])) / dcg(&mut ideal.into_iter());
    let rr = order
        .iter()
        .take(k)
        .position(|&i| grades[i] > 0.0)
        .map_or(0.0, |r| 1.0 / (r + 1) as f64);
    Some((ndcg, rr))
}

/// The relevance grade the teacher's ranking gives a candidate at its 1-based `rank` in the
/// teacher's order: 3 for the top one, 2 for ranks 2–3, 1 for ranks 4–10, 0 below.
pub fn teacher_grade(rank: usize) -> f32 {
    match rank {
        1 => 3.0,
        2..=3 => 2.0,
        4..=CUTOFF => 1.0,
        _ => 0.0,
    }
}

/// How closely a student's ranking follows a teacher's, over lists `units` of per-sample
/// scores: the mean NDCG@10 of the student's order with the grades [`teacher_grade`] derives
/// from the teacher's order, and the mean reciprocal rank@10, in the student's order, of the
/// teacher's top candidate. Ties in the teacher's scores keep the list's order.
pub fn against_teacher(
    student: &[f32],
    teacher: &[f32],
    units: &[std::ops::Range<usize>],
) -> Option<(f64, f64)> {
    if student.len() != teacher.len() || units.is_empty() {
        return None;
    }
    let mut sums = (0.0, 0.0);
    for r in units {
        let t = &teacher[r.clone()];
        let mut order: Vec<usize> = (0..t.len()).collect();
        order.sort_by(|&a, &b| t[b].total_cmp(&t[a]));
        let mut grades = vec![0f32; t.len()];
        for (rank, &i) in order.iter().enumerate() {
            grades[i] = teacher_grade(rank + 1);
        }
        let (ndcg, _) = ndcg_and_rr(&student[r.clone()], &grades, CUTOFF)?;
        // the reciprocal rank of the teacher's top candidate alone
        let top: Vec<f32> = (0..t.len())
            .map(|i| if i == order[0] { 1.0 } else { 0.0 })
            .collect();
        let (_, rr) = ndcg_and_rr(&student[r.clone()], &top, CUTOFF)?;
        sums.0 += ndcg;
        sums.1 += rr;
    }
    let n = units.len() as f64;
    Some((sums.0 / n, sums.1 / n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agreement_with_the_teacher_ranks_by_its_order() {
        // two lists: the student orders the first (3 candidates) as the teacher, the second
        // (5 candidates) in reverse
        let teacher = [3.0, 2.0, 1.0, 5.0, 4.0, 3.0, 2.0, 1.0];
        let student = [0.9, 0.5, 0.1, 1.0, 2.0, 3.0, 4.0, 5.0];
        let (ndcg, mrr) = against_teacher(&student, &teacher, &[0..3, 3..8]).unwrap();
        // list 2: the teacher's ranks 1..5 grade its candidates 3, 2, 2, 1, 1; the student
        // ranks them last to first, so its order reads the grades 1, 1, 2, 2, 3
        let log = |r: f64| (r + 1.0).log2();
        let dcg =
            1.0 / log(1.0) + 1.0 / log(2.0) + 3.0 / log(3.0) + 3.0 / log(4.0) + 7.0 / log(5.0);
        let idcg =
            7.0 / log(1.0) + 3.0 / log(2.0) + 3.0 / log(3.0) + 1.0 / log(4.0) + 1.0 / log(5.0);
        assert!((ndcg - (1.0 + dcg / idcg) / 2.0).abs() < 1e-12, "{ndcg}");
        // the teacher's top candidate: first in list 1, fifth in list 2
        assert!((mrr - (1.0 + 1.0 / 5.0) / 2.0).abs() < 1e-12, "{mrr}");
        assert_eq!(
            (1..=11).map(teacher_grade).collect::<Vec<_>>(),
            [3.0, 2.0, 2.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0]
        );
    }

    #[test]
    fn lists_lay_out_samples_with_padding() {
        let dev = Device::flex();
        let lists = Lists::upload(&[2, 3, 1], &dev);
        let scores = Tensor::<2>::from_floats([[1.0], [2.0], [3.0], [4.0], [5.0], [6.0]], &dev);
        let grid: Vec<f32> = lists.arrange(scores).into_data().iter::<f32>().collect();
        assert_eq!(grid, vec![1.0, 2.0, 1.0, 3.0, 4.0, 5.0, 6.0, 1.0, 1.0]);
        let pad: Vec<f32> = lists.pad().into_data().iter::<f32>().collect();
        assert_eq!(pad, vec![0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0]);
        let pairs = Lists::upload(&[2, 2], &dev);
        let x = Tensor::<2>::from_floats([[1.0, 1.5], [2.0, 2.5], [3.0, 3.5], [4.0, 4.5]], &dev);
        let second: Vec<f32> = pairs.member(x, 1).into_data().iter::<f32>().collect();
        assert_eq!(second, vec![2.0, 2.5, 4.0, 4.5]);
    }

    #[test]
    fn ndcg_and_reciprocal_rank_by_hand() {
        // ranked by score: grades 0, 3, 1 → DCG = 0 + 7/log2(3) + 1/log2(4); ideal 3, 1, 0
        let (ndcg, rr) = ndcg_and_rr(&[0.9, 0.5, 0.1], &[0.0, 3.0, 1.0], 10).unwrap();
        let dcg = 7.0 / 3f64.log2() + 1.0 / 2.0;
        let idcg = 7.0 + 1.0 / 3f64.log2();
        assert!((ndcg - dcg / idcg).abs() < 1e-12, "{ndcg}");
        assert_eq!(rr, 0.5);
        // a perfect order scores 1; a list with nothing relevant is left out
        assert_eq!(
            ndcg_and_rr(&[3.0, 2.0, 1.0], &[2.0, 1.0, 0.0], 10),
            Some((1.0, 1.0))
        );
        assert_eq!(ndcg_and_rr(&[1.0, 2.0], &[0.0, 0.0], 10), None);
        // the cut-off: the only relevant candidate ranked below k counts nothing
        assert_eq!(ndcg_and_rr(&[2.0, 1.0], &[0.0, 1.0], 1), Some((0.0, 0.0)));
    }
}
