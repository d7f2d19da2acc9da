//! The values that cross the scheduler boundary: what to submit, the id that
//! comes back, and where a job is.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// A scheduler's name for one job: Slurm's numeric id (`"4711"`) or a local
/// job's `local-<pid>`. Opaque to everyone but the scheduler that made it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JobId(pub String);

impl JobId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<String> for JobId {
    fn from(id: String) -> Self {
        JobId(id)
    }
}

impl From<&str> for JobId {
    fn from(id: &str) -> Self {
        JobId(id.to_owned())
    }
}

/// One rendered batch script and how to run it. Resource requests (partition,
/// time, GPUs) live in the script's `#SBATCH` lines, not here, so that what
/// `jrps render` prints is exactly what runs.
#[derive(Debug, Clone)]
pub struct JobSubmission {
    /// The whole script, shebang and `#SBATCH` lines included.
    pub script: String,
    /// Shown by `squeue`; `jrps-<profile>` for sessions (`LaunchSpec::job_name`).
    pub job_name: String,
    /// Where the job's stdout and stderr go; its directory is created if missing.
    pub log_path: PathBuf,
    /// The directory the script starts in.
    pub workdir: PathBuf,
    /// Extra environment for the job. Passed through the submitting process's
    /// environment, never as arguments, so values stay out of `ps` and logs.
    pub env: Vec<(String, String)>,
}

/// Where a job is, as the scheduler reports it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobStatus {
    /// Queued. `reason` is the scheduler's word for why (Slurm: `Priority`,
    /// `Resources`, `BeginTime`, ...); `expected_start` is its estimate in its
    /// own format (Slurm: `2026-11-27T14:27:05`, local time) when it has one.
    /// `restarts`: how often the scheduler started it again (Slurm
    /// requeues a batch job whose node failed).
    Pending {
        reason: Option<String>,
        expected_start: Option<String>,
        restarts: u32,
    },
    /// Running on `node`, with `time_left` seconds before its time limit
    /// when the scheduler enforces one.
    Running {
        node: String,
        time_left: Option<u64>,
        restarts: u32,
    },
    /// Finished, failed, cancelled, or no longer known. `state` is the
    /// scheduler's word for how, while it still remembers (Slurm:
    /// `COMPLETED`, `TIMEOUT`, `CANCELLED`, `FAILED`, `OUT_OF_MEMORY`, ...),
    /// and `reason` that word in the session's terms, where it says one.
    Ended {
        state: Option<String>,
        reason: Option<crate::api::EndReason>,
    },
}
