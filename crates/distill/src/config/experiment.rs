//! The experiment file (TOML) and its validated form, [`Plan`].

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::data::{Augment, DataSource, GraphConfig, ViewConfig, SOURCE_VIEW};
use crate::error::{DistillError, Result};
use crate::knowledge::{MethodConfig, STUDENT};
use crate::models::{ModelConfig, ModelSpec, RoleModel};
use crate::schemes::Scheme;
use crate::suggest::explain_serde_error;
use crate::tasks::Task;
use crate::train::plan::{TrainConfig, TrainPlan};

/// Which backend runs the experiment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// Pure-Rust CPU backend (always available).
    #[default]
    Flex,
    /// NVIDIA GPUs (cargo feature `cuda`).
    Cuda,
    /// Vulkan / Metal / DirectX through wgpu (cargo feature `wgpu`).
    Wgpu,
    /// Burn's JIT CPU backend: CubeCL kernels compiled through LLVM (cargo feature `cpu`;
    /// builds offline with `scripts/build-gpu.sh --cpu`, see the README's Backends section).
    Cpu,
}

impl Backend {
    /// Its name in configs (`backend = "..."`), which is also its cargo feature's.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Flex => "flex",
            Backend::Cuda => "cuda",
            Backend::Wgpu => "wgpu",
            Backend::Cpu => "cpu",
        }
    }
}

/// `[data]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    /// `embedded` (default), `fashion-mnist`, `idx`, `cifar10`, `cifar100`, `image-folder`,
    /// `csv`, `text`, `ts` or `retrieval`.
    #[serde(default)]
    pub source: DataSource,
    /// Folder of the IDX files (`idx`; optional for `fashion-mnist`), of CIFAR's binary files
    /// (`cifar10`, `cifar100`) or of the class folders (`image-folder`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dir: Option<PathBuf>,
    /// The CSV file (`csv`; relative to the working directory).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    /// The target column of a CSV file (`csv`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Fraction of a CSV file's rows held out as the test split (`csv`; default 0.2), or of a
    /// text's chapters (`text`; default 0.1: every 10th chapter).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_fraction: Option<f64>,
    /// Seed of the CSV split's shuffle (`csv`; default 0, the same split for every run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split_seed: Option<u64>,
    /// The column naming each row's list (a query id; `csv`, task = "ranking"): the rows of a
    /// group are one list to rank, the target their relevance grades, and the split holds out
    /// whole groups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// The test split's `.ts` file (`ts`; `path` is the training split's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_path: Option<PathBuf>,
    /// Tokens per window of a text (`text`; default 64): the language models' context.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<usize>,
    /// The text's tokenizer (`text`; `byte` (default) or `bpe`, trained on the training
    /// chapters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokenizer: Option<crate::data::text::TokenizerKind>,
    /// Most tokens of a `bpe` tokenizer (default 1024).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vocab_size: Option<usize>,
    /// The Hugging Face `tokenizer.json` of a retrieval set (`retrieval`), e.g. the teacher's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokenizer_file: Option<PathBuf>,
    /// Candidates per query of a retrieval set (`retrieval`; default 8).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub list_size: Option<usize>,
    /// A line starting with this begins a chapter of a text (`text`; default `CHAPTER`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chapter_marker: Option<String>,
    /// Use only the first N training images.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_limit: Option<usize>,
    /// Use only the first N test images.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_limit: Option<usize>,
    /// Number of classes, when the labels alone do not show it (an IDX set whose training split
    /// lacks some class). Default: 10 for `embedded` and `fashion-mnist`; for `idx`, the largest
    /// training label + 1, and every class below it must occur in the training split.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classes: Option<usize>,
    /// Resize every image of an image folder to `[height, width]` (`image-folder`; needed when
    /// its images differ in size).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_size: Option<[usize; 2]>,
    /// `false`: the images are an unlabeled transfer set (Hinton et al., 2015). Both splits'
    /// labels are dropped, every teacher comes from a checkpoint (or a recipe's student) and
    /// supplies all the targets, the models predict `classes` outputs (the teacher's, e.g. 1000
    /// for an ImageNet teacher), and the results report top-1 agreement with the teacher on
    /// the test split in place of accuracy. Default `true`.
    #[serde(default = "yes", skip_serializing_if = "is_yes")]
    pub labels: bool,
    /// Training augmentation.
    #[serde(default)]
    pub augment: Augment,
    /// Evaluation batch size (default 500).
    #[serde(default = "default_eval_batch")]
    pub eval_batch_size: usize,
    /// Further named views of every sample (`[[data.view]]`), derived from its input; a role
    /// reads one with `view = "..."`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub view: Vec<ViewConfig>,
    /// A k-nearest-neighbour graph over the samples of both splits (`[data.graph]`): the data
    /// become table rows of the node features `x` and their propagations `hop1`, `hop2`, …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub graph: Option<GraphConfig>,
}

fn default_eval_batch() -> usize {
    500
}

impl Default for DataConfig {
    fn default() -> Self {
        Self {
            source: DataSource::Embedded,
            dir: None,
            path: None,
            target: None,
            test_fraction: None,
            split_seed: None,
            group: None,
            test_path: None,
            context: None,
            tokenizer: None,
            vocab_size: None,
            tokenizer_file: None,
            list_size: None,
            chapter_marker: None,
            train_limit: None,
            test_limit: None,
            classes: None,
            image_size: None,
            labels: true,
            augment: Augment::default(),
            eval_batch_size: default_eval_batch(),
            view: Vec::new(),
            graph: None,
        }
    }
}

