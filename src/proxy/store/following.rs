//! What a backend that other replicas write too ([`super::postgres`])
//! tells the in-memory table as it follows them. The store implements it;
//! the backend knows only this, not the store.

use std::collections::HashMap;

use super::session::StoredSession;

pub(super) trait Followed: Sync {
    /// Every alias memory holds, with its revision.
    fn held(&self) -> HashMap<Box<str>, u64>;

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
    ) -> Vec<String>;

    /// Another replica changed `aliases`: memory takes their rows as the
    /// database has them now, and forgets those it no longer has.
    fn follow_rows(&self, aliases: &[String], rows: Vec<StoredSession>);
}
