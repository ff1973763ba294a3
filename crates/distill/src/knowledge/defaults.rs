//! Default values shared by the method configs (serde `default = "..."` functions).

/// 1.0: the default weight of most terms and of several of their settings.
pub fn one() -> f64 {
    1.0
}
