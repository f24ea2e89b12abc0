//! Hydra (spec §6.5–6.6): at boot the gateway registers itself as an OAuth client whose id is its
//! DID (updating the client when scopes, name or key changed); `did_signed` peers without a
//! `tokenEnvVar` get a client-credentials token, cached until 30 s before it expires and fetched
//! by one caller at a time. Secrets are `SecretString`s and never logged.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

use super::Identity;

/// Characters kept as-is in the percent-encoded client id.
const CLIENT_ID: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');
/// Tokens are renewed this long before they expire.
const EXPIRY_MARGIN: Duration = Duration::from_secs(30);

/// Hydra endpoints and scopes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HydraSettings {
    pub admin_url: String,
    pub token_url: String,
    pub scopes: Vec<String>,
}

fn head(text: &str) -> String {
    text.chars().take(300).collect()
}

/// `YYYY-MM-DDTHH:MM:SS.sssZ` for a time since the Unix epoch.
#[must_use]
pub fn iso8601_millis(since_epoch: Duration) -> String {
    let secs = since_epoch.as_secs();
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60,
        since_epoch.subsec_millis()
    )
}

/// The client registration payload.
#[must_use]
pub fn client_payload(identity: &Identity, settings: &HydraSettings, now: Duration) -> Value {
    json!({
        "client_id": identity.did(),
        "client_secret": identity.hydra_client_secret(),
        "client_name": identity.name(),
        "grant_types": ["client_credentials"],
        "response_types": ["code", "token"],
        "scope": settings.scopes.join(" "),
        "token_endpoint_auth_method": "client_secret_post",
        "metadata": {
            "did": identity.did(),
            "public_key": identity.public_key_base58(),
            "key_type": "Ed25519",
            "verification_method": "Ed25519VerificationKey2020",
            "hybrid_auth": true,
            "registered_at": iso8601_millis(now),
        }
    })
}

/// Registers (or updates) the gateway's OAuth client. `Ok(false)`: Hydra unreachable (warning).
///
/// # Errors
/// The boot failures of spec §6.5.
pub async fn register(
    http: &reqwest::Client,
    identity: &Identity,
    settings: &HydraSettings,
) -> Result<bool, String> {
    let admin = settings.admin_url.trim_end_matches('/');
    let alive = http
        .get(format!("{admin}/health/alive"))
        .timeout(Duration::from_secs(3))
        .send()
        .await;
    if let Err(e) = alive {
        tracing::warn!(error = %e, "Hydra admin is unreachable; continuing without Hydra");
        return Ok(false);
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let payload = client_payload(identity, settings, now);
    let client_url = format!(
        "{admin}/admin/clients/{}",
        utf8_percent_encode(identity.did(), CLIENT_ID)
    );
    let existing = http
        .get(&client_url)
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .map_err(|e| {
            format!(
                "Hydra admin request failed for GET /admin/clients/{}: {e}",
                identity.did()
            )
        })?;
    let status = existing.status();
    if status.as_u16() == 200 {
        let stored: Value = existing.json().await.unwrap_or(Value::Null);
        let same = stored["scope"] == payload["scope"]
            && stored["client_name"] == payload["client_name"]
            && stored["metadata"]["public_key"] == payload["metadata"]["public_key"];
        if same {
            return Ok(true);
        }
        let resp = http
            .put(&client_url)
            .timeout(Duration::from_secs(10))
            .json(&payload)
            .send()
            .await
            .map_err(|e| format!("Hydra client update failed: {e}"))?;
        if resp.status().as_u16() == 200 {
            return Ok(true);
        }
        let code = resp.status().as_u16();
        return Err(format!(
            "Hydra client update failed: HTTP {code}: {}",
            head(&resp.text().await.unwrap_or_default())
        ));
    }
    if status.as_u16() != 404 {
        let body = existing.text().await.unwrap_or_default();
        return Err(format!(
            "Hydra admin returned HTTP {} for GET /admin/clients/{}: {}",
            status.as_u16(),
            identity.did(),
            head(&body)
        ));
    }
    let resp = http
        .post(format!("{admin}/admin/clients"))
        .timeout(Duration::from_secs(10))
        .json(&payload)
        .send()
        .await
        .map_err(|e| format!("Hydra client registration failed: {e}"))?;
    match resp.status().as_u16() {
        200 | 201 => Ok(true),
        code => Err(format!(
            "Hydra client registration failed: HTTP {code}: {}",
            head(&resp.text().await.unwrap_or_default())
        )),
    }
}

/// Client-credentials tokens for `did_signed` peers.
pub struct TokenProvider {
    http: reqwest::Client,
    token_url: String,
    client_id: String,
    secret: SecretString,
    scope: String,
    /// Held across the fetch: concurrent callers share one request.
    cached: tokio::sync::Mutex<Option<(SecretString, Instant)>>,
}

impl std::fmt::Debug for TokenProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenProvider")
            .field("token_url", &self.token_url)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

impl TokenProvider {
    /// A provider for the gateway's client.
    #[must_use]
    pub fn new(http: reqwest::Client, identity: &Identity, settings: &HydraSettings) -> Self {
        Self {
            http,
            token_url: settings.token_url.clone(),
            client_id: identity.did().to_owned(),
            secret: SecretString::from(identity.hydra_client_secret()),
            scope: settings.scopes.join(" "),
            cached: tokio::sync::Mutex::new(None),
        }
    }

    /// A valid access token, fetched when missing or about to expire. Failures are not cached.
    ///
    /// # Errors
    /// The token endpoint's failure texts of spec §6.6.
    pub async fn token(&self) -> Result<SecretString, String> {
        let mut cached = self.cached.lock().await;
        if let Some((token, valid_until)) = cached.as_ref()
            && Instant::now() < *valid_until
        {
            return Ok(token.clone());
        }
        let body = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "client_credentials")
            .append_pair("client_id", &self.client_id)
            .append_pair("client_secret", self.secret.expose_secret())
            .append_pair("scope", &self.scope)
            .finish();
        let resp = self
            .http
            .post(&self.token_url)
            .header("content-type", "application/x-www-form-urlencoded")
            .header("accept", "application/json")
            .timeout(Duration::from_secs(10))
            .body(body)
            .send()
            .await
            .map_err(|e| format!("Hydra token endpoint request failed: {e}"))?;
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        if !(200..300).contains(&status) {
            return Err(format!(
                "Hydra token endpoint returned {status}: {}",
                head(&text)
            ));
        }
        let parsed: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let (Some(token), Some(expires_in)) = (
            parsed.get("access_token").and_then(Value::as_str),
            parsed.get("expires_in").and_then(Value::as_f64),
        ) else {
            return Err(format!(
                "Hydra token response missing access_token or expires_in: {}",
                head(&text)
            ));
        };
        let token = SecretString::from(token.to_owned());
        *cached = Some((token.clone(), token_expiry(Instant::now(), expires_in)));
        Ok(token)
    }
}

