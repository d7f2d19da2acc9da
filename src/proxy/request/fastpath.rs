//! The fast path: simple HTTP/1.1 requests to a ready session, proxied by
//! hand on the connection's own task, the way nginx does it — read the
//! head, rewrite it into one buffer, write it to a pooled backend
//! connection, pass the answer back with its body bytes untouched.
//!
//! Why not hyper for these too: hyper's server, hyper-util's client and the
//! task and channels between them cost 5.5 µs of user CPU per request
//! against nginx's 2.4 µs on the same machine (BENCHMARKS.md); the kernel's
//! share was the same for both. Everything this path does not handle goes
//! to hyper, which then serves the rest of the connection, starting with
//! the bytes already read: HTTP/2, a head that did not arrive in one read,
//! HTTP/1.0, `Connection: close`, WebSocket upgrades, `Expect`, chunked
//! request bodies or any larger than what came with the head, no valid edge
//! cookie (`?token=`, the 403 page), sessions not ready (the starting page),
//! and the API. A request the fast path took is answered by it, a backend
//! it cannot reach with the same 502 page hyper's path shows.

use std::io::Write;
use std::mem::MaybeUninit;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

use bytes::{Buf, BytesMut};
use http_body_util::BodyExt;
use httparse::{Header, Status};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::api::{CHANNEL_PREFIX, SessionState};

use crate::clock::unix_now;
use crate::proxy::answers::failure::Failure;
use crate::proxy::answers::pages;
use crate::proxy::budget::InUse;
use crate::proxy::request::access_log;
use crate::proxy::request::edge_auth;
use crate::proxy::request::framing::{self, Framing};
use crate::proxy::request::plumbing::ConnInfo;
use crate::proxy::request::policy::{self, ConnectionTokens, ForwardedBy, RequestHeader};
use crate::proxy::request::routing::{self, Target};
use crate::proxy::request::scratch;
use crate::proxy::request::upstream::{
    self, MAX_HEADERS, Parsed, READ_CHUNK, Upstream, push_header,
};
use crate::proxy::shared::Shared;
use crate::proxy::store::Session;

/// How a connection left the fast path.
pub enum Outcome {
    /// The connection is finished.
    Closed,
    /// Hyper serves the rest, starting with the bytes still in the buffer.
    Fallback,
}

/// What the connection's owner and the fast path tell each other about
/// shutdown.
#[derive(Default)]
pub struct Flags {
    /// Waiting for the next request: nothing in flight, safe to drop.
    pub idle: AtomicBool,
    /// Shutdown started: finish this response, read no further request.
    pub stopping: AtomicBool,
}

/// A request whose head (rewritten for the backend) and body are in the
/// outgoing buffer.
struct Prepared {
    session: Arc<Session>,
    /// Its place in the session's budget of requests in flight.
    _in_use: InUse,
    backend: SocketAddr,
    /// May be sent again if a reused backend connection turns out closed.
    idempotent: bool,
    head: bool,
    /// Bytes of the read this request used (head and body).
    consumed: usize,
    /// Method and path for the access log, when it is on.
    log: Option<(String, String)>,
}

/// Serves requests on `client` until it closes, shutdown, or a request the
/// fast path leaves to hyper.
pub async fn serve<S>(
    shared: &Shared,
    conn: ConnInfo,
    client: &mut S,
    inbuf: &mut BytesMut,
    flags: &Flags,
) -> Outcome
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let ip = conn.peer.ip().to_string();
    // Allocated at the first request served here, not for connections
    // that go straight to hyper (WebSocket upgrades, `?token=`).
    let mut outgoing = Vec::new();
    let mut response_head = Vec::new();
    loop {
        let request = if inbuf.is_empty() {
            if flags.stopping.load(Relaxed) {
                return Outcome::Closed;
            }
            // Read through the thread's buffer: a connection between
            // requests holds no read buffer. Only bytes past the request
            // (pipelining) or a request left to hyper are kept.
            flags.idle.store(true, Relaxed);
            let next = std::future::poll_fn(|cx| {
                scratch::poll_read_with(cx, client, scratch::SIZE, |_, data| {
                    if data.is_empty() {
                        return Next::Closed;
                    }
                    match prepare(shared, &ip, data, &mut outgoing) {
                        Some(request) => {
                            inbuf.extend_from_slice(&data[request.consumed..]);
                            Next::Request(request)
                        }
                        None => {
                            inbuf.extend_from_slice(data);
                            Next::Fallback
                        }
                    }
                })
            })
            .await;
            flags.idle.store(false, Relaxed);
            match next {
                Ok(Next::Request(request)) => request,
                Ok(Next::Fallback) => return Outcome::Fallback,
                Ok(Next::Closed) | Err(_) => return Outcome::Closed,
            }
        } else {
            let Some(request) = prepare(shared, &ip, inbuf, &mut outgoing) else {
                return Outcome::Fallback;
            };
            inbuf.advance(request.consumed);
            request
        };
        let started = access_log::start(shared);
        let result = exchange(shared, client, &request, &outgoing, &mut response_head).await;
        let (status, keep_open) = match result {
            Exchange::Answered { status, keep_open } => (status, keep_open),
            Exchange::Broken => return Outcome::Closed,
        };
        let (method, path) = request.log.as_ref().map_or(("", ""), |(m, p)| (m, p));
        access_log::answered(
            shared,
            conn.peer.ip(),
            &request.session.alias,
            method,
            path,
            status,
            started,
        );
        if !keep_open {
            let _ = client.shutdown().await;
            return Outcome::Closed;
        }
        if flags.stopping.load(Relaxed) && inbuf.is_empty() {
            return Outcome::Closed;
        }
    }
}

