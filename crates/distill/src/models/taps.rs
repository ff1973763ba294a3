//! Named intermediate outputs ("taps") returned by every model alongside its logits.

use burn::prelude::*;

/// One tapped tensor: a flat vector, a feature map, or a sequence of vectors per sample.
// A handful live per step, so the larger sequence variant costs nothing worth boxing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Feature {
    /// `[batch, features]`.
    Flat(Tensor<2>),
    /// `[batch, channels, height, width]`.
    Map(Tensor<4>),
    /// `[batch, length, features]` with an optional `[batch, length]` mask (1 at real
    /// positions, 0 at padding) when a batch holds sequences of different lengths.
    Seq {
        /// The vectors.
        x: Tensor<3>,
        /// Which positions hold a real element (`None`: all of them).
        mask: Option<Tensor<2>>,
    },
}

impl Feature {
    /// The tensor's shape.
    pub fn shape(&self) -> Vec<usize> {
        match self {
            Feature::Flat(t) => t.dims().to_vec(),
            Feature::Map(t) => t.dims().to_vec(),
            Feature::Seq { x, .. } => x.dims().to_vec(),
        }
    }

    /// The feature flattened to `[batch, rest]` (a sequence's padding positions included; see
    /// [`Self::pooled`] for one vector per sequence).
    pub fn flat(&self) -> Tensor<2> {
        match self {
            Feature::Flat(t) => t.clone(),
            Feature::Map(t) => t.clone().flatten(1, 3),
            Feature::Seq { x, .. } => x.clone().flatten(1, 2),
        }
    }

    /// One vector per sample: a sequence's mean over its real positions (`[batch, features]`);
    /// other features as [`Self::flat`]. A sequence is averaged in f32 and the mean returned in
    /// its dtype (a count of positions beyond 256 is not exact in bf16; see `models::precision`).
    pub fn pooled(&self) -> Tensor<2> {
        let f32 = burn::tensor::DType::F32;
        match self {
            Feature::Seq { x, mask: None } => x
                .clone()
                .cast(f32)
                .mean_dim(1)
                .squeeze_dim::<2>(1)
                .cast(x.dtype()),
            Feature::Seq { x, mask: Some(m) } => {
                let [b, l] = m.dims();
                let m = m.clone().cast(f32);
                let w = m.clone().reshape([b, l, 1]);
                let sum = (x.clone().cast(f32) * w).sum_dim(1).squeeze_dim::<2>(1);
                let count = m.sum_dim(1).clamp_min(1.0);
                (sum / count).cast(x.dtype())
            }
            other => other.flat(),
        }
    }

    /// The feature map of a tap that was checked to be one when the method was built.
    pub fn into_map(self) -> Tensor<4> {
        match self {
            Feature::Map(m) => m,
            other => panic!(
                "tap {:?} is not a feature map where one was checked at build time",
                other.shape()
            ),
        }
    }

    /// Detached copy (no gradient flows back through it).
    pub fn detach(&self) -> Feature {
        match self {
            Feature::Flat(t) => Feature::Flat(t.clone().detach()),
            Feature::Map(t) => Feature::Map(t.clone().detach()),
            Feature::Seq { x, mask } => Feature::Seq {
                x: x.clone().detach(),
                mask: mask.clone(),
            },
        }
    }
}

/// What a model's forward pass returns: logits plus named features in network order.
#[derive(Debug, Clone)]
pub struct Taps {
    /// Class scores, `[batch, classes]`.
    pub logits: Tensor<2>,
    /// Named features, shallow to deep.
    pub features: Vec<(String, Feature)>,
}

impl Taps {
    /// The tail the image classifiers share: the map `h` averaged over its positions becomes
    /// the `embedding` tap (appended to `features`), and `head` of it the logits.
    pub fn pooled(
        h: Tensor<4>,
        mut features: Vec<(String, Feature)>,
        head: impl FnOnce(Tensor<2>) -> Tensor<2>,
    ) -> Taps {
        let [b, c, _, _] = h.dims();
        let pooled: Tensor<2> = h.mean_dims(&[2, 3]).reshape([b, c]);
        features.push(("embedding".into(), Feature::Flat(pooled.clone())));
        Taps {
            logits: head(pooled),
            features,
        }
    }
}

impl Taps {
    /// A tap by name; `"logits"` names the logits.
    pub fn get(&self, name: &str) -> Option<Feature> {
        if name == "logits" {
            return Some(Feature::Flat(self.logits.clone()));
        }
        self.features
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, f)| f.clone())
    }

    /// Names of all taps, `"logits"` last.
    pub fn names(&self) -> Vec<String> {
        self.features
            .iter()
            .map(|(n, _)| n.clone())
            .chain(std::iter::once("logits".to_string()))
            .collect()
    }

    /// Shapes of all taps, by name, `"logits"` last.
    pub fn shapes(&self) -> Vec<(String, Vec<usize>)> {
        self.features
            .iter()
            .map(|(n, f)| (n.clone(), f.shape()))
            .chain(std::iter::once((
                "logits".to_string(),
                self.logits.dims().to_vec(),
            )))
            .collect()
    }

    /// Copy with every tensor detached.
    pub fn detach(&self) -> Taps {
        Taps {
            logits: self.logits.clone().detach(),
            features: self
                .features
                .iter()
                .map(|(n, f)| (n.clone(), f.detach()))
                .collect(),
        }
    }
}

/// Shapes of a model's taps, computed once from a probe forward pass (batch dimension included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TapShapes(pub Vec<(String, Vec<usize>)>);

impl TapShapes {
    /// The shape of a tap, with the batch dimension.
    pub fn get(&self, name: &str) -> Option<&[usize]> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, s)| s.as_slice())
    }

    /// All tap names.
    pub fn names(&self) -> Vec<&str> {
        self.0.iter().map(|(n, _)| n.as_str()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sequence_pools_over_its_real_positions_only() {
        let dev = Device::flex();
        // two sequences of length 3, features 2; the second has one padding position
        let x = Tensor::<3>::from_floats(
            [
                [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]],
                [[1.0, 1.0], [3.0, 3.0], [100.0, 100.0]],
            ],
            &dev,
        );
        let mask = Tensor::<2>::from_floats([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]], &dev);
        let f = Feature::Seq {
            x: x.clone(),
            mask: Some(mask),
        };
        assert_eq!(f.shape(), vec![2, 3, 2]);
        assert_eq!(f.flat().dims(), [2, 6]);
        let p: Vec<f32> = f.pooled().into_data().iter::<f32>().collect();
        assert_eq!(p, vec![3.0, 4.0, 2.0, 2.0]);
        let unmasked: Vec<f32> = Feature::Seq { x, mask: None }
            .pooled()
            .into_data()
            .iter::<f32>()
            .collect();
        assert_eq!(&unmasked[..2], &[3.0, 4.0]);
    }
}
