//! Slurm through its own commands: `sbatch --parsable` (script on stdin),
//! `squeue -h -t all -j ID[,ID...] -O ...`, `scancel`. Clients find the
//! cluster the usual way (`SLURM_CONF` or the system `slurm.conf`), which a
//! site with several clusters sets per cluster; a multi-cluster id
//! (`4711;cluster`) is cut to its number.

use std::collections::HashMap;

use super::command::{CommandEnv, refused};
use super::error::SchedulerError;
use super::interface::Scheduler;
use super::job::{JobId, JobStatus, JobSubmission};
use super::job_log;
use super::kind::SchedulerKind;
use crate::api::EndReason;
use crate::wall_time::WallTime;

/// Slurm through its commands, found on `PATH`.
#[derive(Debug, Clone, Default)]
pub struct Slurm {
    env: CommandEnv,
}

impl Slurm {
    /// Slurm's commands from `PATH`, with the cluster's environment.
    pub fn new(env: CommandEnv) -> Self {
        Slurm { env }
    }

    /// One `squeue` for every id in `numbers`: each line starts with its job's id.
    fn squeue(&self, numbers: &[&str]) -> Result<HashMap<String, JobStatus>, SchedulerError> {
        let mut squeue = self.env.command("squeue");
        // `-t all` keeps finished jobs visible (for MinJobAge) so that their
        // end state, not just their absence, tells us they ended.
        squeue.args([
            "-h",
            "-t",
            "all",
            "-j",
            &numbers.join(","),
            "-O",
            SQUEUE_FIELDS,
        ]);
        let out = self.env.run(squeue, "squeue", None)?;
        if !out.success {
            // Slurm forgets finished jobs after MinJobAge and then calls the id invalid.
            if out.stderr.contains("Invalid job id") {
                return Ok(HashMap::new());
            }
            return Err(refused("squeue", &out));
        }
        out.stdout
            .lines()
            .filter(|line| !line.trim().is_empty())
            .map(|line| {
                let (id, rest) = line.trim().split_once('|').unwrap_or_default();
                parse_status(rest)
                    .map(|status| (id.to_owned(), status))
                    .ok_or_else(|| SchedulerError::UnexpectedOutput {
                        program: "squeue".into(),
                        output: out.stdout.clone(),
                    })
            })
            .collect()
    }
}

impl Scheduler for Slurm {
    fn kind(&self) -> SchedulerKind {
        SchedulerKind::Slurm
    }

    fn submit(&self, job: &JobSubmission) -> Result<JobId, SchedulerError> {
        let log_path = job.workdir.join(&job.log_path);
        job_log::create(&log_path)?;
        let mut sbatch = self.env.command("sbatch");
        sbatch
            .arg("--parsable")
            // Explicit, so a user's SBATCH_EXPORT=NONE cannot drop `job.env`.
            .arg("--export=ALL")
            .arg(format!("--job-name={}", job.job_name))
            .arg(format!("--output={}", job_log::slurm_pattern(&log_path)))
            // A requeued job starts its script again: its log keeps every run.
            .arg("--open-mode=append")
            .arg(format!("--chdir={}", job.workdir.display()))
            .envs(job.env.iter().map(|(name, value)| (name, value)));
        let out = self
            .env
            .submit(sbatch, "sbatch", Some(job.script.as_bytes()))?;
        if !out.success {
            return Err(refused("sbatch", &out));
        }
        parse_job_id(&out.stdout).ok_or_else(|| SchedulerError::UnexpectedOutput {
            program: "sbatch".into(),
            output: out.stdout.clone(),
        })
    }

    fn status(&self, id: &JobId) -> Result<JobStatus, SchedulerError> {
        let number = slurm_number(id)?;
        Ok(self
            .squeue(&[number])?
            .remove(number)
            .unwrap_or(JobStatus::Ended {
                state: None,
                reason: None,
            }))
    }

    fn status_many(&self, ids: &[JobId]) -> Result<HashMap<JobId, JobStatus>, SchedulerError> {
        let numbers = ids
            .iter()
            .map(slurm_number)
            .collect::<Result<Vec<_>, _>>()?;
        if numbers.is_empty() {
            return Ok(HashMap::new());
        }
        let mut found = self.squeue(&numbers)?;
        Ok(ids
            .iter()
            .map(|id| {
                let status = found.remove(id.as_str()).unwrap_or(JobStatus::Ended {
                    state: None,
                    reason: None,
                });
                (id.clone(), status)
            })
            .collect())
    }

    fn cancel(&self, id: &JobId) -> Result<(), SchedulerError> {
        let number = slurm_number(id)?;
        let mut scancel = self.env.command("scancel");
        scancel.arg(number);
        let out = self.env.run(scancel, "scancel", None)?;
        if out.success || out.stderr.contains("Invalid job id") {
            return Ok(());
        }
        Err(refused("scancel", &out))
    }
}

/// `--parsable` prints `ID` or `ID;CLUSTER`.
fn parse_job_id(stdout: &str) -> Option<JobId> {
    let number = stdout.trim().split(';').next()?.trim();
    (!number.is_empty() && number.bytes().all(|b| b.is_ascii_digit())).then(|| JobId::from(number))
}

