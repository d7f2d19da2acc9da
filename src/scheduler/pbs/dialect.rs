//! The PBS a site runs.

/// Which PBS: they differ in `qstat`'s options (`-x` is history on PBS Pro
/// and XML on Torque; only PBS Pro has `-F json`), in `qsub -k`, and in
/// the exit status of a walltime kill.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Pbs,
    Torque,
}
