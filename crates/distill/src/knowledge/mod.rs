//! Knowledge: distillation losses, one file per method, registered in [`method`].

pub mod ab;
pub mod at;
pub mod bounded_regression;
pub mod byot;
pub mod cc;
pub mod ce;
pub mod connector;
pub mod crd;
pub mod cs_kd;
pub mod defaults;
pub mod dist;
pub mod dkd;
pub mod ensemble_kd;
pub mod fitnet;
pub mod fsp;
pub mod ft;
pub mod gkd;
pub mod hidden;
pub mod irg;
pub mod kd;
pub mod kd_ls;
pub mod kdsvd;
pub mod listnet;
pub mod listnet_kd;
pub mod margin_mse;
pub mod method;
pub mod mse;
pub mod mt_kd;
pub mod nst;
pub mod objective;
pub mod ofd;
pub mod ops;
pub mod output_match;
pub mod pkt;
pub mod review;
pub mod rkd;
pub mod role;
pub mod seq_kd;
pub mod sequence;
pub mod skew_kl;
pub mod sp;
pub mod term;
#[cfg(test)]
pub(crate) mod testing;
pub mod tf_kd;
pub mod tvd;
pub mod vid;

pub use method::{Aux, Built, MethodConfig, MethodInfo, METHODS};
pub use objective::{Objective, TermWeight};
pub use role::{RoleRef, STUDENT};
pub use term::{
    AuxUpdate, BuildContext, InitStage, KnowledgeTerm, Pair, RewriteContext, Side, Stage,
    StepContext, TermStep,
};
