//! The method registry: one line per method in [`methods!`] adds it to configs, to
//! `distill methods`, to the builder and, for a method with trainable helpers or state, its
//! state types to [`Aux`], with no special case anywhere else.

use burn::nn::Linear;
use burn::prelude::*;
use serde::{Deserialize, Serialize};

use super::connector::ConvConnector;
use super::term::{BuildContext, KnowledgeTerm};
use super::{
    ab, at, bounded_regression, byot, cc, ce, crd, cs_kd, dist, dkd, ensemble_kd, fitnet, fsp, ft,
    gkd, hidden, irg, kd, kd_ls, kdsvd, listnet, listnet_kd, margin_mse, mse, mt_kd, nst, ofd,
    output_match, pkt, review, rkd, seq_kd, skew_kl, sp, tf_kd, tvd, vid,
};
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

impl MethodConfig {
    /// An unknown tap may be one the user never wrote (a method's default taps): say which taps
    /// the method reads, with their defaults, and where to set them.
    fn explain_taps(&self, e: crate::error::DistillError) -> crate::error::DistillError {
        match e {
            crate::error::DistillError::Unknown { ref kind, .. } if kind.starts_with("tap of") => {
                let info = self.info();
                crate::error::DistillError::Config(format!(
                    "{e}. Method `{}` reads {}: set these keys in its [[student.loss]] table to taps the models have (`distill models` lists them)",
                    info.name, info.taps
                ))
            }
            e => e,
        }
    }

    /// Checks that the weight is finite and ≥ 0 and that every other number is finite (a `nan`
    /// or `inf` in a config would otherwise only show once training diverges). The message names
    /// the setting.
    pub fn check_numbers(&self) -> std::result::Result<(), String> {
        let w = self.weight();
        if !(w.is_finite() && w >= 0.0) {
            return Err(format!(
                "weight must be a finite number ≥ 0, got {w}; use 0 to switch the term off"
            ));
        }
        fn first_bad(v: &toml::Value, path: &str) -> Option<(String, f64)> {
            match v {
                toml::Value::Float(f) if !f.is_finite() => Some((path.to_string(), *f)),
                toml::Value::Table(t) => t.iter().find_map(|(k, v)| {
                    first_bad(
                        v,
                        &if path.is_empty() {
                            k.clone()
                        } else {
                            format!("{path}.{k}")
                        },
                    )
                }),
                toml::Value::Array(a) => a
                    .iter()
                    .enumerate()
                    .find_map(|(i, v)| first_bad(v, &format!("{path}[{i}]"))),
                _ => None,
            }
        }
        let value = toml::Value::try_from(self).map_err(|e| e.to_string())?;
        match first_bad(&value, "") {
            Some((key, v)) => Err(format!("{key} must be a finite number, got {v}")),
            None => Ok(()),
        }
    }
}

/// A term built for one experiment, with its weight in the objective.
pub struct Built {
    /// Weight of the term in the objective.
    pub weight: f64,
    /// The term.
    pub term: Box<dyn KnowledgeTerm>,
    /// Whether the term is the task's supervised loss (its method's family is `supervised`),
    /// set by the registry.
    pub supervised: bool,
}

impl Built {
    /// Wraps a term.
    pub fn new(weight: f64, term: impl KnowledgeTerm + 'static) -> Self {
        Self {
            weight,
            term: Box::new(term),
            supervised: false,
        }
    }
}

macro_rules! methods {
    ($($variant:ident => $module:ident :: $config:ident
        $({ $($state:ident : $state_ty:path),* $(,)? })?),* $(,)?) => {
        /// Every trainable helper module or piece of method state the trainer holds: the shared
        /// connectors, and the state each method declares on its registry line (its own types,
        /// in its own file), so that a stateful method edits no shared list.
        // Few instances live at a time, so the size difference between variants costs nothing.
        #[allow(clippy::large_enum_variant)]
        #[derive(Module, Debug)]
        pub enum Aux {
            /// Convolutional regressor between feature maps.
            Conv(ConvConnector),
            /// Linear projection between flat features.
            Linear(Linear),
            $($($(
                #[doc = concat!("State of `", stringify!($module), "`.")]
                $state($state_ty),
            )*)?)*
        }

        impl Aux {
            /// The variant's name, for messages.
            pub fn kind(&self) -> &'static str {
                match self {
                    Aux::Conv(_) => "a conv connector",
                    Aux::Linear(_) => "a linear connector",
                    $($($(Aux::$state(_) => concat!("the ", stringify!($state), " of `", stringify!($module), "`"),)*)?)*
                }
            }
        }

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
                let built = match self {
                    $(Self::$variant(c) => c.build(ctx, aux)),*
                };
                let supervised = self.info().family == "supervised";
                built
                    .map(|b| Built { supervised, ..b })
                    .map_err(|e| self.explain_taps(e))
            }

            /// The term's weight in the objective.
            pub fn weight(&self) -> f64 {
                match self {
                    $(Self::$variant(c) => c.weight),*
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
    Mse => mse::MseConfig,
    Kd => kd::KdConfig,
    Dkd => dkd::DkdConfig,
    Dist => dist::DistConfig,
    KdLs => kd_ls::KdLsConfig,
    TfKd => tf_kd::TfKdConfig,
    Byot => byot::ByotConfig { ByotHead: byot::ByotHead },
    CsKd => cs_kd::CsKdConfig,
    MtKd => mt_kd::MtKdConfig,
    EnsembleKd => ensemble_kd::EnsembleKdConfig,
    Listnet => listnet::ListNetConfig,
    ListnetKd => listnet_kd::ListNetKdConfig,
    MarginMse => margin_mse::MarginMseConfig,
    BoundedRegression => bounded_regression::BoundedRegressionConfig,
    OutputMatch => output_match::OutputMatchConfig,
    Gkd => gkd::GkdConfig,
    SkewKl => skew_kl::SkewKlConfig,
    Tvd => tvd::TvdConfig,
    SeqKd => seq_kd::SeqKdConfig,
    Fitnet => fitnet::FitNetConfig,
    Hidden => hidden::HiddenConfig,
    At => at::AtConfig,
    Nst => nst::NstConfig,
    Ab => ab::AbConfig,
    Ft => ft::FtConfig { Paraphraser: ft::Paraphraser, Translator: ft::Translator },
    Ofd => ofd::OfdConfig,
    Reviewkd => review::ReviewKdConfig { Abf: review::Abf },
    Sp => sp::SpConfig,
    Pkt => pkt::PktConfig,
    Fsp => fsp::FspConfig,
    Kdsvd => kdsvd::KdsvdConfig,
    Rkd => rkd::RkdConfig,
    Irg => irg::IrgConfig,
    Cc => cc::CcConfig,
    Vid => vid::VidConfig { Vid: vid::VidRegressor },
    Crd => crd::CrdConfig { CrdMemory: crd::CrdMemory },
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
