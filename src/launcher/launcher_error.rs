//! Everything that can go wrong while resolving, validating and rendering a
//! launch. Each error names the field, where its value came from and what is
//! allowed; `crate::Error` renders it and takes the exit code from here.

use std::path::PathBuf;

use crate::launcher::source::Source;

#[derive(Debug, thiserror::Error)]
pub enum LauncherError {
    /// A configuration file that does not parse or has a wrongly typed or unknown key.
    #[error("{location}: {message}")]
    ConfigFile { location: Source, message: String },

    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A value that parsed but is not allowed.
    #[error("invalid {field} `{value}` (from {origin}): {problem}")]
    Invalid {
        field: String,
        value: String,
        origin: Source,
        problem: String,
        allowed: String,
    },

    /// Two values that cannot be used together.
    #[error("{first} (from {first_source}) cannot be used with {second} (from {second_source})")]
    Conflict {
        first: &'static str,
        first_source: Source,
        second: &'static str,
        second_source: Source,
        why: String,
    },

    #[error("{field} is required but not set")]
    Missing {
        field: &'static str,
        required_by: Source,
        how: String,
    },

    #[error("unknown profile `{name}`{}", origin.as_ref().map(|o| format!(" (from {o})")).unwrap_or_default())]
    UnknownProfile {
        name: String,
        origin: Option<Source>,
        available: Vec<String>,
        suggestion: Option<String>,
    },

    #[error("profile `{name}` is defined in a file that has a problem")]
    BrokenProfile {
        name: String,
        #[source]
        source: Box<LauncherError>,
    },

    #[error("`extends` forms a cycle: {}", chain.join(" -> "))]
    ExtendsCycle { chain: Vec<String> },

    #[error("unknown batch template `{name}` (from {origin})")]
    UnknownTemplate {
        name: String,
        origin: Source,
        available: Vec<String>,
        suggestion: Option<String>,
    },

    #[error("batch template `{name}` cannot be rendered")]
    Template {
        name: String,
        #[source]
        source: minijinja::Error,
    },

    /// A check before submission found that the job would fail.
    #[error("{field} `{value}` (from {origin}): {} {problem}", checked.display())]
    Preflight {
        field: &'static str,
        value: String,
        origin: Source,
        checked: PathBuf,
        problem: String,
    },

    #[error("{failed} of {total} profiles have problems")]
    CheckFailed { failed: usize, total: usize },

    #[error("cannot write the output")]
    Output(#[source] std::io::Error),
}

impl LauncherError {
    /// 2 for usage and configuration problems, 1 for failures at run time.
    pub fn exit_code(&self) -> u8 {
        match self {
            LauncherError::Output(_) => 1,
            _ => 2,
        }
    }

    pub fn hint(&self) -> Option<String> {
        match self {
            LauncherError::Invalid { allowed, .. } => Some(format!("allowed: {allowed}")),
            LauncherError::Conflict { why, .. } => Some(why.clone()),
            LauncherError::Missing {
                required_by, how, ..
            } => Some(format!("{how} (required by {required_by})")),
            LauncherError::UnknownProfile {
                available,
                suggestion,
                ..
            } => Some(list_hint("profiles", available, suggestion.as_deref())),
            LauncherError::UnknownTemplate {
                available,
                suggestion,
                ..
            } => Some(list_hint(
                "batch templates",
                available,
                suggestion.as_deref(),
            )),
            LauncherError::BrokenProfile { source, .. } => source.hint(),
            LauncherError::Preflight { .. } => Some(
                "checked on this machine before submitting; if only the compute nodes see it, pass --no-check".into(),
            ),
            LauncherError::ExtendsCycle { .. } => {
                Some("make one profile in the chain extend something else".into())
            }
            _ => None,
        }
    }
}

fn list_hint(what: &str, available: &[String], suggestion: Option<&str>) -> String {
    let mut hint = String::new();
    if let Some(suggestion) = suggestion {
        hint.push_str(&format!("did you mean `{suggestion}`? "));
    }
    if available.is_empty() {
        hint.push_str(&format!("no {what} are available"));
    } else {
        hint.push_str(&format!("available {what}: {}", available.join(", ")));
    }
    hint
}

/// The closest candidate to `name`, if any is close enough to be a likely typo.
pub fn did_you_mean<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<String> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(name, c), c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c.to_string())
}
