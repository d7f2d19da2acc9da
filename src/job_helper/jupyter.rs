//! Jupyter's REST API on the node, as its owner (the session's token):
//! what the watches read, and how they stop it.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde::Deserialize;

use super::log::log;
use super::process::alive;
use crate::proxy_client::ProxyClientError;

/// How long a stopped Jupyter gets to exit before it is sent SIGTERM.
const STOP_GRACE: Duration = Duration::from_secs(20);

/// Jupyter's REST API on the node, as its owner (the session's token).
pub struct JupyterApi {
    base: String,
    token: String,
    http: reqwest::Client,
}

#[derive(Deserialize)]
struct Status {
    last_activity: String,
}

#[derive(Deserialize)]
struct Kernel {
    execution_state: String,
}

impl JupyterApi {
    pub fn new(address: SocketAddr, token: String) -> Result<JupyterApi, ProxyClientError> {
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(ProxyClientError::Client)?;
        Ok(JupyterApi {
            base: format!("http://{address}/api"),
            token,
            http,
        })
    }

    async fn get<T: serde::de::DeserializeOwned>(&self, path: &str) -> Option<T> {
        let url = format!("{}/{path}?no_track_activity=1", self.base);
        let response = self
            .http
            .get(url)
            .header("Authorization", format!("token {}", self.token))
            .send()
            .await
            .ok()?;
        response.error_for_status().ok()?.json().await.ok()
    }

    /// Jupyter's last activity and whether a kernel is busy; `None` when it
    /// does not answer.
    pub(super) async fn activity(&self) -> Option<(String, bool)> {
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

    /// Asks Jupyter to shut down: it stops its kernels and terminals and exits.
    pub(super) async fn shutdown(&self) -> bool {
        let sent = self
            .http
            .post(format!("{}/shutdown", self.base))
            .header("Authorization", format!("token {}", self.token))
            .send()
            .await;
        sent.is_ok_and(|r| r.status().is_success())
    }
}

/// Shuts Jupyter down through its API, then by signal if it lingers.
/// `who` names the watch in the job log.
pub async fn stop_jupyter(jupyter: &JupyterApi, pid: Option<u32>, who: &str) {
    let running = || pid.is_none_or(alive);
    if !jupyter.shutdown().await {
        log(&format!("{who}: Jupyter did not take the shutdown request"));
    }
    let deadline = Instant::now() + STOP_GRACE;
    while running() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    if let Some(pid) = pid.filter(|_| running()) {
        log(&format!(
            "{who}: Jupyter is still running: sending it SIGTERM"
        ));
        if let Some(pid) = rustix::process::Pid::from_raw(pid as i32) {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
    }
}
