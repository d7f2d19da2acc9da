//! One hermetic world per browser test: a proxy (`jrps serve` over TLS), a
//! site whose `site.toml` points at it, fresh `HOME`/XDG dirs for `jrps`,
//! chromedriver on a free loopback port, and a Chromium session. Every wait
//! has a deadline; everything started is stopped on drop.

use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tempfile::TempDir;

use crate::proxy::harness::{DOMAIN, Options, Proxy, jrps_bin};

/// What the browser tests need from the machine.
pub struct Tools {
    pub chromium: PathBuf,
    pub chromedriver: PathBuf,
    pub jupyter: PathBuf,
}

fn required(var: &str, hint: &str) -> Option<PathBuf> {
    match std::env::var_os(var) {
        Some(path) if Path::new(&path).exists() => Some(PathBuf::from(path)),
        _ if std::env::var_os("CI").is_some() => {
            panic!(
                "CI is set but {var} is unset or missing: the browser tests must run in CI ({hint})"
            )
        }
        _ => {
            eprintln!("notice: {var} is unset or missing; skipping the browser test ({hint})");
            None
        }
    }
}

impl Tools {
    /// The tools, or `None` (skip, with a notice) outside CI.
    pub fn find() -> Option<Tools> {
        let apt = "apt-get install chromium chromium-driver; scripts/test sets it";
        Some(Tools {
            chromium: required("JRPS_TEST_CHROMIUM", apt)?,
            chromedriver: required("JRPS_TEST_CHROMEDRIVER", apt)?,
            jupyter: required("JRPS_TEST_JUPYTER", "scripts/jupyter-venv")?,
        })
    }
}

/// Slurm's config, or `None` (skip, with a notice) outside CI.
pub fn slurm_conf() -> Option<PathBuf> {
    required(
        "SLURM_CONF",
        "scripts/slurm up; eval \"$(scripts/slurm env)\"",
    )
}

/// Where screenshots go: `$JRPS_SCREENSHOTS` (relative to the crate), if set.
pub fn screenshot_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("JRPS_SCREENSHOTS")?;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    std::fs::create_dir_all(&dir).unwrap();
    Some(dir)
}

pub struct Site {
    pub proxy: Proxy,
    pub root: TempDir,
}

