//! jrps: Jupyter on HPC compute nodes behind a private HTTPS URL.
//!
//! One binary, three roles (see docs/design.md): the launcher (`up`, `render`,
//! `profiles`, `ls`, `url`, `logs`, `down`), the job helper (`register`) and the
//! proxy (`serve`). This file only declares modules and hands `main` to `run`.

pub mod api;
pub(crate) mod cli;
pub(crate) mod clock;
pub(crate) mod env_vars;
pub(crate) mod error;
pub(crate) mod error_chain;
pub(crate) mod identity;
pub(crate) mod job_helper;
pub mod launcher;
pub mod proxy;
pub(crate) mod proxy_client;
pub mod scheduler;
pub(crate) mod session_dir;
pub mod session_kind;
pub(crate) mod user_dirs;
pub(crate) mod wall_time;

pub use error::Error;

use std::process::ExitCode;

/// Parses the command line, runs the command and renders any error once.
pub fn run() -> ExitCode {
    let arguments = <cli::Arguments as clap::Parser>::parse();
    // Every TLS client and server in jrps uses ring; installing it as the
    // process default also covers clients built without an explicit config.
    let _ = rustls::crypto::ring::default_provider().install_default();
    match arguments.run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            error.report();
            ExitCode::from(error.exit_code())
        }
    }
}
