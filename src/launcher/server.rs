//! Which Jupyter server a job runs.

use std::fmt;

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Server {
    Lab,
    Notebook,
}

pub const ALLOWED: &str = "lab (or jupyterlab), notebook";

impl Server {
    /// `jupyterlab` is the original's spelling of `lab`.
    pub fn parse(text: &str) -> Option<Server> {
        match text.trim().to_ascii_lowercase().as_str() {
            "lab" | "jupyterlab" => Some(Server::Lab),
            "notebook" => Some(Server::Notebook),
            _ => None,
        }
    }

    /// The `jupyter` subcommand.
    pub fn subcommand(self) -> &'static str {
        match self {
            Server::Lab => "lab",
            Server::Notebook => "notebook",
        }
    }
}

impl fmt::Display for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.subcommand())
    }
}
