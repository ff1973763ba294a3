//! Tasks: what the models are trained to do. A task owns the supervised objective of a role
//! trained on the targets alone (a teacher's pretraining phase), the per-batch training metric,
//! and which kind of target its data must carry; evaluation reports its metrics (accuracy and
//! agreement with the teacher, RMSE and MAE, or NDCG@10 and MRR@10).

pub mod classification;
pub mod generation;
pub mod ranking;
pub mod regression;
pub mod target;

use serde::{Deserialize, Serialize};

pub use target::Target;

use crate::data::Dataset;
use crate::error::{DistillError, Result};
use crate::knowledge::MethodConfig;

/// The experiment's task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Task {
    /// Classification: class labels; accuracy and agreement with the first teacher.
    #[default]
    Classification,
    /// Regression: real targets (standardised for training); RMSE and MAE in target units.
    Regression,
    /// Ranking: lists of candidates (a CSV with `data.group`) with relevance grades; one score
    /// per candidate; NDCG@10 and MRR@10.
    Ranking,
    /// Generation (language modelling): next-token targets (a text with `data.source = "text"`);
    /// held-out perplexity, next-token accuracy and agreement with the first teacher.
    Generation,
}

impl Task {
    /// The objective of `role` trained on the targets alone.
    pub fn supervised(&self, role: &str) -> Vec<MethodConfig> {
        match self {
            Task::Classification => classification::supervised(role),
            Task::Regression => regression::supervised(role),
            Task::Ranking => ranking::supervised(role),
            Task::Generation => generation::supervised(role),
        }
    }

    /// Checks that the data carries this task's kind of target.
    pub fn check_data(&self, data: &Dataset) -> Result<()> {
        let of_data = Task::of(data);
        if of_data == *self {
            return Ok(());
        }
        Err(DistillError::Config(format!(
            "task = \"{}\" needs {}, but the data's targets are {}; set task = \"{}\", or point [data] at a data set of the task",
            self.name(),
            match self {
                Task::Classification => "class labels",
                Task::Regression => "real values",
                Task::Ranking => "relevance grades in lists (a CSV file with data.group naming the query column)",
                Task::Generation => "next-token targets (a text file with data.source = \"text\")",
            },
            data.targets.kind(),
            of_data.name(),
        )))
    }

    /// The name in experiment files.
    pub fn name(&self) -> &'static str {
        match self {
            Task::Classification => "classification",
            Task::Regression => "regression",
            Task::Ranking => "ranking",
            Task::Generation => "generation",
        }
    }

    /// The headline metric of its results tables.
    pub fn metric(&self) -> crate::report::Metric {
        match self {
            Task::Classification => crate::report::Metric::Accuracy,
            Task::Regression => crate::report::Metric::Rmse,
            Task::Ranking => crate::report::Metric::Ndcg,
            Task::Generation => crate::report::Metric::Perplexity,
        }
    }

    /// The task of a data set's targets (its test split's, which carry them unless the data are
    /// an unlabeled transfer set, which only classification reads: `data.labels = false`).
    pub fn of(data: &Dataset) -> Task {
        match data.targets {
            crate::data::Targets::Class(_) | crate::data::Targets::None(_) => Task::Classification,
            crate::data::Targets::Relevance(_) => Task::Ranking,
            crate::data::Targets::Tokens { .. } => Task::Generation,
            crate::data::Targets::Real { .. } => Task::Regression,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{Inputs, Targets};

    #[test]
    fn a_task_refuses_data_of_the_other_kind_of_target() {
        let table = Dataset {
            inputs: Inputs::Table {
                values: vec![0.0; 4],
                features: 2,
                names: vec!["a".into(), "b".into()],
            },
            targets: Targets::Real {
                values: vec![1.0, 2.0],
                dims: 1,
            },
            num_classes: 1,
            groups: None,
        };
        assert!(Task::Regression.check_data(&table).is_ok());
        let e = Task::Classification
            .check_data(&table)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("needs class labels") && e.contains("set task = \"regression\""),
            "{e}"
        );
        assert_eq!(Task::of(&table), Task::Regression);
    }
}
