//! Sockets and connections: the accept loop with its connection cap, TLS
//! (rustls on ring, certificate reloadable on SIGHUP), the HTTP/1.1 + HTTP/2
//! server settings (header size, header-read timeout), the idle timeout, and
//! graceful shutdown. What a request means is the handler's business.

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::OwnedSemaphorePermit;
use tokio_rustls::TlsAcceptor;

use super::Shared;
use super::budget::AddressSlot;
use super::config::{Limits, TlsFiles};
use super::fastpath::{self, Outcome};
use super::handler;
use super::header_blocks::{Change, HeaderBlocks};
use super::plumbing::ConnInfo;

/// The server certificate, swappable while connections are running: each
/// new handshake takes the current config, old connections keep theirs.
pub struct Tls {
    files: TlsFiles,
    current: RwLock<Arc<ServerConfig>>,
}

#[derive(Debug, thiserror::Error)]
#[error("{path}: {why}")]
pub struct TlsError {
    pub path: String,
    pub why: String,
}

impl Tls {
    pub fn load(files: &TlsFiles) -> Result<Tls, TlsError> {
        Ok(Tls {
            files: files.clone(),
            current: RwLock::new(Arc::new(server_config(files)?)),
        })
    }

    /// Re-reads the PEM files; on any error the old certificate stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        let config = Arc::new(server_config(&self.files)?);
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = config;
        Ok(())
    }

    fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(
            self.current
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        )
    }
}

fn server_config(files: &TlsFiles) -> Result<ServerConfig, TlsError> {
    let err = |path: &Path, why: String| TlsError {
        path: path.display().to_string(),
        why,
    };
    let certs = CertificateDer::pem_file_iter(&files.cert)
        .map_err(|e| err(&files.cert, format!("cannot read certificates: {e}")))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| err(&files.cert, format!("bad PEM: {e}")))?;
    if certs.is_empty() {
        return Err(err(&files.cert, "no CERTIFICATE block in the file".into()));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .map_err(|e| err(&files.key, format!("cannot read a private key: {e}")))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| err(&files.cert, e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| err(&files.key, format!("certificate and key do not fit: {e}")))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

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
        // PINGs find dead peers; they do not count as activity (`Activity`).
        .keep_alive_interval(Duration::from_secs(30));
    builder
}

/// A connection accepted by the main thread for a worker to serve.
pub struct Accepted {
    stream: std::net::TcpStream,
    peer: SocketAddr,
    slots: Slots,
}

/// What a connection holds while it is open: its place under the
/// listener's cap and under its address's.
struct Slots {
    _listener: OwnedSemaphorePermit,
    _address: AddressSlot,
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
        let worker = if api_only { 0 } else { shared.pick_worker() };
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
    let activity = Activity::new();
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
    activity: &Activity,
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

/// What a connection's idle timeout watches. Until a request has begun,
/// `header_read_timeout` applies: a connection that sends nothing is closed
/// as soon as one that stalls mid-head. On the fast path a request begins
/// with its first byte; on hyper's path with its whole header block, so an
/// HTTP/2 connection that sends only its preface, or half a first request,
/// gets the header timeout too. After that, on the fast path any byte moved
/// counts; on hyper's path only requests (HTTP/2 streams) do, so PINGs and
/// other control frames never keep an HTTP/2 connection open: with no open
/// stream for `idle_timeout` it closes. An HTTP/2 header block begun later
/// must also be complete within `header_read_timeout` of its first frame
/// ([`HeaderBlocks`]), however busy the connection's other streams are:
/// until it is, the connection can carry nothing else.
#[derive(Clone)]
struct Activity(Arc<ActivityState>);

/// `block_since_ms` when no header block is open.
const NO_BLOCK: u64 = u64::MAX;

struct ActivityState {
    epoch: Instant,
    /// Last activity, in milliseconds since `epoch`.
    last_ms: AtomicU64,
    /// Whether any request byte has arrived.
    spoke: AtomicBool,
    /// Bytes count as activity (the fast path), or only requests (hyper).
    count_bytes: AtomicBool,
    /// Requests whose response is not finished.
    open: AtomicUsize,
    /// When the HTTP/2 header block being read began, in milliseconds
    /// since `epoch` ([`NO_BLOCK`]: none is).
    block_since_ms: AtomicU64,
    /// Wakes the idle watch to a header block's nearer deadline.
    block_opened: tokio::sync::Notify,
}

impl Activity {
    fn new() -> Activity {
        Activity(Arc::new(ActivityState {
            epoch: Instant::now(),
            last_ms: AtomicU64::new(0),
            spoke: AtomicBool::new(false),
            count_bytes: AtomicBool::new(true),
            open: AtomicUsize::new(0),
            block_since_ms: AtomicU64::new(NO_BLOCK),
            block_opened: tokio::sync::Notify::new(),
        }))
    }

