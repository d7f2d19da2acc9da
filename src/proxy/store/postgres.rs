//! The replicated backend: every `jrps serve` on one PostgreSQL database.
//!
//! What each promise rests on:
//! - committed before answered: each change is one transaction, committed
//!   (synchronously, PostgreSQL's default) before the store publishes it;
//! - unique aliases: the table's primary key (`ON CONFLICT DO NOTHING`, and
//!   the API draws another alias);
//! - one-time registration, and every other read-modify-write: the row is
//!   read `FOR UPDATE` and changed in the same transaction, so of many
//!   concurrent changes to one version only the first sees it;
//! - quotas: counted in the creating transaction under a transaction-level
//!   advisory lock every replica takes;
//! - every replica current: a trigger notifies `jrps_sessions` with the
//!   alias on every write; the follower reads the row and publishes it, and
//!   reads everything after a reconnect (notifications sent meanwhile are
//!   lost) and every [`FULL_RELOAD`];
//! - sweeps and health checks once: the follower's connection holds a
//!   session-level advisory lock; when it dies PostgreSQL frees the lock and
//!   another replica takes it at its next try ([`DUTY_RETRY`]).
//!
//! An outage: the request path never waits on the database (it reads
//! memory); calls that must write answer 503 within [`OP_TIMEOUT`]; both
//! connections are made again when the database is back.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tokio_postgres::{AsyncMessage, Client, Connection, NoTls, Row};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::error::StoreError;
use super::following::Followed;
use super::quotas::{LiveCounts, Quotas};
use super::session::{Session, StoredSession};
use crate::clock::unix_now;
use crate::proxy::cookie_key::CookieKey;

mod embedded {
    refinery::embed_migrations!("migrations/postgres");
}

/// Advisory lock keys, the same on every replica ("jrps" and a number).
const MIGRATION_LOCK: i64 = 0x6a72_7073_0001;
const QUOTA_LOCK: i64 = 0x6a72_7073_0002;
const DUTY_LOCK: i64 = 0x6a72_7073_0003;

/// The longest any database call may take before the API answers 503.
const OP_TIMEOUT: Duration = Duration::from_secs(5);
/// How often a replica without the duty lock tries to take it, and the
/// holder proves its connection alive: a dead holder's work moves within
/// about this long once PostgreSQL has seen its connection close.
pub(super) const DUTY_RETRY: Duration = Duration::from_secs(1);
/// How often memory is compared with the whole table, for what a lost
/// notification missed.
pub(super) const FULL_RELOAD: Duration = Duration::from_secs(30);

const CHANNEL: &str = "jrps_sessions";

/// What PostgreSQL allows a jrps connection idle inside a transaction.
const IDLE_IN_TRANSACTION: Duration = Duration::from_secs(10);
/// What it allows the follower idle outside one (PostgreSQL 14 and later):
/// the follower speaks every [`DUTY_RETRY`], so only a replica that is
/// stopped or wedged (not dead, so its kernel keeps the connection open)
/// goes quiet this long, and then it loses the duty lock.
const FOLLOWER_IDLE: Duration = Duration::from_secs(15);

const COLUMNS: &str = "alias, \"user\", token_sha256, secret_sha256, cookie, job_id, backend, \
                       state, created_at, expires_at, registered_at, ended_at, end_reason, \
                       owner_uid, client, clock, cluster, kind, revision";

/// A row's values in the order of [`COLUMNS`], but `revision`, which the
/// database draws: the one list inserts and updates both bind.
fn bind(s: &StoredSession) -> [&(dyn tokio_postgres::types::ToSql + Sync); 18] {
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
        &s.client,
        &s.clock,
        &s.cluster,
        &s.kind,
    ]
}

/// `$from, …, $to`.
fn placeholders(from: usize, to: usize) -> String {
    (from..=to)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The revision the database draws for every new version of a row.
const NEXT_REVISION: &str = "pg_catalog.nextval('jrps.session_revisions')";

/// A `postgres://` state URL, parsed at config time so that a bad one is a
/// config error. Its password never leaves `config`: logs show `shown`.
#[derive(Clone)]
pub struct PgTarget {
    config: tokio_postgres::Config,
    tls: Option<MakeRustlsConnect>,
    shown: String,
    /// `trust_database_roles` in proxy.toml: start even where every role
    /// may connect to the database or create in jrps's schema.
    pub trust_database_roles: bool,
}

/// The schema jrps's tables, sequence and function live in.
const SCHEMA: &str = "jrps";

impl std::fmt::Debug for PgTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown)
    }
}