/// `[[teacher]]`: a frozen teacher role, loaded from a checkpoint or trained with the task's
/// supervised loss first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeacherConfig {
    /// Role name, by which terms address it (`teacher = "..."`; default: the architecture).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Architecture (see `distill models`).
    pub model: String,
    /// MLP hidden widths.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hidden: Option<Vec<usize>>,
    /// MLP dropout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dropout: Option<f64>,
    /// LeNet width multiplier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<usize>,
    /// GPT hidden width.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dim: Option<usize>,
    /// GPT blocks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layers: Option<usize>,
    /// GPT attention heads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heads: Option<usize>,
    /// BERT vocabulary size (default 30522).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vocab: Option<usize>,
    /// BERT positions (default 512).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub positions: Option<usize>,
    /// Checkpoint folder (holding `model.bpk` and `model.json`) of an already trained teacher,
    /// or a PyTorch state dict (`.pth`, `.pt`) or `.safetensors` file of the section's
    /// architecture (RepDistiller's names for the CIFAR ResNets), imported whole.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<PathBuf>,
    /// The `[[student]]` recipe whose trained student becomes this teacher (its first seed's
    /// best checkpoint), for the recipes listed after it: teacher-assistant chains, born-again
    /// generations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// The view of each sample the role reads (default `input`, the sample itself; see
    /// `[[data.view]]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub view: Option<String>,
    /// Overrides of `[train]` used when the teacher is trained here.
    #[serde(default)]
    pub train: TrainConfig,
    /// Memory budget of the teacher-output cache in MiB (default 1024; 0 runs the teacher at
    /// every step). Outputs are keyed by sample and augmented view, so results do not change.
    #[serde(default = "default_cache_mb")]
    pub cache_mb: usize,
    /// Sparse teacher store for a language model: keep each position's `k` most likely tokens
    /// and the remaining mass instead of its whole logit row (see `train::cache`); lossy, so the
    /// students train on the stored approximation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_topk: Option<usize>,
}

impl TeacherPlan {
    /// Whether this run trains it (neither a `checkpoint` nor a recipe's student).
    pub fn is_trained_here(&self) -> bool {
        self.checkpoint.is_none() && self.from.is_none()
    }
}

fn default_cache_mb() -> usize {
    1024
}

/// `[[student]]`: one student recipe ("arm"), trained once per seed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StudentConfig {
    /// Row name in the results table (default: the model name plus its methods).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Architecture (see `distill models`).
    pub model: String,
    /// MLP hidden widths.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hidden: Option<Vec<usize>>,
    /// MLP dropout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dropout: Option<f64>,
    /// LeNet width multiplier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<usize>,
    /// GPT hidden width.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dim: Option<usize>,
    /// GPT blocks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layers: Option<usize>,
    /// GPT attention heads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heads: Option<usize>,
    /// BERT vocabulary size (default 30522).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vocab: Option<usize>,
    /// BERT positions (default 512).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub positions: Option<usize>,
    /// The view of each sample the role reads (default `input`, the sample itself; see
    /// `[[data.view]]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub view: Option<String>,
    /// Train this student on the first N training images only (a data-starved student, Hinton
    /// et al.'s small transfer set); the teacher keeps the whole split. Default: all of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_limit: Option<usize>,
    /// Whether the recipe trains with the training samples' targets (default true). `false`
    /// makes them an unlabeled transfer set that only the teachers' outputs supervise (Hinton
    /// et al.'s transfer set need not be labelled); terms that read targets are then refused.
    #[serde(default = "yes", skip_serializing_if = "is_yes")]
    pub labels: bool,
    /// Pair every training sample with another sample of its class, drawn each epoch (the
    /// batch holds each anchor followed by its partner; what `cs-kd` reads). Default false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub class_pairs: bool,
    /// Further trainable roles of the recipe, trained jointly with its student by the same
    /// objective (`[[student.peer]]`: mutual learning, online ensembles).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub peer: Vec<PeerConfig>,
    /// The objective: a weighted sum of these terms (`[[student.loss]]`).
    pub loss: Vec<MethodConfig>,
    /// Overrides of `[train]` for this student.
    #[serde(default)]
    pub train: TrainConfig,
}

/// `[[student.peer]]`: a further trainable role of a student recipe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerConfig {
    /// Role name, by which terms address it (`student = "..."`, `teacher = "..."`).
    pub name: String,
    /// Architecture (see `distill models`).
    pub model: String,
    /// MLP hidden widths.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hidden: Option<Vec<usize>>,
    /// MLP dropout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dropout: Option<f64>,
    /// LeNet width multiplier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<usize>,
    /// GPT hidden width.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dim: Option<usize>,
    /// GPT blocks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layers: Option<usize>,
    /// GPT attention heads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heads: Option<usize>,
    /// BERT vocabulary size (default 30522).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vocab: Option<usize>,
    /// BERT positions (default 512).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub positions: Option<usize>,
    /// The view of each sample the role reads (default `input`, the sample itself; see
    /// `[[data.view]]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub view: Option<String>,
}

/// `[[ensemble]]`: a results row for the mean output of several frozen teachers (e.g. the
/// generations of a born-again chain), evaluated once every phase has run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnsembleConfig {
    /// Row name.
    pub name: String,
    /// The `[[teacher]]` roles whose outputs (logits, predictions or scores) are averaged.
    pub teachers: Vec<String>,
}

/// The experiment file as written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExperimentConfig {
    /// Name of the run folder under `output_dir`.
    pub name: String,
    /// Seeds; each student is trained once per seed (default `[1]`).
    #[serde(default = "default_seeds")]
    pub seeds: Vec<u64>,
    /// Where run folders go (default `runs`).
    #[serde(default = "default_output")]
    pub output_dir: PathBuf,
    /// `flex` (default), `cuda` or `wgpu`.
    #[serde(default)]
    pub backend: Backend,
    /// The task (default `classification`).
    #[serde(default)]
    pub task: Task,
    /// The scheme (default `offline`; see `distill schemes`).
    #[serde(default)]
    pub scheme: Scheme,
    /// Data.
    #[serde(default)]
    pub data: DataConfig,
    /// Default training settings.
    #[serde(default)]
    pub train: TrainConfig,
    /// The frozen teachers (`[[teacher]]`, any number; none for students trained with `ce`
    /// alone or by their peers).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub teacher: Vec<TeacherConfig>,
    /// Student recipes.
    pub student: Vec<StudentConfig>,
    /// Ensembles of frozen teachers, each a results row (`[[ensemble]]`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ensemble: Vec<EnsembleConfig>,
    /// Data-parallel training over several devices of the backend (`[distributed]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distributed: Option<DistributedSettings>,
    /// The clients and rounds of `scheme = "federated"` (`[federated]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub federated: Option<FederatedConfig>,
}

