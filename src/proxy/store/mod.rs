//! Sessions: durable in a database, served from memory. This module owns the
//! in-memory table the request path reads, the indexes kept in step with it,
//! and the rule that a change is committed before it becomes visible (and so
//! before any API call that made it answers). Where the rows live is the
//! backend's business: [`sqlite`] (one proxy, a file) or [`postgres`]
//! (replicas sharing a database, each following the others' changes).
//!
//! Concurrency: a replica's mutations are serialised by one async lock (the
//! API is not a hot path); the request path takes only a read lock on one
//! shard of the table and clones an `Arc`, never touches the database. Each
//! version of a row carries a revision, and memory takes a version only if it
//! is newer than the one it holds: a replica's own commit and the
//! notification of another's may arrive in either order.

mod postgres;
mod sqlite;

use crate::clock::unix_now;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use http::uri::Authority;
use tokio::sync::watch;

use crate::api::{EndReason, SessionState};

use super::budget::SessionLoad;
use super::cookie_key::CookieKey;

pub use postgres::PgTarget;

/// Where sessions are kept: `state = "state.sqlite"` or
/// `state = "postgres://…"`.
#[derive(Debug, Clone)]
pub enum StateLocation {
    File(std::path::PathBuf),
    Postgres(Box<PgTarget>),
}

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
    fn quota_key(&self) -> String {
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
struct StoredSession {
    alias: String,
    user: String,
    token_sha256: Vec<u8>,
    secret_sha256: Vec<u8>,
    cookie_salt: Vec<u8>,
    job_id: Option<String>,
    backend: Option<String>,
    state: String,
    created_at: i64,
    expires_at: i64,
    registered_at: Option<i64>,
    ended_at: Option<i64>,
    end_reason: Option<String>,
    owner_uid: Option<i64>,
    client: Option<String>,
    revision: i64,
}

fn state_str(state: SessionState) -> &'static str {
    match state {
        SessionState::Pending => "pending",
        SessionState::Ready => "ready",
        SessionState::Ended => "ended",
    }
}

impl StoredSession {
    fn of(s: &Session) -> StoredSession {
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
            revision: s.revision as i64,
        }
    }

    /// The session this row describes. `known` is the version memory holds,
    /// if any: what memory alone keeps (load, client) carries over when it is
    /// the same session, not an alias drawn again.
    fn into_session(self, key: &CookieKey, known: Option<&Session>) -> Session {
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
            revision: self.revision.max(0) as u64,
            load: same.map(|k| k.load.clone()).unwrap_or_default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("state database {path}: {source}")]
    Open {
        path: String,
        source: rusqlite::Error,
    },
    #[error("state database: {0}")]
    Sql(#[from] rusqlite::Error),
    /// PostgreSQL cannot be reached or refused the work: the caller is told
    /// to try again (503), and the replica keeps serving from memory.
    #[error("state database {0}")]
    Unavailable(String),
    /// At start only: the database is not one this proxy can use.
    #[error("state database {0}")]
    Refused(String),
    #[error("alias already in use")]
    AliasTaken,
    #[error("no such session")]
    NotFound,
    #[error("state database writer stopped")]
    WriterGone,
    #[error(
        "state database {path} is damaged ({detail}); restore it from a backup, \
         or move it away to start with no sessions"
    )]
    Corrupt { path: String, detail: String },
    #[error("{0}")]
    Quota(QuotaExceeded),
    #[error("state database {path}: cannot make it private: {source}")]
    Private {
        path: String,
        source: std::io::Error,
    },
}

/// Which quota a new session would break.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum QuotaExceeded {
    #[error("this user has {0} live sessions, the most allowed")]
    User(usize),
    #[error("this client address has {0} live sessions, the most allowed")]
    Client(usize),
    #[error("the proxy has {0} live sessions, the most allowed")]
    Total(usize),
}

/// Live sessions (not ended) allowed at once.
#[derive(Debug, Clone, Copy)]
pub struct Quotas {
    pub per_user: usize,
    pub per_client: usize,
    pub total: usize,
}

/// Live sessions already held by a new session's user and client, and in
/// all: counted from memory (SQLite) or by the database (PostgreSQL, where
/// another replica's newest may not have reached memory yet).
#[derive(Debug, Clone, Copy, Default)]
struct LiveCounts {
    user: usize,
    client: usize,
    total: usize,
}

