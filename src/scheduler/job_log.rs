//! The job's log file, made by jrps before the job starts: the log holds
//! the job's output (paths, Jupyter's messages) and is the user's alone, so
//! its folder is 0700 and the file 0600 whatever the umask. Both schedulers
//! create it here; Slurm then writes into the file that exists.

use std::fs::{self, DirBuilder, File, OpenOptions, Permissions};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use super::error::SchedulerError;

/// Creates (or empties) the log at `path`, private to the user.
pub fn create(path: &Path) -> Result<File, SchedulerError> {
    let io = |action, path: &Path, source| SchedulerError::Io {
        action,
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| io("create the log directory", dir, e))?;
        // Made by an older jrps, or under another umask: make it private.
        fs::set_permissions(dir, Permissions::from_mode(0o700))
            .map_err(|e| io("make the log directory private", dir, e))?;
    }
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| io("create the job log", path, e))?;
    file.set_permissions(Permissions::from_mode(0o600))
        .map_err(|e| io("make the job log private", path, e))?;
    Ok(file)
}

/// `path` as Slurm's `--output` must be given it: Slurm expands `%j`,
/// `%u` and the like in file names, and `%%` is a literal `%`.
pub fn slurm_pattern(path: &Path) -> String {
    path.display().to_string().replace('%', "%%")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_and_its_folder_are_private() {
        let root = tempfile::tempdir().unwrap();
        let logs = root.path().join("logs");
        DirBuilder::new().mode(0o755).create(&logs).unwrap();
        let log = logs.join("a.log");
        create(&log).unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&logs), 0o700);
        assert_eq!(mode(&log), 0o600);
    }

    #[test]
    fn percent_signs_stay_literal_for_slurm() {
        assert_eq!(
            slurm_pattern(Path::new("/home/a%j/100%/x.log")),
            "/home/a%%j/100%%/x.log"
        );
    }
}
