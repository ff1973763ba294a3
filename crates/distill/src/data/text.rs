//! Plain text for language models: chapters, a tokenizer, and fixed-length windows of next-token
//! targets.
//!
//! The tokenizer is bytes (vocabulary 256) or a byte-level BPE trained with the `tokenizers`
//! crate on the training chapters only (test chapters never shape the vocabulary); a model
//! trained on it carries it in its checkpoint (`model.json`, and `tokenizer.json` in Hugging
//! Face's format).
//!
//! A text file is cut into chapters at lines that start with a marker (`CHAPTER` by default, the
//! headings of Moby-Dick); every `k`-th chapter is held out as the test split (`k` from
//! `test_fraction`), so no window of the test split shares a sentence with training. Each
//! chapter's tokens are packed into windows of `context` inputs and `context` next-token targets
//! (stride `context`); a chapter's last window is padded with token 0 and target −100
//! ([`IGNORE_INDEX`]), which every loss and metric skips, and no window crosses a chapter
//! boundary.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::dataset::{Dataset, Inputs, Targets, IGNORE_INDEX};
use crate::error::{DistillError, Result};

/// Which tokenizer a text is read with (`data.tokenizer` in configs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TokenizerKind {
    /// One token per UTF-8 byte (vocabulary 256).
    #[default]
    Byte,
    /// Byte-level BPE trained on the training split (vocabulary `data.vocab_size`).
    Bpe,
}

/// How text becomes token ids.
///
/// In `model.json` a byte tokenizer is the string `"byte"` and a BPE is `{"bpe": …}` with the
/// whole Hugging Face `tokenizer.json` inline (so `model.json` alone restores it); a
/// checkpoint of a BPE model also holds that file as `tokenizer.json`, which Python's
/// `tokenizers.Tokenizer.from_file` reads.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Tokenizer {
    /// One token per UTF-8 byte (vocabulary 256): no training, no unknown token, any text.
    #[default]
    Byte,
    /// A byte-level BPE (GPT-2's scheme) from the `tokenizers` crate.
    Bpe(Arc<Bpe>),
}

/// A byte-level BPE: every text encodes (its base vocabulary is the 256 bytes), merges learnt
/// from a corpus with the `tokenizers` crate's trainer.
#[derive(Debug)]
pub struct Bpe {
    inner: tokenizers::Tokenizer,
    /// The tokenizer's Hugging Face JSON: what is saved, and what two tokenizers compare by.
    json: String,
    vocab: usize,
}

impl PartialEq for Bpe {
    fn eq(&self, other: &Self) -> bool {
        self.json == other.json
    }
}

fn tokenizer_error(what: &str, e: impl std::fmt::Display) -> DistillError {
    DistillError::Config(format!("BPE tokenizer: {what}: {e}"))
}

impl Bpe {
    /// Trains a byte-level BPE of at most `vocab_size` tokens on `texts` (merges of pairs seen
    /// at least twice; ties broken by token id, so the same texts give the same tokenizer).
    pub fn train(texts: &[&str], vocab_size: usize) -> Result<Bpe> {
        use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
        use tokenizers::models::bpe::{BpeTrainerBuilder, BPE};
        use tokenizers::models::TrainerWrapper;
        use tokenizers::pre_tokenizers::byte_level::ByteLevel;
        let base = ByteLevel::alphabet().len();
        if vocab_size <= base {
            return Err(DistillError::Config(format!(
                "data.vocab_size must exceed the {base} byte tokens a byte-level BPE starts from, got {vocab_size}; use e.g. 1024, or data.tokenizer = \"byte\""
            )));
        }
        let mut trainer: TrainerWrapper = BpeTrainerBuilder::new()
            .vocab_size(vocab_size)
            .min_frequency(2)
            .initial_alphabet(ByteLevel::alphabet().into_iter().collect())
            .show_progress(false)
            .build()
            .into();
        let mut tk = tokenizers::Tokenizer::new(BPE::default());
        tk.with_pre_tokenizer(Some(ByteLevel::new(false, true, true)));
        tk.with_decoder(Some(ByteLevelDecoder::default()));
        tk.train(&mut trainer, texts.iter())
            .map_err(|e| tokenizer_error("training", e))?;
        Self::from_tokenizer(tk)
    }

