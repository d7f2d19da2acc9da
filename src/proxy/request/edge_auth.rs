//! Edge auth: whether a request to a session may reach its Jupyter. The
//! session's edge cookie (what a browser sends after its first request), or
//! its token (`?token=`, `Authorization: token …` or `Bearer …`, the forms
//! Jupyter's API accepts), which earns the cookie. Both request paths ask
//! here; all comparisons are constant time.

use http::HeaderValue;
use http::header::{AUTHORIZATION, COOKIE, HeaderMap};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::proxy::store::Session;
use crate::session_kind::SessionKind;

/// The edge-auth cookie. Host-only (no `Domain`), so one session's cookie is
/// never sent to another alias.
pub const COOKIE_NAME: &str = "jrps_session";

/// Its name over TLS: browsers accept a `__Host-` cookie only when it is
/// `Secure`, `Path=/` and has no `Domain`, so no page on another alias (or
/// a plain-HTTP page of the domain) can set or shadow it.
pub const SECURE_COOKIE_NAME: &str = "__Host-jrps_session";

/// The edge cookie's name for the public scheme.
pub fn cookie_name(https: bool) -> &'static str {
    if https {
        SECURE_COOKIE_NAME
    } else {
        COOKIE_NAME
    }
}

#[derive(PartialEq, Eq)]
pub enum Auth {
    None,
    /// A valid edge cookie: nothing more to do.
    Cookie,
    /// A valid token: set the cookie (and the app's own, for a kind the
    /// proxy logs in to, which is made from the token).
    Token(String),
}

/// Whether a request with a valid edge cookie still redeems the token, to
/// log the session's app in again: the fast path leaves it to hyper's.
pub fn redeems_app_login(session: &Session, target: &str) -> bool {
    session.kind.is_some_and(SessionKind::proxy_logs_in)
        && target
            .split_once('?')
            .is_some_and(|(_, query)| query.split('&').any(|pair| pair.starts_with("token=")))
}

/// The token is a secret: never in a debug print.
impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Auth::None => "None",
            Auth::Cookie => "Cookie",
            Auth::Token(_) => "Token(…)",
        })
    }
}

/// Checks the cookie first (the common case after the first request), then
/// the query's `token=`, then `Authorization`. For a kind the proxy logs in
/// to, a query token comes first: the printed URL must log the app in again
/// after it logged out (which clears its cookie, not the edge one).
pub fn check(session: &Session, headers: &HeaderMap, query: Option<&str>, https: bool) -> Auth {
    let query_token = || {
        query?.split('&').find_map(|pair| {
            pair.strip_prefix("token=")
                .filter(|token| token_matches(token.as_bytes(), session))
                .map(|token| Auth::Token(token.to_owned()))
        })
    };
    let query_first = session.kind.is_some_and(SessionKind::proxy_logs_in);
    if query_first && let Some(auth) = query_token() {
        return auth;
    }
    if headers
        .get_all(COOKIE)
        .iter()
        .any(|value| has_edge_cookie(value.as_bytes(), session, https))
    {
        return Auth::Cookie;
    }
    if !query_first && let Some(auth) = query_token() {
        return auth;
    }
    if let Some(value) = headers.get(AUTHORIZATION)
        && let Ok(value) = value.to_str()
    {
        let mut words = value.split_whitespace();
        if let (Some(kind), Some(token)) = (words.next(), words.next())
            && (kind.eq_ignore_ascii_case("token") || kind.eq_ignore_ascii_case("bearer"))
            && token_matches(token.as_bytes(), session)
        {
            return Auth::Token(token.to_owned());
        }
    }
    Auth::None
}

/// Whether a request may reach the backend as far as its `Origin` goes:
/// safe methods always; an unsafe method or a WebSocket handshake only
/// without `Origin` (not a browser's cross-site request) or with the
/// request's own origin, `scheme://host` as the request names its host.
/// Every alias shares the cookie's "site", so without this a page on one
/// alias could send another alias's cookie along.
pub fn origin_allowed(
    method: &[u8],
    websocket: bool,
    origin: Option<&[u8]>,
    host: &[u8],
    https: bool,
) -> bool {
    let safe = matches!(method, b"GET" | b"HEAD" | b"OPTIONS" | b"TRACE");
    let Some(origin) = origin else {
        return true;
    };
    if safe && !websocket {
        return true;
    }
    let scheme: &[u8] = if https { b"https://" } else { b"http://" };
    origin.len() == scheme.len() + host.len()
        && origin[..scheme.len()].eq_ignore_ascii_case(scheme)
        && origin[scheme.len()..].eq_ignore_ascii_case(host)
}