/// Parses the request at the start of `inbuf` and, if the fast path can
/// serve it, writes the backend's version of it into `out`.
fn prepare(shared: &Shared, ip: &str, inbuf: &[u8], out: &mut Vec<u8>) -> Option<Prepared> {
    let https = shared.config.public_scheme_is_https();
    let rules = Rules {
        max_header_bytes: shared.config.limits.max_header_bytes,
        behind_tls: shared.config.behind_tls,
        https,
        client_ip: ip,
    };
    let max_requests = shared.config.limits.max_requests_per_session;
    let ((session, backend, in_use), taken) = take(inbuf, &rules, out, |request| {
        let mut alias_buf = [0u8; 64];
        let Target::Alias(alias) =
            routing::classify(&shared.config.domain, request.host, &mut alias_buf)
        else {
            return None;
        };
        let session = shared.store.get(alias)?;
        let now = unix_now();
        if session.state != SessionState::Ready || !session.is_live(now) {
            return None;
        }
        let backend = session.backend?;
        if !edge_auth::has_edge_cookie(request.cookie?, &session, https) {
            return None;
        }
        // A token to redeem for an app's own login: hyper's path sets it.
        if edge_auth::redeems_app_login(&session, request.path) {
            return None;
        }
        // Refused on hyper's path, with the page that says why.
        if !edge_auth::origin_allowed(
            request.method.as_bytes(),
            false,
            request.origin,
            request.host.as_bytes(),
            https,
        ) {
            return None;
        }
        // Over its budget: hyper's path answers 503.
        let in_use = session.load.try_request(max_requests, now)?;
        Some((session, backend, in_use))
    })?;
    Some(Prepared {
        _in_use: in_use,
        backend,
        idempotent: matches!(
            taken.method,
            "GET" | "HEAD" | "OPTIONS" | "TRACE" | "PUT" | "DELETE"
        ),
        head: taken.method == "HEAD",
        consumed: taken.consumed,
        log: shared
            .config
            .access_log
            .then(|| (taken.method.to_owned(), taken.path.to_owned())),
        session,
    })
}

/// What the fast path's rewriting depends on besides the request.
pub(crate) struct Rules<'a> {
    pub max_header_bytes: usize,
    pub behind_tls: bool,
    pub https: bool,
    pub client_ip: &'a str,
}

/// What the caller of [`take`] decides on: who the request is for and
/// what it carries to prove it may go there.
pub(crate) struct Candidate<'a> {
    pub method: &'a str,
    /// The request target, query included.
    pub path: &'a str,
    pub host: &'a str,
    pub cookie: Option<&'a [u8]>,
    pub origin: Option<&'a [u8]>,
}

/// What [`take`] took of the buffer.
pub(crate) struct Taken<'a> {
    pub method: &'a str,
    pub path: &'a str,
    /// Bytes of the buffer the request used (head and body).
    pub consumed: usize,
}

