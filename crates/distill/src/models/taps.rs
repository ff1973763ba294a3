//! Named intermediate outputs ("taps") returned by every model alongside its logits.

use burn::prelude::*;

/// One tapped tensor: a flat vector per sample or a feature map per sample.
#[derive(Debug, Clone)]
pub enum Feature {
    /// `[batch, features]`.
    Flat(Tensor<2>),
    /// `[batch, channels, height, width]`.
    Map(Tensor<4>),
}

impl Feature {
    /// The tensor's shape.
    pub fn shape(&self) -> Vec<usize> {
        match self {
            Feature::Flat(t) => t.dims().to_vec(),
            Feature::Map(t) => t.dims().to_vec(),
        }
    }

    /// The feature flattened to `[batch, rest]`.
    pub fn flat(&self) -> Tensor<2> {
        match self {
            Feature::Flat(t) => t.clone(),
            Feature::Map(t) => t.clone().flatten(1, 3),
        }
    }

    /// The feature map of a tap that was checked to be one when the method was built.
    pub fn into_map(self) -> Tensor<4> {
        match self {
            Feature::Map(m) => m,
            Feature::Flat(t) => panic!(
                "tap {:?} is flat where a feature map was checked at build time",
                t.dims()
            ),
        }
    }

    /// Detached copy (no gradient flows back through it).
    pub fn detach(&self) -> Feature {
        match self {
            Feature::Flat(t) => Feature::Flat(t.clone().detach()),
            Feature::Map(t) => Feature::Map(t.clone().detach()),
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
