//! Request signing for `did_signed` peers (spec §6.3): Ed25519 over the Python-compatible
//! signing string `{"body": J(B), "did": J(D), "timestamp": T}`, where `J` is a JSON string
//! literal in `ensure_ascii` form. The HTTP body sent is byte-identical to the signed `B`.

use super::Identity;

/// A JSON string literal as Python's `json.dumps(..., ensure_ascii=True)` writes it.
#[must_use]
pub fn ascii_json_string(s: &str) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f || (c as u32) > 0x7f => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The exact string that is signed.
#[must_use]
pub fn signing_string(body: &str, did: &str, timestamp: u64) -> String {
    format!(
        "{{\"body\": {}, \"did\": {}, \"timestamp\": {timestamp}}}",
        ascii_json_string(body),
        ascii_json_string(did)
    )
}

/// The three `X-DID*` header values for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedHeaders {
    pub did: String,
    pub timestamp: String,
    pub signature: String,
}

impl Identity {
    /// Signs a request body at a given Unix time (seconds).
    #[must_use]
    pub fn sign_request(&self, body: &[u8], timestamp: u64) -> SignedHeaders {
        let body = String::from_utf8_lossy(body);
        let message = signing_string(&body, self.did(), timestamp);
        SignedHeaders {
            did: self.did().to_owned(),
            timestamp: timestamp.to_string(),
            signature: self.sign_base58(message.as_bytes()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Identity;

    const ZERO_SEED: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";

    /// An identity whose DID is overridden, for the vectors that sign as `did:bindu:test`.
    fn sign_as(seed: &str, did: &str, body: &str, ts: u64) -> (String, String) {
        let id = Identity::new(seed, "x", "y").unwrap();
        let message = signing_string(body, did, ts);
        let sig = id.sign_base58(message.as_bytes());
        (message, sig)
    }

    #[test]
    fn ascii_body_vector() {
        let (s, sig) = sign_as(ZERO_SEED, "did:bindu:test", r#"{"test": "value"}"#, 1000);
        assert_eq!(
            s,
            r#"{"body": "{\"test\": \"value\"}", "did": "did:bindu:test", "timestamp": 1000}"#
        );
        assert_eq!(
            sig,
            "3SfU4VPTHLbzZzCn17ZqU6y2tnzHQbdo2nnXQr6XZXk34XgyzwSKRrCYEWRmmGXrV39mdkyhTsy5oasfTpNuqyM2"
        );
    }

    #[test]
    fn non_ascii_body_vector() {
        let (s, sig) = sign_as(ZERO_SEED, "did:bindu:test", r#"{"q":"café"}"#, 1000);
        assert_eq!(
            s,
            r#"{"body": "{\"q\":\"caf\u00e9\"}", "did": "did:bindu:test", "timestamp": 1000}"#
        );
        assert_eq!(
            sig,
            "371vQqAhqPAdXMHeYAPyfNfRV4RL573wX3u6htWmbbidMeW2wQ3qqYGTr8fuw4DVSdDcqx1cfcH75ztz41diUFFP"
        );
    }

    #[test]
    fn escaping_rules() {
        assert_eq!(ascii_json_string("\u{7f}"), r#""\u007f""#);
        assert_eq!(ascii_json_string("\u{1}"), r#""\u0001""#);
        assert_eq!(ascii_json_string("\u{2028}"), r#""\u2028""#);
        assert_eq!(ascii_json_string("😀"), r#""\ud83d\ude00""#);
        assert_eq!(ascii_json_string("a/b"), r#""a/b""#);
        assert_eq!(
            ascii_json_string("\u{8}\u{c}\n\r\t\"\\"),
            r#""\b\f\n\r\t\"\\""#
        );
    }

    #[test]
    fn bindu_own_vectors() {
        let v: serde_json::Value = serde_json::from_str(include_str!(
            "../../fixtures/identity/did-signing-vectors.json"
        ))
        .unwrap();
        let seed = base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            hex::decode(v["seed_hex"].as_str().unwrap()).unwrap(),
        );
        let id = Identity::new(&seed, "gateway@example.com", "gateway").unwrap();
        assert_eq!(id.public_key_base58(), v["public_key_base58"]);
        let did = v["did"].as_str().unwrap();
        let rs = &v["request_signing"];
        let ts = rs["timestamp"].as_u64().unwrap();
        let (s, sig) = sign_as(&seed, did, rs["http_body_utf8"].as_str().unwrap(), ts);
        assert_eq!(s, rs["signed_payload_string"]);
        assert_eq!(sig, rs["headers"]["X-DID-Signature"]);
        let na = &rs["non_ascii_example"];
        let (s, sig) = sign_as(&seed, did, na["http_body_utf8"].as_str().unwrap(), ts);
        assert_eq!(s, na["signed_payload_string"]);
        assert_eq!(
            sig,
            "AL5qVjs2FouEBbbgSK81qL2QJvN7D38SkE8k3vZykP34RsBTzCD3zXsqcv8iDZUpxdfSNPW5ASLoaSw4Mh9q4Eg"
        );
        let art = &v["artifact_signing"];
        assert_eq!(
            id.sign_base58(art["text"].as_str().unwrap().as_bytes()),
            art["signature_base58"]
        );
    }

    #[test]
    fn sign_request_uses_the_identity_did_and_verifies() {
        let id = Identity::new(ZERO_SEED, "ops@example.com", "gateway").unwrap();
        let body = r#"{"text":"héllo 😀 日本"}"#;
        let h = id.sign_request(body.as_bytes(), 1_700_000_000);
        assert_eq!(h.did, id.did());
        assert_eq!(h.timestamp, "1700000000");
        let key: [u8; 32] = bs58::decode(id.public_key_base58())
            .into_vec()
            .unwrap()
            .try_into()
            .unwrap();
        assert!(crate::identity::verify::verify_base58(
            &key,
            signing_string(body, id.did(), 1_700_000_000).as_bytes(),
            &h.signature
        ));
    }
}
