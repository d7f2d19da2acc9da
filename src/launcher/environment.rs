//! A snapshot of the process environment, taken once in `run` so that
//! resolution is a pure function of its inputs (and testable without
//! touching the real environment).

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::env_vars;

#[derive(Debug, Clone, Default)]
pub struct Environment {
    vars: BTreeMap<String, String>,
    /// Where jrps runs; relative paths start here.
    cwd: Option<PathBuf>,
}

impl Environment {
    /// The current process environment; variables that are not UTF-8 are left out.
    pub fn capture() -> Environment {
        Environment {
            vars: std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
                .collect(),
            cwd: std::env::current_dir().ok(),
        }
    }

    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Environment {
        Environment {
            vars: pairs
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            cwd: None,
        }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str)
    }

    pub fn cwd(&self) -> Option<&std::path::Path> {
        self.cwd.as_deref()
    }

    /// `$HOME`, unless unset or empty.
    pub fn home(&self) -> Option<PathBuf> {
        self.path("HOME")
    }

    /// The directories of `$PATH`, for finding commands.
    pub fn search_path(&self) -> Vec<PathBuf> {
        self.get("PATH")
            .map(|p| std::env::split_paths(p).collect())
            .unwrap_or_default()
    }

    fn path(&self, name: &str) -> Option<PathBuf> {
        self.get(name).filter(|v| !v.is_empty()).map(PathBuf::from)
    }

    /// `$JRPS_SITE_DIR`, default `/etc/jrps`.
    pub fn site_dir(&self) -> PathBuf {
        self.path(env_vars::SITE_DIR)
            .unwrap_or_else(|| PathBuf::from("/etc/jrps"))
    }

    /// The user's configuration folder (`user_dirs::config_dir`).
    pub fn user_dir(&self) -> Option<PathBuf> {
        crate::user_dirs::config_dir(|name| self.get(name))
    }

    /// The user's state folders (`user_dirs::StateDirs`).
    pub fn state_dirs(
        &self,
    ) -> Result<crate::user_dirs::StateDirs, crate::session_dir::SessionDirError> {
        Ok(crate::user_dirs::StateDirs::locate(|name| self.get(name))?)
    }
}