/// `[federated]`: simulated federated learning in one process (`scheme = "federated"`). The
/// training split is divided among `clients` (non-IID by a Dirichlet draw over the classes when
/// `alpha` is set); each round a fraction `participation` of them trains the global model on its
/// own share with the task's supervised loss (`local`), the server averages their weights by
/// sample count (FedAvg), and a recipe with terms then distils the clients' ensemble into the
/// average on the server's unlabeled samples (FedDF).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FederatedConfig {
    /// Simulated clients (default 10).
    #[serde(default = "default_clients")]
    pub clients: usize,
    /// Communication rounds (default 10).
    #[serde(default = "default_rounds")]
    pub rounds: usize,
    /// Fraction of the clients that train in each round, at least one (default 1).
    #[serde(default = "default_participation")]
    pub participation: f64,
    /// Concentration of the Dirichlet draw of each class's split over the clients (0.1: each
    /// client holds few classes; 100: close to IID). Absent: an IID split, equal random shares.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alpha: Option<f64>,
    /// Training samples set aside, before the clients' split, as the server's unlabeled
    /// distillation set (default 0; FedDF recipes need some).
    #[serde(default)]
    pub server_samples: usize,
    /// Overrides of `[train]` for the clients' local training (e.g. `epochs` per round, `lr`).
    #[serde(default)]
    pub local: TrainConfig,
}

fn default_clients() -> usize {
    10
}
fn default_rounds() -> usize {
    10
}
fn default_participation() -> f64 {
    1.0
}

/// Validated `[federated]` settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FederatedPlan {
    /// Simulated clients.
    pub clients: usize,
    /// Communication rounds.
    pub rounds: usize,
    /// Fraction of clients per round.
    pub participation: f64,
    /// Dirichlet concentration (`None`: IID).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alpha: Option<f64>,
    /// The server's unlabeled samples.
    pub server_samples: usize,
    /// The clients' local training.
    pub local: TrainPlan,
}

impl FederatedPlan {
    /// Clients that train in each round: `round(participation × clients)`, at least one.
    pub fn per_round(&self) -> usize {
        ((self.participation * self.clients as f64).round() as usize).clamp(1, self.clients)
    }
}

impl FederatedConfig {
    fn validate(&self, base: &TrainConfig) -> Result<FederatedPlan> {
        let cfg = |m: String| Err(DistillError::Config(m));
        if self.clients < 2 {
            return cfg(format!(
                "federated.clients must be at least 2, got {}",
                self.clients
            ));
        }
        if self.rounds == 0 {
            return cfg("federated.rounds must be at least 1".into());
        }
        if !(self.participation > 0.0 && self.participation <= 1.0) {
            return cfg(format!(
                "federated.participation is the fraction of clients per round, in (0, 1], got {}",
                self.participation
            ));
        }
        if let Some(a) = self.alpha {
            if !(a.is_finite() && a > 0.0) {
                return cfg(format!(
                    "federated.alpha must be a positive number (0.1: very non-IID, 100: nearly IID), got {a}; remove it for an IID split"
                ));
            }
        }
        Ok(FederatedPlan {
            clients: self.clients,
            rounds: self.rounds,
            participation: self.participation,
            alpha: self.alpha,
            server_samples: self.server_samples,
            local: base.overlay(&self.local).resolve("federated.local")?,
        })
    }
}

impl From<&FederatedPlan> for FederatedConfig {
    fn from(f: &FederatedPlan) -> Self {
        FederatedConfig {
            clients: f.clients,
            rounds: f.rounds,
            participation: f.participation,
            alpha: f.alpha,
            server_samples: f.server_samples,
            local: TrainConfig::from(&f.local),
        }
    }
}

/// `[distributed]`: data-parallel training with Burn's own distributed support. Each listed
/// device trains a replica on an equal shard of every batch and Burn all-reduces the gradients.
/// Needs a backend with collective operations: `cuda` (NCCL) in Burn 0.22.1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DistributedSettings {
    /// Device indices of the backend (e.g. `[0, 1, 2, 3]` for four GPUs); the first one
    /// evaluates and writes checkpoints.
    pub devices: Vec<usize>,
}

fn yes() -> bool {
    true
}
fn is_yes(v: &bool) -> bool {
    *v
}

pub(crate) fn source_view() -> String {
    SOURCE_VIEW.into()
}
pub(crate) fn is_source_view(v: &str) -> bool {
    v == SOURCE_VIEW
}

fn default_seeds() -> Vec<u64> {
    vec![1]
}
fn default_output() -> PathBuf {
    PathBuf::from("runs")
}

/// A validated teacher.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TeacherPlan {
    /// Role name.
    pub name: String,
    /// Architecture.
    pub model: ModelConfig,
    /// Where to load it from, if it is not trained here.
    pub checkpoint: Option<PathBuf>,
    /// The recipe whose student it is, if it is trained by one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// The view it reads.
    #[serde(default = "source_view", skip_serializing_if = "is_source_view")]
    pub view: String,
    /// How to train it otherwise.
    pub train: TrainPlan,
    /// Teacher-output cache budget in MiB (0: off).
    pub cache_mb: usize,
    /// Sparse logits: the `k` most likely tokens kept per position.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_topk: Option<usize>,
}

/// A validated student recipe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StudentPlan {
    /// Unique row name.
    pub name: String,
    /// Architecture.
    pub model: ModelConfig,
    /// The view the student reads.
    #[serde(default = "source_view", skip_serializing_if = "is_source_view")]
    pub view: String,
    /// Train on the first N training images only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_limit: Option<usize>,
    /// Whether it trains with the targets (`false`: an unlabeled transfer set).
    #[serde(default = "yes", skip_serializing_if = "is_yes")]
    pub labels: bool,
    /// Whether each training sample comes with a partner of its class.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub class_pairs: bool,
    /// Further trainable roles, trained jointly with the student.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub peers: Vec<RoleModel>,
    /// Objective terms.
    pub losses: Vec<MethodConfig>,
    /// Training settings.
    pub train: TrainPlan,
}

/// A validated experiment: the only input the runner accepts. Serialised as the run's
/// `resolved.toml` and by `--dump-config`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// Run name.
    pub name: String,
    /// Seeds.
    pub seeds: Vec<u64>,
    /// Output root.
    pub output_dir: PathBuf,
    /// Backend.
    pub backend: Backend,
    /// Task.
    pub task: Task,
    /// Scheme.
    pub scheme: Scheme,
    /// Data.
    pub data: DataConfig,
    /// Frozen teachers.
    pub teachers: Vec<TeacherPlan>,
    /// Students.
    pub students: Vec<StudentPlan>,
    /// Ensembles of frozen teachers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ensembles: Vec<EnsembleConfig>,
    /// Devices of a data-parallel run (empty: the backend's default device alone).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<usize>,
    /// Clients and rounds of the federated scheme.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub federated: Option<FederatedPlan>,
}

