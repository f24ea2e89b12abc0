//! JWT callers: a bearer that is a JWT is verified against the identity provider's JWKS
//! (`GATEWAY_JWT_JWKS_URL`) for one issuer and one audience.
//!
//! - Only asymmetric algorithms are accepted, listed here (RS*, PS*, ES256/384, EdDSA): `none`
//!   is not an algorithm `jsonwebtoken` parses, and HMAC is refused before any key is looked
//!   at, so a token "signed" with the public key as an HMAC secret never verifies.
//! - The key is the JWKS entry named by the token's `kid` (a token without one is accepted only
//!   when the set holds one key); its type must be the algorithm's, and its own `alg`, when it
//!   says one, the token's.
//! - `exp` (required), `nbf` (when present), `iss` and `aud` (both required) are checked with
//!   [`LEEWAY_SECS`] of clock skew; `sub` names the caller.
//! - The set is cached for `auth.jwt_jwks_cache_secs`; a `kid` it does not hold fetches it again
//!   at once, but at most once per `auth.jwt_jwks_refetch_secs`, and one fetch at a time (a
//!   flood of made-up `kid`s cannot turn into a flood of fetches). A fetch that fails keeps the
//!   set it had; with none at all, callers get 503.
//!
//! The caller's catalogs come from the claim `plangate_catalogs` (an array of names), else from
//! the `scope` words `catalog:<name>`; `*` is every catalog; neither means none.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, Validation};
use serde::Deserialize;

use crate::config::JwtConfig;

/// Clock skew allowed on `exp` and `nbf`, in seconds.
pub const LEEWAY_SECS: u64 = 30;
/// The largest JWKS document read.
const MAX_JWKS_BYTES: usize = 512 * 1024;
/// How long one JWKS fetch may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest `sub` accepted (it names what the caller owns).
const MAX_SUB_CHARS: usize = 256;

/// Why a JWT was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    /// The token is not valid (401); the reason is for the log, never with the token.
    #[error("{0}")]
    Invalid(String),
    /// No key set could be fetched yet (503).
    #[error("the identity provider's JWKS cannot be fetched: {0}")]
    Unavailable(String),
}

/// A verified caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtCaller {
    pub sub: String,
    /// Catalogs the token grants; `None` = every one.
    pub catalogs: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
struct Claims {
    sub: Option<String>,
    plangate_catalogs: Option<Vec<String>>,
    scope: Option<String>,
}

/// The cached key set.
#[derive(Debug, Default)]
struct Cached {
    keys: Arc<Vec<Jwk>>,
    /// When the set was last fetched (with success or not); `None` before the first fetch.
    tried: Option<Instant>,
    /// When the set was last fetched with success.
    fetched: Option<Instant>,
    /// When a `kid` the set did not hold last made a fetch.
    unknown_kid: Option<Instant>,
}

/// Why the set is fetched again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Why {
    /// Never fetched, or older than `auth.jwt_jwks_cache_secs`.
    Stale,
    /// A token names a `kid` the set does not hold (a key rotated in).
    UnknownKid,
}

/// Verifies JWTs against one issuer's JWKS.
#[derive(Debug)]
pub struct JwtVerifier {
    config: JwtConfig,
    http: reqwest::Client,
    cached: RwLock<Cached>,
    /// One fetch at a time.
    fetching: tokio::sync::Mutex<()>,
    /// The checks of a token, one per accepted algorithm (the library wants every algorithm a
    /// validation lists in the key's family, so each lists only its own), built once.
    validations: Vec<(Algorithm, Validation)>,
}

/// The algorithms a token may use: asymmetric ones only.
const ACCEPTED: [Algorithm; 9] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// Whether a bearer token has the shape of a JWT (three base64url parts), so it is verified
/// here rather than looked up among the static tokens.
#[must_use]
pub fn looks_like_jwt(token: &[u8]) -> bool {
    token.iter().filter(|b| **b == b'.').count() == 2
        && token
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'='))
}

