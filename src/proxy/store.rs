//! Sessions: durable in SQLite, served from memory. This module owns the
//! schema, the in-memory table the request path reads, and the rule that a
//! change is committed to disk before it becomes visible (and so before any API
//! call that made it answers).
//!
//! Durability: WAL with `synchronous = FULL`. NORMAL would already survive a
//! killed proxy (SIGKILL), but not a power cut on the proxy host; changes come
//! one per API call (a handful per launch), so an fsync each costs nothing that
//! matters and "a restart loses nothing" holds for every kind of restart.
//!
//! Concurrency: mutations are serialised by one async lock (the API is not a
//! hot path); the request path takes only a read lock on one shard of the
//! table and clones an `Arc`, never touches SQLite.

use crate::clock::unix_now;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use http::uri::Authority;
use rusqlite::{Connection, params};
use tokio::sync::watch;

use crate::api::{EndReason, SessionState};

use super::budget::SessionLoad;
use super::cookie_key::CookieKey;

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
    /// The address that created it, for the per-client quota (memory only:
    /// sessions loaded at start count toward their user and the total).
    pub client: Option<IpAddr>,
    /// Requests in flight and tunnels open, across its snapshots.
    pub load: Arc<SessionLoad>,
}

impl Session {
    /// Whether the request path may forward to this session right now.
    pub fn is_live(&self, now: u64) -> bool {
        self.state != SessionState::Ended && now < self.expires_at
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

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("state database {path}: {source}")]
    Open {
        path: String,
        source: rusqlite::Error,
    },
    #[error("state database: {0}")]
    Sql(#[from] rusqlite::Error),
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

/// What the store keeps about its sessions besides the table, in step with
/// every change: which session each backend address routes to (ready
/// sessions, for one live route per address), and live sessions per user,
/// per client address and in all (for the quotas). Changed only by writers.
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

    fn check(&self, new: &Session, quotas: &Quotas) -> Result<(), QuotaExceeded> {
        let user = self
            .live_by_user
            .get(&new.quota_key())
            .copied()
            .unwrap_or(0);
        if user >= quotas.per_user {
            return Err(QuotaExceeded::User(user));
        }
        if let Some(client) = new.client {
            let n = self.live_by_client.get(&client).copied().unwrap_or(0);
            if n >= quotas.per_client {
                return Err(QuotaExceeded::Client(n));
            }
        }
        if self.live >= quotas.total {
            return Err(QuotaExceeded::Total(self.live));
        }
        Ok(())
    }
}

struct Entry {
    session: Arc<Session>,
    state_tx: watch::Sender<SessionState>,
}

pub struct Store {
    db: Arc<Mutex<Connection>>,
    table: Table,
    /// Serialises read-modify-write of sessions across API calls.
    writer: tokio::sync::Mutex<()>,
    /// Lower bounds for the sweep: the earliest `expires_at` of a session
    /// not ended, and the earliest `ended_at`, seen since the last scan
    /// (`u64::MAX`: none). Only ever lowered, except by [`Store::maybe_due`].
    earliest_expiry: AtomicU64,
    earliest_ended: AtomicU64,
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

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS sessions (
    alias          TEXT PRIMARY KEY,
    user           TEXT NOT NULL,
    token_sha256   BLOB NOT NULL,
    secret_sha256  BLOB NOT NULL,
    cookie         BLOB NOT NULL,
    job_id         TEXT,
    backend        TEXT,
    state          TEXT NOT NULL,
    created_at     INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL,
    registered_at  INTEGER,
    ended_at       INTEGER,
    end_reason     TEXT,
    owner_uid      INTEGER
);
";

/// Columns added after the first schema, with their type, for state files
/// made by an older jrps (`ALTER TABLE` when missing).
const ADDED_COLUMNS: &[(&str, &str)] = &[("end_reason", "TEXT"), ("owner_uid", "INTEGER")];

fn add_missing_columns(conn: &Connection) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare("SELECT name FROM pragma_table_info('sessions')")?;
    let have: Vec<String> = stmt
        .query_map([], |row| row.get(0))?
        .collect::<Result<_, _>>()?;
    for (name, kind) in ADDED_COLUMNS {
        if !have.iter().any(|h| h == name) {
            conn.execute_batch(&format!("ALTER TABLE sessions ADD COLUMN {name} {kind}"))?;
        }
    }
    Ok(())
}

fn state_str(state: SessionState) -> &'static str {
    match state {
        SessionState::Pending => "pending",
        SessionState::Ready => "ready",
        SessionState::Ended => "ended",
    }
}

