//! Every `JRPS_*` environment variable jrps reads or sets, in one place.

/// Site configuration directory (default `/etc/jrps`).
pub const SITE_DIR: &str = "JRPS_SITE_DIR";
/// Profile used when none is named on the command line (default `default`).
pub const PROFILE: &str = "JRPS_PROFILE";
/// Set by `jrps up` for the job (sbatch passes it on): the session's private
/// directory with the `token` and `register_secret` files.
pub const SESSION_DIR: &str = "JRPS_SESSION_DIR";
/// Set by the batch script inside the job: the address Jupyter binds to.
pub const NODE_IP: &str = "JRPS_NODE_IP";
/// Set by the batch script at its start: when the job's time is up (Unix
/// seconds), for schedulers that do not say how much is left.
pub const JOB_ENDS_AT: &str = "JRPS_JOB_ENDS_AT";

/// The variable of a launch field that is a flag (`time` → `JRPS_TIME`):
/// the environment layer, above the configuration files and below flags.
/// Empty values count as unset.
pub fn for_field(field: &str) -> String {
    format!("JRPS_{}", field.to_ascii_uppercase())
}
