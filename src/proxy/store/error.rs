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
