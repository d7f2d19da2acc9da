//! Sockets and connections: the accept loop with its connection cap, TLS
//! (rustls on ring, certificate reloadable on SIGHUP), the HTTP/1.1 + HTTP/2
//! server settings (header size, header-read timeout), the idle timeout, and
//! graceful shutdown. What a request means is the handler's business.

mod header_blocks;
mod idle;
mod tls;
pub(super) mod workers;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;

pub(crate) use tls::{Tls, TlsError};

use crate::proxy::limits::Limits;
use crate::proxy::request::fastpath::{self, Outcome};
use crate::proxy::request::handler;
use crate::proxy::request::plumbing::ConnInfo;
use crate::proxy::shared::Shared;
use idle::{ClientIo, ConnActivity, Tracked};
use workers::{Accepted, Slots};

/// Streams one HTTP/2 connection may have open at once (hyper's default is
/// 200); a browser opens a few dozen for JupyterLab's first load.
const MAX_CONCURRENT_STREAMS: u32 = 100;

/// The HTTP server settings shared by every connection.
pub fn http_builder(limits: &Limits) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_header_bytes);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(limits.max_header_bytes.min(u32::MAX as usize) as u32)
        .max_concurrent_streams(MAX_CONCURRENT_STREAMS)
        // PINGs find dead peers; they do not count as activity (`ConnActivity`).
        .keep_alive_interval(Duration::from_secs(30));
    builder
}

