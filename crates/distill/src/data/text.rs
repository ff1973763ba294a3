//! Plain text for language models: chapters, a tokenizer, and fixed-length windows of next-token
//! targets.
//!
//! A text file is cut into chapters at lines that start with a marker (`CHAPTER` by default, the
//! headings of Moby-Dick); every `k`-th chapter is held out as the test split (`k` from
//! `test_fraction`), so no window of the test split shares a sentence with training. Each
//! chapter's tokens are packed into windows of `context` inputs and `context` next-token targets
//! (stride `context`); a chapter's last window is padded with token 0 and target −100
//! ([`IGNORE_INDEX`]), which every loss and metric skips, and no window crosses a chapter
//! boundary.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::dataset::{Dataset, Inputs, Targets, IGNORE_INDEX};
use crate::error::{DistillError, Result};

/// How text becomes token ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Tokenizer {
    /// One token per UTF-8 byte (vocabulary 256): no training, no unknown token, any text.
    #[default]
    Byte,
}

impl Tokenizer {
    /// Vocabulary size.
    pub fn vocab(&self) -> usize {
        match self {
            Tokenizer::Byte => 256,
        }
    }

    /// Token ids of `text`.
    pub fn encode(&self, text: &str) -> Vec<u32> {
        match self {
            Tokenizer::Byte => text.bytes().map(u32::from).collect(),
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
        }
    }

    /// The name in configs and `model.json`.
    pub fn name(&self) -> &'static str {
        match self {
            Tokenizer::Byte => "byte",
        }
    }
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
    pub tokenizer: Tokenizer,
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

fn bad(path: &Path, reason: String) -> DistillError {
    DistillError::BadData {
        path: path.to_path_buf(),
        reason,
    }
}

/// Loads a text file as train and test windows (see the module documentation).
pub fn load_text(spec: &TextSpec<'_>) -> Result<(Dataset, Dataset)> {
    let path = spec.path;
    let bytes = std::fs::read(path).map_err(|e| DistillError::io("reading", path, e))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        bad(
            path,
            format!(
                "not UTF-8 text (first bad byte at offset {}); convert the file to UTF-8",
                e.utf8_error().valid_up_to()
            ),
        )
    })?;
    if spec.context < 2 {
        return Err(DistillError::Config(format!(
            "data.context must be at least 2 tokens, got {}",
            spec.context
        )));
    }
    if !(spec.test_fraction > 0.0 && spec.test_fraction < 1.0) {
        return Err(DistillError::Config(format!(
            "data.test_fraction must be in (0, 1), got {}",
            spec.test_fraction
        )));
    }
    let chapters = chapters(&text, spec.chapter_marker);
    let every = (1.0 / spec.test_fraction).round().max(2.0) as usize;
    if chapters.len() < every {
        return Err(bad(
            path,
            format!(
                "{} chapter(s) (lines starting with {:?}) cannot hold out every {every}-th chapter as the test split; use a longer text, set data.chapter_marker to the text's chapter headings, or raise data.test_fraction",
                chapters.len(),
                spec.chapter_marker
            ),
        ));
    }
    let (mut train, mut test) = (Vec::new(), Vec::new());
    for (i, c) in chapters.iter().enumerate() {
        let ids = spec.tokenizer.encode(c);
        if (i + 1) % every == 0 {
            test.push(ids);
        } else {
            train.push(ids);
        }
    }
    let split = |ids: &[Vec<u32>], name: &str| -> Result<Dataset> {
        let (inputs, targets) = windows(ids, spec.context);
        if inputs.is_empty() {
            return Err(bad(
                path,
                format!("the {name} chapters hold no window of two tokens or more"),
            ));
        }
        Ok(Dataset {
            inputs: Inputs::Tokens {
                ids: inputs,
                context: spec.context,
                tokenizer: spec.tokenizer,
            },
            targets: Targets::Tokens {
                ids: targets,
                context: spec.context,
            },
            num_classes: spec.tokenizer.vocab(),
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
            tokenizer: Tokenizer::Byte,
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
}
