//! Closest-name suggestions for misspelled keys, models, methods, roles and taps: what
//! [`crate::error::DistillError::unknown`] and the config parser add to their messages.

/// The closest candidate to `name` by normalised Damerau-Levenshtein similarity (ties broken by
/// Jaro-Winkler, which favours a shared prefix), if it is close enough.
pub fn suggest<'a>(name: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| {
            (
                strsim::normalized_damerau_levenshtein(name, c),
                strsim::jaro_winkler(name, c),
                *c,
            )
        })
        .filter(|(score, _, _)| *score >= 0.6)
        .max_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)))
        .map(|(_, _, c)| c)
}

/// Adds "did you mean" to serde's "unknown field `x`, expected one of `a`, `b`" and
/// "unknown variant" messages, and the rewrite of a single `[teacher]` table (the shape before
/// teachers became a list of named roles).
pub fn explain_serde_error(message: &str) -> String {
    if message.contains("expected a sequence") && message.contains("[teacher]") {
        return format!(
            "{}\nteachers are a list of named roles: write the section as [[teacher]] (double brackets), one per teacher, and address them from a term by name (teacher = \"<name>\", default: the only teacher)",
            message.trim_end()
        );
    }
    for kind in ["unknown field `", "unknown variant `"] {
        if let Some(start) = message.find(kind) {
            let rest = &message[start + kind.len()..];
            let Some(end) = rest.find('`') else { continue };
            let bad = &rest[..end];
            let expected: Vec<&str> = rest[end + 1..]
                .split('`')
                .enumerate()
                .filter(|(i, _)| i % 2 == 1)
                .map(|(_, s)| s)
                .collect();
            if let Some(s) = suggest(bad, &expected) {
                return format!("{}\ndid you mean `{s}`?", message.trim_end());
            }
        }
    }
    message.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_names_only() {
        assert_eq!(
            suggest("temprature", &["weight", "temperature"]),
            Some("temperature")
        );
        assert_eq!(suggest("zzz", &["weight", "temperature"]), None);
        assert_eq!(suggest("kdd", &["ce", "kd", "dkd"]), Some("kd"));
        let msg = "unknown field `epohcs`, expected one of `epochs`, `lr`";
        assert!(explain_serde_error(msg).ends_with("did you mean `epochs`?"));
    }
}
