//! The audit log: one JSON line per session event (created, job linked,
//! registered, first browser access, ended), with the owner's uid and name,
//! to `audit_log` (a 0600 file, appended) or, without it, to stderr under
//! the tracing target `jrps::audit`. Lines carry aliases, users, job ids and
//! addresses, never a token, cookie or secret: nothing here has one to give.

use std::fs::File;
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::Serialize;

use super::store::Session;
use crate::api::EndReason;
use crate::clock::unix_now;

pub struct Audit {
    path: Option<PathBuf>,
    file: Option<Mutex<File>>,
}

/// What happened, with what is particular to it.
#[derive(Debug, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    Created {
        client: IpAddr,
    },
    JobLinked {
        job_id: String,
    },
    Registered {
        backend: SocketAddr,
    },
    /// Its job was started again on `node` (a node failure and a requeue).
    Restarted {
        node: IpAddr,
    },
    /// The first request with the session's token: the browser that opened
    /// it. Behind a TLS terminator `client` is the terminator, and
    /// `forwarded_for` is the `X-Forwarded-For` it passed on.
    FirstAccess {
        client: IpAddr,
        #[serde(skip_serializing_if = "Option::is_none")]
        forwarded_for: Option<String>,
    },
    Ended {
        reason: Option<EndReason>,
    },
}

#[derive(Serialize)]
struct Line<'a> {
    time: u64,
    #[serde(flatten)]
    event: &'a Event,
    alias: &'a str,
    user: &'a str,
    uid: Option<u32>,
}

fn append(path: &Path) -> Result<File, AuditError> {
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(path)
        .map_err(|source| AuditError {
            path: path.to_owned(),
            source,
        })
}

#[derive(Debug, thiserror::Error)]
#[error("cannot open the audit log {}", path.display())]
pub struct AuditError {
    path: PathBuf,
    #[source]
    source: std::io::Error,
}

impl Audit {
    pub fn open(path: Option<&Path>) -> Result<Audit, AuditError> {
        let Some(path) = path else {
            return Ok(Audit {
                path: None,
                file: None,
            });
        };
        Ok(Audit {
            path: Some(path.to_owned()),
            file: Some(Mutex::new(append(path)?)),
        })
    }

    /// Opens the file again (SIGHUP), for log rotation that renames it.
    pub fn reopen(&self) -> Result<(), AuditError> {
        if let (Some(path), Some(file)) = (&self.path, &self.file) {
            let fresh = append(path)?;
            *file.lock().unwrap_or_else(|e| e.into_inner()) = fresh;
        }
        Ok(())
    }

    pub fn record(&self, session: &Session, event: Event) {
        let line = Line {
            time: unix_now(),
            event: &event,
            alias: &session.alias,
            user: &session.user,
            uid: session.owner,
        };
        // Plain strings, numbers and addresses always serialise.
        let text = serde_json::to_string(&line).unwrap_or_default();
        match &self.file {
            Some(file) => {
                let mut file = file.lock().unwrap_or_else(|e| e.into_inner());
                if let Err(error) = writeln!(file, "{text}") {
                    tracing::error!(%error, "audit log write failed");
                }
            }
            None => tracing::info!(target: "jrps::audit", "{text}"),
        }
    }
}
