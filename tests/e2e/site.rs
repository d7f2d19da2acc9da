//! One hermetic world per test: a proxy (`jrps serve` over TLS with a test
//! CA), a site dir whose `site.toml` points at it, and fresh
//! `XDG_CONFIG_HOME`, `XDG_STATE_HOME` and `HOME`. `jrps` runs as a child with
//! a cleared environment (so no inherited `JRPS_*` leaks in); only `PATH`,
//! `SLURM_CONF` and `USER` pass through. Every wait has a deadline.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tempfile::TempDir;

use crate::proxy::harness::{DOMAIN, Options, Proxy, jrps_bin};
use crate::support::Hermetic;
pub use crate::support::Output;

/// How long one `jrps` command may take before the test calls it hung. `up`
/// on Slurm takes a few seconds; this is only a ceiling.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(180);

pub struct Site {
    pub proxy: Proxy,
    root: TempDir,
    /// Searched before the inherited `PATH` (stand-ins for cluster commands).
    path_first: Option<PathBuf>,
}

pub fn reserved_alias(stderr: &str) -> Option<String> {
    stderr.lines().find_map(|line| {
        let (_, rest) = line.split_once("reserved ")?;
        Some(rest.trim().to_owned())
    })
}

/// What `jrps up` printed as the session's URL, split up.
#[derive(Debug, Clone)]
pub struct Launched {
    pub url: String,
    pub alias: String,
    pub token: String,
}

impl Launched {
    /// Parses `https://ALIAS.jrps.localhost:PORT/?token=TOKEN` and checks it
    /// points at `proxy`.
    pub fn parse(url: &str, proxy: &Proxy) -> Launched {
        let rest = url
            .strip_prefix("https://")
            .unwrap_or_else(|| panic!("not an https URL: {url}"));
        let (host, query) = rest
            .split_once("/?token=")
            .unwrap_or_else(|| panic!("no /?token= in {url}"));
        let alias = host
            .strip_suffix(&format!(".{DOMAIN}:{}", proxy.addr.port()))
            .unwrap_or_else(|| panic!("{url} is not on the proxy at port {}", proxy.addr.port()));
        assert_eq!(alias.split('-').count(), 3, "a three-word alias: {alias}");
        assert!(
            query.len() >= 32 && query.bytes().all(|b| b.is_ascii_hexdigit()),
            "a token of 128+ random bits in hex: {query}"
        );
        Launched {
            url: url.to_owned(),
            alias: alias.to_owned(),
            token: query.to_owned(),
        }
    }
}

/// A `jrps` still running, its output collected as it comes.
pub struct Running {
    pub child: Child,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

impl Running {
    /// SIGINT to the process group, as Ctrl-C in a terminal sends it: to
    /// `jrps` and to whatever it runs in that group at the moment.
    pub fn ctrl_c(&self) {
        let pid = rustix::process::Pid::from_raw(self.child.id() as i32).unwrap();
        rustix::process::kill_process_group(pid, rustix::process::Signal::INT).unwrap();
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits until stderr holds a line that `wanted` picks; returns that pick.
    pub async fn wait_for_stderr<T>(
        &mut self,
        timeout: Duration,
        what: &str,
        wanted: impl Fn(&str) -> Option<T>,
    ) -> T {
        let mut look = || {
            if let Some(found) = self.stderr().lines().find_map(&wanted) {
                return Ok(found);
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                // One last look: the readers may trail the exit.
                self.join_readers();
                if let Some(found) = self.stderr().lines().find_map(&wanted) {
                    return Ok(found);
                }
                panic!("jrps exited ({status}) before {what}:\n{}", self.stderr());
            }
            Err(self.stderr())
        };
        let what = format!("{what} on stderr");
        crate::support::until(timeout, &what, || std::future::ready(look())).await
    }

    /// Waits for the exit (killing the process at the deadline).
    pub async fn finish(mut self, timeout: Duration) -> Output {
        let child = &mut self.child;
        let exited = crate::support::eventually(timeout, || {
            std::future::ready(child.try_wait().unwrap().is_some())
        })
        .await;
        if !exited {
            let _ = self.child.kill();
            let _ = self.child.wait();
            panic!("jrps did not exit in {timeout:?}:\n{}", self.stderr());
        }
        let status = self.child.wait().unwrap();
        self.join_readers();
        Output {
            code: status.code(),
            stdout: self.stdout.lock().unwrap().clone(),
            stderr: self.stderr(),
            tmp: None,
        }
    }

    fn join_readers(&mut self) {
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Starts `command`, collecting its stdout and stderr as it runs.
pub(crate) fn spawn_command(mut command: Command) -> Running {
    let mut child = command.spawn().unwrap();
    let stdout = Arc::new(Mutex::new(String::new()));
    let stderr = Arc::new(Mutex::new(String::new()));
    let readers = vec![
        collect(child.stdout.take().unwrap(), stdout.clone()),
        collect(child.stderr.take().unwrap(), stderr.clone()),
    ];
    Running {
        child,
        stdout,
        stderr,
        readers,
    }
}

fn collect(
    mut pipe: impl Read + Send + 'static,
    into: Arc<Mutex<String>>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut buffer = [0u8; 4096];
        loop {
            match pipe.read(&mut buffer) {
                Ok(0) | Err(_) => break,
                Ok(n) => into
                    .lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buffer[..n])),
            }
        }
    })
}

