//! Every `JRPS_*` environment variable jrps reads, in one place.

/// Site configuration directory (default `/etc/jrps`).
pub const SITE_DIR: &str = "JRPS_SITE_DIR";
