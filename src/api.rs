//! The proxy API v1: the contract between launcher, job helper and proxy.
//!
//! Both sides (de)serialise these types, so the contract cannot drift. Paths,
//! bodies and status codes follow docs/design.md ("The proxy API v1"). Times
//! are Unix seconds (UTC) so that no side needs a calendar library to compare
//! them.

use serde::{Deserialize, Serialize};

use crate::session_kind::SessionKind;

/// Every API path starts with this.
pub const PREFIX: &str = "/api/v1";

/// The first line of every munge credential's payload for the API
/// (`identity = "munge"`). v1's payload was this line alone, good for
/// any call.
pub const AUDIENCE: &str = "jrps-api v2";

/// The payload of a credential for one call: [`AUDIENCE`], then the method
/// and the path with its query as the proxy receives them, then the
/// SHA-256 of the body (of nothing, when there is none), one per line.
pub fn call_payload(method: &str, path_and_query: &str, body: &[u8]) -> String {
    use sha2::Digest;
    let digest = hex::encode(sha2::Sha256::digest(body));
    format!("{AUDIENCE}\n{method} {path_and_query}\nsha256:{digest}")
}

/// Paths under this on a session's own origin are answered by the proxy
/// and never reach Jupyter: the channel of the page jrps puts inside it.
pub const CHANNEL_PREFIX: &str = "/_jrps/";

/// The management host under the proxy's domain: `manage.<domain>`.
pub const MANAGE_SUBDOMAIN: &str = "manage";

/// One word of an alias: 3 to 8 lower-case ASCII letters.
pub fn is_alias_word(w: &str) -> bool {
    (3..=8).contains(&w.len()) && w.bytes().all(|b| b.is_ascii_lowercase())
}

/// Whether `s` has the shape of an alias: three words joined by `-`. The
/// proxy rejects junk with it before a lookup; the launcher checks what the
/// proxy answered before the alias names a file or folder.
pub fn looks_like_alias(s: &str) -> bool {
    let mut parts = 0;
    for part in s.split('-') {
        if !is_alias_word(part) {
            return false;
        }
        parts += 1;
    }
    parts == 3
}

/// `POST /api/v1/sessions`, from a login node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateSession {
    pub user: String,
    /// Lower-case hex SHA-256 of the Jupyter token; the proxy never sees the token.
    pub token_sha256: String,
    pub ttl_seconds: u64,
    /// The site's cluster the job will run on (`[clusters.NAME]`): where
    /// its backend may register from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// What the session runs, for a kind the proxy logs a browser in to
    /// itself (code-server); absent for the Jupyter kinds, so that a proxy
    /// older than kinds still takes those.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<SessionKind>,
}

/// A cluster's name as site.toml and proxy.toml write it.
pub fn is_cluster_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

/// 201 answer to [`CreateSession`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionCreated {
    pub alias: String,
    /// `https://<alias>.<domain>/` (the launcher appends `?token=`).
    pub url: String,
    /// Authorises link, register (once) and delete for this alias only.
    pub register_secret: String,
    pub expires_at: u64,
}

/// `POST /api/v1/sessions/{alias}/job`, from the launcher after `sbatch`. Answer: 204.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkJob {
    pub job_id: String,
    pub secret: String,
}

/// `POST /api/v1/sessions/{alias}/register`, from the compute node. The backend
/// host is the peer address of this request, never a field. Answer: 200 [`SessionStatus`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Register {
    pub port: u16,
    pub secret: String,
    /// When the session ends, when the job knows (a scheduler that
    /// enforces a time limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock: Option<SessionClock>,
}

/// When a session ends and when its page warns and saves before then.
/// Times are Unix seconds by the proxy's clock; spans are seconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionClock {
    /// When the session ends: its job's end, or with headroom
    /// (`extend_max`) the deadline its owner set.
    pub ends_at: u64,
    /// With headroom: the job's own end, the furthest `ends_at` may move.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extend_until: Option<u64>,
    /// How long before the end the page warns, each once.
    pub warn_before: Vec<u32>,
    /// How long before the end the page saves every open document.
    pub save_before: u32,
}

impl SessionClock {
    /// The most warnings a clock carries, and the longest span of one: a
    /// day (a page polls; it needs no more).
    pub const MAX_WARNINGS: usize = 8;
    pub const MAX_SPAN_S: u32 = 86_400;

    /// Whether the proxy takes it: spans within a day, at most
    /// [`Self::MAX_WARNINGS`] warnings, and headroom that ends no earlier
    /// than the session.
    pub fn check(&self) -> Result<(), String> {
        if self.warn_before.len() > Self::MAX_WARNINGS {
            return Err(format!(
                "warn_before has at most {} entries",
                Self::MAX_WARNINGS
            ));
        }
        let spans = self.warn_before.iter().chain([&self.save_before]);
        if spans.into_iter().any(|s| *s > Self::MAX_SPAN_S) {
            return Err(format!(
                "warn_before and save_before are at most {} seconds",
                Self::MAX_SPAN_S
            ));
        }
        if self.extend_until.is_some_and(|until| until < self.ends_at) {
            return Err("extend_until is before ends_at".to_owned());
        }
        Ok(())
    }

