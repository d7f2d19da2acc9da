//! The forwarding policy: what of a client's request reaches the backend,
//! and what of the backend's answer reaches the client. Both request paths
//! apply it, the fast path to raw header bytes and the hyper path to a
//! `HeaderMap`, so each rule is written once and holds on both.
//!
//! Requests: hop-by-hop headers (RFC 9110 §7.6.1) and those a `Connection`
//! token names are dropped, but no token removes `Host`, `Content-Length`
//! or `Transfer-Encoding`: routing and framing are the proxy's reading of
//! the request, and a client that could strip them from the backend's copy
//! could smuggle a second request in the body. Headers that claim what only
//! the proxy knows (`X-Forwarded-*`, `X-Real-IP`, `X-Scheme`, `Forwarded`)
//! are replaced by the proxy's own or dropped. The edge cookie is taken out
//! of `Cookie`: it is the proxy's credential, not Jupyter's.
//!
//! Responses: hop-by-hop and `Connection`-named headers are dropped (again
//! never the framing ones), and a `Set-Cookie` loses its `Domain`, so one
//! notebook cannot set cookies for every alias.

use bytes::{BufMut, Bytes, BytesMut};
use http::header::{CONNECTION, COOKIE, HOST, HeaderMap, HeaderName, HeaderValue, UPGRADE};

use crate::proxy::request::edge_auth;

/// Headers that describe one hop and are never forwarded as sent.
const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// What a `Connection` token may never remove.
const ROUTING_AND_FRAMING: [&str; 3] = ["host", "content-length", "transfer-encoding"];

/// Client headers about the connection that only the proxy can vouch for;
/// it sets its own `X-Forwarded-For`, `-Proto`, `-Host` (and `X-Real-IP`
/// at the edge) and drops the rest.
const PROXY_CLAIMS: [&str; 5] = [
    "x-forwarded-proto",
    "x-forwarded-host",
    "x-forwarded-port",
    "x-scheme",
    "forwarded",
];

/// Whether `name` is one of `list`, in any case.
pub(super) fn is_one_of(name: &[u8], list: &[&str]) -> bool {
    list.iter().any(|n| name.eq_ignore_ascii_case(n.as_bytes()))
}

/// The tokens of a message's `Connection` fields.
#[derive(Debug, Default)]
pub struct ConnectionTokens<'a> {
    pub close: bool,
    pub upgrade: bool,
    named: Vec<&'a [u8]>,
}

impl<'a> ConnectionTokens<'a> {
    pub fn parse(fields: impl IntoIterator<Item = &'a [u8]>) -> ConnectionTokens<'a> {
        let mut tokens = ConnectionTokens::default();
        for field in fields {
            tokens.add(field);
        }
        tokens
    }

    /// Adds the tokens of one more `Connection` field.
    pub fn add(&mut self, field: &'a [u8]) {
        for token in field.split(|&b| b == b',').map(<[u8]>::trim_ascii) {
            if token.eq_ignore_ascii_case(b"close") {
                self.close = true;
            } else if token.eq_ignore_ascii_case(b"upgrade") {
                self.upgrade = true;
            } else if !token.is_empty() && !token.eq_ignore_ascii_case(b"keep-alive") {
                self.named.push(token);
            }
        }
    }

    fn names(&self, header: &[u8]) -> bool {
        self.named.iter().any(|n| n.eq_ignore_ascii_case(header))
    }
}

/// What happens to one request header on its way to the backend.
#[derive(Debug, PartialEq, Eq)]
pub enum RequestHeader {
    Forward,
    Drop,
    /// `Content-Length`: forwarded as the proxy parsed it (the fast path
    /// writes its own from the parsed value; hyper validated it already).
    Length,
    /// `Cookie`: forwarded without the edge cookie ([`cookie_for_backend`]).
    Cookie,
    /// `X-Forwarded-For` from the TLS terminator: the chain the proxy extends.
    ForwardedFor,
}

pub fn request_header(name: &[u8], tokens: &ConnectionTokens, behind_tls: bool) -> RequestHeader {
    use RequestHeader::*;
    if is_one_of(name, &HOP_BY_HOP) {
        return Drop;
    }
    if name.eq_ignore_ascii_case(b"content-length") {
        return Length;
    }
    if is_one_of(name, &ROUTING_AND_FRAMING) {
        return Forward;
    }
    if tokens.names(name) || is_one_of(name, &PROXY_CLAIMS) {
        return Drop;
    }
    if name.eq_ignore_ascii_case(b"cookie") {
        return Cookie;
    }
    // At the edge the client's X-Forwarded-For and X-Real-IP are claims;
    // behind a TLS terminator they are the terminator's facts.
    if name.eq_ignore_ascii_case(b"x-forwarded-for") {
        return if behind_tls { ForwardedFor } else { Drop };
    }
    if name.eq_ignore_ascii_case(b"x-real-ip") && !behind_tls {
        return Drop;
    }
    Forward
}

/// Who is forwarding: what the added headers say.
#[derive(Debug, Clone, Copy)]
pub struct ForwardedBy<'a> {
    /// The peer address of the client connection, as text.
    pub client_ip: &'a str,
    pub behind_tls: bool,
    /// The public scheme (`X-Forwarded-Proto`).
    pub https: bool,
}