impl std::fmt::Display for PgTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown)
    }
}

impl PgTarget {
    /// Whether the URL carries a password (then its file is a secret).
    pub fn has_password(&self) -> bool {
        self.config.get_password().is_some()
    }

    pub fn is_url(state: &str) -> bool {
        state.starts_with("postgres://") || state.starts_with("postgresql://")
    }

    /// A libpq-style URL. `sslmode` `require`, `verify-ca` or `verify-full`
    /// asks for TLS, and the server's certificate is then always verified
    /// (against `sslrootcert` when given, else the system's roots): stricter
    /// than libpq's `require`, which checks nothing. Over TCP, plaintext
    /// only when asked for by name (`sslmode=disable`): without `sslmode`,
    /// or with `allow` or `prefer` (libpq's default), the URL is refused,
    /// because libpq would at least try TLS there and jrps would silently
    /// not. A Unix socket needs no TLS.
    pub fn parse(url: &str) -> Result<PgTarget, String> {
        let (base, query) = url.split_once('?').unwrap_or((url, ""));
        let mut kept = Vec::new();
        let mut mode = None;
        let mut root_cert = None;
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some(("sslmode", value)) => mode = Some(value),
                Some(("sslrootcert", value)) => root_cert = Some(value),
                _ => kept.push(pair),
            }
        }
        let tls = match mode {
            None | Some("disable" | "allow" | "prefer") => false,
            Some("require" | "verify-ca" | "verify-full") => true,
            Some(other) => {
                return Err(format!(
                    "sslmode={other} is not a mode; allowed: disable, prefer, require, \
                     verify-ca, verify-full"
                ));
            }
        };
        if root_cert.is_some() && !tls {
            return Err("sslrootcert needs sslmode=verify-full (or require)".into());
        }
        kept.push(if tls {
            "sslmode=require"
        } else {
            "sslmode=disable"
        });
        let rebuilt = format!("{base}?{}", kept.join("&"));
        let mut config: tokio_postgres::Config = rebuilt.parse().map_err(|e| {
            format!(
                "not a PostgreSQL URL: {}",
                crate::error_chain::error_chain(&e)
            )
        })?;
        let over_tcp = config
            .get_hosts()
            .iter()
            .any(|host| matches!(host, tokio_postgres::config::Host::Tcp(_)));
        if over_tcp && matches!(mode, None | Some("allow" | "prefer")) {
            return Err(format!(
                "{} over TCP would be plaintext; add sslmode=verify-full (and \
                 sslrootcert=CA.pem for a private CA), or sslmode=disable to accept \
                 plaintext on a network you trust",
                mode.map_or("a URL without sslmode".to_owned(), |m| format!(
                    "sslmode={m}"
                ))
            ));
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(OP_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("jrps serve");
        }
        // A replica whose host vanishes must not hold the duty lock for
        // the kernel's two hours; PostgreSQL's side is the server's
        // `tcp_keepalives_*` (docs/replicas.md).
        config.keepalives_idle(Duration::from_secs(10));
        // A replica cut off mid-transaction must not hold the quota lock or
        // a row lock for the other replicas until TCP gives up: no jrps
        // transaction waits on anything but the database.
        // Every connection finds only jrps's own schema (and pg_catalog,
        // always searched first): nothing another role can create objects
        // in is ever on the path.
        let options = format!(
            "{} -c idle_in_transaction_session_timeout={} -c search_path={SCHEMA}",
            config.get_options().unwrap_or(""),
            IDLE_IN_TRANSACTION.as_millis()
        );
        config.options(options.trim_start());
        let tls = if tls {
            let config = crate::proxy_client::tls_config(root_cert.map(std::path::Path::new))
                .map_err(|e| format!("sslrootcert: {e}"))?;
            Some(MakeRustlsConnect::new(config))
        } else {
            None
        };
        Ok(PgTarget {
            config,
            tls,
            shown: without_password(url),
            trust_database_roles: false,
        })
    }

    /// A connection, driven by a task of its own; notifications go to
    /// `notes` (the follower's) or nowhere.
    async fn connect(
        &self,
        notes: Option<mpsc::UnboundedSender<String>>,
    ) -> Result<Client, tokio_postgres::Error> {
        match &self.tls {
            None => {
                let (client, connection) = self.config.connect(NoTls).await?;
                drive(connection, notes);
                Ok(client)
            }
            Some(tls) => {
                let (client, connection) = self.config.connect(tls.clone()).await?;
                drive(connection, notes);
                Ok(client)
            }
        }
    }
}

