//! The gateway's own DID identity (spec §6.1–6.3): an Ed25519 key from a 32-byte seed, the
//! `did:bindu:` DID derived from it, the DID document served at `/.well-known/did.json`, and the
//! request signatures `did_signed` peers check. The seed never leaves this module: `Debug` shows
//! the DID only, and nothing here logs.

pub mod hydra;
pub mod sign;
pub mod verify;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD_PAD_INDIFFERENT, URL_SAFE_PAD_INDIFFERENT};
use ed25519_dalek::{Signer, SigningKey};
use sha2::{Digest, Sha256};

/// Multicodec prefix of an Ed25519 public key in `did:key`.
const ED25519_MULTICODEC: [u8; 2] = [0xed, 0x01];

/// Why an identity could not be built; the texts are the boot errors of spec §6.1.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    #[error(
        "Partial DID identity config — set all three or none: BINDU_GATEWAY_DID_SEED, BINDU_GATEWAY_AUTHOR, BINDU_GATEWAY_NAME. Got: seed={seed}, author={author}, name={name}"
    )]
    Partial {
        seed: &'static str,
        author: &'static str,
        name: &'static str,
    },
    #[error("BINDU_GATEWAY_DID_SEED is not valid base64: {0}")]
    SeedNotBase64(String),
    #[error(
        "BINDU_GATEWAY_DID_SEED must decode to exactly 32 bytes (got {0}). Generate one with: openssl rand -base64 32"
    )]
    SeedLength(usize),
    #[error("BINDU_GATEWAY_AUTHOR and BINDU_GATEWAY_NAME must not contain \":\" or whitespace")]
    BadNamePart,
}

/// The gateway's identity.
pub struct Identity {
    key: SigningKey,
    did: String,
    public_key: String,
    author: String,
    name: String,
    document: String,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("did", &self.did)
            .field("public_key", &self.public_key)
            .finish_non_exhaustive()
    }
}

/// Decodes a seed: standard or URL-safe base64, padding optional, whitespace around ignored.
///
/// # Errors
/// Not base64, or not 32 bytes.
pub fn decode_seed(text: &str) -> Result<[u8; 32], IdentityError> {
    let text = text.trim();
    let bytes = STANDARD_PAD_INDIFFERENT
        .decode(text)
        .or_else(|_| URL_SAFE_PAD_INDIFFERENT.decode(text))
        .map_err(|e| IdentityError::SeedNotBase64(e.to_string()))?;
    <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| IdentityError::SeedLength(bytes.len()))
}

/// `did:key:z…` of a raw Ed25519 public key.
#[must_use]
pub fn did_key(public_key: &[u8; 32]) -> String {
    let mut bytes = ED25519_MULTICODEC.to_vec();
    bytes.extend_from_slice(public_key);
    format!("did:key:z{}", bs58::encode(bytes).into_string())
}

/// Decodes a base58 (Bitcoin alphabet) Ed25519 public key of exactly 32 bytes.
#[must_use]
pub fn decode_public_key(text: &str) -> Option<[u8; 32]> {
    let bytes = bs58::decode(text).into_vec().ok()?;
    <[u8; 32]>::try_from(bytes.as_slice()).ok()
}

/// Decodes `did:key:z…` (multicodec-prefixed or 32 bare bytes) to a public key.
#[must_use]
pub fn decode_did_key(did: &str) -> Option<[u8; 32]> {
    let encoded = did.strip_prefix("did:key:z")?;
    let bytes = bs58::decode(encoded).into_vec().ok()?;
    let key = match bytes.len() {
        34 if bytes[..2] == ED25519_MULTICODEC => &bytes[2..],
        32 => &bytes[..],
        _ => return None,
    };
    <[u8; 32]>::try_from(key).ok()
}

