//! Every `JRPS_*` environment variable jrps reads, in one place.

/// Site configuration directory (default `/etc/jrps`).
pub const SITE_DIR: &str = "JRPS_SITE_DIR";

/// Set by `jrps up` for the job: the session's private directory (see `session_dir`).
pub const SESSION_DIR: &str = "JRPS_SESSION_DIR";

/// Set by the batch script: the node address Jupyter binds and registers from.
pub const NODE_IP: &str = "JRPS_NODE_IP";
