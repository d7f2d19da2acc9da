//! One session: as the proxy serves it ([`Session`], in memory) and as a
//! backend stores it ([`StoredSession`], one row).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use http::uri::Authority;

use crate::api::{EndReason, SessionClock, SessionState};
use crate::clock::unix_now;
use crate::proxy::budget::SessionLoad;
use crate::proxy::cookie_key::CookieKey;
use crate::session_kind::SessionKind;

/// One session as the proxy knows it. Immutable: a change replaces the `Arc`.
#[derive(Debug, Clone)]
pub struct Session {
    pub alias: Box<str>,
    pub user: String,
    pub token_sha256: [u8; 32],
    pub secret_sha256: [u8; 32],
    /// Random per-session salt of the edge cookie, the one part of it
    /// that is stored ([`CookieKey`]).
    pub cookie_salt: [u8; 32],
    /// The edge cookie, derived from the salt under the server key: in
    /// memory only, so the state file lets no one in.
    pub cookie: [u8; 32],
    pub job_id: Option<String>,
    pub backend: Option<SocketAddr>,
    /// `backend` pre-rendered for request URIs (cloning it is a refcount).
    pub backend_authority: Option<Authority>,
    pub state: SessionState,
    pub created_at: u64,
    pub expires_at: u64,
    pub registered_at: Option<u64>,
    pub ended_at: Option<u64>,
    pub end_reason: Option<EndReason>,
    /// The uid that created it, proven by munge (`identity = "munge"`).
    pub owner: Option<u32>,
    /// The address that created it, for the per-client quota (kept in
    /// PostgreSQL, where replicas must count each other's; memory only with
    /// SQLite, where sessions loaded at start count toward their user and
    /// the total).
    pub client: Option<IpAddr>,
    /// When it ends and when its page warns: what its job reported at
    /// registration, moved by the scheduler and by `jrps extend` since.
    pub clock: Option<SessionClock>,
    /// The site's cluster its job runs on, as the launcher said at
    /// creation: which `[clusters.NAME]` ranges its backend may be in.
    pub cluster: Option<String>,
    /// What it runs, when the launcher said (it does for kinds the proxy
    /// logs a browser in to itself, such as code-server).
    pub kind: Option<SessionKind>,
    /// Which version of the row this is (set by the backend when it commits).
    pub revision: u64,
    /// Requests in flight and tunnels open, across its snapshots.
    pub load: Arc<SessionLoad>,
}

impl Session {
    /// Whether the request path may forward to this session right now.
    pub fn is_live(&self, now: u64) -> bool {
        self.state != SessionState::Ended && now < self.expires_at
    }

    /// Pending again after it was registered: its job was started again
    /// (a node failure) and the new run has not registered yet.
    pub fn is_restarting(&self) -> bool {
        self.state == SessionState::Pending && self.registered_at.is_some()
    }

    /// Reserved, and still waiting for its launcher to link a job.
    pub fn is_unlinked(&self) -> bool {
        self.state == SessionState::Pending && self.job_id.is_none()
    }

    /// Whose quota it counts against: its proven uid when identity is on,
    /// else the `user` it was created for.
    pub(super) fn quota_key(&self) -> String {
        self.owner
            .map_or_else(|| self.user.clone(), |uid| format!("uid:{uid}"))
    }

    /// Why it ended, for a session that has: its recorded reason, or
    /// `Expired` for one past its TTL that the sweep has not recorded yet.
    pub fn end_reason_now(&self) -> Option<EndReason> {
        match self.state {
            SessionState::Ended => self.end_reason,
            _ => Some(EndReason::Expired),
        }
    }
}

/// A session's columns as both backends store them.
#[derive(Debug)]
pub(super) struct StoredSession {
    pub(super) alias: String,
    pub(super) user: String,
    pub(super) token_sha256: Vec<u8>,
    pub(super) secret_sha256: Vec<u8>,
    pub(super) cookie_salt: Vec<u8>,
    pub(super) job_id: Option<String>,
    pub(super) backend: Option<String>,
    pub(super) state: String,
    pub(super) created_at: i64,
    pub(super) expires_at: i64,
    pub(super) registered_at: Option<i64>,
    pub(super) ended_at: Option<i64>,
    pub(super) end_reason: Option<String>,
    pub(super) owner_uid: Option<i64>,
    pub(super) client: Option<String>,
    /// [`SessionClock`] as JSON: one column for a record that only the
    /// proxy reads.
    pub(super) clock: Option<String>,
    pub(super) cluster: Option<String>,
    pub(super) kind: Option<String>,
    pub(super) revision: i64,
}