impl Site {
    /// A proxy and a site whose `site.toml` names `scheduler`, `jupyter`,
    /// this build's `jrps`, plus `extra` (e.g. `[partitions.*]` tables).
    pub fn new(scheduler: &str, jupyter: &Path, extra: &str) -> Site {
        Site::with_proxy(scheduler, jupyter, extra, "")
    }

    /// As `new`, with `proxy_extra` appended to the proxy's proxy.toml.
    pub fn with_proxy(scheduler: &str, jupyter: &Path, extra: &str, proxy_extra: &str) -> Site {
        let proxy = Proxy::start(Options {
            allowed_backend_cidrs: r#"["127.0.0.0/8"]"#.into(),
            extra: proxy_extra.into(),
            ..Options::default()
        });
        Site::around(proxy, scheduler, jupyter, extra)
    }

    /// A site whose `site.toml` points at `proxy`, already running.
    pub fn around(proxy: Proxy, scheduler: &str, jupyter: &Path, extra: &str) -> Site {
        let root = tempfile::Builder::new()
            .prefix("jrps-e2e")
            .tempdir()
            .unwrap();
        for dir in ["site", "config/jrps/profiles", "state", "home", "work"] {
            std::fs::create_dir_all(root.path().join(dir)).unwrap();
        }
        let ca = root.path().join("site/ca.pem");
        std::fs::write(&ca, &proxy.ca.ca_pem).unwrap();
        let port = proxy.addr.port();
        // A site of clusters (`scheduler` empty) names its scheduler and
        // how its nodes are reached per cluster, in `extra`.
        let per_cluster = if scheduler.is_empty() {
            String::new()
        } else {
            format!("scheduler = \"{scheduler}\"\nnode_interface = \"lo\"\n")
        };
        let site_toml = format!(
            "proxy_url = \"https://manage.{DOMAIN}:{port}\"\n\
             proxy_ca = {ca:?}\n\
             proxy_address = \"{addr}\"\n\
             {per_cluster}\
             jupyter = {jupyter:?}\n\
             jrps = {jrps:?}\n\
             {extra}\n",
            ca = ca.display().to_string(),
            addr = proxy.addr,
            jupyter = jupyter.display().to_string(),
            jrps = jrps_bin(),
        );
        std::fs::write(root.path().join("site/site.toml"), site_toml).unwrap();
        Site {
            proxy,
            root,
            path_first: None,
        }
    }

    /// Lists `addresses` as `proxy_address`, tried in order. `proxy_url`
    /// names the port, and a URL's port wins over an address's, so
    /// replicas differ by IP address.
    pub fn proxy_addresses(&self, addresses: &[std::net::SocketAddr]) {
        let path = self.site_toml();
        let listed: Vec<String> = addresses.iter().map(|a| format!("\"{a}\"")).collect();
        let line = format!("proxy_address = [{}]", listed.join(", "));
        let toml: Vec<String> = std::fs::read_to_string(&path)
            .unwrap()
            .lines()
            .map(|l| {
                if l.starts_with("proxy_address") {
                    line.clone()
                } else {
                    l.to_owned()
                }
            })
            .collect();
        std::fs::write(&path, toml.join("\n")).unwrap();
    }

