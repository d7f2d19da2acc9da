//! A path as the job will see it: the directory Jupyter starts in, a
//! virtual environment, a conda environment given by path. `~` is kept
//! symbolic and becomes `$HOME` when the job runs, so the rendered script does
//! not depend on who rendered it. A relative path is made absolute against
//! the folder `jrps` was run in, because the job starts in its session folder
//! and would otherwise read it relative to that.

use std::fmt;
use std::path::{Component, Path, PathBuf};

use crate::launcher::shell_quote::shell_quote;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobPath {
    /// `~` or `~/rest`: the job's `$HOME`, optionally a path below it.
    Home(Option<String>),
    /// An absolute path.
    Absolute(String),
}

/// What a `JobPath` may be, for error messages.
pub const ALLOWED: &str = "a path: absolute, `~`, `~/path`, or relative to the current folder";

impl JobPath {
    /// `cwd` is where relative paths start; without one they are refused.
    pub fn parse(text: &str, cwd: Option<&Path>) -> Result<JobPath, String> {
        if text.is_empty() {
            return Err("it is empty".into());
        }
        if text.chars().any(char::is_control) {
            return Err("it has control characters".into());
        }
        if text == "~" {
            return Ok(JobPath::Home(None));
        }
        if let Some(rest) = text.strip_prefix("~/") {
            let rest = rest.trim_start_matches('/');
            return Ok(JobPath::Home((!rest.is_empty()).then(|| rest.to_string())));
        }
        if text.starts_with('~') {
            return Err("`~user` is not supported".into());
        }
        if text.starts_with('/') {
            return Ok(JobPath::Absolute(text.to_string()));
        }
        let cwd = cwd.ok_or("it is relative and the current folder is unknown")?;
        let joined: PathBuf = cwd
            .join(text)
            .components()
            .filter(|c| *c != Component::CurDir)
            .collect();
        Ok(JobPath::Absolute(joined.to_string_lossy().into_owned()))
    }

    /// One bash word that expands to the path at run time.
    pub fn shell_word(&self) -> String {
        match self {
            JobPath::Home(None) => "\"$HOME\"".to_string(),
            JobPath::Home(Some(rest)) => format!("\"$HOME\"/{}", shell_quote(rest)),
            JobPath::Absolute(path) => shell_quote(path).into_owned(),
        }
    }

    /// The path on this machine, for the checks before submission; `None`
    /// for `~` without a home. Clusters share home directories between login
    /// and compute nodes, which is what makes this the job's path too.
    pub fn here(&self, home: Option<&Path>) -> Option<PathBuf> {
        match self {
            JobPath::Home(rest) => {
                let home = home?;
                Some(
                    rest.as_ref()
                        .map_or_else(|| home.to_path_buf(), |r| home.join(r)),
                )
            }
            JobPath::Absolute(path) => Some(PathBuf::from(path)),
        }
    }
}

impl fmt::Display for JobPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JobPath::Home(None) => f.write_str("~"),
            JobPath::Home(Some(rest)) => write!(f, "~/{rest}"),
            JobPath::Absolute(path) => f.write_str(path),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_start_where_jrps_ran() {
        let cwd = Path::new("/home/a/project");
        assert_eq!(
            JobPath::parse("./data", Some(cwd)),
            Ok(JobPath::Absolute("/home/a/project/data".into()))
        );
        assert_eq!(
            JobPath::parse(".", Some(cwd)),
            Ok(JobPath::Absolute("/home/a/project".into()))
        );
        assert!(JobPath::parse("data", None).is_err());
        assert_eq!(
            JobPath::parse("~/x", None)
                .unwrap()
                .here(Some(Path::new("/h"))),
            Some(PathBuf::from("/h/x"))
        );
    }
}
