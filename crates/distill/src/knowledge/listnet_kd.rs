//! Listwise ranking distillation: ListNet from a teacher's scores to the student's.

use serde::{Deserialize, Serialize};

use super::method::{Built, MethodInfo};
use super::role::RoleRef;
use super::term::{BuildContext, Side};
use super::Aux;
use crate::error::Result;

/// Catalogue entry.
pub const INFO: MethodInfo = MethodInfo {
    name: "listnet-kd",
    family: "ranking",
    description: "listwise ranking distillation: ListNet cross-entropy from the teacher's to the student's top-one probabilities over each list",
    citation: "Cao et al., ListNet, ICML 2007; as a distillation loss in matchmaker (Hofstätter et al.) and allRank",
    taps: "student logits, teacher logits (one score per candidate)",
};

/// `method = "listnet-kd"`: ListNet from a teacher's scores, `listnet_loss(student, teacher)`
/// over each batch's lists (see [`super::listnet::listnet_loss`]). Needs no labels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListNetKdConfig {
    /// Weight in the objective (default 1).
    #[serde(default = "super::defaults::one")]
    pub weight: f64,
    /// `eps` inside the log (default 1e-10, allRank's).
    #[serde(default = "super::listnet::ListNetConfig::default_eps")]
    pub eps: f64,
    /// The trainable role the term trains (default: the recipe's `student`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub student: Option<RoleRef>,
    /// The role it learns from (default: the only `[[teacher]]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub teacher: Option<RoleRef>,
}

impl ListNetKdConfig {
    pub(crate) fn build(&self, ctx: &BuildContext<'_>, _aux: &mut Vec<Aux>) -> Result<Built> {
        let student = ctx.student(&self.student)?;
        let teacher = ctx.teacher(&self.teacher)?;
        super::listnet::check_scores(ctx, Side::Student(student), "listnet-kd")?;
        super::listnet::check_scores(ctx, Side::Teacher(teacher), "listnet-kd")?;
        Ok(Built::new(
            self.weight,
            super::listnet::ListNet {
                eps: self.eps,
                student,
                teacher: Some(teacher),
            },
        ))
    }
}