impl Quotas {
    fn check(&self, counts: LiveCounts) -> Result<(), QuotaExceeded> {
        if counts.user >= self.per_user {
            return Err(QuotaExceeded::User(counts.user));
        }
        if counts.client >= self.per_client {
            return Err(QuotaExceeded::Client(counts.client));
        }
        if counts.total >= self.total {
            return Err(QuotaExceeded::Total(counts.total));
        }
        Ok(())
    }
}

/// What the store keeps about its sessions besides the table, in step with
/// every change: which session each backend address routes to (ready
/// sessions, for one live route per address), and live sessions per user,
/// per client address and in all (for the quotas).
#[derive(Default)]
struct Index {
    routes: HashMap<SocketAddr, Box<str>>,
    live_by_user: HashMap<String, usize>,
    live_by_client: HashMap<IpAddr, usize>,
    live: usize,
}

impl Index {
    fn add(&mut self, session: &Session) {
        if session.state == SessionState::Ended {
            return;
        }
        self.live += 1;
        *self.live_by_user.entry(session.quota_key()).or_insert(0) += 1;
        if let Some(client) = session.client {
            *self.live_by_client.entry(client).or_insert(0) += 1;
        }
        if let (SessionState::Ready, Some(backend)) = (session.state, session.backend) {
            self.routes.insert(backend, session.alias.clone());
        }
    }

    fn remove(&mut self, session: &Session) {
        if session.state == SessionState::Ended {
            return;
        }
        self.live = self.live.saturating_sub(1);
        fn down<K: std::hash::Hash + Eq>(map: &mut HashMap<K, usize>, key: &K) {
            if let Some(n) = map.get_mut(key) {
                *n -= 1;
                if *n == 0 {
                    map.remove(key);
                }
            }
        }
        down(&mut self.live_by_user, &session.quota_key());
        if let Some(client) = session.client {
            down(&mut self.live_by_client, &client);
        }
        if let Some(backend) = session.backend
            && self
                .routes
                .get(&backend)
                .is_some_and(|a| *a == session.alias)
        {
            self.routes.remove(&backend);
        }
    }

    fn counts(&self, new: &Session) -> LiveCounts {
        LiveCounts {
            user: self
                .live_by_user
                .get(&new.quota_key())
                .copied()
                .unwrap_or(0),
            client: new
                .client
                .and_then(|c| self.live_by_client.get(&c).copied())
                .unwrap_or(0),
            total: self.live,
        }
    }
}

struct Entry {
    session: Arc<Session>,
    state_tx: watch::Sender<SessionState>,
}

enum Backend {
    Sqlite(sqlite::Sqlite),
    Postgres(Box<postgres::Postgres>),
}

pub struct Store {
    backend: Backend,
    /// For rows read after start (another replica's changes).
    key: Arc<CookieKey>,
    table: Table,
    /// Serialises read-modify-write of sessions across API calls.
    writer: tokio::sync::Mutex<()>,
    /// Lower bounds for the sweep: the earliest `expires_at` of a session
    /// not ended, and the earliest `ended_at`, seen since the last scan
    /// (`u64::MAX`: none). Only ever lowered, except by [`Store::maybe_due`].
    earliest_expiry: AtomicU64,
    earliest_ended: AtomicU64,
    /// The earliest `created_at` of a pending session with no job linked.
    earliest_unlinked: AtomicU64,
    index: Mutex<Index>,
}

type Shard = HashMap<Box<str>, Entry>;

/// The in-memory sessions, split into shards by alias so that readers on
/// many cores do not all bounce one lock's cache line. Writers (API calls,
/// sweeps) take one shard's write lock for one `HashMap` operation.
struct Table {
    shards: Box<[RwLock<Shard>]>,
}

const SHARDS: usize = 64;

impl Table {
    fn new() -> Table {
        Table {
            shards: (0..SHARDS).map(|_| RwLock::new(HashMap::new())).collect(),
        }
    }

    /// FNV-1a: cheap, and the key only picks a shard (the map hashes again
    /// with its own keyed hasher), so it needs no resistance to collisions.
    fn shard(&self, alias: &str) -> &RwLock<Shard> {
        let mut hash: u32 = 0x811c_9dc5;
        for byte in alias.bytes() {
            hash = (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193);
        }
        &self.shards[hash as usize % SHARDS]
    }

    fn read(&self, alias: &str) -> std::sync::RwLockReadGuard<'_, Shard> {
        self.shard(alias).read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self, alias: &str) -> std::sync::RwLockWriteGuard<'_, Shard> {
        self.shard(alias).write().unwrap_or_else(|e| e.into_inner())
    }
}

