//! What every part of the suite shares: `jrps` run hermetically and what it
//! printed, the one rule for a part this machine lacks, and waiting on a
//! condition (never a fixed sleep).

use std::ffi::OsString;
use std::future::Future;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// The folders a hermetic `jrps` sees as its user's. Nothing is inherited
/// from the test runner but `PATH` (after `path_first`) and `SLURM_CONF`:
/// no `JRPS_*`, no real home, no terminal width, no colour.
pub struct Hermetic<'a> {
    pub home: &'a Path,
    pub site: &'a Path,
    /// `XDG_CONFIG_HOME` (jrps reads `jrps/` under it).
    pub config: &'a Path,
    /// `XDG_STATE_HOME`, where the test keeps sessions (unset otherwise).
    pub state: Option<&'a Path>,
    /// Searched before the inherited `PATH` (stand-ins for cluster commands).
    pub path_first: Option<&'a Path>,
}

impl Hermetic<'_> {
    /// `jrps ARGS` in this environment.
    pub fn jrps(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_jrps"));
        command.args(args);
        self.apply(&mut command);
        command
    }

    fn apply(&self, command: &mut Command) {
        let path = match self.path_first {
            Some(first) => path_with_first(first),
            None => std::env::var_os("PATH").unwrap_or_default(),
        };
        command
            .env_clear()
            .env("PATH", path)
            .env("HOME", self.home)
            .env("USER", "tester")
            .env("XDG_CONFIG_HOME", self.config)
            .env("JRPS_SITE_DIR", self.site)
            .env("COLUMNS", "100")
            .env("NO_COLOR", "1");
        if let Some(state) = self.state {
            command.env("XDG_STATE_HOME", state);
        }
        if let Some(conf) = std::env::var_os("SLURM_CONF") {
            command.env("SLURM_CONF", conf);
        }
    }
}

/// The inherited `PATH` with `first` searched before it (stand-ins for
/// the commands of a cluster).
pub fn path_with_first(first: &Path) -> OsString {
    let inherited = std::env::var_os("PATH").unwrap_or_default();
    std::env::join_paths(
        std::iter::once(first.to_path_buf()).chain(std::env::split_paths(&inherited)),
    )
    .expect("PATH")
}

/// A finished `jrps` run.
#[derive(Debug)]
pub struct Output {
    /// The exit code; `None` when a signal ended the process.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    /// The test's own folder, shown as `[TMP]` by [`Output::layout`].
    pub tmp: Option<String>,
}

impl Output {
    pub fn of(output: &std::process::Output, tmp: Option<&Path>) -> Output {
        Output {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            tmp: tmp.map(|t| t.display().to_string()),
        }
    }

    /// The one layout CLI snapshots use, with the test's folder as `[TMP]`.
    pub fn layout(&self) -> String {
        let text = format!(
            "exit: {}\n--- stdout\n{}--- stderr\n{}",
            self.code.unwrap_or(-1),
            self.stdout,
            self.stderr
        );
        self.without_tmp(&text)
    }

    /// Everything, for an assertion's message.
    pub fn describe(&self) -> String {
        format!(
            "exit {:?}\n--- stdout ---\n{}--- stderr ---\n{}",
            self.code, self.stdout, self.stderr
        )
    }

    pub fn success(&self) -> &Output {
        assert_eq!(self.code, Some(0), "expected success:\n{}", self.layout());
        self
    }

    pub fn failure(&self, code: i32) -> &Output {
        assert_eq!(
            self.code,
            Some(code),
            "expected exit {code}:\n{}",
            self.layout()
        );
        self
    }

    pub fn stderr_has(&self, text: &str) -> &Output {
        assert!(
            self.without_tmp(&self.stderr).contains(text),
            "stderr lacks {text:?}:\n{}",
            self.layout()
        );
        self
    }

    pub fn stdout_has(&self, text: &str) -> &Output {
        assert!(
            self.without_tmp(&self.stdout).contains(text),
            "stdout lacks {text:?}:\n{}",
            self.layout()
        );
        self
    }

    fn without_tmp(&self, text: &str) -> String {
        match &self.tmp {
            Some(tmp) => text.replace(tmp.as_str(), "[TMP]"),
            None => text.to_owned(),
        }
    }
}

/// A part this test needs (a daemon, a browser, a package) is not on this
/// machine. Under CI that fails the test, since CI installs every part;
/// elsewhere the test is skipped with a notice. Returns so the caller can
/// `return`.
pub fn missing(what: &str) {
    assert!(std::env::var_os("CI").is_none(), "CI needs {what}");
    eprintln!("skipped: {what} is not here");
}

/// Polls `check` until it returns true or `timeout` passes.
pub async fn eventually<F, Fut>(timeout: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if check().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// [`eventually`] for tests without a runtime.
pub fn eventually_sync(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if check() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Polls `check` until it gives `Ok`, for at most `timeout`; panics with
/// `what` and the last `Err`'s story otherwise.
pub async fn until<T, Fut>(timeout: Duration, what: &str, mut check: impl FnMut() -> Fut) -> T
where
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        let last = match check().await {
            Ok(found) => return found,
            Err(last) => last,
        };
        assert!(
            Instant::now() < deadline,
            "not {what} after {timeout:?}; last: {last}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// [`until`] for tests without a runtime: polls `check` from this thread.
pub fn until_sync<T>(
    timeout: Duration,
    what: &str,
    mut check: impl FnMut() -> Result<T, String>,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        let last = match check() {
            Ok(found) => return found,
            Err(last) => last,
        };
        assert!(
            Instant::now() < deadline,
            "not {what} after {timeout:?}; last: {last}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Now, in Unix seconds, as the proxy and the job write times.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_secs()
}
