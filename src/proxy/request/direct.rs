//! HTTP/2 GET and HEAD requests without a body (a browser's page loads and
//! API reads), sent by the stream's own task on the fast path's pooled
//! backend connections ([`upstream`]), the answer's body read from the
//! backend as hyper's server asks for it. hyper-util's client would send
//! each through its pool's lock, a channel to the connection's own task and
//! back, and a channel for the body; under h2load its connection tasks were
//! 42 % of the proxy's samples, and this path took CPU per request from
//! 39.7 to 30.9 µs (BENCHMARKS.md, "HTTP/2 over TLS"). Requests with a body, and
//! upgrades, still go through hyper's client ([`crate::proxy::request::relay`]):
//! streaming a client's body while the answer may already come is what it
//! is for.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http::header::{HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode, Version, request};
use hyper::body::{Body, Frame, SizeHint};

use crate::proxy::request::framing::Framing;
use crate::proxy::request::upstream::{self, Failed, Parsed, READ_CHUNK, Upstream, push_header};

/// Whether a request goes this way: HTTP/2, GET or HEAD, no body, no
/// upgrade. HTTP/1.1 requests here are the few the fast path left to hyper,
/// and stay on hyper's client: hyper's HTTP/1.1 server drops a response head
/// it has not yet flushed when the body fails at once, and that client's
/// channel is what gives the head time to go out.
pub fn takes(request: &Request<impl Body>, upgrade: bool) -> bool {
    request.version() == Version::HTTP_2
        && !upgrade
        && (request.method() == Method::GET || request.method() == Method::HEAD)
        && request.body().is_end_stream()
}

/// Sends the request (its headers already the backend's, by the
/// [`crate::proxy::request::policy`] policy) to `backend` and returns the answer, its headers
/// the client's by the same policy; its body streams from the backend.
pub async fn forward(
    backend: SocketAddr,
    parts: &request::Parts,
) -> Result<Response<DirectBody>, Failed> {
    let request_is_head = parts.method == Method::HEAD;
    let request = request_head(parts);
    let (up, (response, framing, reusable)) = upstream::exchange(backend, &request, true, |buf| {
        head_as_response(buf, request_is_head)
    })
    .await?;
    let mut body = DirectBody {
        backend,
        up: Some(up),
        framing,
        reusable,
    };
    if matches!(body.framing, Framing::Empty | Framing::Length(0)) {
        body.finish();
    }
    Ok(response.map(|()| body))
}

/// The request as the backend gets it: HTTP/1.1, origin-form.
fn request_head(parts: &request::Parts) -> Vec<u8> {
    let mut out = Vec::with_capacity(512);
    out.extend_from_slice(parts.method.as_str().as_bytes());
    out.push(b' ');
    let target = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    for (name, value) in &parts.headers {
        push_header(&mut out, name.as_str().as_bytes(), value.as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out
}

type Head = (Response<()>, Framing, bool);

/// Parses a response head from `buf` into the client's version of it.
fn head_as_response(buf: &[u8], request_is_head: bool) -> Parsed<Head> {
    upstream::parse_response(buf, request_is_head, |head| {
        let mut response = Response::new(());
        *response.status_mut() = StatusCode::from_u16(head.status).ok()?;
        let headers = response.headers_mut();
        headers.reserve(head.fields());
        let mut valid = true;
        head.for_client(|name, value| {
            match (HeaderName::from_bytes(name), HeaderValue::from_bytes(value)) {
                (Ok(name), Ok(value)) => {
                    headers.append(name, value);
                }
                _ => valid = false,
            }
        });
        valid.then(|| (response, head.framing.clone(), head.reusable))
    })
}

/// A response body read from the backend connection as it is polled; the
/// connection goes back to the pool when the body is complete, and is closed
/// if the body is dropped before.
pub struct DirectBody {
    backend: SocketAddr,
    /// `None` once the body is complete or broken.
    up: Option<Upstream>,
    framing: Framing,
    reusable: bool,
}

impl DirectBody {
    fn finish(&mut self) {
        if let Some(up) = self.up.take()
            && self.reusable
            && self.framing != Framing::UntilClose
        {
            upstream::checkin(self.backend, up);
        }
    }

    fn fail(&mut self, error: io::Error) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        self.up = None;
        Poll::Ready(Some(Err(error)))
    }
}

impl Body for DirectBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = &mut *self;
        loop {
            let Some(up) = this.up.as_mut() else {
                return Poll::Ready(None);
            };
            if !up.buf.is_empty() {
                let mut first = None;
                let mut more = Vec::new();
                let advanced = this.framing.advance(&up.buf, |range| {
                    if first.is_none() {
                        first = Some(range);
                    } else {
                        more.push(range);
                    }
                });
                let Ok((used, complete)) = advanced else {
                    let error =
                        io::Error::new(io::ErrorKind::InvalidData, "malformed chunked body");
                    return this.fail(error);
                };
                let taken = up.buf.split_to(used).freeze();
                let data = match first {
                    Some(range) if more.is_empty() => taken.slice(range),
                    Some(range) => {
                        let mut joined = BytesMut::from(&taken[range]);
                        for range in more {
                            joined.extend_from_slice(&taken[range]);
                        }
                        joined.freeze()
                    }
                    None => Bytes::new(),
                };
                if complete {
                    this.finish();
                }
                if !data.is_empty() {
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                continue;
            }
            up.buf.reserve(READ_CHUNK);
            if let Err(error) = std::task::ready!(up.stream.poll_read_ready(cx)) {
                return this.fail(error);
            }
            match up.stream.try_read_buf(&mut up.buf) {
                Ok(0) if this.framing == Framing::UntilClose => {
                    this.up = None;
                    return Poll::Ready(None);
                }
                Ok(0) => {
                    let error = io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "backend closed before the body's end",
                    );
                    return this.fail(error);
                }
                Ok(_) => {}
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
                Err(error) => return this.fail(error),
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.up.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        match (&self.up, &self.framing) {
            (None, _) => SizeHint::with_exact(0),
            (Some(_), Framing::Length(remaining)) => SizeHint::with_exact(*remaining),
            _ => SizeHint::default(),
        }
    }
}
