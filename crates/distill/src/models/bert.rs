//! A BERT encoder (post-norm transformer blocks, learned positions, token types) as a sentence
//! encoder: mean pooling over the real tokens, then L2 normalisation, as sentence-transformers'
//! `all-MiniLM-L6-v2` (Reimers & Gurevych, 2019) computes its embeddings. Built from Burn's
//! embedding, multi-head attention, layer norm and linear modules; the names of Hugging Face's
//! `BertModel` map onto it ([`from_pytorch`]), so the real MiniLM imports from its safetensors.
//!
//! As a ranking model it is a bi-encoder: a sample is a (query, passage) pair of token ids laid
//! out as a `[1, 2, L]` map (see [`crate::data::Inputs::Pairs`]), and its one output is the
//! cosine similarity of the two embeddings times [`SCORE_SCALE`]. A `[1, 1, L]` input is a
//! single text; its output is the embedding itself.

use burn::nn::attention::{MhaInput, MultiHeadAttention, MultiHeadAttentionConfig};
use burn::nn::{
    Dropout, DropoutConfig, Embedding, EmbeddingConfig, LayerNorm, LayerNormConfig, Linear,
    LinearConfig,
};
use burn::prelude::*;
use burn::tensor::activation::gelu;
use burn::tensor::DType;

use super::interop::{key_map, KeyMap};
use super::precision::NormF32;
use super::taps::{Feature, Taps};

/// The pair score is `SCORE_SCALE · cos(query, passage)`: the scale sentence-transformers'
/// `MultipleNegativesRankingLoss` and `CoSENTLoss` put on cosine similarities (20), so that a
/// softmax over a list's scores (ListNet) is not flat.
pub const SCORE_SCALE: f64 = 20.0;

/// Hugging Face's `layer_norm_eps` for BERT.
const LAYER_NORM_EPS: f64 = 1e-12;

/// The sizes of a [`Bert`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BertDims {
    /// Vocabulary size (the tokenizer's).
    pub vocab: usize,
    /// Positions it can read (`max_position_embeddings`).
    pub positions: usize,
    /// Hidden width.
    pub dim: usize,
    /// Transformer layers.
    pub layers: usize,
    /// Attention heads (`dim` must be a multiple).
    pub heads: usize,
}

/// One post-norm layer: `h = norm(h + attn(h))`, then `h = norm(h + W₂ gelu(W₁ h))` with a 4×
/// feed-forward width.
#[derive(Module, Debug)]
pub struct BertLayer {
    attn: MultiHeadAttention,
    attn_norm: LayerNorm,
    ffn_in: Linear,
    ffn_out: Linear,
    ffn_norm: LayerNorm,
    dropout: Dropout,
}

impl BertLayer {
    fn new(dim: usize, heads: usize, dropout: f64, device: &Device) -> Self {
        let norm = || {
            LayerNormConfig::new(dim)
                .with_epsilon(LAYER_NORM_EPS)
                .init(device)
        };
        Self {
            attn: MultiHeadAttentionConfig::new(dim, heads)
                .with_dropout(dropout)
                .init(device),
            attn_norm: norm(),
            ffn_in: LinearConfig::new(dim, 4 * dim).init(device),
            ffn_out: LinearConfig::new(4 * dim, dim).init(device),
            ffn_norm: norm(),
            dropout: DropoutConfig::new(dropout).init(),
        }
    }

    /// `h` `[N, L, D]`; `pad` `[N, L]` is true at padding, which no position attends to.
    fn forward(&self, h: Tensor<3>, pad: Tensor<2, Bool>) -> Tensor<3> {
        let a = self
            .attn
            .forward(MhaInput::self_attn(h.clone()).mask_pad(pad))
            .context;
        let h = self.attn_norm.norm(h + self.dropout.forward(a));
        let f = self.ffn_out.forward(gelu(self.ffn_in.forward(h.clone())));
        self.ffn_norm.norm(h + self.dropout.forward(f))
    }
}

