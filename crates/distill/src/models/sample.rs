//! Sampling text from a language model: temperature, top-k and nucleus (top-p) filtering over
//! KV-cached incremental decoding.

use burn::prelude::*;
use rand::{Rng, SeedableRng};

use super::gpt::Gpt;
use crate::error::{DistillError, Result};

/// How to sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sampling {
    /// Softmax temperature (0: greedy, always the most likely token).
    pub temperature: f64,
    /// Keep only the `k` most likely tokens (0: all).
    pub top_k: usize,
    /// Keep the smallest set of most likely tokens whose probability reaches `p` (1: all).
    pub top_p: f64,
    /// Tokens to generate.
    pub max_tokens: usize,
    /// Seed of the draws.
    pub seed: u64,
}

impl Default for Sampling {
    fn default() -> Self {
        Self {
            temperature: 1.0,
            top_k: 0,
            top_p: 1.0,
            max_tokens: 64,
            seed: 0,
        }
    }
}

impl Sampling {
    /// Checks the settings.
    pub fn check(&self) -> Result<()> {
        if !(self.temperature.is_finite() && self.temperature >= 0.0) {
            return Err(DistillError::Config(format!(
                "temperature must be ≥ 0 (0 is greedy), got {}",
                self.temperature
            )));
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return Err(DistillError::Config(format!(
                "top_p must be in (0, 1], got {}",
                self.top_p
            )));
        }
        Ok(())
    }
}

/// Draws a token from next-token logits after temperature, top-k and top-p filtering.
pub fn draw(logits: &[f32], s: &Sampling, rng: &mut impl Rng) -> usize {
    let mut order = crate::tasks::generation::ranked(logits);
    if s.temperature == 0.0 {
        return order[0];
    }
    let keep = if s.top_k == 0 {
        order.len()
    } else {
        s.top_k.min(order.len())
    };
    order.truncate(keep);
    let top = logits[order[0]] as f64;
    let mut probs: Vec<f64> = order
        .iter()
        .map(|&i| ((logits[i] as f64 - top) / s.temperature).exp())
        .collect();
    let total: f64 = probs.iter().sum();
    probs.iter_mut().for_each(|p| *p /= total);
    if s.top_p < 1.0 {
        let mut mass = 0.0;
        let cut = probs
            .iter()
            .position(|p| {
                mass += p;
                mass >= s.top_p
            })
            .map_or(probs.len(), |i| i + 1);
        probs.truncate(cut);
        order.truncate(cut);
        let kept: f64 = probs.iter().sum();
        probs.iter_mut().for_each(|p| *p /= kept);
    }
    let mut u: f64 = rng.random();
    for (i, p) in probs.iter().enumerate() {
        if u < *p {
            return order[i];
        }
        u -= p;
    }
    order[probs.len() - 1]
}

/// Continues `prompt` with up to `s.max_tokens` sampled tokens (returned without the prompt).
/// The prompt and the continuation must fit the model's context: a longer request is an error,
/// not a silent crop.
pub fn generate(gpt: &Gpt, prompt: &[u32], s: &Sampling, device: &Device) -> Result<Vec<u32>> {
    s.check()?;
    if prompt.is_empty() {
        return Err(DistillError::Config(
            "the prompt is empty; give at least one token of text to continue".into(),
        ));
    }
    let context = gpt.context();
    // the model reads the prompt and every sampled token but the last
    if prompt.len() + s.max_tokens > context + 1 {
        return Err(DistillError::Config(format!(
            "the prompt ({} tokens) and max_tokens ({}) exceed the model's context of {context} tokens; shorten the prompt or lower max_tokens to {}",
            prompt.len(),
            s.max_tokens,
            (context + 1).saturating_sub(prompt.len())
        )));
    }
    if let Some(&bad) = prompt.iter().find(|&&t| t as usize >= gpt.vocab()) {
        return Err(DistillError::Config(format!(
            "prompt token {bad} is outside the model's vocabulary of {}",
            gpt.vocab()
        )));
    }
    let mut rng = rand::rngs::SmallRng::seed_from_u64(s.seed);
    let mut caches = gpt.new_cache();
    let ids: Vec<i64> = prompt.iter().map(|&t| t as i64).collect();
    let mut input = Tensor::<1, Int>::from_ints(ids.as_slice(), device).reshape([1, prompt.len()]);
    let mut start = 0;
    let mut out = Vec::with_capacity(s.max_tokens);
    for _ in 0..s.max_tokens {
        let n = input.dims()[1];
        let logits = gpt.forward_cached(input, start, &mut caches);
        let vocab = logits.dims()[2];
        let last: Vec<f32> = logits
            .slice([0..1, n - 1..n, 0..vocab])
            .into_data()
            .iter::<f32>()
            .collect();
        start += n;
        let next = draw(&last, s, &mut rng);
        out.push(next as u32);
        input = Tensor::<1, Int>::from_ints([next as i64], device).reshape([1, 1]);
    }
    Ok(out)
}