/// `postgres://user:secret@host/db?password=x` → `postgres://user:***@host/db?password=***`.
fn without_password(url: &str) -> String {
    // The last `@` ends the user info, whatever characters an unencoded
    // password holds (`?`, `/`); where a later `@` is something else, more
    // is hidden than needed, never less.
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let rest = match rest.rfind('@') {
        Some(at) => match rest[..at].split_once(':') {
            Some((user, _)) => format!("{user}:***{}", &rest[at..]),
            None => rest.to_owned(),
        },
        None => rest.to_owned(),
    };
    let (base, query) = rest.split_once('?').unwrap_or((&rest, ""));
    let query: Vec<String> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some(("password", _)) => "password=***".to_owned(),
            _ => pair.to_owned(),
        })
        .collect();
    let scheme = if scheme.is_empty() {
        String::new()
    } else {
        format!("{scheme}://")
    };
    if query.is_empty() {
        format!("{scheme}{base}")
    } else {
        format!("{scheme}{base}?{}", query.join("&"))
    }
}

fn drive<S, T>(mut connection: Connection<S, T>, notes: Option<mpsc::UnboundedSender<String>>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        // Ends with the connection; the follower sees its channel close.
        while let Some(message) = std::future::poll_fn(|cx| connection.poll_message(cx)).await {
            match message {
                Ok(AsyncMessage::Notification(note)) => {
                    if let Some(notes) = &notes {
                        let _ = notes.send(note.payload().to_owned());
                    }
                }
                Ok(_) => {}
                Err(error) => {
                    tracing::debug!(%error, "state database connection closed");
                    break;
                }
            }
        }
    });
}

pub(super) struct Postgres {
    target: PgTarget,
    /// The API's connection: the store's writer lock already serialises this
    /// replica's changes, so one connection is all they could use.
    writer: tokio::sync::Mutex<Option<Client>>,
    /// Set when a call failed: the connection is made again before the next.
    writer_suspect: AtomicBool,
    /// Set when a writer call failed, cleared when it connects again. While
    /// it is set and the database is not known to be up, calls answer 503 at
    /// once, rather than each waiting out a timeout in turn behind the
    /// store's writer lock; the follower, which keeps trying, says when the
    /// database is back (`up`).
    writer_failed: AtomicBool,
    duty: AtomicBool,
    up: AtomicBool,
    /// When some replica last said it holds the duty lock (Unix seconds):
    /// the holder writes `duty_at` every [`DUTY_BEAT`], the others read it.
    duty_seen: std::sync::atomic::AtomicU64,
}

/// How often the duty holder says so in `settings`, and the others look.
const DUTY_BEAT: Duration = Duration::from_secs(2);
/// A lapse longer than this is reported (`/healthz`, `/metrics`): no
/// replica sweeps or health-checks, for instance because something that is
/// not a replica holds the lock.
pub(super) const DUTY_LAPSE: Duration = Duration::from_secs(6);