impl Identity {
    /// Builds the identity from the three settings (each `None` or empty = unset).
    ///
    /// # Errors
    /// The boot errors of spec §6.1. `Ok(None)` when none is set.
    pub fn from_settings(
        seed: Option<&str>,
        author: Option<&str>,
        name: Option<&str>,
    ) -> Result<Option<Self>, IdentityError> {
        let set = |v: Option<&str>| v.is_some_and(|v| !v.is_empty());
        match (set(seed), set(author), set(name)) {
            (false, false, false) => Ok(None),
            (true, true, true) => Self::new(
                seed.unwrap_or_default(),
                author.unwrap_or_default(),
                name.unwrap_or_default(),
            )
            .map(Some),
            (s, a, n) => {
                let word = |b: bool| if b { "set" } else { "missing" };
                Err(IdentityError::Partial {
                    seed: word(s),
                    author: word(a),
                    name: word(n),
                })
            }
        }
    }

    /// Builds the identity from a base64 seed, an author and a name.
    ///
    /// # Errors
    /// Invalid seed, or `:`/whitespace in the author or name.
    pub fn new(seed: &str, author: &str, name: &str) -> Result<Self, IdentityError> {
        let seed = decode_seed(seed)?;
        let author = author.replace('@', "_at_").replace('.', "_");
        let bad = |s: &str| s.contains(':') || s.chars().any(char::is_whitespace);
        if bad(&author) || bad(name) {
            return Err(IdentityError::BadNamePart);
        }
        let key = SigningKey::from_bytes(&seed);
        let public = key.verifying_key().to_bytes();
        let digest = Sha256::digest(public);
        let h = hex::encode(&digest[..16]);
        let agent_id = format!(
            "{}-{}-{}-{}-{}",
            &h[..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..32]
        );
        let did = format!("did:bindu:{author}:{name}:{agent_id}");
        let public_key = bs58::encode(public).into_string();
        let document = serde_json::json!({
            "@context": ["https://www.w3.org/ns/did/v1", "https://getbindu.com/ns/v1"],
            "id": did,
            "authentication": [{
                "id": format!("{did}#key-1"),
                "type": "Ed25519VerificationKey2020",
                "controller": did,
                "publicKeyBase58": public_key,
            }],
        })
        .to_string();
        Ok(Self {
            key,
            did,
            public_key,
            author,
            name: name.to_owned(),
            document,
        })
    }

    /// The gateway DID.
    #[must_use]
    pub fn did(&self) -> &str {
        &self.did
    }

    /// The raw public key in base58.
    #[must_use]
    pub fn public_key_base58(&self) -> &str {
        &self.public_key
    }

    /// The same key as a `did:key`.
    #[must_use]
    pub fn did_key(&self) -> String {
        did_key(&self.key.verifying_key().to_bytes())
    }

    /// The transformed author (`@` → `_at_`, `.` → `_`).
    #[must_use]
    pub fn author(&self) -> &str {
        &self.author
    }

    /// `BINDU_GATEWAY_NAME`.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The agent id (last DID segment).
    #[must_use]
    pub fn agent_id(&self) -> &str {
        self.did.rsplit(':').next().unwrap_or_default()
    }

    /// The DID document, compact JSON, byte-identical on every call.
    #[must_use]
    pub fn document(&self) -> &str {
        &self.document
    }

    /// Ed25519 signature of a message, base58.
    #[must_use]
    pub fn sign_base58(&self, message: &[u8]) -> String {
        bs58::encode(self.key.sign(message).to_bytes()).into_string()
    }

    /// The Hydra client secret: base64url (no padding) of SHA-256(seed ‖ label) (spec §6.5).
    #[must_use]
    pub fn hydra_client_secret(&self) -> String {
        let mut h = Sha256::new();
        h.update(self.key.to_bytes());
        h.update(b"bindu-gateway-hydra-client-secret/v1");
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(h.finalize())
    }
}

