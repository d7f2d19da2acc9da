//! Proxy tests: real sockets on loopback, TLS, WebSocket, Jupyter.

mod api;
pub mod backends;
pub mod harness;
mod jupyter;
mod lifecycle;
mod limits;
mod phase;
mod routing;
