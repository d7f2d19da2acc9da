//! The request path: one client request from its bytes to the backend and
//! back. Two paths share every rule: the fast path (plain HTTP/1.1, by
//! hand) and hyper's (HTTP/2, upgrades, anything unusual).
//!
//! - `routing`: which host a request is for
//! - `edge_auth`: the session's cookie or token
//! - `policy`: what of a request and its answer crosses the proxy
//! - `fastpath`: HTTP/1.1 by hand, with `framing` (where bodies end) and
//!   `upstream` (its pooled backend connections)
//! - `handler`: one request on hyper's path; `relay` sends it on with the
//!   worker's `backend_client`, or `direct` on the fast path's pool
//! - `tunnel`: WebSocket bytes after the upgrade
//! - `scratch`: the per-thread read buffer both paths read through
//! - `plumbing`: the body and connection types every path shares
//! - `access_log`: the event every answer ends with

pub(super) mod access_log;
pub(super) mod backend_client;
pub(super) mod direct;
pub(super) mod edge_auth;
pub(super) mod fastpath;
pub(super) mod framing;
pub(super) mod handler;
pub(super) mod plumbing;
pub(super) mod policy;
pub(super) mod relay;
pub(super) mod routing;
pub(super) mod scratch;
pub(super) mod tunnel;
pub(super) mod upstream;