/// `author` and `gateway_id` of a `did:bindu:<a>:<b>:<rest…>` DID (spec §1.7).
#[must_use]
pub fn health_parts(did: &str) -> (Option<String>, Option<String>) {
    let Some(rest) = did.strip_prefix("did:bindu:") else {
        return (None, None);
    };
    let segments: Vec<&str> = rest.split(':').collect();
    if segments.len() < 3 {
        return (None, None);
    }
    (Some(segments[0].to_owned()), Some(segments[2..].join(":")))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ZERO_SEED: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";

    #[test]
    fn zero_seed_known_answers() {
        let id = Identity::new(ZERO_SEED, "ops@example.com", "gateway").unwrap();
        assert_eq!(
            id.public_key_base58(),
            "4zvwRjXUKGfvwnParsHAS3HuSVzV5cA4McphgmoCtajS"
        );
        assert_eq!(id.agent_id(), "139e3940-e64b-5491-7220-88d9a0d74162");
        assert_eq!(
            id.did(),
            "did:bindu:ops_at_example_com:gateway:139e3940-e64b-5491-7220-88d9a0d74162"
        );
        assert_eq!(
            id.did_key(),
            "did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp"
        );
        assert_eq!(
            decode_did_key(&id.did_key()).unwrap().to_vec(),
            bs58::decode(id.public_key_base58()).into_vec().unwrap()
        );
        assert_eq!(
            health_parts(id.did()),
            (
                Some("ops_at_example_com".to_owned()),
                Some("139e3940-e64b-5491-7220-88d9a0d74162".to_owned())
            )
        );
        let doc = id.document();
        assert_eq!(doc.len(), 453);
        assert_eq!(
            hex::encode(Sha256::digest(doc.as_bytes())),
            "2f3107ad47ed230297ffdb594a0aca9da852b4167dbf8825da1dd76c489434d2"
        );
        assert_eq!(
            doc,
            r#"{"@context":["https://www.w3.org/ns/did/v1","https://getbindu.com/ns/v1"],"id":"did:bindu:ops_at_example_com:gateway:139e3940-e64b-5491-7220-88d9a0d74162","authentication":[{"id":"did:bindu:ops_at_example_com:gateway:139e3940-e64b-5491-7220-88d9a0d74162#key-1","type":"Ed25519VerificationKey2020","controller":"did:bindu:ops_at_example_com:gateway:139e3940-e64b-5491-7220-88d9a0d74162","publicKeyBase58":"4zvwRjXUKGfvwnParsHAS3HuSVzV5cA4McphgmoCtajS"}]}"#
        );
        assert_eq!(
            id.hydra_client_secret(),
            "xDKzyTMmr_qPlKRioGfHoMlbytTSWsA43u3ddJC7QxA"
        );
    }

    #[test]
    fn seeds_in_every_accepted_spelling() {
        let want = [0u8; 32];
        for s in [
            ZERO_SEED,
            " AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA \n",
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        ] {
            assert_eq!(decode_seed(s).unwrap(), want);
        }
        let url_safe = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode([0xfb; 32]);
        assert!(url_safe.contains('-') || url_safe.contains('_'));
        assert_eq!(decode_seed(&url_safe).unwrap(), [0xfb; 32]);
        assert!(matches!(
            decode_seed("not base64!"),
            Err(IdentityError::SeedNotBase64(_))
        ));
        assert_eq!(
            decode_seed("AAAA").unwrap_err().to_string(),
            "BINDU_GATEWAY_DID_SEED must decode to exactly 32 bytes (got 3). Generate one with: openssl rand -base64 32"
        );
    }

    #[test]
    fn settings_must_be_all_or_none() {
        assert!(
            Identity::from_settings(None, Some(""), None)
                .unwrap()
                .is_none()
        );
        assert_eq!(
            Identity::from_settings(Some(ZERO_SEED), None, Some("gw"))
                .unwrap_err()
                .to_string(),
            "Partial DID identity config — set all three or none: BINDU_GATEWAY_DID_SEED, BINDU_GATEWAY_AUTHOR, BINDU_GATEWAY_NAME. Got: seed=set, author=missing, name=set"
        );
        assert_eq!(
            Identity::new(ZERO_SEED, "a b", "gw")
                .unwrap_err()
                .to_string(),
            "BINDU_GATEWAY_AUTHOR and BINDU_GATEWAY_NAME must not contain \":\" or whitespace"
        );
        assert!(Identity::new(ZERO_SEED, "a", "g:w").is_err());
    }

    #[test]
    fn debug_never_shows_the_seed_or_secret() {
        let seed = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
        let id = Identity::new(&seed, "a", "b").unwrap();
        let dbg = format!("{id:?}");
        assert!(dbg.contains(id.did()));
        assert!(!dbg.contains(&seed) && !dbg.contains(&id.hydra_client_secret()));
        assert!(!dbg.contains("[7, 7"), "{dbg}");
    }
}
