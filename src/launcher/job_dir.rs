//! The directory Jupyter starts in. `~` is kept symbolic and becomes `$HOME`
//! when the job runs, so the rendered script does not depend on who rendered it.

use std::fmt;

use crate::launcher::shell_quote::shell_quote;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobDir {
    /// `~` or `~/rest`: the job's `$HOME`, optionally a path below it.
    Home(Option<String>),
    /// Any other path, used as given (relative paths are relative to where
    /// the job starts, which for Slurm is the submission directory).
    Path(String),
}

impl JobDir {
    pub fn parse(text: &str) -> Result<JobDir, String> {
        if text.is_empty() {
            return Err("it is empty".into());
        }
        if text.chars().any(char::is_control) {
            return Err("it has control characters".into());
        }
        if text == "~" {
            return Ok(JobDir::Home(None));
        }
        if let Some(rest) = text.strip_prefix("~/") {
            let rest = rest.trim_start_matches('/');
            return Ok(JobDir::Home((!rest.is_empty()).then(|| rest.to_string())));
        }
        if text.starts_with('~') {
            return Err("`~user` is not supported".into());
        }
        Ok(JobDir::Path(text.to_string()))
    }

    /// One bash word that expands to the directory at run time.
    pub fn shell_word(&self) -> String {
        match self {
            JobDir::Home(None) => "\"$HOME\"".to_string(),
            JobDir::Home(Some(rest)) => format!("\"$HOME\"/{}", shell_quote(rest)),
            JobDir::Path(path) => shell_quote(path).into_owned(),
        }
    }
}

impl fmt::Display for JobDir {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JobDir::Home(None) => f.write_str("~"),
            JobDir::Home(Some(rest)) => write!(f, "~/{rest}"),
            JobDir::Path(path) => f.write_str(path),
        }
    }
}
