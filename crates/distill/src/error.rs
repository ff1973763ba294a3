//! Typed errors of the distill library.

use std::path::PathBuf;

/// Everything that can go wrong inside the library. Messages name what was expected and what was
/// found, and where possible how to fix it.
#[derive(Debug, thiserror::Error)]
pub enum DistillError {
    /// A file could not be read or written.
    #[error("{action} {path}")]
    Io {
        /// What was being done ("reading", "writing", ...).
        action: &'static str,
        /// The file concerned.
        path: PathBuf,
        /// The underlying error (shown as the cause: `{:#}` with anyhow prints both).
        source: std::io::Error,
    },
    /// A data file is not what it claims to be.
    #[error("bad data file {path}: {reason}")]
    BadData {
        /// The file concerned.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The experiment configuration is invalid.
    #[error("invalid config: {0}")]
    Config(String),
    /// A model, method or tap name is unknown.
    #[error("unknown {kind} '{name}'{hint}; known: {known}")]
    Unknown {
        /// What kind of name ("model", "method", "tap of student 'mlp'", ...).
        kind: String,
        /// The name given.
        name: String,
        /// A " (did you mean 'x'?)" hint, or empty.
        hint: String,
        /// The valid names, comma separated.
        known: String,
    },
    /// Two tensors that a method compares do not fit together.
    #[error("shape mismatch in {context}: expected {expected:?}, got {got:?}{fix}")]
    Shape {
        /// Where the mismatch was found.
        context: String,
        /// The expected shape.
        expected: Vec<usize>,
        /// The shape found.
        got: Vec<usize>,
        /// A suggestion, e.g. the connector that would fit both.
        fix: String,
    },
    /// A loss term became NaN or infinite.
    #[error(
        "loss term '{term}' became non-finite ({value}) in epoch {epoch}; training stopped and the \
         last complete checkpoint was kept. Lower the learning rate, check the inputs' scale, or \
         reduce the term's weight"
    )]
    NonFinite {
        /// The name of the term that went non-finite.
        term: String,
        /// Its value.
        value: f64,
        /// The 1-based epoch in which it happened.
        epoch: usize,
    },
    /// A model stopped learning: its accuracy fell to the majority-class rate, or its objective
    /// exploded.
    #[error(
        "{run} collapsed in epoch {epoch}: {what}. {advice}. The checkpoints so far were kept; set \
         train.stop_on_collapse = false to train on regardless"
    )]
    Collapse {
        /// The run (recipe and seed).
        run: String,
        /// The 1-based global epoch.
        epoch: usize,
        /// What was seen.
        what: String,
        /// The term with the largest weighted value in that epoch.
        term: String,
        /// What to try.
        advice: String,
    },
    /// Training was interrupted (Ctrl-C) between two steps.
    #[error("interrupted after epoch {completed}; the last complete checkpoint is kept, continue with --resume")]
    Interrupted {
        /// Number of completed epochs saved in the checkpoint.
        completed: usize,
    },
    /// A checkpoint could not be stored or loaded.
    #[error("checkpoint {path}: {reason}")]
    Checkpoint {
        /// The checkpoint path.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// A feature needs a backend that this build or device does not provide.
    #[error("{0}")]
    Unsupported(String),
}

/// Result alias of the library.
pub type Result<T, E = DistillError> = std::result::Result<T, E>;

impl DistillError {
    /// Builds an [`DistillError::Io`] error.
    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            action,
            path: path.into(),
            source,
        }
    }

    /// Builds a [`DistillError::BadData`] error: what is wrong with the file at `path`.
    pub fn bad_data(path: impl Into<PathBuf>, reason: String) -> Self {
        Self::BadData {
            path: path.into(),
            reason,
        }
    }

    /// Builds an [`DistillError::Unknown`] error with a closest-match suggestion.
    pub fn unknown(kind: impl Into<String>, name: &str, known: &[&str]) -> Self {
        let hint = crate::suggest::suggest(name, known)
            .map(|s| format!(" (did you mean '{s}'?)"))
            .unwrap_or_default();
        Self::Unknown {
            kind: kind.into(),
            name: name.to_string(),
            hint,
            known: known.join(", "),
        }
    }
}