impl ForwardedBy<'_> {
    /// The headers the proxy adds to every forwarded request, each as its
    /// name and the parts of its value: `X-Forwarded-For` (the terminator's
    /// chain extended by the peer, or the peer alone), `X-Real-IP` at the
    /// edge, `X-Forwarded-Proto` and `X-Forwarded-Host`.
    pub fn added_headers(
        &self,
        host: &[u8],
        previous_for: Option<&[u8]>,
        mut add: impl FnMut(&'static str, &[&[u8]]),
    ) {
        let ip = self.client_ip.as_bytes();
        match previous_for {
            Some(chain) if self.behind_tls => add("x-forwarded-for", &[chain, b", ", ip]),
            _ => add("x-forwarded-for", &[ip]),
        }
        if !self.behind_tls {
            add("x-real-ip", &[ip]);
        }
        let proto: &[u8] = if self.https { b"https" } else { b"http" };
        add("x-forwarded-proto", &[proto]);
        add("x-forwarded-host", &[host]);
    }
}

/// Appends the pairs of a `Cookie` field other than the edge cookie to
/// `out`, `; `-separated from any pairs already there after `start`.
pub fn cookie_for_backend(field: &[u8], out: &mut Vec<u8>, start: usize) {
    for (name, value) in edge_auth::cookie_pairs(field) {
        if edge_auth::is_edge_cookie(name) {
            continue;
        }
        if out.len() > start {
            out.extend_from_slice(b"; ");
        }
        out.extend_from_slice(name);
        out.push(b'=');
        out.extend_from_slice(value);
    }
}

/// What happens to one response header on its way to the client.
#[derive(Debug, PartialEq, Eq)]
pub enum ResponseHeader {
    Forward,
    Drop,
    /// `Set-Cookie`: forwarded without `Domain` ([`set_cookie_for_client`]).
    SetCookie,
}

pub fn response_header(name: &[u8], tokens: &ConnectionTokens) -> ResponseHeader {
    if is_one_of(name, &HOP_BY_HOP) {
        ResponseHeader::Drop
    } else if is_one_of(name, &ROUTING_AND_FRAMING) {
        ResponseHeader::Forward
    } else if tokens.names(name) {
        ResponseHeader::Drop
    } else if name.eq_ignore_ascii_case(b"set-cookie") {
        ResponseHeader::SetCookie
    } else {
        ResponseHeader::Forward
    }
}

/// A backend's `Set-Cookie` value without its `Domain` attributes, making
/// the cookie host-only: this alias's alone. `None` when it has none.
pub fn set_cookie_for_client(value: &[u8]) -> Option<Vec<u8>> {
    let is_domain = |attribute: &[u8]| {
        let name = attribute.split(|&b| b == b'=').next().unwrap_or(b"");
        name.trim_ascii().eq_ignore_ascii_case(b"domain")
    };
    let mut parts = value.split(|&b| b == b';');
    let cookie = parts.next().unwrap_or(b"");
    if !parts.clone().any(is_domain) {
        return None;
    }
    let mut out = cookie.to_vec();
    for attribute in parts.filter(|a| !is_domain(a)) {
        out.push(b';');
        out.extend_from_slice(attribute);
    }
    Some(out)
}

fn value_of(parts: &[&[u8]]) -> Option<HeaderValue> {
    let mut value = BytesMut::with_capacity(parts.iter().map(|p| p.len()).sum());
    for part in parts {
        value.put_slice(part);
    }
    HeaderValue::from_maybe_shared(value.freeze()).ok()
}

