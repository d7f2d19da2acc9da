//! Budgets that keep one party from starving the rest: connections (and
//! WebSocket tunnels, which outlive their connection) per client address,
//! and requests in flight and tunnels per session.
//! The global `max_connections` cap stops the proxy running out of file
//! descriptors; this one stops one address from using that cap up, so
//! `/healthz`, the API and every other client are still served while it
//! holds all it may.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::proxy::addresses::canonical_ip;

pub struct AddressBudget {
    cap: usize,
    held: Mutex<HashMap<IpAddr, usize>>,
}

impl AddressBudget {
    pub fn new(cap: usize) -> Arc<AddressBudget> {
        Arc::new(AddressBudget {
            cap,
            held: Mutex::new(HashMap::new()),
        })
    }

    /// A slot for `ip`, or `None` when it already holds `cap` of them.
    pub fn try_take(self: &Arc<Self>, ip: IpAddr) -> Option<AddressSlot> {
        let ip = canonical_ip(ip);
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        let count = held.entry(ip).or_insert(0);
        if *count >= self.cap {
            return None;
        }
        *count += 1;
        Some(AddressSlot {
            budget: self.clone(),
            ip,
        })
    }
}

/// One connection's or tunnel's share of its address's budget, given back
/// on drop.
pub struct AddressSlot {
    budget: Arc<AddressBudget>,
    ip: IpAddr,
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut held = self.budget.held.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = held.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                // Forget the address, so the map is as large as the
                // addresses connected now, not all there ever were.
                held.remove(&self.ip);
            }
        }
    }
}

/// What one session has in use, shared by every snapshot of it (a state
/// change copies the `Arc`, not the counts).
#[derive(Debug, Default)]
pub struct SessionLoad {
    requests: AtomicUsize,
    tunnels: AtomicUsize,
    /// Unix second of the last request passed on, 0 for none: the proxy's
    /// part of idle detection. Memory only; a restarted proxy has seen none.
    last_request: AtomicU64,
    /// Whether a browser has come with the token yet (the audit log's
    /// "first access"). Memory only.
    opened: std::sync::atomic::AtomicBool,
}

impl SessionLoad {
    /// A request in flight at `now`, or `None` when `cap` are. Only
    /// requests that go on to Jupyter count as use of the session.
    pub fn try_request(self: &Arc<Self>, cap: usize, now: u64) -> Option<InUse> {
        let in_use = InUse::take(self, |load| &load.requests, cap)?;
        // Stored once a second at most: the line is already this core's
        // (the counter above), and a load is cheaper than a store.
        if self.last_request.load(Ordering::Relaxed) != now {
            self.last_request.store(now, Ordering::Relaxed);
        }
        Some(in_use)
    }

    /// `true` the first time only: the session's first access with its token.
    pub fn first_open(&self) -> bool {
        !self.opened.swap(true, Ordering::Relaxed)
    }

    /// When a request last passed, if one has since the proxy started.
    pub fn last_request(&self) -> Option<u64> {
        Some(self.last_request.load(Ordering::Relaxed)).filter(|t| *t != 0)
    }

    /// A WebSocket tunnel, or `None` when `cap` are open.
    pub fn try_tunnel(self: &Arc<Self>, cap: usize) -> Option<InUse> {
        InUse::take(self, |load| &load.tunnels, cap)
    }
}

/// One request's or tunnel's share of its session's budget, given back on
/// drop.
pub struct InUse {
    load: Arc<SessionLoad>,
    counter: fn(&SessionLoad) -> &AtomicUsize,
}

impl InUse {
    fn take(
        load: &Arc<SessionLoad>,
        counter: fn(&SessionLoad) -> &AtomicUsize,
        cap: usize,
    ) -> Option<InUse> {
        counter(load)
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < cap).then_some(n + 1)
            })
            .ok()?;
        Some(InUse {
            load: load.clone(),
            counter,
        })
    }
}

impl Drop for InUse {
    fn drop(&mut self) {
        (self.counter)(&self.load).fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_gets_its_cap_of_each() {
        let load = Arc::new(SessionLoad::default());
        assert_eq!(load.last_request(), None);
        let first = load.try_request(2, 100).unwrap();
        let _second = load.try_request(2, 101).unwrap();
        assert!(load.try_request(2, 102).is_none());
        assert_eq!(
            load.last_request(),
            Some(101),
            "a refused request is not use"
        );
        let _tunnel = load
            .try_tunnel(1)
            .expect("tunnels have a budget of their own");
        assert!(load.try_tunnel(1).is_none());
        drop(first);
        assert!(load.try_request(2, 103).is_some());
    }

    #[test]
    fn an_address_gets_its_cap_and_the_others_theirs() {
        let budget = AddressBudget::new(2);
        let a: IpAddr = "127.0.0.3".parse().unwrap();
        let mapped: IpAddr = "::ffff:127.0.0.3".parse().unwrap();
        let b: IpAddr = "127.0.0.4".parse().unwrap();
        let first = budget.try_take(a).unwrap();
        let _second = budget
            .try_take(mapped)
            .expect("the same address, spelt as IPv6");
        assert!(budget.try_take(a).is_none());
        let _other = budget
            .try_take(b)
            .expect("another address is not held back");
        drop(first);
        assert!(budget.try_take(a).is_some());
        drop(_second);
        assert_eq!(
            budget.held.lock().unwrap().get(&a),
            None,
            "forgotten at zero"
        );
    }
}