    /// Moves the end by `by` seconds if that stays within the headroom.
    pub fn extended(&self, by: u64) -> Result<SessionClock, ExtendRefused> {
        let Some(until) = self.extend_until else {
            return Err(ExtendRefused::NoHeadroom);
        };
        let ends_at = self.ends_at.saturating_add(by);
        if ends_at > until {
            return Err(ExtendRefused::BeyondHeadroom {
                left_s: until - self.ends_at,
            });
        }
        Ok(SessionClock {
            ends_at,
            ..self.clone()
        })
    }

    /// The same clock with the job's end as the scheduler reports it now
    /// (`scontrol update TimeLimit=` moves it): without headroom that is
    /// the end; with it, the headroom's limit, and the end never after it.
    pub fn with_job_end(&self, job_ends_at: u64) -> SessionClock {
        match self.extend_until {
            None => SessionClock {
                ends_at: job_ends_at,
                ..self.clone()
            },
            Some(_) => SessionClock {
                ends_at: self.ends_at.min(job_ends_at),
                extend_until: Some(job_ends_at),
                ..self.clone()
            },
        }
    }
}

/// Why a session's end cannot move.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExtendRefused {
    /// Its partition has no `extend_max`: the job ends when the session does.
    NoHeadroom,
    /// Asked for more than is left; `left_s` is what is.
    BeyondHeadroom { left_s: u64 },
}

/// `POST /api/v1/sessions/{alias}/clock`, from the registered host (the
/// job's watch), every few minutes: the job's end as the scheduler reports
/// it now. Answer: 200 [`SessionClock`], with the end its owner set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClockBeat {
    pub secret: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_ends_at: Option<u64>,
}

/// `POST /api/v1/sessions/{alias}/extend`, from its owner (`jrps extend`,
/// munge identity or the register secret). Answer: 200 [`SessionStatus`];
/// 409 `conflict` when the headroom does not allow it, saying why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Extend {
    #[serde(default)]
    pub secret: String,
    pub by_s: u64,
}

/// `POST /api/v1/sessions/{alias}/restart`, from the node of a job the
/// scheduler started again (Slurm requeues a batch job whose node failed):
/// the session waits for this run's registration, on the same alias, once
/// its first run's backend no longer answers. Answer: 200 [`SessionStatus`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Restart {
    /// The job this run belongs to: the one linked to the session.
    pub job_id: String,
    pub secret: String,
}

/// `DELETE /api/v1/sessions/{alias}`, from the launcher or the registered host. Answer: 204.
/// The first reason given is the one kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeleteSession {
    /// With `identity = "munge"` the owner may leave it empty: `jrps down`
    /// from another login node has no copy of it.
    #[serde(default)]
    pub secret: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<EndReason>,
}

/// Why a session ended, as far as anyone could tell. The job side knows most
/// (its exit trap and its idle watch); the proxy adds what only it sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EndReason {
    /// Unused for the whole idle timeout: Jupyter was stopped.
    Idle,
    /// The job reached its wall time.
    TimeLimit,
    /// Cancelled (`jrps down`, `scancel`) before its time was up.
    Cancelled,
    /// Jupyter stopped by itself (File > Shut Down, or it crashed).
    JupyterExited,
    /// The job failed before Jupyter was running.
    JobFailed,
    /// The proxy's time to live for it ran out.
    Expired,
    /// Its Jupyter stopped answering the proxy's health checks.
    Unreachable,
    /// No job was linked to it in time: the launch that reserved it never
    /// submitted one, or gave up while the proxy was away.
    NeverSubmitted,
    /// Its node failed and the scheduler did not start its job again (the
    /// site submits with `requeue = false`, or Slurm's `JobRequeue=0`).
    NodeFailed,
}

impl EndReason {
    /// The reason in words, for `jrps ls` and the ended page.
    pub fn words(self) -> &'static str {
        match self {
            EndReason::Idle => "idle",
            EndReason::TimeLimit => "time limit",
            EndReason::Cancelled => "cancelled",
            EndReason::JupyterExited => "Jupyter exited",
            EndReason::JobFailed => "job failed",
            EndReason::Expired => "expired",
            EndReason::Unreachable => "Jupyter stopped answering",
            EndReason::NeverSubmitted => "never submitted",
            EndReason::NodeFailed => "node failed",
        }
    }

    /// The spelling of the API and of `jrps register --reason`.
    pub fn name(self) -> &'static str {
        match self {
            EndReason::Idle => "idle",
            EndReason::TimeLimit => "time-limit",
            EndReason::Cancelled => "cancelled",
            EndReason::JupyterExited => "jupyter-exited",
            EndReason::JobFailed => "job-failed",
            EndReason::Expired => "expired",
            EndReason::Unreachable => "unreachable",
            EndReason::NeverSubmitted => "never-submitted",
            EndReason::NodeFailed => "node-failed",
        }
    }

    pub fn parse(name: &str) -> Option<EndReason> {
        ALL_END_REASONS.into_iter().find(|r| r.name() == name)
    }
}