    /// Puts `dir` first on the `PATH` that `jrps` sees.
    pub fn path_first(&mut self, dir: &Path) {
        self.path_first = Some(dir.to_owned());
    }

    /// Writes a user profile (`$XDG_CONFIG_HOME/jrps/profiles/NAME.toml`).
    pub fn user_profile(&self, name: &str, text: &str) {
        std::fs::write(
            self.root
                .path()
                .join(format!("config/jrps/profiles/{name}.toml")),
            text,
        )
        .unwrap();
    }

    /// The site's `site.toml`.
    pub fn site_toml(&self) -> PathBuf {
        self.root.path().join("site/site.toml")
    }

    /// The `HOME` that `jrps` (and so Jupyter) sees.
    pub fn home(&self) -> PathBuf {
        self.root.path().join("home")
    }

    /// The directory Jupyter is started in (`up -d`).
    pub fn work_dir(&self) -> PathBuf {
        self.root.path().join("work")
    }

    pub fn state_home(&self) -> PathBuf {
        self.root.path().join("state/jrps")
    }

    pub fn session_dir(&self, alias: &str) -> PathBuf {
        self.state_home().join("sessions").join(alias)
    }

    /// Aliases with a session dir.
    pub fn session_dirs(&self) -> Vec<String> {
        match std::fs::read_dir(self.state_home().join("sessions")) {
            Ok(entries) => entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect(),
            Err(_) => Vec::new(),
        }
    }

    /// `jrps ARGS` with another state directory, as from another login node.
    pub async fn run_elsewhere(&self, args: &[&str]) -> Output {
        let mut command = self.command(args);
        command.env("XDG_STATE_HOME", self.root.path().join("state-elsewhere"));
        spawn_command(command).finish(COMMAND_TIMEOUT).await
    }

    /// `jrps ARGS` in the hermetic environment.
    pub fn command(&self, args: &[&str]) -> Command {
        let root = self.root.path();
        let (home, config, state, site) = (
            root.join("home"),
            root.join("config"),
            root.join("state"),
            root.join("site"),
        );
        let mut command = Hermetic {
            home: &home,
            site: &site,
            config: &config,
            state: Some(&state),
            path_first: self.path_first.as_deref(),
        }
        .jrps(args);
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group, as a shell gives each command: tests
            // signal that group (a terminal's Ctrl-C), never the test runner's.
            .process_group(0);
        command
    }

    pub fn spawn(&self, args: &[&str]) -> Running {
        spawn_command(self.command(args))
    }

    pub async fn run(&self, args: &[&str]) -> Output {
        self.spawn(args).finish(COMMAND_TIMEOUT).await
    }

    /// `jrps up -d WORK ARGS`.
    pub fn spawn_up(&self, args: &[&str]) -> Running {
        let work = self.work_dir().display().to_string();
        let mut all = vec!["up", "-d", work.as_str()];
        all.extend_from_slice(args);
        self.spawn(&all)
    }

    pub async fn up(&self, args: &[&str]) -> Output {
        self.spawn_up(args).finish(COMMAND_TIMEOUT).await
    }

    /// `jrps up` that must succeed; returns the printed URL, checked.
    pub async fn up_ok(&self, args: &[&str]) -> (Launched, Output) {
        let out = self.up(args).await;
        assert_eq!(
            out.code,
            Some(0),
            "jrps up failed:\n{}\n{}",
            out.describe(),
            self.logs()
        );
        let mut lines = out.stdout.lines();
        assert_eq!(
            lines.next(),
            Some("Your notebook is here:"),
            "{}",
            out.describe()
        );
        let url = lines
            .next()
            .unwrap_or_else(|| panic!("no URL:\n{}", out.describe()));
        assert_eq!(
            lines.next(),
            None,
            "stdout is the URL only:\n{}",
            out.describe()
        );
        let launched = Launched::parse(url, &self.proxy);
        assert_eq!(
            reserved_alias(&out.stderr).as_deref(),
            Some(launched.alias.as_str())
        );
        (launched, out)
    }

    /// `jrps ls --json`, parsed.
    pub async fn ls_json(&self) -> Vec<Value> {
        let out = self.run(&["ls", "--json"]).await;
        assert_eq!(out.code, Some(0), "{}", out.describe());
        serde_json::from_str::<Vec<Value>>(out.stdout.trim())
            .unwrap_or_else(|e| panic!("ls --json is not a JSON array ({e}):\n{}", out.describe()))
    }