/// A 32-byte digest or salt column; `None` if the row holds anything else.
fn blob32(v: &[u8]) -> Option<[u8; 32]> {
    <[u8; 32]>::try_from(v).ok()
}

/// The state file and SQLite's `-wal` and `-shm` beside it, private to the
/// proxy's user: they hold every session's secrets' digests. SQLite gives
/// the two side files the main file's mode, so the main file is made 0600
/// before SQLite opens it, and all three are set again in case an older
/// jrps or another umask made them.
fn make_private(path: &Path) -> Result<(), StoreError> {
    let private = |source| StoreError::Private {
        path: path.display().to_string(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && !dir.exists()
    {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(private)?;
    }
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map_err(private)?;
    for suffix in ["", "-wal", "-shm"] {
        let file = PathBuf::from(format!("{}{suffix}", path.display()));
        match std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(private(e)),
            _ => {}
        }
    }
    Ok(())
}

impl Store {
    /// Opens (creating if needed) the state file and loads every session.
    pub fn open(path: &Path, key: &CookieKey) -> Result<Store, StoreError> {
        let open_err = |source| StoreError::Open {
            path: path.display().to_string(),
            source,
        };
        make_private(path)?;
        let conn = Connection::open(path).map_err(open_err)?;
        // Refuse a damaged file at start, rather than serve half of it.
        let check: String = conn
            .query_row("PRAGMA quick_check", [], |row| row.get(0))
            .map_err(|e| StoreError::Corrupt {
                path: path.display().to_string(),
                detail: e.to_string(),
            })?;
        if check != "ok" {
            return Err(StoreError::Corrupt {
                path: path.display().to_string(),
                detail: check,
            });
        }
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(open_err)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(open_err)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(open_err)?;
        conn.execute_batch(SCHEMA).map_err(open_err)?;
        add_missing_columns(&conn).map_err(open_err)?;

        let table = Table::new();
        let mut index = Index::default();
        {
            let mut stmt = conn.prepare(
                "SELECT alias, user, token_sha256, secret_sha256, cookie, job_id, backend,
                        state, created_at, expires_at, registered_at, ended_at, end_reason,
                        owner_uid
                 FROM sessions",
            )?;
            let rows = stmt.query_map([], |row| {
                let backend: Option<String> = row.get(6)?;
                let backend = backend.and_then(|b| b.parse::<SocketAddr>().ok());
                let state: String = row.get(7)?;
                let state = match state.as_str() {
                    "pending" => SessionState::Pending,
                    "ready" => SessionState::Ready,
                    _ => SessionState::Ended,
                };
                let alias = row.get::<_, String>(0)?;
                let blobs = (
                    blob32(&row.get::<_, Vec<u8>>(2)?),
                    blob32(&row.get::<_, Vec<u8>>(3)?),
                    blob32(&row.get::<_, Vec<u8>>(4)?),
                );
                // A row whose digests are damaged can prove nothing: it loads
                // as ended (fail closed), never with a guessable zero value.
                let ended_at = row.get::<_, Option<i64>>(11)?.map(|v| v as u64);
                let (state, ended_at, token_sha256, secret_sha256, cookie_salt) = match blobs {
                    (Some(token), Some(secret), Some(salt)) => {
                        (state, ended_at, token, secret, salt)
                    }
                    // Ended now, so that its link says so for the usual
                    // retention before it is forgotten.
                    _ => (
                        SessionState::Ended,
                        ended_at.or(Some(unix_now())),
                        [0; 32],
                        [0; 32],
                        [0; 32],
                    ),
                };
                Ok(Session {
                    cookie: key.cookie(&alias, &cookie_salt),
                    alias: alias.into_boxed_str(),
                    user: row.get(1)?,
                    token_sha256,
                    secret_sha256,
                    cookie_salt,
                    job_id: row.get(5)?,
                    backend_authority: backend.and_then(authority_of),
                    backend,
                    state,
                    created_at: row.get::<_, i64>(8)? as u64,
                    expires_at: row.get::<_, i64>(9)? as u64,
                    registered_at: row.get::<_, Option<i64>>(10)?.map(|v| v as u64),
                    ended_at,
                    end_reason: row
                        .get::<_, Option<String>>(12)?
                        .and_then(|r| EndReason::parse(&r)),
                    owner: row
                        .get::<_, Option<i64>>(13)?
                        .and_then(|uid| u32::try_from(uid).ok()),
                    client: None,
                    load: Arc::default(),
                })
            })?;
            for session in rows {
                let session = session?;
                index.add(&session);
                let (state_tx, _) = watch::channel(session.state);
                table.write(&session.alias).insert(
                    session.alias.clone(),
                    Entry {
                        session: Arc::new(session),
                        state_tx,
                    },
                );
            }
        }
        Ok(Store {
            db: Arc::new(Mutex::new(conn)),
            table,
            writer: tokio::sync::Mutex::new(()),
            // The first sweep scans everything loaded from disk.
            earliest_expiry: AtomicU64::new(0),
            earliest_ended: AtomicU64::new(0),
            index: Mutex::new(index),
        })
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
            }
        }
    }

    /// Whether a sweep at `now` may find a session to expire or forget.
    /// When it may, the bounds are reset: the scan that follows must call
    /// [`Store::keep_due`] for every session it leaves as it is (changes it
    /// makes lower the bounds themselves).
    pub fn maybe_due(&self, now: u64, retention: u64) -> bool {
        let expiry = self.earliest_expiry.load(Ordering::Acquire);
        let ended = self.earliest_ended.load(Ordering::Acquire);
        if now < expiry && ended.saturating_add(retention) > now {
            return false;
        }
        self.earliest_expiry.store(u64::MAX, Ordering::Release);
        self.earliest_ended.store(u64::MAX, Ordering::Release);
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

    /// Runs SQL on the connection off the async threads.
    async fn with_db<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, rusqlite::Error> + Send + 'static,
    ) -> Result<T, StoreError> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || {
            let conn = db.lock().unwrap_or_else(|e| e.into_inner());
            f(&conn)
        })
        .await
        .map_err(|_| StoreError::WriterGone)?
        .map_err(StoreError::from)
    }

    /// Inserts a new session within `quotas`; `AliasTaken` if the alias
    /// exists (even ended). Checked under the writer lock, so concurrent
    /// creates cannot both take the last place.
    pub async fn insert(
        &self,
        session: Session,
        quotas: &Quotas,
    ) -> Result<Arc<Session>, StoreError> {
        let _writer = self.writer.lock().await;
        if self.contains(&session.alias) {
            return Err(StoreError::AliasTaken);
        }
        self.index()
            .check(&session, quotas)
            .map_err(StoreError::Quota)?;
        let s = session.clone();
        let inserted = self
            .with_db(move |conn| {
                conn.execute(
                    "INSERT OR IGNORE INTO sessions (alias, user, token_sha256, secret_sha256, cookie,
                        job_id, backend, state, created_at, expires_at, registered_at, ended_at,
                        end_reason, owner_uid)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
                    params![
                        &*s.alias,
                        s.user,
                        &s.token_sha256[..],
                        &s.secret_sha256[..],
                        &s.cookie_salt[..],
                        s.job_id,
                        s.backend.map(|b| b.to_string()),
                        state_str(s.state),
                        s.created_at as i64,
                        s.expires_at as i64,
                        s.registered_at.map(|v| v as i64),
                        s.ended_at.map(|v| v as i64),
                        s.end_reason.map(EndReason::name),
                        s.owner,
                    ],
                )
            })
            .await?;
        if inserted == 0 {
            return Err(StoreError::AliasTaken);
        }
        let session = Arc::new(session);
        self.note_due(&session);
        self.reindex(None, Some(&session));
        let (state_tx, _) = watch::channel(session.state);
        self.table.write(&session.alias).insert(
            session.alias.clone(),
            Entry {
                session: session.clone(),
                state_tx,
            },
        );
        Ok(session)
    }

    /// Read-modify-write of one session: `change` sees the current session and
    /// returns the new one (or an error that is passed back untouched). The new
    /// session is committed to SQLite, then published, then watchers are told.
    pub async fn update<E>(
        &self,
        alias: &str,
        change: impl FnOnce(&Session) -> Result<Session, E>,
    ) -> Result<Result<Arc<Session>, E>, StoreError> {
        let _writer = self.writer.lock().await;
        let current = self.get(alias).ok_or(StoreError::NotFound)?;
        let new = match change(&current) {
            Ok(new) => new,
            Err(e) => return Ok(Err(e)),
        };
        let s = new.clone();
        self.with_db(move |conn| {
            conn.execute(
                "UPDATE sessions SET job_id = ?2, backend = ?3, state = ?4, expires_at = ?5,
                    registered_at = ?6, ended_at = ?7, end_reason = ?8 WHERE alias = ?1",
                params![
                    &*s.alias,
                    s.job_id,
                    s.backend.map(|b| b.to_string()),
                    state_str(s.state),
                    s.expires_at as i64,
                    s.registered_at.map(|v| v as i64),
                    s.ended_at.map(|v| v as i64),
                    s.end_reason.map(EndReason::name),
                ],
            )
        })
        .await?;
        let new = Arc::new(new);
        self.note_due(&new);
        self.reindex(Some(&current), Some(&new));
        if let Some(entry) = self.table.write(alias).get_mut(alias) {
            entry.session = new.clone();
            entry.state_tx.send_if_modified(|state| {
                let changed = *state != new.state;
                *state = new.state;
                changed
            });
        }
        Ok(Ok(new))
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

    /// Forgets a session entirely (after its retention), freeing its alias.
    pub async fn forget(&self, alias: &str) -> Result<(), StoreError> {
        let _writer = self.writer.lock().await;
        let a = alias.to_owned();
        self.with_db(move |conn| conn.execute("DELETE FROM sessions WHERE alias = ?1", [a]))
            .await?;
        let gone = self.table.write(alias).remove(alias);
        self.reindex(gone.as_ref().map(|e| &*e.session), None);
        Ok(())
    }
}

