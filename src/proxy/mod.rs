//! The proxy role (`jrps serve`): TLS listener, API v1, routing of
//! `<alias>.<domain>` to compute nodes over HTTP and WebSocket.
//!
//! Organised by role (the same map is in docs/design.md); each folder's
//! `mod.rs` maps its own files:
//!
//! - `connections/`: sockets, TLS, workers, idle and header timeouts
//! - `request/`: one request from the client to its session's backend
//! - `manage/`: the management API (API v1), `/healthz`, `/metrics`
//! - `store/`: sessions in memory and in SQLite or PostgreSQL
//! - `answers/`: what the proxy says itself (statuses, pages, phases)
//! - `shared`: what every connection and call reaches ([`shared::Shared`])
//! - `config`: proxy.toml into a [`ProxyConfig`], with `limits` (each
//!   `[limits]` key defined once)
//! - `addresses`: client and backend addresses for the allow-lists
//! - `budget`: connections per address, requests per session
//! - `cookie_key`: the key edge cookies are derived from
//! - `audit`: one line per session event
//! - `announcement`: the site's line on every waiting page
//! - `health`: expiry sweeps and backend checks, on the duty holder
//! - `metrics`: the counters and their Prometheus text
//! - `fuzzing`: entry points for the fuzz targets (not an API)
//!
//! This file wires them together and owns start-up and shutdown.

mod addresses;
mod announcement;
mod answers;
mod audit;
mod budget;
pub(crate) mod config;
mod connections;
mod cookie_key;
#[doc(hidden)]
pub mod fuzzing;
mod health;
mod limits;
mod manage;
mod metrics;
mod request;
mod shared;
mod store;

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{Semaphore, watch};

pub(crate) use config::{ConfigError, ProxyConfig};
pub(crate) use connections::TlsError;
pub(crate) use store::StoreError;

use answers::phases::Phases;
use connections::workers::{self, Accepted, Worker};
use request::backend_client::BackendClient;
use shared::Shared;

/// Why `jrps serve` could not start (or stopped).
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("TLS: {0}")]
    Tls(#[from] TlsError),
    #[error("cannot listen on {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    CookieKey(#[from] cookie_key::CookieKeyError),
    #[error(transparent)]
    Audit(#[from] audit::AuditError),
    #[error("cannot start: {0}")]
    Io(#[from] std::io::Error),
}

impl ServeError {
    /// Configuration (including unreadable certificates) exits 2; anything
    /// that goes wrong while running exits 1.
    pub fn exit_code(&self) -> u8 {
        match self {
            // A log folder that is not there is the configuration's fault.
            ServeError::Config(_) | ServeError::Tls(_) | ServeError::Audit(_) => 2,
            // A schema from a newer jrps, or a cookie key the other
            // replicas do not share: the operator's to fix, not a retry's.
            ServeError::Store(StoreError::Refused(_)) => 2,
            _ => 1,
        }
    }
}

/// SIGHUP: the announcement as the file says now; the rest of the file
/// takes a restart. A file that no longer parses keeps the old one.
fn reload_announcement(shared: &Shared) {
    let Some(path) = &shared.config.source else {
        return;
    };
    match ProxyConfig::load(path) {
        Ok(now) => {
            match &now.announcement {
                Some(a) => {
                    tracing::info!(text = %a.text, until = ?a.until, "SIGHUP: announcement set")
                }
                None => tracing::info!("SIGHUP: no announcement"),
            }
            shared.announcement.set(now.announcement);
        }
        Err(error) => {
            tracing::error!(%error, "SIGHUP: proxy.toml not re-read; keeping the announcement")
        }
    }
}

/// `jrps serve --config proxy.toml`.
pub fn serve(config_path: &std::path::Path) -> Result<(), ServeError> {
    run(ProxyConfig::load(config_path)?)
}

/// Runs the proxy with a validated config until SIGTERM or SIGINT.
///
/// Start-up prints one line per listener on stdout, then `ready`:
/// `listening https://127.0.0.1:8443`, `api http://10.0.0.1:8080`. With
/// `listen = "…:0"` this is how a caller (the tests) learns the port.
///
/// Threads: `workers` single-threaded runtimes, like nginx's worker
/// processes. The main thread's runtime accepts every connection, serves
/// its share of them and the API, and runs the background duties and signal
/// handling; the other workers serve the connections it hands them, each
/// on its own thread with its own backend pool. Against one multi-threaded
/// runtime this measured 7 % less CPU per request and 11 % more throughput
/// (BENCHMARKS.md): no work stealing, no cross-core wake-ups per request.
pub fn run(config: ProxyConfig) -> Result<(), ServeError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run_async(config))
}

