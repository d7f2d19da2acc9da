//! The one trait every batch system implements.

use std::collections::HashMap;

use super::error::SchedulerError;
use super::job::{JobId, JobStatus, JobSubmission};
use super::kind::SchedulerKind;

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

    /// Where each of `ids` is, in one scheduler call where the scheduler
    /// allows it (`jrps ls` of many sessions). It fails as a whole when the
    /// scheduler cannot be asked; never does a failure read as "ended".
    fn status_many(&self, ids: &[JobId]) -> Result<HashMap<JobId, JobStatus>, SchedulerError> {
        ids.iter()
            .map(|id| Ok((id.clone(), self.status(id)?)))
            .collect()
    }

    /// Stops the job if it is queued or running; a job that already ended is
    /// not an error, so clean-up paths can cancel unconditionally.
    fn cancel(&self, id: &JobId) -> Result<(), SchedulerError>;
}
