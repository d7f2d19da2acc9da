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

use crate::api::EndReason;
use crate::clock::unix_now;
use crate::proxy::store::Session;

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
    /// `forwarded_for` the address it says it served ([`terminators_client`]).
    FirstAccess {
        client: IpAddr,
        #[serde(skip_serializing_if = "Option::is_none")]
        forwarded_for: Option<IpAddr>,
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

/// The client address a trusted TLS terminator added: the last entry of the
/// last `X-Forwarded-For`. Entries before it are whatever the client wrote,
/// and an investigator must not be pointed at them. Anything that is not an
/// address (or `address:port`) is no address at all.
pub fn terminators_client(headers: &http::HeaderMap) -> Option<IpAddr> {
    let header = headers.get_all("x-forwarded-for").iter().next_back()?;
    let last = header.to_str().ok()?.rsplit(',').next()?.trim();
    last.parse::<IpAddr>()
        .ok()
        .or_else(|| last.parse::<SocketAddr>().ok().map(|a| a.ip()))
}

/// The longest text field a line carries: users and job ids are bounded by
/// the API, but a line must stay a line whatever a database row holds.
const FIELD_MAX_CHARS: usize = 128;

fn capped(text: &str) -> std::borrow::Cow<'_, str> {
    match text.char_indices().nth(FIELD_MAX_CHARS) {
        Some((end, _)) => format!("{}…", &text[..end]).into(),
        None => text.into(),
    }
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
        let event = match event {
            Event::JobLinked { job_id } => Event::JobLinked {
                job_id: capped(&job_id).into_owned(),
            },
            other => other,
        };
        let line = Line {
            time: unix_now(),
            event: &event,
            alias: &capped(&session.alias),
            user: &capped(&session.user),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn forwarded(values: &[&str]) -> Option<IpAddr> {
        let mut headers = http::HeaderMap::new();
        for value in values {
            headers.append("x-forwarded-for", value.parse().unwrap());
        }
        terminators_client(&headers)
    }

    #[test]
    fn the_terminators_entry_is_the_last_and_a_client_cannot_write_it() {
        let terminator = Some(IpAddr::from([10, 9, 8, 7]));
        assert_eq!(forwarded(&["10.9.8.7"]), terminator);
        assert_eq!(forwarded(&["203.0.113.66, 10.9.8.7"]), terminator);
        assert_eq!(forwarded(&["203.0.113.66", "10.9.8.7"]), terminator);
        assert_eq!(forwarded(&["10.9.8.7:51234"]), terminator);
        assert_eq!(
            forwarded(&["[2001:db8::1]:443"]),
            Some("2001:db8::1".parse().unwrap())
        );
        assert_eq!(forwarded(&["10.9.8.7, not-an-address"]), None);
        assert_eq!(forwarded(&[&"x".repeat(10_000)]), None);
        assert_eq!(forwarded(&[]), None);
    }

    #[test]
    fn long_fields_are_capped() {
        assert_eq!(capped("alice"), "alice");
        let long = "é".repeat(1000);
        let cut = capped(&long);
        assert_eq!(cut.chars().count(), FIELD_MAX_CHARS + 1);
        assert!(cut.ends_with('…'));
    }
}
