//! When a client connection has been quiet too long: what counts as
//! activity on each path, the header timeouts, and the stream wrapper that
//! records reads and writes.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::header_blocks::{Change, HeaderBlocks};

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
pub(super) struct ConnActivity(Arc<ConnActivityState>);

/// `block_since_ms` when no header block is open.
const NO_BLOCK: u64 = u64::MAX;

struct ConnActivityState {
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

impl ConnActivity {
    pub(super) fn new() -> ConnActivity {
        ConnActivity(Arc::new(ConnActivityState {
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

    pub(super) fn bytes_moved(&self, read: bool) {
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

    /// From now on only requests count ([`ConnActivity::request`]).
    pub(super) fn count_requests_only(&self) {
        self.0.count_bytes.store(false, Relaxed);
        self.touch();
    }

    /// A request started; the guard ends it when its response is done.
    pub(super) fn request(&self) -> OpenRequest {
        self.0.spoke.store(true, Relaxed);
        self.0.open.fetch_add(1, Relaxed);
        self.touch();
        OpenRequest(self.clone())
    }

    /// Resolves once the connection has been idle for `limit` (or sent
    /// nothing, or left a header block unfinished, for `first_byte`). Wakes
    /// at most once per `limit`, not per byte, and when a header block
    /// begins.
    pub(super) async fn idle_for(&self, first_byte: Duration, limit: Duration) {
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
pub(super) struct OpenRequest(ConnActivity);

impl Drop for OpenRequest {
    fn drop(&mut self) {
        self.0.0.open.fetch_sub(1, Relaxed);
        self.0.touch();
    }
}

/// A response body that holds its request's [`OpenRequest`] until hyper
/// drops it: when the last byte is sent, or the stream is reset.
pub(super) struct Tracked<B> {
    pub(super) body: B,
    pub(super) _open: OpenRequest,
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
pub(super) struct ClientIo<S> {
    pub(super) prefix: Bytes,
    pub(super) inner: S,
    pub(super) activity: ConnActivity,
    /// On hyper's path, until the bytes are known not to be HTTP/2: the
    /// header blocks read (boxed: most connections drop it at once).
    pub(super) blocks: Option<Box<HeaderBlocks>>,
}

impl<S> ClientIo<S> {
    fn watch_header_blocks(&mut self, read: &[u8]) {
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
            self.watch_header_blocks(&given);
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
                this.watch_header_blocks(&buf.filled()[before..]);
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
