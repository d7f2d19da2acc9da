//! The batch script as a private file, for schedulers whose submit command
//! reads a file (qsub): written beside the job's log, readable by the user
//! alone, and removed once the command has read it (the scheduler keeps its
//! own copy from submission on). And what every qsub's submission shares.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::command::{CommandEnv, refused};
use super::error::SchedulerError;
use super::job::{JobId, JobSubmission};

/// Submits `job` with `qsub`, which holds the dialect's own options: the
/// job's variables go by name (`-v`, the values from qsub's environment, so
/// on no command line), then the script as a file; the printed id must pass
/// `is_id`.
pub fn qsub(
    env: &CommandEnv,
    mut qsub: Command,
    job: &JobSubmission,
    log_path: &Path,
    is_id: impl Fn(&JobId) -> bool,
) -> Result<JobId, SchedulerError> {
    let script = ScriptFile::beside(log_path, job)?;
    let names: Vec<&str> = job.env.iter().map(|(name, _)| name.as_str()).collect();
    if !names.is_empty() {
        qsub.arg("-v").arg(names.join(","));
    }
    qsub.arg(script.path())
        .current_dir(&job.workdir)
        .envs(job.env.iter().map(|(name, value)| (name, value)));
    let out = env.submit(qsub, "qsub", None)?;
    drop(script);
    if !out.success {
        return Err(refused("qsub", &out));
    }
    let id = JobId::from(out.stdout.trim());
    if !is_id(&id) {
        return Err(SchedulerError::UnexpectedOutput {
            program: "qsub".into(),
            output: out.stdout,
        });
    }
    Ok(id)
}

pub struct ScriptFile(PathBuf);

impl ScriptFile {
    pub fn beside(log_path: &Path, job: &JobSubmission) -> Result<ScriptFile, SchedulerError> {
        let dir = log_path.parent().unwrap_or(Path::new("."));
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let path = dir.join(format!(
            ".{}-{}-{nanos}.sh",
            job.job_name,
            std::process::id()
        ));
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .and_then(|mut file| file.write_all(job.script.as_bytes()))
            .map_err(|source| SchedulerError::Io {
                action: "write the batch script",
                path: path.clone(),
                source,
            })?;
        Ok(ScriptFile(path))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for ScriptFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
