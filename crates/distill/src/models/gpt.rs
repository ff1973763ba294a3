//! A decoder-only transformer language model (GPT-2 layout, pre-norm), built from Burn's
//! embedding, multi-head attention, layer norm and linear modules, with KV-cached incremental
//! decoding.

use burn::nn::attention::MultiHeadAttentionConfig;
use burn::nn::attention::{generate_autoregressive_mask, MhaInput, MultiHeadAttention};
use burn::nn::{
    Dropout, DropoutConfig, Embedding, EmbeddingConfig, LayerNorm, LayerNormConfig, Linear,
    LinearConfig,
};
use burn::prelude::*;
use burn::tensor::activation::{gelu, softmax};

use super::precision::NormF32;
use super::taps::{Feature, Taps};

/// The sizes of a [`Gpt`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GptDims {
    /// Vocabulary size (the output classes).
    pub vocab: usize,
    /// Positions the model can read (its context).
    pub context: usize,
    /// Width of the hidden states.
    pub dim: usize,
    /// Transformer blocks.
    pub layers: usize,
    /// Attention heads per block (`dim` must be a multiple).
    pub heads: usize,
}

/// One pre-norm block: `h + attn(ln1(h))`, then `h + mlp(ln2(h))` with a 4× GELU MLP.
#[derive(Module, Debug)]
pub struct Block {
    ln1: LayerNorm,
    attn: MultiHeadAttention,
    ln2: LayerNorm,
    fc1: Linear,
    fc2: Linear,
    dropout: Dropout,
}

impl Block {
    fn new(dim: usize, heads: usize, dropout: f64, device: &Device) -> Self {
        Self {
            ln1: LayerNormConfig::new(dim).init(device),
            attn: MultiHeadAttentionConfig::new(dim, heads)
                .with_dropout(dropout)
                .init(device),
            ln2: LayerNormConfig::new(dim).init(device),
            fc1: LinearConfig::new(dim, 4 * dim).init(device),
            fc2: LinearConfig::new(4 * dim, dim).init(device),
            dropout: DropoutConfig::new(dropout).init(),
        }
    }

    fn mlp(&self, h: Tensor<3>) -> Tensor<3> {
        self.dropout
            .forward(self.fc2.forward(gelu(self.fc1.forward(self.ln2.norm(h)))))
    }

    /// Full-sequence forward under the causal mask: the block's output and attention weights
    /// `[B, heads, L, L]`.
    fn forward(&self, h: Tensor<3>, mask: Tensor<3, Bool>) -> (Tensor<3>, Tensor<4>) {
        let out = self
            .attn
            .forward(MhaInput::self_attn(self.ln1.norm(h.clone())).mask_attn(mask));
        let h = h + self.dropout.forward(out.context);
        (h.clone() + self.mlp(h), out.weights)
    }

    /// Forward of the newest positions `h` `[B, n, D]`, attending to the cached keys and values
    /// of the earlier positions (which it extends).
    fn forward_cached(&self, h: Tensor<3>, cache: &mut KvCache) -> Tensor<3> {
        let [b, n, d] = h.dims();
        let heads = self.attn.n_heads;
        let dk = d / heads;
        let x = self.ln1.norm(h.clone());
        let split = |t: Tensor<3>| t.reshape([b, n, heads, dk]).swap_dims(1, 2);
        let q = split(self.attn.query.forward(x.clone()));
        let k = split(self.attn.key.forward(x.clone()));
        let v = split(self.attn.value.forward(x));
        let (k, v) = match cache.kv.take() {
            Some((k0, v0)) => (Tensor::cat(vec![k0, k], 2), Tensor::cat(vec![v0, v], 2)),
            None => (k, v),
        };
        cache.kv = Some((k.clone(), v.clone()));
        let past = k.dims()[2] - n;
        let mut scores = q.matmul(k.swap_dims(2, 3)).div_scalar((dk as f64).sqrt());
        if n > 1 {
            // the new positions among themselves are causal too
            let total = past + n;
            let mask = Tensor::<2, Bool>::tril_mask([total, total], 0, &scores.device())
                .slice([past..total, 0..total])
                .reshape([1, 1, n, total]);
            scores = scores.mask_fill(mask.expand([b, heads, n, total]), self.attn.min_float);
        }
        let context = softmax(scores, 3)
            .matmul(v)
            .swap_dims(1, 2)
            .reshape([b, n, d]);
        let h = h + self.attn.output.forward(context);
        h.clone() + self.mlp(h)
    }
}