/// A BERT sentence encoder (see the module documentation).
#[derive(Module, Debug)]
pub struct Bert {
    word: Embedding,
    position: Embedding,
    token_type: Embedding,
    emb_norm: LayerNorm,
    dropout: Dropout,
    layers: Vec<BertLayer>,
    positions: usize,
}

/// What encoding a batch of texts gives.
#[derive(Debug, Clone)]
pub struct Encoded {
    /// Hidden states after each layer, `[N, L, D]`.
    pub layers: Vec<Tensor<3>>,
    /// 1 at real tokens, 0 at padding, `[N, L]`.
    pub mask: Tensor<2>,
    /// The mean of the last hidden states over the real tokens, `[N, D]` (unnormalised).
    pub pooled: Tensor<2>,
    /// `pooled` scaled to unit length: the sentence embedding.
    pub embedding: Tensor<2>,
}

impl Bert {
    /// A model of the given sizes, dropout on embeddings, attention weights and layer outputs.
    pub fn new(dims: BertDims, dropout: f64, device: &Device) -> Self {
        Self {
            word: EmbeddingConfig::new(dims.vocab, dims.dim).init(device),
            position: EmbeddingConfig::new(dims.positions, dims.dim).init(device),
            token_type: EmbeddingConfig::new(2, dims.dim).init(device),
            emb_norm: LayerNormConfig::new(dims.dim)
                .with_epsilon(LAYER_NORM_EPS)
                .init(device),
            dropout: DropoutConfig::new(dropout).init(),
            layers: (0..dims.layers)
                .map(|_| BertLayer::new(dims.dim, dims.heads, dropout, device))
                .collect(),
            positions: dims.positions,
        }
    }

    /// Positions it can read.
    pub fn positions(&self) -> usize {
        self.positions
    }

    /// Encodes texts of token ids `[N, L]` (0 is padding, as `[PAD]` in BERT's vocabulary;
    /// the real tokens of a text come first).
    pub fn encode(&self, ids: Tensor<2, Int>) -> Encoded {
        let [n, l] = ids.dims();
        let pad = ids.clone().equal_elem(0);
        let mask = pad.clone().bool_not().float();
        let d = self.position.weight.dims()[1];
        let pos = self
            .position
            .weight
            .val()
            .slice([0..l, 0..d])
            .reshape([1, l, d]);
        let types = self
            .token_type
            .weight
            .val()
            .slice([0..1, 0..d])
            .reshape([1, 1, d]);
        let mut h = self
            .dropout
            .forward(self.emb_norm.norm(self.word.forward(ids) + pos + types));
        let mut layers = Vec::with_capacity(self.layers.len());
        for layer in &self.layers {
            h = layer.forward(h, pad.clone());
            layers.push(h.clone());
        }
        // pooled and normalised in f32 at every precision (see `models::precision`): a count
        // of up to 512 positions, and a norm floor of 1e-12, are beyond bf16 and f16
        let w = mask.clone().reshape([n, l, 1]);
        let count = mask.clone().sum_dim(1).clamp_min(1.0);
        let pooled = (h.cast(DType::F32) * w).sum_dim(1).reshape([n, d]) / count;
        // sentence-transformers' Normalize: x / max(‖x‖₂, 1e-12)
        let norm = pooled
            .clone()
            .powi_scalar(2)
            .sum_dim(1)
            .sqrt()
            .clamp_min(1e-12);
        let embedding = pooled.clone() / norm;
        Encoded {
            layers,
            mask,
            pooled,
            embedding,
        }
    }

