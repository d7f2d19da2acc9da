//! The one integration-test binary. Tests run the real `jrps` binary against
//! real servers on loopback; see the README's test command for what it needs.

mod browser;
mod cluster;
mod e2e;
mod launcher;
mod proxy;
mod scheduler;
mod support;
