//! A small builder for running `jrps` hermetically, after casey/just's
//! `Test`: a fresh site dir and config home per test, `HOME` fixed, every
//! inherited variable (notably `JRPS_*`) cleared.

use std::path::{Path, PathBuf};
use std::process::Command;

use tempfile::TempDir;

use crate::support::Hermetic;
pub use crate::support::Output;

/// The `HOME` every test sees; never a real directory.
pub const HOME: &str = "/home/tester";

pub struct Test {
    dir: TempDir,
    args: Vec<String>,
    env: Vec<(String, String)>,
}

impl Test {
    pub fn new() -> Test {
        let dir = tempfile::Builder::new()
            .prefix("jrps-test")
            .tempdir()
            .expect("tempdir");
        std::fs::create_dir_all(dir.path().join("site")).expect("site dir");
        std::fs::create_dir_all(dir.path().join("config/jrps")).expect("config dir");
        Test {
            dir,
            args: Vec::new(),
            env: Vec::new(),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn site_dir(&self) -> PathBuf {
        self.dir.path().join("site")
    }

    /// Writes `relative` (e.g. `site.toml`, `profiles/x.toml`) under the site dir.
    pub fn site_file(self, relative: &str, text: &str) -> Test {
        let path = self.site_dir().join(relative);
        write(&path, text);
        self
    }

    /// Writes `relative` under `$XDG_CONFIG_HOME/jrps`.
    pub fn user_file(self, relative: &str, text: &str) -> Test {
        let path = self.dir.path().join("config/jrps").join(relative);
        write(&path, text);
        self
    }

    pub fn args(mut self, args: &[&str]) -> Test {
        self.args.extend(args.iter().map(|a| a.to_string()));
        self
    }

    pub fn env(mut self, name: &str, value: &str) -> Test {
        self.env.push((name.to_string(), value.to_string()));
        self
    }

    pub fn run(&self) -> Output {
        let (site, config) = (self.site_dir(), self.dir.path().join("config"));
        let mut command = Hermetic {
            home: Path::new(HOME),
            site: &site,
            config: &config,
            state: None,
            path_first: None,
        }
        .jrps(&self.args.iter().map(String::as_str).collect::<Vec<_>>());
        command.current_dir(self.dir.path());
        for (name, value) in &self.env {
            command.env(name, value);
        }
        let output = command.output().expect("run jrps");
        Output::of(&output, Some(self.dir.path()))
    }
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, text).expect("write");
}

/// Snapshots `value` into the repository's top-level `snapshots/` as `name.snap`.
pub fn snapshot(name: &str, value: &str) {
    insta::with_settings!({
        snapshot_path => concat!(env!("CARGO_MANIFEST_DIR"), "/snapshots"),
        prepend_module_to_snapshot => false,
        omit_expression => true,
    }, {
        insta::assert_snapshot!(name, value);
    });
}

/// Asserts `script` is valid bash (`bash -n`).
pub fn assert_bash_syntax(script: &str) {
    let dir = TempDir::new().expect("tempdir");
    let path = dir.path().join("script.sh");
    std::fs::write(&path, script).expect("write");
    let out = Command::new("bash")
        .arg("-n")
        .arg(&path)
        .output()
        .expect("bash");
    assert!(
        out.status.success(),
        "bash -n failed: {}\n{script}",
        String::from_utf8_lossy(&out.stderr)
    );
}
