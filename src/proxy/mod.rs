//! The proxy role (`jrps serve`): TLS listener, API v1, routing of
//! `<alias>.<domain>` to compute nodes over HTTP and WebSocket.

use crate::Error;
use crate::cli::ServeArgs;

pub fn serve(_args: ServeArgs) -> Result<(), Error> {
    Err(Error::NotYetImplemented("serve"))
}
