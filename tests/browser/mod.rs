//! The browser test: headless Chromium, driven through
//! chromedriver with fantoccini, opens what `jrps up` printed, through the
//! real proxy over TLS, and uses JupyterLab as a person would. It also looks
//! at every page the proxy shows itself (starting, 403, 404, 502, ended)
//! and, with `JRPS_SCREENSHOTS=DIR`, saves a PNG of each (README, docs/).
//!
//! Needs `JRPS_TEST_CHROMIUM`, `JRPS_TEST_CHROMEDRIVER` and
//! `JRPS_TEST_JUPYTER` (scripts/test sets them), and `SLURM_CONF` for the
//! queued test. Missing: the test fails when `CI` is set, else it is skipped
//! with a notice.
//!
//! Chromium trusts the test CA's leaf through
//! `--ignore-certificate-errors-spki-list` (the SHA-256 of the certificate's
//! public key): only that one key is accepted, so the browser still checks
//! TLS for everything else and the test still proves the proxy speaks TLS
//! with the certificate it was given. Importing a CA into Chromium would need
//! an NSS database (certutil), another package for the same proof.

mod apps;
mod flow;
pub mod site;
mod walltime;
