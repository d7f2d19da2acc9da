//! The two background duties that end sessions without an API call: TTL
//! expiry, ending sessions no job was linked to in time (plus forgetting
//! ended sessions after their retention), and the
//! backend health check. The request path already refuses expired sessions
//! by comparing `expires_at` itself; the sweep makes it durable and wakes
//! long-polls and WebSocket tunnels.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::task::JoinSet;
use tokio::time::MissedTickBehavior;

use crate::api::{EndReason, SessionState};

use crate::clock::unix_now;
use crate::proxy::shared::Shared;

/// Once a second, ends sessions past their TTL and forgets ended sessions
/// past their retention. The table is scanned only when something can be
/// due: the store keeps the earliest `expires_at` and `ended_at` it has seen
/// since the last scan, so with 100,000 live sessions an idle second costs
/// two atomic loads, not a walk over every session.
pub async fn sweep(shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let retention = shared.config.ended_retention.as_secs();
    let unlinked = shared.config.unlinked_session.as_secs();
    loop {
        tick.tick().await;
        let now = unix_now();
        if !shared.store.has_duty() || !shared.store.maybe_due(now, retention, unlinked) {
            continue;
        }
        for session in shared.store.all() {
            let result = if session.state != SessionState::Ended && now >= session.expires_at {
                tracing::info!(alias = %session.alias, "session expired");
                shared
                    .end_session(&session.alias, Some(EndReason::Expired))
                    .await
                    .map(|_| ())
            } else if session.is_unlinked() && session.created_at.saturating_add(unlinked) <= now {
                tracing::info!(alias = %session.alias, "no job linked in time: session ended");
                shared
                    .end_session(&session.alias, Some(EndReason::NeverSubmitted))
                    .await
                    .map(|_| ())
            } else if session.state == SessionState::Ended
                && session.ended_at.unwrap_or(0).saturating_add(retention) <= now
            {
                tracing::info!(alias = %session.alias, "ended session forgotten");
                shared.store.forget(&session).await
            } else {
                shared.store.keep_due(&session);
                Ok(())
            };
            match result {
                Ok(()) => {}
                // The store has said so; the rest waits for the database.
                Err(crate::proxy::store::StoreError::Unavailable(_)) => {
                    shared.store.rescan();
                    break;
                }
                Err(error) => {
                    shared.store.keep_due(&session);
                    tracing::error!(alias = %session.alias, %error, "sweep");
                }
            }
        }
    }
}

/// Every `health_check_interval`, opens a TCP connection to each ready
/// backend; `health_check_failures` failures in a row end the session.
/// Sessions on the same backend address share one probe per interval
/// (a node serving many sessions, or a benchmark's 100,000 routes to one
/// backend, is connected to once, not once per session).
pub async fn check_backends(shared: Arc<Shared>) {
    let interval = shared.config.health_check_interval;
    let limit = shared.config.health_check_failures;
    let probe_timeout = interval.min(Duration::from_secs(5));
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut failures: HashMap<Box<str>, u32> = HashMap::new();
    loop {
        tick.tick().await;
        if !shared.store.has_duty() {
            failures.clear();
            continue;
        }
        let mut by_backend: HashMap<SocketAddr, Vec<Box<str>>> = HashMap::new();
        for session in shared.store.all() {
            if let (SessionState::Ready, Some(backend)) = (session.state, session.backend) {
                by_backend
                    .entry(backend)
                    .or_default()
                    .push(session.alias.clone());
            }
        }
        let mut probes = JoinSet::new();
        for (backend, aliases) in by_backend {
            probes.spawn(async move {
                let ok = matches!(
                    tokio::time::timeout(probe_timeout, TcpStream::connect(backend)).await,
                    Ok(Ok(_))
                );
                (aliases, ok)
            });
        }
        let mut results = Vec::new();
        while let Some(Ok((aliases, ok))) = probes.join_next().await {
            results.extend(aliases.into_iter().map(|alias| (alias, ok)));
        }
        let mut seen = HashMap::new();
        for (alias, ok) in results {
            let count = if ok {
                0
            } else {
                failures.get(&alias).copied().unwrap_or(0) + 1
            };
            if count >= limit {
                tracing::warn!(%alias, "backend stopped answering; session ended");
                if let Err(error) = shared
                    .end_session(&alias, Some(EndReason::Unreachable))
                    .await
                {
                    tracing::error!(%alias, %error, "health check");
                }
            } else if count > 0 {
                seen.insert(alias, count);
            }
        }
        failures = seen;
    }
}
