//! The launcher role: profiles and flags resolved into one validated
//! `LaunchSpec`, rendered into a batch script, submitted.

pub(crate) mod batch_template;
pub(crate) mod clusters;
pub(crate) mod config;
pub(crate) mod directives;
pub(crate) mod environment;
pub(crate) mod job_path;
pub(crate) mod launch;
pub(crate) mod launch_fields;
pub(crate) mod launch_spec;
pub(crate) mod launcher_error;
pub(crate) mod layers;
pub(crate) mod preflight;
pub(crate) mod profile_catalog;
pub(crate) mod profiles_command;
pub(crate) mod progress;
pub(crate) mod session_commands;
pub mod shell_quote;
pub(crate) mod site_config;
pub(crate) mod source;

pub(crate) use config::Config;
pub(crate) use environment::Environment;
pub(crate) use launch_spec::LaunchSpec;
pub(crate) use launcher_error::LauncherError;
pub(crate) use site_config::SchedulerKind;

use std::io::Write;

use crate::launcher::batch_template::script;
use crate::launcher::launch_fields::LaunchRequest;

/// Reads the configuration and resolves `args` into a validated spec.
pub fn resolve(
    env: &Environment,
    args: &LaunchRequest,
) -> Result<(Config, LaunchSpec), LauncherError> {
    let config = Config::load(env)?;
    let resolved = config.settings_for(env, args)?;
    let spec = LaunchSpec::from_resolved(&resolved, &config)?;
    Ok((config, spec))
}

pub fn render(request: &LaunchRequest) -> Result<(), LauncherError> {
    let env = Environment::capture();
    let (_, spec) = resolve(&env, request)?;
    print_stdout(&script(&spec)?)
}

/// Writes a command's result to stdout; a closed pipe is an error to report,
/// not a panic as with `print!`.
pub fn print_stdout(text: &str) -> Result<(), LauncherError> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(LauncherError::Output)
}

pub fn profiles(action: profiles_command::ProfilesAction) -> Result<(), LauncherError> {
    profiles_command::run(action, &Environment::capture())
}

/// What `up --dry-run` prints above the script.
pub fn dry_run_summary(spec: &LaunchSpec) -> String {
    let submit = match spec.site.scheduler {
        SchedulerKind::Slurm => "sbatch --parsable (Slurm)",
        SchedulerKind::Pbs => "qsub (OpenPBS / PBS Pro)",
        SchedulerKind::Torque => "qsub (Torque)",
        SchedulerKind::Sge => "qsub (Grid Engine)",
        SchedulerKind::Local => "bash, on this machine (scheduler = local)",
    };
    let mut out = format!("would submit with: {submit}\n");
    let mut line = |k: &str, v: &str| out.push_str(&format!("{k:<10} {v}\n"));
    line("profile", &spec.profile);
    line("partition", &spec.partition.name);
    line("time", &spec.time.to_string());
    line("gpus", &spec.gpus.to_string());
    line(
        "account",
        spec.account.as_deref().unwrap_or("(scheduler default)"),
    );
    line("dir", &spec.dir.to_string());
    line("server", spec.kind.name());
    line("image", spec.image.as_deref().unwrap_or("(none)"));
    line(
        "proxy",
        spec.site.proxy_url.as_deref().unwrap_or("(not configured)"),
    );
    out
}
