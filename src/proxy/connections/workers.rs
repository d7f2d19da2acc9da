//! The worker threads as connections see them: how busy each is, how the
//! main thread hands one a connection, and its own backend pool. Which
//! worker the current thread is comes from a thread-local set at its start.

use std::cell::Cell;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use tokio::sync::OwnedSemaphorePermit;

use crate::proxy::budget::AddressSlot;
use crate::proxy::request::backend_client::BackendClient;

/// One thread serving connections, as the rest of the proxy sees it.
pub struct Worker {
    /// Open connections it serves (not counting WebSocket tunnels).
    pub load: AtomicUsize,
    /// Where the main thread hands it connections (`None` for the main
    /// thread itself).
    pub handoff: Option<tokio::sync::mpsc::UnboundedSender<Accepted>>,
    /// Its own backend pool: a pooled connection is driven by the thread
    /// that uses it, and no pool lock is shared between threads.
    pub backend: BackendClient,
}

/// A connection accepted by the main thread for a worker to serve.
pub struct Accepted {
    pub stream: std::net::TcpStream,
    pub peer: SocketAddr,
    pub slots: Slots,
}

/// What a connection holds while it is open: its place under the
/// listener's cap and under its address's.
pub struct Slots {
    pub _listener: OwnedSemaphorePermit,
    pub _address: AddressSlot,
}

/// How uneven worker loads may get before the next connection skips a
/// worker. Above zero so that a browser's few connections (and the one
/// still closing) stay on one thread and reuse one backend pool; small
/// against a busy proxy's hundreds of connections.
const SPREAD: usize = 4;

thread_local! {
    /// Which worker this thread is (0: the main thread).
    static WORKER: Cell<usize> = const { Cell::new(0) };
}

/// Marks the calling thread as worker `index`.
pub fn set_current(index: usize) {
    WORKER.with(|w| w.set(index));
}

/// The calling thread's worker.
pub fn current(workers: &[Worker]) -> &Worker {
    &workers[WORKER.with(Cell::get) % workers.len()]
}

/// The first worker with fewer than [`SPREAD`] connections more than the
/// least loaded one.
pub fn pick(workers: &[Worker]) -> usize {
    let load = |w: &Worker| w.load.load(Relaxed);
    let least = workers.iter().map(load).min().unwrap_or(0);
    workers
        .iter()
        .position(|w| load(w) < least + SPREAD)
        .unwrap_or(0)
}
