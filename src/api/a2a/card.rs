//! plangate's agent cards: one skill per server-side catalog, streaming on, the JSON-RPC endpoint
//! `/a2a`, and the gateway DID (when configured) as a `capabilities.extensions[].uri` the way Bindu
//! agents carry theirs, so a verifying caller finds the DID on the card and its key at
//! `/did/resolve`. `agent-card.json` has the A2A 1.0 shape (`supportedInterfaces`), `agent.json`
//! the v0.3 shape (`url`, `protocolVersion`, `preferredTransport`).

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};

use crate::api::http::body;
use crate::catalog::Catalogs;
use crate::config::AuthMode;
use crate::identity::Identity;
use crate::state::AppState;

const DESCRIPTION: &str = "An A2A planner gateway: ask a question of a catalog of remote agents \
(the skill id names the catalog); the answer is assembled from their work.";

/// The gateway's URL as this caller reached it: `a2a_server.public_url`, else `http://<Host>`.
pub(crate) fn base_url(state: &AppState, headers: &HeaderMap) -> String {
    crate::api::http::links::base_url(state.config().a2a_server.public_url.as_deref(), headers)
}

fn card_inputs<'a>(state: &'a AppState, base_url: &'a str) -> CardInputs<'a> {
    CardInputs {
        base_url,
        catalogs: state.catalogs(),
        identity: state.identity().map(AsRef::as_ref),
        bearer: state.config().auth.mode == AuthMode::Bearer,
    }
}

/// `GET /.well-known/agent-card.json`: the 1.0 card.
pub async fn card_v10(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let base = base_url(&state, &headers);
    body::json(StatusCode::OK, &v10(&card_inputs(&state, &base)))
}

/// `GET /.well-known/agent.json`: the v0.3 card.
pub async fn card_v03(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let base = base_url(&state, &headers);
    body::json(StatusCode::OK, &v03(&card_inputs(&state, &base)))
}

/// What the cards are built from.
pub struct CardInputs<'a> {
    /// The gateway's URL as the caller reaches it, without trailing slash.
    pub base_url: &'a str,
    pub catalogs: &'a Catalogs,
    pub identity: Option<&'a Identity>,
    /// Whether callers must send a bearer token.
    pub bearer: bool,
}

fn skills(inputs: &CardInputs<'_>) -> Vec<Value> {
    inputs
        .catalogs
        .iter()
        .map(|c| {
            let description = if c.description.is_empty() {
                format!(
                    "Plans over the {} catalog ({} agents).",
                    c.name,
                    c.agents.len()
                )
            } else {
                c.description.clone()
            };
            json!({"id": c.name, "name": c.name, "description": description,
                "tags": ["catalog"], "inputModes": ["text/plain", "application/json"],
                "outputModes": ["text/plain"]})
        })
        .collect()
}

fn extensions(inputs: &CardInputs<'_>) -> Vec<Value> {
    inputs
        .identity
        .map(|id| {
            json!({"uri": id.did(), "description": "DID of this gateway; answer texts carry its signature in metadata[\"did.message.signature\"]",
                "required": false,
                "params": {"author": id.author(), "agent_name": id.name(), "public_key_base58": id.public_key_base58()}})
        })
        .into_iter()
        .collect()
}

/// What both card shapes carry.
fn common(inputs: &CardInputs<'_>) -> Value {
    json!({
        "name": "plangate",
        "description": DESCRIPTION,
        "version": env!("CARGO_PKG_VERSION"),
        "capabilities": {"streaming": true, "pushNotifications": false,
            "extensions": extensions(inputs)},
        "defaultInputModes": ["text/plain", "application/json"],
        "defaultOutputModes": ["text/plain"],
        "skills": skills(inputs),
    })
}

/// `GET /.well-known/agent-card.json`: the A2A 1.0 card.
#[must_use]
pub fn v10(inputs: &CardInputs<'_>) -> Value {
    let mut card = common(inputs);
    card["supportedInterfaces"] = json!([{"url": format!("{}/a2a", inputs.base_url),
        "protocolBinding": "JSONRPC", "protocolVersion": "1.0"}]);
    if inputs.bearer {
        card["securitySchemes"] = json!({"bearer": {"httpAuthSecurityScheme": {
            "scheme": "Bearer", "description": "A token of the gateway's GATEWAY_API_KEY"}}});
    }
    card
}

/// `GET /.well-known/agent.json`: the v0.3 card.
#[must_use]
pub fn v03(inputs: &CardInputs<'_>) -> Value {
    let mut card = common(inputs);
    card["protocolVersion"] = json!("0.3.0");
    card["url"] = json!(format!("{}/a2a", inputs.base_url));
    card["preferredTransport"] = json!("JSONRPC");
    if inputs.bearer {
        card["securitySchemes"] = json!({"bearer": {"type": "http", "scheme": "bearer"}});
        card["security"] = json!([{"bearer": []}]);
    }
    card
}
