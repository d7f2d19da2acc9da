//! The scheduler kinds a site can name in `site.toml` (`scheduler = "slurm"`).

use std::fmt;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SchedulerKind {
    Slurm,
    /// OpenPBS and PBS Pro.
    Pbs,
    /// Torque, and Slurm's Torque wrappers.
    Torque,
    /// Grid Engine (Son of Grid Engine, Debian's gridengine).
    Sge,
    Local,
}

impl SchedulerKind {
    /// The built-in batch template for this scheduler's jobs.
    pub fn template(self) -> &'static str {
        match self {
            SchedulerKind::Slurm | SchedulerKind::Local => "slurm",
            SchedulerKind::Pbs => "pbs",
            SchedulerKind::Torque => "torque",
            SchedulerKind::Sge => "sge",
        }
    }

    /// Whether the scheduler ends a job at its time limit: everything but
    /// a workstation's `local`, where the script's reckoned end is no end.
    pub fn enforces_time_limit(self) -> bool {
        self != SchedulerKind::Local
    }

    /// Where a job finds its own id, in order (Slurm's Torque wrappers run
    /// the job under Slurm).
    pub fn job_id_vars(self) -> &'static [&'static str] {
        match self {
            SchedulerKind::Slurm | SchedulerKind::Local => &["SLURM_JOB_ID"],
            SchedulerKind::Pbs | SchedulerKind::Torque => &["PBS_JOBID", "SLURM_JOB_ID"],
            SchedulerKind::Sge => &["JOB_ID"],
        }
    }
}

impl fmt::Display for SchedulerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SchedulerKind::Slurm => "slurm",
            SchedulerKind::Pbs => "pbs",
            SchedulerKind::Torque => "torque",
            SchedulerKind::Sge => "sge",
            SchedulerKind::Local => "local",
        })
    }
}