impl JwtVerifier {
    /// A verifier; the JWKS is fetched on the first JWT.
    ///
    /// # Errors
    /// The HTTP client cannot be built.
    pub fn new(config: JwtConfig) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("plangate/", env!("CARGO_PKG_VERSION")))
            .timeout(FETCH_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("JWKS http client: {e}"))?;
        let validations = ACCEPTED
            .iter()
            .map(|alg| {
                let mut validation = Validation::new(*alg);
                validation.leeway = LEEWAY_SECS;
                validation.validate_nbf = true;
                validation.set_issuer(&[&config.issuer]);
                validation.set_audience(&[&config.audience]);
                validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
                (*alg, validation)
            })
            .collect();
        Ok(Self {
            config,
            http,
            cached: RwLock::default(),
            fetching: tokio::sync::Mutex::new(()),
            validations,
        })
    }

    /// Verifies `token` and names its caller.
    ///
    /// # Errors
    /// The token is not valid, or no key set could be fetched.
    pub async fn verify(&self, token: &str) -> Result<JwtCaller, JwtError> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|e| JwtError::Invalid(format!("not a JWT with an accepted header: {e}")))?;
        let Some((_, validation)) = self.validations.iter().find(|(a, _)| *a == header.alg) else {
            return Err(JwtError::Invalid(format!(
                "algorithm {:?} is not accepted (only RS*, PS*, ES256, ES384 and EdDSA)",
                header.alg
            )));
        };
        let kid = header.kid.as_deref();
        let Some(key) = self.key_for(kid, header.alg).await? else {
            return Err(JwtError::Invalid(match kid {
                Some(kid) => format!("no key {kid:?} in the JWKS"),
                None => "the token names no kid and the JWKS holds several keys".to_owned(),
            }));
        };
        let data = jsonwebtoken::decode::<Claims>(token, &key, validation)
            .map_err(|e| JwtError::Invalid(format!("rejected: {e}")))?;
        let sub = data
            .claims
            .sub
            .filter(|s| !s.is_empty() && s.chars().count() <= MAX_SUB_CHARS)
            .ok_or_else(|| {
                JwtError::Invalid(format!(
                    "sub must be a string of 1 to {MAX_SUB_CHARS} characters"
                ))
            })?;
        Ok(JwtCaller {
            sub,
            catalogs: catalogs_of(data.claims.plangate_catalogs, data.claims.scope.as_deref()),
        })
    }

    /// The decoding key for `kid`: from the cached set, else from a fresh fetch when one is
    /// allowed now.
    async fn key_for(
        &self,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<Option<DecodingKey>, JwtError> {
        let (keys, stale) = self.snapshot();
        if !stale && let Some(found) = pick(&keys, kid, alg) {
            return found.map(Some);
        }
        self.refresh(if stale { Why::Stale } else { Why::UnknownKid })
            .await?;
        let (keys, _) = self.snapshot();
        pick(&keys, kid, alg).transpose()
    }

    /// The cached set, and whether it is due for a fetch (never fetched, or older than the
    /// cache time).
    fn snapshot(&self) -> (Arc<Vec<Jwk>>, bool) {
        let cached = self
            .cached
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let stale = cached
            .fetched
            .is_none_or(|at| at.elapsed() >= self.config.jwks_cache);
        (Arc::clone(&cached.keys), stale)
    }

    /// Fetches the set again when allowed: a stale set when the last try is older than the
    /// refetch interval (an identity provider that is down is not asked by every request), an
    /// unknown `kid` when no other unknown `kid` fetched within that interval. One fetch at a
    /// time: a request that waited for another's fetch uses its set.
    ///
    /// # Errors
    /// No set was ever fetched, and none can be now.
    async fn refresh(&self, why: Why) -> Result<(), JwtError> {
        let before = self.tried();
        let _one = self.fetching.lock().await;
        if self.tried() != before {
            return Ok(());
        }
        let interval = self.config.jwks_refetch;
        let allowed = {
            let mut cached = self
                .cached
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let allowed = match why {
                Why::Stale => cached.tried.is_none_or(|at| at.elapsed() >= interval),
                Why::UnknownKid => cached.unknown_kid.is_none_or(|at| at.elapsed() >= interval),
            };
            if allowed && why == Why::UnknownKid {
                cached.unknown_kid = Some(Instant::now());
            }
            if !allowed && cached.fetched.is_none() {
                return Err(JwtError::Unavailable(
                    "the last fetch failed; it is tried again after auth.jwt_jwks_refetch_secs"
                        .to_owned(),
                ));
            }
            allowed
        };
        if !allowed {
            return Ok(());
        }
        let result = self.fetch().await;
        let mut cached = self
            .cached
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        cached.tried = Some(Instant::now());
        match result {
            Ok(keys) => {
                cached.keys = Arc::new(keys);
                cached.fetched = cached.tried;
                Ok(())
            }
            Err(e) => {
                tracing::warn!(url = %self.config.jwks_url, error = %e, "cannot fetch the JWKS");
                if cached.fetched.is_none() {
                    Err(JwtError::Unavailable(e))
                } else {
                    // The set it had stays in use.
                    Ok(())
                }
            }
        }
    }

    fn tried(&self) -> Option<Instant> {
        self.cached
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .tried
    }

    /// One fetch of the JWKS: the signing keys it holds that parse (others are skipped, so one
    /// odd key does not take the whole set down).
    async fn fetch(&self) -> Result<Vec<Jwk>, String> {
        let mut response = self
            .http
            .get(self.config.jwks_url.clone())
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| crate::telemetry::error_chain(&e))?;
        if !response.status().is_success() {
            return Err(format!("HTTP {}", response.status()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| crate::telemetry::error_chain(&e))?
        {
            if body.len() + chunk.len() > MAX_JWKS_BYTES {
                return Err(format!("the JWKS exceeds {MAX_JWKS_BYTES} bytes"));
            }
            body.extend_from_slice(&chunk);
        }
        #[derive(Deserialize)]
        struct Set {
            keys: Vec<serde_json::Value>,
        }
        let set: Set =
            serde_json::from_slice(&body).map_err(|e| format!("not a JWKS document: {e}"))?;
        let keys: Vec<Jwk> = set
            .keys
            .into_iter()
            .filter_map(|k| serde_json::from_value::<Jwk>(k).ok())
            .filter(|k| !matches!(k.common.public_key_use, Some(PublicKeyUse::Encryption)))
            .collect();
        Ok(keys)
    }
}

/// The key for `kid` and `alg` in `keys`: `None` when the set has no such key; `Some(Err)` when
/// it has one that does not fit the algorithm.
fn pick(keys: &[Jwk], kid: Option<&str>, alg: Algorithm) -> Option<Result<DecodingKey, JwtError>> {
    let jwk = match kid {
        Some(kid) => keys
            .iter()
            .find(|k| k.common.key_id.as_deref() == Some(kid))?,
        None => match keys {
            [only] => only,
            _ => return None,
        },
    };
    Some(fits(jwk, alg))
}

/// A decoding key from `jwk` when it may verify `alg`.
fn fits(jwk: &Jwk, alg: Algorithm) -> Result<DecodingKey, JwtError> {
    let family = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => Some(AlgorithmFamily::Rsa),
        AlgorithmParameters::EllipticCurve(_) => Some(AlgorithmFamily::Ec),
        AlgorithmParameters::OctetKeyPair(_) => Some(AlgorithmFamily::Ed),
        _ => None,
    };
    if family.is_none_or(|f| !f.algorithms().contains(&alg)) {
        return Err(JwtError::Invalid(format!(
            "the JWKS key does not fit algorithm {alg:?}"
        )));
    }
    if let Some(stated) = jwk.common.key_algorithm
        && !same(stated, alg)
    {
        return Err(JwtError::Invalid(format!(
            "the JWKS key is for {stated:?}, the token says {alg:?}"
        )));
    }
    DecodingKey::from_jwk(jwk).map_err(|e| JwtError::Invalid(format!("unusable JWKS key: {e}")))
}

