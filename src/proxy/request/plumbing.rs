//! The types every request path shares: the response body, how the proxy's
//! own answers become one, and what a connection knows about itself. Kept
//! apart so that the handler, the API and the relay can all use them
//! without importing each other.

use std::net::SocketAddr;

use bytes::Bytes;
use http::Response;
use http_body_util::{Either, Full};
use hyper::body::Incoming;

use crate::proxy::request::direct::DirectBody;

/// Every response body the proxy sends: a backend's streamed body (from
/// hyper's client or [`crate::proxy::request::direct`]) or one it made itself.
pub type ProxyBody = Either<Either<Incoming, DirectBody>, Full<Bytes>>;

pub fn full(response: Response<Full<Bytes>>) -> Response<ProxyBody> {
    response.map(Either::Right)
}

/// What the connection knows about itself.
#[derive(Debug, Clone, Copy)]
pub struct ConnInfo {
    pub peer: SocketAddr,
    /// This listener serves only the API (`api_addr`), whatever the Host.
    pub api_only: bool,
}