    /// A BPE from its Hugging Face `tokenizer.json` text: a byte-level BPE (BPE model,
    /// ByteLevel pre-tokenizer) whose ids run from 0 without gaps, as [`Bpe::train`] makes, so
    /// that every text encodes and every id decodes.
    pub fn from_json(json: &str) -> Result<Bpe> {
        let value: serde_json::Value =
            serde_json::from_str(json).map_err(|e| tokenizer_error("reading tokenizer.json", e))?;
        let kind = |part: &str| value[part]["type"].as_str().unwrap_or("none").to_string();
        if kind("model") != "BPE" || kind("pre_tokenizer") != "ByteLevel" {
            return Err(tokenizer_error(
                "reading tokenizer.json",
                format!(
                    "expected a byte-level BPE (model BPE, pre-tokenizer ByteLevel), got model {} with pre-tokenizer {}",
                    kind("model"),
                    kind("pre_tokenizer")
                ),
            ));
        }
        let set = |v: &serde_json::Value| !v.is_null();
        let model = &value["model"];
        if set(&value["normalizer"]) || set(&model["unk_token"]) || set(&model["dropout"]) {
            return Err(tokenizer_error(
                "reading tokenizer.json",
                "a normalizer, an unknown token or BPE dropout would change or drop text; distill's BPE has none",
            ));
        }
        let tk: tokenizers::Tokenizer = json
            .parse()
            .map_err(|e| tokenizer_error("reading tokenizer.json", e))?;
        let vocab = tk.get_vocab(true);
        use tokenizers::pre_tokenizers::byte_level::ByteLevel;
        if let Some(c) = ByteLevel::alphabet()
            .into_iter()
            .find(|c| !vocab.contains_key(&c.to_string()))
        {
            return Err(tokenizer_error(
                "reading tokenizer.json",
                format!("byte token {c:?} is missing, so some texts would not encode"),
            ));
        }
        let mut ids: Vec<u32> = vocab.values().copied().collect();
        ids.sort_unstable();
        if ids.iter().enumerate().any(|(i, &id)| id != i as u32) || vocab.len() < 256 {
            return Err(tokenizer_error(
                "reading tokenizer.json",
                "its token ids are not 0..N without gaps over a 256-byte base",
            ));
        }
        Self::from_tokenizer(tk)
    }

    fn from_tokenizer(tk: tokenizers::Tokenizer) -> Result<Bpe> {
        let json = tk
            .to_string(false)
            .map_err(|e| tokenizer_error("serialising", e))?;
        let vocab = tk.get_vocab_size(true);
        Ok(Bpe {
            inner: tk,
            json,
            vocab,
        })
    }

    /// The Hugging Face `tokenizer.json` text.
    pub fn json(&self) -> &str {
        &self.json
    }

    /// A short fingerprint of the merges and vocabulary (64-bit FNV-1a of the JSON), to tell
    /// two BPEs of the same size apart in messages.
    pub fn fingerprint(&self) -> u64 {
        self.json.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        })
    }
}

impl Tokenizer {
    /// Vocabulary size.
    pub fn vocab(&self) -> usize {
        match self {
            Tokenizer::Byte => 256,
            Tokenizer::Bpe(b) => b.vocab,
        }
    }

    /// Token ids of `text`.
    pub fn encode(&self, text: &str) -> Vec<u32> {
        match self {
            Tokenizer::Byte => text.bytes().map(u32::from).collect(),
            Tokenizer::Bpe(b) => b
                .inner
                .encode(text, false)
                // a byte-level BPE has a token for every byte: encoding cannot fail
                .expect("a byte-level BPE encodes any text")
                .get_ids()
                .to_vec(),
        }
    }

