//! Knowledge: distillation losses, one file per method, registered in [`method`].

pub mod ce;
pub mod connector;
pub mod fitnet;
pub mod kd;
pub mod method;
pub mod objective;
pub mod term;
#[cfg(test)]
pub(crate) mod testing;

pub use connector::Aux;
pub use method::{Built, MethodConfig, MethodInfo, METHODS};
pub use objective::Objective;
pub use term::{BuildContext, KnowledgeTerm, Side, StepContext};