pub fn authority_of(addr: SocketAddr) -> Option<Authority> {
    Authority::try_from(addr.to_string().as_str()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_folder_it_makes_is_private_and_so_is_the_file() {
        let root = tempfile::tempdir().unwrap();
        let path = root.path().join("new/state.sqlite");
        make_private(&path).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(path.parent().unwrap()), 0o700);
        assert_eq!(mode(&path), 0o600);
    }

    /// A state file from before `end_reason` opens with every row, and
    /// takes reasons from then on.
    #[tokio::test]
    async fn a_state_file_of_the_first_schema_is_upgraded_in_place() {
        let root = tempfile::tempdir().unwrap();
        let path = root.path().join("state.sqlite");
        let first_schema = SCHEMA
            .replace(",\n    end_reason     TEXT", "")
            .replace(",\n    owner_uid      INTEGER", "");
        assert!(!first_schema.contains("end_reason"));
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(&first_schema).unwrap();
            conn.execute(
                "INSERT INTO sessions VALUES ('amber-otter-lagoon', 'ann', ?1, ?1, ?1, NULL, NULL,
                    'pending', 1, 4000000000, NULL, NULL)",
                [&[7u8; 32][..]],
            )
            .unwrap();
        }
        let key = CookieKey::load_or_create(&root.path().join("key")).unwrap();
        let store = Store::open(&path, &key).unwrap();
        let session = store.get("amber-otter-lagoon").expect("the old row loads");
        assert_eq!(
            (session.state, session.end_reason),
            (SessionState::Pending, None)
        );
        assert!(
            store
                .end("amber-otter-lagoon", Some(EndReason::Idle))
                .await
                .unwrap()
        );
        drop(store);
        let store = Store::open(&path, &key).unwrap();
        let session = store.get("amber-otter-lagoon").unwrap();
        assert_eq!(session.end_reason, Some(EndReason::Idle));
    }
}
