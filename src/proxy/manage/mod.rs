//! The management API on `manage.<domain>` (API v1, docs/design.md "The
//! proxy API v1"), plus `/healthz` and `/metrics`. Bodies are the shared
//! types in `crate::api`; this folder owns who may call what, the
//! validation of fields, and the order in which changes are committed
//! (store first, answer after).
//!
//! - this file: the routes (`dispatch`), `/healthz` and `/metrics`
//! - `guards`: credentials, addresses, owners and secrets
//! - `sessions`: create, list, status, delete (from login nodes)
//! - `jobs`: link, phase, register, restart, activity, clock (from the job)
//! - `channel`: the status and extend calls a session's own page makes, on
//!   its origin behind its edge cookie
//! - `reply`: refusals, JSON bodies, the request body within its limit
//! - `aliases`: the words an alias is drawn from
//!
//! Guards: create, status and `/metrics` from `allowed_client_cidrs`
//! (`/healthz` from anywhere); link and delete
//! need the session's secret (delete also from the registered backend host,
//! or before registration from any backend address); register and restart
//! need the secret and a peer inside `allowed_backend_cidrs`; phase (the
//! launcher's report for the starting page) needs the secret and changes
//! nothing durable.

mod aliases;
pub mod channel;
mod guards;
mod jobs;
mod reply;
mod sessions;

use std::sync::Arc;

use http::header::{HeaderValue, RETRY_AFTER};
use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;

use crate::api::{ApiError, PREFIX};
use crate::clock::unix_now;
use crate::proxy::answers::failure::Failure;
use crate::proxy::request::plumbing::{ConnInfo, ProxyBody, full};
use crate::proxy::shared::Shared;
use guards::{credential, from_clients, owned_by, prove};
use jobs::{activity, clock_beat, link_job, register, report_phase, restart};
use reply::{ApiResult, Refusal, json, known_alias, read_body, text};
use sessions::{create, delete, extend, list, status};

pub async fn respond(
    shared: &Arc<Shared>,
    conn: ConnInfo,
    req: Request<Incoming>,
) -> Response<ProxyBody> {
    let result = dispatch(shared, conn, req).await;
    full(result.unwrap_or_else(|Refusal(failure, detail)| {
        let mut response = json(
            failure.status(),
            &ApiError {
                error: failure.code().to_owned(),
                detail,
            },
        );
        if let Some(seconds) = failure.retry_after() {
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }))
}

async fn dispatch(shared: &Arc<Shared>, conn: ConnInfo, req: Request<Incoming>) -> ApiResult {
    let path = req.uri().path().to_owned();
    let method = req.method().clone();
    if path == "/healthz" {
        // 200 while this replica serves: routes it knows keep working through
        // a database outage, so a load balancer should not drop it then (and
        // would drop every replica at once). The body says what is degraded.
        let mut body = if shared.store.database_up() {
            "ok\n".to_owned()
        } else {
            "ok; state database unreachable: serving known routes, API changes answer 503\n"
                .to_owned()
        };
        if let Some(lapse) = shared.store.duty_lapse(unix_now()) {
            body.push_str(&format!(
                "no replica has held the duty lock for {lapse} s: ended sessions are not \
                 swept and backends not health-checked (is something else holding it?)\n"
            ));
        }
        return Ok(text(StatusCode::OK, body, "text/plain"));
    }
    // With a listener of its own, the API is not on the public one at all
    // (`/healthz` stays, for load balancers).
    if !conn.api_only && shared.config.api_addr.is_some() {
        return Err(Refusal::new(Failure::NotFound, format!("no API at {path}")));
    }
    if path == "/metrics" {
        // Counts only, but still nobody else's business: operators scrape
        // from inside (add the scraper to allowed_client_cidrs).
        from_clients(shared, conn)?;
        return Ok(text(
            StatusCode::OK,
            shared.metrics.render(&shared.store),
            "text/plain; version=0.0.4",
        ));
    }
    // Exactly `/api/v1/` and one `/` between segments: `/api/v1sessions`,
    // `/api/v1//sessions` or a trailing `/` are nothing, not another
    // spelling of a call.
    let Some(rest) = path
        .strip_prefix(PREFIX)
        .and_then(|rest| rest.strip_prefix('/'))
    else {
        return Err(Refusal::new(Failure::NotFound, format!("no API at {path}")));
    };
    let segments: Vec<&str> = rest.split('/').collect();
    if segments.iter().any(|segment| segment.is_empty()) {
        return Err(Refusal::new(Failure::NotFound, format!("no API at {path}")));
    }
    let (head, body) = req.into_parts();
    // The cheap checks of a credential come before the body is read, the
    // costly one after: the credential covers the body.
    let credential = credential(shared, conn, &head)?;
    let body = read_body(shared, &head, body).await?;
    let caller = match (&shared.config.identity, credential) {
        (Some(munge), Some(credential)) => {
            Some(prove(shared, conn, munge, &credential, &head, &body).await?)
        }
        _ => None,
    };
    if let ["sessions", alias, ..] = segments.as_slice() {
        owned_by(shared, caller, &known_alias(alias)?)?;
    }
    match (segments.as_slice(), &method) {
        (["sessions"], &Method::POST) => create(shared, conn, caller, &body).await,
        (["sessions"], &Method::GET) => list(shared, conn, caller),
        (["sessions", alias, "job"], &Method::POST) => {
            let alias = known_alias(alias)?;
            link_job(shared, &alias, &body).await
        }
        (["sessions", alias, "phase"], &Method::POST) => {
            let alias = known_alias(alias)?;
            report_phase(shared, &alias, &body).await
        }
        (["sessions", alias, "activity"], &Method::POST) => {
            let alias = known_alias(alias)?;
            activity(shared, conn, &alias, &body).await
        }
        (["sessions", alias, "clock"], &Method::POST) => {
            let alias = known_alias(alias)?;
            clock_beat(shared, conn, &alias, &body).await
        }
        (["sessions", alias, "extend"], &Method::POST) => {
            let alias = known_alias(alias)?;
            extend(shared, conn, caller, &alias, &body).await
        }
        (["sessions", alias, "register"], &Method::POST) => {
            let alias = known_alias(alias)?;
            register(shared, conn, &alias, &body).await
        }
        (["sessions", alias, "restart"], &Method::POST) => {
            let alias = known_alias(alias)?;
            restart(shared, conn, &alias, &body).await
        }
        (["sessions", alias], &Method::GET) => {
            let alias = known_alias(alias)?;
            status(shared, conn, &alias, &head.uri).await
        }
        (["sessions", alias], &Method::DELETE) => {
            let alias = known_alias(alias)?;
            delete(shared, conn, caller, &alias, &body).await
        }
        (
            ["sessions"]
            | ["sessions", _]
            | [
                "sessions",
                _,
                "job" | "register" | "restart" | "phase" | "activity" | "clock" | "extend",
            ],
            _,
        ) => Err(Refusal::new(
            Failure::MethodNotAllowed,
            format!("{method} is not allowed here"),
        )),
        _ => Err(Refusal::new(Failure::NotFound, format!("no API at {path}"))),
    }
}
