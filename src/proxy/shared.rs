//! What every connection, request and API call reaches: the config, the
//! store, the counters, the worker threads and their backend pools, the
//! shutdown signal and the budgets. Below every module that uses it, and
//! built once by `super::run`.

use std::sync::Arc;

use hyper_util::rt::TokioExecutor;
use hyper_util::server::conn::auto;
use tokio::sync::{Semaphore, watch};

use super::announcement;
use super::answers::phases::Phases;
use super::audit::{Audit, Event};
use super::budget::AddressBudget;
use super::config::ProxyConfig;
use super::connections::workers::{self, Worker};
use super::cookie_key::CookieKey;
use super::metrics::Metrics;
use super::request::backend_client::BackendClient;
use super::store::{Store, StoreError};
use crate::api::EndReason;
use crate::identity::{DecodeSlots, UserNames};

/// Everything a request may need, shared by all connections.
pub(crate) struct Shared {
    pub(super) config: ProxyConfig,
    pub(super) store: Store,
    pub(super) metrics: Metrics,
    /// The launcher's last phase report per pending session (memory only).
    pub(super) phases: Phases,
    /// Worker 0 is the main thread; the others take connections from it.
    pub(super) workers: Box<[Worker]>,
    pub(super) http: auto::Builder<TokioExecutor>,
    /// Becomes `true` when shutdown starts: long-polls answer, tunnels close.
    pub(super) shutdown: watch::Receiver<bool>,
    /// Open WebSocket tunnels, so shutdown can wait for them to close.
    pub(super) tunnels: watch::Sender<usize>,
    /// `max_connections` permits, held by each client connection and each
    /// WebSocket tunnel (which outlives its HTTP connection).
    pub(super) slots: Arc<Semaphore>,
    /// The API listener's own `max_api_connections` permits.
    pub(super) api_slots: Arc<Semaphore>,
    /// `max_connections_per_address`, for connections and tunnels alike.
    pub(super) addresses: Arc<AddressBudget>,
    /// What new sessions' edge cookies are derived from.
    pub(super) cookie_key: Arc<CookieKey>,
    /// One line per session event.
    pub(super) audit: Audit,
    /// Slots for munge credential checks, shared fairly between addresses.
    pub(super) decodes: DecodeSlots,
    /// Proven callers' names, looked up off the request path's threads.
    pub(super) user_names: UserNames,
    /// `https://` or `http://`, and `:port` unless it is the scheme's default.
    pub(super) url_scheme: &'static str,
    pub(super) url_port: String,
    /// The site's announcement, as last read.
    pub(super) announcement: announcement::Current,
}

impl Shared {
    /// Ends a session (idempotent) and, when that changed it, says so in
    /// the audit log: the one way sessions end, whoever ends them.
    pub async fn end_session(
        &self,
        alias: &str,
        reason: Option<EndReason>,
    ) -> Result<bool, StoreError> {
        let changed = self.store.end(alias, reason).await?;
        if changed && let Some(session) = self.store.get(alias) {
            self.audit.record(
                &session,
                Event::Ended {
                    reason: session.end_reason,
                },
            );
        }
        Ok(changed)
    }

    /// The calling worker's backend pool.
    pub fn backend_client(&self) -> &BackendClient {
        &workers::current(&self.workers).backend
    }

    pub fn public_url(&self, alias: &str) -> String {
        format!(
            "{}://{alias}.{}{}/",
            self.url_scheme, self.config.domain, self.url_port
        )
    }
}
