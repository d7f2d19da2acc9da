//! Edge auth: whether a request to a session may reach its Jupyter. The
//! session's edge cookie (what a browser sends after its first request), or
//! its token (`?token=`, `Authorization: token …` or `Bearer …`, the forms
//! Jupyter's API accepts), which earns the cookie. Both request paths ask
//! here; all comparisons are constant time.

use http::HeaderValue;
use http::header::{AUTHORIZATION, COOKIE, HeaderMap};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::Shared;
use super::store::Session;

/// The edge-auth cookie. Host-only (no `Domain`), so one session's cookie is
/// never sent to another alias.
pub const COOKIE_NAME: &str = "jrps_session";

#[derive(Debug, PartialEq, Eq)]
pub enum Auth {
    None,
    /// A valid edge cookie: nothing more to do.
    Cookie,
    /// A valid token: set the cookie.
    Token,
}

/// Checks the cookie first (the common case after the first request), then
/// the query's `token=`, then `Authorization`.
pub fn check(session: &Session, headers: &HeaderMap, query: Option<&str>) -> Auth {
    if headers
        .get_all(COOKIE)
        .iter()
        .any(|value| has_edge_cookie(value.as_bytes(), session))
    {
        return Auth::Cookie;
    }
    if let Some(query) = query {
        for pair in query.split('&') {
            if let Some(token) = pair.strip_prefix("token=")
                && token_matches(token.as_bytes(), session)
            {
                return Auth::Token;
            }
        }
    }
    if let Some(value) = headers.get(AUTHORIZATION)
        && let Ok(value) = value.to_str()
    {
        let mut words = value.split_whitespace();
        if let (Some(kind), Some(token)) = (words.next(), words.next())
            && (kind.eq_ignore_ascii_case("token") || kind.eq_ignore_ascii_case("bearer"))
            && token_matches(token.as_bytes(), session)
        {
            return Auth::Token;
        }
    }
    Auth::None
}

/// Whether one `Cookie` field holds the session's edge cookie.
pub fn has_edge_cookie(field: &[u8], session: &Session) -> bool {
    cookie_pairs(field).any(|(name, value)| is_edge_cookie(name) && hex_eq(value, &session.cookie))
}

/// Whether a cookie of this name is the proxy's, not Jupyter's.
pub fn is_edge_cookie(name: &[u8]) -> bool {
    name == COOKIE_NAME.as_bytes()
}

/// The `name=value` pairs of a `Cookie` field, trimmed; pairs without `=`
/// are skipped.
pub fn cookie_pairs(field: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    field.split(|&b| b == b';').filter_map(|pair| {
        let pair = pair.trim_ascii();
        let eq = pair.iter().position(|&b| b == b'=')?;
        Some((&pair[..eq], &pair[eq + 1..]))
    })
}

fn token_matches(token: &[u8], session: &Session) -> bool {
    let digest = Sha256::digest(token);
    bool::from(digest.as_slice().ct_eq(&session.token_sha256))
}

fn hex_eq(text: &[u8], expected: &[u8; 32]) -> bool {
    let mut decoded = [0u8; 32];
    if hex::decode_to_slice(text.trim_ascii(), &mut decoded).is_err() {
        return false;
    }
    bool::from(decoded.ct_eq(expected))
}

/// The `Set-Cookie` that trades a valid token for the edge cookie, valid as
/// long as the session.
pub fn cookie_header(shared: &Shared, session: &Session, now: u64) -> HeaderValue {
    let max_age = session.expires_at.saturating_sub(now);
    let secure = if shared.config.public_scheme_is_https() {
        "; Secure"
    } else {
        ""
    };
    let value = format!(
        "{COOKIE_NAME}={}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}",
        hex::encode(session.cookie)
    );
    // Only hex, digits and fixed ASCII: always a valid header value.
    HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static(""))
}
