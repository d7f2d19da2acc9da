//! The batch script as a private file, for schedulers whose submit command
//! reads a file (qsub): written beside the job's log, readable by the user
//! alone, and removed once the command has read it (the scheduler keeps its
//! own copy from submission on).

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::error::SchedulerError;
use super::job::JobSubmission;

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
