//! Every `JRPS_*` environment variable jrps reads, in one place.
//!
//! Launch fields (`JRPS_PARTITION` ... `JRPS_MEMORY`) form the environment
//! layer, above the configuration files and below flags; empty values count
//! as unset.

/// Site configuration directory (default `/etc/jrps`).
pub const SITE_DIR: &str = "JRPS_SITE_DIR";
/// Profile used when none is named on the command line (default `default`).
pub const PROFILE: &str = "JRPS_PROFILE";
pub const PARTITION: &str = "JRPS_PARTITION";
pub const DIR: &str = "JRPS_DIR";
pub const ACCOUNT: &str = "JRPS_ACCOUNT";
pub const BATCH: &str = "JRPS_BATCH";
pub const TIME: &str = "JRPS_TIME";
pub const GPUS: &str = "JRPS_GPUS";
pub const IMAGE: &str = "JRPS_IMAGE";
pub const SERVER: &str = "JRPS_SERVER";
pub const CPUS: &str = "JRPS_CPUS";
pub const MEMORY: &str = "JRPS_MEMORY";
/// Set by `jrps up` for the job (sbatch passes it on): the session's private
/// directory with the `token` and `register_secret` files.
pub const SESSION_DIR: &str = "JRPS_SESSION_DIR";
/// Set by the batch script inside the job: the address Jupyter binds to.
pub const NODE_IP: &str = "JRPS_NODE_IP";
