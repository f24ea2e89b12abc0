//! JWT callers (`GATEWAY_JWT_JWKS_URL`): keys are generated here (RSA, P-256, Ed25519), tokens
//! are signed here without the gateway's JWT library, and the JWKS is served on loopback by a
//! server that counts its fetches. Only a valid token passes; an unknown `kid` fetches the set
//! once more (and not again within the refetch interval); catalogs come from the token; limits
//! come from the keys file's `[jwt]` block and count per `sub`; what a `sub` owns is reached with
//! its refreshed token and by no other `sub`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, KeyPair as _};
use base64::Engine as _;
use plangate::config::{Config, JwtConfig};
use plangate_testkit::peer::{FakePeer, Script};
use serde_json::{Value, json};

use crate::keys::gateway_with;
use crate::support::*;

pub(crate) const ISSUER: &str = "https://id.example.test/";
pub(crate) const AUDIENCE: &str = "plangate-tests";

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

enum Signer {
    Rsa(aws_lc_rs::rsa::KeyPair),
    Ec(signature::EcdsaKeyPair),
    Ed(signature::Ed25519KeyPair),
}

/// A signing key made for the test, with its `kid`.
pub(crate) struct TestKey {
    kid: &'static str,
    signer: Signer,
}

impl TestKey {
    fn rsa(kid: &'static str) -> Self {
        let key = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
        Self {
            kid,
            signer: Signer::Rsa(key),
        }
    }

    fn ec(kid: &'static str) -> Self {
        let key =
            signature::EcdsaKeyPair::generate(&signature::ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
        Self {
            kid,
            signer: Signer::Ec(key),
        }
    }

    pub(crate) fn ed(kid: &'static str) -> Self {
        Self {
            kid,
            signer: Signer::Ed(signature::Ed25519KeyPair::generate().unwrap()),
        }
    }

    fn alg(&self) -> &'static str {
        match self.signer {
            Signer::Rsa(_) => "RS256",
            Signer::Ec(_) => "ES256",
            Signer::Ed(_) => "EdDSA",
        }
    }

    /// The public key as a JWKS entry.
    pub(crate) fn jwk(&self) -> Value {
        match &self.signer {
            Signer::Rsa(k) => {
                let public = k.public_key();
                json!({"kty": "RSA", "kid": self.kid, "use": "sig", "alg": "RS256",
                    "n": b64(public.modulus().big_endian_without_leading_zero()),
                    "e": b64(public.exponent().big_endian_without_leading_zero())})
            }
            Signer::Ec(k) => {
                // The uncompressed point: 0x04, x, y.
                let point = k.public_key().as_ref();
                json!({"kty": "EC", "kid": self.kid, "crv": "P-256",
                    "x": b64(&point[1..33]), "y": b64(&point[33..65])})
            }
            Signer::Ed(k) => {
                json!({"kty": "OKP", "kid": self.kid, "crv": "Ed25519",
                    "x": b64(k.public_key().as_ref())})
            }
        }
    }

    /// The RSA public key's bytes (the material of the HMAC confusion attack).
    fn public_bytes(&self) -> Vec<u8> {
        match &self.signer {
            Signer::Rsa(k) => k.public_key().as_ref().to_vec(),
            Signer::Ec(k) => k.public_key().as_ref().to_vec(),
            Signer::Ed(k) => k.public_key().as_ref().to_vec(),
        }
    }

    pub(crate) fn sign(&self, claims: &Value) -> String {
        self.sign_with(
            &json!({"alg": self.alg(), "typ": "JWT", "kid": self.kid}),
            claims,
        )
    }

    fn sign_with(&self, header: &Value, claims: &Value) -> String {
        let input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let rng = SystemRandom::new();
        let sig = match &self.signer {
            Signer::Rsa(k) => {
                let mut sig = vec![0; k.public_modulus_len()];
                k.sign(
                    &signature::RSA_PKCS1_SHA256,
                    &rng,
                    input.as_bytes(),
                    &mut sig,
                )
                .unwrap();
                sig
            }
            Signer::Ec(k) => k.sign(&rng, input.as_bytes()).unwrap().as_ref().to_vec(),
            Signer::Ed(k) => k.sign(input.as_bytes()).as_ref().to_vec(),
        };
        format!("{input}.{}", b64(&sig))
    }
}

