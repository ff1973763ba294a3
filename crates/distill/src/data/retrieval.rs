//! A passage-retrieval benchmark built from a plain text (`data.source = "retrieval"`): the
//! inverse cloze task (ICT; Lee, Chang & Toutanova, ACL 2019), re-ranking lists of fixed size.
//!
//! - The text is cut into chapters as [`super::text`] does, and every `k`-th chapter is held out
//!   as the test split, so no test query or passage shares a sentence with training.
//! - Each chapter's paragraphs are split into sentences (at `.`, `!` or `?`, closing quotes
//!   included, before white space), and consecutive sentences of a chapter are grouped into
//!   passages of at most [`PASSAGE_WORDS`] words.
//! - A passage of at least three sentences gives one query: one of its sentences of at least
//!   [`QUERY_WORDS`] words (the `i mod n`-th such sentence of passage `i`), which is then
//!   removed from the passage (ICT: the query cannot be found by matching it word for word).
//! - Each query's list holds its source passage (relevance 1) and `list_size − 1` other
//!   passages of its split (relevance 0): the [`NEIGHBOURS`] passages beside the source in its
//!   chapter (same scene, the hard negatives; at most half the list), the rest drawn from other
//!   chapters with a fixed seed. The list's order is shuffled with a fixed seed, so that a
//!   model scoring every candidate alike gains nothing from where the source sits; so is the
//!   order of the lists, so that the first lists (`data.train_limit`) come from the whole text.
//!
//! A sample is one (query, candidate) pair of token ids, each side `[CLS] … [SEP]` truncated to
//! `context` tokens and padded with 0 (`[PAD]`), laid out as a `[1, 2, context]` map (see
//! [`Inputs::Pairs`]). The tokenizer is a Hugging Face `tokenizer.json` (the teacher's: e.g.
//! all-MiniLM-L6-v2's WordPiece) read with the `tokenizers` crate.
//!
//! The relevance is the label of the construction (the source passage), which the teacher
//! never saw; the evaluation also ranks each list by the teacher's scores (see
//! [`crate::tasks::ranking::against_teacher`]).

use std::path::Path;

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use super::dataset::{Dataset, Inputs, Targets};
use super::text::split_chapters;
use crate::error::{DistillError, Result};

/// The most words of a passage.
pub const PASSAGE_WORDS: usize = 60;
/// The fewest words of a query sentence.
pub const QUERY_WORDS: usize = 6;
/// The most negatives of a list taken from beside its source passage in the same chapter.
pub const NEIGHBOURS: usize = 2;

/// Where a retrieval benchmark comes from and how it is cut.
#[derive(Debug, Clone, PartialEq)]
pub struct RetrievalSpec<'a> {
    /// The text file (UTF-8).
    pub path: &'a Path,
    /// The Hugging Face `tokenizer.json`.
    pub tokenizer: &'a Path,
    /// Most tokens of a query or passage, `[CLS]` and `[SEP]` included.
    pub context: usize,
    /// Fraction of the chapters held out as the test split.
    pub test_fraction: f64,
    /// A line that starts with this begins a chapter.
    pub chapter_marker: &'a str,
    /// Candidates per query.
    pub list_size: usize,
}

/// The sentences of a chapter: its paragraphs (split at blank lines) with white space collapsed,
/// cut after `.`, `!` or `?` (and any closing quotes or brackets) that white space follows.
pub fn sentences(chapter: &str) -> Vec<String> {
    let mut out = Vec::new();
    for paragraph in chapter.split("\n\n") {
        let words: Vec<&str> = paragraph.split_whitespace().collect();
        let mut current: Vec<&str> = Vec::new();
        for w in words {
            current.push(w);
            let end = w.trim_end_matches(['"', '\'', '”', '’', ')', ']']);
            if end.ends_with(['.', '!', '?']) {
                out.push(current.join(" "));
                current.clear();
            }
        }
        if !current.is_empty() {
            out.push(current.join(" "));
        }
    }
    out
}

/// One split's passages (text, chapter) and queries (text, source passage).
struct Split {
    passages: Vec<(String, usize)>,
    queries: Vec<(String, usize)>,
}

