//! Hand-written HTTP/1.1 on both sides of the proxy: a raw TCP backend that
//! answers with scripted responses, and a raw TLS client that writes
//! requests and parses answers itself. Tests built on these depend on what
//! goes over the wire, not on how the proxy is built.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio::time::timeout;
use tokio_rustls::client::TlsStream;

use super::backends::pattern_byte;
use super::harness::{DOMAIN, Proxy, h2_connect, random_token, tls_connect};

/// How long any single step may take before the test calls it a hang.
pub(crate) const WAIT: Duration = Duration::from_secs(5);

/// A message head: the request or status line and the header fields
/// (names lower-cased, values trimmed).
#[derive(Debug, Clone)]
pub(crate) struct Head {
    pub(crate) line: String,
    pub(crate) headers: Vec<(String, String)>,
}

impl Head {
    pub(crate) fn status(&self) -> u16 {
        self.line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
    }

    pub(crate) fn method(&self) -> &str {
        self.line.split(' ').next().unwrap_or("")
    }

    /// The request path without the query (which carries the token).
    pub(crate) fn path(&self) -> &str {
        let target = self.line.split(' ').nth(1).unwrap_or("");
        target.split('?').next().unwrap_or("")
    }

    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Whether any `Connection` field lists `token`.
    pub(crate) fn connection_lists(&self, token: &str) -> bool {
        self.headers
            .iter()
            .filter(|(n, _)| n == "connection")
            .flat_map(|(_, v)| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    }

    pub(crate) fn chunked(&self) -> bool {
        self.get("transfer-encoding")
            .is_some_and(|te| te.to_ascii_lowercase().contains("chunked"))
    }
}

#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) head: Head,
    pub(crate) body: Vec<u8>,
    /// Interim (1xx) statuses seen before the final one.
    pub(crate) interim: Vec<u16>,
}

impl Answer {
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

pub(crate) fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// One end of an HTTP/1.1 connection with its read buffer.
pub(crate) struct Wire<S> {
    pub(crate) io: S,
    pub(crate) buf: Vec<u8>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Wire<S> {
    pub(crate) fn new(io: S) -> Self {
        Wire {
            io,
            buf: Vec::new(),
        }
    }

    pub(crate) async fn send(&mut self, bytes: &[u8]) {
        self.io.write_all(bytes).await.unwrap();
        self.io.flush().await.unwrap();
    }

    /// Reads more bytes; false at EOF (a reset or missing close_notify
    /// counts as EOF too).
    pub(crate) async fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 16 * 1024];
        match self.io.read(&mut chunk).await {
            Ok(0) | Err(_) => false,
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                true
            }
        }
    }

    /// The next head, or None if the peer closes first.
    pub(crate) async fn head(&mut self) -> Option<Head> {
        loop {
            if let Some(end) = find(&self.buf, b"\r\n\r\n") {
                let text = String::from_utf8_lossy(&self.buf[..end]).into_owned();
                self.buf.drain(..end + 4);
                let mut lines = text.split("\r\n");
                let line = lines.next().unwrap_or("").to_owned();
                let headers = lines
                    .map(|l| {
                        let (n, v) = l
                            .split_once(':')
                            .unwrap_or_else(|| panic!("bad field {l:?}"));
                        (n.trim().to_ascii_lowercase(), v.trim().to_owned())
                    })
                    .collect();
                return Some(Head { line, headers });
            }
            if !self.fill().await {
                return None;
            }
        }
    }

    pub(crate) async fn exact(&mut self, n: usize) -> Vec<u8> {
        while self.buf.len() < n {
            assert!(
                self.fill().await,
                "EOF after {} of {n} bytes",
                self.buf.len()
            );
        }
        self.buf.drain(..n).collect()
    }

    pub(crate) async fn line(&mut self) -> String {
        loop {
            if let Some(i) = find(&self.buf, b"\r\n") {
                let line = String::from_utf8_lossy(&self.buf[..i]).into_owned();
                self.buf.drain(..i + 2);
                return line;
            }
            assert!(self.fill().await, "EOF inside chunked framing");
        }
    }

    /// The body `head` frames (chunked is decoded, trailers skipped); with
    /// neither Content-Length nor chunked, everything up to EOF if `to_eof`
    /// (responses), else nothing (requests).
    pub(crate) async fn body(&mut self, head: &Head, to_eof: bool) -> Vec<u8> {
        if head.chunked() {
            let mut body = Vec::new();
            loop {
                let line = self.line().await;
                let size = line.split(';').next().unwrap_or("").trim();
                let size = usize::from_str_radix(size, 16)
                    .unwrap_or_else(|_| panic!("bad chunk size line {line:?}"));
                if size == 0 {
                    while !self.line().await.is_empty() {}
                    return body;
                }
                body.extend(self.exact(size).await);
                assert_eq!(self.line().await, "", "chunk data not followed by CRLF");
            }
        }
        if let Some(len) = head.get("content-length") {
            return self.exact(len.parse().unwrap()).await;
        }
        if to_eof {
            while self.fill().await {}
            return std::mem::take(&mut self.buf);
        }
        Vec::new()
    }

    /// The final response (1xx skipped and recorded), within [`WAIT`]; no
    /// body for HEAD, 204 and 304.
    pub(crate) async fn answer(&mut self, head_request: bool) -> Answer {
        self.try_answer(head_request)
            .await
            .expect("connection closed before a response")
    }

    /// Like [`Wire::answer`], but None if the proxy closes first.
    pub(crate) async fn try_answer(&mut self, head_request: bool) -> Option<Answer> {
        let mut interim = Vec::new();
        loop {
            let head = timeout(WAIT, self.head())
                .await
                .expect("no response in time")?;
            let status = head.status();
            if (100..200).contains(&status) && status != 101 {
                interim.push(status);
                continue;
            }
            let body = if head_request || status == 204 || status == 304 {
                Vec::new()
            } else {
                timeout(WAIT, self.body(&head, true))
                    .await
                    .expect("body not finished in time")
            };
            return Some(Answer {
                head,
                body,
                interim,
            });
        }
    }

    /// Whether the peer closes within [`WAIT`] without sending anything more.
    pub(crate) async fn closes(&mut self) -> bool {
        timeout(WAIT, async { while self.fill().await {} })
            .await
            .is_ok()
            && self.buf.is_empty()
    }
}

