//! A k-nearest-neighbour graph over a data set's samples, and graph-propagated node features
//! (`[data.graph]`): the data of graph-based distillation (GLNN, Zhang et al., *Graph-less
//! Neural Networks: Teaching Old MLPs New Tricks via Distillation*, ICLR 2022).
//!
//! Every sample of both splits is a node (the transductive setting: test nodes are in the graph
//! with their features, never their labels). Edges join each node to its `k` most cosine-similar
//! nodes on the full input (table columns standardised first), made symmetric, with self-loops; `Â = D^{-1/2} (A + I) D^{-1/2}` as
//! in GCN and SIGN. A node's features `X` are its input, optionally averaged over
//! `feature_downsample × feature_downsample` pixel blocks (the graph then carries what the
//! features lost, as links do in citation graphs). The data become table rows of the columns
//! `x` (the features), `hop1` = `ÂX`, …, `hop<K>` = `Â^K X`. A model reading every column is a
//! SIGN-style GNN (Rossi et al. 2020: precomputed propagation, then an MLP); a model reading
//! only `x` (a `[[data.view]]` with `columns = ["x"]`) is a graph-less MLP, which needs no
//! neighbours at inference.

use burn::prelude::*;
use serde::{Deserialize, Serialize};

use super::dataset::{Dataset, Inputs};
use crate::error::{DistillError, Result};

/// `[data.graph]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GraphConfig {
    /// Neighbours per node (default 10).
    #[serde(default = "default_k")]
    pub k: usize,
    /// Propagation steps, each a column group `hop1`, `hop2`, … (default 2).
    #[serde(default = "default_hops")]
    pub hops: usize,
    /// Node features: images averaged over blocks of this size (the graph is still built on
    /// the full images). Default: the full input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feature_downsample: Option<usize>,
}

fn default_k() -> usize {
    10
}
fn default_hops() -> usize {
    2
}

impl GraphConfig {
    /// Checks the numbers.
    pub fn check(&self) -> Result<()> {
        if self.k == 0 || self.hops == 0 {
            return Err(DistillError::Config(format!(
                "data.graph: k (neighbours) and hops must be at least 1, got k = {} and hops = {}",
                self.k, self.hops
            )));
        }
        if self.feature_downsample == Some(0) {
            return Err(DistillError::Config(
                "data.graph.feature_downsample must be at least 1".into(),
            ));
        }
        Ok(())
    }
}

/// Each node's input as a vector of reals (what similarity is measured on): pixels scaled to
/// [0, 1], or table values.
pub fn node_points(data: &Dataset) -> Vec<f32> {
    match &data.inputs {
        Inputs::Image { pixels, .. } => pixels.iter().map(|&p| f32::from(p) / 255.0).collect(),
        Inputs::Table { values, .. } => values.clone(),
        Inputs::Tokens { ids, .. } | Inputs::Pairs { ids, .. } => {
            ids.iter().map(|&t| t as f32).collect()
        }
        Inputs::Sequence { values, .. } => values.clone(),
    }
}

/// Per-column mean and standard deviation of `points` (`n × d`).
fn column_stats(points: &[f32], d: usize) -> (Vec<f32>, Vec<f32>) {
    let rows = (points.len() / d.max(1)).max(1) as f64;
    let (mut mean, mut sq) = (vec![0f64; d], vec![0f64; d]);
    for r in points.chunks(d) {
        for (j, &v) in r.iter().enumerate() {
            mean[j] += f64::from(v) / rows;
            sq[j] += f64::from(v) * f64::from(v) / rows;
        }
    }
    let sd = mean
        .iter()
        .zip(&sq)
        .map(|(m, s)| (s - m * m).max(0.0).sqrt().max(1e-12) as f32)
        .collect();
    (mean.into_iter().map(|m| m as f32).collect(), sd)
}

/// `points` standardised by `stats`, column by column.
fn standardise(points: &[f32], stats: &(Vec<f32>, Vec<f32>)) -> Vec<f32> {
    let d = stats.0.len();
    points
        .chunks(d)
        .flat_map(|r| {
            r.iter()
                .enumerate()
                .map(|(j, &v)| (v - stats.0[j]) / stats.1[j])
        })
        .collect()
}

