//! The session quotas: per user, per client address and in all.

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
pub(super) struct LiveCounts {
    pub(super) user: usize,
    pub(super) client: usize,
    pub(super) total: usize,
}

impl Quotas {
    pub(super) fn check(&self, counts: LiveCounts) -> Result<(), QuotaExceeded> {
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
