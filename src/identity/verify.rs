//! Verification of signed texts (spec §6.4): find the peer's key (pinned key, `did:key`
//! decoded locally, or the peer's own `/did/resolve`), then check the Ed25519 signature of every
//! signed text. A `yes` proves the text was signed by that key; only a pinned key or a
//! `did:key` binds it to an identity independent of the peer.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ed25519_dalek::{Signature, Verifier as _, VerifyingKey};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::decode_did_key;

/// Where signatures of artifact text parts live.
pub const SIGNATURE_KEY: &str = "did.message.signature";
/// How long a resolved DID document is trusted.
const DOCUMENT_TTL: Duration = Duration::from_secs(300);

/// Checks a base58 Ed25519 signature over a message.
#[must_use]
pub fn verify_base58(key: &[u8; 32], message: &[u8], signature: &str) -> bool {
    let Ok(key) = VerifyingKey::from_bytes(key) else {
        return false;
    };
    let Some(sig) = bs58::decode(signature)
        .into_vec()
        .ok()
        .and_then(|b| <[u8; 64]>::try_from(b.as_slice()).ok())
    else {
        return false;
    };
    key.verify(message, &Signature::from_bytes(&sig)).is_ok()
}

/// Signature counters of a peer's texts (spec §6.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Signatures {
    /// No signed text failed verification.
    pub ok: bool,
    pub signed: u32,
    pub verified: u32,
    pub unsigned: u32,
}

/// A text and the base58 signature that came with it, if any (peers put it in the text part's
/// metadata under [`SIGNATURE_KEY`]).
#[derive(Debug, Clone, Copy)]
pub struct SignedText<'a> {
    pub text: &'a str,
    pub signature: Option<&'a str>,
}

/// Counts signed, verified and unsigned texts; empty texts are not counted.
#[must_use]
pub fn check_texts<'a>(
    texts: impl IntoIterator<Item = SignedText<'a>>,
    key: &[u8; 32],
) -> Signatures {
    let (mut signed, mut verified, mut unsigned) = (0u32, 0u32, 0u32);
    for SignedText { text, signature } in texts {
        if text.is_empty() {
            continue;
        }
        match signature {
            Some(sig) => {
                signed += 1;
                if verify_base58(key, text.as_bytes(), sig) {
                    verified += 1;
                }
            }
            None => unsigned += 1,
        }
    }
    Signatures {
        ok: signed == 0 || signed == verified,
        signed,
        verified,
        unsigned,
    }
}

/// The public key of a DID document: the first `authentication[]` entry with
/// `publicKeyBase58`, else the first `verificationMethod[]` one (`publicKeyMultibase` `z…` too).
#[must_use]
pub fn key_from_document(doc: &Value) -> Option<[u8; 32]> {
    let from_entry = |e: &Value| -> Option<[u8; 32]> {
        if let Some(b58) = e.get("publicKeyBase58").and_then(Value::as_str) {
            return super::decode_public_key(b58);
        }
        let multibase = e.get("publicKeyMultibase").and_then(Value::as_str)?;
        decode_did_key(&format!("did:key:{multibase}"))
    };
    for list in ["authentication", "verificationMethod"] {
        if let Some(key) = doc.get(list).and_then(Value::as_array).and_then(|entries| {
            entries
                .iter()
                .filter(|e| e.is_object())
                .find_map(from_entry)
        }) {
            return Some(key);
        }
    }
    None
}

/// Cache key of a resolved document: (endpoint without trailing slash, DID).
type DocumentKey = (String, String);

/// Resolves peer keys, caching successful DID documents for five minutes.
#[derive(Debug)]
pub struct KeyResolver {
    http: reqwest::Client,
    timeout: Duration,
    /// A DID document larger than this is not read (`a2a.max_response_bytes`).
    max_bytes: usize,
    cache: Mutex<HashMap<DocumentKey, ([u8; 32], Instant)>>,
}