/// A finished `jrps` run.
#[derive(Debug)]
pub struct Output {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// A `jrps` still running, its output collected as it comes.
pub struct Running {
    child: Child,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
}

impl Running {
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits until stderr has a line `wanted` picks.
    pub async fn wait_for_stderr<T>(
        &mut self,
        timeout: Duration,
        wanted: impl Fn(&str) -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(found) = self.stderr().lines().find_map(&wanted) {
                return found;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                std::thread::sleep(Duration::from_millis(100));
                if let Some(found) = self.stderr().lines().find_map(&wanted) {
                    return found;
                }
                panic!("jrps exited ({status}):\n{}", self.stderr());
            }
            assert!(Instant::now() < deadline, "timed out:\n{}", self.stderr());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn finish(mut self, timeout: Duration) -> Output {
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() >= deadline {
                panic!("jrps did not exit in {timeout:?}:\n{}", self.stderr());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        // The readers end at EOF, right after the exit.
        let deadline = Instant::now() + Duration::from_secs(5);
        while Arc::strong_count(&self.stdout) > 1 || Arc::strong_count(&self.stderr) > 1 {
            if Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Output {
            code: status.code(),
            stdout: self.stdout.lock().unwrap().clone(),
            stderr: self.stderr(),
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

fn collect(mut pipe: impl Read + Send + 'static, into: Arc<Mutex<String>>) {
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
        drop(into);
    });
}

impl Site {
    pub fn new(scheduler: &str, jupyter: &Path) -> Site {
        let proxy = Proxy::start(Options {
            allowed_backend_cidrs: r#"["127.0.0.0/8"]"#.into(),
            ..Options::default()
        });
        let root = tempfile::Builder::new()
            .prefix("jrps-browser")
            .tempdir()
            .unwrap();
        for dir in ["site", "config/jrps/profiles", "state", "home", "work"] {
            std::fs::create_dir_all(root.path().join(dir)).unwrap();
        }
        // The user's own JupyterLab setting: no "news?" pop-up in screenshots.
        let settings = root
            .path()
            .join("home/.jupyter/lab/user-settings/@jupyterlab/apputils-extension");
        std::fs::create_dir_all(&settings).unwrap();
        std::fs::write(
            settings.join("notification.jupyterlab-settings"),
            r#"{"fetchNews": "false"}"#,
        )
        .unwrap();
        let ca = root.path().join("site/ca.pem");
        std::fs::write(&ca, pem("CERTIFICATE", &proxy.ca.ca_der)).unwrap();
        let port = proxy.addr.port();
        let site_toml = format!(
            "proxy_url = \"https://manage.{DOMAIN}:{port}\"\nproxy_ca = {ca:?}\n\
             proxy_address = \"{}\"\nscheduler = \"{scheduler}\"\njupyter = {:?}\njrps = {:?}\n",
            proxy.addr,
            jupyter.display().to_string(),
            jrps_bin(),
            ca = ca.display().to_string(),
        );
        std::fs::write(root.path().join("site/site.toml"), site_toml).unwrap();
        Site { proxy, root }
    }

    pub fn user_profile(&self, name: &str, text: &str) {
        let path = self
            .root
            .path()
            .join(format!("config/jrps/profiles/{name}.toml"));
        std::fs::write(path, text).unwrap();
    }

    pub fn work_dir(&self) -> PathBuf {
        self.root.path().join("work")
    }

    /// `jrps ARGS` with a cleared environment (no inherited `JRPS_*`).
    pub fn spawn(&self, args: &[&str]) -> Running {
        let mut child = self.command(args).spawn().unwrap();
        let stdout = Arc::new(Mutex::new(String::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        collect(child.stdout.take().unwrap(), stdout.clone());
        collect(child.stderr.take().unwrap(), stderr.clone());
        Running {
            child,
            stdout,
            stderr,
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let root = self.root.path();
        let mut command = Command::new(jrps_bin());
        command
            .args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", root.join("home"))
            .env("USER", "tester")
            .env("XDG_CONFIG_HOME", root.join("config"))
            .env("XDG_STATE_HOME", root.join("state"))
            .env("JRPS_SITE_DIR", root.join("site"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(conf) = std::env::var_os("SLURM_CONF") {
            command.env("SLURM_CONF", conf);
        }
        command
    }

    pub async fn run(&self, args: &[&str]) -> Output {
        self.spawn(args).finish(Duration::from_secs(180)).await
    }

    /// The SPKI pin Chromium accepts for the proxy's certificate.
    pub fn spki_pin(&self) -> String {
        let key = rcgen::KeyPair::from_pem(&self.proxy.ca.key_pem).unwrap();
        let digest = Sha256::digest(rcgen::PublicKeyData::subject_public_key_info(&key));
        base64::engine::general_purpose::STANDARD.encode(digest)
    }
}

fn pem(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// A port nobody listens on right now (bound, then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// chromedriver and one headless Chromium session; both end on drop.
pub struct Browser {
    pub client: Client,
    driver: Child,
    _profile: TempDir,
}

impl Browser {
    pub async fn start(tools: &Tools, spki_pin: &str) -> Browser {
        let port = free_port();
        // Its own process group, which Chromium joins: a test that fails
        // before closing the session still leaves no browser behind.
        let driver = Command::new(&tools.chromedriver)
            .process_group(0)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut driver = DriverGuard(Some(driver));
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            assert!(
                Instant::now() < deadline,
                "chromedriver did not listen in 30 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let profile = tempfile::Builder::new()
            .prefix("jrps-chromium")
            .tempdir()
            .unwrap();
        let args = vec![
            "--headless".to_owned(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--disable-dev-shm-usage".into(),
            "--no-proxy-server".into(),
            "--window-size=1280,800".into(),
            "--hide-scrollbars".into(),
            format!("--user-data-dir={}", profile.path().display()),
            format!("--ignore-certificate-errors-spki-list={spki_pin}"),
        ];
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({"binary": tools.chromium, "args": args}),
        );
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .expect("a Chromium session through chromedriver");
        Browser {
            client,
            driver: driver.0.take().unwrap(),
            _profile: profile,
        }
    }

    /// The page's visible text.
    pub async fn text(&self) -> String {
        match self.client.find(Locator::Css("body")).await {
            Ok(body) => body.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    /// Polls until the page's text contains `wanted`; returns the text.
    pub async fn wait_for_text(&self, wanted: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let text = self.text().await;
            if text.contains(wanted) {
                return text;
            }
            assert!(
                Instant::now() < deadline,
                "no {wanted:?} on the page after {timeout:?}; it shows:\n{text}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Polls until an element matches `css`.
    pub async fn wait_for(&self, css: &str, timeout: Duration) -> fantoccini::elements::Element {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(element) = self.client.find(Locator::Css(css)).await {
                return element;
            }
            assert!(
                Instant::now() < deadline,
                "no {css} after {timeout:?}; the page shows:\n{}",
                self.text().await
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Saves a screenshot as `NAME.png` when `JRPS_SCREENSHOTS` is set.
    pub async fn screenshot(&self, name: &str) {
        if let Some(dir) = screenshot_dir() {
            let png = self.client.screenshot().await.unwrap();
            std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
        }
    }

    pub async fn close(self) {
        let _ = self.client.clone().close().await;
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        kill_group(&mut self.driver);
    }
}

/// Kills chromedriver and every Chromium process it started (its group).
fn kill_group(driver: &mut Child) {
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{}", driver.id())])
        .stderr(Stdio::null())
        .status();
    let _ = driver.kill();
    let _ = driver.wait();
}

/// Kills chromedriver (and Chromium) if the browser never started.
struct DriverGuard(Option<Child>);

impl Drop for DriverGuard {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            kill_group(&mut child);
        }
    }
}

/// The status code of `url` as the proxy answers it (the browser does not
/// tell; the test's HTTPS client does).
pub async fn status_of(proxy: &Proxy, url: &str) -> u16 {
    proxy
        .client
        .get(url)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// A notebook with one empty code cell and the python3 kernel, made through
/// Jupyter's REST API (through the proxy, with the token).
pub async fn make_notebook(proxy: &Proxy, base: &str, token: &str, name: &str) {
    let notebook: Value = json!({
        "type": "notebook",
        "content": {
            "cells": [{"cell_type": "code", "source": "", "metadata": {}, "outputs": [], "execution_count": null}],
            "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
            "nbformat": 4,
            "nbformat_minor": 5
        }
    });
    let response = proxy
        .client
        .put(format!("{base}api/contents/{name}"))
        .header("Authorization", format!("token {token}"))
        .json(&notebook)
        .send()
        .await
        .unwrap();
    let status = response.status();
    assert!(
        status.is_success(),
        "PUT notebook: {status} {}",
        response.text().await.unwrap()
    );
}

impl Drop for Site {
    /// Ends whatever a failed test left (jobs, sessions) while the proxy is
    /// still up; the proxy and the directories go after this.
    fn drop(&mut self) {
        let Ok(mut child) = self
            .command(&["down", "--all"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
        else {
            return;
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while let Ok(None) = child.try_wait() {
            if Instant::now() >= deadline {
                let _ = child.kill();
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.wait();
    }
}
