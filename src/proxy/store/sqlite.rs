//! The one-proxy backend: a SQLite file beside the proxy.
//!
//! Durability: WAL with `synchronous = FULL`. NORMAL would already survive a
//! killed proxy (SIGKILL), but not a power cut on the proxy host; changes come
//! one per API call (a handful per launch), so an fsync each costs nothing that
//! matters and "a restart loses nothing" holds for every kind of restart.
//!
//! Schema: versioned by refinery (`migrations/sqlite`). A file made before
//! versioning began is first brought to version 1 by adding the columns it
//! lacks.

use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use rusqlite::Connection;

use super::error::StoreError;
use super::session::StoredSession;

mod embedded {
    refinery::embed_migrations!("migrations/sqlite");
}

/// Columns version 1 has that the first, unversioned schema lacked.
const PRE_VERSIONING_COLUMNS: &[(&str, &str)] = &[("end_reason", "TEXT"), ("owner_uid", "INTEGER")];

const COLUMNS: &str = "alias, user, token_sha256, secret_sha256, cookie, job_id, backend, \
                       state, created_at, expires_at, registered_at, ended_at, end_reason, \
                       owner_uid, clock, cluster, kind";

/// A row's values in the order of [`COLUMNS`]: the one list inserts and
/// updates both bind.
fn bind(s: &StoredSession) -> [&dyn rusqlite::ToSql; 17] {
    [
        &s.alias,
        &s.user,
        &s.token_sha256,
        &s.secret_sha256,
        &s.cookie_salt,
        &s.job_id,
        &s.backend,
        &s.state,
        &s.created_at,
        &s.expires_at,
        &s.registered_at,
        &s.ended_at,
        &s.end_reason,
        &s.owner_uid,
        &s.clock,
        &s.cluster,
        &s.kind,
    ]
}

