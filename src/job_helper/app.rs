//! The session's app on the node, as its owner: what the watches read
//! (Jupyter's REST API with the session's token, code-server's `/healthz`),
//! and how they stop it.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde::Deserialize;

use super::log::log;
use super::process::alive;
use crate::proxy_client::ProxyClientError;
use crate::session_kind::{Activity, SessionKind};

/// How long Jupyter gets to exit after its shutdown request before it is
/// sent SIGTERM.
const STOP_GRACE: Duration = Duration::from_secs(20);

/// The session's app on the node.
pub struct AppApi {
    kind: SessionKind,
    /// `http://ip:port`.
    origin: String,
    token: String,
    http: reqwest::Client,
}

/// code-server's `/healthz`: epoch milliseconds of its last beat, 0 before
/// the first.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Health {
    last_heartbeat: u64,
}

#[derive(Deserialize)]
struct Status {
    last_activity: String,
}

#[derive(Deserialize)]
struct Kernel {
    execution_state: String,
}

impl AppApi {
    pub fn new(
        kind: SessionKind,
        address: SocketAddr,
        token: String,
    ) -> Result<AppApi, ProxyClientError> {
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(ProxyClientError::Client)?;
        Ok(AppApi {
            kind,
            origin: format!("http://{address}"),
            token,
            http,
        })
    }

    pub fn kind(&self) -> SessionKind {
        self.kind
    }

    async fn get<T: serde::de::DeserializeOwned>(&self, path: &str) -> Option<T> {
        let url = format!("{}/api/{path}?no_track_activity=1", self.origin);
        let response = self
            .http
            .get(url)
            .header("Authorization", format!("token {}", self.token))
            .send()
            .await
            .ok()?;
        response.error_for_status().ok()?.json().await.ok()
    }

    /// The app's last activity, as it words it, and whether it is busy
    /// (a kernel running); `None` when it does not answer.
    pub(super) async fn activity(&self) -> Option<(String, bool)> {
        match self.kind.definition().activity {
            Activity::JupyterStatus => self.jupyter_activity().await,
            // A look at /healthz beats no heart (code-server skips it).
            Activity::Heartbeat => {
                let url = format!("{}/healthz", self.origin);
                let response = self.http.get(url).send().await.ok()?;
                let health: Health = response.error_for_status().ok()?.json().await.ok()?;
                Some((health.last_heartbeat.to_string(), false))
            }
        }
    }

    async fn jupyter_activity(&self) -> Option<(String, bool)> {
        let status: Status = self.get("status").await?;
        let kernels: Vec<Kernel> = self.get("kernels").await?;
        // "dead" is not use: a crashed kernel must not keep a node forever.
        let busy = kernels.iter().any(|k| {
            matches!(
                k.execution_state.as_str(),
                "busy" | "starting" | "restarting"
            )
        });
        Some((status.last_activity, busy))
    }

    /// Asks Jupyter to shut down: it stops its kernels and terminals and
    /// exits. Other apps have no such call.
    async fn shutdown(&self) -> bool {
        if !self.kind.is_jupyter() {
            return false;
        }
        let sent = self
            .http
            .post(format!("{}/api/shutdown", self.origin))
            .header("Authorization", format!("token {}", self.token))
            .send()
            .await;
        sent.is_ok_and(|r| r.status().is_success())
    }
}

/// Shuts Jupyter down through its API, then by signal if it lingers;
/// another app by signal at once. `who` names the watch in the job log.
pub async fn stop_app(app: &AppApi, pid: Option<u32>, who: &str) {
    let running = || pid.is_none_or(alive);
    let kind = app.kind();
    if kind.is_jupyter() {
        if !app.shutdown().await {
            log(&format!("{who}: Jupyter did not take the shutdown request"));
        }
        let deadline = Instant::now() + STOP_GRACE;
        while running() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    if let Some(pid) = pid.filter(|_| running()) {
        log(&format!(
            "{who}: {kind} is still running: sending it SIGTERM"
        ));
        if let Some(pid) = rustix::process::Pid::from_raw(pid as i32) {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
    }
}
