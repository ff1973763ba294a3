//! Offline distillation (the survey's first scheme): each teacher is pretrained on the labels
//! (or loaded), then frozen; each student recipe is fitted against the teachers once per seed.
//! A recipe with peers trains them jointly with its student (online / mutual learning), and a
//! plan without teachers is then purely online. A teacher declared `from` a recipe is that
//! recipe's student, frozen for the recipes listed after it (teacher-assistant chains,
//! born-again generations).

use std::path::PathBuf;

use super::{Phase, PhaseOutput, SchemeInfo};
use crate::config::Plan;
use crate::knowledge::STUDENT;
use crate::models::RoleModel;

/// Catalogue entry.
pub const INFO: SchemeInfo = SchemeInfo {
    name: "offline",
    description: "pretrain (or load) every [[teacher]], freeze them, then fit each [[student]] recipe (with its peers, if any) per seed, in order; a teacher `from` a recipe is its student, for the recipes after it",
    citation: "Hinton et al. 2015; Hu et al. 2023, §4.1 (offline), §4.2 (online, with peers)",
};

/// Pretraining phases for the teachers without a checkpoint, then one phase per recipe.
pub fn phases(plan: &Plan) -> Vec<Phase> {
    let pretrain = plan
        .teachers
        .iter()
        .enumerate()
        .filter(|(_, t)| t.is_trained_here())
        .map(|(i, t)| Phase {
            name: format!("teacher {}", t.name),
            dir: PathBuf::from("teachers").join(sanitize(&t.name)),
            roles: vec![RoleModel {
                name: t.name.clone(),
                model: t.model.clone(),
                view: t.view.clone(),
            }],
            losses: plan.task.supervised(&t.name),
            train: t.train.clone(),
            train_limit: None,
            labels: true,
            class_pairs: false,
            seeds: vec![plan.seeds[0]],
            reads_teachers: false,
            output: PhaseOutput::Teacher(i),
            federation: None,
        });
    let distil = plan.students.iter().map(|s| Phase {
        name: s.name.clone(),
        dir: PathBuf::from("students").join(sanitize(&s.name)),
        roles: std::iter::once(RoleModel {
            name: STUDENT.into(),
            model: s.model.clone(),
            view: s.view.clone(),
        })
        .chain(s.peers.iter().cloned())
        .collect(),
        losses: s.losses.clone(),
        train: s.train.clone(),
        train_limit: s.train_limit,
        labels: s.labels,
        class_pairs: s.class_pairs,
        seeds: plan.seeds.clone(),
        reads_teachers: true,
        output: PhaseOutput::Rows {
            teacher: plan
                .teachers
                .iter()
                .position(|t| t.from.as_ref() == Some(&s.name)),
        },
        federation: None,
    });
    pretrain.chain(distil).collect()
}

/// A role or recipe name as a folder name.
pub fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.+".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}
