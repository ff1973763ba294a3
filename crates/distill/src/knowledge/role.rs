//! How a term names the models it reads: by role name (`student = "peer"`, `teacher = "lenet"`).

use std::fmt;

use serde::{de, Deserialize, Deserializer, Serialize};

/// The name of the role a recipe's own student has (its `[[student.peer]]`s have their own).
pub const STUDENT: &str = "student";

/// A role named in a term's `student = "..."` or `teacher = "..."` key.
///
/// Roles are the experiment's models: the frozen teachers (`[[teacher]]`, by `name`, default
/// their architecture) and the trainable roles of a recipe (`student`, and each
/// `[[student.peer]]` by `name`). The student side of a term must be trainable; the teacher side
/// may be any role (a trainable one is read without gradients, as a peer in mutual learning).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct RoleRef(pub String);

impl fmt::Display for RoleRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for RoleRef {
    fn from(s: &str) -> Self {
        Self(s.to_string())
    }
}

impl<'de> Deserialize<'de> for RoleRef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl de::Visitor<'_> for Visit {
            type Value = RoleRef;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a role name, e.g. \"student\" or a teacher's name")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RoleRef, E> {
                if v.is_empty() {
                    return Err(E::custom("a role name cannot be empty"));
                }
                Ok(RoleRef(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<RoleRef, E> {
                Err(E::custom(format!(
                    "roles are named, not numbered (got {v}): write student = \"student\" (or a peer's name) and teacher = \"<name of a [[teacher]]>\"; with a single teacher the key can be left out"
                )))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<RoleRef, E> {
                self.visit_i64(v as i64)
            }
        }
        d.deserialize_any(Visit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize, Debug)]
    struct T {
        role: RoleRef,
    }

    #[test]
    fn names_parse_and_indices_get_the_rewrite() {
        let t: T = toml::from_str("role = \"lenet\"").unwrap();
        assert_eq!(t.role, RoleRef::from("lenet"));
        let e = toml::from_str::<T>("role = 0").unwrap_err().to_string();
        assert!(
            e.contains("roles are named") && e.contains("teacher = \""),
            "{e}"
        );
        assert!(toml::from_str::<T>("role = \"\"").is_err());
    }
}
