//! Grid Engine (Son of Grid Engine, Debian's gridengine 8.1.9) through its
//! commands: `qsub -terse` from a file with the job's variables by name
//! (`-v`, never `-V`), `qstat -u USER` for all of the user's jobs in one
//! call, `qdel`. Jobs are submitted with `-notify`, so a `qdel` sends SIGUSR2
//! before its SIGKILL, and with a soft wall time (`s_rt`, SIGUSR1) at the
//! user's end ahead of the hard one (`h_rt`): the job's trap runs in both.
//!
//! `qstat`'s listing says nothing of a job's time left (its start is in
//! local time, its limit elsewhere): the job reckons its own end
//! (`JRPS_JOB_ENDS_AT`), and a finished job is no longer listed, its
//! reason known from the job's own report.

use std::collections::HashMap;

use super::command::{CommandEnv, refused};
use super::error::SchedulerError;
use super::interface::Scheduler;
use super::job::{JobId, JobStatus, JobSubmission};
use super::job_log;
use super::kind::SchedulerKind;
use super::script_file;

#[derive(Debug, Clone, Default)]
pub struct Sge {
    env: CommandEnv,
}

impl Sge {
    pub fn new(env: CommandEnv) -> Self {
        Sge { env }
    }
}

/// Only digits reach the command lines: an id is never read as an option.
fn sge_number(id: &JobId) -> Result<&str, SchedulerError> {
    let number = id.as_str();
    if !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit()) {
        Ok(number)
    } else {
        Err(SchedulerError::ForeignJobId(number.into()))
    }
}

/// Whose jobs `qstat` lists: this user's, by name (qstat's default differs
/// between versions and sites' `sge_qstat` files).
fn user() -> String {
    let uid = rustix::process::getuid().as_raw();
    crate::identity::user_name(uid).unwrap_or_else(|| "*".to_owned())
}

impl Scheduler for Sge {
    fn kind(&self) -> SchedulerKind {
        SchedulerKind::Sge
    }

    fn submit(&self, job: &JobSubmission) -> Result<JobId, SchedulerError> {
        let log_path = job.workdir.join(&job.log_path);
        job_log::create(&log_path)?;
        let mut qsub = self.env.command("qsub");
        qsub.args(["-terse", "-notify", "-j", "y", "-N"])
            .arg(&job.job_name)
            .arg("-o")
            .arg(&log_path)
            .arg("-wd")
            .arg(&job.workdir);
        // `-terse` prints the number (an array's `N.1-10:1` is never ours).
        script_file::qsub(&self.env, qsub, job, &log_path, |id| sge_number(id).is_ok())
    }

    fn status(&self, id: &JobId) -> Result<JobStatus, SchedulerError> {
        let mut all = self.status_many(std::slice::from_ref(id))?;
        Ok(all.remove(id).expect("every asked id has a status"))
    }

    fn status_many(&self, ids: &[JobId]) -> Result<HashMap<JobId, JobStatus>, SchedulerError> {
        for id in ids {
            sge_number(id)?;
        }
        let mut qstat = self.env.command("qstat");
        qstat.arg("-u").arg(user());
        let out = self.env.run(qstat, "qstat", None)?;
        if !out.success {
            return Err(refused("qstat", &out));
        }
        let mut listed = listing(&out.stdout).ok_or_else(|| SchedulerError::UnexpectedOutput {
            program: "qstat".into(),
            output: out.stdout.clone(),
        })?;
        Ok(ids
            .iter()
            .map(|id| {
                let status = listed.remove(id.as_str()).unwrap_or(JobStatus::Ended {
                    state: None,
                    reason: None,
                });
                (id.clone(), status)
            })
            .collect())
    }

