//! The idle watch: after registering, `jrps register --idle-timeout` stays in
//! the job and stops the session's app once nobody has used it for the whole
//! timeout, so that the job ends and its node (and GPUs) go back to the queue.
//!
//! Used means any of: the proxy having passed a request to this session
//! since the last look, or the app's own record of activity moving, as its
//! kind defines it (`session_kind::Activity`): for Jupyter, a kernel busy
//! (a long cell with no browser open is use) or `/api/status` moving (kernel
//! messages, terminal input, API calls); for code-server, its heartbeat. The
//! watch compares each answer with the one before rather than with a clock,
//! so the node's and the proxy's clocks need not agree. Its own looks are
//! not use: calls to Jupyter carry `no_track_activity`, which jupyter_server
//! honours, and code-server's `/healthz` beats no heart. What cannot be
//! seen is counted as use: an app that does not answer is never stopped for
//! being idle.

use std::time::{Duration, Instant};

use super::app::AppApi;
use super::log::log;
use super::process::alive;
use crate::proxy_client::ProxyClient;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Unused for the whole timeout.
    Idle,
    /// The app ended by itself; nothing to stop.
    JupyterExited,
}

pub struct IdleWatch<'a> {
    pub app: &'a AppApi,
    pub proxy: &'a ProxyClient,
    pub alias: &'a str,
    pub secret: &'a str,
    pub pid: Option<u32>,
    pub timeout: Duration,
}

/// What one look saw; two equal looks in a row mean nothing happened.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Look {
    app_activity: String,
    proxy_request: Option<u64>,
}

impl IdleWatch<'_> {
    /// Watches until the app is idle for the timeout or exits.
    pub async fn run(&self) -> Outcome {
        let every = poll_interval(self.timeout);
        log(&format!(
            "idle watch: {} stops after {}s without use (looking every {}s)",
            self.app.kind(),
            self.timeout.as_secs(),
            every.as_secs_f32()
        ));
        let mut used_at = Instant::now();
        let mut last: Option<Look> = None;
        loop {
            tokio::time::sleep(every).await;
            if !self.pid.is_none_or(alive) {
                return Outcome::JupyterExited;
            }
            let proxy_request = match self.proxy.activity(self.alias, self.secret).await {
                Ok(activity) => activity.last_request_at,
                // Unknown this time: keep what was seen, so it reads as no change.
                Err(_) => last.as_ref().and_then(|l| l.proxy_request),
            };
            let look = match self.app.activity().await {
                Some((app_activity, busy)) => {
                    if busy {
                        used_at = Instant::now();
                    }
                    Some(Look {
                        app_activity,
                        proxy_request,
                    })
                }
                None => {
                    used_at = Instant::now();
                    None
                }
            };
            if look.is_some() && look != last {
                if last.is_some() {
                    used_at = Instant::now();
                }
                last = look;
            }
            if used_at.elapsed() >= self.timeout {
                log(&format!(
                    "idle watch: no use for {}s: stopping {}",
                    used_at.elapsed().as_secs(),
                    self.app.kind()
                ));
                return Outcome::Idle;
            }
        }
    }
}

/// A tenth of the timeout, between 1 and 30 seconds: a stop comes at most
/// that late, and a look costs two small local requests and one to the proxy.
fn poll_interval(timeout: Duration) -> Duration {
    (timeout / 10).clamp(Duration::from_secs(1), Duration::from_secs(30))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn looks_are_a_tenth_of_the_timeout_within_bounds() {
        assert_eq!(
            poll_interval(Duration::from_secs(5)),
            Duration::from_secs(1)
        );
        assert_eq!(
            poll_interval(Duration::from_secs(120)),
            Duration::from_secs(12)
        );
        assert_eq!(
            poll_interval(Duration::from_secs(3600)),
            Duration::from_secs(30)
        );
    }
}
