//! Closest-name suggestions for misspelled keys, models and methods.

/// The closest candidate to `name` by Jaro-Winkler similarity, if it is close enough.
pub fn suggest<'a>(name: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (strsim::normalized_damerau_levenshtein(name, c), *c))
        .filter(|(score, _)| *score >= 0.6)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// Adds "did you mean" to serde's "unknown field `x`, expected one of `a`, `b`" and
/// "unknown variant" messages.
pub fn explain_serde_error(message: &str) -> String {
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
        let msg = "unknown field `epohcs`, expected one of `epochs`, `lr`";
        assert!(explain_serde_error(msg).ends_with("did you mean `epochs`?"));
    }
}