/// Accepts connections until the future is dropped. At most
/// `max_connections` connections (HTTP connections plus WebSocket tunnels;
/// the API listener has `max_api_connections` of its own) are open at once;
/// beyond that, new ones wait in the kernel's backlog. A connection from an
/// address that already holds `max_connections_per_address` is closed.
///
/// Only the main thread accepts. Each public connection goes to the first
/// worker not much busier than the least loaded one (`Shared::pick_worker`):
/// light load stays on the first worker (one backend pool, no cross-thread
/// hand-off), heavy load spreads evenly.
pub async fn accept_loop(
    shared: &Arc<Shared>,
    listener: &TcpListener,
    tls: Option<&Arc<Tls>>,
    api_only: bool,
    graceful: &GracefulShutdown,
) {
    let listener_slots = if api_only {
        &shared.api_slots
    } else {
        &shared.slots
    };
    loop {
        let Ok(permit) = listener_slots.clone().acquire_owned().await else {
            return;
        };
        let (stream, peer) = match listener.accept().await {
            Ok(pair) => pair,
            Err(error) => {
                // Out of file descriptors and the like: back off briefly
                // rather than spin.
                tracing::warn!(%error, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        // Over its address's budget: closed at once, so it holds nothing
        // that others are waiting for.
        let Some(address) = shared.addresses.try_take(peer.ip()) else {
            tracing::debug!(%peer, "connection refused: address over max_connections_per_address");
            continue;
        };
        let slots = Slots {
            _listener: permit,
            _address: address,
        };
        let _ = stream.set_nodelay(true);
        let worker = if api_only {
            0
        } else {
            workers::pick(&shared.workers)
        };
        if worker != 0 {
            match stream.into_std() {
                Ok(stream) => {
                    shared.workers[worker].load.fetch_add(1, Relaxed);
                    let accepted = Accepted {
                        stream,
                        peer,
                        slots,
                    };
                    if let Some(handoff) = &shared.workers[worker].handoff
                        && handoff.send(accepted).is_err()
                    {
                        shared.workers[worker].load.fetch_sub(1, Relaxed);
                    }
                }
                Err(error) => tracing::debug!(%peer, %error, "cannot hand over a connection"),
            }
            continue;
        }
        shared.workers[0].load.fetch_add(1, Relaxed);
        spawn_connection(shared, 0, stream, peer, slots, tls, api_only, graceful);
    }
}

/// A worker's side of [`accept_loop`]: serves the connections handed to it
/// until the main thread stops sending.
pub async fn serve_handed_over(
    shared: &Arc<Shared>,
    index: usize,
    mut handoff: tokio::sync::mpsc::UnboundedReceiver<Accepted>,
    tls: Option<&Arc<Tls>>,
    graceful: &GracefulShutdown,
) {
    while let Some(Accepted {
        stream,
        peer,
        slots,
    }) = handoff.recv().await
    {
        match tokio::net::TcpStream::from_std(stream) {
            Ok(stream) => {
                spawn_connection(shared, index, stream, peer, slots, tls, false, graceful)
            }
            Err(error) => {
                shared.workers[index].load.fetch_sub(1, Relaxed);
                tracing::debug!(%peer, %error, "cannot take over a connection");
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn spawn_connection(
    shared: &Arc<Shared>,
    worker: usize,
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    slots: Slots,
    tls: Option<&Arc<Tls>>,
    api_only: bool,
    graceful: &GracefulShutdown,
) {
    let watcher = graceful.watcher();
    let shared = shared.clone();
    let tls = tls.cloned();
    tokio::spawn(async move {
        let _slots = slots;
        shared.metrics.connection_opened();
        let conn = ConnInfo { peer, api_only };
        // A task's memory is the largest state of its future, held for the
        // connection's life: each kind of connection's states live in a box
        // of their own, so that none carries the size of another's.
        match tls {
            Some(tls) => Box::pin(serve_tls(&shared, conn, stream, &tls, watcher)).await,
            None => Box::pin(serve_connection(&shared, conn, stream, watcher, !api_only)).await,
        }
        shared.metrics.connection_closed();
        shared.workers[worker].load.fetch_sub(1, Relaxed);
    });
}

async fn serve_tls(
    shared: &Arc<Shared>,
    conn: ConnInfo,
    stream: tokio::net::TcpStream,
    tls: &Tls,
    watcher: hyper_util::server::graceful::Watcher,
) {
    let handshake = tls.acceptor().accept(stream);
    match tokio::time::timeout(shared.config.limits.header_read_timeout, handshake).await {
        Ok(Ok(stream)) => {
            let fast = !conn.api_only && stream.get_ref().1.alpn_protocol() != Some(b"h2");
            serve_connection(shared, conn, stream, watcher, fast).await
        }
        Ok(Err(error)) => tracing::debug!(peer = %conn.peer, %error, "TLS handshake failed"),
        Err(_) => tracing::debug!(peer = %conn.peer, "TLS handshake timed out"),
    }
}

/// Serves one client connection: first on the [`fastpath`], then, from the
/// first request it leaves alone, with hyper (HTTP/2 goes straight to
/// hyper). Ends when the client closes, on the idle timeout, or at
/// shutdown once the request in flight is answered.
async fn serve_connection<S>(
    shared: &Arc<Shared>,
    conn: ConnInfo,
    stream: S,
    watcher: hyper_util::server::graceful::Watcher,
    fast: bool,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let limits = &shared.config.limits;
    let activity = ConnActivity::new();
    let mut io = ClientIo {
        prefix: Bytes::new(),
        inner: stream,
        activity: activity.clone(),
        blocks: None,
    };
    let mut already_read = Bytes::new();
    if fast {
        let flags = fastpath::Flags::default();
        let mut inbuf = BytesMut::new();
        let outcome = {
            // Boxed, so that an HTTP/2 connection, which never takes the fast
            // path, does not carry its state for its whole life.
            let mut serving = Box::pin(fastpath::serve(shared, conn, &mut io, &mut inbuf, &flags));
            let mut shutdown = shared.shutdown.clone();
            tokio::select! {
                outcome = &mut serving => outcome,
                _ = activity.idle_for(limits.header_read_timeout, limits.idle_timeout) => Outcome::Closed,
                _ = async { drop(shutdown.wait_for(|s| *s).await) } => {
                    if flags.idle.load(Relaxed) {
                        Outcome::Closed
                    } else {
                        flags.stopping.store(true, Relaxed);
                        serving.await
                    }
                }
            }
        };
        match outcome {
            Outcome::Closed => return,
            Outcome::Fallback => already_read = inbuf.split().freeze(),
        }
    }
    // Boxed for the same reason as the TLS states: hyper's connection state
    // is large, and most connections never need it.
    Box::pin(serve_with_hyper(
        shared,
        conn,
        io,
        already_read,
        &activity,
        watcher,
    ))
    .await
}

/// Serves the rest of a connection with hyper, starting with `already_read`.
async fn serve_with_hyper<S>(
    shared: &Arc<Shared>,
    conn: ConnInfo,
    mut io: ClientIo<S>,
    already_read: Bytes,
    activity: &ConnActivity,
    watcher: hyper_util::server::graceful::Watcher,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let limits = &shared.config.limits;
    io.prefix = already_read;
    io.blocks = Some(Box::default());
    let io = TokioIo::new(io);
    activity.count_requests_only();
    let service_shared = shared.clone();
    let service_activity = activity.clone();
    let service = service_fn(move |req| {
        let open = service_activity.request();
        // Boxed: hyper's HTTP/2 server spawns a task per stream holding this
        // future, and the handler's is several kilobytes, so every spawn
        // copied it (7 % of the proxy's samples under h2load were that
        // memcpy); the box is made once and only its pointer moves.
        let response = Box::pin(handler::handle(service_shared.clone(), conn, req));
        async move {
            let response = response.await?;
            Ok::<_, std::convert::Infallible>(response.map(|body| Tracked { body, _open: open }))
        }
    });
    let connection = shared
        .http
        .serve_connection_with_upgrades(io, service)
        .into_owned();
    let connection = watcher.watch(connection);
    tokio::select! {
        result = connection => {
            if let Err(error) = result {
                tracing::debug!(peer = %conn.peer, %error, "connection ended with an error");
            }
        }
        _ = activity.idle_for(limits.header_read_timeout, limits.idle_timeout) => {
            tracing::debug!(peer = %conn.peer, "idle connection closed");
        }
    }
}
