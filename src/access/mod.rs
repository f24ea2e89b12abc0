//! Access: who is calling, and what it may do. A caller is a bearer token of `GATEWAY_API_KEY`
//! (spec §1.3, the same for every door; no limits), of the keys file ([`keys`], with its own
//! scopes and limits), or a JWT of the configured identity provider ([`jwt`]: scopes from its
//! claims, limits from the keys file's `[jwt]` block, counted per `sub`). For static tokens the
//! SHA-256 of the presented token is compared in constant time with every configured digest,
//! without stopping at a match. The route table's admission asks here once per request; doors
//! only see the answer (the caller's owner id, label and permissions). [`limits`] keeps the
//! counters of the keys' limits.

pub mod jwt;
pub mod keys;
pub mod limits;

use std::sync::Arc;

use axum::http::{HeaderMap, header};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::AuthMode;

/// Precomputed digests of the accepted tokens.
#[derive(Debug, Clone)]
pub struct Authenticator {
    mode: AuthMode,
    digests: Vec<[u8; 32]>,
    keys: keys::KeyBook,
    limits: Arc<limits::Limits>,
    jwt: Option<Arc<jwt::JwtVerifier>>,
}

/// Why a request has no caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No, unknown, expired or invalid credentials (401).
    Unknown,
    /// Its JWT cannot be checked now: the identity provider's keys cannot be fetched (503).
    Unavailable(String),
}

/// Who a request comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// What the caller starts belongs to this id: `key:<name>` for a key of the keys file,
    /// `jwt:<sub>` for a JWT (the same across refreshed tokens), the token's SHA-256 for a
    /// `GATEWAY_API_KEY` token, `anonymous` without auth.
    pub owner: String,
    /// The name in metrics and logs: the key's name, `jwt`, `default` for `GATEWAY_API_KEY`
    /// tokens, `anonymous`; never the token, its hash or a JWT's `sub`.
    pub label: String,
    /// The key's scopes and limits (keys-file keys only).
    pub policy: Option<Arc<keys::KeyPolicy>>,
}

impl Authenticator {
    /// Hashes the configured tokens once.
    #[must_use]
    pub fn new(mode: AuthMode, tokens: &[secrecy::SecretString]) -> Self {
        Self::with_keys(mode, tokens, keys::KeyBook::default())
    }

    /// Like [`Authenticator::new`], with the keys of the keys file.
    #[must_use]
    pub fn with_keys(
        mode: AuthMode,
        tokens: &[secrecy::SecretString],
        keys: keys::KeyBook,
    ) -> Self {
        use secrecy::ExposeSecret;
        let digests = tokens
            .iter()
            .map(|t| Sha256::digest(t.expose_secret().as_bytes()).into())
            .collect();
        Self {
            mode,
            digests,
            keys,
            limits: Arc::default(),
            jwt: None,
        }
    }

    /// Accepts the JWTs `verifier` accepts.
    #[must_use]
    pub fn with_jwt(mut self, verifier: jwt::JwtVerifier) -> Self {
        self.jwt = Some(Arc::new(verifier));
        self
    }

    /// Keeps the keys' counters on the shared store, for every instance.
    #[must_use]
    pub fn with_shared_counters(
        mut self,
        counters: crate::store::counters::SharedCounters,
    ) -> Self {
        self.limits = Arc::new(limits::Limits::shared(counters));
        self
    }

    /// The counters of the keys' limits.
    #[must_use]
    pub fn limits(&self) -> &Arc<limits::Limits> {
        &self.limits
    }

    /// Whether bearer mode is on with no token configured (everyone is rejected).
    #[must_use]
    pub fn rejects_everyone(&self) -> bool {
        self.mode == AuthMode::Bearer
            && self.digests.is_empty()
            && self.keys.is_empty()
            && self.jwt.is_none()
    }