    /// Forward pass over `[B, 1, 2, L]` (query, passage) pairs or `[B, 1, 1, L]` texts of
    /// token ids (`L` at most the positions).
    ///
    /// Taps of a pair: `layer{i}` (the passage's hidden states after layer `i`, `[B, L, D]`,
    /// masked), `hidden` (the last of them), `embedding` (the passage embedding, `[B, D]`),
    /// `query` (the query embedding); logits `[B, 1]`, the scaled cosine similarity. Of a
    /// single text: the same taps of the text, and the embedding as the logits.
    pub fn forward(&self, x: Tensor<4>) -> Taps {
        let [b, c, s, l] = x.dims();
        assert!(
            c == 1 && (s == 1 || s == 2) && l <= self.positions,
            "a BERT encoder reads [B, 1, 1 or 2, L ≤ {}] token ids, got {:?} (checked when the model was built)",
            self.positions,
            [b, c, s, l]
        );
        let ids = x.int();
        let segment = |k: usize| {
            ids.clone()
                .slice([0..b, 0..1, k..k + 1, 0..l])
                .reshape([b, l])
        };
        let text = self.encode(segment(s - 1));
        let mut features: Vec<(String, Feature)> = text
            .layers
            .iter()
            .enumerate()
            .map(|(i, h)| {
                (
                    format!("layer{}", i + 1),
                    Feature::Seq {
                        x: h.clone(),
                        mask: Some(text.mask.clone()),
                    },
                )
            })
            .collect();
        if let Some(last) = text.layers.last() {
            features.push((
                "hidden".into(),
                Feature::Seq {
                    x: last.clone(),
                    mask: Some(text.mask.clone()),
                },
            ));
        }
        features.push(("embedding".into(), Feature::Flat(text.embedding.clone())));
        if s == 1 {
            return Taps {
                logits: text.embedding,
                features,
            };
        }
        // The query: only as many positions as the batch's longest query has (queries are
        // short; the padding after them changes nothing but costs time).
        let query_ids = segment(0);
        let longest = query_ids
            .clone()
            .not_equal_elem(0)
            .int()
            .sum_dim(1)
            .max()
            .into_scalar::<i64>()
            .max(1) as usize;
        let query = self.encode(query_ids.slice([0..b, 0..longest]));
        let score = (query.embedding.clone() * text.embedding)
            .sum_dim(1)
            .mul_scalar(SCORE_SCALE);
        features.push(("query".into(), Feature::Flat(query.embedding)));
        Taps {
            logits: score,
            features,
        }
    }
}

/// Hugging Face `BertModel` names → this model's, applied in order on import.
pub fn from_pytorch() -> KeyMap {
    key_map(&[
        (r"^embeddings\.word_embeddings\.", "word."),
        (r"^embeddings\.position_embeddings\.", "position."),
        (r"^embeddings\.token_type_embeddings\.", "token_type."),
        (r"^embeddings\.LayerNorm\.", "emb_norm."),
        (
            r"^encoder\.layer\.([0-9]+)\.attention\.self\.(query|key|value)\.",
            "layers.$1.attn.$2.",
        ),
        (
            r"^encoder\.layer\.([0-9]+)\.attention\.output\.dense\.",
            "layers.$1.attn.output.",
        ),
        (
            r"^encoder\.layer\.([0-9]+)\.attention\.output\.LayerNorm\.",
            "layers.$1.attn_norm.",
        ),
        (
            r"^encoder\.layer\.([0-9]+)\.intermediate\.dense\.",
            "layers.$1.ffn_in.",
        ),
        (
            r"^encoder\.layer\.([0-9]+)\.output\.dense\.",
            "layers.$1.ffn_out.",
        ),
        (
            r"^encoder\.layer\.([0-9]+)\.output\.LayerNorm\.",
            "layers.$1.ffn_norm.",
        ),
    ])
}

/// The inverse of [`from_pytorch`], applied in order on export.
pub fn to_pytorch() -> KeyMap {
    key_map(&[
        (r"^word\.", "embeddings.word_embeddings."),
        (r"^position\.", "embeddings.position_embeddings."),
        (r"^token_type\.", "embeddings.token_type_embeddings."),
        (r"^emb_norm\.", "embeddings.LayerNorm."),
        (
            r"^layers\.([0-9]+)\.attn\.(query|key|value)\.",
            "encoder.layer.$1.attention.self.$2.",
        ),
        (
            r"^layers\.([0-9]+)\.attn\.output\.",
            "encoder.layer.$1.attention.output.dense.",
        ),
        (
            r"^layers\.([0-9]+)\.attn_norm\.",
            "encoder.layer.$1.attention.output.LayerNorm.",
        ),
        (
            r"^layers\.([0-9]+)\.ffn_in\.",
            "encoder.layer.$1.intermediate.dense.",
        ),
        (
            r"^layers\.([0-9]+)\.ffn_out\.",
            "encoder.layer.$1.output.dense.",
        ),
        (
            r"^layers\.([0-9]+)\.ffn_norm\.",
            "encoder.layer.$1.output.LayerNorm.",
        ),
    ])
}