impl Store {
    /// Opens (creating if needed) the state and loads every session.
    pub async fn open(location: &StateLocation, key: Arc<CookieKey>) -> Result<Store, StoreError> {
        let (backend, rows) = match location {
            StateLocation::File(path) => {
                let db = sqlite::Sqlite::open(path)?;
                let rows = db.load_all()?;
                (Backend::Sqlite(db), rows)
            }
            StateLocation::Postgres(target) => {
                let db = postgres::Postgres::open(target, &key).await?;
                let rows = db.load_all().await?;
                (Backend::Postgres(Box::new(db)), rows)
            }
        };
        let store = Store {
            backend,
            key,
            table: Table::new(),
            writer: tokio::sync::Mutex::new(()),
            // The first sweep scans everything loaded.
            earliest_expiry: AtomicU64::new(0),
            earliest_ended: AtomicU64::new(0),
            earliest_unlinked: AtomicU64::new(0),
            index: Mutex::new(Index::default()),
        };
        for row in rows {
            store.publish(row.into_session(&store.key, None));
        }
        Ok(store)
    }

    /// Follows the other replicas' changes for as long as the proxy runs
    /// (with SQLite there are none, and this never returns).
    pub async fn follow(&self) {
        match &self.backend {
            Backend::Sqlite(_) => std::future::pending().await,
            Backend::Postgres(db) => db.follow(self).await,
        }
    }

    /// Whether this replica runs the sweeps and health checks now: always
    /// alone with SQLite; with PostgreSQL, while it holds the duty lock.
    pub fn has_duty(&self) -> bool {
        match &self.backend {
            Backend::Sqlite(_) => true,
            Backend::Postgres(db) => db.has_duty(),
        }
    }

    /// How long no replica has held the duty lock, when that is longer than
    /// it should ever be: expired sessions then stay unswept (they are
    /// refused and count for no quota all the same) and backends unchecked.
    pub fn duty_lapse(&self, now: u64) -> Option<u64> {
        match &self.backend {
            Backend::Sqlite(_) => None,
            Backend::Postgres(db) => {
                let lapse = now.saturating_sub(db.duty_seen());
                (lapse > postgres::DUTY_LAPSE.as_secs()).then_some(lapse)
            }
        }
    }

    /// Whether the last word from the database was good (metrics, `/healthz`).
    pub fn database_up(&self) -> bool {
        match &self.backend {
            Backend::Sqlite(_) => true,
            Backend::Postgres(db) => db.is_up(),
        }
    }

    /// The session a backend address routes to, if any (it may have
    /// ended or expired since; the caller checks).
    pub fn route_holder(&self, backend: SocketAddr) -> Option<Arc<Session>> {
        let alias = self.index().routes.get(&backend).cloned()?;
        self.get(&alias)
    }

    fn index(&self) -> std::sync::MutexGuard<'_, Index> {
        self.index.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Keeps the index in step with one session's change from `old`.
    fn reindex(&self, old: Option<&Session>, new: Option<&Session>) {
        let mut index = self.index();
        if let Some(old) = old {
            index.remove(old);
        }
        if let Some(new) = new {
            index.add(new);
        }
    }

    /// Lowers the sweep's bounds for one session's new state.
    fn note_due(&self, session: &Session) {
        match (session.state, session.ended_at) {
            (SessionState::Ended, ended_at) => {
                self.earliest_ended
                    .fetch_min(ended_at.unwrap_or(0), Ordering::AcqRel);
            }
            _ => {
                self.earliest_expiry
                    .fetch_min(session.expires_at, Ordering::AcqRel);
                if session.is_unlinked() {
                    self.earliest_unlinked
                        .fetch_min(session.created_at, Ordering::AcqRel);
                }
            }
        }
    }

    /// Whether a sweep at `now` may find a session to expire or forget.
    /// When it may, the bounds are reset: the scan that follows must call
    /// [`Store::keep_due`] for every session it leaves as it is (changes it
    /// makes lower the bounds themselves).
    pub fn maybe_due(&self, now: u64, retention: u64, unlinked: u64) -> bool {
        let expiry = self.earliest_expiry.load(Ordering::Acquire);
        let ended = self.earliest_ended.load(Ordering::Acquire);
        let created = self.earliest_unlinked.load(Ordering::Acquire);
        if now < expiry
            && ended.saturating_add(retention) > now
            && created.saturating_add(unlinked) > now
        {
            return false;
        }
        self.earliest_expiry.store(u64::MAX, Ordering::Release);
        self.earliest_ended.store(u64::MAX, Ordering::Release);
        self.earliest_unlinked.store(u64::MAX, Ordering::Release);
        true
    }