/// Refuses half precision on the backends it is not built for: Burn's wgpu and JIT cpu
/// backends support bf16 and f16 only for some operations (cubecl-wgpu registers bf16 for
/// conversions alone, and not at all under WGSL).
fn check_precision(
    backend: Backend,
    teachers: &[TeacherPlan],
    students: &[StudentPlan],
) -> Result<()> {
    if matches!(backend, Backend::Flex | Backend::Cuda) {
        return Ok(());
    }
    let trained = teachers
        .iter()
        .filter(|t| t.is_trained_here())
        .map(|t| (&t.name, &t.train))
        .chain(students.iter().map(|s| (&s.name, &s.train)));
    for (name, plan) in trained {
        if plan.precision != crate::config::Precision::F32 {
            return Err(DistillError::Unsupported(format!(
                "{name}: train.precision = \"{}\" is not available on the {} backend (its kernels do not cover half precision); use backend = \"cuda\" or \"flex\", or remove train.precision",
                format!("{:?}", plan.precision).to_lowercase(),
                backend.name()
            )));
        }
    }
    Ok(())
}

/// Checks a `[distributed]` section against the backend and the batch sizes.
fn check_distributed(
    d: &DistributedSettings,
    backend: Backend,
    students: &[StudentPlan],
) -> Result<Vec<usize>> {
    if d.devices.is_empty() {
        return Err(DistillError::Config(
            "distributed.devices must list at least one device index, e.g. [0, 1]".into(),
        ));
    }
    let mut seen = d.devices.clone();
    seen.sort_unstable();
    seen.dedup();
    if seen.len() != d.devices.len() {
        return Err(DistillError::Config(format!(
            "distributed.devices lists a device twice: {:?}",
            d.devices
        )));
    }
    match backend {
        Backend::Cuda => {}
        Backend::Flex => {
            return Err(DistillError::Unsupported(
                "[distributed] needs a backend with collective operations, and Burn's flex CPU backend has none (its all-reduce is unimplemented and would panic). Remove the [distributed] section to train on the CPU, or set backend = \"cuda\" and build with --features cuda".into(),
            ))
        }
        Backend::Cpu | Backend::Wgpu => {
            let name = if backend == Backend::Cpu {
                "JIT cpu"
            } else {
                "wgpu"
            };
            return Err(DistillError::Unsupported(format!(
                "[distributed] is not available on the {name} backend: Burn 0.22.1 implements the gradient all-reduce only for CUDA devices (NCCL). Remove the [distributed] section to train on this backend, or set backend = \"cuda\" and build with --features cuda"
            )));
        }
    }
    for s in students {
        if s.train.batch_size % d.devices.len() != 0 {
            return Err(DistillError::Config(format!(
                "{}: batch_size {} does not split evenly over {} devices; use a multiple of {}",
                s.name,
                s.train.batch_size,
                d.devices.len(),
                d.devices.len()
            )));
        }
    }
    Ok(d.devices.clone())
}

/// The model settings of a `[[teacher]]`, `[[student]]` or `[[student.peer]]` table, which keep
/// them flat beside their other keys (so that an unknown key is still an error).
macro_rules! model_table {
    ($($table:ty),*) => {$(
        impl $table {
            /// The table's model as written.
            pub fn spec(&self) -> ModelSpec {
                ModelSpec {
                    model: self.model.clone(),
                    hidden: self.hidden.clone(),
                    dropout: self.dropout,
                    width: self.width,
                    dim: self.dim,
                    layers: self.layers,
                    heads: self.heads,
                    vocab: self.vocab,
                    positions: self.positions,
                }
            }
        }
    )*};
}

model_table!(TeacherConfig, StudentConfig, PeerConfig);

/// Role names are folder names and table labels: plain, non-empty, without path separators.
fn check_role_name(name: &str, role: &str) -> Result<()> {
    if name.trim().is_empty() || name.contains(['/', '\\']) || name == "." || name == ".." {
        return Err(DistillError::Config(format!(
            "{role}: a role name must be a plain non-empty name without '/', got {name:?}"
        )));
    }
    Ok(())
}

impl ExperimentConfig {
    /// Parses TOML, adding "did you mean" hints to unknown keys and names.
    pub fn from_toml(text: &str, origin: &str) -> Result<Self> {
        toml::from_str(text).map_err(|e| {
            DistillError::Config(format!("{origin}: {}", explain_serde_error(&e.to_string())))
        })
    }

