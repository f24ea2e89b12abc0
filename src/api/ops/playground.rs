//! `GET /playground`: one self-contained page (`playground.html`, compiled in) to run plans from
//! a browser. Its Content-Security-Policy allows only the page's own inline script and style (by
//! hash) and requests to the gateway itself, so nothing a peer sends can load or run anything even
//! if it ever reached the page as markup (the page only writes text). Images only come from
//! `blob:` URLs, which only the page's script makes (from a plan's image files it fetched).

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use sha2::{Digest as _, Sha256};

const PAGE: &str = include_str!("playground.html");

/// The page and its headers, built once.
#[derive(Debug, Clone)]
pub struct Playground {
    csp: HeaderValue,
}

impl Playground {
    pub fn new() -> Self {
        let script = hash_source(inline(PAGE, "script"));
        let style = hash_source(inline(PAGE, "style"));
        let policy = format!(
            "default-src 'none'; script-src {script}; style-src {style}; connect-src 'self'; \
             img-src blob:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
        );
        Self {
            csp: HeaderValue::from_str(&policy)
                .unwrap_or_else(|_| HeaderValue::from_static("default-src 'none'")),
        }
    }

    pub fn response(&self) -> Response {
        (
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/html; charset=utf-8"),
                ),
                (header::CONTENT_SECURITY_POLICY, self.csp.clone()),
                (
                    header::X_CONTENT_TYPE_OPTIONS,
                    HeaderValue::from_static("nosniff"),
                ),
                (
                    header::REFERRER_POLICY,
                    HeaderValue::from_static("no-referrer"),
                ),
                (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            ],
            PAGE,
        )
            .into_response()
    }
}

impl Default for Playground {
    fn default() -> Self {
        Self::new()
    }
}

/// The text between the page's only `<tag>` and `</tag>`.
fn inline<'a>(page: &'a str, tag: &str) -> &'a str {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    page.split_once(&open)
        .and_then(|(_, rest)| rest.split_once(&close))
        .map_or("", |(inner, _)| inner)
}

/// A CSP hash source: `'sha256-<base64 of the SHA-256 of the text>'`.
fn hash_source(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    format!(
        "'sha256-{}'",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_is_self_contained_and_its_policy_names_its_one_script_and_style() {
        assert_eq!(PAGE.matches("<script").count(), 1);
        assert_eq!(PAGE.matches("<style").count(), 1);
        for external in [
            "src=",
            "href=",
            "@import",
            "url(",
            "innerHTML",
            "insertAdjacentHTML",
        ] {
            assert!(!PAGE.contains(external), "{external}");
        }
        let policy = Playground::new().csp.to_str().unwrap().to_owned();
        assert!(policy.contains(&hash_source(inline(PAGE, "script"))));
        assert!(inline(PAGE, "script").contains("sseEvents"));
        assert!(!policy.contains("unsafe-inline"), "{policy}");
    }
}