    /// See [`Store::maybe_due`].
    pub fn keep_due(&self, session: &Session) {
        self.note_due(session);
    }

    /// The request path's lookup: a read lock and an `Arc` clone.
    pub fn get(&self, alias: &str) -> Option<Arc<Session>> {
        self.table.read(alias).get(alias).map(|e| e.session.clone())
    }

    /// The session and a receiver that sees every later state change.
    pub fn subscribe(&self, alias: &str) -> Option<(Arc<Session>, watch::Receiver<SessionState>)> {
        self.table
            .read(alias)
            .get(alias)
            .map(|e| (e.session.clone(), e.state_tx.subscribe()))
    }

    pub fn contains(&self, alias: &str) -> bool {
        self.table.read(alias).contains_key(alias)
    }

    /// A snapshot of every session (metrics, sweeps, health checks).
    pub fn all(&self) -> Vec<Arc<Session>> {
        let mut all = Vec::new();
        for shard in self.table.shards.iter() {
            let shard = shard.read().unwrap_or_else(|e| e.into_inner());
            all.extend(shard.values().map(|e| e.session.clone()));
        }
        all
    }

    /// Takes a committed version into memory, unless memory already holds
    /// it or a newer one, and tells watchers of a state change. Returns the
    /// version given.
    fn publish(&self, new: Session) -> Arc<Session> {
        let new = Arc::new(new);
        let mut shard = self.table.write(&new.alias);
        match shard.get_mut(&*new.alias) {
            Some(entry) if entry.session.revision >= new.revision => {}
            Some(entry) => {
                self.reindex(Some(&entry.session), Some(&new));
                self.note_due(&new);
                entry.session = new.clone();
                entry.state_tx.send_if_modified(|state| {
                    let changed = *state != new.state;
                    *state = new.state;
                    changed
                });
            }
            None => {
                self.reindex(None, Some(&new));
                self.note_due(&new);
                let (state_tx, _) = watch::channel(new.state);
                shard.insert(
                    new.alias.clone(),
                    Entry {
                        session: new.clone(),
                        state_tx,
                    },
                );
            }
        }
        new
    }

    /// Drops a forgotten session from memory, if memory holds no version
    /// newer than `revision` (an alias drawn again since).
    fn unpublish(&self, alias: &str, revision: u64) {
        let mut shard = self.table.write(alias);
        if shard
            .get(alias)
            .is_some_and(|e| e.session.revision <= revision)
            && let Some(gone) = shard.remove(alias)
        {
            self.reindex(Some(&gone.session), None);
        }
    }

    /// Another replica changed `aliases`: memory takes their rows as the
    /// database has them now, and forgets those it no longer has.
    fn follow_rows(&self, aliases: &[String], rows: Vec<StoredSession>) {
        let mut absent: Vec<&String> = aliases.iter().collect();
        for row in rows {
            absent.retain(|a| **a != row.alias);
            let known = self.get(&row.alias);
            self.publish(row.into_session(&self.key, known.as_deref()));
        }
        for alias in absent {
            self.unpublish(alias, u64::MAX);
        }
    }

    /// After a reconnect (notifications sent meanwhile are lost) and on a
    /// slow timer: `listing` is every alias the database has, with its
    /// revision, `last_revision` the newest it had handed out by then, and
    /// `held` what memory held (alias and revision) before the listing was
    /// read. Forgets what the database no longer has, but only versions
    /// memory held before the listing: one published since (this replica's
    /// own create, answered already) was committed after the listing and
    /// must stay visible. Returns the aliases whose rows memory must read.
    /// Memory that held a revision above `last_revision` means the database
    /// went back in time: then memory is emptied and every row read again.
    fn reconcile(
        &self,
        held: &HashMap<Box<str>, u64>,
        listing: &[(String, u64)],
        last_revision: u64,
    ) -> Vec<String> {
        if held.values().any(|revision| *revision > last_revision) {
            tracing::warn!(
                last_revision,
                "the state database is behind this replica's memory (restored or failed \
                 over?): taking its sessions as they are"
            );
            for session in self.all() {
                self.unpublish(&session.alias, u64::MAX);
            }
        }
        let present: std::collections::HashSet<&str> =
            listing.iter().map(|(a, _)| a.as_str()).collect();
        for (alias, revision) in held {
            if !present.contains(&**alias) {
                self.unpublish(alias, *revision);
            }
        }
        listing
            .iter()
            .filter(|(alias, revision)| self.get(alias).is_none_or(|k| k.revision != *revision))
            .map(|(alias, _)| alias.clone())
            .collect()
    }

