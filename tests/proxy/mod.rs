//! Proxy tests: real sockets on loopback, TLS, WebSocket, Jupyter.

mod api;
pub(crate) mod backends;
mod channel;
mod forwarding;
mod framing;
mod fuzz_corpus;
pub(crate) mod harness;
pub(crate) mod identity;
pub(crate) mod jupyter;
mod lifecycle;
mod limits;
mod phase;
pub(crate) mod postgres;
pub(crate) mod replicas;
mod routing;
mod state;
pub(crate) mod wire;
