//! Keep-alive connections to backends for the fast path: one small pool per
//! worker thread, so taking and returning a connection is a thread-local
//! vector push and pop, with no lock, no channel and no task of its own.
//! (The hyper path keeps its own pool in [`super::forwarder`].)

use std::cell::RefCell;
use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::task::{Context, Waker};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tokio::net::TcpStream;

/// A connection idle longer than this is closed rather than reused; the
/// backend may be about to close it itself.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Idle connections kept per backend and worker thread, by this pool and by
/// the hyper path's ([`super::forwarder`]). High, so that a burst's
/// connections stay for the next one instead of being closed and opened
/// again: an HTTP/2 browser or h2load sends hundreds of requests at once
/// over a few connections, and at a cap of 64 the hyper path closed and
/// reopened about 230 backend connections a second, which halved its
/// HTTP/2 throughput (BENCHMARKS.md, issue 17). Idle ones still close after
/// [`IDLE_TIMEOUT`].
pub(super) const MAX_IDLE: usize = 1024;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

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
