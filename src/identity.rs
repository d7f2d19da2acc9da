//! Who is calling the proxy API. With `identity = "munge"` every call
//! carries a fresh munge credential (`Authorization: Munge <credential>`):
//! the caller's munged binds it to the caller's uid and gid, and the proxy's
//! munged (same realm key) proves them. munged itself refuses a credential
//! that is malformed, expired (its TTL, 5 minutes by default) or replayed.
//!
//! Credentials are made and decoded with the `munge` and `unmunge` commands,
//! which every munge installation has, rather than libmunge: binding the C
//! library would take `unsafe` code, which this crate forbids. A decode costs
//! one process (about 1.3 ms), on API calls only, never on the request path.
//! This module also owns the uid-to-name lookup in `/etc/passwd`.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use serde::Deserialize;
use tokio::io::AsyncWriteExt;

/// The socket munged listens on in a default installation.
pub const DEFAULT_MUNGE_SOCKET: &str = "/run/munge/munge.socket.2";

/// The `Authorization` scheme of a munge credential.
pub const AUTH_SCHEME: &str = "Munge";

/// `identity` in `proxy.toml` and `site.toml`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IdentityKind {
    /// Trust the `user` field (workstations, the quick start).
    #[default]
    None,
    Munge,
}

/// The munged to ask.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Munge {
    pub socket: PathBuf,
}

/// A caller proven by munge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller {
    pub uid: u32,
    pub gid: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum MungeError {
    #[error("cannot run {program}: {source}")]
    Spawn {
        program: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// munge's own words (`Replayed credential`, `Expired credential`, ...).
    #[error("{program} refused: {message}")]
    Refused {
        program: &'static str,
        message: String,
    },
}

impl Munge {
    /// A fresh credential for one call, with no payload.
    pub async fn credential(&self) -> Result<String, MungeError> {
        let output = tokio::process::Command::new("munge")
            .arg("--no-input")
            .arg("--socket")
            .arg(&self.socket)
            .stdin(Stdio::null())
            .output()
            .await
            .map_err(|source| MungeError::Spawn {
                program: "munge",
                source,
            })?;
        if !output.status.success() {
            return Err(refused("munge", &output.stderr));
        }
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
    }

    /// The uid and gid a credential proves.
    pub async fn decode(&self, credential: &str) -> Result<Caller, MungeError> {
        let mut child = tokio::process::Command::new("unmunge")
            .args(["--numeric", "--keys", "UID,GID", "--output", "/dev/null"])
            .arg("--socket")
            .arg(&self.socket)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| MungeError::Spawn {
                program: "unmunge",
                source,
            })?;
        if let Some(mut stdin) = child.stdin.take() {
            // A refused credential can close the pipe early; the status says why.
            let _ = stdin.write_all(credential.as_bytes()).await;
        }
        let output = child
            .wait_with_output()
            .await
            .map_err(|source| MungeError::Spawn {
                program: "unmunge",
                source,
            })?;
        // unmunge prints the metadata of a replayed credential too: only
        // its exit status says the credential is good.
        if !output.status.success() {
            let mut error = refused("unmunge", &output.stderr);
            if let (MungeError::Refused { message, .. }, Some(words)) =
                (&mut error, output.status.code().and_then(status_words))
                && message.is_empty()
            {
                *message = words.to_owned();
            }
            return Err(error);
        }
        parse_metadata(&String::from_utf8_lossy(&output.stdout)).ok_or_else(|| {
            MungeError::Refused {
                program: "unmunge",
                message: "no UID and GID in its answer".into(),
            }
        })
    }
}

fn refused(program: &'static str, stderr: &[u8]) -> MungeError {
    let text = String::from_utf8_lossy(stderr);
    let message = text
        .trim()
        .trim_start_matches("unmunge: ")
        .trim_start_matches("munge: ")
        .trim_start_matches("Error: ")
        .to_owned();
    MungeError::Refused { program, message }
}

/// munge's exit statuses for a credential it refuses (`munge_err_t`),
/// since unmunge says nothing on stderr for some of them.
fn status_words(status: i32) -> Option<&'static str> {
    Some(match status {
        8 => "Invalid credential format",
        9 => "Unsupported credential version",
        13 => "Credential from another realm",
        14 => "Invalid credential",
        15 => "Expired credential",
        16 => "Rewound credential",
        17 => "Replayed credential",
        18 => "Unauthorized credential decode",
        _ => return None,
    })
}

/// `UID:  1000` and `GID:  1000` lines of `unmunge --numeric`.
fn parse_metadata(text: &str) -> Option<Caller> {
    let value = |key: &str| {
        text.lines().find_map(|line| {
            let (k, v) = line.split_once(':')?;
            (k.trim() == key)
                .then(|| v.trim().parse::<u32>().ok())
                .flatten()
        })
    };
    Some(Caller {
        uid: value("UID")?,
        gid: value("GID")?,
    })
}

/// The name of `uid` in this host's `/etc/passwd`, if it has one.
pub fn user_name(uid: u32) -> Option<String> {
    user_name_in(Path::new("/etc/passwd"), uid)
}

fn user_name_in(passwd: &Path, uid: u32) -> Option<String> {
    let text = std::fs::read_to_string(passwd).ok()?;
    let uid = uid.to_string();
    text.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        (fields.nth(1)? == uid).then(|| name.to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_unmunge_numeric_metadata() {
        assert_eq!(
            parse_metadata("UID:             1000\nGID:             100\n"),
            Some(Caller {
                uid: 1000,
                gid: 100
            })
        );
        assert_eq!(parse_metadata("UID: x\n"), None);
    }

    #[test]
    fn names_come_from_the_passwd_file() {
        let dir = tempfile::tempdir().unwrap();
        let passwd = dir.path().join("passwd");
        std::fs::write(
            &passwd,
            "root:x:0:0::/root:/bin/sh\nann:x:1000:100::/home/ann:/bin/sh\n",
        )
        .unwrap();
        assert_eq!(user_name_in(&passwd, 1000).as_deref(), Some("ann"));
        assert_eq!(user_name_in(&passwd, 0).as_deref(), Some("root"));
        assert_eq!(user_name_in(&passwd, 7), None);
    }
}
