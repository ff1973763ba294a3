//! Which settings differ between two serialised configs: what `--resume` names when it refuses
//! to continue a run with changed settings.

use serde_json::Value;

/// Settings that may change between a run's start and its `--resume` (in `resolved.toml` and
/// each `job.json`): they do not change what the completed epochs computed.
pub const RESUMABLE: &[&str] = &["stop_on_collapse", "cache_mb", "eval_batch_size"];

/// Appends `path: before vs now` for every leaf where two serialised configs differ. Keys named
/// in `ignore` are skipped at any depth (settings that do not change results, such as
/// `stop_on_collapse`); numbers compare by value (`20` equals `20.0`); arrays of tables compare
/// element by element (`loss[1].temperature`).
pub fn differences(
    before: &Value,
    now: &Value,
    path: &str,
    ignore: &[&str],
    out: &mut Vec<String>,
) {
    let join = |k: &str| {
        if path.is_empty() {
            k.to_string()
        } else {
            format!("{path}.{k}")
        }
    };
    let show = |v: Option<&Value>| v.map_or("(unset)".to_string(), Value::to_string);
    match (before, now) {
        (Value::Object(a), Value::Object(b)) => {
            let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for k in keys.into_iter().filter(|k| !ignore.contains(&k.as_str())) {
                match (a.get(k), b.get(k)) {
                    (Some(Value::Null) | None, Some(Value::Null) | None) => {}
                    (Some(u), Some(v)) => differences(u, v, &join(k), ignore, out),
                    (u, v) => out.push(format!("{}: {} vs {}", join(k), show(u), show(v))),
                }
            }
        }
        (Value::Array(a), Value::Array(b))
            if a.len() == b.len() && a.iter().chain(b).all(Value::is_object) =>
        {
            for (i, (u, v)) in a.iter().zip(b).enumerate() {
                differences(u, v, &format!("{path}[{i}]"), ignore, out);
            }
        }
        (Value::Number(a), Value::Number(b)) if a.as_f64() == b.as_f64() => {}
        _ if before != now => out.push(format!("{path}: {before} vs {now}")),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_each_changed_leaf() {
        let a = json!({"seed": 1, "train": {"lr": 0.1, "stop_on_collapse": true},
                       "loss": [{"method": "ce"}, {"method": "kd", "temperature": 4.0, "warmup": 20}]});
        let b = json!({"seed": 1, "train": {"lr": 0.2, "stop_on_collapse": false, "grad_clip": 5.0},
                       "loss": [{"method": "ce"}, {"method": "kd", "temperature": 2.0, "warmup": 20.0}]});
        let mut out = Vec::new();
        differences(&a, &b, "", &["stop_on_collapse"], &mut out);
        assert_eq!(
            out,
            [
                "loss[1].temperature: 4.0 vs 2.0",
                "train.grad_clip: (unset) vs 5.0",
                "train.lr: 0.1 vs 0.2"
            ]
        );
        let mut none = Vec::new();
        differences(&a, &a, "", &[], &mut none);
        assert!(none.is_empty());
    }
}
