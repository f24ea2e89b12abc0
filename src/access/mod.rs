//! Access: who is calling. Today a caller is a bearer token of `GATEWAY_API_KEY` (spec §1.3,
//! the same for every door): the SHA-256 of the presented token is compared in constant time
//! with every configured digest, without stopping at a match. The route table's admission asks
//! here once per request; doors only see the answer (the caller's owner id).

use axum::http::{HeaderMap, header};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::AuthMode;

/// The owner id of an authenticated caller: what it starts (plans, tasks, sessions, idempotency
/// entries) belongs to it.
pub type Scope = String;

/// Precomputed digests of the accepted tokens.
#[derive(Debug, Clone)]
pub struct Authenticator {
    mode: AuthMode,
    digests: Vec<[u8; 32]>,
}

impl Authenticator {
    /// Hashes the configured tokens once.
    #[must_use]
    pub fn new(mode: AuthMode, tokens: &[secrecy::SecretString]) -> Self {
        use secrecy::ExposeSecret;
        let digests = tokens
            .iter()
            .map(|t| Sha256::digest(t.expose_secret().as_bytes()).into())
            .collect();
        Self { mode, digests }
    }

    /// Whether bearer mode is on with no token configured (everyone is rejected).
    #[must_use]
    pub fn rejects_everyone(&self) -> bool {
        self.mode == AuthMode::Bearer && self.digests.is_empty()
    }

    /// The caller's scope (`<hex sha256 of token>` or `anonymous`), or `None` for a 401.
    #[must_use]
    pub fn authenticate(&self, headers: &HeaderMap) -> Option<Scope> {
        if self.mode == AuthMode::None {
            return Some("anonymous".to_owned());
        }
        let value = headers.get(header::AUTHORIZATION)?.as_bytes();
        let token = bearer_token(value)?;
        let digest: [u8; 32] = Sha256::digest(token).into();
        let mut matched = subtle::Choice::from(0u8);
        for known in &self.digests {
            matched |= digest.ct_eq(known);
        }
        bool::from(matched).then(|| hex::encode(digest))
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

    #[test]
    fn scheme_case_single_space_and_exact_match() {
        let a = auth(&["k1", "k2"]);
        assert!(a.authenticate(&headers("Bearer k1")).is_some());
        assert!(a.authenticate(&headers("bEaReR k2")).is_some());
        assert!(a.authenticate(&headers("Bearer  k1")).is_none());
        assert!(a.authenticate(&headers("Bearer k1 ")).is_none());
        assert!(a.authenticate(&headers("Basic k1")).is_none());
        assert!(a.authenticate(&headers("Bearer ")).is_none());
        assert!(a.authenticate(&HeaderMap::new()).is_none());
        assert!(auth(&[]).authenticate(&headers("Bearer x")).is_none());
        assert_eq!(
            a.authenticate(&headers("Bearer k1")).unwrap(),
            hex::encode(Sha256::digest(b"k1"))
        );
    }

    #[test]
    fn mode_none_is_anonymous() {
        let a = Authenticator::new(AuthMode::None, &[]);
        assert_eq!(
            a.authenticate(&HeaderMap::new()).as_deref(),
            Some("anonymous")
        );
    }
}
