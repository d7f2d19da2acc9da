//! The proxy role (`jrps serve`): TLS listener, API v1, routing of
//! `<alias>.<domain>` to compute nodes over HTTP and WebSocket.
//!
//! Organised by role (see STYLE.md, rust-rpxy): `config` (proxy.toml →
//! [`ProxyConfig`]), `listener` (sockets, TLS, limits, shutdown), `handler`
//! (one request: Host, edge auth, headers), `forwarder` (to the backend),
//! `tunnel` (WebSocket byte copy with clean close), `api` (API v1), `store` (SQLite + in-memory table),
//! `health` (expiry and backend checks), `aliases`, `pages`, `status`,
//! `metrics`, `phases` (the launcher's reports for the starting page). This
//! file wires them together and owns start-up and shutdown.

mod aliases;
mod api;
pub mod config;
mod forwarder;
mod handler;
mod health;
mod listener;
mod metrics;
mod pages;
mod phases;
mod status;
mod store;
mod tunnel;

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;

use hyper_util::rt::TokioExecutor;
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{Semaphore, watch};

use crate::Error;
use crate::cli::ServeArgs;

pub use config::{ConfigError, ProxyConfig};
pub use handler::COOKIE_NAME;
pub use listener::TlsError;
pub use store::StoreError;

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
    #[error("cannot start: {0}")]
    Io(#[from] std::io::Error),
}

impl ServeError {
    /// Configuration (including unreadable certificates) exits 2; anything
    /// that goes wrong while running exits 1.
    pub fn exit_code(&self) -> u8 {
        match self {
            ServeError::Config(_) | ServeError::Tls(_) => 2,
            _ => 1,
        }
    }
}

/// Everything a request may need, shared by all connections.
pub(crate) struct Shared {
    pub config: ProxyConfig,
    store: store::Store,
    metrics: metrics::Metrics,
    /// The launcher's last phase report per pending session (memory only).
    phases: phases::Phases,
    forwarder: forwarder::Forwarder,
    http: auto::Builder<TokioExecutor>,
    /// Becomes `true` when shutdown starts: long-polls answer, tunnels close.
    shutdown: watch::Receiver<bool>,
    /// Open WebSocket tunnels, so shutdown can wait for them to close.
    tunnels: watch::Sender<usize>,
    /// `max_connections` permits, held by each client connection and each
    /// WebSocket tunnel (which outlives its HTTP connection).
    slots: Arc<Semaphore>,
    /// `https://` or `http://`, and `:port` unless it is the scheme's default.
    url_scheme: &'static str,
    url_port: String,
}

impl Shared {
    pub fn public_url(&self, alias: &str) -> String {
        format!(
            "{}://{alias}.{}{}/",
            self.url_scheme, self.config.domain, self.url_port
        )
    }
}

/// `jrps serve --config proxy.toml`.
pub fn serve(args: ServeArgs) -> Result<(), Error> {
    let config = ProxyConfig::load(&args.config).map_err(ServeError::from)?;
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(crate::error::stderr_colour())
        .with_target(false)
        .try_init();
    run(config)?;
    Ok(())
}

/// Runs the proxy with a validated config until SIGTERM or SIGINT.
///
/// Start-up prints one line per listener on stdout, then `ready`:
/// `listening https://127.0.0.1:8443`, `api http://10.0.0.1:8080`. With
/// `listen = "…:0"` this is how a caller (the tests) learns the port.
pub fn run(config: ProxyConfig) -> Result<(), ServeError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run_async(config))
}

async fn run_async(config: ProxyConfig) -> Result<(), ServeError> {
    let tls = match &config.tls {
        Some(files) => Some(Arc::new(listener::Tls::load(files)?)),
        None => None,
    };
    let store = store::Store::open(&config.state)?;
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
    let shared = Arc::new(Shared {
        http: listener::http_builder(&config.limits),
        url_scheme: if config.public_scheme_is_https() {
            "https"
        } else {
            "http"
        },
        url_port,
        store,
        metrics: metrics::Metrics::default(),
        phases: phases::Phases::default(),
        forwarder: forwarder::Forwarder::new(),
        shutdown: shutdown_rx,
        tunnels,
        slots: Arc::new(Semaphore::new(config.limits.max_connections)),
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

    let background = [
        tokio::spawn(health::sweep(shared.clone())),
        tokio::spawn(health::check_backends(shared.clone())),
    ];

    let graceful = GracefulShutdown::new();
    {
        let main_loop =
            listener::accept_loop(&shared, &main_listener, tls.as_ref(), false, &graceful);
        let api_loop = async {
            match &api_listener {
                Some(l) => listener::accept_loop(&shared, l, tls.as_ref(), true, &graceful).await,
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
                _ = hangup.recv() => match &tls {
                    Some(tls) => match tls.reload() {
                        Ok(()) => tracing::info!("SIGHUP: certificate reloaded"),
                        Err(error) => tracing::error!(%error, "SIGHUP: certificate not reloaded; keeping the old one"),
                    },
                    None => tracing::info!("SIGHUP: no certificate configured, nothing to reload"),
                },
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
    tracing::info!("proxy stopped");
    Ok(())
}
