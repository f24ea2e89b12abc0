//! Reads a request body into a JSON value whose memory is a small multiple of the body: unknown
//! top-level fields are skipped without building values (`IgnoredAny`), and the fields the door
//! reads are built under a budget of JSON values and a nesting-depth limit. Without
//! this, 16 MiB of `[[],[],…]` became ~1 GB of `Value`s.

use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// Top-level fields of a JSON-RPC request.
pub const JSON_RPC_FIELDS: [&str; 4] = ["jsonrpc", "id", "method", "params"];

/// Limits on the values built from a body (`server.max_json_values`, `server.max_json_depth`).
#[derive(Debug, Clone, Copy)]
pub struct JsonLimits {
    pub max_values: usize,
    pub max_depth: usize,
}

struct Budget {
    values_left: usize,
    limits: JsonLimits,
}

impl Budget {
    fn take<E: serde::de::Error>(&mut self) -> Result<(), E> {
        if self.values_left == 0 {
            return Err(E::custom(format_args!(
                "request body holds more than {} JSON values (server.max_json_values)",
                self.limits.max_values
            )));
        }
        self.values_left -= 1;
        Ok(())
    }
}

/// Parses a body keeping the top-level `fields` of an object.
///
/// # Errors
/// The parser's message, or the limit that was hit (naming its setting).
pub fn parse_body_with(
    raw: &[u8],
    limits: JsonLimits,
    fields: &[&str],
) -> Result<Value, serde_json::Error> {
    let mut budget = Budget {
        values_left: limits.max_values,
        limits,
    };
    let mut de = serde_json::Deserializer::from_slice(raw);
    let value = TopSeed {
        budget: &mut budget,
        fields,
    }
    .deserialize(&mut de)?;
    de.end()?;
    Ok(value)
}

struct TopSeed<'b> {
    budget: &'b mut Budget,
    fields: &'b [&'b str],
}

impl<'de> DeserializeSeed<'de> for TopSeed<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(TopVisitor {
            budget: self.budget,
            fields: self.fields,
        })
    }
}

struct TopVisitor<'b> {
    budget: &'b mut Budget,
    fields: &'b [&'b str],
}

impl<'de> Visitor<'de> for TopVisitor<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        self.budget.take()?;
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if self.fields.contains(&key.as_str()) {
                let value = map.next_value_seed(ValueSeed {
                    budget: self.budget,
                    depth: 1,
                })?;
                out.insert(key, value);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(Value::Object(out))
    }

    // Anything but an object is built as usual (under the same budget).
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Value, A::Error> {
        ValueVisitor {
            budget: self.budget,
            depth: 0,
        }
        .visit_seq(seq)
    }
    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_unit<E: serde::de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
}

struct ValueSeed<'b> {
    budget: &'b mut Budget,
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for ValueSeed<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(ValueVisitor {
            budget: self.budget,
            depth: self.depth,
        })
    }
}

struct ValueVisitor<'b> {
    budget: &'b mut Budget,
    depth: usize,
}

impl ValueVisitor<'_> {
    fn enter<E: serde::de::Error>(&mut self) -> Result<usize, E> {
        self.budget.take()?;
        let depth = self.depth + 1;
        if depth > self.budget.limits.max_depth {
            return Err(E::custom(format_args!(
                "request body nests deeper than {} levels (server.max_json_depth)",
                self.budget.limits.max_depth
            )));
        }
        Ok(depth)
    }
}

impl<'de> Visitor<'de> for ValueVisitor<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Value, E> {
        self.budget.take()?;
        Ok(Value::Bool(v))
    }
    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Value, E> {
        self.budget.take()?;
        Ok(Value::from(v))
    }
    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Value, E> {
        self.budget.take()?;
        Ok(Value::from(v))
    }
    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Value, E> {
        self.budget.take()?;
        Ok(Value::from(v))
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Value, E> {
        self.budget.take()?;
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Value, E> {
        self.budget.take()?;
        Ok(Value::String(v))
    }
    fn visit_unit<E: serde::de::Error>(self) -> Result<Value, E> {
        self.budget.take()?;
        Ok(Value::Null)
    }
    fn visit_none<E: serde::de::Error>(self) -> Result<Value, E> {
        self.visit_unit()
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<Value, A::Error> {
        let depth = self.enter()?;
        let mut out = Vec::new();
        while let Some(v) = seq.next_element_seed(ValueSeed {
            budget: self.budget,
            depth,
        })? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<Value, A::Error> {
        let depth = self.enter()?;
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value_seed(ValueSeed {
                budget: self.budget,
                depth,
            })?;
            out.insert(key, value);
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: JsonLimits = JsonLimits {
        max_values: 1000,
        max_depth: 8,
    };

    /// A body read with the `/plan` door's fields.
    fn parse_body(raw: &[u8], limits: JsonLimits) -> Result<Value, serde_json::Error> {
        parse_body_with(raw, limits, &crate::planner::validate::PLAN_FIELDS)
    }

    #[test]
    fn known_fields_are_kept_unknown_ones_skipped() {
        let v = parse_body(
            br#"{"question":"q","x":[[],[],{"a":[1,2]}],"agents":[{"name":"a","skills":[]}],"preferences":{"timeout_ms":1000}}"#,
            LIMITS,
        )
        .unwrap();
        assert_eq!(
            v,
            serde_json::json!({"question":"q","agents":[{"name":"a","skills":[]}],"preferences":{"timeout_ms":1000}})
        );
        assert_eq!(
            parse_body(b"[1,2]", LIMITS).unwrap(),
            serde_json::json!([1, 2])
        );
        assert_eq!(
            parse_body(b"\"s\"", LIMITS).unwrap(),
            serde_json::json!("s")
        );
        assert!(parse_body(b"{\"question\":", LIMITS).is_err());
        assert!(parse_body(b"{} x", LIMITS).is_err());
    }

    #[test]
    fn an_unknown_field_of_any_size_builds_nothing() {
        let mut body = String::from(r#"{"question":"q","x":["#);
        body.push_str(&vec!["[]"; 100_000].join(","));
        body.push_str("]}");
        assert_eq!(
            parse_body(body.as_bytes(), LIMITS).unwrap(),
            serde_json::json!({"question": "q"})
        );
    }

    #[test]
    fn value_count_and_depth_are_limited_with_the_setting_named() {
        let mut body = String::from(r#"{"agents":["#);
        body.push_str(&vec!["[]"; 2000].join(","));
        body.push_str("]}");
        let e = parse_body(body.as_bytes(), LIMITS).unwrap_err().to_string();
        assert!(
            e.starts_with("request body holds more than 1000 JSON values (server.max_json_values)"),
            "{e}"
        );
        // The body's own object is the first level.
        let deep = format!(r#"{{"agents":{}{}}}"#, "[".repeat(8), "]".repeat(8));
        let e = parse_body(deep.as_bytes(), LIMITS).unwrap_err().to_string();
        assert!(
            e.starts_with("request body nests deeper than 8 levels (server.max_json_depth)"),
            "{e}"
        );
        let ok = format!(r#"{{"agents":{}{}}}"#, "[".repeat(7), "]".repeat(7));
        assert!(parse_body(ok.as_bytes(), LIMITS).is_ok());
    }
}
