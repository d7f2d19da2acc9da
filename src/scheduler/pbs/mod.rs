//! PBS through its own commands, in two dialects: OpenPBS / PBS Pro
//! (`scheduler = "pbs"`) and Torque (`scheduler = "torque"`, also what
//! Slurm's Torque wrappers speak). `qsub` takes the script from a file and
//! never `-V` (a user's exported shell functions break `qstat`'s JSON,
//! OpenPBS #2541): the job's own variables go by name with `-v`. `qstat -f`
//! asks for any number of jobs at once, as JSON where the server has it and
//! as text otherwise; `qdel` cancels.

mod dialect;
mod qstat;

pub use dialect::Dialect;

use std::collections::HashMap;

use super::command::{CommandEnv, Output, refused};
use super::error::SchedulerError;
use super::interface::Scheduler;
use super::job::{JobId, JobStatus, JobSubmission};
use super::job_log;
use super::kind::SchedulerKind;
use super::script_file;

#[derive(Debug, Clone)]
pub struct Pbs {
    dialect: Dialect,
    env: CommandEnv,
}

impl Pbs {
    pub fn new(dialect: Dialect, env: CommandEnv) -> Self {
        Pbs { dialect, env }
    }

    /// The attributes of each job `qstat -f` knows among `ids`.
    fn qstat(&self, ids: &[&str]) -> Result<Vec<(String, qstat::Attributes)>, SchedulerError> {
        if self.dialect == Dialect::Pbs {
            let mut json = self.env.command("qstat");
            json.args(["-f", "-x", "-F", "json"]).args(ids);
            let out = self.env.run(json, "qstat", None)?;
            if only_unknown_jobs(&out)
                && let Some(jobs) = qstat::from_json(&out.stdout)
            {
                return Ok(jobs);
            }
            // Invalid JSON, or a qstat without -F json: the text form.
        }
        let mut text = self.env.command("qstat");
        text.arg("-f");
        if self.dialect == Dialect::Pbs {
            text.arg("-x");
        }
        text.args(ids);
        let out = self.env.run(text, "qstat", None)?;
        if !only_unknown_jobs(&out) {
            return Err(refused("qstat", &out));
        }
        let jobs = qstat::from_text(&out.stdout);
        if jobs.is_empty() && !out.stdout.trim().is_empty() {
            return Err(SchedulerError::UnexpectedOutput {
                program: "qstat".into(),
                output: out.stdout,
            });
        }
        Ok(jobs)
    }
}

/// The exit status of a `qstat` that knew none of the jobs it was asked
/// about (PBSE_UNKJOBID, 15001, as a byte); Slurm's wrapper says only this.
const UNKNOWN_JOB_STATUS: i32 = 153;

/// Whether `qstat` succeeded, or failed only because some of the jobs it
/// was asked about are gone: it says so per job, or exits with the status
/// that means it. A qstat killed by a signal, or failing with nothing said,
/// is a failure: never "every job ended".
fn only_unknown_jobs(out: &Output) -> bool {
    let gone = |line: &str| {
        let line = line.trim();
        line.is_empty()
            || line.contains("Unknown Job Id")
            || line.contains("Job has finished")
            || line.contains("job has finished")
    };
    out.success
        || (out.code == Some(UNKNOWN_JOB_STATUS) && out.stderr.lines().all(gone))
        || (out.code.is_some() && !out.stderr.trim().is_empty() && out.stderr.lines().all(gone))
}

/// A job id as PBS prints it (`123.server`, `123[].server`, bare `123`
/// from Slurm's wrappers); never something a command reads as an option.
fn pbs_id(id: &JobId) -> Result<&str, SchedulerError> {
    let id = id.as_str();
    let valid = id.bytes().next().is_some_and(|b| b.is_ascii_digit())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-[]@".contains(&b));
    if valid {
        Ok(id)
    } else {
        Err(SchedulerError::ForeignJobId(id.into()))
    }
}

/// `123` of `123.server`: servers print their name in several lengths.
fn sequence(id: &str) -> &str {
    id.split('.').next().unwrap_or(id)
}

impl Scheduler for Pbs {
    fn kind(&self) -> SchedulerKind {
        match self.dialect {
            Dialect::Pbs => SchedulerKind::Pbs,
            Dialect::Torque => SchedulerKind::Torque,
        }
    }

    fn submit(&self, job: &JobSubmission) -> Result<JobId, SchedulerError> {
        let log_path = job.workdir.join(&job.log_path);
        job_log::create(&log_path)?;
        let mut qsub = self.env.command("qsub");
        qsub.arg("-N")
            .arg(&job.job_name)
            .arg("-o")
            .arg(&log_path)
            .args(["-j", "oe"]);
        if self.dialect == Dialect::Pbs {
            // Written straight to the log, not copied there at the end:
            // `jrps logs -f` and a failed launch's tail read it live.
            qsub.args(["-k", "oed"]);
        }
        script_file::qsub(&self.env, qsub, job, &log_path, |id| pbs_id(id).is_ok())
    }

    fn status(&self, id: &JobId) -> Result<JobStatus, SchedulerError> {
        let mut all = self.status_many(std::slice::from_ref(id))?;
        Ok(all.remove(id).expect("every asked id has a status"))
    }

    fn status_many(&self, ids: &[JobId]) -> Result<HashMap<JobId, JobStatus>, SchedulerError> {
        let asked = ids.iter().map(pbs_id).collect::<Result<Vec<_>, _>>()?;
        if asked.is_empty() {
            return Ok(HashMap::new());
        }
        let jobs = self.qstat(&asked)?;
        Ok(ids
            .iter()
            .map(|id| {
                let found = jobs
                    .iter()
                    .find(|(known, _)| known == id.as_str())
                    .or_else(|| {
                        jobs.iter()
                            .find(|(known, _)| sequence(known) == sequence(id.as_str()))
                    });
                let status = match found {
                    Some((_, attributes)) => qstat::status_of(attributes, self.dialect),
                    None => JobStatus::Ended {
                        state: None,
                        reason: None,
                    },
                };
                (id.clone(), status)
            })
            .collect())
    }

    fn cancel(&self, id: &JobId) -> Result<(), SchedulerError> {
        let number = pbs_id(id)?;
        let mut qdel = self.env.command("qdel");
        qdel.arg(number);
        let out = self.env.run(qdel, "qdel", None)?;
        if out.success {
            return Ok(());
        }
        // Gone already ("Unknown Job Id", "Job has finished"; Slurm's
        // wrapper says nothing and exits 1): not an error.
        match self.status(id)? {
            JobStatus::Ended { .. } => Ok(()),
            _ => Err(refused("qdel", &out)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_that_could_be_options_are_refused() {
        assert!(pbs_id(&JobId::from("123.server")).is_ok());
        assert!(pbs_id(&JobId::from("123[].pbs-1")).is_ok());
        assert!(pbs_id(&JobId::from("123")).is_ok());
        assert!(pbs_id(&JobId::from("-f")).is_err());
        assert!(pbs_id(&JobId::from("local-12")).is_err());
        assert!(pbs_id(&JobId::from("12 13")).is_err());
        assert_eq!(sequence("123.pbs.example.org"), "123");
    }
}
