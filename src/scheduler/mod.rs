//! Batch schedulers behind one trait: `Slurm` (sbatch/squeue/scancel) and
//! `Local` (a detached `bash SCRIPT` on this machine, for workstations).
//!
//! This module owns submitting a rendered script, asking where a job is and
//! cancelling it. It does not render scripts, pick partitions or talk to the
//! proxy: the launcher does. Calls are synchronous and run child processes, so
//! async callers wrap them in `spawn_blocking`.

mod error;
mod job;
mod job_log;
mod kind;
mod local;
mod slurm;

pub use error::SchedulerError;
pub use job::{JobId, JobStatus, JobSubmission};
pub use kind::SchedulerKind;
pub use local::Local;
pub use slurm::Slurm;

/// What the launcher needs from a batch system. Implementations keep no
/// in-memory state about jobs: `status` and `cancel` must work from a later
/// process than the one that submitted (`jrps ls`, `jrps down`).
pub trait Scheduler: Send + Sync {
    /// Which kind this is, for messages and `jrps ls`.
    fn kind(&self) -> SchedulerKind;

    /// Hands the script to the scheduler and returns at once with the job's id.
    fn submit(&self, job: &JobSubmission) -> Result<JobId, SchedulerError>;

    /// Where the job is now. Unknown and finished jobs are both `Ended`: a
    /// scheduler forgets finished jobs after a while and the launcher treats
    /// them alike.
    fn status(&self, id: &JobId) -> Result<JobStatus, SchedulerError>;

    /// Stops the job if it is queued or running; a job that already ended is
    /// not an error, so clean-up paths can cancel unconditionally.
    fn cancel(&self, id: &JobId) -> Result<(), SchedulerError>;
}