/// When a token issued at `now` with the server's `expires_in` should be refreshed: 30 s early,
/// and at most a day out, whatever number the server sent (no panic on `1e300`, NaN or a
/// negative value).
fn token_expiry(now: Instant, expires_in: f64) -> Instant {
    const LONGEST: Duration = Duration::from_secs(24 * 3600);
    let lifetime = Duration::try_from_secs_f64(expires_in.max(0.0))
        .unwrap_or(LONGEST)
        .min(LONGEST)
        .saturating_sub(EXPIRY_MARGIN);
    now.checked_add(lifetime).unwrap_or(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_expiry_saturates_remote_numbers() {
        let now = Instant::now();
        assert_eq!(token_expiry(now, 3600.0), now + Duration::from_secs(3570));
        for hostile in [1e300, f64::INFINITY, f64::MAX] {
            assert_eq!(
                token_expiry(now, hostile),
                now + Duration::from_secs(24 * 3600 - 30)
            );
        }
        for odd in [f64::NAN, -5.0, 10.0] {
            assert_eq!(token_expiry(now, odd), now);
        }
    }

    #[test]
    fn timestamps_are_iso8601_with_millis() {
        assert_eq!(
            iso8601_millis(Duration::from_millis(0)),
            "1970-01-01T00:00:00.000Z"
        );
        assert_eq!(
            iso8601_millis(Duration::from_millis(1_795_347_877_123)),
            "2026-11-22T11:44:37.123Z"
        );
        assert_eq!(
            iso8601_millis(Duration::from_secs(951_782_400)),
            "2000-02-29T00:00:00.000Z"
        );
    }

    #[test]
    fn payload_shape() {
        let id = Identity::new(
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
            "ops@example.com",
            "gateway",
        )
        .unwrap();
        let settings = HydraSettings {
            admin_url: "http://h".into(),
            token_url: "http://h/token".into(),
            scopes: vec!["openid".into(), "agent:read".into()],
        };
        let p = client_payload(&id, &settings, Duration::ZERO);
        let keys: Vec<&String> = p.as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            [
                "client_id",
                "client_secret",
                "client_name",
                "grant_types",
                "response_types",
                "scope",
                "token_endpoint_auth_method",
                "metadata"
            ]
        );
        assert_eq!(
            p["client_secret"],
            "xDKzyTMmr_qPlKRioGfHoMlbytTSWsA43u3ddJC7QxA"
        );
        assert_eq!(p["scope"], "openid agent:read");
        assert_eq!(p["metadata"]["registered_at"], "1970-01-01T00:00:00.000Z");
        assert_eq!(
            utf8_percent_encode(id.did(), CLIENT_ID).to_string(),
            "did%3Abindu%3Aops_at_example_com%3Agateway%3A139e3940-e64b-5491-7220-88d9a0d74162"
        );
    }
}