/// Node features and their count per node: the input, or the images averaged over
/// `downsample × downsample` blocks.
pub fn node_features(data: &Dataset, downsample: Option<usize>) -> Result<(Vec<f32>, usize)> {
    let v = node_points(data);
    let d = data.sample_len();
    let (
        Some(k),
        Inputs::Image {
            channels,
            height,
            width,
            ..
        },
    ) = (downsample.filter(|&k| k > 1), &data.inputs)
    else {
        if downsample.is_some_and(|k| k > 1) {
            return Err(DistillError::Config(
                "data.graph.feature_downsample averages image pixels, but the data are table rows; remove it".into(),
            ));
        }
        return Ok((v, d));
    };
    let (c, h, w) = (*channels, *height, *width);
    if h % k != 0 || w % k != 0 {
        return Err(DistillError::Config(format!(
            "data.graph.feature_downsample = {k} must divide the images' height and width ({h}×{w})"
        )));
    }
    let (oh, ow) = (h / k, w / k);
    let out_d = c * oh * ow;
    let mut out = vec![0f32; data.len() * out_d];
    for (s, o) in v.chunks(d).zip(out.chunks_mut(out_d)) {
        for ch in 0..c {
            for y in 0..h {
                for x in 0..w {
                    o[ch * oh * ow + (y / k) * ow + x / k] += s[ch * h * w + y * w + x];
                }
            }
        }
        let scale = 1.0 / (k * k) as f32;
        o.iter_mut().for_each(|p| *p *= scale);
    }
    Ok((out, out_d))
}

/// Rows of `points` (`n × d`, row-major) scaled to unit length (cosine similarity becomes a dot
/// product), as a tensor on `device`.
pub fn unit_rows(points: &[f32], d: usize, device: &Device) -> Tensor<2> {
    let n = points.len() / d;
    let unit: Vec<f32> = points
        .chunks(d)
        .flat_map(|r| {
            let norm = r.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
            r.iter().map(move |v| v / norm)
        })
        .collect();
    Tensor::<2>::from_data(TensorData::new(unit, [n, d]), device)
}

/// For each row of `queries` (unit rows, `q × d`), the `k` most similar rows of `base` (unit
/// rows, `n × d`), most similar first, by matrix products in blocks of rows. With `itself`, query
/// `i` is base row `offset + i` and is not its own neighbour.
pub fn nearest(
    queries: &Tensor<2>,
    base: &Tensor<2>,
    k: usize,
    itself: Option<usize>,
) -> Vec<Vec<usize>> {
    let [q, d] = queries.dims();
    let n = base.dims()[0];
    let k = k.min(n - usize::from(itself.is_some()).min(n));
    if k == 0 || q == 0 {
        return vec![Vec::new(); q];
    }
    let base_t = base.clone().transpose();
    let mut out = Vec::with_capacity(q);
    const BLOCK: usize = 512;
    for start in (0..q).step_by(BLOCK) {
        let rows = BLOCK.min(q - start);
        let sim: Vec<f32> = queries
            .clone()
            .slice([start..start + rows, 0..d])
            .matmul(base_t.clone())
            .into_data()
            .iter::<f32>()
            .collect();
        for (i, row) in sim.chunks(n).enumerate() {
            // The k largest by partial selection, then sorted (ties: the lower index first).
            let mut idx: Vec<usize> = (0..n)
                .filter(|&j| itself.is_none_or(|o| j != o + start + i))
                .collect();
            let cmp = |a: &usize, b: &usize| row[*b].total_cmp(&row[*a]).then(a.cmp(b));
            if k < idx.len() {
                idx.select_nth_unstable_by(k - 1, cmp);
                idx.truncate(k);
            }
            idx.sort_unstable_by(cmp);
            out.push(idx);
        }
    }
    out
}

/// The symmetric neighbourhoods of a k-NN graph (each node's neighbours and the nodes that
/// chose it), without self-loops, sorted.
pub fn symmetric(knn: &[Vec<usize>]) -> Vec<Vec<usize>> {
    let mut adj: Vec<Vec<usize>> = knn.to_vec();
    for (i, nbrs) in knn.iter().enumerate() {
        for &j in nbrs {
            adj[j].push(i);
        }
    }
    for a in &mut adj {
        a.sort_unstable();
        a.dedup();
    }
    adj
}

