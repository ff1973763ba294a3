//! A sweep: a grid of student recipes × teacher/student pairs × seeds, described in one file and
//! expanded into one experiment per pair (each pair's teacher is trained once and shared).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::experiment::{Backend, DataConfig, ExperimentConfig, StudentConfig, TeacherConfig};
use crate::error::{DistillError, Result};
use crate::knowledge::MethodConfig;
use crate::models::ModelSpec;
use crate::suggest::explain_serde_error;
use crate::train::plan::TrainConfig;

/// `[[pair]]`: a teacher and a student architecture.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PairConfig {
    /// Row-group name (default `teacher→student`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The teacher (trained here unless it names a checkpoint).
    pub teacher: TeacherConfig,
    /// The student architecture every recipe trains.
    pub student: ModelSpec,
}

/// `[[recipe]]`: one objective, applied to every pair.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecipeConfig {
    /// Row name (e.g. `KD`, `AT + KD`).
    pub name: String,
    /// The objective's terms.
    pub loss: Vec<MethodConfig>,
    /// Overrides of `[train]`.
    #[serde(default)]
    pub train: TrainConfig,
    /// Replaces the pair's student architecture for this recipe (e.g. for a method that needs
    /// the teacher's channel widths, as KDSVD); the table's parameter column shows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub student: Option<ModelSpec>,
}

/// The sweep file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepConfig {
    /// Name of the sweep folder under `output_dir`.
    pub name: String,
    /// Seeds of every recipe.
    #[serde(default = "default_seeds")]
    pub seeds: Vec<u64>,
    /// Output root (default `runs`).
    #[serde(default = "default_output")]
    pub output_dir: PathBuf,
    /// Backend.
    #[serde(default)]
    pub backend: Backend,
    /// Data.
    #[serde(default)]
    pub data: DataConfig,
    /// Default training settings.
    #[serde(default)]
    pub train: TrainConfig,
    /// Teacher/student pairs.
    pub pair: Vec<PairConfig>,
    /// Recipes.
    pub recipe: Vec<RecipeConfig>,
}

fn default_seeds() -> Vec<u64> {
    vec![1, 2, 3]
}
fn default_output() -> PathBuf {
    PathBuf::from("runs")
}

impl PairConfig {
    /// The pair's display name.
    pub fn display_name(&self) -> String {
        self.name
            .clone()
            .unwrap_or_else(|| format!("{}→{}", self.teacher.model, self.student.model))
    }
}

impl SweepConfig {
    /// Parses TOML, adding "did you mean" hints to unknown keys and names.
    pub fn from_toml(text: &str, origin: &str) -> Result<Self> {
        toml::from_str(text).map_err(|e| {
            DistillError::Config(format!("{origin}: {}", explain_serde_error(&e.to_string())))
        })
    }

    /// Reads and parses a sweep file.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| DistillError::io("reading sweep file", path, e))?;
        Self::from_toml(&text, &path.display().to_string())
    }

    /// One experiment per pair: the pair's teacher and one student per recipe.
    pub fn expand(&self) -> Result<Vec<(String, ExperimentConfig)>> {
        if self.pair.is_empty() || self.recipe.is_empty() {
            return Err(DistillError::Config(
                "a sweep needs at least one [[pair]] and one [[recipe]]".into(),
            ));
        }
        let mut names: Vec<String> = Vec::new();
        self.pair
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let name = p.display_name();
                if names.contains(&name) {
                    return Err(DistillError::Config(format!(
                        "two pairs are named '{name}'; give each [[pair]] a distinct name"
                    )));
                }
                names.push(name.clone());
                let students = self
                    .recipe
                    .iter()
                    .map(|r| {
                        let m = r.student.as_ref().unwrap_or(&p.student);
                        StudentConfig {
                            name: Some(r.name.clone()),
                            model: m.model.clone(),
                            hidden: m.hidden.clone(),
                            dropout: m.dropout,
                            width: m.width,
                            dim: m.dim,
                            layers: m.layers,
                            heads: m.heads,
                            vocab: m.vocab,
                            positions: m.positions,
                            view: None,
                            train_limit: None,
                            labels: true,
                            class_pairs: false,
                            peer: Vec::new(),
                            loss: r.loss.clone(),
                            train: r.train.clone(),
                        }
                    })
                    .collect();
                Ok((
                    name,
                    ExperimentConfig {
                        name: format!("pair{}", i + 1),
                        seeds: self.seeds.clone(),
                        output_dir: self.output_dir.join(&self.name),
                        backend: self.backend,
                        task: Default::default(),
                        scheme: Default::default(),
                        data: self.data.clone(),
                        train: self.train.clone(),
                        teacher: vec![p.teacher.clone()],
                        student: students,
                        ensemble: Vec::new(),
                        distributed: None,
                        federated: None,
                    },
                ))
            })
            .collect()
    }
}
