//! `GET /openapi.json`: the repository's `openapi.json` with the schemas it refers to inlined.
//!
//! The repository document names the request and event schemas by file (`schemas/…`), so there is
//! one source for each schema. Clients and code generators want one self-contained file, so the
//! served copy replaces each such reference in `components.schemas` by the file's content (both are
//! compiled into the binary).

use bytes::Bytes;
use serde_json::{Map, Value};

/// The repository's document.
const DOCUMENT: &str = include_str!("../../../openapi.json");

/// Every schema file the document may refer to, by its path relative to the repository root.
const SCHEMA_FILES: [(&str, &str); 17] = [
    (
        "schemas/plan-request.schema.json",
        include_str!("../../../schemas/plan-request.schema.json"),
    ),
    (
        "schemas/events/session.schema.json",
        include_str!("../../../schemas/events/session.schema.json"),
    ),
    (
        "schemas/events/duplicate.schema.json",
        include_str!("../../../schemas/events/duplicate.schema.json"),
    ),
    (
        "schemas/events/compaction-summary.schema.json",
        include_str!("../../../schemas/events/compaction-summary.schema.json"),
    ),
    (
        "schemas/events/plan.schema.json",
        include_str!("../../../schemas/events/plan.schema.json"),
    ),
    (
        "schemas/events/text.delta.schema.json",
        include_str!("../../../schemas/events/text.delta.schema.json"),
    ),
    (
        "schemas/events/task.started.schema.json",
        include_str!("../../../schemas/events/task.started.schema.json"),
    ),
    (
        "schemas/events/task.confirm.schema.json",
        include_str!("../../../schemas/events/task.confirm.schema.json"),
    ),
    (
        "schemas/events/task.input_required.schema.json",
        include_str!("../../../schemas/events/task.input_required.schema.json"),
    ),
    (
        "schemas/events/task.status.schema.json",
        include_str!("../../../schemas/events/task.status.schema.json"),
    ),
    (
        "schemas/events/task.artifact.schema.json",
        include_str!("../../../schemas/events/task.artifact.schema.json"),
    ),
    (
        "schemas/events/task.finished.schema.json",
        include_str!("../../../schemas/events/task.finished.schema.json"),
    ),
    (
        "schemas/events/final.schema.json",
        include_str!("../../../schemas/events/final.schema.json"),
    ),
    (
        "schemas/events/error.schema.json",
        include_str!("../../../schemas/events/error.schema.json"),
    ),
    (
        "schemas/events/done.schema.json",
        include_str!("../../../schemas/events/done.schema.json"),
    ),
    (
        "schemas/session-list.schema.json",
        include_str!("../../../schemas/session-list.schema.json"),
    ),
    (
        "schemas/session.schema.json",
        include_str!("../../../schemas/session.schema.json"),
    ),
];

/// Why the document could not be bundled (a broken build: the tests catch it first).
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("openapi.json: {0}")]
    Json(#[from] serde_json::Error),
    #[error("openapi.json: components.schemas is missing")]
    NoComponents,
    #[error("openapi.json: components.schemas.{name} refers to {target}, which is not compiled in")]
    UnknownFile { name: String, target: String },
}

/// The served document: compact JSON, external schema references inlined.
///
/// # Errors
/// The document or a schema file is not JSON, or refers to a file that is not compiled in.
pub fn bundled() -> Result<Bytes, BundleError> {
    let mut document: Value = serde_json::from_str(DOCUMENT)?;
    let schemas = document
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
        .ok_or(BundleError::NoComponents)?;
    for (name, schema) in schemas.iter_mut() {
        let Some(target) = external_ref(schema) else {
            continue;
        };
        let text = SCHEMA_FILES
            .iter()
            .find(|(path, _)| *path == target)
            .map(|(_, text)| *text)
            .ok_or_else(|| BundleError::UnknownFile {
                name: name.clone(),
                target: target.to_owned(),
            })?;
        let mut inlined: Map<String, Value> = serde_json::from_str(text)?;
        // Inside an OpenAPI document the schema's own dialect and base URI are the document's.
        inlined.remove("$schema");
        inlined.remove("$id");
        *schema = Value::Object(inlined);
    }
    Ok(Bytes::from(serde_json::to_vec(&document)?))
}

/// `GET /openapi.json`: the bundled document.
pub fn serve(document: Bytes) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        document,
    )
        .into_response()
}

/// `{"$ref": "schemas/…"}` → the file path.
fn external_ref(schema: &Value) -> Option<&str> {
    let object = schema.as_object()?;
    let target = object.get("$ref")?.as_str()?;
    (object.len() == 1 && !target.starts_with('#')).then_some(target)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_schema_file_is_inlined_and_no_external_reference_is_left() {
        let served: Value = serde_json::from_slice(&bundled().unwrap()).unwrap();
        let text = served.to_string();
        assert!(!text.contains("\"$ref\":\"schemas/"), "{text}");
        let schemas = served["components"]["schemas"].as_object().unwrap();
        assert_eq!(
            schemas["PlanRequest"]["title"], "POST /plan request body",
            "{schemas:?}"
        );
        // Every compiled-in file is used, and every file under schemas/ is compiled in.
        let repo: Value = serde_json::from_str(DOCUMENT).unwrap();
        let referenced: Vec<&str> = repo["components"]["schemas"]
            .as_object()
            .unwrap()
            .values()
            .filter_map(external_ref)
            .collect();
        for (path, _) in SCHEMA_FILES {
            assert!(referenced.contains(&path), "{path} is not referenced");
        }
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut on_disk = vec!["schemas/plan-request.schema.json".to_owned()];
        for entry in std::fs::read_dir(root.join("schemas/events")).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            on_disk.push(format!("schemas/events/{name}"));
        }
        for path in on_disk {
            assert!(
                SCHEMA_FILES.iter().any(|(p, _)| *p == path),
                "{path} is not compiled in"
            );
        }
    }
}