/// What the raw backend received: the head as it arrived and the decoded
/// body.
#[derive(Debug, Clone)]
pub(crate) struct Seen {
    pub(crate) head: Head,
    pub(crate) body: Vec<u8>,
}

/// What the raw backend writes back.
pub(crate) struct Reply {
    pub(crate) bytes: Vec<u8>,
    /// Close the connection after writing (without saying so).
    pub(crate) close: bool,
    pub(crate) delay: Duration,
}

pub(crate) fn reply(bytes: impl Into<Vec<u8>>) -> Reply {
    Reply {
        bytes: bytes.into(),
        close: false,
        delay: Duration::ZERO,
    }
}

/// `200 OK` with a Content-Length body.
pub(crate) fn ok(body: impl AsRef<[u8]>) -> Reply {
    let body = body.as_ref();
    let mut bytes =
        format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
    bytes.extend_from_slice(body);
    reply(bytes)
}

/// A backend on 127.0.0.1:0 speaking HTTP/1.1 by hand: it reads each
/// request (answering `Expect: 100-continue` first), records it, and writes
/// what `answer` says, byte for byte.
pub(crate) struct RawBackend {
    pub(crate) port: u16,
    pub(crate) seen: Arc<Mutex<Vec<Seen>>>,
    pub(crate) task: JoinHandle<()>,
}

impl RawBackend {
    pub(crate) fn seen(&self) -> Vec<Seen> {
        let seen = self.seen.lock().unwrap();
        seen.iter()
            .filter(|s| s.head.path() != LOGIN_PATH)
            .cloned()
            .collect()
    }
}

impl Drop for RawBackend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub(crate) async fn raw_backend<F>(answer: F) -> RawBackend
where
    F: Fn(&Seen) -> Reply + Send + Sync + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let answer = Arc::new(answer);
    let log = seen.clone();
    let task = tokio::spawn(async move {
        let mut connections = tokio::task::JoinSet::new();
        while let Ok((stream, _)) = listener.accept().await {
            let (answer, log) = (answer.clone(), log.clone());
            connections.spawn(async move {
                let mut wire = Wire::new(stream);
                while let Some(head) = wire.head().await {
                    if head
                        .get("expect")
                        .is_some_and(|e| e.eq_ignore_ascii_case("100-continue"))
                    {
                        wire.send(b"HTTP/1.1 100 Continue\r\n\r\n").await;
                    }
                    let body = wire.body(&head, false).await;
                    let seen = Seen { head, body };
                    log.lock().unwrap().push(seen.clone());
                    let reply = answer(&seen);
                    tokio::time::sleep(reply.delay).await;
                    if wire.io.write_all(&reply.bytes).await.is_err() || reply.close {
                        let _ = wire.io.shutdown().await;
                        return;
                    }
                }
            });
        }
    });
    RawBackend { port, seen, task }
}

/// The path of the one request that trades the token for the edge cookie;
/// the backends' logs leave it out.
pub(crate) const LOGIN_PATH: &str = "/.login";

/// A ready session and its edge cookie, for writing requests by hand.
/// Requests carry the cookie, as a browser's do after its first request, so
/// they take the proxy's fast path wherever it applies.
pub(crate) struct Site {
    pub(crate) alias: String,
    pub(crate) cookie: String,
}