impl Postgres {
    /// Connects, brings the schema up to date (one replica at a time), and
    /// checks that this replica's cookie key is the one the others use.
    pub async fn open(target: &PgTarget, key: &CookieKey) -> Result<Postgres, StoreError> {
        let db = Postgres {
            target: target.clone(),
            writer: tokio::sync::Mutex::new(None),
            writer_suspect: AtomicBool::new(false),
            writer_failed: AtomicBool::new(false),
            duty: AtomicBool::new(false),
            up: AtomicBool::new(false),
            // A grace at start: the first look comes within a beat.
            duty_seen: std::sync::atomic::AtomicU64::new(unix_now()),
        };
        let mut client = db.client().await?;
        let migrated = within(async {
            client
                .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
                .await?;
            // A database made before V2 keeps refinery's history in
            // `public`: it moves first, so refinery finds it in jrps's
            // schema and V2 moves the rest.
            client
                .batch_execute(&format!(
                    "CREATE SCHEMA IF NOT EXISTS {SCHEMA};
                     DO $$ BEGIN
                         IF pg_catalog.to_regclass('public.refinery_schema_history') IS NOT NULL
                            AND pg_catalog.to_regclass('{SCHEMA}.refinery_schema_history') IS NULL
                         THEN
                             ALTER TABLE public.refinery_schema_history SET SCHEMA {SCHEMA};
                         END IF;
                     END $$"
                ))
                .await?;
            let report = embedded::migrations::runner().run_async(&mut *client).await;
            client
                .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
                .await?;
            Ok::<_, tokio_postgres::Error>(report)
        })
        .await
        .map_err(|e| db.unavailable("schema migration", e))?;
        migrated.map_err(|e| StoreError::migration(target, &e, &embedded::migrations::runner()))?;

        if !target.trust_database_roles {
            db.refuse_open_databases(&client).await?;
        }

        let fingerprint = key.fingerprint();
        let agreed: String = within(async {
            client
                .execute(
                    "INSERT INTO jrps.settings (name, value) VALUES ('cookie_key_fingerprint', $1)
                     ON CONFLICT (name) DO NOTHING",
                    &[&fingerprint],
                )
                .await?;
            client
                .query_one(
                    "SELECT value FROM jrps.settings WHERE name = 'cookie_key_fingerprint'",
                    &[],
                )
                .await?
                .try_get(0)
        })
        .await
        .map_err(|e| db.unavailable("reading settings", e))?;
        if agreed != fingerprint {
            return Err(StoreError::Refused(format!(
                "{target}: this replica's cookie_key is not the one the other replicas use; \
                 copy the same key file to every replica (a browser's cookie must open its \
                 notebook through any of them)"
            )));
        }
        drop(client);
        Ok(db)
    }

    pub fn has_duty(&self) -> bool {
        self.duty.load(Ordering::Acquire)
    }

    /// Refuses a database any role may connect to, or a jrps schema any
    /// role may create in or that jrps's role does not own: there another
    /// role could take the duty lock or plant objects jrps would use. The
    /// refusal names the SQL that fixes it.
    async fn refuse_open_databases(&self, client: &Client) -> Result<(), StoreError> {
        let row = within(client.query_one(
            "SELECT pg_catalog.current_database()::text,
                    pg_catalog.has_database_privilege('public', pg_catalog.current_database(), 'CONNECT'),
                    pg_catalog.has_schema_privilege('public', $1, 'CREATE'),
                    (SELECT pg_catalog.pg_get_userbyid(nspowner) FROM pg_catalog.pg_namespace
                      WHERE nspname = $1)::text,
                    current_user::text,
                    (SELECT pg_catalog.pg_get_userbyid(datdba) FROM pg_catalog.pg_database
                      WHERE datname = pg_catalog.current_database())::text",
            &[&SCHEMA],
        ))
        .await
        .map_err(|e| self.unavailable("checking the database's privileges", e))?;
        let get = |i| {
            row.try_get::<_, Option<String>>(i)
                .ok()
                .flatten()
                .unwrap_or_default()
        };
        let (database, owner, user, database_owner) = (get(0), get(3), get(4), get(5));
        let public_connect: bool = row.try_get(1).unwrap_or(true);
        let public_create: bool = row.try_get(2).unwrap_or(true);
        let mut fixes = Vec::new();
        if public_connect {
            // A role that reached the database only through PUBLIC keeps
            // its way in.
            if database_owner != user {
                fixes.push(format!(
                    "GRANT CONNECT ON DATABASE \"{database}\" TO \"{user}\";"
                ));
            }
            fixes.push(format!(
                "REVOKE CONNECT, TEMPORARY ON DATABASE \"{database}\" FROM PUBLIC;"
            ));
        }
        if public_create {
            fixes.push(format!("REVOKE CREATE ON SCHEMA {SCHEMA} FROM PUBLIC;"));
        }
        if owner != user {
            fixes.push(format!("ALTER SCHEMA {SCHEMA} OWNER TO \"{user}\";"));
        }
        if fixes.is_empty() {
            return Ok(());
        }
        Err(StoreError::Refused(format!(
            "{}: every role may reach jrps's state there (another role could take the duty \
             lock or plant objects jrps would use); run, as the database's owner: {} \
             (or set trust_database_roles = true in proxy.toml to accept it)",
            self.target,
            fixes.join(" ")
        )))
    }

