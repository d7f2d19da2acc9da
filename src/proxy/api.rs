//! API v1 handlers (docs/design.md, "The proxy API v1"), plus `/healthz` and
//! `/metrics`. Bodies are the shared types in `crate::api`; this module owns
//! who may call what, the validation of fields, and the order in which
//! changes are committed (store first, answer after).
//!
//! Guards: create, status and `/metrics` from `allowed_client_cidrs`
//! (`/healthz` from anywhere); link and delete
//! need the session's secret (delete also from the registered backend host,
//! or before registration from any backend address); register and restart
//! need the secret and a peer inside `allowed_backend_cidrs`; phase (the
//! launcher's report for the starting page) needs the secret and changes
//! nothing durable.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{
    AUTHORIZATION, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE, HeaderValue, RETRY_AFTER,
};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::api::{
    self, Activity, ActivityQuery, ApiError, CreateSession, DeleteSession, EndReason, LinkJob,
    OwnSession, PREFIX, Register, ReportPhase, SessionCreated, SessionState, SessionStatus,
};
use crate::identity::{self, Caller};

use super::aliases;
use super::config::{canonical_ip, cidrs_contain};
use super::phases::Reported;
use super::plumbing::{ConnInfo, ProxyBody, full};
use super::status::Failure;
use super::store::{Quotas, Session, StoreError, authority_of};
use super::{Shared, audit};
use crate::clock::unix_now;

/// A refused call: which [`Failure`] and a human explanation.
struct Refusal(Failure, String);

impl Refusal {
    fn new(failure: Failure, detail: impl Into<String>) -> Refusal {
        Refusal(failure, detail.into())
    }
}

impl From<StoreError> for Refusal {
    fn from(error: StoreError) -> Refusal {
        match error {
            StoreError::NotFound => Refusal::new(Failure::NotFound, "no such session"),
            // Logged once per outage by the store.
            StoreError::Unavailable(_) => Refusal::new(
                Failure::Unavailable,
                "the state database is unreachable; try again shortly",
            ),
            other => {
                tracing::error!(error = %other, "state database");
                Refusal::new(Failure::Internal, "the proxy could not save the change")
            }
        }
    }
}

/// The most of an oversized API body read just to answer 413 politely.
const DRAIN_LIMIT: usize = 1024 * 1024;

type ApiResult = Result<Response<Full<Bytes>>, Refusal>;

pub async fn handle(
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
                "job" | "register" | "restart" | "phase" | "activity",
            ],
            _,
        ) => Err(Refusal::new(
            Failure::MethodNotAllowed,
            format!("{method} is not allowed here"),
        )),
        _ => Err(Refusal::new(Failure::NotFound, format!("no API at {path}"))),
    }
}

/// With `identity = "munge"`, the call's credential, once it passed the
/// checks that cost nothing: it is there, the peer may call the API, and it
/// has munge's shape. A call without one gets 401. `None` when identity is off.
fn credential(
    shared: &Shared,
    conn: ConnInfo,
    head: &http::request::Parts,
) -> Result<Option<String>, Refusal> {
    if shared.config.identity.is_none() {
        return Ok(None);
    }
    let credential = head
        .headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix(identity::AUTH_SCHEME))
        .and_then(|v| v.strip_prefix(' '))
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .ok_or_else(|| {
            Refusal::new(
                Failure::Unauthenticated,
                format!(
                    "this proxy needs `Authorization: {} <credential>`",
                    identity::AUTH_SCHEME
                ),
            )
        })?;
    // Only login and compute nodes call the API: nobody else may make the
    // proxy start a process, and a malformed credential starts none.
    let ip = canonical_ip(conn.peer.ip());
    if !cidrs_contain(&shared.config.allowed_client_cidrs, ip)
        && !cidrs_contain(&shared.config.allowed_backend_cidrs, ip)
    {
        return Err(Refusal::new(
            Failure::Forbidden,
            format!("{ip} is in neither allowed_client_cidrs nor allowed_backend_cidrs"),
        ));
    }
    if !identity::looks_like_credential(credential) {
        return Err(Refusal::new(
            Failure::Unauthenticated,
            "munge credential refused: it is not one (MUNGE:…:)",
        ));
    }
    Ok(Some(credential.to_owned()))
}