/// Worker `index`: serves handed-over connections until shutdown starts,
/// drains them, reports, and keeps its runtime (and the WebSocket tunnels
/// on it) alive until the main thread is done.
fn spawn_worker(
    index: usize,
    shared: Arc<Shared>,
    handoff: tokio::sync::mpsc::UnboundedReceiver<Accepted>,
    tls: Option<Arc<connections::Tls>>,
    drained: tokio::sync::oneshot::Sender<()>,
    mut finished: watch::Receiver<bool>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::Builder::new()
        .name(format!("jrps-worker-{index}"))
        .spawn(move || {
            workers::set_current(index);
            runtime.block_on(async move {
                let graceful = GracefulShutdown::new();
                let mut shutdown = shared.shutdown.clone();
                tokio::select! {
                    _ = connections::serve_handed_over(&shared, index, handoff, tls.as_ref(), &graceful) => {}
                    _ = shutdown.wait_for(|s| *s) => {}
                }
                graceful.shutdown().await;
                let _ = drained.send(());
                let _ = finished.wait_for(|f| *f).await;
            });
        })
}

async fn run_async(config: ProxyConfig) -> Result<(), ServeError> {
    let tls = match &config.tls {
        Some(files) => Some(Arc::new(connections::Tls::load(files)?)),
        None => None,
    };
    // Every file the proxy makes (state, its journal, the cookie key) is
    // its user's alone, whatever umask it was started with.
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
    let cookie_key = Arc::new(cookie_key::CookieKey::load_or_create(&config.cookie_key)?);
    let store = store::Store::open(&config.state, cookie_key.clone()).await?;
    let bind = |addr: SocketAddr| async move {
        TcpListener::bind(addr)
            .await
            .map_err(|source| ServeError::Bind { addr, source })
    };
    let main_listener = bind(config.listen).await?;
    let api_listener = match config.api_addr {
        Some(addr) => Some(bind(addr).await?),
        None => None,
    };
    let main_addr = main_listener.local_addr()?;

    let https = tls.is_some();
    let default_port = if https { 443 } else { 80 };
    let url_port = if main_addr.port() == default_port || (!https && config.behind_tls) {
        String::new()
    } else {
        format!(":{}", main_addr.port())
    };
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let (tunnels, _) = watch::channel(0usize);
    let mut handoffs = Vec::new();
    let workers = (0..config.workers.max(1))
        .map(|index| {
            let handoff = (index > 0).then(|| {
                let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
                handoffs.push(rx);
                tx
            });
            Worker {
                load: AtomicUsize::new(0),
                handoff,
                backend: BackendClient::default(),
            }
        })
        .collect();
    let shared = Arc::new(Shared {
        http: connections::http_builder(&config.limits),
        url_scheme: if config.public_scheme_is_https() {
            "https"
        } else {
            "http"
        },
        url_port,
        store,
        metrics: metrics::Metrics::default(),
        phases: Phases::default(),
        workers,
        shutdown: shutdown_rx,
        tunnels,
        slots: Arc::new(Semaphore::new(config.limits.max_connections)),
        api_slots: Arc::new(Semaphore::new(config.limits.max_api_connections)),
        addresses: budget::AddressBudget::new(config.limits.max_connections_per_address),
        cookie_key,
        audit: audit::Audit::open(config.audit_log.as_deref())?,
        decodes: crate::identity::DecodeSlots::default(),
        user_names: crate::identity::UserNames::default(),
        announcement: announcement::Current::new(config.announcement.clone()),
        config,
    });

    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut hangup = signal(SignalKind::hangup())?;

    let scheme = if https { "https" } else { "http" };
    {
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "listening {scheme}://{main_addr}");
        if let Some(api) = &api_listener {
            let _ = writeln!(stdout, "api {scheme}://{}", api.local_addr()?);
        }
        let _ = writeln!(stdout, "ready");
        let _ = stdout.flush();
    }
    tracing::info!(
        listen = %main_addr,
        domain = %shared.config.domain,
        sessions = shared.store.all().len(),
        "proxy started"
    );

    let (finished_tx, finished_rx) = watch::channel(false);
    let mut threads = Vec::new();
    let mut drained = Vec::new();
    for (i, handoff) in handoffs.into_iter().enumerate() {
        let (tx, rx) = tokio::sync::oneshot::channel();
        threads.push(spawn_worker(
            i + 1,
            shared.clone(),
            handoff,
            tls.clone(),
            tx,
            finished_rx.clone(),
        )?);
        drained.push(rx);
    }

    let following = shared.clone();
    let background = [
        tokio::spawn(health::sweep(shared.clone())),
        tokio::spawn(health::check_backends(shared.clone())),
        tokio::spawn(async move { following.store.follow_replicas().await }),
    ];

    let graceful = GracefulShutdown::new();
    {
        let main_loop =
            connections::accept_loop(&shared, &main_listener, tls.as_ref(), false, &graceful);
        let api_loop = async {
            match &api_listener {
                Some(l) => {
                    connections::accept_loop(&shared, l, tls.as_ref(), true, &graceful).await
                }
                None => std::future::pending().await,
            }
        };
        let accepting = async { tokio::join!(main_loop, api_loop) };
        tokio::pin!(accepting);
        loop {
            tokio::select! {
                _ = &mut accepting => break,
                _ = terminate.recv() => { tracing::info!("SIGTERM: shutting down"); break }
                _ = interrupt.recv() => { tracing::info!("SIGINT: shutting down"); break }
                _ = hangup.recv() => {
                    match &tls {
                        Some(tls) => match tls.reload() {
                            Ok(()) => tracing::info!("SIGHUP: certificate reloaded"),
                            Err(error) => tracing::error!(%error, "SIGHUP: certificate not reloaded; keeping the old one"),
                        },
                        None => tracing::info!("SIGHUP: no certificate configured, nothing to reload"),
                    }
                    if let Err(error) = shared.audit.reopen() {
                        tracing::error!(%error, "SIGHUP: audit log not reopened; writing to the old file");
                    }
                    reload_announcement(&shared);
                }
            }
        }
    }
    // Stop accepting (listeners close here), then let requests in flight
    // finish, answer long-polls, and close WebSocket tunnels.
    drop(main_listener);
    drop(api_listener);
    let _ = shutdown_tx.send(true);
    let mut tunnels = shared.tunnels.subscribe();
    let drain = async {
        graceful.shutdown().await;
        for worker in drained {
            let _ = worker.await;
        }
        let _ = tunnels.wait_for(|n| *n == 0).await;
    };
    if tokio::time::timeout(shared.config.limits.shutdown_grace, drain)
        .await
        .is_err()
    {
        tracing::warn!("shutdown grace period over; closing what is left");
    }
    for task in background {
        task.abort();
    }
    let _ = finished_tx.send(true);
    for thread in threads {
        let _ = thread.join();
    }
    tracing::info!("proxy stopped");
    Ok(())
}