/// Continues each row of `prompts` (`[B, p]` token ids) by `new_tokens` tokens sampled at
/// `temperature` (0: greedy), all rows at once with the KV cache; returns the whole windows
/// `[B, p + new_tokens]` (what on-policy and sequence-level distillation train on).
pub fn continue_batch(
    gpt: &Gpt,
    prompts: Tensor<2, Int>,
    new_tokens: usize,
    temperature: f64,
    rng: &mut impl Rng,
) -> Tensor<2, Int> {
    let [b, _] = prompts.dims();
    let device = prompts.device();
    let s = Sampling {
        temperature,
        ..Default::default()
    };
    let mut caches = gpt.new_cache();
    let mut pieces = vec![prompts.clone()];
    let mut input = prompts;
    let mut start = 0;
    for _ in 0..new_tokens {
        let n = input.dims()[1];
        let logits = gpt.forward_cached(input, start, &mut caches);
        let vocab = logits.dims()[2];
        let last: Vec<f32> = logits
            .slice([0..b, n - 1..n, 0..vocab])
            .into_data()
            .iter::<f32>()
            .collect();
        start += n;
        let next: Vec<i64> = last
            .chunks_exact(vocab)
            .map(|row| draw(row, &s, rng) as i64)
            .collect();
        input = Tensor::<1, Int>::from_ints(next.as_slice(), &device).reshape([b, 1]);
        pieces.push(input.clone());
    }
    Tensor::cat(pieces, 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_keep_what_they_promise() {
        let logits = [0.0f32, 3.0, 1.0, 2.0];
        let mut rng = rand::rngs::SmallRng::seed_from_u64(1);
        let greedy = Sampling {
            temperature: 0.0,
            ..Default::default()
        };
        assert_eq!(draw(&logits, &greedy, &mut rng), 1);
        let top2 = Sampling {
            top_k: 2,
            ..Default::default()
        };
        for _ in 0..200 {
            assert!([1, 3].contains(&draw(&logits, &top2, &mut rng)));
        }
        // softmax of [0, 3, 1, 2]: token 1 holds 0.64 of the mass, so top_p = 0.5 keeps it alone
        let nucleus = Sampling {
            top_p: 0.5,
            ..Default::default()
        };
        for _ in 0..50 {
            assert_eq!(draw(&logits, &nucleus, &mut rng), 1);
        }
        // at temperature 1 every token is drawn sometimes
        let mut seen = [false; 4];
        for _ in 0..2000 {
            seen[draw(&logits, &Sampling::default(), &mut rng)] = true;
        }
        assert_eq!(seen, [true; 4]);
    }

    #[test]
    fn generation_is_seeded_and_refuses_to_overrun_the_context() {
        let dev = Device::flex();
        let gpt = Gpt::new(
            super::super::gpt::GptDims {
                vocab: 256,
                context: 16,
                dim: 8,
                layers: 1,
                heads: 2,
            },
            0.0,
            &dev,
        );
        let s = Sampling {
            max_tokens: 8,
            seed: 3,
            ..Default::default()
        };
        let a = generate(&gpt, b"Call me".map(u32::from).as_slice(), &s, &dev).unwrap();
        let b = generate(&gpt, b"Call me".map(u32::from).as_slice(), &s, &dev).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.len(), 8);
        // 7 prompt tokens + 10 sampled: the model reads 16, its context
        assert!(generate(
            &gpt,
            b"Call me".map(u32::from).as_slice(),
            &Sampling {
                max_tokens: 10,
                ..s
            },
            &dev
        )
        .is_ok());
        let long = Sampling {
            max_tokens: 11,
            ..s
        };
        let e = generate(&gpt, b"Call me".map(u32::from).as_slice(), &long, &dev)
            .unwrap_err()
            .to_string();
        assert!(e.contains("exceed the model's context of 16"), "{e}");
        assert!(generate(&gpt, &[], &s, &dev).is_err());
        // a batch continues every row, keeping its prompt; greedy rows agree with `generate`
        let prompts =
            Tensor::<1, Int>::from_ints([67, 97, 108, 108, 109, 101], &dev).reshape([2, 3]);
        let mut rng = rand::rngs::SmallRng::seed_from_u64(1);
        let out = continue_batch(&gpt, prompts, 5, 0.0, &mut rng);
        assert_eq!(out.dims(), [2, 8]);
        let rows: Vec<i64> = out.into_data().iter::<i64>().collect();
        assert_eq!(&rows[..3], &[67, 97, 108]);
        let greedy = Sampling {
            temperature: 0.0,
            max_tokens: 5,
            ..Default::default()
        };
        let one = generate(&gpt, &[67, 97, 108], &greedy, &dev).unwrap();
        let got: Vec<u32> = rows[3..8].iter().map(|&t| t as u32).collect();
        assert_eq!(got, one);
    }
}
