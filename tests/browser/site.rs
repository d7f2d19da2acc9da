//! What a browser test needs beyond the e2e tests' hermetic [`Site`]:
//! the tools, chromedriver on a free loopback port with one Chromium
//! session, and small helpers. Every wait has a deadline; everything
//! started is stopped on drop.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tempfile::TempDir;

pub use crate::e2e::site::Site;
use crate::proxy::harness::Proxy;

/// What the browser tests need from the machine.
pub struct Tools {
    pub chromium: PathBuf,
    pub chromedriver: PathBuf,
    pub jupyter: PathBuf,
}

fn required(var: &str, hint: &str) -> Option<PathBuf> {
    match std::env::var_os(var) {
        Some(path) if Path::new(&path).exists() => Some(PathBuf::from(path)),
        _ => {
            crate::support::missing(&format!("{var} ({hint})"));
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

/// A site for a browser test: the e2e one, plus the user's own Jupyter
/// settings: no "news?" pop-up, which would cover screenshots, and the
/// application object on `window.jupyterapp` (JupyterLab and Notebook 7),
/// so the test can read the kernel state the status indicator shows (its
/// text and markup change between releases; `ISessionContext` does not).
pub fn browser_site(scheduler: &str, jupyter: &Path) -> Site {
    browser_site_with(scheduler, jupyter, "", "")
}

/// As [`browser_site`], with `site_extra` in site.toml, `proxy_extra` in
/// proxy.toml, and JupyterLab's autosave off, so that only jrps's save
/// before the end can put typed text on disk.
pub fn browser_site_with(
    scheduler: &str,
    jupyter: &Path,
    site_extra: &str,
    proxy_extra: &str,
) -> Site {
    let site = Site::with_proxy(scheduler, jupyter, site_extra, proxy_extra);
    let config = site.home().join(".jupyter");
    let settings = config.join("lab/user-settings/@jupyterlab");
    let apputils = settings.join("apputils-extension");
    std::fs::create_dir_all(&apputils).unwrap();
    std::fs::write(
        apputils.join("notification.jupyterlab-settings"),
        r#"{"fetchNews": "false"}"#,
    )
    .unwrap();
    if !site_extra.is_empty() {
        let docmanager = settings.join("docmanager-extension");
        std::fs::create_dir_all(&docmanager).unwrap();
        std::fs::write(
            docmanager.join("plugin.jupyterlab-settings"),
            r#"{"autosave": false}"#,
        )
        .unwrap();
    }
    std::fs::write(
        config.join("jupyter_lab_config.json"),
        r#"{"LabApp": {"expose_app_in_browser": true}}"#,
    )
    .unwrap();
    std::fs::write(
        config.join("jupyter_notebook_config.json"),
        r#"{"JupyterNotebookApp": {"expose_app_in_browser": true}}"#,
    )
    .unwrap();
    site
}

/// What JupyterLab's open notebook `path` shows of its kernel, as
/// `connection/status` (e.g. `connected/idle`), or why there is none yet.
const KERNEL_STATE_JS: &str = r#"
const app = window.jupyterapp;
if (!app) { return "no window.jupyterapp"; }
let widget = null;
for (const open of app.shell.widgets("main")) {
    if (open.context && open.context.path === arguments[0]) { widget = open; }
}
if (!widget) { return "the notebook is not open"; }
const kernel = widget.sessionContext.session && widget.sessionContext.session.kernel;
if (!kernel) { return "no kernel yet"; }
return kernel.connectionStatus + "/" + widget.sessionContext.kernelDisplayStatus;
"#;

/// The SPKI pin Chromium accepts for the proxy's certificate.
pub fn spki_pin(proxy: &Proxy) -> String {
    let key = rcgen::KeyPair::from_pem(&proxy.ca.key_pem).unwrap();
    let digest = Sha256::digest(rcgen::PublicKeyData::subject_public_key_info(&key));
    base64::engine::general_purpose::STANDARD.encode(digest)
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
        crate::support::until(
            Duration::from_secs(30),
            "chromedriver listening",
            || async {
                TcpStream::connect_timeout(&addr, Duration::from_millis(200))
                    .map(drop)
                    .map_err(|error| error.to_string())
            },
        )
        .await;
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
        let what = format!("{wanted:?} on the page");
        crate::support::until(timeout, &what, || async {
            let text = self.text().await;
            if text.contains(wanted) {
                Ok(text)
            } else {
                Err(format!("it shows:\n{text}"))
            }
        })
        .await
    }

    /// Polls until the notebook `path` is open and its kernel is
    /// connected and idle: what the kernel indicator shows a person before
    /// they run a cell. A run sent before the connection is up is lost.
    pub async fn wait_for_idle_kernel(&self, path: &str, timeout: Duration) {
        let what = format!("the kernel of {path} connected and idle");
        crate::support::until(timeout, &what, || async {
            let state = match self
                .client
                .execute(KERNEL_STATE_JS, vec![json!(path)])
                .await
            {
                Ok(Value::String(state)) => state,
                Ok(other) => format!("unexpected {other}"),
                Err(error) => format!("script failed: {error}"),
            };
            if state == "connected/idle" {
                Ok(())
            } else {
                Err(format!("{state}; the page shows:\n{}", self.text().await))
            }
        })
        .await
    }

    /// Polls until an element matches `css`.
    pub async fn wait_for(&self, css: &str, timeout: Duration) -> fantoccini::elements::Element {
        crate::support::until(timeout, css, || async {
            match self.client.find(Locator::Css(css)).await {
                Ok(element) => Ok(element),
                Err(_) => Err(format!("the page shows:\n{}", self.text().await)),
            }
        })
        .await
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
    proxy.get(url).await.status().as_u16()
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
