//! Who is calling the proxy API. With `identity = "munge"` every call
//! carries a fresh munge credential (`Authorization: Munge <credential>`):
//! the caller's munged binds it to the caller's uid and gid, and the proxy's
//! munged (same realm key) proves them. munged itself refuses a credential
//! that is malformed, expired (its TTL, 5 minutes by default) or replayed.
//!
//! A credential's payload names the API it is for ([`AUDIENCE`]) and the
//! one call it was made for (`crate::api::call_payload`: method, path and
//! query, and a digest of the body), and the proxy accepts only that: a
//! credential a user sent to another munge-authenticated service, or one
//! read off another call, cannot be replayed to jrps for anything else.
//! Each munged keeps its own replay cache, so munge alone would take the
//! same credential once at every replica: the proxy also records each
//! credential it accepts, in the state every replica shares, until munge
//! would call it expired.
//!
//! Credentials are made and decoded with the `munge` and `unmunge` commands,
//! which every munge installation has, rather than libmunge: binding the C
//! library would take `unsafe` code, which this crate forbids. A decode costs
//! one process (about 1 ms), on API calls only, never on the request path.
//! This module also owns the uid-to-name lookup.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde::Deserialize;

use crate::api::AUDIENCE;
use tokio::io::AsyncWriteExt;

/// The socket munged listens on in a default installation.
pub const DEFAULT_MUNGE_SOCKET: &str = "/run/munge/munge.socket.2";

/// The `Authorization` scheme of a munge credential.
pub const AUTH_SCHEME: &str = "Munge";

/// How long a decode may take before the call is refused.
const DECODE_TIMEOUT: Duration = Duration::from_secs(5);

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

/// A credential munge accepted, and until when it could be presented again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Proven {
    pub caller: Caller,
    /// Unix seconds after which munge calls the credential expired
    /// (its encode time plus its TTL).
    pub expires_at: u64,
}

impl Proven {
    /// Until when another replica's munged could still take the same
    /// credential: its expiry, plus a margin for hosts whose clocks differ.
    pub fn replayable_until(&self) -> u64 {
        const CLOCK_SKEW: u64 = 600;
        self.expires_at.saturating_add(CLOCK_SKEW)
    }
}

/// Decodes the proxy runs at once, and of them for any one address: one
/// host flooding the API with credentials takes a quarter at most, so the
/// other hosts' calls still find slots.
const MAX_DECODES: usize = 32;
const MAX_DECODES_PER_ADDRESS: usize = 8;
/// How long a call waits for a slot before it gets 503: a burst queues
/// briefly instead of failing.
const DECODE_QUEUE_WAIT: Duration = Duration::from_secs(2);

/// Whether `credential` has munge's shape (`MUNGE:` base64 `:`): anything
/// else is refused without starting a process for it.
pub fn looks_like_credential(credential: &str) -> bool {
    let Some(body) = credential
        .strip_prefix("MUNGE:")
        .and_then(|rest| rest.strip_suffix(':'))
    else {
        return false;
    };
    (16..=8192).contains(&body.len())
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='))
}

/// The slots for credential checks: [`MAX_DECODES`] in all, at most
/// [`MAX_DECODES_PER_ADDRESS`] for one peer address, waited for up to
/// [`DECODE_QUEUE_WAIT`].
pub struct DecodeSlots {
    total: tokio::sync::Semaphore,
    per_address: std::sync::Mutex<
        std::collections::HashMap<std::net::IpAddr, std::sync::Arc<tokio::sync::Semaphore>>,
    >,
}

/// A slot held while one credential is checked.
pub struct DecodeSlot<'a> {
    _total: tokio::sync::SemaphorePermit<'a>,
    _address: tokio::sync::OwnedSemaphorePermit,
    slots: &'a DecodeSlots,
    address: std::net::IpAddr,
}

impl Default for DecodeSlots {
    fn default() -> Self {
        DecodeSlots {
            total: tokio::sync::Semaphore::new(MAX_DECODES),
            per_address: std::sync::Mutex::new(std::collections::HashMap::new()),
        }
    }
}