    fn now_ms(&self) -> u64 {
        self.0.epoch.elapsed().as_millis() as u64
    }

    fn touch(&self) {
        self.0.last_ms.store(self.now_ms(), Relaxed);
    }

    fn header_block(&self, change: Change) {
        match change {
            Change::None => {}
            Change::Opened => {
                self.0.block_since_ms.store(self.now_ms(), Relaxed);
                self.0.block_opened.notify_one();
            }
            Change::Closed => self.0.block_since_ms.store(NO_BLOCK, Relaxed),
        }
    }

    fn bytes_moved(&self, read: bool) {
        // On hyper's path only a whole request speaks: an HTTP/2 preface,
        // SETTINGS or a header block that never ends are still "nothing
        // yet", held to `header_read_timeout` as an HTTP/1.1 head is.
        if self.0.count_bytes.load(Relaxed) {
            if read {
                self.0.spoke.store(true, Relaxed);
            }
            self.touch();
        }
    }

    /// From now on only requests count ([`Activity::request`]).
    fn count_requests_only(&self) {
        self.0.count_bytes.store(false, Relaxed);
        self.touch();
    }

    /// A request started; the guard ends it when its response is done.
    fn request(&self) -> OpenRequest {
        self.0.spoke.store(true, Relaxed);
        self.0.open.fetch_add(1, Relaxed);
        self.touch();
        OpenRequest(self.clone())
    }

    /// Resolves once the connection has been idle for `limit` (or sent
    /// nothing, or left a header block unfinished, for `first_byte`). Wakes
    /// at most once per `limit`, not per byte, and when a header block
    /// begins.
    async fn idle_for(&self, first_byte: Duration, limit: Duration) {
        // Each sleep ends no later than the true deadline, which is `limit`
        // after the last activity and so not before `now + limit` for any
        // activity still to come; a header block that begins meanwhile
        // wakes it to its own.
        loop {
            let now = Instant::now();
            let block_since = self.0.block_since_ms.load(Relaxed);
            let block_deadline = (block_since != NO_BLOCK)
                .then(|| self.0.epoch + Duration::from_millis(block_since) + first_byte);
            if block_deadline.is_some_and(|deadline| now >= deadline) {
                return;
            }
            let wake = if !self.0.spoke.load(Relaxed) {
                let silent = self.0.epoch + first_byte;
                if now >= silent {
                    return;
                }
                silent.min(now + limit)
            } else if self.0.open.load(Relaxed) > 0 {
                now + limit
            } else {
                let idle =
                    self.0.epoch + Duration::from_millis(self.0.last_ms.load(Relaxed)) + limit;
                if now >= idle {
                    return;
                }
                idle
            };
            let wake = block_deadline.map_or(wake, |deadline| wake.min(deadline));
            tokio::select! {
                _ = tokio::time::sleep_until(wake.into()) => {}
                _ = self.0.block_opened.notified() => {}
            }
        }
    }
}

/// A request in flight on a connection; dropped with its response body.
struct OpenRequest(Activity);

impl Drop for OpenRequest {
    fn drop(&mut self) {
        self.0.0.open.fetch_sub(1, Relaxed);
        self.0.touch();
    }
}

/// A response body that holds its request's [`OpenRequest`] until hyper
/// drops it: when the last byte is sent, or the stream is reset.
struct Tracked<B> {
    body: B,
    _open: OpenRequest,
}

impl<B: hyper::body::Body + Unpin> hyper::body::Body for Tracked<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.body.size_hint()
    }
}

/// A client connection's stream: yields `prefix` (bytes the fast path read
/// and left to hyper) before reading on, and records activity on every
/// successful read or write for the idle timeout.
struct ClientIo<S> {
    prefix: Bytes,
    inner: S,
    activity: Activity,
    /// On hyper's path, until the bytes are known not to be HTTP/2: the
    /// header blocks read (boxed: most connections drop it at once).
    blocks: Option<Box<HeaderBlocks>>,
}

impl<S> ClientIo<S> {
    fn follow_frames(&mut self, read: &[u8]) {
        if let Some(blocks) = &mut self.blocks {
            self.activity.header_block(blocks.read(read));
            if !blocks.is_following() {
                self.blocks = None;
            }
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for ClientIo<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.prefix.is_empty() {
            let n = self.prefix.len().min(buf.remaining());
            let given = self.prefix.split_to(n);
            self.follow_frames(&given);
            buf.put_slice(&given);
            if self.prefix.is_empty() {
                // Let go of the fast path's buffer it points into.
                self.prefix = Bytes::new();
            }
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        let poll = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(poll, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.bytes_moved(true);
            if self.blocks.is_some() {
                let this = &mut *self;
                this.follow_frames(&buf.filled()[before..]);
            }
        }
        poll
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for ClientIo<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(poll, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.bytes_moved(false);
        }
        poll
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(poll, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.bytes_moved(false);
        }
        poll
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
