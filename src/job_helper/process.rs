//! Whether a process of the job (Jupyter) still runs: its `/proc` entry,
//! which needs no signal permission and no child relationship.

use std::path::Path;

/// Whether process `pid` (Jupyter, or the container runtime holding it) runs.
pub fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}