/// `Â h` with `Â = D^{-1/2} (A + I) D^{-1/2}` (`D` the degrees with the self-loop), for `h` of
/// `n × d` row-major.
pub fn propagate(adj: &[Vec<usize>], h: &[f32], d: usize) -> Vec<f32> {
    let deg: Vec<f32> = adj.iter().map(|a| (a.len() + 1) as f32).collect();
    let mut out = vec![0f32; h.len()];
    for (i, nbrs) in adj.iter().enumerate() {
        let o = &mut out[i * d..(i + 1) * d];
        for j in nbrs.iter().copied().chain(std::iter::once(i)) {
            let w = 1.0 / (deg[i] * deg[j]).sqrt();
            for (o, v) in o.iter_mut().zip(&h[j * d..(j + 1) * d]) {
                *o += w * v;
            }
        }
    }
    out
}

/// What building the graph found (for the log).
#[derive(Debug, Clone, PartialEq)]
pub struct GraphSummary {
    /// Nodes (train + test samples).
    pub nodes: usize,
    /// Undirected edges (self-loops not counted).
    pub edges: usize,
    /// Features per node.
    pub features: usize,
    /// Share of training nodes whose neighbours mostly share their class (edge homophily, on
    /// the training labels only).
    pub homophily: f64,
}

/// A built graph: what inference for a node needs (its neighbours' stored features) besides
/// the node's own features.
pub struct NodeGraph {
    /// The nodes' inputs as unit rows (for finding a new node's neighbours).
    pub unit: Tensor<2>,
    /// Symmetric neighbourhoods, without self-loops.
    pub adj: Vec<Vec<usize>>,
    /// Neighbours sought per new node.
    pub k: usize,
    /// Features per node.
    pub d: usize,
    /// `X`, `ÂX`, …, `Â^K X`, each `n × d` row-major.
    pub hops: Vec<Vec<f32>>,
    /// Table inputs are compared standardised (so that no column dominates by its scale): the
    /// columns' mean and standard deviation over the graph's nodes. `None` for images.
    pub standardise: Option<(Vec<f32>, Vec<f32>)>,
}

impl NodeGraph {
    /// Builds the graph over `points` (`n × dp`: what similarity is measured on) with node
    /// features `x` (`n × d`) and `hops` propagation steps.
    #[allow(clippy::too_many_arguments)]
    pub fn build(
        points: &[f32],
        dp: usize,
        x: Vec<f32>,
        d: usize,
        k: usize,
        hops: usize,
        standardise_points: bool,
        device: &Device,
    ) -> NodeGraph {
        let stats = standardise_points.then(|| column_stats(points, dp));
        let unit = match &stats {
            Some(s) => unit_rows(&standardise(points, s), dp, device),
            None => unit_rows(points, dp, device),
        };
        let adj = symmetric(&nearest(&unit, &unit, k, Some(0)));
        let mut groups = vec![x];
        for _ in 0..hops {
            let next = propagate(&adj, groups.last().expect("x"), d);
            groups.push(next);
        }
        NodeGraph {
            unit,
            adj,
            k,
            d,
            hops: groups,
            standardise: stats,
        }
    }

    /// Node `i`'s row: `x`, `hop1`, …, concatenated.
    pub fn row(&self, i: usize, out: &mut Vec<f32>) {
        for g in &self.hops {
            out.extend_from_slice(&g[i * self.d..(i + 1) * self.d]);
        }
    }

    /// Rows of nodes that are not in the graph (inference for new arrivals): each joins the
    /// graph alone, linked to its `k` most similar nodes (on `points`, `q × dp`), and its hops
    /// are propagated from its neighbours' stored hops. What a GNN needs at inference and a
    /// graph-less MLP does not: a similarity search over every node and a gather of their
    /// features. Hop 1 is exact for the graph with the new node added; later hops are an
    /// approximation (the neighbours' stored hops are those of the graph without it), the usual
    /// one for inductive inference with precomputed propagation.
    pub fn rows_for_new(&self, points: &[f32], dp: usize, x: &[f32]) -> Result<Vec<f32>> {
        let q = points.len().checked_div(dp).unwrap_or(0);
        if dp != self.unit.dims()[1] || points.len() != q * dp || x.len() != q * self.d {
            return Err(DistillError::Shape {
                context: "new nodes: similarity inputs, features".into(),
                expected: vec![q, self.unit.dims()[1], q * self.d],
                got: vec![q, dp, x.len()],
                fix: "; give each new node the graph's input size and feature count".into(),
            });
        }
        let queries = match &self.standardise {
            Some(s) => unit_rows(&standardise(points, s), dp, &self.unit.device()),
            None => unit_rows(points, dp, &self.unit.device()),
        };
        let nbrs = nearest(&queries, &self.unit, self.k, None);
        let d = self.d;
        let mut out = Vec::with_capacity(q * d * self.hops.len());
        for (i, nb) in nbrs.iter().enumerate() {
            let deg_i = (nb.len() + 1) as f32;
            let mut own = x[i * d..(i + 1) * d].to_vec();
            out.extend_from_slice(&own);
            for g in 1..self.hops.len() {
                // hop g of the new node: its own hop g-1 and its neighbours' stored hop g-1
                let mut next: Vec<f32> = own.iter().map(|v| v / deg_i).collect();
                for &j in nb {
                    let w = 1.0 / (deg_i * (self.adj[j].len() + 2) as f32).sqrt();
                    for (o, v) in next.iter_mut().zip(&self.hops[g - 1][j * d..(j + 1) * d]) {
                        *o += w * v;
                    }
                }
                out.extend_from_slice(&next);
                own = next;
            }
        }
        Ok(out)
    }

