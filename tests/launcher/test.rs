//! A small builder for running `jrps` hermetically, after casey/just's
//! `Test`: a fresh site dir and config home per test, `HOME` fixed, every
//! inherited variable (notably `JRPS_*`) cleared.

use std::path::{Path, PathBuf};
use std::process::Command;

use tempfile::TempDir;

/// The `HOME` every test sees; never a real directory.
pub const HOME: &str = "/home/tester";

pub struct Test {
    dir: TempDir,
    args: Vec<String>,
    env: Vec<(String, String)>,
}

pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    tmp: String,
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
        let mut command = Command::new(env!("CARGO_BIN_EXE_jrps"));
        command
            .args(&self.args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", HOME)
            .env("JRPS_SITE_DIR", self.site_dir())
            .env("XDG_CONFIG_HOME", self.dir.path().join("config"))
            .env("COLUMNS", "100")
            .env("NO_COLOR", "1")
            .current_dir(self.dir.path());
        for (name, value) in &self.env {
            command.env(name, value);
        }
        let output = command.output().expect("run jrps");
        Output {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            tmp: self.dir.path().display().to_string(),
        }
    }
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, text).expect("write");
}

impl Output {
    /// The one layout CLI snapshots use, with the test's temp dir as `[TMP]`.
    pub fn layout(&self) -> String {
        let text = format!(
            "exit: {}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        );
        text.replace(&self.tmp, "[TMP]")
    }

    pub fn success(&self) -> &Output {
        assert_eq!(self.code, 0, "expected success:\n{}", self.layout());
        self
    }

    pub fn failure(&self, code: i32) -> &Output {
        assert_eq!(self.code, code, "expected exit {code}:\n{}", self.layout());
        self
    }

    pub fn stderr_has(&self, text: &str) -> &Output {
        let stderr = self.stderr.replace(&self.tmp, "[TMP]");
        assert!(
            stderr.contains(text),
            "stderr lacks {text:?}:\n{}",
            self.layout()
        );
        self
    }

    pub fn stdout_has(&self, text: &str) -> &Output {
        let stdout = self.stdout.replace(&self.tmp, "[TMP]");
        assert!(
            stdout.contains(text),
            "stdout lacks {text:?}:\n{}",
            self.layout()
        );
        self
    }
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
