//! Who may make which call: the caller's munge credential, its address,
//! the session's owner and secret.

use std::sync::Arc;

use bytes::Bytes;
use http::header::AUTHORIZATION;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::api::{self};
use crate::identity::{self, Caller};
use crate::proxy::addresses::{canonical_ip, cidrs_contain};
use crate::proxy::answers::failure::Failure;
use crate::proxy::request::plumbing::ConnInfo;
use crate::proxy::shared::Shared;
use crate::proxy::store::Session;

use super::reply::Refusal;

/// With `identity = "munge"`, the call's credential, once it passed the
/// checks that cost nothing: it is there, the peer may call the API, and it
/// has munge's shape. A call without one gets 401. `None` when identity is off.
pub(super) fn credential(
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
    if !cidrs_contain(&shared.config.allowed_client_cidrs, ip) && !shared.config.may_be_backend(ip)
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
pub(super) async fn prove(
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
pub(super) fn owned_by(
    shared: &Shared,
    caller: Option<Caller>,
    alias: &str,
) -> Result<(), Refusal> {
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

pub(super) fn secret_ok(session: &Session, secret: &str) -> bool {
    bool::from(sha256(secret.as_bytes()).ct_eq(&session.secret_sha256))
}

pub(super) fn bad_secret() -> Refusal {
    Refusal::new(Failure::Forbidden, "wrong secret for this session")
}

/// The session `alias`, for a caller that holds its secret.
pub(super) fn session_with_secret(
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
pub(super) fn from_backends(shared: &Shared, conn: ConnInfo) -> Result<std::net::IpAddr, Refusal> {
    let ip = canonical_ip(conn.peer.ip());
    if !shared.config.may_be_backend(ip) {
        return Err(Refusal::new(
            Failure::Forbidden,
            format!("{ip} is not in allowed_backend_cidrs"),
        ));
    }
    Ok(ip)
}

/// A backend at `ip` for `session`: in its cluster's ranges (a session of
/// one cluster never registers from another's), else the proxy's.
pub(super) fn backend_of(
    shared: &Shared,
    session: &Session,
    ip: std::net::IpAddr,
) -> Result<(), Refusal> {
    if cidrs_contain(shared.config.backend_cidrs(session.cluster.as_deref()), ip) {
        return Ok(());
    }
    let list = match session.cluster.as_deref() {
        _ if shared.config.clusters.is_empty() => "allowed_backend_cidrs".to_owned(),
        Some(cluster) if shared.config.clusters.contains_key(cluster) => {
            format!("cluster {cluster}'s allowed_backend_cidrs")
        }
        Some(cluster) => format!("the ranges of any cluster (`{cluster}` is not configured)"),
        None => "the ranges of any cluster (the session names none)".to_owned(),
    };
    Err(Refusal::new(
        Failure::Forbidden,
        format!("{ip} is not in {list}"),
    ))
}

pub(super) fn from_clients(shared: &Shared, conn: ConnInfo) -> Result<(), Refusal> {
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

/// Calls about a session that only its owner makes: from a login node, or
/// from the host its Jupyter runs on. Before a backend is known, from any
/// host a backend may be on: a job that fails before Jupyter registers
/// ends its session from its node, so the page says so at once.
pub(super) fn owner_only(
    shared: &Shared,
    conn: ConnInfo,
    session: &Session,
) -> Result<(), Refusal> {
    let ip = canonical_ip(conn.peer.ip());
    let from_backend = match session.backend {
        Some(backend) => canonical_ip(backend.ip()) == ip,
        None => cidrs_contain(shared.config.backend_cidrs(session.cluster.as_deref()), ip),
    };
    if !from_backend && !cidrs_contain(&shared.config.allowed_client_cidrs, ip) {
        return Err(Refusal::new(
            Failure::Forbidden,
            format!("{ip} is neither a client nor this session's backend"),
        ));
    }
    Ok(())
}

pub(super) fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}