    /// When a replica last held duty, as far as this one knows.
    pub fn duty_seen(&self) -> u64 {
        self.duty_seen.load(Ordering::Acquire)
    }

    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Acquire)
    }

    /// The writer's connection, made (again) when there is none or the last
    /// call failed.
    async fn client(&self) -> Result<tokio::sync::MappedMutexGuard<'_, Client>, StoreError> {
        let mut guard = self.writer.lock().await;
        let stale = self.writer_suspect.swap(false, Ordering::AcqRel)
            || guard.as_ref().is_none_or(Client::is_closed);
        if stale {
            *guard = None;
            if !self.is_up() && self.writer_failed.load(Ordering::Acquire) {
                return Err(StoreError::Unavailable(format!(
                    "{}: unreachable, waiting for it to come back",
                    self.target
                )));
            }
            let client = within(self.target.connect(None))
                .await
                .map_err(|e| self.unavailable("connecting", e))?;
            self.writer_failed.store(false, Ordering::Release);
            *guard = Some(client);
        }
        tokio::sync::MutexGuard::try_map(guard, Option::as_mut)
            .map_err(|_| StoreError::Unavailable(format!("{}: no connection", self.target)))
    }

    /// A failed call: says so once per outage, and has the connection made
    /// again before the next call.
    fn unavailable(&self, doing: &str, error: DbFailure) -> StoreError {
        self.writer_suspect.store(true, Ordering::Release);
        self.writer_failed.store(true, Ordering::Release);
        if self.up.swap(false, Ordering::AcqRel) {
            tracing::error!(
                database = %self.target,
                %error,
                "state database unreachable while {doing}: routes already known are served \
                 from memory; API calls that change sessions answer 503 until it is back"
            );
        }
        StoreError::Unavailable(format!("{}: {doing}: {error}", self.target))
    }

    fn reached(&self) {
        if !self.up.swap(true, Ordering::AcqRel) {
            tracing::info!(database = %self.target, "state database reachable");
        }
    }

    pub async fn load_all(&self) -> Result<Vec<StoredSession>, StoreError> {
        let client = self.client().await?;
        let rows = within(load(&client, None))
            .await
            .map_err(|e| self.unavailable("loading sessions", e))?;
        self.reached();
        Ok(rows)
    }

    /// The new row's revision, or `None` if the alias is taken.
    pub async fn insert(
        &self,
        session: &Session,
        quotas: &Quotas,
    ) -> Result<Option<u64>, StoreError> {
        let s = StoredSession::of(session);
        let values = bind(&s);
        let mut client = self.client().await?;
        let outcome = within(async {
            let tx = client.transaction().await?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&QUOTA_LOCK])
                .await?;
            let row = tx
                .query_one(
                    "SELECT
                        count(*) FILTER (WHERE CASE WHEN $1::BIGINT IS NULL
                            THEN owner_uid IS NULL AND \"user\" = $2
                            ELSE owner_uid = $1 END),
                        count(*) FILTER (WHERE client = $3),
                        count(*)
                     FROM jrps.sessions WHERE state <> 'ended' AND expires_at > $4",
                    // Past its expiry a session counts for nobody, whether
                    // or not a sweep (the duty holder's) has ended it yet.
                    &[&s.owner_uid, &s.user, &s.client, &(unix_now() as i64)],
                )
                .await?;
            let count = |i| row.try_get::<_, i64>(i).map(|n| n.max(0) as usize);
            let counts = LiveCounts {
                user: count(0)?,
                client: count(1)?,
                total: count(2)?,
            };
            if let Err(exceeded) = quotas.check(counts) {
                return Ok(Err(exceeded));
            }
            let inserted = tx
                .query_opt(
                    &format!(
                        "INSERT INTO jrps.sessions ({COLUMNS})
                         VALUES ({}, {NEXT_REVISION})
                         ON CONFLICT (alias) DO NOTHING
                         RETURNING revision",
                        placeholders(1, values.len())
                    ),
                    &values,
                )
                .await?;
            let revision = match inserted {
                Some(row) => Some(row.try_get::<_, i64>(0)?.max(0) as u64),
                None => None,
            };
            tx.commit().await?;
            Ok(Ok(revision))
        })
        .await
        .map_err(|e| self.unavailable("creating a session", e))?;
        self.reached();
        outcome.map_err(StoreError::Quota)
    }

    /// Reads the row `FOR UPDATE`, lets `change` make the new version, and
    /// writes it in the same transaction.
    pub async fn update<E>(
        &self,
        alias: &str,
        change: impl FnOnce(StoredSession) -> Result<Session, E>,
    ) -> Result<Result<Session, E>, StoreError> {
        let mut client = self.client().await?;
        let outcome = within(async {
            let tx = client.transaction().await?;
            let Some(row) = tx
                .query_opt(
                    &format!("SELECT {COLUMNS} FROM jrps.sessions WHERE alias = $1 FOR UPDATE"),
                    &[&alias],
                )
                .await?
            else {
                return Ok(None);
            };
            let new = match change(stored(&row)?) {
                Ok(new) => new,
                // Dropping the transaction rolls it back.
                Err(refused) => return Ok(Some(Err(refused))),
            };
            let s = StoredSession::of(&new);
            let values = bind(&s);
            // Every column but the key and the revision, from the same list
            // as an insert.
            let written = COLUMNS
                .split(", ")
                .filter(|c| !matches!(*c, "alias" | "revision"))
                .collect::<Vec<_>>()
                .join(", ");
            let revision: i64 = tx
                .query_one(
                    &format!(
                        "UPDATE jrps.sessions SET ({written}) = ({}), revision = {NEXT_REVISION}
                         WHERE alias = $1 RETURNING revision",
                        placeholders(2, values.len())
                    ),
                    &values,
                )
                .await?
                .try_get(0)?;
            tx.commit().await?;
            Ok(Some(Ok(Session {
                revision: revision.max(0) as u64,
                ..new
            })))
        })
        .await
        .map_err(|e| self.unavailable("changing a session", e))?;
        self.reached();
        outcome.ok_or(StoreError::NotFound)
    }

    /// Deletes the row if it is still at `revision` (the version the sweep
    /// judged; an alias drawn again since is another session). Returns
    /// whether it did.
    pub async fn delete(&self, alias: &str, revision: u64) -> Result<bool, StoreError> {
        let client = self.client().await?;
        let revision = revision as i64;
        let deleted = within(client.execute(
            "DELETE FROM jrps.sessions WHERE alias = $1 AND revision = $2",
            &[&alias, &revision],
        ))
        .await
        .map_err(|e| self.unavailable("forgetting a session", e))?;
        self.reached();
        Ok(deleted > 0)
    }

    /// Whether this is the first record of the credential `digest`.
    pub async fn spend_credential(
        &self,
        digest: &[u8; 32],
        until: u64,
    ) -> Result<bool, StoreError> {
        let client = self.client().await?;
        let until = i64::try_from(until).unwrap_or(i64::MAX);
        let recorded = within(client.execute(
            "INSERT INTO jrps.spent_credentials (digest, until) VALUES ($1, $2) \
             ON CONFLICT (digest) DO NOTHING",
            &[&&digest[..], &until],
        ))
        .await
        .map_err(|e| self.unavailable("recording a credential", e))?;
        self.reached();
        Ok(recorded == 1)
    }

    /// Keeps `store` in step with the database for as long as the proxy
    /// runs, reconnecting after any failure.
    pub async fn follow_changes(&self, store: &impl Followed) {
        let mut retry = Duration::from_millis(200);
        loop {
            let (notes_tx, notes) = mpsc::unbounded_channel();
            let outcome = match within(self.target.connect(Some(notes_tx))).await {
                Ok(client) => {
                    retry = Duration::from_millis(200);
                    self.listen_on(&client, notes, store).await
                }
                Err(error) => Err(error),
            };
            if self.duty.swap(false, Ordering::AcqRel) {
                tracing::warn!("lost the duty lock: another replica runs the sweeps now");
            }
            if let Err(error) = outcome {
                self.unavailable("following changes", error);
            }
            tokio::time::sleep(retry).await;
            retry = (retry * 2).min(Duration::from_secs(2));
        }
    }

    async fn listen_on(
        &self,
        client: &Client,
        mut notes: mpsc::UnboundedReceiver<String>,
        store: &impl Followed,
    ) -> Result<(), DbFailure> {
        within(client.batch_execute(&format!("LISTEN {CHANNEL}"))).await?;
        // Older servers do not know the setting; that costs only the bound.
        let _ = within(client.batch_execute(&format!(
            "SET idle_session_timeout = {}",
            FOLLOWER_IDLE.as_millis()
        )))
        .await;
        catch_up(client, store).await?;
        self.reached();
        let mut last_full = Instant::now();
        let mut last_beat: Option<Instant> = None;
        let mut tick = tokio::time::interval(DUTY_RETRY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                note = notes.recv() => {
                    let Some(alias) = note else {
                        return Err(DbFailure::Closed);
                    };
                    let mut aliases = vec![alias];
                    while let Ok(more) = notes.try_recv() {
                        aliases.push(more);
                    }
                    aliases.sort_unstable();
                    aliases.dedup();
                    reload_aliases(client, store, &aliases).await?;
                }
                _ = tick.tick() => {
                    if self.has_duty() {
                        within(client.simple_query("SELECT 1")).await?;
                    } else {
                        let took: bool = within(async {
                            client
                                .query_one("SELECT pg_try_advisory_lock($1)", &[&DUTY_LOCK])
                                .await?
                                .try_get(0)
                        })
                        .await?;
                        if took {
                            self.duty.store(true, Ordering::Release);
                            tracing::info!("took the duty lock: this replica runs the sweeps and health checks");
                        }
                    }
                    if last_beat.is_none_or(|at| at.elapsed() >= DUTY_BEAT) {
                        self.duty_beat(client).await?;
                        last_beat = Some(Instant::now());
                    }
                    if last_full.elapsed() >= FULL_RELOAD {
                        catch_up(client, store).await?;
                        last_full = Instant::now();
                    }
                    // The writer may have given up on a call meanwhile.
                    self.reached();
                }
            }
        }
    }
}