impl DecodeSlots {
    /// A slot for a check from `address`; `None` once the wait ran out.
    pub async fn acquire(&self, address: std::net::IpAddr) -> Option<DecodeSlot<'_>> {
        // First, so it drops last: after the wait (and its hold on the
        // address's semaphore) is gone, also when the caller goes away
        // while waiting (a reset stream).
        let _forget = ForgetIdle(self, address);
        let own = self
            .lock()
            .entry(address)
            .or_insert_with(|| {
                std::sync::Arc::new(tokio::sync::Semaphore::new(MAX_DECODES_PER_ADDRESS))
            })
            .clone();
        let both = async {
            let address_permit = own.acquire_owned().await.ok()?;
            let total = self.total.acquire().await.ok()?;
            Some((total, address_permit))
        };
        let acquired = tokio::time::timeout(DECODE_QUEUE_WAIT, both)
            .await
            .ok()
            .flatten();
        acquired.map(|(total, address_permit)| DecodeSlot {
            _total: total,
            _address: address_permit,
            slots: self,
            address,
        })
    }

    /// Drops the address's entry once nobody holds or waits for its slots.
    fn forget_idle(&self, address: std::net::IpAddr) {
        let mut map = self.lock();
        if let Some(own) = map.get(&address)
            && std::sync::Arc::strong_count(own) == 1
            && own.available_permits() == MAX_DECODES_PER_ADDRESS
        {
            map.remove(&address);
        }
    }

    fn lock(
        &self,
    ) -> std::sync::MutexGuard<
        '_,
        std::collections::HashMap<std::net::IpAddr, std::sync::Arc<tokio::sync::Semaphore>>,
    > {
        self.per_address.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Forgets its address on drop if nobody holds or waits for its slots.
struct ForgetIdle<'a>(&'a DecodeSlots, std::net::IpAddr);

impl Drop for ForgetIdle<'_> {
    fn drop(&mut self) {
        self.0.forget_idle(self.1);
    }
}

impl Drop for DecodeSlot<'_> {
    fn drop(&mut self) {
        // The address permit goes back with this struct's fields, after
        // this body: count this holder out by hand.
        let mut map = self.slots.lock();
        if let Some(own) = map.get(&self.address)
            && std::sync::Arc::strong_count(own) == 2
            && own.available_permits() == MAX_DECODES_PER_ADDRESS - 1
        {
            map.remove(&self.address);
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MungeError {
    #[error("cannot run {program}: {source}")]
    Spawn {
        program: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// The credential's fault, in munge's words (`Replayed credential`, ...).
    #[error("{program} refused: {message}")]
    Refused {
        program: &'static str,
        message: String,
    },
    /// munge could not answer (munged down, a timeout): the host's fault,
    /// not the caller's.
    #[error("{program} failed: {message}")]
    Failed {
        program: &'static str,
        message: String,
    },
}

impl Munge {
    /// A fresh credential for one call to the jrps API, bound to it by
    /// `payload` (`crate::api::call_payload`).
    pub async fn credential(&self, payload: &str) -> Result<String, MungeError> {
        let output = tokio::process::Command::new("munge")
            .arg("--string")
            .arg(payload)
            .arg("--socket")
            .arg(&self.socket)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output()
            .await
            .map_err(|source| MungeError::Spawn {
                program: "munge",
                source,
            })?;
        if !output.status.success() {
            return Err(failed("munge", &output.stderr));
        }
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
    }

    /// The uid and gid a credential made for the call `payload`
    /// (`crate::api::call_payload`) proves.
    pub async fn decode(&self, credential: &str, payload: &str) -> Result<Proven, MungeError> {
        let mut child = tokio::process::Command::new("unmunge")
            .args(["--numeric", "--keys", "UID,GID,ENCODE_TIME,TTL"])
            .arg("--socket")
            .arg(&self.socket)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // A caller that hangs up takes its decode with it.
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| MungeError::Spawn {
                program: "unmunge",
                source,
            })?;
        if let Some(mut stdin) = child.stdin.take() {
            // A refused credential can close the pipe early; the status says why.
            let _ = stdin.write_all(credential.as_bytes()).await;
        }
        let output = match tokio::time::timeout(DECODE_TIMEOUT, child.wait_with_output()).await {
            Err(_) => {
                return Err(MungeError::Failed {
                    program: "unmunge",
                    message: format!("no answer in {}s", DECODE_TIMEOUT.as_secs()),
                });
            }
            Ok(output) => output.map_err(|source| MungeError::Spawn {
                program: "unmunge",
                source,
            })?,
        };
        // unmunge prints a replayed credential's metadata too: only its exit
        // status says the credential is good.
        if !output.status.success() {
            return Err(match output.status.code().and_then(status_words) {
                Some(words) => MungeError::Refused {
                    program: "unmunge",
                    message: words.to_owned(),
                },
                None => failed("unmunge", &output.stderr),
            });
        }
        // The metadata lines, a blank line, then the payload as sent.
        let text = String::from_utf8_lossy(&output.stdout);
        let (metadata, sent) = text.split_once("\n\n").unwrap_or((&text, ""));
        if sent != payload {
            return Err(MungeError::Refused {
                program: "unmunge",
                message: payload_mismatch(sent).into(),
            });
        }
        parse_metadata(metadata).ok_or_else(|| MungeError::Failed {
            program: "unmunge",
            message: "no UID, GID, ENCODE_TIME and TTL in its answer".into(),
        })
    }
}

/// Why a credential's payload is not the one for this call.
fn payload_mismatch(sent: &str) -> &'static str {
    if sent.starts_with(&format!("{AUDIENCE}\n")) {
        "the credential was made for another call (its method, path or body differ)"
    } else if sent == "jrps-api v1" {
        "the credential is for the jrps API v1, good for any call, which this proxy no \
         longer accepts: update jrps where the call comes from"
    } else {
        "the credential is not for this API"
    }
}

fn failed(program: &'static str, stderr: &[u8]) -> MungeError {
    let text = String::from_utf8_lossy(stderr);
    let message = text
        .trim()
        .trim_start_matches("unmunge: ")
        .trim_start_matches("munge: ")
        .trim_start_matches("Error: ")
        .to_owned();
    MungeError::Failed { program, message }
}

/// munge's exit statuses for a credential it refuses (`munge_err_t`); the
/// others (socket, timeout, ...) are munge failing, not the credential.
fn status_words(status: i32) -> Option<&'static str> {
    Some(match status {
        3 => "Invalid credential length",
        8 => "Invalid credential format",
        9 => "Unsupported credential version",
        10 => "Unsupported cipher",
        11 => "Unsupported MAC",
        12 => "Unsupported compression",
        13 => "Credential from another realm",
        14 => "Invalid credential",
        15 => "Expired credential",
        16 => "Rewound credential",
        17 => "Replayed credential",
        18 => "Unauthorized credential decode",
        _ => return None,
    })
}

