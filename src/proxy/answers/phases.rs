//! What the launcher last said about a pending session's job (queued and
//! why, running on which node), for the "starting" page only.
//!
//! In memory and nowhere else: losing it on a restart only makes the page
//! less specific until the launcher's next report. It is not on the request
//! path of ready sessions: only the starting page reads it.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::api::Phase;

/// More entries than this and those of sessions no longer pending are
/// dropped (each report comes with a valid secret, so this only bounds
/// what finished sessions leave behind).
const MAX_ENTRIES: usize = 10_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reported {
    pub phase: Phase,
    pub detail: Option<String>,
}

#[derive(Default)]
pub struct Phases {
    by_alias: Mutex<HashMap<Box<str>, Reported>>,
}

impl Phases {
    /// Records `reported`; `still_pending` tells, when the table is full,
    /// which other entries are still worth keeping.
    pub fn set(&self, alias: &str, reported: Reported, still_pending: impl Fn(&str) -> bool) {
        let mut map = self.by_alias.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= MAX_ENTRIES && !map.contains_key(alias) {
            map.retain(|alias, _| still_pending(alias));
        }
        map.insert(alias.into(), reported);
    }

    pub fn get(&self, alias: &str) -> Option<Reported> {
        let map = self.by_alias.lock().unwrap_or_else(|e| e.into_inner());
        map.get(alias).cloned()
    }

    pub fn forget(&self, alias: &str) {
        let mut map = self.by_alias.lock().unwrap_or_else(|e| e.into_inner());
        map.remove(alias);
    }
}
