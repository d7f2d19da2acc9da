//! The in-memory sessions the request path reads, and the index kept in
//! step with them (routes by backend address, live counts for quotas).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, RwLock};

use tokio::sync::watch;

use super::quotas::LiveCounts;
use super::session::Session;
use crate::api::SessionState;

/// What the store keeps about its sessions besides the table, in step with
/// every change: which session each backend address routes to (ready
/// sessions, for one live route per address), and live sessions per user,
/// per client address and in all (for the quotas).
#[derive(Default)]
pub(super) struct Index {
    pub(super) routes: HashMap<SocketAddr, Box<str>>,
    pub(super) live_by_user: HashMap<String, usize>,
    pub(super) live_by_client: HashMap<IpAddr, usize>,
    pub(super) live: usize,
}

impl Index {
    pub(super) fn add(&mut self, session: &Session) {
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

    pub(super) fn remove(&mut self, session: &Session) {
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

    pub(super) fn counts(&self, new: &Session) -> LiveCounts {
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

pub(super) struct Entry {
    pub(super) session: Arc<Session>,
    pub(super) state_tx: watch::Sender<SessionState>,
}

type Shard = HashMap<Box<str>, Entry>;

/// The in-memory sessions, split into shards by alias so that readers on
/// many cores do not all bounce one lock's cache line. Writers (API calls,
/// sweeps) take one shard's write lock for one `HashMap` operation.
pub(super) struct Table {
    pub(super) shards: Box<[RwLock<Shard>]>,
}

const SHARDS: usize = 64;

impl Table {
    pub(super) fn new() -> Table {
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

    pub(super) fn read(&self, alias: &str) -> std::sync::RwLockReadGuard<'_, Shard> {
        self.shard(alias).read().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn write(&self, alias: &str) -> std::sync::RwLockWriteGuard<'_, Shard> {
        self.shard(alias).write().unwrap_or_else(|e| e.into_inner())
    }
}
