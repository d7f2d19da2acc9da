//! One request from a client: find out which host it is for (the API on
//! `manage.<domain>`, a session on `<alias>.<domain>`, or nothing), check edge
//! auth, and hand it to the forwarder with hop-by-hop headers removed and
//! forwarding headers set. Logs alias, method, path (never the query: it
//! carries the token) and status.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::header::{
    AUTHORIZATION, CONNECTION, COOKIE, HOST, HeaderMap, HeaderName, HeaderValue, SET_COOKIE,
    UPGRADE,
};
use http::{Request, Response, Version};
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::api::SessionState;

use super::Shared;
use super::pages;
use super::status::Failure;
use super::store::{Session, now_unix};

/// Every response body the proxy sends: a backend's streamed body or one it
/// made itself.
pub type ProxyBody = Either<Incoming, Full<Bytes>>;

/// The edge-auth cookie. Host-only (no `Domain`), so one session's cookie is
/// never sent to another alias.
pub const COOKIE_NAME: &str = "jrps_session";

/// What the connection knows about itself.
#[derive(Debug, Clone, Copy)]
pub struct ConnInfo {
    pub peer: SocketAddr,
    /// This listener serves only the API (`api_addr`), whatever the Host.
    pub api_only: bool,
}

pub fn full(response: Response<Full<Bytes>>) -> Response<ProxyBody> {
    response.map(Either::Right)
}

/// Entry point for every request on every listener.
pub async fn handle(
    shared: Arc<Shared>,
    conn: ConnInfo,
    req: Request<Incoming>,
) -> Result<Response<ProxyBody>, Infallible> {
    let started = Instant::now();
    let method = req.method().clone();
    // The URI is reference-counted, so keeping it for the log line costs no
    // copy; only its path is logged, never the query (it carries the token).
    let uri = req.uri().clone();
    // The alias is lower-cased into this buffer: routing allocates nothing.
    let mut buf = [0u8; 64];
    let target = if conn.api_only {
        Target::Api
    } else {
        match request_host(&req) {
            Some(host) => classify(&shared.config.domain, host, &mut buf),
            None => Target::NoHost,
        }
    };
    let (response, alias) = match target {
        Target::Api => (super::api::handle(&shared, conn, req).await, "-"),
        Target::Alias(alias) => (session_request(&shared, conn, alias, req).await, alias),
        Target::Other => {
            let host = request_host(&req).unwrap_or("").to_owned();
            (full(pages::page(Failure::UnknownAlias, &host)), "-")
        }
        Target::NoHost => (full(pages::page(Failure::BadRequest, "(no host)")), "-"),
    };
    let status = response.status().as_u16();
    shared.metrics.request(status);
    if shared.config.access_log {
        tracing::info!(
            peer = %conn.peer.ip(),
            alias,
            %method,
            path = uri.path(),
            status,
            ms = started.elapsed().as_millis() as u64,
            "request"
        );
    }
    Ok(response)
}

/// Which part of the proxy a Host belongs to.
pub(super) enum Target<'a> {
    Api,
    Alias(&'a str),
    Other,
    NoHost,
}

/// The Host of a request: the `Host` header (HTTP/1.1) or the URI authority
/// (HTTP/2 `:authority`).
fn request_host(req: &Request<Incoming>) -> Option<&str> {
    match req.headers().get(HOST) {
        Some(v) => v.to_str().ok(),
        None => req.uri().authority().map(|a| a.as_str()),
    }
}

/// Classifies `host` (any case, optional port, optional trailing dot) against
/// `domain` (lower case). The alias is lower-cased into `buf`, so the lookup
/// allocates nothing.
pub(super) fn classify<'b>(domain: &str, host: &str, buf: &'b mut [u8; 64]) -> Target<'b> {
    let host = if host.starts_with('[') {
        return Target::Other;
    } else {
        match host.rsplit_once(':') {
            Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
            _ => host,
        }
    };
    let host = host.strip_suffix('.').unwrap_or(host);
    if host.len() <= domain.len() + 1 {
        return Target::Other;
    }
    let split = host.len() - domain.len();
    if !host.is_char_boundary(split) {
        return Target::Other;
    }
    let (label, rest) = host.split_at(split);
    if !rest.eq_ignore_ascii_case(domain) || !label.ends_with('.') {
        return Target::Other;
    }
    let label = &label[..label.len() - 1];
    if label.is_empty()
        || label.len() > buf.len()
        || !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        return Target::Other;
    }
    if label.eq_ignore_ascii_case(crate::api::MANAGE_SUBDOMAIN) {
        return Target::Api;
    }
    let out = &mut buf[..label.len()];
    out.copy_from_slice(label.as_bytes());
    out.make_ascii_lowercase();
    match std::str::from_utf8(out) {
        Ok(alias) => Target::Alias(alias),
        Err(_) => Target::Other,
    }
}

