//! Proxy tests: real sockets on loopback, TLS, WebSocket, Jupyter.

mod api;
mod backends;
mod harness;
mod lifecycle;
mod routing;