    /// The caller of a request.
    ///
    /// # Errors
    /// [`Refusal::Unknown`] for a 401 (no or an unknown token, a key past its `expires_at`, a
    /// JWT that does not verify); [`Refusal::Unavailable`] when a JWT cannot be checked now.
    pub async fn authenticate(&self, headers: &HeaderMap) -> Result<Identity, Refusal> {
        if self.mode == AuthMode::None {
            return Ok(Identity {
                owner: "anonymous".to_owned(),
                label: "anonymous".to_owned(),
                policy: None,
            });
        }
        let token = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| bearer_token(v.as_bytes()))
            .ok_or(Refusal::Unknown)?;
        // A static token first (constant time, whatever its shape), then a JWT.
        if let Some(identity) = self.by_digest(token) {
            return Ok(identity);
        }
        if let Some(verifier) = &self.jwt
            && jwt::looks_like_jwt(token)
        {
            // The shape check above allows only ASCII.
            let text = std::str::from_utf8(token).map_err(|_| Refusal::Unknown)?;
            return match verifier.verify(text).await {
                Ok(caller) => {
                    let policy = self.keys.jwt_policy(&caller.sub, caller.catalogs);
                    Ok(Identity {
                        owner: format!("jwt:{}", caller.sub),
                        label: "jwt".to_owned(),
                        policy: Some(Arc::new(policy)),
                    })
                }
                Err(jwt::JwtError::Invalid(why)) => {
                    tracing::info!(reason = %why, "JWT refused");
                    Err(Refusal::Unknown)
                }
                Err(jwt::JwtError::Unavailable(why)) => Err(Refusal::Unavailable(why)),
            };
        }
        Err(Refusal::Unknown)
    }

    /// The caller of a static token (`GATEWAY_API_KEY` or the keys file).
    fn by_digest(&self, token: &[u8]) -> Option<Identity> {
        let digest: [u8; 32] = Sha256::digest(token).into();
        let mut matched = subtle::Choice::from(0u8);
        for known in &self.digests {
            matched |= digest.ct_eq(known);
        }
        let mut key = None;
        for (known, policy) in &self.keys.keys {
            if bool::from(digest.ct_eq(known)) {
                key = Some(policy);
            }
        }
        if let Some(policy) = key {
            return (!policy.expired()).then(|| Identity {
                owner: format!("key:{}", policy.name),
                label: policy.name.clone(),
                policy: Some(Arc::clone(policy)),
            });
        }
        bool::from(matched).then(|| Identity {
            owner: hex::encode(digest),
            label: "default".to_owned(),
            policy: None,
        })
    }
}

/// `Bearer` (any case) + exactly one space + a non-empty token used verbatim.
fn bearer_token(value: &[u8]) -> Option<&[u8]> {
    let (scheme, rest) = value.split_at_checked(6)?;
    if !scheme.eq_ignore_ascii_case(b"bearer") {
        return None;
    }
    let token = rest.strip_prefix(b" ")?;
    (!token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;
    use secrecy::SecretString;

    fn auth(tokens: &[&str]) -> Authenticator {
        let tokens: Vec<SecretString> = tokens
            .iter()
            .map(|t| SecretString::from((*t).to_owned()))
            .collect();
        Authenticator::new(AuthMode::Bearer, &tokens)
    }

    fn headers(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        h
    }

    #[tokio::test]
    async fn scheme_case_single_space_and_exact_match() {
        let a = auth(&["k1", "k2"]);
        assert!(a.authenticate(&headers("Bearer k1")).await.is_ok());
        assert!(a.authenticate(&headers("bEaReR k2")).await.is_ok());
        assert!(a.authenticate(&headers("Bearer  k1")).await.is_err());
        assert!(a.authenticate(&headers("Bearer k1 ")).await.is_err());
        assert!(a.authenticate(&headers("Basic k1")).await.is_err());
        assert!(a.authenticate(&headers("Bearer ")).await.is_err());
        assert!(a.authenticate(&HeaderMap::new()).await.is_err());
        assert!(auth(&[]).authenticate(&headers("Bearer x")).await.is_err());
        let caller = a.authenticate(&headers("Bearer k1")).await.unwrap();
        assert_eq!(caller.owner, hex::encode(Sha256::digest(b"k1")));
        assert_eq!(caller.label, "default");
    }

    #[tokio::test]
    async fn mode_none_is_anonymous() {
        let a = Authenticator::new(AuthMode::None, &[]);
        assert_eq!(
            a.authenticate(&HeaderMap::new())
                .await
                .ok()
                .map(|c| c.owner)
                .as_deref(),
            Some("anonymous")
        );
    }
}