/// Tensors of a Hugging Face BERT file that a sentence encoder has no use for: the position-id
/// and token-type-id buffers (older transformers saved them) and the `[CLS]` pooler (sentence-transformers pools by the mean instead).
pub fn unused_by_encoder(name: &str) -> bool {
    name == "embeddings.position_ids"
        || name == "embeddings.token_type_ids"
        || name.starts_with("pooler.")
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::*;
    use crate::data::retrieval::PairTokenizer;
    use crate::knowledge::testing::max_diff;
    use crate::models::interop::{export_safetensors, import_weights};
    use crate::models::{ModelConfig, Net};

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/bert")
            .join(name)
    }

    fn json(path: &Path) -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
    }

    fn floats(v: &serde_json::Value) -> Vec<f32> {
        v.as_array()
            .unwrap()
            .iter()
            .flat_map(|x| match x.as_array() {
                Some(row) => row.iter().map(|y| y.as_f64().unwrap() as f32).collect(),
                None => vec![x.as_f64().unwrap() as f32],
            })
            .collect()
    }

    /// The embedding of each text of `ids`, encoded one at a time (as the fixtures are).
    fn embeddings(net: &Net, ids: &[Vec<u32>], dev: &Device) -> Vec<Vec<f32>> {
        let Net::Bert(bert) = net else { panic!() };
        ids.iter()
            .map(|t| {
                let x: Vec<i64> = t.iter().map(|&i| i64::from(i)).collect();
                let ids = Tensor::<1, Int>::from_ints(x.as_slice(), dev).reshape([1, t.len()]);
                bert.encode(ids)
                    .embedding
                    .into_data()
                    .iter::<f32>()
                    .collect()
            })
            .collect()
    }

    fn token_ids(fx: &serde_json::Value) -> Vec<Vec<u32>> {
        fx["token_ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                t.as_array()
                    .unwrap()
                    .iter()
                    .map(|i| i.as_u64().unwrap() as u32)
                    .collect()
            })
            .collect()
    }

    /// Tokenizes the fixture's sentences as sentence-transformers did, then checks the model's
    /// sentence embeddings against theirs.
    fn check_parity(config: &ModelConfig, weights: &Path, fx: &serde_json::Value) {
        let dev = Device::flex();
        let max_len = fx["max_seq_length"].as_u64().unwrap() as usize;
        let tok = PairTokenizer::from_file(&fixture("tokenizer.json"), max_len).unwrap();
        let want_ids = token_ids(fx);
        for (s, want) in fx["sentences"].as_array().unwrap().iter().zip(&want_ids) {
            assert_eq!(&tok.encode(s.as_str().unwrap()).unwrap(), want, "{s}");
        }
        let net = config.build([1, 1, max_len], 1, &dev).unwrap().valid();
        let net = import_weights(net, config, weights).unwrap();
        let got = embeddings(&net, &want_ids, &dev);
        for (g, w) in got.iter().zip(fx["embeddings"].as_array().unwrap()) {
            let d = max_diff(g, &floats(w));
            assert!(d < 1e-4, "max |difference| {d}");
        }
    }

    fn tiny() -> ModelConfig {
        ModelConfig::Bert {
            dim: Some(8),
            layers: Some(2),
            heads: Some(2),
            dropout: None,
            vocab: None,
            positions: Some(64),
        }
    }

    #[test]
    fn sentence_embeddings_match_sentence_transformers() {
        let fx = json(&fixture("embeddings.json"));
        check_parity(&tiny(), &fixture("model.safetensors"), &fx);
        // and the last hidden states of the first sentence, position by position
        let dev = Device::flex();
        let net = tiny().build([1, 1, 32], 1, &dev).unwrap().valid();
        let net = import_weights(net, &tiny(), &fixture("model.safetensors")).unwrap();
        let Net::Bert(bert) = &net else { panic!() };
        let first: Vec<i64> = token_ids(&fx)[0].iter().map(|&i| i64::from(i)).collect();
        let ids = Tensor::<1, Int>::from_ints(first.as_slice(), &dev).reshape([1, first.len()]);
        let hidden: Vec<f32> = bert.encode(ids).layers[1]
            .clone()
            .into_data()
            .iter::<f32>()
            .collect();
        let want = floats(&fx["last_hidden_state_0"]["data"]);
        assert!(max_diff(&hidden, &want) < 1e-4);
    }

    /// The real all-MiniLM-L6-v2 (`scripts/fetch-data.sh minilm`), where it is installed.
    #[test]
    fn minilm_matches_sentence_transformers_where_installed() {
        let weights = Path::new("/usr/share/datasets/all-minilm-l6-v2/model.safetensors");
        if !weights.is_file() {
            eprintln!("skipped: {} is not installed", weights.display());
            return;
        }
        let fx = json(&fixture("minilm.json"));
        check_parity(&ModelConfig::named("bert").unwrap(), weights, &fx);
    }

    #[test]
    fn padded_batches_and_pair_scores_agree_with_single_texts() {
        let dev = Device::flex();
        let fx = json(&fixture("embeddings.json"));
        let net = tiny().build([1, 2, 32], 1, &dev).unwrap().valid();
        let net = import_weights(net, &tiny(), &fixture("model.safetensors")).unwrap();
        let ids = token_ids(&fx);
        let single = embeddings(&net, &ids, &dev);
        // pairs (sentence 0, sentence k), padded with 0 to 32
        let pad = |t: &Vec<u32>| -> Vec<f32> {
            let mut v: Vec<f32> = t.iter().map(|&i| i as f32).collect();
            v.resize(32, 0.0);
            v
        };
        let x: Vec<f32> = (1..ids.len())
            .flat_map(|k| [pad(&ids[0]), pad(&ids[k])].concat())
            .collect();
        let n = ids.len() - 1;
        let taps = net.forward(Tensor::<4>::from_data(
            burn::tensor::TensorData::new(x, [n, 1, 2, 32]),
            &dev,
        ));
        let scores: Vec<f32> = taps.logits.into_data().iter::<f32>().collect();
        for k in 1..ids.len() {
            let cos: f32 = single[0].iter().zip(&single[k]).map(|(a, b)| a * b).sum();
            let want = cos * SCORE_SCALE as f32;
            assert!(
                (scores[k - 1] - want).abs() < 1e-4,
                "{} vs {want}",
                scores[k - 1]
            );
        }
    }

    #[test]
    fn export_writes_hugging_face_names_and_round_trips() {
        let dev = Device::flex();
        let net = tiny().build([1, 2, 32], 1, &dev).unwrap().valid();
        let net = import_weights(net, &tiny(), &fixture("model.safetensors")).unwrap();
        let bytes = export_safetensors(&net, &tiny()).unwrap();
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        let file = std::fs::read(fixture("model.safetensors")).unwrap();
        let original = safetensors::SafeTensors::deserialize(&file).unwrap();
        let mut names: Vec<String> = st.names().into_iter().map(str::to_string).collect();
        names.sort();
        let mut want: Vec<String> = original
            .names()
            .into_iter()
            .filter(|n| !unused_by_encoder(n))
            .map(str::to_string)
            .collect();
        want.sort();
        assert_eq!(names, want);
        for n in &names {
            assert_eq!(
                st.tensor(n).unwrap().data(),
                original.tensor(n).unwrap().data(),
                "{n}"
            );
        }
    }
}
