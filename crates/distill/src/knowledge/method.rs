//! The method registry: one line per method in [`methods!`] adds it to configs, to
//! `distill methods` and to the builder, with no special case anywhere else.

use serde::{Deserialize, Serialize};

use super::term::{BuildContext, KnowledgeTerm};
use super::{at, cc, ce, dist, dkd, fitnet, kd, kd_ls, nst, pkt, rkd, sp, vid, Aux};
use crate::error::Result;

/// One row of the method catalogue (`distill methods`).
#[derive(Debug, Clone, Copy)]
pub struct MethodInfo {
    /// `method = "..."` in configs.
    pub name: &'static str,
    /// Knowledge family (response, intermediate, relation, mutual-information, ...).
    pub family: &'static str,
    /// One-line description.
    pub description: &'static str,
    /// Paper.
    pub citation: &'static str,
    /// Taps the method reads.
    pub taps: &'static str,
}

/// A term built for one experiment, with its weight in the objective.
pub struct Built {
    /// Weight of the term in the objective.
    pub weight: f64,
    /// The term.
    pub term: Box<dyn KnowledgeTerm>,
}

impl Built {
    /// Wraps a term.
    pub fn new(weight: f64, term: impl KnowledgeTerm + 'static) -> Self {
        Self {
            weight,
            term: Box::new(term),
        }
    }
}

macro_rules! methods {
    ($($variant:ident => $module:ident :: $config:ident),* $(,)?) => {
        /// A loss term as written in an experiment file (`[[student.loss]]` tables), tagged by
        /// `method`.
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(tag = "method", rename_all = "kebab-case")]
        #[allow(missing_docs)]
        pub enum MethodConfig {
            $($variant($module::$config)),*
        }

        impl MethodConfig {
            /// Builds the term, checking its taps against the models' shapes and registering any
            /// trainable helper module in `aux`.
            pub fn build(&self, ctx: &BuildContext<'_>, aux: &mut Vec<Aux>) -> Result<Built> {
                match self {
                    $(Self::$variant(c) => c.build(ctx, aux)),*
                }
            }

            /// The method's catalogue entry.
            pub fn info(&self) -> &'static MethodInfo {
                match self {
                    $(Self::$variant(_) => &$module::INFO),*
                }
            }
        }

        /// Every method, in registration order.
        pub const METHODS: &[MethodInfo] = &[$($module::INFO),*];
    };
}

methods! {
    Ce => ce::CeConfig,
    Kd => kd::KdConfig,
    Dkd => dkd::DkdConfig,
    Dist => dist::DistConfig,
    KdLs => kd_ls::KdLsConfig,
    Fitnet => fitnet::FitNetConfig,
    At => at::AtConfig,
    Nst => nst::NstConfig,
    Sp => sp::SpConfig,
    Pkt => pkt::PktConfig,
    Rkd => rkd::RkdConfig,
    Cc => cc::CcConfig,
    Vid => vid::VidConfig,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_names_match_config_tags() {
        for info in METHODS {
            let toml = format!("method = \"{}\"\n", info.name);
            // Only the tag is checked here; methods with required fields report them by name.
            match toml::from_str::<MethodConfig>(&toml) {
                Ok(m) => assert_eq!(m.info().name, info.name),
                Err(e) => assert!(
                    e.to_string().contains("missing field"),
                    "{}: {e}",
                    info.name
                ),
            }
        }
    }
}
