//! Sends a prepared request to a session's backend and streams the answer
//! back; for a WebSocket handshake answered with 101, joins the two upgraded
//! connections in a [`tunnel`] that lives until either side closes, the
//! session ends, or the proxy shuts down. Backend connections are pooled
//! (hyper-util's client), bodies stream in both directions unbuffered.

use std::net::IpAddr;
use std::sync::Arc;

use http::header::{CONNECTION, HeaderValue, UPGRADE};
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{Request, Response, StatusCode, Uri, Version};
use http_body_util::Either;
use hyper::body::Incoming;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio::sync::OwnedSemaphorePermit;

use crate::api::SessionState;

use crate::error_chain::error_chain;
use crate::proxy::answers::failure::Failure;
use crate::proxy::answers::pages;
use crate::proxy::budget::{AddressSlot, InUse};
use crate::proxy::request::direct;
use crate::proxy::request::plumbing::{ProxyBody, full};
use crate::proxy::request::policy;
use crate::proxy::request::tunnel;
use crate::proxy::shared::Shared;
use crate::proxy::store::Session;

/// Sends `req` to `session`'s backend with the calling worker's pool and
/// streams the answer back (a WebSocket upgrade becomes a [`tunnel`]).
pub async fn forward(
    shared: &Arc<Shared>,
    session: &Session,
    backend: Authority,
    peer: IpAddr,
    mut req: Request<Incoming>,
    upgrade: Option<HeaderValue>,
) -> Response<ProxyBody> {
    if direct::takes(&req, upgrade.is_some())
        && let Some(address) = session.backend
    {
        let (parts, _) = req.into_parts();
        return match direct::forward(address, &parts).await {
            Ok(response) => response.map(|body| Either::Left(Either::Right(body))),
            Err(failed) => {
                shared.metrics.upstream_error();
                tracing::warn!(alias = %session.alias, error = %failed, "backend unreachable");
                full(pages::page(Failure::BackendUnreachable, &session.alias))
            }
        };
    }
    let path = req
        .uri()
        .path_and_query()
        .cloned()
        .unwrap_or_else(|| PathAndQuery::from_static("/"));
    let mut parts = http::uri::Parts::default();
    parts.scheme = Some(Scheme::HTTP);
    parts.authority = Some(backend);
    parts.path_and_query = Some(path);
    match Uri::from_parts(parts) {
        Ok(uri) => *req.uri_mut() = uri,
        Err(_) => return full(pages::page(Failure::BadRequest, &session.alias)),
    }
    // A tunnel outlives its HTTP connection, so it needs slots of its
    // own: under the cap, and under its client address's budget.
    let tunnel_slot = match upgrade {
        Some(_) => match (
            shared.slots.clone().try_acquire_owned(),
            shared.addresses.try_take(peer),
            session
                .load
                .try_tunnel(shared.config.limits.max_websockets_per_session),
        ) {
            (Ok(permit), Some(address), Some(in_use)) => Some((permit, address, in_use)),
            _ => return full(pages::page(Failure::Unavailable, &session.alias)),
        },
        None => None,
    };
    let client_upgrade = upgrade.as_ref().map(|_| hyper::upgrade::on(&mut req));
    *req.version_mut() = Version::HTTP_11;

    let mut response = match shared.backend_client().client.request(req).await {
        Ok(response) => response,
        Err(error) if request_was_at_fault(&error) => {
            tracing::debug!(alias = %session.alias, error = %error_chain(&error), "client's request could not be forwarded");
            return full(pages::page(Failure::BadRequest, &session.alias));
        }
        Err(error) => {
            shared.metrics.upstream_error();
            tracing::warn!(alias = %session.alias, error = %error_chain(&error), "backend unreachable");
            return full(pages::page(Failure::BackendUnreachable, &session.alias));
        }
    };

    let upgrade_back = policy::response_for_client(response.headers_mut());
    if response.status() == StatusCode::SWITCHING_PROTOCOLS {
        match (client_upgrade, upgrade_back) {
            (Some(client_side), Some(protocol)) => {
                let backend_side = hyper::upgrade::on(&mut response);
                let headers = response.headers_mut();
                headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
                headers.insert(UPGRADE, protocol);
                tokio::spawn(tunnel(
                    shared.clone(),
                    session.alias.clone(),
                    client_side,
                    backend_side,
                    tunnel_slot,
                ));
            }
            // A 101 we did not ask for, or to something other than a
            // WebSocket: the connection cannot be joined, so refuse it.
            _ => {
                shared.metrics.upstream_error();
                return full(pages::page(Failure::BackendUnreachable, &session.alias));
            }
        }
    }
    response.map(|body| Either::Left(Either::Left(body)))
}

/// Whether sending failed on the request itself rather than on the
/// backend: hyper calls that a user error, and for a proxy the request body
/// it streams is the client's (a malformed chunk, an upload cut off). The
/// client gets 400, and the backend-error count operators watch stays clean.
fn request_was_at_fault(error: &(dyn std::error::Error + 'static)) -> bool {
    std::iter::successors(Some(error), |e| e.source())
        .find_map(|e| e.downcast_ref::<hyper::Error>())
        .is_some_and(hyper::Error::is_user)
}

/// Counts open tunnels so shutdown can wait for them; dropping it uncounts.
struct TunnelGuard(Arc<Shared>);

impl TunnelGuard {
    fn new(shared: Arc<Shared>) -> TunnelGuard {
        shared.tunnels.send_modify(|n| *n += 1);
        shared.metrics.websocket_opened();
        TunnelGuard(shared)
    }
}

impl Drop for TunnelGuard {
    fn drop(&mut self) {
        self.0.tunnels.send_modify(|n| *n = n.saturating_sub(1));
        self.0.metrics.websocket_closed();
    }
}

async fn tunnel(
    shared: Arc<Shared>,
    alias: Box<str>,
    client: OnUpgrade,
    backend: OnUpgrade,
    _slots: Option<(OwnedSemaphorePermit, AddressSlot, InUse)>,
) {
    let (client, backend) = match tokio::try_join!(client, backend) {
        Ok(pair) => pair,
        Err(error) => {
            tracing::debug!(%alias, %error, "websocket upgrade failed");
            return;
        }
    };
    let _guard = TunnelGuard::new(shared.clone());
    let mut shutdown = shared.shutdown.clone();
    let session_state = shared.store.subscribe(&alias).map(|(_, rx)| rx);
    let stop = async move {
        let ended = async move {
            if let Some(mut rx) = session_state {
                let _ = rx.wait_for(|s| *s == SessionState::Ended).await;
            }
        };
        tokio::select! {
            _ = ended => "session ended",
            _ = shutdown.wait_for(|s| *s) => "proxy shutting down",
        }
    };
    let reason = tunnel::run(TokioIo::new(client), TokioIo::new(backend), stop).await;
    tracing::info!(%alias, reason, "websocket closed");
}