/// The uid `credential` proves for this call (its method, path and body);
/// 401 when munge refuses it (expired, replayed, another realm's), when it
/// was made for another call, or when any replica took it before. One
/// address takes only its share of the checks that may run at once.
async fn prove(
    shared: &Shared,
    conn: ConnInfo,
    munge: &identity::Munge,
    credential: &str,
    head: &http::request::Parts,
    body: &Bytes,
) -> Result<Caller, Refusal> {
    let Some(_decoding) = shared.decodes.acquire(canonical_ip(conn.peer.ip())).await else {
        return Err(Refusal::new(
            Failure::Unavailable,
            "too many credential checks at once; try again",
        ));
    };
    let path_and_query = head
        .uri
        .path_and_query()
        .map_or(head.uri.path(), |p| p.as_str());
    let payload = api::call_payload(head.method.as_str(), path_and_query, body);
    let proven = match munge.decode(credential, &payload).await {
        Ok(proven) => proven,
        // munge's words for the credential, nothing about this host.
        Err(identity::MungeError::Refused { message, .. }) => {
            return Err(Refusal::new(
                Failure::Unauthenticated,
                format!("munge credential refused: {message}"),
            ));
        }
        Err(error) => {
            tracing::error!(%error, "cannot check munge credentials");
            return Err(Refusal::new(
                Failure::Unavailable,
                "cannot check credentials now",
            ));
        }
    };
    // This replica's munged took it once; the shared record says whether
    // another replica's did.
    let first = shared
        .store
        .spend_credential(sha256(credential.as_bytes()), proven.replayable_until())
        .await?;
    if !first {
        return Err(Refusal::new(
            Failure::Unauthenticated,
            "munge credential refused: Replayed credential (another replica took it)",
        ));
    }
    Ok(proven.caller)
}

/// With identity on, a session answers only its owner; another uid's and
/// an unknown alias get the same 403, so nobody learns which aliases exist.
fn owned_by(shared: &Shared, caller: Option<Caller>, alias: &str) -> Result<(), Refusal> {
    let Some(caller) = caller else {
        return Ok(());
    };
    match shared.store.get(alias) {
        Some(session) if session.owner == Some(caller.uid) => Ok(()),
        _ => Err(Refusal::new(
            Failure::Forbidden,
            "no session of yours by that name",
        )),
    }
}

/// The caller's sessions; only with identity on, since without it there is
/// no owner to list for.
fn list(shared: &Shared, conn: ConnInfo, caller: Option<Caller>) -> ApiResult {
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
            }
        })
        .collect();
    own.sort_by_key(|s| s.created_at);
    Ok(json(StatusCode::OK, &own))
}

/// Rejects path segments that cannot be aliases before any lookup.
fn known_alias(segment: &str) -> Result<String, Refusal> {
    let alias = segment.to_ascii_lowercase();
    if crate::api::looks_like_alias(&alias) {
        Ok(alias)
    } else {
        Err(Refusal::new(Failure::NotFound, "no such session"))
    }
}

fn json<T: Serialize>(status: StatusCode, value: &T) -> Response<Full<Bytes>> {
    let body = serde_json::to_vec(value).unwrap_or_default();
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn text(status: StatusCode, body: String, content_type: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

fn no_content() -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = StatusCode::NO_CONTENT;
    response
}

/// Reads at most `max_api_body_bytes`: 413 when larger.
async fn read_body(
    shared: &Shared,
    head: &http::request::Parts,
    body: Incoming,
) -> Result<Bytes, Refusal> {
    let max = shared.config.limits.max_api_body_bytes;
    let too_large = || {
        Refusal::new(
            Failure::BodyTooLarge,
            format!("bodies are limited to {max} bytes"),
        )
    };
    let declared = head
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|l| l.to_str().ok())
        .and_then(|l| l.parse::<usize>().ok());
    if let Some(length) = declared
        && length > max
    {
        // A client still sending gets a broken pipe instead of our answer
        // if we close on it; read (and drop) a moderate excess first so it
        // sees the 413. Anything bigger is cut off.
        if length <= DRAIN_LIMIT {
            let _ = Limited::new(body, DRAIN_LIMIT).collect().await;
        }
        return Err(too_large());
    }
    match Limited::new(body, max).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) if error.is::<http_body_util::LengthLimitError>() => Err(too_large()),
        Err(_) => Err(Refusal::new(
            Failure::BadRequest,
            "the body could not be read",
        )),
    }
}

