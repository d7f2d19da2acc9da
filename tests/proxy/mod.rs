//! Proxy tests: real sockets on loopback, TLS, WebSocket, Jupyter.

mod api;
mod backends;
mod harness;
mod jupyter;
mod lifecycle;
mod limits;
mod routing;
