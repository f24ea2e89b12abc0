//! The doom-loop guard (spec §3.8): a per-plan log of `(tool id, argument hash)`; a third identical
//! call in a row is not executed. The hash is over canonical JSON so key order does not matter.

use serde_json::Value;
use sha2::{Digest, Sha256};

/// Canonical JSON: compact, object keys sorted by UTF-8 bytes at every level.
#[must_use]
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push('{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                write_canonical(v, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(v, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// First 16 lowercase hex digits of SHA-256 over the canonical JSON of the arguments.
#[must_use]
pub fn args_hash(args: Option<&Value>) -> String {
    let canonical = args.map_or_else(|| "null".to_owned(), canonical_json);
    let digest = Sha256::digest(canonical.as_bytes());
    let mut hex = hex::encode(digest);
    hex.truncate(16);
    hex
}

/// The per-plan call log.
#[derive(Debug, Default)]
pub struct DoomLoopGuard {
    log: Vec<(String, String)>,
}

impl DoomLoopGuard {
    /// Records a call as it starts; returns the bail text when it must not run.
    pub fn record(&mut self, tool_id: &str, args: Option<&Value>) -> Option<String> {
        let record = (tool_id.to_owned(), args_hash(args));
        let n = self.log.len();
        let repeated = n >= 2 && self.log[n - 1] == record && self.log[n - 2] == record;
        self.log.push(record);
        repeated.then(|| {
            format!(
                "[gateway:doom-loop] You have called the tool `{tool_id}` with identical input 3 times in a row. Previous attempts produced the same outcome — repeating will not help. Take a different approach: change the input, try a different tool, or finalize the answer with the information you already have."
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn key_order_does_not_change_the_hash() {
        let a: Value =
            serde_json::from_str(r#"{"a":1,"b":{"d":2,"c":[1,{"y":1,"x":2}]}}"#).unwrap();
        let b: Value =
            serde_json::from_str(r#"{"b":{"c":[1,{"x":2,"y":1}],"d":2},"a":1}"#).unwrap();
        assert_eq!(
            canonical_json(&a),
            r#"{"a":1,"b":{"c":[1,{"x":2,"y":1}],"d":2}}"#
        );
        assert_eq!(args_hash(Some(&a)), args_hash(Some(&b)));
        assert_eq!(args_hash(None).len(), 16);
    }

    #[test]
    fn third_and_fourth_identical_calls_bail() {
        let mut g = DoomLoopGuard::default();
        let args = json!({"input": "x"});
        assert!(g.record("t", Some(&args)).is_none());
        assert!(g.record("t", Some(&args)).is_none());
        let bail = g.record("t", Some(&args)).unwrap();
        assert!(bail.starts_with("[gateway:doom-loop] You have called the tool `t` with identical input 3 times in a row."));
        assert!(g.record("t", Some(&args)).is_some());
        assert!(g.record("t", Some(&json!({"input": "y"}))).is_none());
    }
}