impl KeyResolver {
    /// A resolver on the peers' HTTP pool (the SSRF guard's resolver, no redirects).
    #[must_use]
    pub fn new(http: reqwest::Client, timeout: Duration, max_bytes: usize) -> Self {
        Self {
            http,
            timeout,
            max_bytes,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The key for a DID: `did:key` locally, else `POST <endpoint>/did/resolve`.
    pub async fn key_for_did(
        &self,
        endpoint: &str,
        did: &str,
        abort: &CancellationToken,
    ) -> Option<[u8; 32]> {
        if did.starts_with("did:key:") {
            return decode_did_key(did);
        }
        let base = endpoint.strip_suffix('/').unwrap_or(endpoint).to_owned();
        let cache_key = (base.clone(), did.to_owned());
        {
            let cache = self
                .cache
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some((key, at)) = cache.get(&cache_key)
                && at.elapsed() < DOCUMENT_TTL
            {
                return Some(*key);
            }
        }
        let request = self
            .http
            .post(format!("{base}/did/resolve"))
            .header("content-type", "application/json")
            .body(serde_json::json!({"did": did}).to_string())
            .send();
        let fetched = tokio::select! {
            () = abort.cancelled() => return None,
            r = tokio::time::timeout(self.timeout, async {
                let mut resp = request.await.ok()?;
                if !resp.status().is_success()
                    || resp.content_length().is_some_and(|n| n > self.max_bytes as u64)
                {
                    return None;
                }
                // Read at most `max_bytes`: a hostile peer's endless document costs nothing more.
                let mut body = Vec::new();
                while let Some(chunk) = resp.chunk().await.ok()? {
                    if body.len() + chunk.len() > self.max_bytes {
                        return None;
                    }
                    body.extend_from_slice(&chunk);
                }
                serde_json::from_slice::<Value>(&body).ok()
            }) => r.ok().flatten(),
        };
        let doc = fetched?;
        if doc.get("id").and_then(Value::as_str) != Some(did) {
            return None;
        }
        let key = key_from_document(&doc)?;
        let mut cache = self
            .cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        cache.retain(|_, (_, at)| at.elapsed() < DOCUMENT_TTL);
        cache.insert(cache_key, (key, Instant::now()));
        Some(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn key(b58: &str) -> [u8; 32] {
        crate::identity::decode_public_key(b58).unwrap()
    }

    #[test]
    fn peer_artifact_vectors() {
        let cases = [
            (
                "hello from dry-run",
                "5kyvg2qwU2xCSSGYrkEYQLF3N48mPVfRJQhSGvmomFXs3GzEZuzu9TWuiH8XEa1p3HTqorK1oMTPAN3dSpa4KtXs",
                "7dNzT2ZzYKsibUFirPVWZheh2TGKZuy3fGdCkcq2f2RM",
            ),
            (
                "echo: hello bindu",
                "CcaHCsKfcej1NgRuRE7pcTMwrt3BnNt7wL9RnBYMRRoQMGJyDfALdaZv8ybrBEQqokcQqvQin2jPGpVavgXQzwt",
                "Cc6VMMB8Zq4dUxC4B6DD3LU7zPLox6jctf52YfhaFLWF",
            ),
            (
                "echo: hello bindu",
                "51HC18xaCF49GpxW6JZdYNWsukLwS6scGRWzYDmgfnNSQXMNAEJUW85osUpUSSNVzvKYC41udXTRPMRSvZmfVnc6",
                "FAe4sisG95oZ42w7buUn5qEE4TAnfTTFPiguZUHmhiF",
            ),
        ];
        for (text, sig, pk) in cases {
            assert!(verify_base58(&key(pk), text.as_bytes(), sig), "{text}");
            let tampered = format!("{}X", &text[..text.len() - 1]);
            assert!(
                !verify_base58(&key(pk), tampered.as_bytes(), sig),
                "{text} tampered"
            );
        }
        assert!(!verify_base58(
            &key("7dNzT2ZzYKsibUFirPVWZheh2TGKZuy3fGdCkcq2f2RM"),
            b"x",
            "not-base58-0OIl"
        ));
    }

    #[test]
    fn counting_signed_verified_and_unsigned_texts() {
        let pk = "Cc6VMMB8Zq4dUxC4B6DD3LU7zPLox6jctf52YfhaFLWF";
        let good = "CcaHCsKfcej1NgRuRE7pcTMwrt3BnNt7wL9RnBYMRRoQMGJyDfALdaZv8ybrBEQqokcQqvQin2jPGpVavgXQzwt";
        let texts = [
            ("echo: hello bindu", Some(good)),
            ("echo: hello bindX", Some(good)),
            ("plain", None),
            ("", None),
            ("", Some(good)),
        ]
        .map(|(text, signature)| SignedText { text, signature });
        let s = check_texts(texts, &key(pk));
        assert_eq!((s.ok, s.signed, s.verified, s.unsigned), (false, 2, 1, 1));
        let none = check_texts([], &key(pk));
        assert_eq!((none.ok, none.signed), (true, 0));
    }

    #[test]
    fn document_keys() {
        let pk = "4zvwRjXUKGfvwnParsHAS3HuSVzV5cA4McphgmoCtajS";
        let doc = json!({"id": "did:x", "authentication": [{"id": "k"}, {"publicKeyBase58": pk}]});
        assert_eq!(key_from_document(&doc), Some(key(pk)));
        let multibase = crate::identity::did_key(&key(pk))
            .trim_start_matches("did:key:")
            .to_owned();
        let doc = json!({"verificationMethod": [{"publicKeyMultibase": multibase}]});
        assert_eq!(key_from_document(&doc), Some(key(pk)));
        assert_eq!(key_from_document(&json!({"authentication": []})), None);
    }
}
