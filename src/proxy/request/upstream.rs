//! Keep-alive connections to backends for the fast path: one small pool per
//! worker thread, so taking and returning a connection is a thread-local
//! vector push and pop, with no lock, no channel and no task of its own;
//! and [`exchange`], one request's trip over them up to the response head,
//! for the fast path and for [`crate::proxy::request::direct`]. (Requests with bodies and
//! upgrades from hyper's server go through hyper's client and its pool, in
//! [`crate::proxy::request::relay`].)

use std::cell::RefCell;
use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::task::{Context, Waker};
use std::time::{Duration, Instant};

use std::mem::MaybeUninit;

use bytes::{Buf, BytesMut};
use httparse::{Header, Status};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::proxy::request::framing::{self, Framing};
use crate::proxy::request::policy::{self, ConnectionTokens, ResponseHeader};

/// A connection idle longer than this is closed rather than reused; the
/// backend may be about to close it itself.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Idle connections kept per backend and worker thread, by this pool and by
/// the hyper path's ([`crate::proxy::request::relay`]). High, so that a burst's
/// connections stay for the next one instead of being closed and opened
/// again: an HTTP/2 browser or h2load sends hundreds of requests at once
/// over a few connections, and at a cap of 64 the hyper path closed and
/// reopened about 230 backend connections a second, which halved its
/// HTTP/2 throughput (BENCHMARKS.md, "HTTP/2 over TLS"). Idle ones still close after
/// [`IDLE_TIMEOUT`].
pub(super) const MAX_IDLE: usize = 1024;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest read from a backend at a time.
pub(super) const READ_CHUNK: usize = 8 * 1024;
/// A backend's response head larger than this is answered with 502.
const MAX_RESPONSE_HEAD: usize = 64 * 1024;
/// Header fields a parsed head may have (the fast path's requests, every
/// backend response); one with more is refused.
pub(super) const MAX_HEADERS: usize = 64;
/// Tries one request gets, when the pooled connections it was sent on turn
/// out closed.
const ATTEMPTS: u32 = 3;

/// One connection to a backend, with what has been read from it but not yet
/// passed on.
pub struct Upstream {
    pub stream: TcpStream,
    pub buf: BytesMut,
    /// Whether it has carried a request before (a stale reused connection
    /// may be retried; a fresh one that fails means the backend is down).
    pub reused: bool,
    idle_since: Instant,
}

thread_local! {
    static IDLE: RefCell<Pool> = RefCell::new(Pool {
        idle: HashMap::new(),
        pruned: Instant::now(),
    });
}

struct Pool {
    idle: HashMap<SocketAddr, Vec<Upstream>>,
    pruned: Instant,
}

impl Pool {
    /// Closes every connection that is too old or closed by its backend,
    /// so backends of ended sessions do not keep descriptors open here.
    fn prune(&mut self) {
        let mut cx = Context::from_waker(Waker::noop());
        self.idle.retain(|_, list| {
            list.retain_mut(|up| {
                up.idle_since.elapsed() <= IDLE_TIMEOUT
                    && up.stream.poll_read_ready(&mut cx).is_pending()
            });
            !list.is_empty()
        });
        self.pruned = Instant::now();
    }
}

/// The most recently used idle connection to `backend`, if one is still
/// usable. A connection the backend closed (or sent unasked bytes on) shows
/// as readable in the reactor's cached readiness, which costs no system call
/// to look at; one that closed too recently to show is caught by the
/// caller's retry.
pub fn checkout(backend: SocketAddr) -> Option<Upstream> {
    IDLE.with_borrow_mut(|pool| {
        let list = pool.idle.get_mut(&backend)?;
        let mut cx = Context::from_waker(Waker::noop());
        while let Some(mut up) = list.pop() {
            if up.idle_since.elapsed() > IDLE_TIMEOUT {
                continue;
            }
            if up.stream.poll_read_ready(&mut cx).is_ready() {
                continue;
            }
            up.reused = true;
            return Some(up);
        }
        None
    })
}

/// Returns a connection whose last response was read completely.
pub fn checkin(backend: SocketAddr, mut up: Upstream) {
    if !up.buf.is_empty() {
        return;
    }
    up.idle_since = Instant::now();
    IDLE.with_borrow_mut(|pool| {
        if up.idle_since.duration_since(pool.pruned) > IDLE_TIMEOUT {
            pool.prune();
        }
        let list = pool.idle.entry(backend).or_default();
        if list.len() >= MAX_IDLE {
            list.remove(0);
        }
        list.push(up);
    });
}

pub async fn connect(backend: SocketAddr) -> io::Result<Upstream> {
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(backend))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))??;
    stream.set_nodelay(true)?;
    Ok(Upstream {
        stream,
        buf: BytesMut::new(),
        reused: false,
        idle_since: Instant::now(),
    })
}

/// What a response-head parser found at the start of a backend's buffer.
pub enum Parsed<T> {
    /// A final response, whose head was `len` bytes.
    Final {
        len: usize,
        head: T,
    },
    /// A 1xx interim response of `len` bytes, dropped like hyper's client
    /// drops it.
    Interim {
        len: usize,
    },
    Incomplete,
    Malformed,
}