impl Postgres {
    /// The duty holder writes when it last held duty, and forgets the
    /// credentials nobody could present again; any other replica reads when.
    async fn duty_beat(&self, client: &Client) -> Result<(), DbFailure> {
        let now = unix_now();
        let seen = if self.has_duty() {
            within(client.execute(
                "INSERT INTO jrps.settings (name, value) VALUES ('duty_at', $1) \
                 ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value",
                &[&now.to_string()],
            ))
            .await?;
            within(client.execute(
                "DELETE FROM jrps.spent_credentials WHERE until < $1",
                &[&(now as i64)],
            ))
            .await?;
            now
        } else {
            let row = within(client.query_opt(
                "SELECT value FROM jrps.settings WHERE name = 'duty_at'",
                &[],
            ))
            .await?;
            match row
                .and_then(|r| r.try_get::<_, String>(0).ok())
                .and_then(|v| v.parse().ok())
            {
                Some(at) => at,
                None => return Ok(()),
            }
        };
        self.duty_seen.fetch_max(seen, Ordering::AcqRel);
        Ok(())
    }
}

/// Why a database call did not complete.
#[derive(Debug, thiserror::Error)]
enum DbFailure {
    /// With its causes: "error performing TLS handshake" alone does not
    /// say which certificate was refused.
    #[error("{}", crate::error_chain::error_chain(.0))]
    Postgres(#[from] tokio_postgres::Error),
    #[error("no answer in {OP_TIMEOUT:?}")]
    TimedOut,
    #[error("connection closed")]
    Closed,
}

impl From<DbFailure> for StoreError {
    fn from(error: DbFailure) -> StoreError {
        StoreError::Unavailable(error.to_string())
    }
}

async fn within<T>(
    call: impl Future<Output = Result<T, tokio_postgres::Error>>,
) -> Result<T, DbFailure> {
    match tokio::time::timeout(OP_TIMEOUT, call).await {
        Ok(result) => Ok(result?),
        Err(_) => Err(DbFailure::TimedOut),
    }
}

/// Memory made the database's whole set: every alias and revision is
/// listed, and only the rows memory lacks or holds an older version of are
/// read (a reload every [`FULL_RELOAD`] with 100,000 sessions reads a list,
/// not 100,000 rows).
async fn catch_up(client: &Client, store: &impl Followed) -> Result<(), DbFailure> {
    // Every version memory holds now was committed before the listing.
    let held = store.held();
    let listing: Vec<(String, u64)> = within(async {
        client
            .query("SELECT alias, revision FROM jrps.sessions", &[])
            .await?
            .iter()
            .map(|row| Ok((row.try_get(0)?, row.try_get::<_, i64>(1)?.max(0) as u64)))
            .collect::<Result<_, tokio_postgres::Error>>()
    })
    .await?;
    // Read after the listing: memory that held more before it means the
    // database went back in time (a restore, a failover to a standby that
    // lagged), and its rows win.
    let last_revision: i64 = within(async {
        client
            .query_one("SELECT last_value FROM session_revisions", &[])
            .await?
            .try_get(0)
    })
    .await?;
    let behind = store.reconcile(&held, &listing, last_revision.max(0) as u64);
    for aliases in behind.chunks(1000) {
        reload_aliases(client, store, aliases).await?;
    }
    Ok(())
}

/// Memory takes the rows of `aliases` as they are now.
async fn reload_aliases(
    client: &Client,
    store: &impl Followed,
    aliases: &[String],
) -> Result<(), DbFailure> {
    let rows = within(load(client, Some(aliases))).await?;
    store.follow_rows(aliases, rows);
    Ok(())
}

/// Every row, or those of `aliases`.
async fn load(
    client: &Client,
    aliases: Option<&[String]>,
) -> Result<Vec<StoredSession>, tokio_postgres::Error> {
    let rows = match aliases {
        None => {
            client
                .query(&format!("SELECT {COLUMNS} FROM jrps.sessions"), &[])
                .await?
        }
        Some(aliases) => {
            client
                .query(
                    &format!("SELECT {COLUMNS} FROM jrps.sessions WHERE alias = ANY($1)"),
                    &[&aliases],
                )
                .await?
        }
    };
    rows.iter().map(stored).collect()
}

fn stored(row: &Row) -> Result<StoredSession, tokio_postgres::Error> {
    Ok(StoredSession {
        alias: row.try_get(0)?,
        user: row.try_get(1)?,
        token_sha256: row.try_get(2)?,
        secret_sha256: row.try_get(3)?,
        cookie_salt: row.try_get(4)?,
        job_id: row.try_get(5)?,
        backend: row.try_get(6)?,
        state: row.try_get(7)?,
        created_at: row.try_get(8)?,
        expires_at: row.try_get(9)?,
        registered_at: row.try_get(10)?,
        ended_at: row.try_get(11)?,
        end_reason: row.try_get(12)?,
        owner_uid: row.try_get(13)?,
        client: row.try_get(14)?,
        clock: row.try_get(15)?,
        cluster: row.try_get(16)?,
        kind: row.try_get(17)?,
        revision: row.try_get(18)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_stay_out_of_what_is_shown() {
        assert_eq!(
            without_password("postgres://jrps:s3cret@db.example/jrps?sslmode=require"),
            "postgres://jrps:***@db.example/jrps?sslmode=require"
        );
        assert_eq!(
            without_password("postgresql://db/jrps?user=jrps&password=s3cret"),
            "postgresql://db/jrps?user=jrps&password=***"
        );
        assert_eq!(
            without_password("postgres://jrps@%2Frun%2Fpostgresql/jrps"),
            "postgres://jrps@%2Frun%2Fpostgresql/jrps"
        );
        assert_eq!(
            without_password("postgres://jrps:pa?ss/w@rd@db/jrps"),
            "postgres://jrps:***@db/jrps"
        );
    }

    #[test]
    fn ssl_modes_are_checked_and_tls_is_used_when_asked_for() {
        let tls = |url: &str| PgTarget::parse(url).map(|t| t.tls.is_some());
        assert_eq!(tls("postgres://db/jrps?sslmode=disable"), Ok(false));
        assert_eq!(tls("postgres://db/jrps?sslmode=verify-full"), Ok(true));
        assert_eq!(tls("postgres://jrps@%2Frun%2Fpostgresql/jrps"), Ok(false));
        for plaintext_by_default in [
            "postgres://db/jrps",
            "postgres://db/jrps?sslmode=prefer",
            "postgres://db/jrps?sslmode=allow",
            "postgres://jrps@%2Frun%2Fpostgresql,db/jrps",
        ] {
            let refused = PgTarget::parse(plaintext_by_default).unwrap_err();
            assert!(
                refused.contains("plaintext") && refused.contains("sslmode=verify-full"),
                "{plaintext_by_default}: {refused}"
            );
        }
        let bad = PgTarget::parse("postgres://db/jrps?sslmode=sometimes").unwrap_err();
        assert!(
            bad.contains("sslmode=sometimes") && bad.contains("verify-full"),
            "{bad}"
        );
        let bad = PgTarget::parse("postgres://db/jrps?sslrootcert=/ca.pem").unwrap_err();
        assert!(bad.contains("sslrootcert"), "{bad}");
        let bad = PgTarget::parse("postgres://db/jrps?colour=blue").unwrap_err();
        assert!(bad.contains("colour"), "{bad}");
    }
}