/// The `UID:  1000`, `GID:  1000`, `ENCODE_TIME:  1796614887` and
/// `TTL:  300` lines of `unmunge --numeric`.
fn parse_metadata(text: &str) -> Option<Proven> {
    let value = |key: &str| {
        text.lines().find_map(|line| {
            let (k, v) = line.split_once(':')?;
            (k.trim() == key)
                .then(|| v.trim().parse::<u64>().ok())
                .flatten()
        })
    };
    Some(Proven {
        caller: Caller {
            uid: u32::try_from(value("UID")?).ok()?,
            gid: u32::try_from(value("GID")?).ok()?,
        },
        expires_at: value("ENCODE_TIME")?.saturating_add(value("TTL")?),
    })
}

/// The proxy's user-name lookups: `getent` as a child process the worker
/// awaits (never a blocking call on a worker that serves other
/// connections), bounded in time, and remembered for a minute. A user
/// directory (SSSD, LDAP) that hangs delays only the API call that asked.
pub struct UserNames {
    known: std::sync::Mutex<std::collections::HashMap<u32, (Option<String>, std::time::Instant)>>,
}

/// How long one lookup may take; after it the caller is known by uid.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);
/// How long an answer is reused: a renamed account is seen this late.
const LOOKUP_TTL: Duration = Duration::from_secs(60);

impl Default for UserNames {
    fn default() -> Self {
        UserNames {
            known: std::sync::Mutex::new(std::collections::HashMap::new()),
        }
    }
}

impl UserNames {
    /// The name of `uid`, if this host has one and says so in time.
    pub async fn name(&self, uid: u32) -> Option<String> {
        if let Some((name, at)) = self.lock().get(&uid)
            && at.elapsed() < LOOKUP_TTL
        {
            return name.clone();
        }
        let lookup = tokio::process::Command::new("getent")
            .args(["passwd", &uid.to_string()])
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .output();
        let name = match tokio::time::timeout(LOOKUP_TIMEOUT, lookup).await {
            Ok(Ok(output)) if output.status.success() => {
                name_of(&String::from_utf8_lossy(&output.stdout), uid)
            }
            Ok(Ok(_)) => None,
            Ok(Err(_)) => return passwd_file_name(uid),
            Err(_) => {
                tracing::warn!(
                    uid,
                    "the user directory did not answer in {LOOKUP_TIMEOUT:?}"
                );
                return None;
            }
        };
        let mut known = self.lock();
        // A bound on memory: a full table starts again.
        if known.len() >= 10_000 {
            known.clear();
        }
        known.insert(uid, (name.clone(), std::time::Instant::now()));
        name
    }