pub const ALL_END_REASONS: [EndReason; 9] = [
    EndReason::Idle,
    EndReason::TimeLimit,
    EndReason::Cancelled,
    EndReason::JupyterExited,
    EndReason::JobFailed,
    EndReason::Expired,
    EndReason::Unreachable,
    EndReason::NeverSubmitted,
    EndReason::NodeFailed,
];

/// `POST /api/v1/sessions/{alias}/activity`, from the registered host (the
/// job's idle watch). Answer: 200 [`Activity`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActivityQuery {
    pub secret: String,
}

/// When the proxy last passed a request to the session's Jupyter, by this
/// proxy's clock (compare two answers, not an answer with another clock).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Activity {
    pub last_request_at: Option<u64>,
}

/// Where a pending session's job is, as the launcher sees it from the
/// scheduler. Shown on the proxy's "starting" page only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// Waiting in the scheduler's queue; `detail` is the reason (`Priority`).
    Queued,
    /// The job runs; `detail` is the node. Jupyter is starting there.
    Running,
    /// Jupyter is starting (the job runs; the node may be unknown).
    Starting,
}

/// The longest `detail` of a [`ReportPhase`], in characters.
pub const PHASE_DETAIL_MAX: usize = 64;

/// Whether the proxy takes `detail` for a [`ReportPhase`]: 1 to
/// [`PHASE_DETAIL_MAX`] printable ASCII characters, and no word of it an IP
/// address (with or without a port), because the starting page shows it to
/// anyone with the URL and backend addresses are never shown. The launcher
/// leaves out a detail this refuses; the proxy answers 422 `invalid_field`.
pub fn check_phase_detail(detail: &str) -> Result<(), String> {
    let printable = detail.bytes().all(|b| (b' '..=b'~').contains(&b));
    let has_address = detail
        .split(|c: char| c.is_whitespace() || ",;()[]".contains(c))
        .any(|word| {
            word.parse::<std::net::IpAddr>().is_ok() || word.parse::<std::net::SocketAddr>().is_ok()
        });
    if detail.is_empty() || detail.len() > PHASE_DETAIL_MAX || !printable || has_address {
        return Err(format!(
            "detail must be 1-{PHASE_DETAIL_MAX} printable ASCII characters and no address"
        ));
    }
    Ok(())
}

/// `POST /api/v1/sessions/{alias}/phase`, from the launcher while it waits
/// (a later addition to the contract). Answer: 204. Kept in the
/// proxy's memory only, for the "starting" page; best effort on both sides.
/// `detail` is at most [`PHASE_DETAIL_MAX`] printable ASCII characters and
/// never an address (the proxy refuses both with 422).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportPhase {
    pub secret: String,
    pub phase: Phase,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SessionState {
    Pending,
    Ready,
    Ended,
}

/// Answer to `GET /api/v1/sessions/{alias}?wait=ready&timeout_s=N`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionStatus {
    pub alias: String,
    pub state: SessionState,
    pub job_id: Option<String>,
    pub expires_at: u64,
    /// Set once the session has ended, when the reason is known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_reason: Option<EndReason>,
    /// Its job was started again after a node failure: pending means its
    /// new run is starting, and what ran before it is gone.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub restarted: bool,
    /// When it ends, when its job said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ends_at: Option<u64>,
    /// How far its end may still move (`jrps extend`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extend_until: Option<u64>,
}

/// One of the caller's sessions, in `GET /api/v1/sessions` (identity on).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnSession {
    pub alias: String,
    /// The public URL, without a token.
    pub url: String,
    pub state: SessionState,
    pub job_id: Option<String>,
    pub created_at: u64,
    pub expires_at: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_reason: Option<EndReason>,
    /// As in [`SessionStatus`].
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub restarted: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ends_at: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extend_until: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<SessionKind>,
}

/// Every non-2xx API answer: `{"error": "<what>", "detail": "<why>"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    pub error: String,
    pub detail: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phase_details_that_could_show_an_address_are_refused() {
        for ok in ["Priority", "node-17", "gpu-a100-3 (reason: Resources)"] {
            assert_eq!(check_phase_detail(ok), Ok(()), "{ok}");
        }
        let long = "x".repeat(PHASE_DETAIL_MAX + 1);
        for refused in [
            "",
            "10.0.0.7",
            "node 10.0.0.7:8888",
            "[::1]",
            "caf\u{e9}",
            "a\nb",
            &long,
        ] {
            assert!(check_phase_detail(refused).is_err(), "{refused:?}");
        }
    }
}
