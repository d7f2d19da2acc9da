//! End-to-end tests: the real `jrps` binary as the user runs it,
//! against a real proxy over TLS (`jrps serve`), real JupyterLab, and the real
//! single-node Slurm from `scripts/slurm up` (or the Local scheduler).
//!
//! Needs `SLURM_CONF` (Slurm tests) and `JRPS_TEST_JUPYTER` (all but the fast
//! `--no-wait` test). Unset: a failure when `CI` is set, else the test is
//! skipped with a notice, as in tests/scheduler and tests/proxy/jupyter.rs.

mod clusters;
mod extend;
mod flow;
mod idle;
pub(crate) mod kinds;
mod local;
mod scheduler_trouble;
mod sge;
pub(crate) mod site;
mod slurm;
mod torque;
