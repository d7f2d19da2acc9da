//! Batch schedulers behind one trait: `Slurm` (sbatch/squeue/scancel),
//! `Pbs` (qsub/qstat/qdel: OpenPBS, PBS Pro and Torque), `Sge` (Grid
//! Engine's qsub/qstat/qdel) and `Local` (a
//! detached `bash SCRIPT` on this machine, for workstations).
//!
//! This module owns submitting a rendered script, asking where a job is and
//! cancelling it. It does not render scripts, pick partitions or talk to the
//! proxy: the launcher does. Calls are synchronous and run child processes, so
//! async callers wrap them in `spawn_blocking`.

mod command;
mod error;
mod interface;
mod job;
mod job_log;
mod kind;
mod local;
mod pbs;
mod script_file;
mod sge;
mod slurm;

pub use command::{CommandEnv, DEFAULT_TIMEOUT};
pub use error::SchedulerError;
pub use interface::Scheduler;
pub use job::{JobId, JobStatus, JobSubmission};
pub use kind::SchedulerKind;
pub use local::Local;
pub use pbs::{Dialect as PbsDialect, Pbs};
pub use sge::Sge;
pub use slurm::Slurm;

/// The scheduler of `kind`, its commands run with `commands`.
/// `local_state_dir` is where `Local` keeps its job records (ignored by the
/// batch systems, which keep their own).
pub fn build(
    kind: SchedulerKind,
    commands: CommandEnv,
    local_state_dir: impl Into<std::path::PathBuf>,
) -> Box<dyn Scheduler> {
    match kind {
        SchedulerKind::Slurm => Box::new(Slurm::new(commands)),
        SchedulerKind::Pbs => Box::new(Pbs::new(PbsDialect::Pbs, commands)),
        SchedulerKind::Torque => Box::new(Pbs::new(PbsDialect::Torque, commands)),
        SchedulerKind::Sge => Box::new(Sge::new(commands)),
        SchedulerKind::Local => Box::new(Local::new(local_state_dir)),
    }
}
