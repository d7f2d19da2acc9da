//! Proxy tests: real sockets on loopback, TLS, WebSocket, Jupyter.

mod backends;
mod harness;
mod routing;
