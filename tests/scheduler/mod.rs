//! Scheduler tests against real daemons, no mocks: the single-node Slurm that
//! `scripts/slurm up` starts (found through `SLURM_CONF`) and local processes.

mod local;
mod pbs;
pub(crate) mod slurm;

use std::path::Path;
use std::time::Duration;

use jrps::scheduler::{JobId, JobStatus, JobSubmission, Scheduler};

/// A submission whose script, log and working directory live in `dir`.
fn submission(dir: &Path, name: &str, script: &str) -> JobSubmission {
    JobSubmission {
        script: script.to_owned(),
        job_name: format!("jrps-test-{name}"),
        log_path: dir.join("logs").join(format!("{name}.log")),
        workdir: dir.to_path_buf(),
        env: vec![(
            "JRPS_TEST_GREETING".into(),
            "hello from the submitter".into(),
        )],
    }
}

/// Polls `status` until `wanted` accepts it; panics with the last status after
/// `timeout`. Polling, not sleeping a fixed time, keeps the tests fast when the
/// scheduler is fast and patient when the machine is busy.
fn wait_for(
    scheduler: &dyn Scheduler,
    id: &JobId,
    timeout: Duration,
    what: &str,
    wanted: impl Fn(&JobStatus) -> bool,
) -> JobStatus {
    crate::support::until_sync(timeout, &format!("job {id} {what}"), || {
        let status = scheduler.status(id).expect("status");
        if wanted(&status) {
            Ok(status)
        } else {
            Err(format!("status {status:?}"))
        }
    })
}

/// Waits until `path` holds `text`: a job's log is written by the job, and may
/// trail its end as seen by the scheduler by a moment.
fn wait_for_log(path: &Path, text: &str, timeout: Duration) -> String {
    let what = format!("{} holding {text:?}", path.display());
    crate::support::until_sync(timeout, &what, || {
        let log = std::fs::read_to_string(path).unwrap_or_default();
        if log.contains(text) {
            Ok(log)
        } else {
            Err(format!("it holds {log:?}"))
        }
    })
}