/// Only digits reach Slurm's command lines: an id is never read as an option.
fn slurm_number(id: &JobId) -> Result<&str, SchedulerError> {
    let number = id.as_str();
    if !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit()) {
        Ok(number)
    } else {
        Err(SchedulerError::ForeignJobId(number.into()))
    }
}

/// What `squeue -O` prints per job, each field ended by `|`, unpadded:
/// the job's id, its state, reason, node list, (expected) start time, time left, and how
/// often Slurm started the job again (a requeue after a node failure).
const SQUEUE_FIELDS: &str =
    "JobID:|,State:|,Reason:|,NodeList:|,StartTime:|,TimeLeft:|,RestartCnt:|";

/// One line of [`SQUEUE_FIELDS`] after the job's id.
fn parse_status(line: &str) -> Option<JobStatus> {
    let mut fields = line.trim().split('|');
    let state = fields.next()?;
    let reason = fields.next()?;
    let nodes = fields.next()?;
    let start = fields.next()?;
    // Slurm's own time format, or UNLIMITED, NOT_SET, INVALID.
    let time_left = fields
        .next()
        .and_then(|left| WallTime::parse(left).ok())
        .map(WallTime::seconds);
    let restarts = fields
        .next()
        .and_then(|count| count.trim().parse().ok())
        .unwrap_or(0);
    let known = |text: &str| {
        let text = text.trim();
        (!text.is_empty() && !matches!(text, "None" | "N/A" | "Unknown" | "(null)"))
            .then(|| text.to_owned())
    };
    Some(match state {
        "PENDING" | "REQUEUED" | "REQUEUE_HOLD" | "REQUEUE_FED" | "RESV_DEL_HOLD"
        | "CONFIGURING" => JobStatus::Pending {
            reason: known(reason).or_else(|| (state != "PENDING").then(|| state.to_owned())),
            expected_start: known(start),
            restarts,
        },
        // Suspended and stopped jobs still hold their node and come back to it.
        "RUNNING" | "SUSPENDED" | "STOPPED" | "RESIZING" | "SIGNALING" => JobStatus::Running {
            node: known(nodes).unwrap_or_else(|| "unknown".into()),
            time_left,
            restarts,
        },
        // COMPLETING: the script has exited and Slurm is cleaning up.
        "COMPLETING" => JobStatus::Ended {
            state: None,
            reason: None,
        },
        _ => JobStatus::Ended {
            state: Some(state.to_owned()),
            reason: end_reason(state),
        },
    })
}

/// How a job Slurm still remembers ended, in the session's words.
fn end_reason(state: &str) -> Option<EndReason> {
    match state {
        "TIMEOUT" | "DEADLINE" => Some(EndReason::TimeLimit),
        "CANCELLED" | "PREEMPTED" => Some(EndReason::Cancelled),
        "NODE_FAIL" => Some(EndReason::NodeFailed),
        "FAILED" | "OUT_OF_MEMORY" | "BOOT_FAIL" => Some(EndReason::JobFailed),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_parsable_ids() {
        assert_eq!(parse_job_id("4711\n"), Some(JobId::from("4711")));
        assert_eq!(parse_job_id("4711;cluster\n"), Some(JobId::from("4711")));
        assert_eq!(parse_job_id("Submitted batch job 4711"), None);
        assert_eq!(parse_job_id(""), None);
    }

    #[test]
    fn parses_squeue_lines() {
        assert_eq!(
            parse_status("PENDING|BeginTime||2026-11-27T14:28:09|INVALID|1|"),
            Some(JobStatus::Pending {
                reason: Some("BeginTime".into()),
                expected_start: Some("2026-11-27T14:28:09".into()),
                restarts: 1,
            })
        );
        assert_eq!(
            parse_status("PENDING|None||N/A|INVALID|0|"),
            Some(JobStatus::Pending {
                reason: None,
                expected_start: None,
                restarts: 0,
            })
        );
        assert_eq!(
            parse_status("RUNNING|None|node17|2026-11-27T13:28:13|1-02:03:04|0|"),
            Some(JobStatus::Running {
                node: "node17".into(),
                time_left: Some(((24 + 2) * 60 + 3) * 60 + 4),
                restarts: 0,
            })
        );
        assert_eq!(
            parse_status("RUNNING|None|node17|2026-11-27T13:28:13|UNLIMITED|2|"),
            Some(JobStatus::Running {
                node: "node17".into(),
                time_left: None,
                restarts: 2,
            })
        );
        assert_eq!(
            parse_status("COMPLETED|None|localhost|2026-11-27T13:28:13|0:00|0|"),
            Some(JobStatus::Ended {
                state: Some("COMPLETED".into()),
                reason: None,
            })
        );
        assert_eq!(parse_status("garbage"), None);
    }

    #[test]
    fn refuses_ids_that_could_be_options() {
        assert!(slurm_number(&JobId::from("--all")).is_err());
        assert!(slurm_number(&JobId::from("local-12")).is_err());
        assert!(slurm_number(&JobId::from("12")).is_ok());
    }
}
