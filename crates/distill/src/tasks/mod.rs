//! Tasks: what the models are trained to do. A task owns the supervised objective of a role
//! trained on the labels alone (a teacher's pretraining phase) and the metrics of the report.

pub mod classification;

use serde::{Deserialize, Serialize};

use crate::knowledge::MethodConfig;

/// The experiment's task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Task {
    /// Image classification: class labels, accuracy and agreement with the teacher.
    #[default]
    Classification,
}

impl Task {
    /// The objective of `role` trained on the labels alone.
    pub fn supervised(&self, role: &str) -> Vec<MethodConfig> {
        match self {
            Task::Classification => classification::supervised(role),
        }
    }
}
