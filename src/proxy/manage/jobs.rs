//! The calls a session's job makes: link its job, report its phase,
//! register and restart its backend, and the idle watch's activity read.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::StatusCode;

use crate::api::{
    self, Activity, ActivityQuery, ClockBeat, EndReason, LinkJob, Register, ReportPhase,
    SessionState,
};
use crate::clock::unix_now;
use crate::proxy::answers::failure::Failure;
use crate::proxy::answers::phases::Reported;
use crate::proxy::audit;
use crate::proxy::request::plumbing::ConnInfo;
use crate::proxy::shared::Shared;
use crate::proxy::store::{Session, authority_of};

use super::guards::{
    backend_of, bad_secret, from_backends, owner_only, secret_ok, session_with_secret,
};
use super::reply::{ApiResult, Refusal, json, no_content, parse};
use super::sessions::status_of;

pub(super) async fn link_job(shared: &Arc<Shared>, alias: &str, body: &Bytes) -> ApiResult {
    let request: LinkJob = parse(body)?;
    let job_ok = (1..=64).contains(&request.job_id.len())
        && request
            .job_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-+:".contains(&b));
    if !job_ok {
        return Err(Refusal::new(
            Failure::InvalidField,
            "job_id must be 1-64 characters of letters, digits, '.', '_', '-', '+', ':'",
        ));
    }
    // Linking again to the same job is a 204 too, but only the first is news.
    let mut first = false;
    let linked = shared
        .store
        .update(alias, |s| {
            if !secret_ok(s, &request.secret) {
                return Err(bad_secret());
            }
            first = s.job_id.is_none();
            match &s.job_id {
                Some(existing) if *existing != request.job_id => Err(Refusal::new(
                    Failure::Conflict,
                    format!("already linked to job {existing}"),
                )),
                _ if s.state == SessionState::Ended => {
                    Err(Refusal::new(Failure::Conflict, "the session has ended"))
                }
                _ => Ok(Session {
                    job_id: Some(request.job_id.clone()),
                    ..s.clone()
                }),
            }
        })
        .await??;
    if first && linked.state != SessionState::Ended {
        let job_id = request.job_id;
        shared
            .audit
            .record(&linked, audit::Event::JobLinked { job_id });
    }
    Ok(no_content())
}

pub(super) async fn report_phase(shared: &Arc<Shared>, alias: &str, body: &Bytes) -> ApiResult {
    let request: ReportPhase = parse(body)?;
    if let Some(detail) = &request.detail {
        api::check_phase_detail(detail)
            .map_err(|problem| Refusal::new(Failure::InvalidField, problem))?;
    }
    let session = session_with_secret(shared, alias, &request.secret)?;
    match status_of(&session).state {
        SessionState::Ended => Err(Refusal::new(Failure::Conflict, "the session has ended")),
        // Ready already: the page is no longer shown, nothing to keep.
        SessionState::Ready => Ok(no_content()),
        SessionState::Pending => {
            let reported = Reported {
                phase: request.phase,
                detail: request.detail,
            };
            shared.phases.set(alias, reported, |other| {
                shared
                    .store
                    .get(other)
                    .is_some_and(|s| s.state == SessionState::Pending)
            });
            Ok(no_content())
        }
    }
}

pub(super) async fn register(
    shared: &Arc<Shared>,
    conn: ConnInfo,
    alias: &str,
    body: &Bytes,
) -> ApiResult {
    let arrived = Instant::now();
    let request: Register = parse(body)?;
    if let Some(clock) = &request.clock {
        clock
            .check()
            .map_err(|problem| Refusal::new(Failure::InvalidField, format!("clock: {problem}")))?;
    }
    let ip = from_backends(shared, conn)?;
    let backend = SocketAddr::new(ip, request.port);
    let now = unix_now();
    let session = shared
        .store
        .update(alias, |s| {
            if !secret_ok(s, &request.secret) {
                return Err(bad_secret());
            }
            backend_of(shared, s, ip)?;
            // Once per run: a restarted session is pending again.
            if s.state == SessionState::Ready {
                return Err(Refusal::new(
                    Failure::Conflict,
                    "this session is already registered",
                ));
            }
            if s.state == SessionState::Ended || now >= s.expires_at {
                return Err(Refusal::new(Failure::Conflict, "the session has ended"));
            }
            if !shared.config.backend_ports.contains(request.port) {
                return Err(Refusal::new(
                    Failure::InvalidField,
                    format!("port {} is not in backend_ports", request.port),
                ));
            }
            // On a shared node a port a crashed Jupyter freed can be bound
            // by another user's process; it must not receive the first
            // session's requests and cookie.
            if let Some(holder) = shared.store.route_holder(backend)
                && *holder.alias != *alias
                && holder.is_live(now)
            {
                return Err(Refusal::new(
                    Failure::Conflict,
                    format!("another live session already routes to {backend}"),
                ));
            }
            Ok(Session {
                backend: Some(backend),
                backend_authority: authority_of(backend),
                state: SessionState::Ready,
                registered_at: Some(now),
                // This run's: a job started again has a new end.
                clock: request.clock.clone(),
                ..s.clone()
            })
        })
        .await??;
    shared.phases.forget(alias);
    shared.metrics.activation(arrived.elapsed());
    tracing::info!(alias, %backend, "session registered");
    shared
        .audit
        .record(&session, audit::Event::Registered { backend });
    Ok(json(StatusCode::OK, &status_of(&session)))
}