    /// Text of token ids (invalid UTF-8, e.g. a character cut by sampling, is replaced by
    /// U+FFFD).
    pub fn decode(&self, ids: &[u32]) -> String {
        match self {
            Tokenizer::Byte => {
                let bytes: Vec<u8> = ids.iter().map(|&i| i.min(255) as u8).collect();
                String::from_utf8_lossy(&bytes).into_owned()
            }
            Tokenizer::Bpe(b) => {
                let top = b.vocab.saturating_sub(1) as u32;
                let ids: Vec<u32> = ids.iter().map(|&i| i.min(top)).collect();
                b.inner
                    .decode(&ids, false)
                    .expect("a byte-level BPE decodes its own ids")
            }
        }
    }

    /// The kind (`data.tokenizer`).
    pub fn kind(&self) -> TokenizerKind {
        match self {
            Tokenizer::Byte => TokenizerKind::Byte,
            Tokenizer::Bpe(_) => TokenizerKind::Bpe,
        }
    }

    /// The name in messages: `byte`, or `bpe` with its vocabulary and fingerprint.
    pub fn name(&self) -> String {
        match self {
            Tokenizer::Byte => "byte".into(),
            Tokenizer::Bpe(b) => format!("bpe ({} tokens, #{:016x})", b.vocab, b.fingerprint()),
        }
    }
}

impl Serialize for Tokenizer {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::{Error, SerializeMap};
        match self {
            Tokenizer::Byte => s.serialize_str("byte"),
            Tokenizer::Bpe(b) => {
                let value: serde_json::Value =
                    serde_json::from_str(&b.json).map_err(S::Error::custom)?;
                let mut m = s.serialize_map(Some(1))?;
                m.serialize_entry("bpe", &value)?;
                m.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for Tokenizer {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        use serde::de::Error;
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Form {
            Name(TokenizerKind),
            Bpe { bpe: serde_json::Value },
        }
        match Form::deserialize(d)? {
            Form::Name(TokenizerKind::Byte) => Ok(Tokenizer::Byte),
            Form::Name(TokenizerKind::Bpe) => Err(D::Error::custom(
                "a BPE tokenizer is stored as {\"bpe\": <its tokenizer.json>}, not by name",
            )),
            Form::Bpe { bpe } => Bpe::from_json(&bpe.to_string())
                .map(|b| Tokenizer::Bpe(Arc::new(b)))
                .map_err(D::Error::custom),
        }
    }
}

/// Bytes of text per target token: the UTF-8 length of the targets (those not
/// [`IGNORE_INDEX`]) decoded, over their number. Multiplying a per-token cross-entropy by its
/// inverse gives one per byte, comparable across tokenizers.
pub fn bytes_per_token(tokenizer: &Tokenizer, targets: &[i32]) -> f64 {
    let ids: Vec<u32> = targets
        .iter()
        .filter(|&&t| t != IGNORE_INDEX as i32)
        .map(|&t| t as u32)
        .collect();
    tokenizer.decode(&ids).len() as f64 / ids.len().max(1) as f64
}

/// Where a text data set comes from and how it is cut.
#[derive(Debug, Clone, PartialEq)]
pub struct TextSpec<'a> {
    /// The text file (UTF-8).
    pub path: &'a Path,
    /// Tokens per window.
    pub context: usize,
    /// Fraction of the chapters held out as the test split (every `round(1 / f)`-th chapter).
    pub test_fraction: f64,
    /// A line that starts with this begins a chapter.
    pub chapter_marker: &'a str,
    /// The tokenizer.
    pub tokenizer: TokenizerKind,
    /// Most tokens of a BPE (trained on the training chapters only).
    pub vocab_size: usize,
}

/// The chapters of `text`: from each line that starts with `marker` to the next (text before
/// the first marker is a chapter of its own when it holds more than white space). Without any
/// marker line, the whole text is one chapter.
pub fn chapters<'t>(text: &'t str, marker: &str) -> Vec<&'t str> {
    let mut starts: Vec<usize> = Vec::new();
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        if !marker.is_empty() && line.starts_with(marker) {
            starts.push(offset);
        }
        offset += line.len();
    }
    if starts.first() != Some(&0) {
        starts.insert(0, 0);
    }
    starts.push(text.len());
    starts
        .windows(2)
        .map(|w| &text[w[0]..w[1]])
        .filter(|c| !c.trim().is_empty())
        .collect()
}