impl Site {
    pub(crate) async fn new(proxy: &Proxy, port: u16) -> Site {
        let token = random_token();
        let created = proxy.ready_session(&token, port).await;
        let mut site = Site {
            alias: created.alias,
            cookie: String::new(),
        };
        let mut wire = site.connect(proxy).await;
        let login = format!(
            "GET {LOGIN_PATH}?token={token} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            site.host()
        );
        wire.send(login.as_bytes()).await;
        // Only the head: some backends here answer with broken bodies.
        let head = timeout(WAIT, wire.head()).await.unwrap().unwrap();
        // The proxy's own, after any the backend set.
        let set_cookie = head
            .headers
            .iter()
            .rev()
            .find(|(name, _)| name == "set-cookie")
            .map(|(_, value)| value)
            .expect("login sets the cookie");
        site.cookie = set_cookie.split(';').next().unwrap().to_owned();
        site
    }

    pub(crate) fn host(&self) -> String {
        format!("{}.{DOMAIN}", self.alias)
    }

    /// `METHOD path HTTP/1.1`, Host, the edge cookie, `headers` (each
    /// ending in CRLF), then `body` as given.
    pub(crate) fn request(&self, method: &str, path: &str, headers: &str, body: &[u8]) -> Vec<u8> {
        let mut bytes = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nCookie: {}\r\n{headers}\r\n",
            self.host(),
            self.cookie
        )
        .into_bytes();
        bytes.extend_from_slice(body);
        bytes
    }

    pub(crate) fn get(&self, path: &str) -> Vec<u8> {
        self.request("GET", path, "", b"")
    }

    /// A fresh TLS connection to the proxy for this site.
    pub(crate) async fn connect(&self, proxy: &Proxy) -> Wire<TlsStream<TcpStream>> {
        let tcp = TcpStream::connect(proxy.addr).await.unwrap();
        Wire::new(tls_connect(&proxy.ca, tcp, &self.host()).await)
    }

    /// A fresh HTTP/2 connection to the proxy for this site, the way a
    /// browser talks to it.
    pub(crate) async fn connect_h2(&self, proxy: &Proxy) -> H2 {
        let tcp = TcpStream::connect(proxy.addr).await.unwrap();
        let tls = h2_connect(&proxy.ca, tcp, &self.host()).await;
        let (sender, connection) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
                .await
                .unwrap();
        tokio::spawn(connection);
        H2 {
            sender,
            authority: format!("{}:{}", self.host(), proxy.addr.port()),
            cookie: self.cookie.clone(),
        }
    }

    /// GET `path` on `wire`; asserts a 200 whose body is `path`.
    pub(crate) async fn expect_echo(&self, wire: &mut Wire<TlsStream<TcpStream>>, path: &str) {
        wire.send(&self.get(path)).await;
        let answer = wire.answer(false).await;
        assert_eq!(answer.head.status(), 200, "{path}: {answer:?}");
        assert_eq!(answer.text(), path);
    }
}

/// One HTTP/2 connection to a site, with its edge cookie.
pub(crate) struct H2 {
    sender: hyper::client::conn::http2::SendRequest<Empty<Bytes>>,
    authority: String,
    cookie: String,
}

/// An answer over HTTP/2; `body` is an error if the stream ended short.
#[derive(Debug)]
pub(crate) struct H2Answer {
    pub(crate) status: u16,
    pub(crate) headers: http::HeaderMap,
    pub(crate) body: Result<Vec<u8>, String>,
}

impl H2 {
    pub(crate) async fn send(&mut self, method: &str, path: &str) -> H2Answer {
        self.try_send(method, path).await.unwrap()
    }

    /// Like [`send`](Self::send), but a stream reset before the response
    /// head is an `Err`.
    pub(crate) async fn try_send(&mut self, method: &str, path: &str) -> Result<H2Answer, String> {
        let request = http::Request::builder()
            .method(method)
            .uri(format!("https://{}{path}", self.authority))
            .header("cookie", &self.cookie)
            .body(Empty::new())
            .unwrap();
        let response = timeout(WAIT, self.sender.send_request(request))
            .await
            .expect("no answer in time")
            .map_err(|e| e.to_string())?;
        let (parts, body) = response.into_parts();
        let body = timeout(WAIT, body.collect())
            .await
            .expect("body did not end in time")
            .map(|b| b.to_bytes().to_vec())
            .map_err(|e| e.to_string());
        Ok(H2Answer {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body,
        })
    }
}

/// Answers `200` with the request path as the body.
pub(crate) fn echo_path(seen: &Seen) -> Reply {
    ok(seen.head.path())
}

pub(crate) fn digest(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

pub(crate) fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(pattern_byte).collect()
}