fn build_split(chapters: &[String]) -> Split {
    let mut split = Split {
        passages: Vec::new(),
        queries: Vec::new(),
    };
    for (c, chapter) in chapters.iter().enumerate() {
        let mut groups: Vec<Vec<String>> = Vec::new();
        let mut words = 0;
        for s in sentences(chapter) {
            let n = s.split_whitespace().count();
            if groups.is_empty() || words + n > PASSAGE_WORDS {
                groups.push(Vec::new());
                words = 0;
            }
            words += n;
            groups.last_mut().expect("pushed above").push(s);
        }
        for mut group in groups {
            let index = split.passages.len();
            let long: Vec<usize> = (0..group.len())
                .filter(|&k| group[k].split_whitespace().count() >= QUERY_WORDS)
                .collect();
            if group.len() >= 3 && !long.is_empty() {
                let k = long[index % long.len()];
                split.queries.push((group.remove(k), index));
            }
            split.passages.push((group.join(" "), c));
        }
    }
    split
}

/// The tokenizer of a retrieval set: a Hugging Face `tokenizer.json` whose `[PAD]` is id 0.
pub struct PairTokenizer {
    inner: tokenizers::Tokenizer,
    /// The file's name, for messages.
    pub name: String,
}

impl PairTokenizer {
    /// Reads `path`; texts encode with its special tokens (`[CLS] … [SEP]`), truncated to
    /// `context` tokens.
    pub fn from_file(path: &Path, context: usize) -> Result<PairTokenizer> {
        let mut inner = tokenizers::Tokenizer::from_file(path).map_err(|e| {
            DistillError::bad_data(
                path,
                format!("cannot read as a Hugging Face tokenizer.json: {e} (scripts/fetch-data.sh minilm installs all-MiniLM-L6-v2's)"),
            )
        })?;
        if inner.token_to_id("[PAD]") != Some(0) {
            return Err(DistillError::bad_data(
                path,
                "its [PAD] token is not id 0; a retrieval set pads with id 0, as BERT's WordPiece vocabularies do".into(),
            ));
        }
        inner
            .with_truncation(Some(tokenizers::TruncationParams {
                max_length: context,
                ..Default::default()
            }))
            .map_err(|e| DistillError::bad_data(path, format!("setting truncation: {e}")))?
            .with_padding(None);
        Ok(PairTokenizer {
            inner,
            name: path.display().to_string(),
        })
    }

    /// Vocabulary size.
    pub fn vocab(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// Token ids of `text`, special tokens included.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        self.inner
            .encode(text, true)
            .map(|e| e.get_ids().to_vec())
            .map_err(|e| DistillError::Config(format!("tokenizing {text:?}: {e}")))
    }
}