async fn session_request(
    shared: &Arc<Shared>,
    conn: ConnInfo,
    alias: &str,
    mut req: Request<Incoming>,
) -> Response<ProxyBody> {
    let Some(session) = shared.store.get(alias) else {
        return full(pages::page(Failure::UnknownAlias, alias));
    };
    let now = now_unix();
    if !session.is_live(now) {
        return full(pages::page(Failure::Ended, alias));
    }
    let auth = edge_auth(&session, &req);
    if auth == Auth::None {
        return full(pages::page(Failure::NoCredentials, alias));
    }
    let set_cookie = (auth == Auth::Token).then(|| cookie_header(shared, &session, now));
    let mut response = match (session.state, &session.backend_authority) {
        (SessionState::Ready, Some(backend)) => {
            let upgrade = prepare_request(shared, conn, &mut req);
            shared
                .forwarder()
                .forward(shared, &session, backend.clone(), req, upgrade)
                .await
        }
        _ => full(pages::starting(alias, shared.phases.get(alias).as_ref())),
    };
    if let Some(cookie) = set_cookie {
        response.headers_mut().append(SET_COOKIE, cookie);
    }
    response
}

#[derive(Debug, PartialEq, Eq)]
enum Auth {
    None,
    /// A valid edge cookie: nothing more to do.
    Cookie,
    /// A valid token (query or `Authorization: token`): set the cookie.
    Token,
}

/// Checks the cookie first (the common case after the first request), then
/// `?token=`, then `Authorization: token …` or `Bearer …` (the two forms
/// Jupyter's API accepts). All
/// comparisons are constant time.
fn edge_auth(session: &Session, req: &Request<Incoming>) -> Auth {
    for value in req.headers().get_all(COOKIE) {
        let Ok(value) = value.to_str() else { continue };
        for pair in value.split(';') {
            let Some((name, v)) = pair.trim().split_once('=') else {
                continue;
            };
            if name == COOKIE_NAME && hex_eq(v, &session.cookie) {
                return Auth::Cookie;
            }
        }
    }
    if let Some(query) = req.uri().query() {
        for pair in query.split('&') {
            if let Some(token) = pair.strip_prefix("token=")
                && sha_eq(token.as_bytes(), &session.token_sha256)
            {
                return Auth::Token;
            }
        }
    }
    if let Some(value) = req.headers().get(AUTHORIZATION)
        && let Ok(value) = value.to_str()
    {
        let mut words = value.split_whitespace();
        if let (Some(kind), Some(token)) = (words.next(), words.next())
            && (kind.eq_ignore_ascii_case("token") || kind.eq_ignore_ascii_case("bearer"))
            && sha_eq(token.as_bytes(), &session.token_sha256)
        {
            return Auth::Token;
        }
    }
    Auth::None
}

fn sha_eq(token: &[u8], expected: &[u8; 32]) -> bool {
    let digest = Sha256::digest(token);
    bool::from(digest.as_slice().ct_eq(expected))
}

pub(super) fn hex_eq(text: &str, expected: &[u8; 32]) -> bool {
    let mut decoded = [0u8; 32];
    if hex::decode_to_slice(text.trim(), &mut decoded).is_err() {
        return false;
    }
    bool::from(decoded.ct_eq(expected))
}

