//! The calls about sessions a login node makes: create, list, status
//! (with its long-poll), delete.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::StatusCode;

use crate::api::{
    CreateSession, DeleteSession, EndReason, Extend, ExtendRefused, OwnSession, SessionCreated,
    SessionState, SessionStatus,
};
use crate::clock::unix_now;
use crate::identity::Caller;
use crate::proxy::addresses::canonical_ip;
use crate::proxy::answers::failure::Failure;
use crate::proxy::audit;
use crate::proxy::request::plumbing::ConnInfo;
use crate::proxy::shared::Shared;
use crate::proxy::store::{Quotas, Session, StoreError};

use super::aliases;
use super::guards::{bad_secret, from_clients, owner_only, secret_ok, sha256};
use super::reply::{ApiResult, Refusal, json, no_content, parse};

pub(super) async fn create(
    shared: &Arc<Shared>,
    conn: ConnInfo,
    caller: Option<Caller>,
    body: &Bytes,
) -> ApiResult {
    from_clients(shared, conn)?;
    let request: CreateSession = parse(body)?;
    let mut token_sha256 = [0u8; 32];
    if request.token_sha256.len() != 64
        || request.token_sha256.bytes().any(|b| b.is_ascii_uppercase())
        || hex::decode_to_slice(&request.token_sha256, &mut token_sha256).is_err()
    {
        return Err(Refusal::new(
            Failure::InvalidField,
            "token_sha256 must be 64 lower-case hex digits",
        ));
    }
    let user_ok = (1..=64).contains(&request.user.len())
        && request
            .user
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-@".contains(&b));
    if !user_ok {
        return Err(Refusal::new(
            Failure::InvalidField,
            "user must be 1-64 characters of letters, digits, '.', '_', '-', '@'",
        ));
    }
    // A proven caller is who the session is for: the `user` it names must
    // be its name here, when this host knows the uid (else the uid is).
    let user = match caller {
        None => request.user.clone(),
        Some(caller) => match shared.user_names.name(caller.uid).await {
            Some(name) if name != request.user => {
                return Err(Refusal::new(
                    Failure::Forbidden,
                    format!(
                        "user `{}` is not the caller (uid {})",
                        request.user, caller.uid
                    ),
                ));
            }
            Some(name) => name,
            None => format!("uid-{}", caller.uid),
        },
    };
    // On a proxy with `[clusters]` every session names one of them: the
    // name decides where its backend may register from, and a session
    // without one would fall back to every range there is.
    let known = &shared.config.clusters;
    let cluster_ok = match &request.cluster {
        Some(cluster) => {
            crate::api::is_cluster_name(cluster)
                && (known.is_empty() || known.contains_key(cluster))
        }
        None => known.is_empty(),
    };
    if !cluster_ok {
        return Err(Refusal::new(
            Failure::InvalidField,
            format!(
                "cluster must be one of this proxy's: {} (a jrps older than [clusters] names none)",
                known.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
        ));
    }
    let max_ttl = shared.config.max_ttl.as_secs();
    if request.ttl_seconds == 0 || request.ttl_seconds > max_ttl {
        return Err(Refusal::new(
            Failure::InvalidField,
            format!("ttl_seconds must be between 1 and {max_ttl}"),
        ));
    }
    let secret = hex::encode(random_bytes());
    let now = unix_now();
    let cookie_salt = random_bytes();
    for _ in 0..32 {
        let alias = aliases::draw();
        let session = Session {
            alias: alias.clone().into_boxed_str(),
            user: user.clone(),
            token_sha256,
            secret_sha256: sha256(secret.as_bytes()),
            cookie: shared.cookie_key.cookie(&alias, &cookie_salt),
            cookie_salt,
            job_id: None,
            backend: None,
            backend_authority: None,
            state: SessionState::Pending,
            created_at: now,
            expires_at: now + request.ttl_seconds,
            registered_at: None,
            ended_at: None,
            end_reason: None,
            owner: caller.map(|c| c.uid),
            client: Some(canonical_ip(conn.peer.ip())),
            clock: None,
            cluster: request.cluster.clone(),
            kind: request.kind,
            revision: 0,
            load: Arc::default(),
        };
        let limits = &shared.config.limits;
        let quotas = Quotas {
            per_user: limits.max_sessions_per_user,
            per_client: limits.max_sessions_per_client,
            total: limits.max_sessions,
        };
        match shared.store.insert(session, &quotas).await {
            Ok(session) => {
                tracing::info!(alias = %session.alias, user = %session.user, "session created");
                shared.audit.record(
                    &session,
                    audit::Event::Created {
                        client: canonical_ip(conn.peer.ip()),
                    },
                );
                return Ok(json(
                    StatusCode::CREATED,
                    &SessionCreated {
                        url: shared.public_url(&alias),
                        alias,
                        register_secret: secret,
                        expires_at: session.expires_at,
                    },
                ));
            }
            Err(StoreError::AliasTaken) => continue,
            Err(StoreError::Quota(exceeded)) => {
                tracing::info!(%user, peer = %conn.peer.ip(), %exceeded, "session refused");
                return Err(Refusal::new(
                    Failure::TooManySessions,
                    format!("{exceeded}; end one (jrps down) or wait for one to end"),
                ));
            }
            Err(other) => return Err(other.into()),
        }
    }
    Err(Refusal::new(
        Failure::Unavailable,
        "no free alias found; try again",
    ))
}

/// The caller's sessions; only with identity on, since without it there is
/// no owner to list for.
pub(super) fn list(shared: &Shared, conn: ConnInfo, caller: Option<Caller>) -> ApiResult {
    from_clients(shared, conn)?;
    let caller = caller.ok_or_else(|| {
        Refusal::new(
            Failure::Forbidden,
            "listing sessions needs identity = \"munge\"",
        )
    })?;
    let mut own: Vec<OwnSession> = shared
        .store
        .all()
        .into_iter()
        .filter(|s| s.owner == Some(caller.uid))
        .map(|s| {
            let status = status_of(&s);
            OwnSession {
                url: shared.public_url(&s.alias),
                alias: status.alias,
                state: status.state,
                job_id: status.job_id,
                created_at: s.created_at,
                expires_at: s.expires_at,
                end_reason: status.end_reason,
                restarted: status.restarted,
                ends_at: status.ends_at,
                extend_until: status.extend_until,
                cluster: s.cluster.clone(),
                kind: s.kind,
            }
        })
        .collect();
    own.sort_by_key(|s| s.created_at);
    Ok(json(StatusCode::OK, &own))
}

pub(super) async fn status(
    shared: &Arc<Shared>,
    conn: ConnInfo,
    alias: &str,
    uri: &http::Uri,
) -> ApiResult {
    from_clients(shared, conn)?;
    let mut wait = false;
    let mut timeout_s: u64 = 30;
    for pair in uri.query().unwrap_or("").split('&') {
        match pair.split_once('=') {
            Some(("wait", "ready")) => wait = true,
            Some(("wait", other)) => {
                return Err(Refusal::new(
                    Failure::InvalidField,
                    format!("wait={other}: only wait=ready is supported"),
                ));
            }
            Some(("timeout_s", n)) => {
                timeout_s = n.parse().map_err(|_| {
                    Refusal::new(Failure::InvalidField, "timeout_s must be whole seconds")
                })?
            }
            _ => {}
        }
    }
    let (session, mut changes) = shared
        .store
        .subscribe(alias)
        .ok_or_else(|| Refusal::new(Failure::NotFound, "no such session"))?;
    if !wait || status_of(&session).state != SessionState::Pending {
        return Ok(json(StatusCode::OK, &status_of(&session)));
    }
    let limit = Duration::from_secs(timeout_s).min(shared.config.limits.long_poll_max);
    let mut shutdown = shared.shutdown.clone();
    // The answer is whatever the state is when the wait ends: changed,
    // timed out, or the proxy is stopping.
    tokio::select! {
        _ = tokio::time::timeout(limit, changes.wait_for(|s| *s != SessionState::Pending)) => {}
        _ = shutdown.wait_for(|s| *s) => {}
    }
    let session = shared
        .store
        .get(alias)
        .ok_or_else(|| Refusal::new(Failure::NotFound, "no such session"))?;
    Ok(json(StatusCode::OK, &status_of(&session)))
}

pub(super) async fn delete(
    shared: &Arc<Shared>,
    conn: ConnInfo,
    caller: Option<Caller>,
    alias: &str,
    body: &Bytes,
) -> ApiResult {
    let request: DeleteSession = parse(body)?;
    let session = shared
        .store
        .get(alias)
        .ok_or_else(|| Refusal::new(Failure::NotFound, "no such session"))?;
    owner_only(shared, conn, &session)?;
    // A proven owner (checked in `dispatch`) needs no secret: `jrps down`
    // from another login node has none.
    let proven_owner = caller.is_some() && request.secret.is_empty();
    if !proven_owner && !secret_ok(&session, &request.secret) {
        return Err(bad_secret());
    }
    shared.phases.forget(alias);
    if shared.end_session(alias, request.reason).await? {
        tracing::info!(
            alias,
            reason = request.reason.map(EndReason::name),
            "session deleted"
        );
    }
    Ok(no_content())
}

/// `jrps extend`: the owner moves the session's end within its headroom.
/// The same guards as `delete`.
pub(super) async fn extend(
    shared: &Arc<Shared>,
    conn: ConnInfo,
    caller: Option<Caller>,
    alias: &str,
    body: &Bytes,
) -> ApiResult {
    let request: Extend = parse(body)?;
    let session = shared
        .store
        .get(alias)
        .ok_or_else(|| Refusal::new(Failure::NotFound, "no such session"))?;
    owner_only(shared, conn, &session)?;
    let proven_owner = caller.is_some() && request.secret.is_empty();
    if !proven_owner && !secret_ok(&session, &request.secret) {
        return Err(bad_secret());
    }
    let session = extend_end(shared, alias, request.by_s).await?;
    Ok(json(StatusCode::OK, &status_of(&session)))
}

/// Moves a live session's end by `by_s` seconds, within its headroom: the
/// one rule for `jrps extend` and the page's Extend action.
pub(crate) async fn extend_end(
    shared: &Shared,
    alias: &str,
    by_s: u64,
) -> Result<Arc<Session>, Refusal> {
    if by_s == 0 {
        return Err(Refusal::new(
            Failure::InvalidField,
            "by_s must be at least 1 second",
        ));
    }
    let now = unix_now();
    let extended = shared
        .store
        .update(alias, |s| {
            if !s.is_live(now) {
                return Err(Refusal::new(Failure::Conflict, "the session has ended"));
            }
            let Some(clock) = &s.clock else {
                return Err(Refusal::new(
                    Failure::Conflict,
                    "the session's end is not known yet: its Jupyter has not registered",
                ));
            };
            let clock = clock.extended(by_s).map_err(|refused| match refused {
                ExtendRefused::NoHeadroom => Refusal::new(
                    Failure::Conflict,
                    "its partition has no extend_max: the session ends with its job",
                ),
                ExtendRefused::BeyondHeadroom { left_s } => Refusal::new(
                    Failure::Conflict,
                    format!("beyond the headroom: at most {left_s} s more"),
                ),
            })?;
            Ok(Session {
                clock: Some(clock),
                ..s.clone()
            })
        })
        .await??;
    tracing::info!(alias, by_s, "session extended");
    Ok(extended)
}

pub(super) fn random_bytes() -> [u8; 32] {
    let mut bytes = [0u8; 32];
    rand::fill(&mut bytes);
    bytes
}

/// The state as the request path sees it: a session past its TTL is ended
/// even in the (at most one second) before the sweep records it.
pub(super) fn status_of(session: &Session) -> SessionStatus {
    let state = if session.is_live(unix_now()) {
        session.state
    } else {
        SessionState::Ended
    };
    SessionStatus {
        alias: session.alias.to_string(),
        state,
        job_id: session.job_id.clone(),
        expires_at: session.expires_at,
        end_reason: (state == SessionState::Ended)
            .then(|| session.end_reason_now())
            .flatten(),
        restarted: session.is_restarting(),
        ends_at: session.clock.as_ref().map(|c| c.ends_at),
        extend_until: session.clock.as_ref().and_then(|c| c.extend_until),
    }
}
