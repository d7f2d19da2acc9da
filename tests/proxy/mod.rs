//! Proxy tests: real sockets on loopback, TLS, WebSocket, Jupyter.