/// A `HeaderMap`'s `Connection` tokens, and its `Upgrade` value when that
/// asks for WebSocket (the one upgrade the proxy joins).
fn connection_of(headers: &HeaderMap) -> (ConnectionTokens<'_>, Option<HeaderValue>) {
    let tokens = ConnectionTokens::parse(
        headers
            .get_all(CONNECTION)
            .iter()
            .map(HeaderValue::as_bytes),
    );
    let websocket = headers
        .get(UPGRADE)
        .filter(|u| tokens.upgrade && u.as_bytes().eq_ignore_ascii_case(b"websocket"))
        .cloned();
    (tokens, websocket)
}

/// The hyper path's copy of the request policy: the backend's headers made
/// from the client's `old` ones. `authority` is the request URI's (HTTP/2
/// `:authority`), where routing found the host if there was no `Host`
/// (`routing::request_host` checked that the two agree). Also returns the
/// `Upgrade` value when this is a WebSocket handshake, which the caller
/// passes on.
pub fn request_for_backend(
    old: HeaderMap,
    forwarded_by: &ForwardedBy,
    authority: Option<&str>,
) -> (HeaderMap, Option<HeaderValue>) {
    let mut headers = HeaderMap::with_capacity(old.len() + 4);
    let (tokens, websocket) = connection_of(&old);
    let mut cookies = Vec::new();
    let mut previous_for = None;
    for (name, value) in &old {
        match request_header(name.as_str().as_bytes(), &tokens, forwarded_by.behind_tls) {
            RequestHeader::Forward | RequestHeader::Length => {
                headers.append(name.clone(), value.clone());
            }
            // HTTP/2 clients may split cookies over several fields; an
            // HTTP/1.1 server expects one (RFC 9113 §8.2.3).
            RequestHeader::Cookie => cookie_for_backend(value.as_bytes(), &mut cookies, 0),
            RequestHeader::ForwardedFor => {
                previous_for.get_or_insert(value.as_bytes());
            }
            RequestHeader::Drop => {}
        }
    }
    if !cookies.is_empty()
        && let Ok(value) = HeaderValue::from_maybe_shared(Bytes::from(cookies))
    {
        headers.insert(COOKIE, value);
    }
    // HTTP/2 carries the host in `:authority`; HTTP/1.1 backends need the
    // header.
    if !headers.contains_key(HOST)
        && let Some(value) = authority.and_then(|a| HeaderValue::from_str(a).ok())
    {
        headers.insert(HOST, value);
    }
    let host = headers.get(HOST).map_or(&b""[..], HeaderValue::as_bytes);
    let mut added = Vec::with_capacity(4);
    forwarded_by.added_headers(host, previous_for, |name, parts| {
        if let Some(value) = value_of(parts) {
            added.push((HeaderName::from_static(name), value));
        }
    });
    for (name, value) in added {
        headers.insert(name, value);
    }
    if let Some(protocol) = &websocket {
        headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(UPGRADE, protocol.clone());
    }
    (headers, websocket)
}

