//! The session's own channel: a few paths under [`CHANNEL_PREFIX`] on the
//! session's origin that the proxy answers itself and never forwards, for
//! the page jrps puts inside Jupyter. The request path has checked the
//! edge cookie (or token) and the `Origin` before it comes here, so every
//! answer is about this one session, to someone who may open it.
//!
//! - `GET  /_jrps/v1/status`: when it ends, by the proxy's clock, when to
//!   warn and save, and the site's announcement ([`PageStatus`]).
//! - `POST /_jrps/v1/extend` `{"by_s": N}`: the Extend action; the same rule
//!   as `jrps extend` ([`super::sessions::extend_end`]). JSON only, so that
//!   no cross-site form can send it.
//!
//! Answers are `no-store`: an end moved by `jrps extend` must show at the
//! next poll, whatever sits between browser and proxy.

use std::sync::Arc;

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{Method, Request, StatusCode};
use hyper::body::Incoming;
use serde::{Deserialize, Serialize};

use crate::api::{ApiError, CHANNEL_PREFIX, EndReason, SessionState};
use crate::clock::unix_now;
use crate::proxy::answers::failure::Failure;
use crate::proxy::request::plumbing::{ProxyBody, full};
use crate::proxy::shared::Shared;
use crate::proxy::store::Session;

use super::reply::{ApiResult, Refusal, json, parse, read_body};
use super::sessions::{extend_end, status_of};

/// What the page polls for. Times are Unix seconds by the proxy's clock;
/// the page compares `ends_at` with `now`, never with its own clock.
#[derive(Debug, Serialize, Deserialize)]
pub struct PageStatus {
    pub state: SessionState,
    pub now: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_reason: Option<EndReason>,
    /// When the session ends; absent while its job has not said.
    pub ends_at: Option<u64>,
    /// How far its end may move (the Extend action); absent without headroom.
    pub extend_until: Option<u64>,
    pub warn_before: Vec<u32>,
    pub save_before: Option<u32>,
    pub announcement: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExtendRequest {
    by_s: u64,
}

/// Answers a request whose path starts with [`CHANNEL_PREFIX`].
pub async fn respond(
    shared: &Arc<Shared>,
    session: &Session,
    req: Request<Incoming>,
) -> http::Response<ProxyBody> {
    let result = dispatch(shared, session, req).await;
    full(result.unwrap_or_else(|Refusal(failure, detail)| {
        json(
            failure.status(),
            &ApiError {
                error: failure.code().to_owned(),
                detail,
            },
        )
    }))
}

async fn dispatch(shared: &Arc<Shared>, session: &Session, req: Request<Incoming>) -> ApiResult {
    let path = req.uri().path();
    let call = &path[CHANNEL_PREFIX.len()..];
    match (call, req.method()) {
        ("v1/status", &Method::GET) => Ok(json(StatusCode::OK, &page_status(shared, session))),
        ("v1/extend", &Method::POST) => {
            let is_json = req
                .headers()
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.starts_with("application/json"));
            if !is_json {
                return Err(Refusal::new(
                    Failure::BadRequest,
                    "send the body as application/json",
                ));
            }
            let (head, body) = req.into_parts();
            let body: Bytes = read_body(shared, &head, body).await?;
            let request: ExtendRequest = parse(&body)?;
            let extended = extend_end(shared, &session.alias, request.by_s).await?;
            Ok(json(StatusCode::OK, &page_status(shared, &extended)))
        }
        ("v1/status" | "v1/extend", method) => Err(Refusal::new(
            Failure::MethodNotAllowed,
            format!("{method} is not allowed here"),
        )),
        _ => Err(Refusal::new(
            Failure::NotFound,
            format!("nothing at {path}: paths under {CHANNEL_PREFIX} are the proxy's"),
        )),
    }
}

fn page_status(shared: &Shared, session: &Session) -> PageStatus {
    let now = unix_now();
    let status = status_of(session);
    let clock = session.clock.as_ref();
    PageStatus {
        state: status.state,
        now,
        end_reason: status.end_reason,
        ends_at: status.ends_at,
        extend_until: status.extend_until,
        warn_before: clock.map(|c| c.warn_before.clone()).unwrap_or_default(),
        save_before: clock.map(|c| c.save_before),
        announcement: shared.announcement.text(now),
    }
}
