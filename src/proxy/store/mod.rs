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

mod error;
mod following;
mod postgres;
mod quotas;
mod session;
mod sqlite;
mod table;

use crate::clock::unix_now;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use crate::api::{EndReason, SessionState};

use super::cookie_key::CookieKey;

pub use error::StoreError;
pub use postgres::PgTarget;
pub use quotas::Quotas;
pub use session::{Session, authority_of};

use following::Followed;
use session::StoredSession;
use table::{Entry, Index, Table};

/// Where sessions are kept: `state = "state.sqlite"` or
/// `state = "postgres://…"`.
#[derive(Debug, Clone)]
pub enum StateLocation {
    File(std::path::PathBuf),
    Postgres(Box<PgTarget>),
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
    pub async fn follow_replicas(&self) {
        match &self.backend {
            Backend::Sqlite(_) => std::future::pending().await,
            Backend::Postgres(db) => db.follow_changes(self).await,
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

impl Followed for Store {
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

    fn held(&self) -> HashMap<Box<str>, u64> {
        self.all()
            .iter()
            .map(|s| (s.alias.clone(), s.revision))
            .collect()
    }
}