/// Whether one `Cookie` field holds the session's edge cookie, under the
/// name the public scheme gives it.
pub fn has_edge_cookie(field: &[u8], session: &Session, https: bool) -> bool {
    let wanted = cookie_name(https).as_bytes();
    cookie_pairs(field).any(|(name, value)| name == wanted && hex_eq(value, &session.cookie))
}

/// Whether a cookie of this name is the proxy's (under either name), not
/// Jupyter's.
pub fn is_edge_cookie(name: &[u8]) -> bool {
    name == COOKIE_NAME.as_bytes() || name == SECURE_COOKIE_NAME.as_bytes()
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
/// long as the session; `Secure` when the public scheme is `https`.
pub fn cookie_header(session: &Session, now: u64, https: bool) -> HeaderValue {
    set_cookie(
        cookie_name(https),
        &hex::encode(session.cookie),
        session,
        now,
        https,
    )
}

/// A session's cookie for the browser: host-only (no `Domain`), `HttpOnly`,
/// as long-lived as the session, `Secure` when the public scheme is https.
fn set_cookie(name: &str, value: &str, session: &Session, now: u64, https: bool) -> HeaderValue {
    let max_age = session.expires_at.saturating_sub(now);
    let secure = if https { "; Secure" } else { "" };
    let value =
        format!("{name}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}");
    // Names are constants and values hex: always a valid header value.
    HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The cookie that logs a browser in to a session's app, for kinds whose
/// app checks a cookie of its own rather than Jupyter's token: made from
/// the token at hand, so nothing of it is stored.
pub struct AppLogin {
    name: &'static str,
    value: String,
}

impl AppLogin {
    pub fn of(session: &Session, token: &str) -> Option<AppLogin> {
        let (name, value) = session.kind?.app_login(token)?;
        Some(AppLogin { name, value })
    }

    /// For the browser, as the edge cookie.
    pub fn set_cookie(&self, session: &Session, now: u64, https: bool) -> HeaderValue {
        set_cookie(self.name, &self.value, session, now, https)
    }

    /// Puts the login in the request that redeems the token, which the app
    /// must already see as logged in (else it answers with its login page),
    /// in place of any cookie of that name the client sent: the app reads
    /// the first, and a stale one (or one another alias's page set with a
    /// `Domain`) would win.
    pub fn replace_in(&self, headers: &mut HeaderMap) {
        let mut pairs: Vec<Vec<u8>> = Vec::new();
        for field in headers.get_all(COOKIE) {
            for (name, value) in cookie_pairs(field.as_bytes()) {
                if name != self.name.as_bytes() {
                    pairs.push([name, b"=", value].concat());
                }
            }
        }
        pairs.push(format!("{}={}", self.name, self.value).into_bytes());
        if let Ok(value) = HeaderValue::from_bytes(&pairs.join(&b"; "[..])) {
            headers.remove(COOKIE);
            headers.insert(COOKIE, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_requests_own_origin_may_change_things() {
        let host = b"amber-otter-lagoon.jrps.localhost:8443";
        let own = b"https://amber-otter-lagoon.jrps.localhost:8443";
        let other = b"https://bronze-fox-creek.jrps.localhost:8443";
        assert!(origin_allowed(b"POST", false, Some(own), host, true));
        assert!(origin_allowed(b"POST", false, None, host, true));
        assert!(!origin_allowed(b"POST", false, Some(other), host, true));
        assert!(!origin_allowed(b"DELETE", false, Some(b"null"), host, true));
        assert!(!origin_allowed(
            b"POST",
            false,
            Some(b"http://amber-otter-lagoon.jrps.localhost:8443"),
            host,
            true
        ));
        assert!(origin_allowed(b"GET", false, Some(other), host, true));
        assert!(!origin_allowed(b"GET", true, Some(other), host, true));
        assert!(origin_allowed(b"GET", true, Some(own), host, true));
    }
}
