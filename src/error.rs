//! The one top-level error, made only by `cli.rs`: each role returns its own
//! error type, which converts into this at the edge. It is rendered once
//! (`error:` / `caused by:` / `hint:`) and the process exit code comes from
//! it: 2 for usage and configuration, 1 at run time.

use std::io::{IsTerminal, Write};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("registration failed")]
    Register(#[from] crate::job_helper::RegisterError),
    #[error(transparent)]
    Launcher(#[from] crate::launcher::LauncherError),
    #[error(transparent)]
    Launch(#[from] crate::launcher::launch::LaunchError),
    #[error(transparent)]
    Session(#[from] crate::launcher::session_commands::SessionCommandError),
    #[error(transparent)]
    Scheduler(#[from] crate::scheduler::SchedulerError),
    /// `jrps serve`: configuration, start-up or run-time failure.
    #[error(transparent)]
    Serve(#[from] crate::proxy::ServeError),
}

impl Error {
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Register(_) => 1,
            Error::Launcher(error) => error.exit_code(),
            Error::Launch(error) => error.exit_code(),
            Error::Session(error) => error.exit_code(),
            Error::Scheduler(_) => 1,
            Error::Serve(error) => error.exit_code(),
        }
    }

    pub fn hint(&self) -> Option<String> {
        match self {
            Error::Launcher(error) => error.hint(),
            Error::Launch(error) => error.hint(),
            Error::Session(error) => error.hint(),
            Error::Scheduler(error) => error.hint(),
            Error::Register(error) => error.hint(),
            _ => None,
        }
    }

    /// Writes the error to stderr in the one house style; the labels are
    /// coloured like clap's own errors, only when [`stderr_colour`] says so.
    pub fn report(&self) {
        let (error, cause, hint, reset) = if stderr_colour() {
            ("\x1b[1;31m", "\x1b[1m", "\x1b[1;32m", "\x1b[0m")
        } else {
            ("", "", "", "")
        };
        let mut stderr = std::io::stderr().lock();
        let _ = writeln!(stderr, "{error}error:{reset} {self}");
        let mut source = std::error::Error::source(self);
        while let Some(source_error) = source {
            let _ = writeln!(stderr, "{cause}caused by:{reset} {source_error}");
            source = source_error.source();
        }
        if let Some(text) = self.hint() {
            let _ = writeln!(stderr, "{hint}hint:{reset} {text}");
        }
    }
}

/// Colour on stderr only on a terminal, and never when `NO_COLOR` is set to
/// anything but the empty string (no-color.org). clap's help and errors
/// follow the same rule on their own.
pub fn stderr_colour() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy_client::ProxyClientError;

    #[test]
    fn a_proxy_refusal_gets_one_hint_whichever_command_met_it() {
        let refused = || ProxyClientError::Refused {
            call: "this call",
            status: reqwest::StatusCode::UNAUTHORIZED,
            error: "unauthenticated".into(),
            detail: "this proxy needs `Authorization: Munge <credential>`".into(),
        };
        let hints = [
            Error::Launch(crate::launcher::launch::LaunchError::Proxy(refused())).hint(),
            Error::Session(
                crate::launcher::session_commands::SessionCommandError::Proxy(refused()),
            )
            .hint(),
            Error::Register(crate::job_helper::RegisterError::Proxy(refused())).hint(),
        ];
        let first = hints[0].as_deref().expect("a hint for the 401");
        assert!(first.contains("identity = \"munge\""), "{first}");
        for hint in &hints {
            assert_eq!(hint.as_deref(), Some(first));
        }
    }
}