    /// Reads and parses an experiment file.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| DistillError::io("reading experiment file", path, e))?;
        Self::from_toml(&text, &path.display().to_string())
    }

    /// Checks everything that can be checked without data or models and fills in defaults.
    pub fn validate(&self) -> Result<Plan> {
        let cfg = |m: String| DistillError::Config(m);
        if self.name.is_empty() || self.name.contains(['/', '\\']) || self.name == ".." {
            return Err(cfg(format!(
                "name must be a plain folder name, got {:?}",
                self.name
            )));
        }
        if self.seeds.is_empty() {
            return Err(cfg("seeds must list at least one seed".into()));
        }
        if let Some(dup) = self
            .seeds
            .iter()
            .enumerate()
            .find(|(i, s)| self.seeds[..*i].contains(s))
            .map(|(_, s)| s)
        {
            return Err(cfg(format!(
                "seeds lists seed {dup} twice ({:?}); each seed trains a separate run, and repeats would only duplicate it (and report a misleading ± 0.00): list distinct seeds",
                self.seeds
            )));
        }
        self.data.check()?;
        if !self.data.labels && (self.teacher.is_empty() || self.scheme == Scheme::Federated) {
            return Err(cfg("data.labels = false leaves only a teacher's outputs to learn from: add a [[teacher]] with a `checkpoint` (federated clients train on labels, so scheme = \"federated\" cannot use it), or set data.labels = true".into()));
        }
        if !self.data.labels && self.task != Task::Classification {
            return Err(cfg(format!(
                "data.labels = false makes an unlabeled transfer set for a classifier teacher, but task = \"{}\"; remove data.labels, or set task = \"classification\"",
                self.task.name()
            )));
        }
        if self.student.is_empty() {
            return Err(cfg("add at least one [[student]] section".into()));
        }
        let view = |v: &Option<String>, role: &str| self.data.role_view(v.as_deref(), role);
        let mut teachers: Vec<TeacherPlan> = Vec::new();
        for (i, t) in self.teacher.iter().enumerate() {
            let spec = t.spec();
            let name = t.name.clone().unwrap_or_else(|| t.model.clone());
            let role = format!("teacher #{} ({name})", i + 1);
            let model = spec.resolve(&role)?;
            check_role_name(&name, &role)?;
            if teachers.iter().any(|p| p.name == name) {
                return Err(cfg(format!(
                    "two teachers are named '{name}'; give each [[teacher]] a distinct `name` (terms address them by it)"
                )));
            }
            if t.checkpoint.is_some() && t.from.is_some() {
                return Err(cfg(format!(
                    "{role}: `checkpoint` and `from` both say where the teacher comes from; keep one"
                )));
            }
            if !self.data.labels && t.checkpoint.is_none() && t.from.is_none() {
                return Err(cfg(format!(
                    "{role}: data.labels = false leaves no labels to train a teacher on; point `checkpoint` at a trained teacher (a checkpoint folder or a .pth/.safetensors file), or set data.labels = true"
                )));
            }
            teachers.push(TeacherPlan {
                view: view(&t.view, &role)?,
                from: t.from.clone(),
                name,
                model,
                checkpoint: t.checkpoint.clone(),
                train: self.train.overlay(&t.train).resolve(&role)?,
                cache_mb: t.cache_mb,
                cache_topk: match t.cache_topk {
                    Some(0) => {
                        return Err(DistillError::Config(format!(
                            "{role}: cache_topk must be at least 1 (the most likely tokens kept per position), or left out to keep whole logit rows"
                        )))
                    }
                    Some(_) if self.task != Task::Generation => {
                        return Err(DistillError::Config(format!(
                            "{role}: cache_topk keeps a language model's most likely next tokens and applies to task = \"generation\" only; remove it"
                        )))
                    }
                    Some(_) if t.cache_mb == 0 => {
                        return Err(DistillError::Config(format!(
                            "{role}: cache_topk shapes the teacher cache, but cache_mb = 0 turns it off; give the cache a budget"
                        )))
                    }
                    k => k,
                },
            });
        }
        let mut students: Vec<StudentPlan> = Vec::new();
        for (i, s) in self.student.iter().enumerate() {
            let spec = s.spec();
            let role = format!(
                "student #{} ({})",
                i + 1,
                s.name.as_deref().unwrap_or(&s.model)
            );
            let model = spec.resolve(&role)?;
            // A federated recipe's terms are the server's distillation; none is plain FedAvg.
            if s.loss.is_empty() && self.scheme != Scheme::Federated {
                return Err(cfg(format!(
                    "{role}: add at least one [[student.loss]] term, e.g. method = \"ce\""
                )));
            }
            let name = s.name.clone().unwrap_or_else(|| {
                let methods: Vec<&str> = s.loss.iter().map(|l| l.info().name).collect();
                if methods.is_empty() {
                    format!("{}-fedavg", s.model)
                } else {
                    format!("{}-{}", s.model, methods.join("+"))
                }
            });
            if students.iter().any(|p| p.name == name) {
                return Err(cfg(format!(
                    "two students are named '{name}'; give each [[student]] a distinct name"
                )));
            }
            for (k, l) in s.loss.iter().enumerate() {
                l.check_numbers().map_err(|m| {
                    cfg(format!("{role}, loss #{} ({}): {m}", k + 1, l.info().name))
                })?;
            }
            let mut peers: Vec<RoleModel> = Vec::new();
            for p in &s.peer {
                let spec = p.spec();
                let what = format!("{role}, peer '{}'", p.name);
                let model = spec.resolve(&what)?;
                check_role_name(&p.name, &what)?;
                if p.name == STUDENT
                    || peers.iter().any(|q| q.name == p.name)
                    || teachers.iter().any(|t| t.name == p.name)
                {
                    return Err(cfg(format!(
                        "{what}: the name is taken (by the recipe's `student`, another peer or a teacher); give each role a distinct name"
                    )));
                }
                peers.push(RoleModel {
                    view: view(&p.view, &what)?,
                    name: p.name.clone(),
                    model,
                });
            }
            if s.class_pairs && (self.task != Task::Classification || !s.labels) {
                return Err(cfg(format!(
                    "{role}: class_pairs pairs samples of the same class, so it needs task = \"classification\" and labels = true"
                )));
            }
            if s.train_limit == Some(0) {
                return Err(cfg(format!(
                    "{role}: train_limit = 0 would leave the student no images; give a positive number, or remove it to train on the whole split"
                )));
            }
            students.push(StudentPlan {
                view: view(&s.view, &role)?,
                name,
                train_limit: s.train_limit,
                model,
                labels: s.labels,
                class_pairs: s.class_pairs,
                peers,
                losses: s.loss.clone(),
                train: self.train.overlay(&s.train).resolve(&role)?,
            });
        }
        check_sources(&teachers, &students)?;
        for (i, e) in self.ensemble.iter().enumerate() {
            let what = format!("[[ensemble]] '{}'", e.name);
            check_role_name(&e.name, &what)?;
            if e.teachers.len() < 2 {
                return Err(cfg(format!(
                    "{what} averages at least two teachers, got {:?}",
                    e.teachers
                )));
            }
            let names: Vec<&str> = teachers.iter().map(|t| t.name.as_str()).collect();
            for (k, t) in e.teachers.iter().enumerate() {
                if !names.contains(&t.as_str()) {
                    return Err(DistillError::unknown(
                        format!("teacher of {what}"),
                        t,
                        &names,
                    ));
                }
                if e.teachers[..k].contains(t) {
                    return Err(cfg(format!("{what} lists teacher '{t}' twice")));
                }
            }
            if self.ensemble[..i].iter().any(|o| o.name == e.name)
                || students.iter().any(|s| s.name == e.name)
            {
                return Err(cfg(format!(
                    "{what}: the row name is taken by another ensemble or a student recipe; give it a distinct name"
                )));
            }
        }
        if self.task == Task::Ranking && self.distributed.is_some() {
            return Err(cfg(
                "[distributed] does not shard ranking lists yet; remove [distributed] to train the ranking task on one device".into(),
            ));
        }
        let lists = self.data.group.is_some() || self.data.source == DataSource::Retrieval;
        if (self.task == Task::Ranking) != lists {
            return Err(cfg(if self.task == Task::Ranking {
                "task = \"ranking\" needs lists: a CSV file (data.source = \"csv\") with data.group naming the query column and data.target the relevance grades, or a retrieval set (data.source = \"retrieval\")".into()
            } else if self.data.group.is_none() {
                format!(
                    "data.source = \"retrieval\" makes ranking lists, but task = \"{}\"; set task = \"ranking\"",
                    self.task.name()
                )
            } else {
                format!(
                    "data.group makes ranking lists, but task = \"{}\"; set task = \"ranking\", or remove data.group",
                    self.task.name()
                )
            }));
        }
        check_precision(self.backend, &teachers, &students)?;
        let devices = match &self.distributed {
            None => Vec::new(),
            Some(d) => check_distributed(d, self.backend, &students)?,
        };
        let federated = match (&self.federated, self.scheme) {
            (None, Scheme::Federated) => {
                return Err(cfg(
                    "scheme = \"federated\" needs a [federated] section (clients, rounds, participation, alpha, server_samples, local)".into(),
                ))
            }
            (Some(_), s) if s != Scheme::Federated => {
                return Err(cfg(format!(
                    "[federated] applies to scheme = \"federated\", but scheme = \"{}\"; set the scheme, or remove the section",
                    s.info().name
                )))
            }
            (None, _) => None,
            (Some(f), _) => {
                let f = f.validate(&self.train)?;
                check_federated(&f, self, &students)?;
                Some(f)
            }
        };
        Ok(Plan {
            federated,
            devices,
            name: self.name.clone(),
            seeds: self.seeds.clone(),
            output_dir: self.output_dir.clone(),
            backend: self.backend,
            task: self.task,
            scheme: self.scheme,
            data: self.data.clone(),
            teachers,
            students,
            ensembles: self.ensemble.clone(),
        })
    }
}