pub(super) fn state_str(state: SessionState) -> &'static str {
    match state {
        SessionState::Pending => "pending",
        SessionState::Ready => "ready",
        SessionState::Ended => "ended",
    }
}

impl StoredSession {
    pub(super) fn of(s: &Session) -> StoredSession {
        StoredSession {
            alias: s.alias.to_string(),
            user: s.user.clone(),
            token_sha256: s.token_sha256.to_vec(),
            secret_sha256: s.secret_sha256.to_vec(),
            cookie_salt: s.cookie_salt.to_vec(),
            job_id: s.job_id.clone(),
            backend: s.backend.map(|b| b.to_string()),
            state: state_str(s.state).to_owned(),
            created_at: s.created_at as i64,
            expires_at: s.expires_at as i64,
            registered_at: s.registered_at.map(|v| v as i64),
            ended_at: s.ended_at.map(|v| v as i64),
            end_reason: s.end_reason.map(|r| r.name().to_owned()),
            owner_uid: s.owner.map(i64::from),
            client: s.client.map(|c| c.to_string()),
            clock: s.clock.as_ref().and_then(|c| serde_json::to_string(c).ok()),
            cluster: s.cluster.clone(),
            kind: s.kind.map(|k| k.name().to_owned()),
            revision: s.revision as i64,
        }
    }

    /// The session this row describes. `known` is the version memory holds,
    /// if any: what memory alone keeps (load, client) carries over when it is
    /// the same session, not an alias drawn again.
    pub(super) fn into_session(self, key: &CookieKey, known: Option<&Session>) -> Session {
        let backend = self.backend.and_then(|b| b.parse::<SocketAddr>().ok());
        let state = match self.state.as_str() {
            "pending" => SessionState::Pending,
            "ready" => SessionState::Ready,
            _ => SessionState::Ended,
        };
        let blob32 = |v: &[u8]| <[u8; 32]>::try_from(v).ok();
        let blobs = (
            blob32(&self.token_sha256),
            blob32(&self.secret_sha256),
            blob32(&self.cookie_salt),
        );
        // A row whose digests are damaged can prove nothing: it loads as
        // ended (fail closed), never with a guessable zero value.
        let ended_at = self.ended_at.map(|v| v as u64);
        let (state, ended_at, token_sha256, secret_sha256, cookie_salt) = match blobs {
            (Some(token), Some(secret), Some(salt)) => (state, ended_at, token, secret, salt),
            // Ended now, so that its link says so for the usual retention
            // before it is forgotten.
            _ => (
                SessionState::Ended,
                ended_at.or(Some(unix_now())),
                [0; 32],
                [0; 32],
                [0; 32],
            ),
        };
        let created_at = self.created_at as u64;
        let same = known.filter(|k| k.created_at == created_at && k.secret_sha256 == secret_sha256);
        Session {
            cookie: key.cookie(&self.alias, &cookie_salt),
            alias: self.alias.into_boxed_str(),
            user: self.user,
            token_sha256,
            secret_sha256,
            cookie_salt,
            job_id: self.job_id,
            backend_authority: backend.and_then(authority_of),
            backend,
            state,
            created_at,
            expires_at: self.expires_at as u64,
            registered_at: self.registered_at.map(|v| v as u64),
            ended_at,
            end_reason: self.end_reason.and_then(|r| EndReason::parse(&r)),
            owner: self.owner_uid.and_then(|uid| u32::try_from(uid).ok()),
            client: self
                .client
                .and_then(|c| c.parse().ok())
                .or_else(|| same.and_then(|k| k.client)),
            // One that does not parse is no clock: the page shows no end
            // rather than a wrong one.
            clock: self.clock.and_then(|c| serde_json::from_str(&c).ok()),
            cluster: self.cluster,
            // One this version does not know is served as Jupyter's.
            kind: self.kind.and_then(|k| SessionKind::parse(&k)),
            revision: self.revision.max(0) as u64,
            load: same.map(|k| k.load.clone()).unwrap_or_default(),
        }
    }
}

pub fn authority_of(addr: SocketAddr) -> Option<Authority> {
    Authority::try_from(addr.to_string().as_str()).ok()
}