/// A backend's final response head, as parsed.
pub struct ResponseHead<'a> {
    pub status: u16,
    pub reason: &'a str,
    pub framing: Framing,
    /// Whether the connection may carry another request after this body.
    pub reusable: bool,
    headers: &'a [Header<'a>],
    tokens: ConnectionTokens<'a>,
}

impl ResponseHead<'_> {
    /// How many header fields the backend sent.
    pub fn fields(&self) -> usize {
        self.headers.len()
    }

    /// The header fields the client gets, by the [`forwarding`] policy,
    /// each given to `add` as name and value.
    pub fn for_client(&self, mut add: impl FnMut(&[u8], &[u8])) {
        let chunked = matches!(self.framing, Framing::Chunked(_));
        for header in self.headers {
            let name = header.name.as_bytes();
            match policy::response_header(name, &self.tokens) {
                // A chunked body's length is the client connection's business.
                ResponseHeader::Forward
                    if chunked && name.eq_ignore_ascii_case(b"content-length") => {}
                ResponseHeader::Forward => add(name, header.value),
                ResponseHeader::SetCookie => match policy::set_cookie_for_client(header.value) {
                    Some(value) => add(name, &value),
                    None => add(name, header.value),
                },
                ResponseHeader::Drop => {}
            }
        }
    }
}

/// Parses a response head at the start of `buf`, the answer to a request
/// that was HEAD if `request_is_head`. A final head is given to `build`,
/// whose `None` makes it malformed.
pub fn parse_response<T>(
    buf: &[u8],
    request_is_head: bool,
    build: impl FnOnce(&ResponseHead<'_>) -> Option<T>,
) -> Parsed<T> {
    let mut headers = [const { MaybeUninit::<Header<'_>>::uninit() }; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut []);
    let parsed = httparse::ParserConfig::default().parse_response_with_uninit_headers(
        &mut resp,
        buf,
        &mut headers,
    );
    let len = match parsed {
        Ok(Status::Complete(len)) => len,
        Ok(Status::Partial) => return Parsed::Incomplete,
        Err(_) => return Parsed::Malformed,
    };
    let Some(status) = resp.code else {
        return Parsed::Malformed;
    };
    // 101 was never asked for: upgrades go through hyper's client.
    if status == 101 {
        return Parsed::Malformed;
    }
    if (100..200).contains(&status) {
        return Parsed::Interim { len };
    }
    let Ok(framing) = framing::response_framing(request_is_head, status, resp.headers) else {
        return Parsed::Malformed;
    };
    let tokens = ConnectionTokens::parse(
        resp.headers
            .iter()
            .filter(|h| h.name.eq_ignore_ascii_case("connection"))
            .map(|h| h.value),
    );
    let head = ResponseHead {
        status,
        reason: resp.reason.unwrap_or(""),
        framing,
        reusable: resp.version == Some(1) && !tokens.close,
        headers: resp.headers,
        tokens,
    };
    match build(&head) {
        Some(head) => Parsed::Final { len, head },
        None => Parsed::Malformed,
    }
}

/// Why a request got no usable answer from its backend.
#[derive(Debug, thiserror::Error)]
pub enum Failed {
    #[error("connect: {0}")]
    Connect(io::Error),
    #[error("send: {0}")]
    Send(io::Error),
    #[error("connection closed before a response")]
    Closed,
    #[error("malformed response head")]
    Malformed,
    #[error("response head too large")]
    TooLarge,
}

/// Sends `request` (head and body, as the backend gets them) on a pooled
/// connection to `backend`, or a new one, and reads until `parse` finds a
/// final response head; the connection's buffer then starts after it. A
/// pooled connection that turns out closed is replaced: always if it did
/// not take the request, and if it took it but answered nothing, only for
/// an `idempotent` request.
pub async fn exchange<T>(
    backend: SocketAddr,
    request: &[u8],
    idempotent: bool,
    mut parse: impl FnMut(&[u8]) -> Parsed<T>,
) -> Result<(Upstream, T), Failed> {
    let mut attempts = 0;
    'attempt: loop {
        attempts += 1;
        let mut up = match checkout(backend) {
            Some(up) => up,
            None => connect(backend).await.map_err(Failed::Connect)?,
        };
        if let Err(error) = up.stream.write_all(request).await {
            // The backend did not take the whole request: safe to resend.
            if up.reused && attempts < ATTEMPTS {
                continue;
            }
            return Err(Failed::Send(error));
        }
        loop {
            match parse(&up.buf) {
                Parsed::Final { len, head } => {
                    up.buf.advance(len);
                    return Ok((up, head));
                }
                Parsed::Interim { len } => {
                    up.buf.advance(len);
                    continue;
                }
                Parsed::Malformed => return Err(Failed::Malformed),
                Parsed::Incomplete if up.buf.len() > MAX_RESPONSE_HEAD => {
                    return Err(Failed::TooLarge);
                }
                Parsed::Incomplete => {}
            }
            up.buf.reserve(READ_CHUNK);
            match up.stream.read_buf(&mut up.buf).await {
                Ok(n) if n > 0 => {}
                // A pooled connection the backend had closed: an idempotent
                // request goes again on another.
                _ if up.buf.is_empty() && up.reused && idempotent && attempts < ATTEMPTS => {
                    continue 'attempt;
                }
                _ => return Err(Failed::Closed),
            }
        }
    }
}
/// Appends one `name: value` line of an HTTP/1.1 head to `out`.
pub fn push_header(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}
