//! The scheduler kinds a site can name in `site.toml` (`scheduler = "slurm"`).

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{Local, Scheduler, Slurm};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SchedulerKind {
    Slurm,
    Local,
}

impl SchedulerKind {
    /// Builds the scheduler of this kind. `local_state_dir` is where `Local`
    /// keeps its job records (ignored by Slurm, which keeps its own).
    pub fn build(self, local_state_dir: impl Into<PathBuf>) -> Box<dyn Scheduler> {
        match self {
            SchedulerKind::Slurm => Box::new(Slurm::new()),
            SchedulerKind::Local => Box::new(Local::new(local_state_dir)),
        }
    }
}

impl fmt::Display for SchedulerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SchedulerKind::Slurm => "slurm",
            SchedulerKind::Local => "local",
        })
    }
}