/// Parses the request at the start of `inbuf`; if it is one the fast path
/// serves and `admit` accepts it, writes the backend's version of it (the
/// [`forwarding`] policy applied to raw bytes) into `out`. `None`: hyper
/// serves it, from the same bytes.
pub(crate) fn take<'b, T>(
    inbuf: &'b [u8],
    rules: &Rules,
    out: &mut Vec<u8>,
    admit: impl FnOnce(&Candidate<'_>) -> Option<T>,
) -> Option<(T, Taken<'b>)> {
    let mut headers = [const { MaybeUninit::<Header<'_>>::uninit() }; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut []);
    let Ok(Status::Complete(head_len)) = req.parse_with_uninit_headers(inbuf, &mut headers) else {
        return None;
    };
    let (method, path) = (req.method?, req.path?);
    // The session's channel is the proxy's to answer, on hyper's path.
    if req.version != Some(1)
        || !path.starts_with('/')
        || method == "CONNECT"
        || path.starts_with(CHANNEL_PREFIX)
    {
        return None;
    }
    let mut host = None;
    let mut length = None;
    let mut cookie = None;
    let mut origin = None;
    let mut forwarded_for = None;
    let mut tokens = ConnectionTokens::default();
    for header in req.headers.iter() {
        let name = header.name;
        if name.eq_ignore_ascii_case("host") {
            if host.is_some() {
                return None;
            }
            host = Some(std::str::from_utf8(header.value).ok()?);
        } else if name.eq_ignore_ascii_case("content-length") {
            if length.is_some() {
                return None;
            }
            length = Some(framing::content_length(header.value)?);
        } else if name.eq_ignore_ascii_case("cookie") {
            if cookie.is_some() {
                return None;
            }
            cookie = Some(header.value);
        } else if name.eq_ignore_ascii_case("origin") {
            if origin.is_some() {
                return None;
            }
            origin = Some(header.value);
        } else if name.eq_ignore_ascii_case("connection") {
            tokens.add(header.value);
        } else if policy::is_one_of(name.as_bytes(), &["transfer-encoding", "upgrade", "expect"]) {
            return None;
        } else if name.eq_ignore_ascii_case("x-forwarded-for") && forwarded_for.is_none() {
            forwarded_for = Some(header.value);
        }
    }
    if tokens.close || tokens.upgrade {
        return None;
    }
    // Over the limit: hyper answers 431.
    if head_len > rules.max_header_bytes {
        return None;
    }
    let body_len = usize::try_from(length.unwrap_or(0)).ok()?;
    if body_len > inbuf.len() - head_len {
        return None;
    }
    let host = host?;
    let admitted = admit(&Candidate {
        method,
        path,
        host,
        cookie,
        origin,
    })?;

    out.clear();
    out.reserve(head_len + body_len + 256);
    out.extend_from_slice(method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(path.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    for header in req.headers.iter() {
        let (name, value) = (header.name.as_bytes(), header.value);
        match policy::request_header(name, &tokens, rules.behind_tls) {
            RequestHeader::Forward => push_header(out, name, value),
            RequestHeader::Cookie => {
                let mark = out.len();
                out.extend_from_slice(b"cookie: ");
                let start = out.len();
                policy::cookie_for_backend(value, out, start);
                if out.len() == start {
                    out.truncate(mark);
                } else {
                    out.extend_from_slice(b"\r\n");
                }
            }
            // Framing comes from what was parsed, below.
            RequestHeader::Length | RequestHeader::ForwardedFor | RequestHeader::Drop => {}
        }
    }
    if let Some(length) = length {
        // Writing into a Vec cannot fail.
        let _ = write!(out, "content-length: {length}\r\n");
    }
    let forwarded_by = ForwardedBy {
        client_ip: rules.client_ip,
        behind_tls: rules.behind_tls,
        https: rules.https,
    };
    forwarded_by.added_headers(host.as_bytes(), forwarded_for, |name, parts| {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        for part in parts {
            out.extend_from_slice(part);
        }
        out.extend_from_slice(b"\r\n");
    });
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(&inbuf[head_len..head_len + body_len]);
    Some((
        admitted,
        Taken {
            method,
            path,
            consumed: head_len + body_len,
        },
    ))
}

/// What the first read on an idle connection brought.
enum Next {
    Request(Prepared),
    /// A request for hyper; its bytes are in the connection's buffer.
    Fallback,
    Closed,
}

enum Exchange {
    Answered {
        status: u16,
        keep_open: bool,
    },
    /// The response broke off half-way: the client connection must close.
    Broken,
}

/// A backend's final response head, written in the client's form into the
/// outgoing buffer.
struct FinalHead {
    status: u16,
    framing: Framing,
    reusable: bool,
}

async fn exchange<S>(
    shared: &Shared,
    client: &mut S,
    request: &Prepared,
    outgoing: &[u8],
    response_head: &mut Vec<u8>,
) -> Exchange
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let answer = upstream::exchange(request.backend, outgoing, request.idempotent, |buf| {
        head_as_bytes(buf, request.head, response_head)
    })
    .await;
    let (
        mut up,
        FinalHead {
            status,
            mut framing,
            reusable,
        },
    ) = match answer {
        Ok(answer) => answer,
        Err(failed) => return bad_gateway(shared, client, request, &failed.to_string()).await,
    };

    // The head and whatever body bytes came with it, in one write.
    let complete = match pass_body(&mut framing, &mut up, response_head) {
        Ok(complete) => complete,
        // Nothing has gone to the client yet: it gets the 502 page.
        Err(_) => return bad_gateway(shared, client, request, "malformed chunked body").await,
    };
    if client.write_all(response_head).await.is_err() {
        return Exchange::Broken;
    }
    if !complete && stream_body(client, &mut framing, &mut up).await.is_err() {
        return Exchange::Broken;
    }
    if client.flush().await.is_err() {
        return Exchange::Broken;
    }
    let until_close = framing == Framing::UntilClose;
    if reusable && !until_close {
        upstream::checkin(request.backend, up);
    }
    Exchange::Answered {
        status,
        keep_open: !until_close,
    }
}

/// Parses a response head from `buf` and writes the client's version of it
/// into `out`.
fn head_as_bytes(buf: &[u8], request_is_head: bool, out: &mut Vec<u8>) -> Parsed<FinalHead> {
    upstream::parse_response(buf, request_is_head, |head| {
        let status = head.status;
        out.clear();
        out.extend_from_slice(b"HTTP/1.1 ");
        // httparse accepts exactly three digits.
        out.extend_from_slice(&[
            b'0' + (status / 100 % 10) as u8,
            b'0' + (status / 10 % 10) as u8,
            b'0' + (status % 10) as u8,
            b' ',
        ]);
        out.extend_from_slice(head.reason.as_bytes());
        out.extend_from_slice(b"\r\n");
        head.for_client(|name, value| push_header(out, name, value));
        match head.framing {
            Framing::Chunked(_) => out.extend_from_slice(b"transfer-encoding: chunked\r\n"),
            Framing::UntilClose => out.extend_from_slice(b"connection: close\r\n"),
            Framing::Empty | Framing::Length(_) => {}
        }
        out.extend_from_slice(b"\r\n");
        Some(FinalHead {
            status,
            framing: head.framing.clone(),
            reusable: head.reusable,
        })
    })
}

/// Moves the body bytes already in the backend's buffer into `out`.
/// Returns whether the body is complete.
fn pass_body(
    framing: &mut Framing,
    up: &mut Upstream,
    out: &mut Vec<u8>,
) -> Result<bool, framing::BadFraming> {
    let (take, complete) = framing.advance(&up.buf, |_| {})?;
    out.extend_from_slice(&up.buf[..take]);
    up.buf.advance(take);
    Ok(complete)
}

/// Copies the rest of the body from the backend to the client.
async fn stream_body<S>(client: &mut S, framing: &mut Framing, up: &mut Upstream) -> Result<(), ()>
where
    S: AsyncWrite + Unpin,
{
    loop {
        up.buf.reserve(READ_CHUNK);
        let n = up.stream.read_buf(&mut up.buf).await.map_err(|_| ())?;
        if n == 0 {
            // Only a close-delimited body may end with the connection.
            return if *framing == Framing::UntilClose {
                Ok(())
            } else {
                Err(())
            };
        }
        let (take, complete) = framing.advance(&up.buf, |_| {}).map_err(|_| ())?;
        client.write_all(&up.buf[..take]).await.map_err(|_| ())?;
        up.buf.advance(take);
        if complete {
            return Ok(());
        }
    }
}

/// Answers 502 with the proxy's page: the backend cannot be reached, or took
/// the request and gave no usable answer (and it may not be sent again).
async fn bad_gateway<S>(shared: &Shared, client: &mut S, request: &Prepared, why: &str) -> Exchange
where
    S: AsyncWrite + Unpin,
{
    shared.metrics.upstream_error();
    let alias = &*request.session.alias;
    tracing::warn!(alias, error = why, "backend unreachable");
    let (parts, body) = pages::page(Failure::BackendUnreachable, alias).into_parts();
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(never) => match never {},
    };
    let mut out = Vec::with_capacity(512 + body.len());
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(parts.status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(parts.status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
    for (name, value) in &parts.headers {
        push_header(&mut out, name.as_str().as_bytes(), value.as_bytes());
    }
    push_header(
        &mut out,
        b"content-length",
        body.len().to_string().as_bytes(),
    );
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(&body);
    if client.write_all(&out).await.is_err() || client.flush().await.is_err() {
        return Exchange::Broken;
    }
    Exchange::Answered {
        status: parts.status.as_u16(),
        keep_open: true,
    }
}