    fn cancel(&self, id: &JobId) -> Result<(), SchedulerError> {
        let number = sge_number(id)?;
        let mut qdel = self.env.command("qdel");
        qdel.arg(number);
        let out = self.env.run(qdel, "qdel", None)?;
        // qdel answers on stdout, and an ended job "does not exist".
        if out.success || out.stdout.contains("does not exist") {
            return Ok(());
        }
        Err(refused("qdel", &out))
    }
}

/// `qstat`'s listing by job number: a header, a line of dashes, then
/// `job-ID prior name user state date time [queue@host] slots [tasks]`.
/// `None` when the text is not that table.
fn listing(text: &str) -> Option<HashMap<String, JobStatus>> {
    let mut lines = text.lines().filter(|line| !line.trim().is_empty());
    let Some(header) = lines.next() else {
        return Some(HashMap::new());
    };
    if !header.trim_start().starts_with("job-ID") {
        return None;
    }
    lines.next().filter(|dashes| dashes.starts_with("---"))?;
    let mut jobs = HashMap::new();
    for line in lines {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [id, _prior, _name, _user, state, _date, _time, rest @ ..] = fields.as_slice() else {
            return None;
        };
        let node = rest
            .first()
            .and_then(|queue| queue.split_once('@'))
            .map(|(_, host)| host.to_owned());
        jobs.insert((*id).to_owned(), status_of(state, node));
    }
    Some(jobs)
}

/// One state column (`qw`, `hqw`, `r`, `Rr`, `t`, `s`, `dr`, `Eqw`, ...).
fn status_of(state: &str, node: Option<String>) -> JobStatus {
    // R: restarted (after its host failed, or by qmod -rj).
    let restarts = u32::from(state.contains('R'));
    if state.contains('E') {
        // In error, and waiting for an operator: it will not start by itself.
        return JobStatus::Pending {
            reason: Some(format!("in error ({state}): `qstat -j` says why")),
            expected_start: None,
            restarts,
        };
    }
    if state.contains('q') {
        return JobStatus::Pending {
            reason: state.contains('h').then(|| "held".to_owned()),
            expected_start: None,
            restarts,
        };
    }
    // Running, transferring to its host, suspended (the job keeps its
    // slot), or being deleted (still running until it is gone).
    JobStatus::Running {
        node: node.unwrap_or_else(|| "unknown".into()),
        time_left: None,
        restarts,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listing_of_running_pending_held_and_error_jobs() {
        // Debian's gridengine 8.1.9 (tests/fixtures/sge, svennd/blog, CC0),
        // and lines of the same table as this build prints them.
        let text = "job-ID  prior   name       user         state submit/start at     queue                          slots ja-task-ID \n\
-----------------------------------------------------------------------------------------------------------------\n\
     37 0.50500 test.sh    svennd       Eqw   03/23/2022 14:50:13                                    1        \n\
      1 0.50000 jrps-t     root         r     12/07/2026 11:59:44 all.q@sgehost                      2        \n\
      2 0.00000 jrps-u     root         qw    12/07/2026 11:59:50                                    1        \n\
      3 0.00000 jrps-v     root         hqw   12/07/2026 11:59:51                                    1        \n\
      4 0.50000 jrps-w     root         Rr    12/07/2026 11:59:52 all.q@node2                        1        \n";
        let jobs = listing(text).unwrap();
        assert!(
            matches!(&jobs["37"], JobStatus::Pending { reason: Some(r), .. } if r.contains("in error (Eqw)"))
        );
        assert_eq!(
            jobs["1"],
            JobStatus::Running {
                node: "sgehost".into(),
                time_left: None,
                restarts: 0
            }
        );
        assert!(matches!(
            &jobs["2"],
            JobStatus::Pending { reason: None, .. }
        ));
        assert!(matches!(&jobs["3"], JobStatus::Pending { reason: Some(r), .. } if r == "held"));
        assert!(matches!(&jobs["4"], JobStatus::Running { restarts: 1, .. }));
        assert_eq!(listing(""), Some(HashMap::new()));
        assert_eq!(listing("error: commlib error: got select error"), None);
    }
}
