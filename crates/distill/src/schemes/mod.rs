//! Schemes: how teachers and students are arranged in time. A scheme turns a validated plan into
//! an ordered list of [`Phase`]s, each a generic fit of some trainable roles under an objective;
//! a phase's trained role can be a later phase's frozen teacher. One file plus one line in
//! [`schemes!`] adds a scheme.

pub mod federated;
pub mod offline;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::config::{FederatedPlan, Plan, TrainPlan};
use crate::knowledge::MethodConfig;
use crate::models::RoleModel;

/// One phase of a scheme: its trainable roles fitted under `losses`, once per seed.
#[derive(Debug, Clone)]
pub struct Phase {
    /// Label in logs and tables (e.g. `teacher lenet`, `student + KD`).
    pub name: String,
    /// Folder under the run folder.
    pub dir: PathBuf,
    /// The trainable roles; the first is the one the phase's result is about.
    pub roles: Vec<RoleModel>,
    /// The objective.
    pub losses: Vec<MethodConfig>,
    /// Optimiser, schedule and budget.
    pub train: TrainPlan,
    /// Train on the first N training samples only.
    pub train_limit: Option<usize>,
    /// Whether the training samples keep their targets (`false`: an unlabeled transfer set).
    pub labels: bool,
    /// Whether each training sample comes with a partner of its class.
    pub class_pairs: bool,
    /// Seeds; each trains the roles afresh.
    pub seeds: Vec<u64>,
    /// Whether the phase reads the frozen teachers (all of the plan's, which earlier phases
    /// produced or which were loaded).
    pub reads_teachers: bool,
    /// What becomes of the result.
    pub output: PhaseOutput,
    /// Set when the phase is a federation of fits rather than one: each seed's roles are then
    /// trained by [`federated::run`] (clients' local fits, averaging, the server's fit under
    /// `losses`) instead of one fit.
    pub federation: Option<FederatedPlan>,
}

/// What a phase's result becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PhaseOutput {
    /// The first role's best checkpoint becomes the plan's frozen teacher of this index for the
    /// later phases (the phase then has one seed).
    Teacher(usize),
    /// Results rows: one per trainable role, over the seeds; and, when `teacher` is set, the
    /// first role's best checkpoint of the first seed becomes that frozen teacher for the later
    /// phases (a recipe's student teaching the next recipe).
    Rows {
        /// The plan's teacher the phase's student becomes.
        teacher: Option<usize>,
    },
}

impl PhaseOutput {
    /// The plan's teacher the phase trains, if any.
    pub fn teacher(&self) -> Option<usize> {
        match *self {
            PhaseOutput::Teacher(i) => Some(i),
            PhaseOutput::Rows { teacher } => teacher,
        }
    }
}

/// One row of the scheme catalogue.
#[derive(Debug, Clone, Copy)]
pub struct SchemeInfo {
    /// `scheme = "..."` in experiment files.
    pub name: &'static str,
    /// What it does.
    pub description: &'static str,
    /// Where it comes from.
    pub citation: &'static str,
}

macro_rules! schemes {
    ($($(#[$attr:meta])* $variant:ident => $module:ident),* $(,)?) => {
        /// A scheme as named in an experiment file (`scheme = "..."`).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
        #[serde(rename_all = "kebab-case")]
        #[allow(missing_docs)]
        pub enum Scheme {
            $($(#[$attr])* $variant),*
        }

        impl Scheme {
            /// The phases of `plan` under this scheme.
            pub fn phases(&self, plan: &Plan) -> Vec<Phase> {
                match self {
                    $(Self::$variant => $module::phases(plan)),*
                }
            }

            /// The scheme's catalogue entry.
            pub fn info(&self) -> &'static SchemeInfo {
                match self {
                    $(Self::$variant => &$module::INFO),*
                }
            }
        }

        /// Every scheme, in registration order.
        pub const SCHEMES: &[SchemeInfo] = &[$($module::INFO),*];
    };
}

schemes! {
    #[default]
    Offline => offline,
    Federated => federated,
}