/// The cached keys and values of one block, `[B, heads, t, D / heads]` each.
#[derive(Debug, Default)]
pub struct KvCache {
    kv: Option<(Tensor<4>, Tensor<4>)>,
}

/// Decoder-only transformer language model.
///
/// Reads a window of token ids as a `[B, 1, 1, L]` map (see
/// [`crate::data::Inputs::Tokens`]). Taps: `block{i}` (hidden states after block `i`,
/// `[B, L, D]`), `attn{i}` (attention weights, `[B, heads, L, L]`), `hidden` (after the final
/// norm), `embedding` (the mean of `hidden` over the window, `[B, D]`) and `logits` with one
/// row per position, `[B · L, vocab]` (row `b · L + l`: the next-token scores after position
/// `l` of window `b`).
#[derive(Module, Debug)]
pub struct Gpt {
    tok: Embedding,
    pos: Embedding,
    drop: Dropout,
    blocks: Vec<Block>,
    ln_f: LayerNorm,
    head: Linear,
    vocab: usize,
    context: usize,
}

impl Gpt {
    /// A model of the given sizes, dropout `dropout` on embeddings, attention and MLP outputs.
    pub fn new(dims: GptDims, dropout: f64, device: &Device) -> Self {
        let GptDims {
            vocab,
            context,
            dim,
            layers,
            heads,
        } = dims;
        Self {
            tok: EmbeddingConfig::new(vocab, dim).init(device),
            pos: EmbeddingConfig::new(context, dim).init(device),
            drop: DropoutConfig::new(dropout).init(),
            blocks: (0..layers)
                .map(|_| Block::new(dim, heads, dropout, device))
                .collect(),
            ln_f: LayerNormConfig::new(dim).init(device),
            head: LinearConfig::new(dim, vocab).init(device),
            vocab,
            context,
        }
    }

    /// Positions the model can read.
    pub fn context(&self) -> usize {
        self.context
    }

    /// Vocabulary size.
    pub fn vocab(&self) -> usize {
        self.vocab
    }

    /// Token plus position embeddings of ids `[B, n]` at positions `start..start + n`.
    fn embed(&self, ids: Tensor<2, Int>, start: usize) -> Tensor<3> {
        let [_, n] = ids.dims();
        let d = self.pos.weight.dims()[1];
        let pos = self
            .pos
            .weight
            .val()
            .slice([start..start + n, 0..d])
            .reshape([1, n, d]);
        self.drop.forward(self.tok.forward(ids) + pos)
    }

    /// Forward pass over windows of token ids `[B, 1, 1, L]` (`L` at most the context).
    pub fn forward(&self, x: Tensor<4>) -> Taps {
        let [b, c, h, l] = x.dims();
        assert!(
            c == 1 && h == 1 && l <= self.context,
            "a language model reads [B, 1, 1, L ≤ {}] token windows, got {:?} (checked when the model was built)",
            self.context,
            [b, c, h, l]
        );
        let ids = x.reshape([b, l]).int();
        let device = ids.device();
        let mut hs = self.embed(ids, 0);
        let mask = generate_autoregressive_mask(b, l, &device);
        let mut features = Vec::with_capacity(2 * self.blocks.len() + 2);
        for (i, block) in self.blocks.iter().enumerate() {
            let (out, weights) = block.forward(hs, mask.clone());
            features.push((
                format!("block{}", i + 1),
                Feature::Seq {
                    x: out.clone(),
                    mask: None,
                },
            ));
            features.push((format!("attn{}", i + 1), Feature::Map(weights)));
            hs = out;
        }
        let hs = self.ln_f.norm(hs);
        let d = hs.dims()[2];
        features.push((
            "hidden".into(),
            Feature::Seq {
                x: hs.clone(),
                mask: None,
            },
        ));
        features.push((
            "embedding".into(),
            Feature::Flat(hs.clone().mean_dim(1).reshape([b, d])),
        ));
        Taps {
            logits: self.head.forward(hs).reshape([b * l, self.vocab]),
            features,
        }
    }