impl From<&TeacherPlan> for TeacherConfig {
    /// The teacher with every setting written out.
    fn from(t: &TeacherPlan) -> Self {
        let m = ModelSpec::from(&t.model);
        TeacherConfig {
            name: Some(t.name.clone()),
            model: m.model,
            hidden: m.hidden,
            dropout: m.dropout,
            width: m.width,
            dim: m.dim,
            layers: m.layers,
            heads: m.heads,
            vocab: m.vocab,
            positions: m.positions,
            checkpoint: t.checkpoint.clone(),
            from: t.from.clone(),
            view: written_view(&t.view),
            train: TrainConfig::from(&t.train),
            cache_mb: t.cache_mb,
            cache_topk: t.cache_topk,
        }
    }
}

impl From<&StudentPlan> for StudentConfig {
    /// The student recipe with every setting written out.
    fn from(s: &StudentPlan) -> Self {
        let m = ModelSpec::from(&s.model);
        StudentConfig {
            name: Some(s.name.clone()),
            model: m.model,
            hidden: m.hidden,
            dropout: m.dropout,
            width: m.width,
            dim: m.dim,
            layers: m.layers,
            heads: m.heads,
            vocab: m.vocab,
            positions: m.positions,
            view: written_view(&s.view),
            train_limit: s.train_limit,
            labels: s.labels,
            class_pairs: s.class_pairs,
            peer: s
                .peers
                .iter()
                .map(|p| {
                    let m = ModelSpec::from(&p.model);
                    PeerConfig {
                        name: p.name.clone(),
                        model: m.model,
                        hidden: m.hidden,
                        dropout: m.dropout,
                        width: m.width,
                        dim: m.dim,
                        layers: m.layers,
                        heads: m.heads,
                        vocab: m.vocab,
                        positions: m.positions,
                        view: written_view(&p.view),
                    }
                })
                .collect(),
            loss: s.losses.clone(),
            train: TrainConfig::from(&s.train),
        }
    }
}

/// A role's view as written: absent for the source input.
fn written_view(v: &str) -> Option<String> {
    (!is_source_view(v)).then(|| v.to_string())
}

/// What the federated scheme does not combine with: its clients are its only teachers, its
/// recipes train one global model on the whole (split) training set with labels.
fn check_federated(
    f: &FederatedPlan,
    e: &ExperimentConfig,
    students: &[StudentPlan],
) -> Result<()> {
    let cfg = |m: String| Err(DistillError::Config(m));
    if !e.teacher.is_empty() || !e.ensemble.is_empty() {
        return cfg("scheme = \"federated\": the clients of each round are the server's teachers; remove the [[teacher]] and [[ensemble]] sections".into());
    }
    if e.distributed.is_some() {
        return cfg(
            "scheme = \"federated\" simulates its clients on one device; remove [distributed]"
                .into(),
        );
    }
    match e.task {
        Task::Classification => {}
        Task::Regression if f.alpha.is_none() => {}
        Task::Regression => {
            return cfg("federated.alpha splits the classes over the clients, and a regression task has none; remove alpha for an IID split".into())
        }
        Task::Ranking | Task::Generation => {
            return cfg(format!("scheme = \"federated\" does not split {} data over clients yet; use task = \"classification\" or \"regression\"", e.task.name()))
        }
    }
    for s in students {
        let what = format!("student '{}' (scheme = \"federated\")", s.name);
        if !s.peers.is_empty() || s.train_limit.is_some() || !s.labels || s.class_pairs {
            return cfg(format!(
                "{what}: a federated recipe trains one global model from the clients' labelled shares; remove peer, train_limit, labels and class_pairs"
            ));
        }
        if !s.losses.is_empty() && f.server_samples == 0 {
            return cfg(format!(
                "{what}: its terms distil the clients into the global model on the server's unlabeled samples, but federated.server_samples = 0; set it (e.g. 2000), or remove the terms for plain FedAvg"
            ));
        }
    }
    Ok(())
}

/// Checks the teachers that recipes train (`from`): the recipe exists, trains a student of the
/// teacher's architecture, and no two teachers come from one recipe. The teacher may read
/// another view than the recipe's student did (the same model on another domain), if its
/// input has the same shape (checked with the data).
fn check_sources(teachers: &[TeacherPlan], students: &[StudentPlan]) -> Result<()> {
    for (i, t) in teachers.iter().enumerate() {
        let Some(from) = &t.from else { continue };
        let Some(recipe) = students.iter().find(|s| &s.name == from) else {
            let names: Vec<&str> = students.iter().map(|s| s.name.as_str()).collect();
            return Err(DistillError::unknown(
                format!("[[student]] recipe of teacher '{}' (from = ...)", t.name),
                from,
                &names,
            ));
        };
        let differs = t.model.architecture_differences(&recipe.model);
        if !differs.is_empty() {
            return Err(DistillError::Config(format!(
                "teacher '{}' comes from recipe '{from}', whose student differs from the [[teacher]] section ({}); describe the recipe's student there",
                t.name,
                differs.join("; ")
            )));
        }
        if let Some(other) = teachers[..i].iter().find(|o| o.from.as_ref() == Some(from)) {
            return Err(DistillError::Config(format!(
                "teachers '{}' and '{}' both come from recipe '{from}'; one [[teacher]] per recipe is enough (terms can name it)",
                other.name, t.name
            )));
        }
    }
    Ok(())
}

