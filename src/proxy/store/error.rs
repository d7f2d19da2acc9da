//! Why the store could not do what was asked.

use super::quotas::QuotaExceeded;

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

impl StoreError {
    /// The schema migrations refused the database. The usual cause is one an
    /// operator meets in a rolling upgrade: the state was migrated by a newer
    /// jrps and this (older) one restarted on it, which must not write to a
    /// schema it does not know.
    pub(super) fn migration(
        target: impl std::fmt::Display,
        error: &refinery::Error,
        runner: &refinery::Runner,
    ) -> StoreError {
        let known = runner
            .get_migrations()
            .iter()
            .map(|m| m.version())
            .max()
            .unwrap_or_default();
        match error.kind() {
            refinery::error::Kind::MissingVersion(applied) if applied.version() > known => {
                StoreError::Refused(format!(
                    "{target}: written by a newer jrps (schema version {}, this jrps knows up to \
                     {known}); run the newer jrps here, or restore the state saved before the \
                     upgrade",
                    applied.version()
                ))
            }
            _ => StoreError::Refused(format!("{target}: schema migration: {error}")),
        }
    }
}