/// The body as JSON: 400 when it is not JSON, 422 when JSON of the wrong
/// shape.
fn parse<T: DeserializeOwned>(bytes: &Bytes) -> Result<T, Refusal> {
    serde_json::from_slice(bytes).map_err(|error| {
        let failure = match error.classify() {
            serde_json::error::Category::Data => Failure::InvalidField,
            _ => Failure::MalformedJson,
        };
        Refusal::new(failure, error.to_string())
    })
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

fn secret_ok(session: &Session, secret: &str) -> bool {
    bool::from(sha256(secret.as_bytes()).ct_eq(&session.secret_sha256))
}

fn bad_secret() -> Refusal {
    Refusal::new(Failure::Forbidden, "wrong secret for this session")
}

/// The session `alias`, for a caller that holds its secret.
fn session_with_secret(
    shared: &Shared,
    alias: &str,
    secret: &str,
) -> Result<Arc<Session>, Refusal> {
    let session = shared
        .store
        .get(alias)
        .ok_or_else(|| Refusal::new(Failure::NotFound, "no such session"))?;
    if !secret_ok(&session, secret) {
        return Err(bad_secret());
    }
    Ok(session)
}

/// The caller's address, for calls only a compute node makes (register,
/// restart): it must be where backends may be.
fn from_backends(shared: &Shared, conn: ConnInfo) -> Result<std::net::IpAddr, Refusal> {
    let ip = canonical_ip(conn.peer.ip());
    if !cidrs_contain(&shared.config.allowed_backend_cidrs, ip) {
        return Err(Refusal::new(
            Failure::Forbidden,
            format!("{ip} is not in allowed_backend_cidrs"),
        ));
    }
    Ok(ip)
}

fn from_clients(shared: &Shared, conn: ConnInfo) -> Result<(), Refusal> {
    if cidrs_contain(&shared.config.allowed_client_cidrs, conn.peer.ip()) {
        Ok(())
    } else {
        Err(Refusal::new(
            Failure::Forbidden,
            format!(
                "{} is not in allowed_client_cidrs",
                canonical_ip(conn.peer.ip())
            ),
        ))
    }
}

/// The state as the request path sees it: a session past its TTL is ended
/// even in the (at most one second) before the sweep records it.
fn status_of(session: &Session) -> SessionStatus {
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
    }
}

fn random_bytes() -> [u8; 32] {
    let mut bytes = [0u8; 32];
    rand::fill(&mut bytes);
    bytes
}

async fn create(
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

async fn link_job(shared: &Arc<Shared>, alias: &str, body: &Bytes) -> ApiResult {
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

async fn report_phase(shared: &Arc<Shared>, alias: &str, body: &Bytes) -> ApiResult {
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

async fn register(shared: &Arc<Shared>, conn: ConnInfo, alias: &str, body: &Bytes) -> ApiResult {
    let arrived = Instant::now();
    let request: Register = parse(body)?;
    let ip = from_backends(shared, conn)?;
    let backend = SocketAddr::new(ip, request.port);
    let now = unix_now();
    let session = shared
        .store
        .update(alias, |s| {
            if !secret_ok(s, &request.secret) {
                return Err(bad_secret());
            }
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
async fn restart(shared: &Arc<Shared>, conn: ConnInfo, alias: &str, body: &Bytes) -> ApiResult {
    let request: api::Restart = parse(body)?;
    let ip = from_backends(shared, conn)?;
    let before = session_with_secret(shared, alias, &request.secret)?;
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
async fn backend_answers(backend: SocketAddr) -> bool {
    let connect = tokio::net::TcpStream::connect(backend);
    matches!(
        tokio::time::timeout(Duration::from_secs(2), connect).await,
        Ok(Ok(_))
    )
}

async fn status(shared: &Arc<Shared>, conn: ConnInfo, alias: &str, uri: &http::Uri) -> ApiResult {
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

async fn delete(
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

/// When the proxy last passed a request to the session's Jupyter, for the
/// job's idle watch. The same guard as `delete`: it says whether someone is
/// using the notebook, which is the session owner's business only.
async fn activity(shared: &Arc<Shared>, conn: ConnInfo, alias: &str, body: &Bytes) -> ApiResult {
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

/// Calls about a session that only its owner makes: from a login node, or
/// from the host its Jupyter runs on. Before a backend is known, from any
/// host a backend may be on: a job that fails before Jupyter registers
/// ends its session from its node, so the page says so at once.
fn owner_only(shared: &Shared, conn: ConnInfo, session: &Session) -> Result<(), Refusal> {
    let ip = canonical_ip(conn.peer.ip());
    let from_backend = match session.backend {
        Some(backend) => canonical_ip(backend.ip()) == ip,
        None => cidrs_contain(&shared.config.allowed_backend_cidrs, ip),
    };
    if !from_backend && !cidrs_contain(&shared.config.allowed_client_cidrs, ip) {
        return Err(Refusal::new(
            Failure::Forbidden,
            format!("{ip} is neither a client nor this session's backend"),
        ));
    }
    Ok(())
}