/// Whether a JWK's `alg` names algorithm `alg`.
fn same(stated: KeyAlgorithm, alg: Algorithm) -> bool {
    KeyAlgorithm::from(alg) == stated
}

/// The catalogs a token grants: `plangate_catalogs`, else the `catalog:<name>` words of
/// `scope`; `*` = every one.
fn catalogs_of(claim: Option<Vec<String>>, scope: Option<&str>) -> Option<Vec<String>> {
    let names: Vec<String> = match claim {
        Some(list) => list,
        None => scope
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|w| w.strip_prefix("catalog:"))
            .map(str::to_owned)
            .collect(),
    };
    if names.iter().any(|n| n == "*") {
        None
    } else {
        Some(names)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogs_from_the_claim_else_the_scope() {
        assert_eq!(
            catalogs_of(Some(vec!["ops".into()]), Some("catalog:sales")),
            Some(vec!["ops".to_owned()])
        );
        assert_eq!(
            catalogs_of(None, Some("openid catalog:sales profile catalog:ops")),
            Some(vec!["sales".to_owned(), "ops".to_owned()])
        );
        assert_eq!(catalogs_of(None, Some("catalog:*")), None);
        assert_eq!(catalogs_of(None, None), Some(vec![]));
    }

    #[test]
    fn only_three_part_tokens_look_like_jwts() {
        assert!(looks_like_jwt(b"eyJh.eyJz.c2ln"));
        assert!(!looks_like_jwt(b"pg_0123abcd"));
        assert!(!looks_like_jwt(b"a.b"));
        assert!(!looks_like_jwt(b"a.b.c d"));
    }
}