fn cookie_header(shared: &Shared, session: &Session, now: u64) -> HeaderValue {
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

/// Headers that describe one hop and must not be forwarded (RFC 9110 §7.6.1).
pub(super) const HOP_BY_HOP: [HeaderName; 8] = [
    CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    http::header::PROXY_AUTHENTICATE,
    http::header::PROXY_AUTHORIZATION,
    http::header::TE,
    http::header::TRAILER,
    http::header::TRANSFER_ENCODING,
];

/// Removes hop-by-hop headers, including those named in `Connection`.
/// Returns the `Upgrade` value if this is an upgrade we pass on (WebSocket).
pub fn strip_hop_by_hop(headers: &mut HeaderMap) -> Option<HeaderValue> {
    let mut wants_upgrade = false;
    let mut named: Vec<HeaderName> = Vec::new();
    for value in headers.get_all(CONNECTION) {
        let Ok(value) = value.to_str() else { continue };
        for token in value.split(',').map(str::trim) {
            if token.eq_ignore_ascii_case("upgrade") {
                wants_upgrade = true;
            } else if let Ok(name) = HeaderName::from_bytes(token.as_bytes()) {
                named.push(name);
            }
        }
    }
    let upgrade = headers.remove(UPGRADE);
    for name in HOP_BY_HOP.iter().chain(named.iter()) {
        headers.remove(name);
    }
    match upgrade {
        Some(u) if wants_upgrade && u.as_bytes().eq_ignore_ascii_case(b"websocket") => Some(u),
        _ => None,
    }
}

/// Turns the client's request into the backend's: HTTP/1.1, hop-by-hop
/// headers gone, `Host` kept as the browser sent it (so Jupyter's Origin
/// check compares like with like), forwarding headers set. Returns the
/// `Upgrade` value when this is a WebSocket handshake.
fn prepare_request(
    shared: &Shared,
    conn: ConnInfo,
    req: &mut Request<Incoming>,
) -> Option<HeaderValue> {
    let https = shared.config.public_scheme_is_https();
    let headers = req.headers_mut();
    let upgrade = strip_hop_by_hop(headers);
    if let Some(u) = &upgrade {
        headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(UPGRADE, u.clone());
    }
    // HTTP/2 carries the host in the URI; HTTP/1.1 backends need the header.
    if !headers.contains_key(HOST)
        && let Some(authority) = req.uri().authority()
        && let Ok(v) = HeaderValue::from_str(authority.as_str())
    {
        req.headers_mut().insert(HOST, v);
    }
    let headers = req.headers_mut();
    // HTTP/2 clients may split cookies over several fields; an HTTP/1.1
    // server expects one (RFC 9113 §8.2.3), and Tornado would misread many.
    if headers.get_all(COOKIE).iter().nth(1).is_some() {
        let joined: Vec<&str> = headers
            .get_all(COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        if let Ok(v) = HeaderValue::from_str(&joined.join("; ")) {
            headers.insert(COOKIE, v);
        }
    }
    let ip = conn.peer.ip().to_string();
    let xff = HeaderName::from_static("x-forwarded-for");
    // At the edge, the client's own X-Forwarded-For is a claim, not a fact:
    // replace it. Behind a TLS terminator, extend the terminator's chain.
    let chain = match headers.get(&xff).and_then(|v| v.to_str().ok()) {
        Some(prev) if shared.config.behind_tls => format!("{prev}, {ip}"),
        _ => ip.clone(),
    };
    if let Ok(v) = HeaderValue::from_str(&chain) {
        headers.insert(xff, v);
    }
    if !shared.config.behind_tls
        && let Ok(v) = HeaderValue::from_str(&ip)
    {
        headers.insert(HeaderName::from_static("x-real-ip"), v);
    }
    headers.insert(
        HeaderName::from_static("x-forwarded-proto"),
        HeaderValue::from_static(if https { "https" } else { "http" }),
    );
    if let Some(host) = headers.get(HOST).cloned() {
        headers.insert(HeaderName::from_static("x-forwarded-host"), host);
    }
    *req.version_mut() = Version::HTTP_11;
    upgrade
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alias_of(host: &str) -> Option<String> {
        let mut buf = [0u8; 64];
        match classify("jrps.localhost", host, &mut buf) {
            Target::Alias(a) => Some(a.to_owned()),
            Target::Api => Some("<api>".into()),
            Target::Other | Target::NoHost => None,
        }
    }

    #[test]
    fn host_forms() {
        for host in [
            "amber-otter-lagoon.jrps.localhost",
            "AMBER-Otter-lagoon.JRPS.localhost",
            "amber-otter-lagoon.jrps.localhost:8443",
            "amber-otter-lagoon.jrps.localhost.",
            "amber-otter-lagoon.jrps.localhost.:443",
        ] {
            assert_eq!(
                alias_of(host).as_deref(),
                Some("amber-otter-lagoon"),
                "{host}"
            );
        }
        assert_eq!(
            alias_of("Manage.jrps.localhost:1").as_deref(),
            Some("<api>")
        );
        for host in [
            "jrps.localhost",
            ".jrps.localhost",
            "a.b.jrps.localhost",
            "xjrps.localhost",
            "evil.com",
            "[::1]:80",
            "amber.jrps.localhost.evil.com",
            "ééé.jrps.localhost",
            "xxéjrps.localhost",
        ] {
            assert_eq!(alias_of(host), None, "{host}");
        }
    }

    #[test]
    fn hop_by_hop_and_websocket() {
        let mut h = HeaderMap::new();
        h.insert(
            CONNECTION,
            HeaderValue::from_static("keep-alive, Upgrade, x-secret"),
        );
        h.insert(UPGRADE, HeaderValue::from_static("websocket"));
        h.insert("x-secret", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert("x-kept", HeaderValue::from_static("1"));
        assert_eq!(strip_hop_by_hop(&mut h).unwrap(), "websocket");
        assert!(h.get("x-secret").is_none() && h.get("keep-alive").is_none());
        assert!(h.get(CONNECTION).is_none() && h.get("x-kept").is_some());

        let mut h = HeaderMap::new();
        h.insert(UPGRADE, HeaderValue::from_static("h2c"));
        h.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
        assert!(strip_hop_by_hop(&mut h).is_none());
    }
}