/// The hyper path's copy of the response policy: rewrites `headers` for
/// the client. Returns the `Upgrade` value when the backend switches to
/// WebSocket, which the caller passes on.
pub fn response_for_client(headers: &mut HeaderMap) -> Option<HeaderValue> {
    let old = std::mem::take(headers);
    let (tokens, websocket) = connection_of(&old);
    headers.reserve(old.len());
    for (name, value) in &old {
        match response_header(name.as_str().as_bytes(), &tokens) {
            ResponseHeader::Forward => {
                headers.append(name.clone(), value.clone());
            }
            ResponseHeader::SetCookie => {
                let value = set_cookie_for_client(value.as_bytes())
                    .and_then(|v| HeaderValue::from_maybe_shared(Bytes::from(v)).ok())
                    .unwrap_or_else(|| value.clone());
                headers.append(name.clone(), value);
            }
            ResponseHeader::Drop => {}
        }
    }
    websocket
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(field: &str) -> ConnectionTokens<'_> {
        ConnectionTokens::parse([field.as_bytes()])
    }

    #[test]
    fn no_connection_token_removes_routing_or_framing() {
        let named = tokens("content-length, Host, transfer-encoding, x-secret");
        assert_eq!(
            request_header(b"Content-Length", &named, false),
            RequestHeader::Length
        );
        assert_eq!(
            request_header(b"host", &named, false),
            RequestHeader::Forward
        );
        assert_eq!(
            request_header(b"X-Secret", &named, false),
            RequestHeader::Drop
        );
        assert_eq!(
            response_header(b"content-length", &named),
            ResponseHeader::Forward
        );
        assert_eq!(response_header(b"x-secret", &named), ResponseHeader::Drop);
        // Transfer-Encoding is hop-by-hop: each side frames its own hop.
        assert_eq!(
            request_header(b"transfer-encoding", &named, false),
            RequestHeader::Drop
        );
    }

    #[test]
    fn claims_about_the_connection_are_the_proxys_to_make() {
        let none = tokens("");
        for name in [
            "X-Scheme",
            "forwarded",
            "x-forwarded-port",
            "x-forwarded-proto",
            "x-forwarded-host",
        ] {
            assert_eq!(
                request_header(name.as_bytes(), &none, false),
                RequestHeader::Drop,
                "{name}"
            );
            assert_eq!(
                request_header(name.as_bytes(), &none, true),
                RequestHeader::Drop,
                "{name}"
            );
        }
        assert_eq!(
            request_header(b"x-forwarded-for", &none, false),
            RequestHeader::Drop
        );
        assert_eq!(
            request_header(b"x-forwarded-for", &none, true),
            RequestHeader::ForwardedFor
        );
        assert_eq!(
            request_header(b"x-real-ip", &none, false),
            RequestHeader::Drop
        );
        assert_eq!(
            request_header(b"x-real-ip", &none, true),
            RequestHeader::Forward
        );
    }

    #[test]
    fn the_edge_cookie_stays_at_the_edge() {
        let mut out = Vec::new();
        out.extend_from_slice(b"cookie: ");
        cookie_for_backend(b"a=1; jrps_session=abcd;  _xsrf=2|x ;noeq", &mut out, 8);
        cookie_for_backend(b"__Host-jrps_session=ef", &mut out, 8);
        cookie_for_backend(b"b=3", &mut out, 8);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "cookie: a=1; _xsrf=2|x; b=3"
        );
    }

    #[test]
    fn set_cookie_loses_its_domain() {
        let strip =
            |v: &str| set_cookie_for_client(v.as_bytes()).map(|v| String::from_utf8(v).unwrap());
        assert_eq!(strip("a=1; Path=/; HttpOnly"), None);
        assert_eq!(
            strip("a=1; Domain=.jrps.example.org; Path=/; domain = x"),
            Some("a=1; Path=/".to_owned())
        );
    }

    #[test]
    fn hyper_path_request() {
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("host", "a.example"),
            ("connection", "keep-alive, Upgrade, x-secret, host"),
            ("upgrade", "websocket"),
            ("x-secret", "1"),
            ("cookie", "jrps_session=ab; _xsrf=1"),
            ("cookie", "b=2"),
            ("x-scheme", "http"),
            ("x-forwarded-for", "1.2.3.4"),
            ("x-kept", "1"),
        ] {
            headers.append(name, HeaderValue::from_static(value));
        }
        let forwarded_by = ForwardedBy {
            client_ip: "127.0.0.9",
            behind_tls: false,
            https: true,
        };
        let (headers, upgrade) = request_for_backend(headers, &forwarded_by, None);
        assert_eq!(upgrade.unwrap(), "websocket");
        assert_eq!(headers["host"], "a.example");
        assert_eq!(headers["cookie"], "_xsrf=1; b=2");
        assert_eq!(headers["x-forwarded-for"], "127.0.0.9");
        assert_eq!(headers["x-real-ip"], "127.0.0.9");
        assert_eq!(headers["x-forwarded-proto"], "https");
        assert_eq!(headers["x-forwarded-host"], "a.example");
        assert_eq!(headers["connection"], "upgrade");
        assert_eq!(headers["x-kept"], "1");
        assert!(headers.get("x-secret").is_none() && headers.get("x-scheme").is_none());
    }

    #[test]
    fn hyper_path_response() {
        let mut headers = HeaderMap::new();
        headers.append("connection", HeaderValue::from_static("x-hop"));
        headers.append("x-hop", HeaderValue::from_static("1"));
        headers.append("keep-alive", HeaderValue::from_static("timeout=5"));
        headers.append(
            "set-cookie",
            HeaderValue::from_static("a=1; Domain=example.org"),
        );
        headers.append("set-cookie", HeaderValue::from_static("b=2"));
        assert!(response_for_client(&mut headers).is_none());
        let cookies: Vec<_> = headers.get_all("set-cookie").iter().collect();
        assert_eq!(cookies, ["a=1", "b=2"]);
        assert!(headers.get("x-hop").is_none() && headers.get("keep-alive").is_none());
    }
}
