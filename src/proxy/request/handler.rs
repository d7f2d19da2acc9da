//! One request from a client on the hyper path: find out which host it is
//! for ([`routing`]), check edge auth ([`edge_auth`]) and hand it to the
//! [`relay`], rewritten by the [`policy`]; or answer with the
//! proxy's own page. Ends with the access-log event.

use std::convert::Infallible;
use std::sync::Arc;

use http::HeaderValue;
use http::header::{ORIGIN, SET_COOKIE, UPGRADE};
use http::{Request, Response};
use hyper::body::Incoming;

use crate::api::{CHANNEL_PREFIX, SessionState};

use crate::clock::unix_now;
use crate::proxy::answers::failure::Failure;
use crate::proxy::answers::pages;
use crate::proxy::audit;
use crate::proxy::request::access_log;
use crate::proxy::request::edge_auth::{self, AppLogin, Auth};
use crate::proxy::request::plumbing::{ConnInfo, ProxyBody, full};
use crate::proxy::request::policy::{self, ForwardedBy};
use crate::proxy::request::relay;
use crate::proxy::request::routing::{self, Target};
use crate::proxy::shared::Shared;

/// Entry point for every request on every listener.
pub async fn handle(
    shared: Arc<Shared>,
    conn: ConnInfo,
    req: Request<Incoming>,
) -> Result<Response<ProxyBody>, Infallible> {
    let started = access_log::start(&shared);
    let method = req.method().clone();
    // The URI is reference-counted, so keeping it for the log line costs no
    // copy.
    let uri = req.uri().clone();
    // The alias is lower-cased into this buffer: routing allocates nothing.
    let mut buf = [0u8; 64];
    let host = routing::request_host(&req);
    let target = match host {
        _ if conn.api_only => Target::Api,
        Ok(Some(host)) => routing::classify(&shared.config.domain, host, &mut buf),
        Ok(None) => Target::NoHost,
        Err(routing::AmbiguousHost) => Target::Ambiguous,
    };
    let (response, alias) = match target {
        Target::Api => (crate::proxy::manage::respond(&shared, conn, req).await, "-"),
        Target::Alias(alias) => (session_request(&shared, conn, alias, req).await, alias),
        Target::Other => {
            let host = host.ok().flatten().unwrap_or("").to_owned();
            (full(pages::page(Failure::UnknownAlias, &host)), "-")
        }
        Target::NoHost => (full(pages::page(Failure::BadRequest, "(no host)")), "-"),
        Target::Ambiguous => (
            full(pages::page(Failure::BadRequest, "(more than one host)")),
            "-",
        ),
    };
    let status = response.status().as_u16();
    access_log::answered(
        &shared,
        conn.peer.ip(),
        alias,
        method.as_str(),
        uri.path(),
        status,
        started,
    );
    Ok(response)
}

async fn session_request(
    shared: &Arc<Shared>,
    conn: ConnInfo,
    alias: &str,
    req: Request<Incoming>,
) -> Response<ProxyBody> {
    let Some(session) = shared.store.get(alias) else {
        return full(pages::page(Failure::UnknownAlias, alias));
    };
    let now = unix_now();
    // The channel answers for an ended session too: the page in the
    // browser learns that way that it ended, and why.
    let channel = req.uri().path().starts_with(CHANNEL_PREFIX);
    if !session.is_live(now) && !channel {
        return full(pages::ended(alias, session.end_reason_now()));
    }
    let https = shared.config.public_scheme_is_https();
    let auth = edge_auth::check(&session, req.headers(), req.uri().query(), https);
    if auth == Auth::None {
        return full(pages::page(Failure::NoCredentials, alias));
    }
    let mut origins = req.headers().get_all(ORIGIN).iter();
    let origin_ok = match (origins.next(), origins.next()) {
        (_, Some(_)) => false,
        (origin, None) => edge_auth::origin_allowed(
            req.method().as_str().as_bytes(),
            req.headers().contains_key(UPGRADE),
            origin.map(HeaderValue::as_bytes),
            routing::request_host(&req)
                .ok()
                .flatten()
                .unwrap_or("")
                .as_bytes(),
            https,
        ),
    };
    if !origin_ok {
        return full(pages::page(Failure::CrossOrigin, alias));
    }
    if matches!(auth, Auth::Token(_)) && session.load.first_open() {
        let forwarded_for = shared
            .config
            .behind_tls
            .then(|| audit::terminators_client(req.headers()))
            .flatten();
        let client = conn.peer.ip();
        let event = audit::Event::FirstAccess {
            client,
            forwarded_for,
        };
        shared.audit.record(&session, event);
    }
    let (set_cookie, app_login) = match &auth {
        Auth::Token(token) => (
            Some(edge_auth::cookie_header(&session, now, https)),
            AppLogin::of(&session, token),
        ),
        _ => (None, None),
    };
    let mut response = match (session.state, &session.backend_authority) {
        _ if channel => crate::proxy::manage::channel::respond(shared, &session, req).await,
        (SessionState::Ready, Some(backend)) => {
            // Held until the backend's answer starts: what one session may
            // have waiting on its Jupyter at once.
            let Some(_in_use) = session
                .load
                .try_request(shared.config.limits.max_requests_per_session, now)
            else {
                return full(pages::page(Failure::Unavailable, alias));
            };
            let ip = conn.peer.ip().to_string();
            let forwarded_by = ForwardedBy {
                client_ip: &ip,
                behind_tls: shared.config.behind_tls,
                https,
            };
            let (mut parts, body) = req.into_parts();
            if let Some(login) = &app_login {
                login.replace_in(&mut parts.headers);
            }
            let authority = parts.uri.authority().map(|a| a.as_str());
            let (headers, upgrade) = policy::request_for_backend(
                std::mem::take(&mut parts.headers),
                &forwarded_by,
                authority,
            );
            parts.headers = headers;
            relay::forward(
                shared,
                &session,
                backend.clone(),
                conn.peer.ip(),
                Request::from_parts(parts, body),
                upgrade,
            )
            .await
        }
        _ => full(pages::starting(
            alias,
            shared.phases.get(alias).as_ref(),
            session.is_restarting(),
            shared.announcement.text(now).as_deref(),
        )),
    };
    let app_cookie = app_login.map(|login| login.set_cookie(&session, now, https));
    for cookie in set_cookie.into_iter().chain(app_cookie) {
        response.headers_mut().append(SET_COOKIE, cookie);
    }
    response
}