/// Packs the tokens of each chapter into windows: inputs `ids[s..s+L]` and targets
/// `ids[s+1..s+L+1]` for `s = 0, L, 2L, …`; the last window of a chapter is padded (input 0,
/// target −100). A chapter of fewer than two tokens gives no window.
pub fn windows(chapters: &[Vec<u32>], context: usize) -> (Vec<u32>, Vec<i32>) {
    let (mut inputs, mut targets) = (Vec::new(), Vec::new());
    for ids in chapters {
        if ids.len() < 2 {
            continue;
        }
        let mut s = 0;
        while s + 1 < ids.len() {
            for k in 0..context {
                let (i, t) = (s + k, s + k + 1);
                inputs.push(if i < ids.len() { ids[i] } else { 0 });
                targets.push(if t < ids.len() {
                    ids[t] as i32
                } else {
                    IGNORE_INDEX as i32
                });
            }
            s += context;
        }
    }
    (inputs, targets)
}

/// Reads a UTF-8 text file and cuts it into [`chapters`] at lines starting with `marker`, every
/// `round(1 / test_fraction)`-th held out: the training and the held-out chapters, in order.
pub fn split_chapters(
    path: &Path,
    marker: &str,
    test_fraction: f64,
) -> Result<(Vec<String>, Vec<String>)> {
    if !(test_fraction > 0.0 && test_fraction < 1.0) {
        return Err(DistillError::Config(format!(
            "data.test_fraction must be in (0, 1), got {test_fraction}"
        )));
    }
    let bytes = std::fs::read(path).map_err(|e| DistillError::io("reading", path, e))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        DistillError::bad_data(
            path,
            format!(
                "not UTF-8 text (first bad byte at offset {}); convert the file to UTF-8",
                e.utf8_error().valid_up_to()
            ),
        )
    })?;
    let chapters = chapters(&text, marker);
    let every = (1.0 / test_fraction).round().max(2.0) as usize;
    if chapters.len() < every {
        return Err(DistillError::bad_data(
            path,
            format!(
                "{} chapter(s) (lines starting with {marker:?}) cannot hold out every {every}-th chapter as the test split; use a longer text, set data.chapter_marker to the text's chapter headings, or raise data.test_fraction",
                chapters.len(),
            ),
        ));
    }
    let (mut train, mut test) = (Vec::new(), Vec::new());
    for (i, c) in chapters.into_iter().enumerate() {
        if (i + 1) % every == 0 {
            test.push(c.to_string());
        } else {
            train.push(c.to_string());
        }
    }
    Ok((train, test))
}

/// Loads a text file as train and test windows (see the module documentation).
pub fn load_text(spec: &TextSpec<'_>) -> Result<(Dataset, Dataset)> {
    let path = spec.path;
    if spec.context < 2 {
        return Err(DistillError::Config(format!(
            "data.context must be at least 2 tokens, got {}",
            spec.context
        )));
    }
    let (train_text, test_text) = split_chapters(path, spec.chapter_marker, spec.test_fraction)?;
    let tokenizer = match spec.tokenizer {
        TokenizerKind::Byte => Tokenizer::Byte,
        TokenizerKind::Bpe => {
            let train_text: Vec<&str> = train_text.iter().map(String::as_str).collect();
            Tokenizer::Bpe(Arc::new(Bpe::train(&train_text, spec.vocab_size)?))
        }
    };
    let encode = |chapters: &[String]| -> Vec<Vec<u32>> {
        chapters.iter().map(|c| tokenizer.encode(c)).collect()
    };
    let (train, test) = (encode(&train_text), encode(&test_text));
    let split = |ids: &[Vec<u32>], name: &str| -> Result<Dataset> {
        let (inputs, targets) = windows(ids, spec.context);
        if inputs.is_empty() {
            return Err(DistillError::bad_data(
                path,
                format!("the {name} chapters hold no window of two tokens or more"),
            ));
        }
        Ok(Dataset {
            inputs: Inputs::Tokens {
                ids: inputs,
                context: spec.context,
                tokenizer: tokenizer.clone(),
            },
            targets: Targets::Tokens {
                ids: targets,
                context: spec.context,
            },
            num_classes: tokenizer.vocab(),
            groups: None,
        })
    };
    Ok((split(&train, "training")?, split(&test, "test")?))
}