impl DataConfig {
    /// The view a role reads: `input` when it names none, else one declared in `[[data.view]]`.
    pub fn role_view(&self, view: Option<&str>, role: &str) -> Result<String> {
        let Some(v) = view else {
            return Ok(SOURCE_VIEW.into());
        };
        if v == SOURCE_VIEW || self.view.iter().any(|d| d.name == v) {
            return Ok(v.into());
        }
        let names: Vec<&str> = std::iter::once(SOURCE_VIEW)
            .chain(self.view.iter().map(|d| d.name.as_str()))
            .collect();
        Err(DistillError::unknown(
            format!("view of {role} (declare it with [[data.view]])"),
            v,
            &names,
        ))
    }

    /// Checks the settings that need no data: limits and batch sizes of at least 1.
    pub fn check(&self) -> Result<()> {
        let cfg = |m: String| Err(DistillError::Config(m));
        if self.eval_batch_size == 0 {
            return cfg("data.eval_batch_size must be at least 1".into());
        }
        for (key, v) in [
            ("train_limit", self.train_limit),
            ("test_limit", self.test_limit),
        ] {
            if v == Some(0) {
                return cfg(format!(
                    "data.{key} = 0 would leave no images; give a positive number of images, or remove data.{key} to use the whole split"
                ));
            }
        }
        let csv = self.source == DataSource::Csv;
        let text = self.source == DataSource::Text;
        let ts = self.source == DataSource::Ts;
        let retrieval = self.source == DataSource::Retrieval;
        let texts = text || retrieval;
        for (key, set, applies) in [
            ("path", self.path.is_some(), csv || texts || ts),
            ("test_path", self.test_path.is_some(), ts),
            ("target", self.target.is_some(), csv),
            ("test_fraction", self.test_fraction.is_some(), csv || texts),
            ("split_seed", self.split_seed.is_some(), csv),
            ("group", self.group.is_some(), csv),
            ("context", self.context.is_some(), texts),
            ("tokenizer", self.tokenizer.is_some(), text),
            ("vocab_size", self.vocab_size.is_some(), text),
            ("tokenizer_file", self.tokenizer_file.is_some(), retrieval),
            ("list_size", self.list_size.is_some(), retrieval),
            ("chapter_marker", self.chapter_marker.is_some(), texts),
            (
                "image_size",
                self.image_size.is_some(),
                self.source == DataSource::ImageFolder,
            ),
        ] {
            if set && !applies {
                let sources = match key {
                    "tokenizer" | "vocab_size" => "\"text\"",
                    "tokenizer_file" | "list_size" => "\"retrieval\"",
                    "context" | "chapter_marker" => "\"text\" or \"retrieval\"",
                    "test_path" => "\"ts\"",
                    "image_size" => "\"image-folder\"",
                    "path" => "\"csv\", \"text\", \"retrieval\" or \"ts\"",
                    "test_fraction" => "\"csv\", \"text\" or \"retrieval\"",
                    _ => "\"csv\"",
                };
                return cfg(format!(
                    "data.{key} applies to source = {sources} only; remove it, or set data.source = {sources}"
                ));
            }
        }
        if ts && (self.path.is_none() || self.test_path.is_none()) {
            return cfg("data.source = \"ts\" needs data.path and data.test_path, the training and test .ts files (scripts/fetch-data.sh japanese-vowels installs Japanese Vowels)".into());
        }
        if ts && (self.augment.is_enabled() || self.classes.is_some() || self.dir.is_some()) {
            return cfg("data.augment, data.classes and data.dir do not apply to source = \"ts\" (its classes are the file's @classLabel); remove them".into());
        }
        if retrieval {
            if self.path.is_none() || self.tokenizer_file.is_none() {
                return cfg("data.source = \"retrieval\" needs data.path, the UTF-8 text, and data.tokenizer_file, the teacher's Hugging Face tokenizer.json (scripts/fetch-data.sh moby-dick and minilm install Moby-Dick and all-MiniLM-L6-v2)".into());
            }
            if self.augment.is_enabled() || self.classes.is_some() || self.dir.is_some() {
                return cfg("data.augment, data.classes and data.dir do not apply to source = \"retrieval\"; remove them".into());
            }
        }
        if text {
            if self.path.is_none() {
                return cfg("data.source = \"text\" needs data.path, the UTF-8 text file (scripts/fetch-data.sh moby-dick installs Moby-Dick)".into());
            }
            if self.context.is_some_and(|c| c < 2) {
                return cfg(format!(
                    "data.context must be at least 2 tokens, got {}",
                    self.context.unwrap_or(0)
                ));
            }
            if self.vocab_size.is_some()
                && self.tokenizer != Some(crate::data::text::TokenizerKind::Bpe)
            {
                return cfg("data.vocab_size sizes a BPE tokenizer; set data.tokenizer = \"bpe\", or remove data.vocab_size (the byte tokenizer has 256 tokens)".into());
            }
            if self.augment.is_enabled() || self.classes.is_some() || self.dir.is_some() {
                return cfg("data.augment, data.classes and data.dir do not apply to source = \"text\" (its classes are the tokenizer's vocabulary); remove them".into());
            }
        }
        if csv {
            if self.path.is_none() || self.target.is_none() {
                return cfg(
                    "data.source = \"csv\" needs data.path (the CSV file) and data.target (the column to predict)".into(),
                );
            }
            if let Some(f) = self.test_fraction {
                if !(f > 0.0 && f < 1.0) {
                    return cfg(format!(
                        "data.test_fraction must be between 0 and 1 (exclusive), got {f}"
                    ));
                }
            }
            if self.augment.is_enabled() {
                return cfg(
                    "data.augment applies to images; a CSV table has none: remove it".into(),
                );
            }
            if self.classes.is_some() || self.dir.is_some() {
                return cfg(
                    "data.classes and data.dir do not apply to source = \"csv\"; remove them"
                        .into(),
                );
            }
        }
        if let Some(g) = &self.graph {
            g.check()?;
            if self.augment.is_enabled() {
                return cfg(
                    "data.augment transforms images, and data.graph turns the samples into table rows of node features; remove one of them".into(),
                );
            }
        }
        for (i, v) in self.view.iter().enumerate() {
            v.validate()?;
            if self.view[..i].iter().any(|o| o.name == v.name) {
                return cfg(format!(
                    "two [[data.view]] sections are named '{}'; give each a distinct name",
                    v.name
                ));
            }
        }
        if self.source.needs_dir() && self.dir.is_none() {
            return cfg(format!(
                "data.source = \"{}\" needs data.dir, the folder holding its files",
                self.source.name()
            ));
        }
        if self.image_size.is_some_and(|s| s.contains(&0)) {
            return cfg("data.image_size must be at least 1×1 ([height, width])".into());
        }
        if !self.labels {
            if !self.source.is_images() || self.graph.is_some() {
                return cfg("data.labels = false makes the images an unlabeled transfer set for a classifier teacher; it applies to image sources (embedded, fashion-mnist, idx, cifar10, cifar100, image-folder) without data.graph: remove it (a recipe's own `labels = false` drops its training labels on any data)".into());
            }
            match self.classes {
                None => return cfg("data.labels = false drops the labels, so they cannot show how many outputs the models have: set data.classes to the teacher's number of classes (e.g. 1000 for an ImageNet teacher)".into()),
                Some(c) if c < 2 => {
                    return cfg(format!("data.classes must be at least 2, got {c}"))
                }
                Some(_) => {}
            }
        } else if let Some(c) = self.classes {
            if !(2..=256).contains(&c) {
                return cfg(format!(
                    "data.classes must be between 2 and 256 (labels are bytes), got {c}; a teacher of more classes (e.g. 1000 for ImageNet) distils on an unlabeled transfer set: set data.labels = false"
                ));
            }
        }
        Ok(())
    }
}