    /// Every alias memory holds, with its revision.
    fn held(&self) -> HashMap<Box<str>, u64> {
        self.all()
            .iter()
            .map(|s| (s.alias.clone(), s.revision))
            .collect()
    }

    /// Inserts a new session within `quotas`; `AliasTaken` if the alias
    /// exists (even ended). Checked under the writer lock (and with
    /// PostgreSQL, under a lock every replica takes), so concurrent creates
    /// cannot both take the last place; the alias is unique by the table's
    /// key, whichever replica draws it.
    pub async fn insert(
        &self,
        session: Session,
        quotas: &Quotas,
    ) -> Result<Arc<Session>, StoreError> {
        let _writer = self.writer.lock().await;
        if self.contains(&session.alias) {
            return Err(StoreError::AliasTaken);
        }
        let revision = match &self.backend {
            Backend::Sqlite(db) => {
                let counts = self.index().counts(&session);
                quotas.check(counts).map_err(StoreError::Quota)?;
                db.insert(StoredSession::of(&session)).await?
            }
            Backend::Postgres(db) => db.insert(&session, quotas).await?,
        };
        let revision = revision.ok_or(StoreError::AliasTaken)?;
        Ok(self.publish(Session {
            revision,
            ..session
        }))
    }

    /// Read-modify-write of one session: `change` sees the current session and
    /// returns the new one (or an error that is passed back untouched). The new
    /// session is committed, then published, then watchers are told. With
    /// PostgreSQL "current" is the row as the database has it, locked until
    /// the change commits: two replicas cannot both change the same version.
    pub async fn update<E>(
        &self,
        alias: &str,
        change: impl FnOnce(&Session) -> Result<Session, E>,
    ) -> Result<Result<Arc<Session>, E>, StoreError> {
        let _writer = self.writer.lock().await;
        let known = self.get(alias);
        let changed = match &self.backend {
            Backend::Sqlite(db) => {
                let current = known.ok_or(StoreError::NotFound)?;
                match change(&current) {
                    Ok(new) => {
                        let revision = db.update(StoredSession::of(&new)).await?;
                        Ok(Session { revision, ..new })
                    }
                    Err(e) => Err(e),
                }
            }
            Backend::Postgres(db) => {
                db.update(alias, |row| {
                    change(&row.into_session(&self.key, known.as_deref()))
                })
                .await?
            }
        };
        Ok(changed.map(|new| self.publish(new)))
    }

    /// Marks a session ended (idempotent), with the reason when one is
    /// known; the first reason stays. Returns whether it changed.
    pub async fn end(&self, alias: &str, reason: Option<EndReason>) -> Result<bool, StoreError> {
        let now = unix_now();
        let r = self
            .update(alias, |s| {
                if s.state == SessionState::Ended {
                    return Err(());
                }
                Ok(Session {
                    state: SessionState::Ended,
                    ended_at: Some(now),
                    end_reason: s.end_reason.or(reason),
                    ..s.clone()
                })
            })
            .await?;
        Ok(r.is_ok())
    }

    /// Forgets a session entirely (after its retention), freeing its alias:
    /// the version given, not one that replaced it since.
    pub async fn forget(&self, session: &Session) -> Result<(), StoreError> {
        let _writer = self.writer.lock().await;
        let gone = match &self.backend {
            Backend::Sqlite(db) => {
                db.delete(&session.alias).await?;
                true
            }
            Backend::Postgres(db) => db.delete(&session.alias, session.revision).await?,
        };
        if gone {
            self.unpublish(&session.alias, session.revision);
        }
        Ok(())
    }

    /// Records a munge credential the API accepted, until `until`; `false`
    /// when it was recorded before (a replay at another replica). With
    /// SQLite there is one replica, and its munged's replay cache is the
    /// record.
    pub async fn spend_credential(&self, digest: [u8; 32], until: u64) -> Result<bool, StoreError> {
        match &self.backend {
            Backend::Sqlite(_) => Ok(true),
            Backend::Postgres(db) => db.spend_credential(&digest, until).await,
        }
    }

    /// Makes the next sweep scan every session (one was cut short).
    pub fn rescan(&self) {
        self.earliest_expiry.store(0, Ordering::Release);
    }
}

pub fn authority_of(addr: SocketAddr) -> Option<Authority> {
    Authority::try_from(addr.to_string().as_str()).ok()
}