/// Loads a text as train and test re-ranking lists (see the module documentation).
pub fn load_retrieval(spec: &RetrievalSpec<'_>) -> Result<(Dataset, Dataset)> {
    let path = spec.path;
    if spec.context < 4 {
        return Err(DistillError::Config(format!(
            "data.context must be at least 4 tokens for a retrieval set, got {}",
            spec.context
        )));
    }
    if spec.list_size < 2 {
        return Err(DistillError::Config(format!(
            "data.list_size must be at least 2 (the source passage and a negative), got {}",
            spec.list_size
        )));
    }
    let tokenizer = PairTokenizer::from_file(spec.tokenizer, spec.context)?;
    let (train, test) = split_chapters(path, spec.chapter_marker, spec.test_fraction)?;
    let make = |chapters: &[String], name: &str, seed: u64| -> Result<Dataset> {
        let mut split = build_split(chapters);
        // the list's source and its neighbours, at most half of the list
        let near_slots = 1 + NEIGHBOURS.min((spec.list_size - 1) / 2);
        if split.passages.len() < spec.list_size || split.queries.is_empty() {
            return Err(DistillError::bad_data(
                path,
                format!(
                    "the {name} chapters give {} passage(s) and {} query(ies); a list needs {} passages",
                    split.passages.len(),
                    split.queries.len(),
                    spec.list_size
                ),
            ));
        }
        let encoded: Vec<Vec<u32>> = split
            .passages
            .iter()
            .map(|(t, _)| tokenizer.encode(t))
            .collect::<Result<_>>()?;
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        // lists in a shuffled order, so that a prefix (data.train_limit) spans the whole text
        split.queries.shuffle(&mut rng);
        let n = split.passages.len();
        let mut chapter_sizes = vec![0; chapters.len()];
        for (_, c) in &split.passages {
            chapter_sizes[*c] += 1;
        }
        let (mut ids, mut grades, mut sizes) = (Vec::new(), Vec::new(), Vec::new());
        let l = spec.context;
        let push = |row: &[u32], ids: &mut Vec<u32>| {
            ids.extend(row.iter().take(l));
            ids.extend(std::iter::repeat_n(0, l - row.len().min(l)));
        };
        for (query, source) in &split.queries {
            let chapter = split.passages[*source].1;
            // the source's neighbours in its chapter, nearest first
            let mut list = vec![*source];
            let in_chapter = |p: usize| split.passages[p].1 == chapter;
            let mut d = 1;
            while list.len() < near_slots {
                let (before, after) = (source.checked_sub(d), Some(source + d).filter(|&p| p < n));
                let near: Vec<usize> = [before, after]
                    .into_iter()
                    .flatten()
                    .filter(|&p| in_chapter(p))
                    .collect();
                if near.is_empty() {
                    break; // both sides have left the chapter
                }
                for p in near {
                    if list.len() < near_slots {
                        list.push(p);
                    }
                }
                d += 1;
            }
            // the rest from other chapters (from the source's own where too few are left)
            let outside = n - chapter_sizes[chapter];
            let from_outside = outside >= spec.list_size - list.len();
            while list.len() < spec.list_size {
                let p = rng.random_range(0..n);
                if !list.contains(&p) && (!in_chapter(p) || !from_outside) {
                    list.push(p);
                }
            }
            list.shuffle(&mut rng);
            let q = tokenizer.encode(query)?;
            for &p in &list {
                push(&q, &mut ids);
                push(&encoded[p], &mut ids);
                grades.push(if p == *source { 1.0 } else { 0.0 });
            }
            sizes.push(list.len());
        }
        Ok(Dataset {
            inputs: Inputs::Pairs {
                ids,
                len: l,
                vocab: tokenizer.vocab(),
                tokenizer: tokenizer.name.clone(),
            },
            targets: Targets::Relevance(grades),
            num_classes: 1,
            groups: Some(sizes),
        })
    };
    Ok((make(&train, "training", 0)?, make(&test, "test", 1)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentences_split_at_ends_and_quotes_and_keep_paragraphs_apart() {
        let s = sentences("Call me Ishmael. Some years ago—never mind\nhow long. \"Whale?\" he said.\n\nA new one");
        assert_eq!(
            s,
            [
                "Call me Ishmael.",
                "Some years ago—never mind how long.",
                "\"Whale?\"",
                "he said.",
                "A new one"
            ]
        );
    }

    #[test]
    fn queries_leave_their_passage_and_lists_hold_their_source_once() {
        let dir = tempfile::tempdir().unwrap();
        let text: String = (0..10)
            .map(|c| {
                let body: String = (0..40)
                    .map(|s| format!("Chapter {c} sentence number {s} says whale things here. "))
                    .collect();
                format!("CHAPTER {c}\n\n{body}\n\n")
            })
            .collect();
        let path = dir.path().join("t.txt");
        std::fs::write(&path, text).unwrap();
        let tok = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/bert/tokenizer.json");
        let (train, test) = load_retrieval(&RetrievalSpec {
            path: &path,
            tokenizer: &tok,
            context: 32,
            test_fraction: 0.1,
            chapter_marker: "CHAPTER",
            list_size: 4,
        })
        .unwrap();
        for d in [&train, &test] {
            let sizes = d.groups.clone().unwrap();
            assert!(sizes.iter().all(|&n| n == 4));
            let Targets::Relevance(g) = &d.targets else {
                panic!()
            };
            for list in g.chunks(4) {
                assert_eq!(list.iter().filter(|&&x| x == 1.0).count(), 1);
            }
            assert_eq!(d.geometry(), [1, 2, 32]);
            // every text starts with [CLS] (101) and pads with 0
            let Inputs::Pairs { ids, .. } = &d.inputs else {
                panic!()
            };
            assert!(ids.chunks(32).all(|t| t[0] == 101));
        }
        // the held-out chapter (the 10th) gives the test split only
        assert!(test.len() < train.len());
    }
}
