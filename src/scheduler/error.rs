//! What can go wrong talking to a scheduler. Messages quote the scheduler's
//! own words (sbatch's stderr) and exit status, because that is what a user
//! or an admin can act on.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum SchedulerError {
    #[error("could not run `{program}`")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },

    /// The scheduler's command ran and refused: `message` is its stderr.
    #[error("`{program}` failed ({status}): {message}")]
    Refused {
        program: String,
        status: String,
        message: String,
    },

    /// The command did not finish in time and was killed: the scheduler
    /// is busy or down, which says nothing about the job.
    #[error(
        "`{program}` did not answer within {}; the scheduler may be overloaded or down",
        seconds(*after)
    )]
    TimedOut {
        program: String,
        after: std::time::Duration,
    },

    #[error("`{program}` answered something jrps does not understand: {output:?}")]
    UnexpectedOutput { program: String, output: String },

    #[error("the local job record `{}` is damaged: {detail}", path.display())]
    DamagedRecord { path: PathBuf, detail: String },

    /// A session of a cluster the site no longer defines: asking another
    /// cluster's scheduler would read its job as ended, or cancel another.
    #[error("cluster `{0}` is not in site.toml: its scheduler cannot be asked")]
    UnknownCluster(String),

    #[error("`{0}` is not a job id this scheduler made")]
    ForeignJobId(String),

    #[error("could not {action} `{}`", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("could not signal job {id}")]
    Signal {
        id: String,
        #[source]
        source: std::io::Error,
    },
}

/// `30 s`, `0.3 s`.
fn seconds(d: std::time::Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

impl SchedulerError {
    /// A next step for the user, when there is an obvious one.
    pub fn hint(&self) -> Option<String> {
        match self {
            SchedulerError::Spawn { program, source }
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                Some(format!(
                    "`{program}` is not on PATH: run jrps on a login node of the cluster, \
                     or set `scheduler = \"local\"` in site.toml to run jobs on this machine"
                ))
            }
            _ => None,
        }
    }
}
