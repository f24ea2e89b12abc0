//! What every method of the door is handed, and how it refuses.

use std::sync::Arc;

use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::Value;

use super::store::TaskStore;
use super::wire::Dialect;
use crate::api::http::body;
use crate::api::http::caller::Caller;
use crate::api::http::error::ApiError;
use crate::api::http::jsonrpc::{self, RpcError};
use crate::state::AppState;

/// One JSON-RPC call to the door.
pub(crate) struct Call<'a> {
    pub(crate) state: &'a AppState,
    /// The caller's owner id: its tasks are its own.
    pub(crate) owner: &'a str,
    /// The caller, with what its key lets it use.
    pub(crate) caller: &'a Caller,
    pub(crate) tasks: &'a Arc<TaskStore>,
    pub(crate) headers: &'a HeaderMap,
    pub(crate) dialect: Dialect,
    /// The request's `id`.
    pub(crate) id: &'a Value,
}

impl Call<'_> {
    /// A JSON-RPC result for this call.
    pub(crate) fn result(&self, result: &Value) -> Response {
        body::json(StatusCode::OK, &jsonrpc::result(self.id, result))
    }
}

/// A refusal: a JSON-RPC error of the door's own (answered with 200), or a core rejection
/// (the status and headers of the one error table).
pub(crate) enum Failure {
    Rpc(RpcError),
    Api(ApiError),
}

impl From<RpcError> for Failure {
    fn from(error: RpcError) -> Self {
        Self::Rpc(error)
    }
}

impl From<ApiError> for Failure {
    fn from(error: ApiError) -> Self {
        Self::Api(error)
    }
}

impl Failure {
    pub(crate) fn respond(&self, id: &Value) -> Response {
        match self {
            Self::Rpc(error) => jsonrpc::error_response(StatusCode::OK, id, error),
            Self::Api(e) => jsonrpc::rejection(e, id),
        }
    }

    /// Why, for the log.
    pub(crate) fn message(&self) -> String {
        match self {
            Self::Rpc(error) => error.message.clone(),
            Self::Api(e) => e.to_string(),
        }
    }
}
