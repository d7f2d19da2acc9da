//! The end watch: after registering, `jrps register` stays in the job while
//! the session has a known end. It tells the proxy the job's end as the
//! scheduler reports it, every few minutes (so an operator's `scontrol
//! update TimeLimit=` reaches the page), and learns from the answer the end
//! its owner set with `jrps extend`. With headroom (`extend_max`) the job
//! runs past that end, so this watch ends the session there itself: the
//! scheduler's limit is only the furthest it may be moved.

use std::sync::Arc;
use std::time::Duration;

use super::log::log;
use super::process::alive;
use crate::api::{ClockBeat, SessionClock};
use crate::clock::unix_now;
use crate::proxy_client::ProxyClient;
use crate::scheduler::{JobId, JobStatus, Scheduler};

/// How often the scheduler's end is read again and the proxy asked.
const BEAT: Duration = Duration::from_secs(120);
/// How often the watch looks whether Jupyter still runs.
const LOOK: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The session's end came: its owner's deadline within the headroom.
    TimeUp,
    /// Jupyter ended by itself, or the scheduler's limit will end it.
    JupyterExited,
}

/// The job, as its scheduler knows it.
pub struct Job {
    pub scheduler: Arc<dyn Scheduler>,
    pub id: JobId,
}

impl Job {
    /// When the job's time runs out by this node's clock: as the scheduler
    /// says (which follows an operator's `scontrol update`), else as the
    /// batch script reckoned it at its start (`JRPS_JOB_ENDS_AT`), for
    /// schedulers that do not say how much is left.
    pub async fn ends_at(&self) -> Option<u64> {
        let scheduler = self.scheduler.clone();
        let id = self.id.clone();
        let status = tokio::task::spawn_blocking(move || scheduler.status(&id)).await;
        match status {
            Ok(Ok(JobStatus::Running {
                time_left: Some(left),
                ..
            })) => Some(unix_now() + left),
            // A scheduler that cannot be asked now says nothing new: the
            // script's reckoning would undo an operator's extension.
            Ok(Err(_)) | Err(_) => None,
            Ok(Ok(_)) => self.reckoned_end(),
        }
    }

    /// The end the batch script reckoned at its start, where the scheduler
    /// enforces one: the first clock's when the scheduler cannot be asked
    /// (its commands are not on this node's `PATH`, it is busy).
    pub fn reckoned_end(&self) -> Option<u64> {
        if !self.scheduler.kind().enforces_time_limit() {
            return None;
        }
        std::env::var(crate::env_vars::JOB_ENDS_AT)
            .ok()
            .and_then(|at| at.trim().parse().ok())
    }
}

/// The session's clock at registration: the job's end from the scheduler,
/// and with headroom an end that much earlier, which `jrps extend` moves.
pub fn first_clock(job_ends_at: u64, headroom_s: u64, warn: Vec<u32>, save: u32) -> SessionClock {
    SessionClock {
        ends_at: job_ends_at.saturating_sub(headroom_s),
        extend_until: (headroom_s > 0).then_some(job_ends_at),
        warn_before: warn,
        save_before: save,
    }
}

pub struct EndWatch<'a> {
    pub proxy: &'a ProxyClient,
    pub alias: &'a str,
    pub secret: &'a str,
    pub job: Job,
    pub pid: Option<u32>,
    pub clock: SessionClock,
}

impl EndWatch<'_> {
    pub async fn run(mut self) -> Outcome {
        log(&format!(
            "end watch: the session ends in {}s{}",
            self.clock.ends_at.saturating_sub(unix_now()),
            match self.clock.extend_until {
                Some(until) => format!(
                    " (`jrps extend` may move that by up to {}s)",
                    until - self.clock.ends_at
                ),
                None => String::new(),
            }
        ));
        let mut since_beat = Duration::ZERO;
        loop {
            if !self.pid.is_none_or(alive) {
                return Outcome::JupyterExited;
            }
            let due = unix_now() >= self.clock.ends_at;
            if since_beat >= BEAT || due {
                self.beat().await;
                since_beat = Duration::ZERO;
            }
            // Without headroom the scheduler's limit ends the job, and its
            // exit trap says why; only a deadline inside the job is ours.
            if self.clock.extend_until.is_some() && unix_now() >= self.clock.ends_at {
                log("end watch: the session's time is up: stopping Jupyter");
                return Outcome::TimeUp;
            }
            tokio::time::sleep(LOOK).await;
            since_beat += LOOK;
        }
    }

    /// Tells the proxy the job's end and takes the clock it answers; what
    /// fails is logged and the clock kept: the end only moves by an answer.
    async fn beat(&mut self) {
        let beat = ClockBeat {
            secret: self.secret.to_owned(),
            job_ends_at: self.job.ends_at().await,
        };
        match self.proxy.clock_beat(self.alias, &beat).await {
            Ok(Some(clock)) => {
                if clock.ends_at != self.clock.ends_at {
                    log(&format!(
                        "end watch: the session now ends in {}s",
                        clock.ends_at.saturating_sub(unix_now())
                    ));
                }
                self.clock = clock;
            }
            Ok(None) => {}
            Err(error) => log(&format!("end watch: the proxy did not answer ({error})")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headroom_puts_the_first_end_that_much_before_the_jobs() {
        let clock = first_clock(10_000, 300, vec![120, 60], 40);
        assert_eq!(clock.ends_at, 9_700);
        assert_eq!(clock.extend_until, Some(10_000));
        let plain = first_clock(10_000, 0, vec![], 40);
        assert_eq!((plain.ends_at, plain.extend_until), (10_000, None));
    }

    #[test]
    fn an_extension_stays_within_the_headroom_and_a_new_job_end_caps_it() {
        let clock = first_clock(10_000, 300, vec![], 40);
        assert_eq!(clock.extended(180).unwrap().ends_at, 9_880);
        assert_eq!(
            clock.extended(301),
            Err(crate::api::ExtendRefused::BeyondHeadroom { left_s: 300 })
        );
        // An operator shortened the job: the end moves in with it.
        let shortened = clock.with_job_end(9_500);
        assert_eq!(
            (shortened.ends_at, shortened.extend_until),
            (9_500, Some(9_500))
        );
        // Without headroom the job's end is the session's.
        let plain = first_clock(10_000, 0, vec![], 40);
        assert_eq!(plain.with_job_end(12_000).ends_at, 12_000);
        assert_eq!(
            plain.extended(60),
            Err(crate::api::ExtendRefused::NoHeadroom)
        );
    }
}
