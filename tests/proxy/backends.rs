//! In-test origins on 127.0.0.1:0: an HTTP backend (echo, big streamed
//! bodies, header dump, slow answer) and a WebSocket echo backend.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http::{Request, Response};
use http_body_util::{BodyExt, Either, Full};
use hyper::body::{Body, Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// A running backend; aborting the task and dropping the listener kills it.
pub struct Backend {
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Backend {
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Stops accepting; open connections are dropped with the task.
    pub fn kill(self) {
        self.task.abort();
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A body of `remaining` bytes (a repeating pattern) made 64 KiB at a time,
/// so the backend never holds it whole.
pub struct Pattern {
    pub remaining: usize,
    pub offset: usize,
}

pub fn pattern_byte(i: usize) -> u8 {
    (i % 251) as u8
}

impl Body for Pattern {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.remaining == 0 {
            return Poll::Ready(None);
        }
        let n = self.remaining.min(64 * 1024);
        let chunk: Vec<u8> = (self.offset..self.offset + n).map(pattern_byte).collect();
        self.remaining -= n;
        self.offset += n;
        Poll::Ready(Some(Ok(Frame::data(Bytes::from(chunk)))))
    }
}

type BackendBody = Either<Either<Incoming, Pattern>, Full<Bytes>>;

async fn http_service(
    name: &'static str,
    peer: SocketAddr,
    req: Request<Incoming>,
) -> Result<Response<BackendBody>, Infallible> {
    let path = req.uri().path().to_owned();
    let query = req.uri().query().unwrap_or("").to_owned();
    let text = |s: String| Response::new(Either::Right(Full::new(Bytes::from(s))));
    Ok(match path.as_str() {
        // Streams the request body straight back.
        "/echo" => Response::new(Either::Left(Either::Left(req.into_body()))),
        "/big" => {
            let n: usize = query
                .split('&')
                .find_map(|pair| pair.strip_prefix("n="))
                .and_then(|n| n.parse().ok())
                .unwrap_or(1 << 20);
            Response::new(Either::Left(Either::Right(Pattern {
                remaining: n,
                offset: 0,
            })))
        }
        "/headers" => {
            let headers: serde_json::Map<String, serde_json::Value> = req
                .headers()
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_owned(),
                        serde_json::Value::String(v.to_str().unwrap_or("?").to_owned()),
                    )
                })
                .collect();
            text(serde_json::to_string(&headers).unwrap())
        }
        // Which proxy-side socket this request came over (pooling check).
        "/peer" => text(peer.to_string()),
        "/slow" => {
            tokio::time::sleep(Duration::from_millis(1500)).await;
            text(format!("{name} slow done"))
        }
        "/count" => {
            // Consumes the body and reports its size (upload streaming).
            let mut body = req.into_body();
            let mut total = 0usize;
            while let Some(frame) = body.frame().await {
                if let Ok(data) = frame.map(|f| f.into_data()) {
                    total += data.map_or(0, |d| d.len());
                }
            }
            text(format!("{total}"))
        }
        _ => text(format!("hello from {name} path={path}")),
    })
}

pub async fn http_backend(name: &'static str) -> Backend {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let mut connections = tokio::task::JoinSet::new();
        loop {
            let Ok((stream, peer)) = listener.accept().await else {
                return;
            };
            connections.spawn(async move {
                let service = service_fn(move |req| http_service(name, peer, req));
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Backend { addr, task }
}

/// Echoes every text and binary message; answers close with close.
pub async fn websocket_backend() -> Backend {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let mut connections = tokio::task::JoinSet::new();
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            connections.spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
                    return;
                };
                while let Some(Ok(message)) = ws.next().await {
                    if message.is_text() || message.is_binary() {
                        if ws.send(message).await.is_err() {
                            return;
                        }
                    } else if message.is_close() {
                        let _ = ws.close(None).await;
                        return;
                    }
                }
            });
        }
    });
    Backend { addr, task }
}