    /// GET a session URL through the proxy (no cookies); status and body.
    pub async fn get(&self, url: &str) -> (u16, String) {
        let response = self.proxy.get(url).await;
        let status = response.status().as_u16();
        (status, response.text().await.unwrap_or_default())
    }

    /// Waits until GET `url` answers `status`; returns the last answer.
    pub async fn wait_for_status(
        &self,
        url: &str,
        status: u16,
        timeout: Duration,
    ) -> (u16, String) {
        let last = std::cell::RefCell::new((0, String::new()));
        let last_ref = &last;
        crate::support::eventually(timeout, || async move {
            let answer = self.get(url).await;
            let done = answer.0 == status;
            *last_ref.borrow_mut() = answer;
            done
        })
        .await;
        last.into_inner()
    }

    /// The proxy's view of a session: `GET /api/v1/sessions/ALIAS`.
    pub async fn proxy_session(&self, alias: &str) -> (u16, Value) {
        self.proxy.status(alias, "").await
    }

    /// Asserts the proxy holds no live session for `alias`: the API says
    /// `ended` (or does not know it), and `/metrics` counts no live session.
    pub async fn assert_no_live_session(&self, alias: &str) {
        let (status, body) = self.proxy_session(alias).await;
        assert!(
            status == 404 || (status == 200 && body["state"] == "ended"),
            "the proxy still holds {alias}: {status} {body}"
        );
        let metrics = self.proxy.metrics().await;
        for state in ["pending", "ready"] {
            let gauge = format!("jrps_sessions{{state=\"{state}\"}} ");
            let line = metrics
                .lines()
                .find(|l| l.starts_with(&gauge))
                .unwrap_or_else(|| panic!("no {gauge} in /metrics:\n{metrics}"));
            assert_eq!(line, format!("{gauge}0"), "a {state} session is left");
        }
    }

    /// The job log of a session (`$XDG_STATE_HOME/jrps/logs/ALIAS.log`).
    pub fn job_log(&self, alias: &str) -> String {
        std::fs::read_to_string(self.state_home().join(format!("logs/{alias}.log")))
            .unwrap_or_default()
    }

    /// The proxy's log and every job log, for failure messages.
    pub fn logs(&self) -> String {
        let mut text = format!("--- proxy log ---\n{}", self.proxy.log());
        if let Ok(entries) = std::fs::read_dir(self.state_home().join("logs")) {
            for entry in entries.flatten() {
                text.push_str(&format!(
                    "--- {} ---\n{}",
                    entry.path().display(),
                    std::fs::read_to_string(entry.path()).unwrap_or_default()
                ));
            }
        }
        text
    }
}

impl Drop for Site {
    /// Ends whatever a failed test left running (jobs and sessions), so a
    /// red test does not leave Slurm jobs or local Jupyters behind.
    fn drop(&mut self) {
        if self.session_dirs().is_empty() {
            return;
        }
        if let Ok(mut child) = self
            .command(&["down", "--all"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
        {
            if crate::support::eventually_sync(Duration::from_secs(30), || {
                matches!(child.try_wait(), Ok(Some(_)))
            }) {
                return;
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Writes an executable `dir/name` (`#!/bin/sh` and `body`): a stand-in
/// for a program `jrps` runs.
pub fn executable(dir: &Path, name: &str, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// `squeue`'s view of a job among the pending and running ones: its state
/// (`PENDING`, `RUNNING`), or `None` when it is neither.
pub fn squeue_active(job_id: &str) -> Option<String> {
    let out = Command::new("squeue")
        .args(["-h", "-j", job_id, "-t", "pending,running", "-o", "%T"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        // Slurm forgets ended jobs after MinJobAge and then calls the id invalid.
        assert!(stderr.contains("Invalid job id"), "squeue failed: {stderr}");
        return None;
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(str::to_owned)
}

/// Waits until `squeue_active` says the job is neither pending nor running.
pub async fn wait_job_gone(job_id: &str, timeout: Duration) {
    let what = format!("job {job_id} gone from squeue");
    crate::support::until(timeout, &what, || async {
        match squeue_active(job_id) {
            None => Ok(()),
            Some(state) => Err(format!("still {state}")),
        }
    })
    .await
}