/// `?from, …, ?to`.
fn placeholders(from: usize, to: usize) -> String {
    (from..=to)
        .map(|i| format!("?{i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

pub(super) struct Sqlite {
    db: Arc<Mutex<Connection>>,
    /// One proxy writes the file, so revisions are its own count.
    revisions: AtomicU64,
}

impl Sqlite {
    pub fn open(path: &Path) -> Result<Sqlite, StoreError> {
        let open_err = |source| StoreError::Open {
            path: path.display().to_string(),
            source,
        };
        make_private(path)?;
        let mut conn = Connection::open(path).map_err(open_err)?;
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
        adopt_unversioned(&conn).map_err(open_err)?;
        let runner = embedded::migrations::runner();
        runner
            .run(&mut conn)
            .map_err(|e| StoreError::migration(path.display(), &e, &runner))?;
        Ok(Sqlite {
            db: Arc::new(Mutex::new(conn)),
            revisions: AtomicU64::new(0),
        })
    }

    pub fn load_all(&self) -> Result<Vec<StoredSession>, StoreError> {
        let conn = self.db.lock().unwrap_or_else(|e| e.into_inner());
        let mut stmt = conn.prepare(&format!("SELECT {COLUMNS} FROM sessions"))?;
        let rows = stmt.query_map([], |row| {
            Ok(StoredSession {
                alias: row.get(0)?,
                user: row.get(1)?,
                token_sha256: row.get(2)?,
                secret_sha256: row.get(3)?,
                cookie_salt: row.get(4)?,
                job_id: row.get(5)?,
                backend: row.get(6)?,
                state: row.get(7)?,
                created_at: row.get(8)?,
                expires_at: row.get(9)?,
                registered_at: row.get(10)?,
                ended_at: row.get(11)?,
                end_reason: row.get(12)?,
                owner_uid: row.get(13)?,
                clock: row.get(14)?,
                cluster: row.get(15)?,
                kind: row.get(16)?,
                client: None,
                revision: 0,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn next_revision(&self) -> u64 {
        self.revisions.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// The new row's revision, or `None` if the alias is taken.
    pub async fn insert(&self, s: StoredSession) -> Result<Option<u64>, StoreError> {
        let inserted = self
            .with_db(move |conn| {
                let values = bind(&s);
                conn.execute(
                    &format!(
                        "INSERT OR IGNORE INTO sessions ({COLUMNS}) VALUES ({})",
                        placeholders(1, values.len())
                    ),
                    &values[..],
                )
            })
            .await?;
        Ok((inserted > 0).then(|| self.next_revision()))
    }

    /// Writes what a session's life changes; returns the new revision.
    pub async fn update(&self, s: StoredSession) -> Result<u64, StoreError> {
        self.with_db(move |conn| {
            // Every column but the key, from the same list as an insert.
            let values = bind(&s);
            let (_, rest) = COLUMNS.split_once(", ").unwrap_or_default();
            conn.execute(
                &format!(
                    "UPDATE sessions SET ({rest}) = ({}) WHERE alias = ?1",
                    placeholders(2, values.len())
                ),
                &values[..],
            )
        })
        .await?;
        Ok(self.next_revision())
    }

    pub async fn delete(&self, alias: &str) -> Result<(), StoreError> {
        let alias = alias.to_owned();
        self.with_db(move |conn| conn.execute("DELETE FROM sessions WHERE alias = ?1", [alias]))
            .await?;
        Ok(())
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
}

/// A file made before the schema was versioned (it has `sessions` but no
/// migration history) gets the columns version 1 added, so that version 1,
/// `CREATE TABLE IF NOT EXISTS`, describes it exactly.
fn adopt_unversioned(conn: &Connection) -> rusqlite::Result<()> {
    let table_exists = |name: &str| -> rusqlite::Result<bool> {
        conn.query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
            [name],
            |row| row.get::<_, i64>(0),
        )
        .map(|n| n > 0)
    };
    if !table_exists("sessions")? || table_exists("refinery_schema_history")? {
        return Ok(());
    }
    let mut stmt = conn.prepare("SELECT name FROM pragma_table_info('sessions')")?;
    let have: Vec<String> = stmt
        .query_map([], |row| row.get(0))?
        .collect::<Result<_, _>>()?;
    for (name, kind) in PRE_VERSIONING_COLUMNS {
        if !have.iter().any(|h| h == name) {
            conn.execute_batch(&format!("ALTER TABLE sessions ADD COLUMN {name} {kind}"))?;
        }
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::super::{StateLocation, Store};
    use super::*;
    use crate::api::{EndReason, SessionState};
    use crate::proxy::cookie_key::CookieKey;

    #[test]
    fn a_state_folder_it_makes_is_private_and_so_is_the_file() {
        let root = tempfile::tempdir().unwrap();
        let path = root.path().join("new/state.sqlite");
        make_private(&path).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(path.parent().unwrap()), 0o700);
        assert_eq!(mode(&path), 0o600);
    }

    /// A state file from before `end_reason` and before versioning opens
    /// with every row, takes reasons from then on, and is versioned after.
    #[tokio::test]
    async fn a_state_file_of_the_first_schema_is_upgraded_in_place() {
        let root = tempfile::tempdir().unwrap();
        let path = root.path().join("state.sqlite");
        let first_schema = include_str!("../../../migrations/sqlite/V1__sessions.sql")
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
        let key = Arc::new(CookieKey::load_or_create(&root.path().join("key")).unwrap());
        let location = StateLocation::File(path.clone());
        let store = Store::open(&location, key.clone()).await.unwrap();
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
        let store = Store::open(&location, key).await.unwrap();
        let session = store.get("amber-otter-lagoon").unwrap();
        assert_eq!(session.end_reason, Some(EndReason::Idle));
        let versions: i64 = Connection::open(&path)
            .unwrap()
            .query_row(
                "SELECT max(version) FROM refinery_schema_history",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(versions, 4);
    }

    #[test]
    fn a_state_file_from_a_newer_jrps_is_refused_with_what_to_do() {
        let root = tempfile::tempdir().unwrap();
        let path = root.path().join("state.sqlite");
        drop(Sqlite::open(&path).unwrap());
        Connection::open(&path)
            .unwrap()
            .execute(
                "INSERT INTO refinery_schema_history (version, name, applied_on, checksum)
                 VALUES (99, 'from_the_future', '2027-01-01T00:00:00Z', '1')",
                [],
            )
            .unwrap();
        let err = Sqlite::open(&path).err().expect("refused").to_string();
        assert!(
            err.contains("written by a newer jrps (schema version 99, this jrps knows up to 4)")
                && err.contains("state.sqlite")
                && err.contains("restore the state saved before the upgrade"),
            "{err}"
        );
    }
}