    /// Empty key/value caches, one per block, for [`Self::forward_cached`].
    pub fn new_cache(&self) -> Vec<KvCache> {
        self.blocks.iter().map(|_| KvCache::default()).collect()
    }

    /// Next-token logits `[B, n, vocab]` of the newest tokens `ids` `[B, n]`, which follow the
    /// `start` tokens the caches already hold (incremental decoding: each step computes only the
    /// new positions). `start + n` must not exceed the context.
    pub fn forward_cached(
        &self,
        ids: Tensor<2, Int>,
        start: usize,
        caches: &mut [KvCache],
    ) -> Tensor<3> {
        let mut hs = self.embed(ids, start);
        for (block, cache) in self.blocks.iter().zip(caches.iter_mut()) {
            hs = block.forward_cached(hs, cache);
        }
        self.head.forward(self.ln_f.norm(hs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny(device: &Device) -> Gpt {
        Gpt::new(
            GptDims {
                vocab: 11,
                context: 6,
                dim: 8,
                layers: 2,
                heads: 2,
            },
            0.0,
            device,
        )
    }

    #[test]
    fn taps_have_one_logit_row_per_position_and_are_causal() {
        let dev = Device::flex();
        let gpt = tiny(&dev);
        let ids = [
            [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0],
            [6.0, 5.0, 4.0, 3.0, 2.0, 1.0],
        ];
        let x = Tensor::<2>::from_floats(ids, &dev).reshape([2, 1, 1, 6]);
        let taps = gpt.forward(x.clone());
        assert_eq!(taps.logits.dims(), [12, 11]);
        assert_eq!(taps.get("block2").unwrap().shape(), vec![2, 6, 8]);
        assert_eq!(taps.get("attn1").unwrap().shape(), vec![2, 2, 6, 6]);
        assert_eq!(taps.get("embedding").unwrap().shape(), vec![2, 8]);
        // changing the last token changes no earlier position's logits
        let mut changed = ids;
        changed[0][5] = 9.0;
        let other = gpt.forward(Tensor::<2>::from_floats(changed, &dev).reshape([2, 1, 1, 6]));
        let a: Vec<f32> = taps.logits.into_data().iter::<f32>().collect();
        let b: Vec<f32> = other.logits.into_data().iter::<f32>().collect();
        assert_eq!(a[..5 * 11], b[..5 * 11]);
        assert_ne!(a[5 * 11..6 * 11], b[5 * 11..6 * 11]);
    }

    #[test]
    fn cached_decoding_matches_the_full_forward_pass() {
        let dev = Device::flex();
        let gpt = tiny(&dev);
        let ids: Vec<i64> = vec![3, 1, 4, 1, 5, 9];
        let full = gpt
            .forward(
                Tensor::<1>::from_floats(
                    ids.iter().map(|&i| i as f32).collect::<Vec<_>>().as_slice(),
                    &dev,
                )
                .reshape([1, 1, 1, 6]),
            )
            .logits;
        let full: Vec<f32> = full.into_data().iter::<f32>().collect();
        // a 2-token prompt, then one token at a time
        let mut caches = gpt.new_cache();
        let prompt = Tensor::<1, Int>::from_ints(&ids[..2], &dev).reshape([1, 2]);
        let mut got: Vec<f32> = gpt
            .forward_cached(prompt, 0, &mut caches)
            .into_data()
            .iter::<f32>()
            .collect();
        for (p, &id) in ids.iter().enumerate().skip(2) {
            let step = Tensor::<1, Int>::from_ints([id], &dev).reshape([1, 1]);
            got.extend(
                gpt.forward_cached(step, p, &mut caches)
                    .into_data()
                    .iter::<f32>(),
            );
        }
        assert_eq!(got.len(), full.len());
        for (a, b) in got.iter().zip(&full) {
            assert!((a - b).abs() < 1e-4, "{a} vs {b}");
        }
    }
}
