//! Peer authentication (spec §5.13): what a call sends to prove who the gateway is. Bearer
//! tokens come from the request, from allow-listed environment variables (optionally bound to one
//! peer), or from Hydra; `did_signed` peers also get Ed25519 signatures over each body.

use std::collections::HashMap;
use std::sync::Arc;

use reqwest::header::HeaderValue;
use secrecy::{ExposeSecret, SecretString};

use crate::a2a::error::A2aError;
use crate::a2a::peer::PeerAuth;
use crate::identity::Identity;
use crate::identity::hydra::TokenProvider;

/// Auth resolved for one call: header values built once, applied per request; DID signatures are
/// computed per request over the exact body bytes.
#[derive(Clone)]
pub(crate) enum ResolvedAuth {
    None,
    Bearer(HeaderValue),
    Signed {
        bearer: HeaderValue,
        identity: Arc<Identity>,
    },
}

/// Where peer credentials come from: the env allow-list and its values, the gateway identity and
/// Hydra's tokens.
#[derive(Debug, Default)]
pub(crate) struct PeerSecrets {
    /// `GATEWAY_PEER_ENV_ALLOWLIST` entries: `NAME` or `NAME@host[:port]`.
    pub(crate) allowlist: Vec<String>,
    /// Values of the allow-listed variables, read at boot.
    pub(crate) env: HashMap<String, SecretString>,
    /// Signs requests to `did_signed` peers.
    pub(crate) identity: Option<Arc<Identity>>,
    /// Bearer tokens for `did_signed` peers without `tokenEnvVar`.
    pub(crate) tokens: Option<Arc<TokenProvider>>,
}

/// A sensitive `Authorization: Bearer` value.
fn bearer_header(token: &str) -> Result<HeaderValue, A2aError> {
    HeaderValue::from_str(&format!("Bearer {token}"))
        .map(|mut v| {
            v.set_sensitive(true);
            v
        })
        .map_err(|_| {
            A2aError::Auth("token contains characters not allowed in an HTTP header".to_owned())
        })
}

impl PeerSecrets {
    /// The headers a call to `endpoint` carries.
    pub(crate) async fn resolve(
        &self,
        auth: &PeerAuth,
        endpoint: &str,
    ) -> Result<ResolvedAuth, A2aError> {
        match auth {
            PeerAuth::None => Ok(ResolvedAuth::None),
            PeerAuth::Bearer { token } => {
                bearer_header(token.expose_secret()).map(ResolvedAuth::Bearer)
            }
            PeerAuth::BearerEnv { env_var } => {
                let value = self.allowed_env(env_var, endpoint)?.ok_or_else(|| {
                    A2aError::Auth(format!(
                        "env var \"{env_var}\" is not set (peer requires bearer auth from env)"
                    ))
                })?;
                bearer_header(&value).map(ResolvedAuth::Bearer)
            }
            PeerAuth::DidSigned { token_env_var } => {
                let Some(identity) = self.identity.clone() else {
                    return Err(A2aError::Auth(
                        "did_signed peer requires a gateway LocalIdentity — set BINDU_GATEWAY_DID_SEED, BINDU_GATEWAY_AUTHOR and BINDU_GATEWAY_NAME"
                            .to_owned(),
                    ));
                };
                let token = match (token_env_var, &self.tokens) {
                    (Some(name), _) => self.allowed_env(name, endpoint)?.ok_or_else(|| {
                        A2aError::Auth(format!(
                            "env var \"{name}\" is not set (did_signed peer requires an OAuth bearer token alongside the DID signature)"
                        ))
                    })?,
                    (None, Some(tokens)) => tokens.token().await.map_err(A2aError::Auth)?.expose_secret().to_owned(),
                    (None, None) => {
                        return Err(A2aError::Auth(
                            "did_signed peer has no bearer token — set tokenEnvVar or configure BINDU_GATEWAY_HYDRA_TOKEN_URL".to_owned(),
                        ));
                    }
                };
                Ok(ResolvedAuth::Signed {
                    bearer: bearer_header(&token)?,
                    identity,
                })
            }
        }
    }

    /// The value of an allow-listed variable (`Ok(None)` when unset or empty). An entry
    /// `NAME@host[:port]` binds the variable to that peer: it is sent to no other endpoint.
    fn allowed_env(&self, name: &str, endpoint: &str) -> Result<Option<String>, A2aError> {
        let bindings: Vec<Option<&str>> = self
            .allowlist
            .iter()
            .filter_map(|entry| match entry.split_once('@') {
                None if entry == name => Some(None),
                Some((n, host)) if n == name => Some(Some(host)),
                _ => None,
            })
            .collect();
        if bindings.is_empty() {
            return Err(A2aError::Auth(format!(
                "env var \"{name}\" is not allowed (add it to GATEWAY_PEER_ENV_ALLOWLIST)"
            )));
        }
        if !bindings.contains(&None)
            && !bindings.iter().flatten().any(|b| host_matches(b, endpoint))
        {
            let hosts: Vec<&str> = bindings.into_iter().flatten().collect();
            return Err(A2aError::Auth(format!(
                "env var \"{name}\" is bound to {} in GATEWAY_PEER_ENV_ALLOWLIST and is not sent to this endpoint",
                hosts.join(", ")
            )));
        }
        Ok(self
            .env
            .get(name)
            .map(|v| v.expose_secret().to_owned())
            .filter(|v| !v.is_empty()))
    }
}

/// Whether an endpoint is the `host[:port]` an allow-list entry binds a variable to (host names
/// compared without case; without a port, any port of that host).
fn host_matches(binding: &str, endpoint: &str) -> bool {
    let Ok(url) = url::Url::parse(endpoint) else {
        return false;
    };
    let Some(host) = url.host_str() else {
        return false;
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let (bound_host, bound_port) = match binding.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(':') && p.parse::<u16>().is_ok() && !h.is_empty() => {
            (h, p.parse::<u16>().ok())
        }
        _ => (binding, None),
    };
    let bound_host = bound_host.trim_start_matches('[').trim_end_matches(']');
    bound_host.eq_ignore_ascii_case(host)
        && bound_port.is_none_or(|p| url.port_or_known_default() == Some(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_list_bindings_match_host_and_port() {
        assert!(host_matches(
            "agent.example.com",
            "https://Agent.Example.com/a2a"
        ));
        assert!(host_matches(
            "agent.example.com:8443",
            "https://agent.example.com:8443/"
        ));
        assert!(!host_matches(
            "agent.example.com:8443",
            "https://agent.example.com/"
        ));
        assert!(host_matches("127.0.0.1:3773", "http://127.0.0.1:3773"));
        assert!(!host_matches(
            "agent.example.com",
            "https://evil.example.net/"
        ));
        assert!(host_matches("[::1]:80", "http://[::1]/"));
    }
}