impl Plan {
    /// The plan as an experiment file with every default written out: what `--dump-config`
    /// prints and `resolved.toml` holds, and what `distill train` reads back into the same plan.
    pub fn to_experiment(&self) -> ExperimentConfig {
        ExperimentConfig {
            name: self.name.clone(),
            seeds: self.seeds.clone(),
            output_dir: self.output_dir.clone(),
            backend: self.backend,
            task: self.task,
            scheme: self.scheme,
            data: self.data.clone(),
            train: TrainConfig::default(),
            teacher: self.teachers.iter().map(TeacherConfig::from).collect(),
            student: self.students.iter().map(StudentConfig::from).collect(),
            ensemble: self.ensembles.clone(),
            distributed: (!self.devices.is_empty()).then(|| DistributedSettings {
                devices: self.devices.clone(),
            }),
            federated: self.federated.as_ref().map(FederatedConfig::from),
        }
    }

    /// The resolved plan as an experiment file (TOML) that `distill train` accepts.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(&self.to_experiment()).expect("a plan always serialises")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: &str = r#"
name = "t"
seeds = [1, 2]
[train]
epochs = 3
[[teacher]]
model = "mlp"
hidden = [64]
[[student]]
model = "mlp"
hidden = [8]
[[student.loss]]
method = "ce"
weight = 0.1
[[student.loss]]
method = "kd"
temperature = 2.0
"#;

    #[test]
    fn an_unlabeled_transfer_set_needs_classes_and_a_trained_teacher() {
        let base = r#"
name = "t"
[data]
labels = false
classes = 1000
[[teacher]]
model = "mlp"
checkpoint = "teacher.pth"
[[student]]
model = "mlp"
[[student.loss]]
method = "kd"
"#;
        let check = |text: &str| {
            ExperimentConfig::from_toml(text, "t.toml")
                .and_then(|c| c.validate())
                .map(|_| ())
                .map_err(|e| e.to_string())
        };
        assert_eq!(check(base), Ok(()));
        let e = check(&base.replace("classes = 1000\n", "")).unwrap_err();
        assert!(e.contains("set data.classes"), "{e}");
        let e = check(&base.replace("checkpoint = \"teacher.pth\"\n", "")).unwrap_err();
        assert!(e.contains("no labels to train a teacher on"), "{e}");
        let e = check(&base.replace("labels = false\n", "")).unwrap_err();
        assert!(
            e.contains("between 2 and 256") && e.contains("data.labels = false"),
            "{e}"
        );
        let no_teacher = base.replace(
            "[[teacher]]\nmodel = \"mlp\"\ncheckpoint = \"teacher.pth\"\n",
            "",
        );
        let e = check(&no_teacher).unwrap_err();
        assert!(e.contains("add a [[teacher]]"), "{e}");
        let e = check(&format!("task = \"regression\"\n{base}")).unwrap_err();
        assert!(e.contains("task = \"regression\""), "{e}");
    }

    #[test]
    fn parses_and_resolves_defaults() {
        let plan = ExperimentConfig::from_toml(OK, "ok.toml")
            .unwrap()
            .validate()
            .unwrap();
        assert_eq!(plan.students[0].name, "mlp-ce+kd");
        assert_eq!(plan.students[0].train.epochs, 3);
        assert_eq!(plan.teachers[0].train.lr, 0.05);
        assert_eq!(plan.teachers[0].name, "mlp");
        // What --dump-config and resolved.toml hold is an experiment file for the same plan.
        let back = ExperimentConfig::from_toml(&plan.to_toml(), "resolved.toml")
            .unwrap()
            .validate()
            .unwrap();
        assert_eq!(back, plan);
    }

    #[test]
    fn unknown_keys_get_a_suggestion() {
        let bad = OK.replace("temperature = 2.0", "temprature = 2.0");
        let err = ExperimentConfig::from_toml(&bad, "bad.toml")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("unknown field `temprature`")
                && err.contains("did you mean `temperature`"),
            "{err}"
        );
        let bad = OK.replace("epochs = 3", "epohcs = 3");
        let err = ExperimentConfig::from_toml(&bad, "bad.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("did you mean `epochs`"), "{err}");
        let bad = OK.replace("method = \"kd\"", "method = \"kdd\"");
        let err = ExperimentConfig::from_toml(&bad, "bad.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("did you mean `kd`"), "{err}");
    }

    #[test]
    fn wrong_types_and_bad_values_are_reported() {
        let bad = OK.replace("epochs = 3", "epochs = \"three\"");
        let err = ExperimentConfig::from_toml(&bad, "bad.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("bad.toml") && err.contains("epochs"), "{err}");
        let bad = OK.replace(
            "model = \"mlp\"\nhidden = [8]",
            "model = \"mlpp\"\nhidden = [8]",
        );
        let err = ExperimentConfig::from_toml(&bad, "b")
            .unwrap()
            .validate()
            .unwrap_err()
            .to_string();
        assert!(err.contains("did you mean 'mlp'"), "{err}");
    }
}