    fn lock(
        &self,
    ) -> std::sync::MutexGuard<
        '_,
        std::collections::HashMap<u32, (Option<String>, std::time::Instant)>,
    > {
        self.known.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// No getent on this host: `/etc/passwd` is what there is.
fn passwd_file_name(uid: u32) -> Option<String> {
    name_of(
        &std::fs::read_to_string(Path::new("/etc/passwd")).ok()?,
        uid,
    )
}

/// The name of `uid` on this host, through NSS (`getent passwd`, so LDAP
/// and SSSD users are found as well as `/etc/passwd`'s), if it has one.
/// Blocking: for the launcher; the proxy asks [`UserNames`].
pub fn user_name(uid: u32) -> Option<String> {
    let output = std::process::Command::new("getent")
        .args(["passwd", &uid.to_string()])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output();
    match output {
        Ok(output) if output.status.success() => {
            name_of(&String::from_utf8_lossy(&output.stdout), uid)
        }
        Err(_) => passwd_file_name(uid),
        Ok(_) => None,
    }
}

/// The name on the passwd line of `uid`.
fn name_of(passwd: &str, uid: u32) -> Option<String> {
    let uid = uid.to_string();
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        (fields.nth(1)? == uid && !name.is_empty()).then(|| name.to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::call_payload;

    #[test]
    fn only_credentials_of_munges_shape_reach_unmunge() {
        let real =
            "MUNGE:AwQFAAAytoU0t+qzvyH3q00avdQ2IpGsO5ejbuZhEqevqV0MBhSo7O980az30T69jsQM9STA=:";
        assert!(looks_like_credential(real));
        for bad in [
            "",
            "MUNGE:",
            "MUNGE::",
            "MUNGE:short:",
            "munge:AwQFAAAytoU0t+qzvyH3q00avdQ2IpGsO5ej:",
            "MUNGE:AwQFAAAytoU0t+qzvyH3q00avdQ2IpGsO5ej",
            "MUNGE:AwQFAAAytoU0t qzvyH3q00avdQ2IpGsO5ej:",
            "MUNGE:AwQFAAAytoU0t+qzvyH3q00avdQ2IpGsO5ej:\nUID: 0",
        ] {
            assert!(!looks_like_credential(bad), "{bad:?}");
        }
        assert!(!looks_like_credential(&format!(
            "MUNGE:{}:",
            "A".repeat(9000)
        )));
    }

    #[tokio::test]
    async fn one_address_gets_its_share_of_the_slots_and_others_theirs() {
        let slots = DecodeSlots::default();
        let flooder: std::net::IpAddr = [10, 0, 0, 1].into();
        let mut held = Vec::new();
        for _ in 0..MAX_DECODES_PER_ADDRESS {
            held.push(slots.acquire(flooder).await.expect("within its share"));
        }
        let started = std::time::Instant::now();
        assert!(slots.acquire(flooder).await.is_none(), "beyond its share");
        assert!(started.elapsed() >= DECODE_QUEUE_WAIT, "it waited first");
        let other = slots.acquire([10, 0, 0, 2].into()).await;
        assert!(other.is_some(), "another address is not held up");
        drop(other);
        // A caller that goes away while it waits leaves nothing behind.
        let waiting = tokio::time::timeout(Duration::from_millis(100), slots.acquire(flooder));
        assert!(waiting.await.is_err(), "still waiting when it went away");
        drop(held);
        assert!(slots.lock().is_empty(), "idle addresses are forgotten");
    }

    #[test]
    fn reads_unmunge_numeric_metadata() {
        assert_eq!(
            parse_metadata(
                "ENCODE_TIME:     1796614887\nTTL:             300\n\
                 UID:             1000\nGID:             100\n"
            ),
            Some(Proven {
                caller: Caller {
                    uid: 1000,
                    gid: 100
                },
                expires_at: 1796615187,
            })
        );
        assert_eq!(parse_metadata("UID: x\n"), None);
        assert_eq!(
            parse_metadata("UID: 1000\nGID: 100\n"),
            None,
            "no expiry, no record"
        );
    }

    #[test]
    fn a_call_s_payload_binds_method_path_and_body() {
        let payload = call_payload("DELETE", "/api/v1/sessions/a-b-c", b"{}");
        assert_eq!(
            payload,
            "jrps-api v2\nDELETE /api/v1/sessions/a-b-c\n\
             sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
        assert_ne!(
            payload,
            call_payload("GET", "/api/v1/sessions/a-b-c", b"{}")
        );
        assert_ne!(
            payload,
            call_payload("DELETE", "/api/v1/sessions/a-b-d", b"{}")
        );
        assert_ne!(
            payload,
            call_payload("DELETE", "/api/v1/sessions/a-b-c", b"")
        );
        assert!(payload_mismatch(&call_payload("GET", "/", b"")).contains("another call"));
        assert!(payload_mismatch("jrps-api v1").contains("update jrps"));
        assert!(payload_mismatch("hello").contains("not for this API"));
    }

    #[test]
    fn names_come_from_passwd_lines() {
        let passwd = "root:x:0:0::/root:/bin/sh\nann:x:1000:100::/home/ann:/bin/sh\n";
        assert_eq!(name_of(passwd, 1000).as_deref(), Some("ann"));
        assert_eq!(name_of(passwd, 0).as_deref(), Some("root"));
        assert_eq!(name_of(passwd, 7), None);
        assert_eq!(user_name(0).as_deref(), Some("root"), "getent knows root");
    }
}
