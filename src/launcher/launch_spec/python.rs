//! Where Jupyter's Python comes from when it is not the site's or an
//! image's: a virtual environment or a conda environment.

use crate::launcher::job_path::JobPath;
use crate::launcher::shell_quote::shell_quote;

/// A Python environment that Jupyter runs from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PythonEnv {
    Venv(JobPath),
    Conda(CondaEnv),
}

/// A conda environment, as `conda activate` takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CondaEnv {
    Name(String),
    Path(JobPath),
}

impl CondaEnv {
    /// One bash word for `conda activate`.
    pub fn shell_word(&self) -> String {
        match self {
            CondaEnv::Name(name) => shell_quote(name).into_owned(),
            CondaEnv::Path(path) => path.shell_word(),
        }
    }
}

impl std::fmt::Display for CondaEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CondaEnv::Name(name) => f.write_str(name),
            CondaEnv::Path(path) => path.fmt(f),
        }
    }
}