    /// Nodes.
    pub fn len(&self) -> usize {
        self.adj.len()
    }

    /// Whether the graph has no nodes.
    pub fn is_empty(&self) -> bool {
        self.adj.is_empty()
    }
}

/// Builds the graph over the samples of both splits (see the module documentation).
pub fn build_graph(
    train: &Dataset,
    test: &Dataset,
    cfg: &GraphConfig,
    device: &Device,
) -> Result<NodeGraph> {
    cfg.check()?;
    if train.groups.is_some() {
        return Err(DistillError::Config(
            "data.graph builds a graph over single samples; ranking lists (data.group) are not supported".into(),
        ));
    }
    let mut points = node_points(train);
    points.extend(node_points(test));
    let (mut x, d) = node_features(train, cfg.feature_downsample)?;
    x.extend(node_features(test, cfg.feature_downsample)?.0);
    Ok(NodeGraph::build(
        &points,
        train.sample_len(),
        x,
        d,
        cfg.k,
        cfg.hops,
        matches!(train.inputs, Inputs::Table { .. }),
        device,
    ))
}

/// Replaces `train` and `test` by graph tables: columns `x`, `hop1`, …, `hop<K>` for every node
/// of the graph over both splits (see the module documentation). Targets are kept.
pub fn graph_tables(
    train: &Dataset,
    test: &Dataset,
    cfg: &GraphConfig,
    device: &Device,
) -> Result<(Dataset, Dataset, GraphSummary)> {
    if matches!(
        train.inputs,
        Inputs::Tokens { .. } | Inputs::Sequence { .. } | Inputs::Pairs { .. }
    ) {
        return Err(DistillError::Config(
            "[data.graph] links images or table rows by similarity; token windows and series of frames are not supported: remove [data.graph]".into(),
        ));
    }
    let graph = build_graph(train, test, cfg, device)?;
    let (n_train, n) = (train.len(), graph.len());
    let d = graph.d;
    let width = d * graph.hops.len();
    let names: Vec<String> = (0..graph.hops.len())
        .flat_map(|g| {
            let group = if g == 0 {
                "x".to_string()
            } else {
                format!("hop{g}")
            };
            (0..d).map(move |i| format!("{group}={i}"))
        })
        .collect();
    let rows = |range: std::ops::Range<usize>| -> Vec<f32> {
        let mut v = Vec::with_capacity(range.len() * width);
        for i in range {
            graph.row(i, &mut v);
        }
        v
    };
    let table = |src: &Dataset, values: Vec<f32>| Dataset {
        inputs: Inputs::Table {
            values,
            features: width,
            names: names.clone(),
        },
        targets: src.targets.clone(),
        num_classes: src.num_classes,
        groups: None,
    };
    let adj = &graph.adj;
    let homophily = train.labels().map_or(f64::NAN, |labels| {
        let same = (0..n_train)
            .filter(|&i| {
                let nbrs: Vec<usize> = adj[i].iter().copied().filter(|&j| j < n_train).collect();
                let agree = nbrs.iter().filter(|&&j| labels[j] == labels[i]).count();
                2 * agree > nbrs.len()
            })
            .count();
        same as f64 / n_train.max(1) as f64
    });
    let summary = GraphSummary {
        nodes: n,
        edges: adj.iter().map(Vec::len).sum::<usize>() / 2,
        features: d,
        homophily,
    };
    Ok((
        table(train, rows(0..n_train)),
        table(test, rows(n_train..n)),
        summary,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Targets;

    #[test]
    fn knn_finds_the_nearest_other_points() {
        // Two tight clusters on the axes, and one point between them.
        let pts = [
            1.0, 0.0, 0.99, 0.1, 0.98, 0.12, 0.0, 1.0, 0.1, 0.99, 0.7, 0.7,
        ];
        let unit = unit_rows(&pts, 2, &Device::default());
        let nn = nearest(&unit, &unit, 2, Some(0));
        assert_eq!(nn[0], vec![1, 2]);
        assert_eq!(nn[3], vec![4, 5]);
        assert!(nn.iter().enumerate().all(|(i, r)| !r.contains(&i)));
    }

    #[test]
    fn propagation_is_the_normalised_adjacency_product() {
        // A path 0 - 1 - 2: degrees with self-loops 2, 3, 2.
        let adj = symmetric(&[vec![1], vec![2], vec![]]);
        assert_eq!(adj, vec![vec![1], vec![0, 2], vec![1]]);
        let h = [1.0, 0.0, 0.0];
        let out = propagate(&adj, &h, 1);
        let want = [1.0 / 2.0, 1.0 / 6f32.sqrt(), 0.0];
        for (o, w) in out.iter().zip(want) {
            assert!((o - w).abs() < 1e-6, "{out:?}");
        }
    }

    #[test]
    fn graph_tables_hold_features_and_hops_per_node() {
        let img = |n: usize, seed: u8| Dataset {
            inputs: Inputs::Image {
                pixels: (0..n * 16)
                    .map(|i| (i as u8).wrapping_mul(37).wrapping_add(seed))
                    .collect(),
                channels: 1,
                height: 4,
                width: 4,
            },
            targets: Targets::Class((0..n).map(|i| (i % 2) as u8).collect()),
            num_classes: 2,
            groups: None,
        };
        let (train, test) = (img(12, 0), img(5, 3));
        let cfg = GraphConfig {
            k: 3,
            hops: 2,
            feature_downsample: Some(2),
        };
        let (tr, te, s) = graph_tables(&train, &test, &cfg, &Device::default()).unwrap();
        assert_eq!((tr.len(), te.len(), s.nodes, s.features), (12, 5, 17, 4));
        assert_eq!(tr.geometry(), [1, 1, 12]);
        let Inputs::Table { names, values, .. } = &tr.inputs else {
            panic!("a table")
        };
        assert_eq!(
            (names[0].as_str(), names[4].as_str(), names[11].as_str()),
            ("x=0", "hop1=0", "hop2=3")
        );
        // x is the 2×2 block mean of the first image
        let first: Vec<f32> = (0..16u8)
            .map(|i| f32::from(i.wrapping_mul(37)) / 255.0)
            .collect();
        let block = (first[0] + first[1] + first[4] + first[5]) / 4.0;
        assert!((values[0] - block).abs() < 1e-6);
        assert_eq!(tr.labels(), train.labels());
        assert!(s.edges >= 17 * 3 / 2);
        let bad = GraphConfig {
            feature_downsample: Some(3),
            ..cfg
        };
        let e = graph_tables(&train, &test, &bad, &Device::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("must divide"), "{e}");
    }

    #[test]
    fn a_new_node_joins_the_graph_by_its_neighbours() {
        // A path 0 - 1 - 2 of one-feature nodes; a new node closest to 2 and 1.
        let points = [1.0, 0.0, 0.8, 0.6, 0.0, 1.0];
        let g = NodeGraph::build(
            &points,
            2,
            vec![1.0, 2.0, 3.0],
            1,
            1,
            2,
            false,
            &Device::default(),
        );
        assert_eq!(g.adj, vec![vec![1], vec![0, 2], vec![1]]);
        let rows = g.rows_for_new(&[0.1, 1.0], 2, &[4.0]).unwrap();
        assert!(g.rows_for_new(&[0.1, 1.0], 2, &[4.0, 5.0]).is_err());
        // joined to node 2 alone (k = 1): degree 2; node 2 has degree 2 (+1 for the new edge)
        let hop1 = 4.0 / 2.0 + g.hops[0][2] / (2.0f32 * 3.0).sqrt();
        let hop2 = hop1 / 2.0 + g.hops[1][2] / (2.0f32 * 3.0).sqrt();
        assert_eq!(rows.len(), 3);
        assert!(
            (rows[0] - 4.0).abs() < 1e-6
                && (rows[1] - hop1).abs() < 1e-5
                && (rows[2] - hop2).abs() < 1e-5,
            "{rows:?}"
        );
    }
}