/// A job the scheduler started again after its node failed: the session
/// goes back to pending for the new run's registration. Only for the job
/// linked to it, with its secret, from where backends may be, for a session
/// that was registered and did not end for another reason, and only once
/// its first run's backend no longer answers (a requeue that Slurm made
/// while the old node still runs must not move a live session).
pub(super) async fn restart(
    shared: &Arc<Shared>,
    conn: ConnInfo,
    alias: &str,
    body: &Bytes,
) -> ApiResult {
    let request: api::Restart = parse(body)?;
    let ip = from_backends(shared, conn)?;
    let before = session_with_secret(shared, alias, &request.secret)?;
    backend_of(shared, &before, ip)?;
    if let Some(old) = before.backend
        && before.state == SessionState::Ready
        && backend_answers(old).await
    {
        return Err(Refusal::new(
            Failure::Conflict,
            "the session's first run still answers",
        ));
    }
    let now = unix_now();
    let session = shared
        .store
        .update(alias, |s| {
            if !secret_ok(s, &request.secret) {
                return Err(bad_secret());
            }
            if s.job_id.as_deref() != Some(request.job_id.as_str()) {
                return Err(Refusal::new(
                    Failure::Conflict,
                    "the session belongs to another job",
                ));
            }
            let lost = match s.state {
                SessionState::Ready => s.backend == before.backend,
                SessionState::Ended => s.end_reason == Some(EndReason::Unreachable),
                // Not registered yet, or restarted already: nothing to undo.
                SessionState::Pending => return Ok(s.clone()),
            };
            if !lost || now >= s.expires_at {
                return Err(Refusal::new(Failure::Conflict, "the session has ended"));
            }
            Ok(Session {
                backend: None,
                backend_authority: None,
                state: SessionState::Pending,
                ended_at: None,
                end_reason: None,
                ..s.clone()
            })
        })
        .await??;
    tracing::info!(alias, node = %ip, "job started again: session waits for its new run");
    shared
        .audit
        .record(&session, audit::Event::Restarted { node: ip });
    Ok(json(StatusCode::OK, &status_of(&session)))
}

/// Whether something accepts a TCP connection at `backend` within 2 s.
pub(super) async fn backend_answers(backend: SocketAddr) -> bool {
    let connect = tokio::net::TcpStream::connect(backend);
    matches!(
        tokio::time::timeout(Duration::from_secs(2), connect).await,
        Ok(Ok(_))
    )
}

/// When the proxy last passed a request to the session's Jupyter, for the
/// job's idle watch. The same guard as `delete`: it says whether someone is
/// using the notebook, which is the session owner's business only.
pub(super) async fn activity(
    shared: &Arc<Shared>,
    conn: ConnInfo,
    alias: &str,
    body: &Bytes,
) -> ApiResult {
    let request: ActivityQuery = parse(body)?;
    let session = shared
        .store
        .get(alias)
        .ok_or_else(|| Refusal::new(Failure::NotFound, "no such session"))?;
    owner_only(shared, conn, &session)?;
    if !secret_ok(&session, &request.secret) {
        return Err(bad_secret());
    }
    Ok(json(
        StatusCode::OK,
        &Activity {
            last_request_at: session.load.last_request(),
        },
    ))
}

/// The job's watch, every few minutes: the job's end as the scheduler says
/// now (an operator's `scontrol update TimeLimit=` moves it), answered with
/// the session's clock, whose end `jrps extend` may have moved. The same
/// guard as `activity`.
pub(super) async fn clock_beat(
    shared: &Arc<Shared>,
    conn: ConnInfo,
    alias: &str,
    body: &Bytes,
) -> ApiResult {
    let request: ClockBeat = parse(body)?;
    let session = shared
        .store
        .get(alias)
        .ok_or_else(|| Refusal::new(Failure::NotFound, "no such session"))?;
    owner_only(shared, conn, &session)?;
    if !secret_ok(&session, &request.secret) {
        return Err(bad_secret());
    }
    let Some(clock) = &session.clock else {
        return Err(Refusal::new(
            Failure::Conflict,
            "the session has no clock: its registration reported no end",
        ));
    };
    let moved = request
        .job_ends_at
        .map(|end| clock.with_job_end(end))
        .filter(|moved| moved != clock);
    let session = match moved {
        None => session,
        Some(_) => {
            shared
                .store
                .update(alias, |s| {
                    let clock = match (&s.clock, request.job_ends_at) {
                        (Some(clock), Some(end)) => Some(clock.with_job_end(end)),
                        (clock, _) => clock.clone(),
                    };
                    Ok::<_, Refusal>(Session { clock, ..s.clone() })
                })
                .await??
        }
    };
    Ok(json(StatusCode::OK, &session.clock))
}