/// The text file of Moby-Dick as `scripts/fetch-data.sh moby-dick` installs it.
pub fn moby_dick_path() -> PathBuf {
    PathBuf::from("/usr/share/datasets/moby-dick/moby-dick.txt")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chapters_start_at_marker_lines() {
        let text = "front matter\nCHAPTER 1. A\none\nCHAPTER 2. B\ntwo\n";
        let c = chapters(text, "CHAPTER");
        assert_eq!(
            c,
            [
                "front matter\n",
                "CHAPTER 1. A\none\n",
                "CHAPTER 2. B\ntwo\n"
            ]
        );
        assert_eq!(chapters("no markers", "CHAPTER"), ["no markers"]);
        // a marker inside a line does not start a chapter
        assert_eq!(chapters("x CHAPTER 1\n", "CHAPTER").len(), 1);
    }

    #[test]
    fn windows_pack_next_tokens_and_pad_with_ignore() {
        let (x, y) = windows(&[vec![1, 2, 3, 4, 5], vec![7], vec![8, 9]], 3);
        // chapter 1: [1 2 3]->[2 3 4], [4 5 0]->[5 -100 -100]; chapter 2 too short;
        // chapter 3: [8 9 0]->[9 -100 -100]
        assert_eq!(x, [1, 2, 3, 4, 5, 0, 8, 9, 0]);
        assert_eq!(y, [2, 3, 4, 5, -100, -100, 9, -100, -100]);
    }

    #[test]
    fn a_generated_text_file_loads_as_token_windows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("book.txt");
        let mut text = String::new();
        for i in 1..=10 {
            text += &format!("CHAPTER {i}. Title.\n\nCall me {i}—whale.\n");
        }
        std::fs::write(&path, &text).unwrap();
        let spec = TextSpec {
            path: &path,
            context: 8,
            test_fraction: 0.2,
            chapter_marker: "CHAPTER",
            tokenizer: TokenizerKind::Byte,
            vocab_size: 0,
        };
        let (train, test) = load_text(&spec).unwrap();
        assert_eq!(train.geometry(), [1, 1, 8]);
        assert_eq!(train.num_classes, 256);
        // chapters 5 and 10 are held out
        let chapter_tokens =
            |i: usize| format!("CHAPTER {i}. Title.\n\nCall me {i}—whale.\n").len();
        let windows_of = |n: usize| n.saturating_sub(1).div_ceil(8);
        let test_windows = windows_of(chapter_tokens(5)) + windows_of(chapter_tokens(10));
        assert_eq!(test.len(), test_windows);
        let Targets::Tokens { ids, .. } = &test.targets else {
            panic!("token targets")
        };
        assert_eq!(ids[0], b'H' as i32, "the first target is the second byte");
        assert!(ids.contains(&(IGNORE_INDEX as i32)));
        // the em dash survives as its three UTF-8 bytes
        assert_eq!(
            Tokenizer::Byte.decode(&Tokenizer::Byte.encode("me—whale")),
            "me—whale"
        );
        // errors name the problem
        std::fs::write(&path, [0xff, 0xfe, 0x00]).unwrap();
        let e = load_text(&spec).unwrap_err().to_string();
        assert!(e.contains("not UTF-8"), "{e}");
        std::fs::write(&path, "one chapter only").unwrap();
        let e = load_text(&spec).unwrap_err().to_string();
        assert!(e.contains("data.chapter_marker"), "{e}");
    }

    #[test]
    fn a_bpe_learns_merges_from_the_training_chapters_only_and_round_trips() {
        let mut text = String::new();
        for i in 1..=10 {
            let word = if i % 5 == 0 { "narwhal" } else { "whale" };
            text += &format!("CHAPTER {i}.\n\nThe {word} and the {word} again, the {word}.\n");
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("book.txt");
        std::fs::write(&path, &text).unwrap();
        let spec = TextSpec {
            path: &path,
            context: 8,
            test_fraction: 0.2,
            chapter_marker: "CHAPTER",
            tokenizer: TokenizerKind::Bpe,
            vocab_size: 280,
        };
        let (train, test) = load_text(&spec).unwrap();
        let tk = train.tokenizer().unwrap();
        let Tokenizer::Bpe(bpe) = &tk else {
            panic!("a BPE")
        };
        assert_eq!(test.tokenizer().as_ref(), Some(&tk));
        assert_eq!(train.num_classes, tk.vocab());
        assert!(tk.vocab() > 256 && tk.vocab() <= 280);
        // "whale" (training chapters) is merged into one token; "narwhal" only occurs in the
        // held-out chapters 5 and 10, so it stays in pieces
        assert_eq!(tk.encode(" whale").len(), 1, "{:?}", tk.encode(" whale"));
        assert!(tk.encode(" narwhal").len() > 2);
        // any text round-trips, also characters the corpus never had
        for s in ["The whale — 日本, \u{1F40B}!\n", "", " \t x"] {
            assert_eq!(tk.decode(&tk.encode(s)), s);
        }
        // training is deterministic, and the JSON form restores the same tokenizer
        let chapters = chapters(&text, "CHAPTER");
        let train_text: Vec<&str> = (chapters.iter().enumerate())
            .filter(|(i, _)| (i + 1) % 5 != 0)
            .map(|(_, c)| *c)
            .collect();
        assert_eq!(Bpe::train(&train_text, 280).unwrap(), **bpe);
        assert_eq!(Bpe::from_json(bpe.json()).unwrap(), **bpe);
        let json = serde_json::to_string(&tk).unwrap();
        assert!(json.starts_with("{\"bpe\":{"), "{json}");
        assert_eq!(serde_json::from_str::<Tokenizer>(&json).unwrap(), tk);
        assert_eq!(
            serde_json::from_str::<Tokenizer>("\"byte\"").unwrap(),
            Tokenizer::Byte
        );
        assert!(serde_json::from_str::<Tokenizer>("\"bpe\"").is_err());
        // another kind of tokenizer, or a BPE with a gap in its ids, is refused
        let other = bpe.json().replace("\"ByteLevel\"", "\"Whitespace\"");
        let e = Bpe::from_json(&other).unwrap_err().to_string();
        assert!(e.contains("expected a byte-level BPE"), "{e}");
        let gap = bpe.json().replacen("\"!\":0", "\"!\":100000", 1);
        assert_ne!(gap, bpe.json());
        let e = Bpe::from_json(&gap).unwrap_err().to_string();
        assert!(e.contains("without gaps"), "{e}");
        let missing = bpe.json().replacen("\"!\":0", "\"!!\":0", 1);
        let e = Bpe::from_json(&missing).unwrap_err().to_string();
        assert!(e.contains("byte token '!' is missing"), "{e}");
        let e = Bpe::from_json(
            &bpe.json()
                .replace("\"unk_token\":null", "\"unk_token\":\"!\""),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("unknown token"), "{e}");
        assert_ne!(Bpe::train(&train_text, 270).unwrap(), **bpe);
        let ids: Vec<i32> = tk
            .encode(" whale whale")
            .iter()
            .map(|&i| i as i32)
            .collect();
        assert_eq!(bytes_per_token(&tk, &[ids, vec![-100]].concat()), 6.0);
        assert_eq!(bytes_per_token(&Tokenizer::Byte, &[104, 105, -100]), 1.0);
        let e = Bpe::train(&train_text, 200).unwrap_err().to_string();
        assert!(e.contains("data.vocab_size"), "{e}");
    }
}