/// Claims for `sub` that pass, with `extra` merged in.
pub(crate) fn claims(sub: &str, extra: &Value) -> Value {
    let mut c = json!({"iss": ISSUER, "aud": AUDIENCE, "sub": sub,
        "iat": now(), "exp": now() + 600});
    for (k, v) in extra.as_object().unwrap() {
        c[k] = v.clone();
    }
    c
}

/// A JWKS served on loopback; counts its fetches.
pub(crate) struct Jwks {
    pub(crate) url: String,
    keys: Arc<Mutex<Vec<Value>>>,
    fetches: Arc<AtomicUsize>,
    server: tokio::task::JoinHandle<()>,
}

impl Jwks {
    pub(crate) async fn serve(keys: Vec<Value>) -> Self {
        let keys = Arc::new(Mutex::new(keys));
        let fetches = Arc::new(AtomicUsize::new(0));
        let app = axum::Router::new().route(
            "/jwks.json",
            axum::routing::get({
                let keys = Arc::clone(&keys);
                let fetches = Arc::clone(&fetches);
                move || {
                    fetches.fetch_add(1, Ordering::SeqCst);
                    let body = json!({"keys": keys.lock().unwrap().clone()});
                    async move { axum::Json(body) }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/jwks.json", listener.local_addr().unwrap());
        #[expect(
            clippy::disallowed_methods,
            reason = "the JWKS server lives for the test; aborted on drop"
        )]
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self {
            url,
            keys,
            fetches,
            server,
        }
    }

    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

impl Drop for Jwks {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn jwt_config(jwks: &str, refetch: Duration) -> Config {
    let mut c = config();
    c.auth.jwt = Some(JwtConfig {
        jwks_url: jwks.parse().unwrap(),
        issuer: ISSUER.to_owned(),
        audience: AUDIENCE.to_owned(),
        jwks_cache: Duration::from_secs(300),
        jwks_refetch: refetch,
    });
    c
}

async fn plan_status(url: &str, token: &str, catalog: &str) -> (u16, Value) {
    let resp = http()
        .post(format!("{url}/plan"))
        .bearer_auth(token)
        .json(&json!({"question": "q", "catalog": catalog}))
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    if status == 200 {
        let frames = collect(resp).await;
        assert_eq!(frames.last().map(|f| f.event.as_str()), Some("done"));
        return (200, Value::Null);
    }
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn only_a_valid_jwt_passes_and_an_unknown_kid_refetches_the_jwks_once() {
    let peer = FakePeer::start(Script::Instant).await;
    let (rsa, ec, ed) = (
        TestKey::rsa("rsa-1"),
        TestKey::ec("ec-1"),
        TestKey::ed("ed-1"),
    );
    let stranger = TestKey::rsa("rsa-2");
    let jwks = Jwks::serve(vec![rsa.jwk(), ec.jwk(), ed.jwk()]).await;
    let gw = gateway_with(jwt_config(&jwks.url, Duration::from_secs(30)), &peer, "").await;
    let ops = json!({"plangate_catalogs": ["ops"]});

    // Valid tokens of every algorithm, fetched once.
    for key in [&rsa, &ec, &ed] {
        let token = key.sign(&claims("alice", &ops));
        assert_eq!(
            plan_status(&gw.url, &token, "ops").await.0,
            200,
            "{}",
            key.alg()
        );
    }
    assert_eq!(jwks.fetches(), 1);

    // Each of these is refused with 401, and none fetches the set again.
    let past = now() - 600;
    let refused = [
        (
            "expired",
            rsa.sign(&claims(
                "alice",
                &json!({"exp": past, "iat": past - 60, "plangate_catalogs": ["ops"]}),
            )),
        ),
        (
            "not yet valid",
            rsa.sign(&claims(
                "alice",
                &json!({"nbf": now() + 600, "plangate_catalogs": ["ops"]}),
            )),
        ),
        (
            "wrong aud",
            ec.sign(&claims(
                "alice",
                &json!({"aud": "another-app", "plangate_catalogs": ["ops"]}),
            )),
        ),
        (
            "wrong iss",
            ed.sign(&claims(
                "alice",
                &json!({"iss": "https://evil.example/", "plangate_catalogs": ["ops"]}),
            )),
        ),
        (
            "no sub",
            rsa.sign(&json!({"iss": ISSUER, "aud": AUDIENCE, "exp": now() + 600})),
        ),
        (
            "bad signature",
            // Signed by another key under rsa-1's kid.
            stranger.sign_with(
                &json!({"alg": "RS256", "typ": "JWT", "kid": "rsa-1"}),
                &claims("alice", &ops),
            ),
        ),
        ("alg none", {
            let header = json!({"alg": "none", "typ": "JWT"});
            format!(
                "{}.{}.",
                b64(header.to_string().as_bytes()),
                b64(claims("alice", &ops).to_string().as_bytes())
            )
        }),
        ("HS256 with the public key as its secret", {
            let header = json!({"alg": "HS256", "typ": "JWT", "kid": "rsa-1"});
            let input = format!(
                "{}.{}",
                b64(header.to_string().as_bytes()),
                b64(claims("alice", &ops).to_string().as_bytes())
            );
            let secret =
                aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &rsa.public_bytes());
            let tag = aws_lc_rs::hmac::sign(&secret, input.as_bytes());
            format!("{input}.{}", b64(tag.as_ref()))
        }),
        (
            "a static-looking token that is no key",
            "pg_not-a-key".to_owned(),
        ),
    ];
    for (why, token) in &refused {
        let (status, body) = plan_status(&gw.url, token, "ops").await;
        assert_eq!(status, 401, "{why}: {body}");
        assert_eq!(body["error"], "unauthorized", "{why}");
    }
    assert_eq!(jwks.fetches(), 1, "no refused token fetched the set");

    // An unknown kid fetches the set once more; a second one within the interval does not.
    let unknown = stranger.sign(&claims("alice", &ops));
    assert_eq!(plan_status(&gw.url, &unknown, "ops").await.0, 401);
    assert_eq!(jwks.fetches(), 2);
    assert_eq!(plan_status(&gw.url, &unknown, "ops").await.0, 401);
    assert_eq!(jwks.fetches(), 2);

    // Catalogs come from the token: the claim, else `catalog:` scope words.
    let (status, body) = plan_status(&gw.url, &rsa.sign(&claims("alice", &ops)), "default").await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"], "forbidden");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("catalog \"default\""),
        "{body}"
    );
    let scoped = rsa.sign(&claims(
        "carol",
        &json!({"scope": "openid catalog:default"}),
    ));
    assert_eq!(plan_status(&gw.url, &scoped, "default").await.0, 200);
    assert_eq!(plan_status(&gw.url, &scoped, "ops").await.0, 403);
    let bare = rsa.sign(&claims("dave", &json!({})));
    assert_eq!(plan_status(&gw.url, &bare, "default").await.0, 403);

    // The plan metrics carry the label `jwt`, never a `sub`.
    let m = scrape(&gw.url).await;
    assert_eq!(
        sample(
            &m,
            "plangate_plans_total",
            &[("key", "jwt"), ("outcome", "final")]
        ),
        4.0
    );
    assert!(
        !m.keys()
            .any(|(_, labels)| labels.iter().any(|(_, v)| v.contains("alice"))),
        "a sub in the metrics"
    );
    gw.stop().await;
}

#[tokio::test]
async fn a_subs_limits_and_conversations_are_its_own_across_refreshed_tokens() {
    let peer = FakePeer::start(Script::Instant).await;
    let (rsa, ed) = (TestKey::rsa("rsa-1"), TestKey::ed("ed-1"));
    let rotated = TestKey::ec("ec-2");
    let jwks = Jwks::serve(vec![rsa.jwk(), ed.jwk()]).await;
    // Refetching at once for an unknown kid: a rotated key is picked up.
    let mut c = jwt_config(&jwks.url, Duration::ZERO);
    c.sessions.enabled = true;
    let keys = "[jwt]\ndoors = [\"plan\"]\nrequests_per_minute = 3\n";
    let gw = gateway_with(c, &peer, keys).await;
    let all = json!({"plangate_catalogs": ["*"]});

    // Alice's first token starts a conversation.
    let first = rsa.sign(&claims("alice", &all));
    let resp = http()
        .post(format!("{}/plan", gw.url))
        .bearer_auth(&first)
        .json(&json!({"question": "q", "catalog": "ops", "session_id": "trip"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    collect(resp).await;
    // Her refreshed token (another key, a later expiry) reaches it; Bob's does not.
    let refreshed = ed.sign(&claims(
        "alice",
        &json!({"plangate_catalogs": ["*"], "exp": now() + 1200}),
    ));
    let get = |token: String| {
        let url = format!("{}/sessions/trip", gw.url);
        async move {
            http()
                .get(url)
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(get(refreshed.clone()).await, 200);
    let bob = rsa.sign(&claims("bob", &all));
    assert_eq!(get(bob.clone()).await, 404);

    // `requests_per_minute = 3` for Alice (the plan, two reads; the `sub` counts, not the
    // token): her fourth request is 429 with a whole number of seconds; Bob has his own count.
    assert_eq!(get(refreshed.clone()).await, 200);
    let resp = http()
        .post(format!("{}/plan", gw.url))
        .bearer_auth(&refreshed)
        .json(&json!({"question": "q", "catalog": "ops"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 429);
    let wait: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "rate_limited");
    assert_eq!(plan_status(&gw.url, &bob, "ops").await.0, 200);

    // The `[jwt]` block's doors: the OpenAI door is not among them (its own error shape).
    let resp = http()
        .post(format!("{}/v1/chat/completions", gw.url))
        .bearer_auth(rsa.sign(&claims("erin", &all)))
        .json(&json!({"model": "plangate/ops", "messages": [{"role": "user", "content": "q"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "forbidden", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("openai door"),
        "{body}"
    );

    // A key rotated into the JWKS is picked up by the next token that names it.
    let fetched = jwks.fetches();
    jwks.keys.lock().unwrap().push(rotated.jwk());
    let token = rotated.sign(&claims("frank", &all));
    assert_eq!(plan_status(&gw.url, &token, "ops").await.0, 200);
    assert_eq!(jwks.fetches(), fetched + 1);
    gw.stop().await;
}

#[tokio::test]
async fn an_unreachable_jwks_is_503_and_static_tokens_still_work() {
    let peer = FakePeer::start(Script::Instant).await;
    // A port that was just free: nothing listens there.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let c = jwt_config(
        &format!("http://127.0.0.1:{closed}/jwks.json"),
        Duration::from_secs(30),
    );
    // A keys-file token shaped like a JWT is still a static token.
    let dotted = {
        use sha2::Digest as _;
        hex::encode(sha2::Sha256::digest(b"abc.def.ghi"))
    };
    let keys = format!("[keys.dotted]\nsha256 = \"{dotted}\"\n");
    let gw = gateway_with(c, &peer, &keys).await;
    let key = TestKey::ed("ed-1");
    let resp = http()
        .post(format!("{}/plan", gw.url))
        .bearer_auth(key.sign(&claims("alice", &json!({"plangate_catalogs": ["*"]}))))
        .json(&json!({"question": "q", "catalog": "ops"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 503);
    assert_eq!(resp.headers()["retry-after"], "5");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "auth_unavailable", "{body}");
    assert_eq!(plan_status(&gw.url, "legacy-token", "ops").await.0, 200);
    assert_eq!(plan_status(&gw.url, "abc.def.ghi", "ops").await.0, 200);
    gw.stop().await;
}

#[test]
fn a_jwt_block_without_jwt_callers_stops_the_boot() {
    let keys = std::env::temp_dir().join(format!("plangate-keys-{}.toml", uuid::Uuid::new_v4()));
    std::fs::write(&keys, "[jwt]\nrequests_per_minute = 5\n").unwrap();
    let mut c = config();
    c.auth.mode = plangate::config::AuthMode::Bearer;
    c.auth.keys_file = Some(keys);
    let err = plangate::boot::build(c).err().unwrap().to_string();
    assert!(
        err.contains("[jwt] block") && err.contains("GATEWAY_JWT_JWKS_URL"),
        "{err}"
    );
}
