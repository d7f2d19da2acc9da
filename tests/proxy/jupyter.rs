//! A real JupyterLab behind the proxy, started the way the batch template
//! starts it (origin checks on, no `allow_origin`): the REST API answers
//! through the proxy and a kernel runs `1+1` over its WebSocket channel.
//!
//! Needs `JRPS_TEST_JUPYTER` = path of a `jupyter` executable with
//! jupyterlab installed. Unset: the test fails when `CI` is set, else it is
//! skipped with a notice.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use http::HeaderValue;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use tokio_rustls::client::TlsStream;
use tokio_tungstenite::WebSocketStream;

use super::harness::{Edge, Options, Proxy, random_token, tls_connect};

/// A kernel's channels WebSocket through the proxy.
pub(crate) type Channels = WebSocketStream<TlsStream<TcpStream>>;

pub(crate) fn jupyter_executable() -> Option<PathBuf> {
    match std::env::var_os("JRPS_TEST_JUPYTER") {
        Some(path) => Some(PathBuf::from(path)),
        None => {
            crate::support::missing("JupyterLab (JRPS_TEST_JUPYTER=$(scripts/jupyter-venv))");
            None
        }
    }
}

/// Whether something accepts TCP connections on `127.0.0.1:port` before
/// `timeout`. jupyter_server 2.x writes `jpserver-<pid>.json` before it binds:
/// `start_app` writes the file, and the bind is a callback that runs once the
/// event loop starts. So a port read from the file can refuse connections for
/// a moment, which is why `jrps register` waits for `/api` to answer too.
pub(crate) fn wait_until_listening(port: u16, timeout: Duration) -> bool {
    crate::support::eventually_sync(timeout, || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    })
}

/// A Jupyter server, stopped with SIGTERM (so it shuts its kernels down)
/// when dropped.
struct Jupyter {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Jupyter {
    fn start(jupyter: &Path, dir: &Path, token: &str) -> Jupyter {
        let runtime = dir.join("runtime");
        std::fs::create_dir_all(&runtime).unwrap();
        let log = dir.join("jupyter.log");
        // The settings the launcher's batch template passes; the token comes
        // from the environment, never the command line.
        let mut command = Command::new(jupyter);
        command.arg("lab");
        // Containers often run tests as root, which Jupyter refuses without
        // this flag; on a cluster it runs as the user and never needs it.
        if is_root() {
            command.arg("--allow-root");
        }
        let child = command
            .args([
                "--no-browser",
                "--port=0",
                "--ip=127.0.0.1",
                "--ServerApp.allow_remote_access=True",
                "--ServerApp.trust_xheaders=True",
            ])
            .arg(format!("--ServerApp.root_dir={}", dir.display()))
            .env("JUPYTER_TOKEN", token)
            .env("JUPYTER_RUNTIME_DIR", &runtime)
            .env("JUPYTER_CONFIG_DIR", dir.join("config"))
            .env("JUPYTER_DATA_DIR", dir.join("data"))
            .env("IPYTHONDIR", dir.join("ipython"))
            .env("HOME", dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut jupyter = Jupyter {
            child,
            port: 0,
            log,
        };
        // The server's runtime file names its real port (jpserver-<pid>.json).
        jupyter.port = crate::support::until_sync(
            Duration::from_secs(90),
            "a runtime file from jupyter",
            || {
                let found = std::fs::read_dir(&runtime).unwrap().flatten().find(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    name.starts_with("jpserver-") && name.ends_with(".json")
                });
                if let Some(entry) = found
                    && let Ok(text) = std::fs::read_to_string(entry.path())
                    && let Ok(info) = serde_json::from_str::<Value>(&text)
                    && let Some(port) = info["port"].as_u64()
                {
                    return Ok(port as u16);
                }
                if let Ok(Some(status)) = jupyter.child.try_wait() {
                    panic!("jupyter exited ({status}):\n{}", jupyter.log());
                }
                Err(jupyter.log())
            },
        );
        assert!(
            wait_until_listening(jupyter.port, Duration::from_secs(30)),
            "jupyter named port {} but does not listen there:\n{}",
            jupyter.port,
            jupyter.log()
        );
        jupyter
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Jupyter {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let child = &mut self.child;
        if crate::support::eventually_sync(Duration::from_secs(15), || {
            matches!(child.try_wait(), Ok(Some(_)))
        }) {
            return;
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

fn execute_request(msg_id: &str, code: &str) -> String {
    json!({
        "header": {
            "msg_id": msg_id,
            "username": "jrps-test",
            "session": "jrps-test-session",
            "msg_type": "execute_request",
            "version": "5.3",
            "date": "2026-11-27T00:00:00.000Z"
        },
        "parent_header": {},
        "metadata": {},
        "content": {
            "code": code,
            "silent": false,
            "store_history": false,
            "user_expressions": {},
            "allow_stdin": false,
            "stop_on_error": true
        },
        "buffers": [],
        "channel": "shell"
    })
    .to_string()
}

/// The Origin a browser sends from the session's own page.
pub(crate) fn origin(proxy: &impl Edge, alias: &str) -> String {
    proxy.session_url(alias, "")
}

/// Opens `/lab?token=` as a browser first does and returns the cookies set
/// (`name=value`): the proxy's and Jupyter's login cookie.
pub(crate) async fn lab_cookies(
    proxy: &impl Edge,
    alias: &str,
    token: &str,
) -> Result<Vec<String>, String> {
    let r = proxy
        .edge_client()
        .get(proxy.session_url(alias, &format!("/lab?token={token}")))
        .send()
        .await
        .map_err(|e| format!("GET /lab: {e}"))?;
    if r.status() != 200 {
        return Err(format!("GET /lab answered {}", r.status()));
    }
    Ok(r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .map(str::to_owned)
        .collect())
}

/// Starts a kernel with a POST carrying an Origin, like the browser's fetch;
/// returns its id.
pub(crate) async fn start_kernel(
    proxy: &impl Edge,
    alias: &str,
    token: &str,
) -> Result<String, String> {
    let r = proxy
        .edge_client()
        .post(proxy.session_url(alias, "/api/kernels"))
        .header("authorization", format!("token {token}"))
        .header("origin", origin(proxy, alias))
        .json(&json!({"name": "python3"}))
        .send()
        .await
        .map_err(|e| format!("POST /api/kernels: {e}"))?;
    if r.status() != 201 {
        return Err(format!("POST /api/kernels answered {}", r.status()));
    }
    let kernel: Value = r.json().await.map_err(|e| format!("kernel JSON: {e}"))?;
    kernel["id"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("no kernel id in {kernel}"))
}

/// Opens a kernel's channels as the browser does: no token in the URL,
/// cookies only, and the given Origin.
pub(crate) async fn connect_channels(
    proxy: &impl Edge,
    alias: &str,
    kernel_id: &str,
    origin: &str,
    cookie_header: &str,
) -> Result<(Channels, http::Response<Option<Vec<u8>>>), tokio_tungstenite::tungstenite::Error> {
    let url = proxy
        .session_url(alias, &format!("/api/kernels/{kernel_id}/channels"))
        .replacen("https://", "wss://", 1);
    let mut request = url.as_str().into_client_request().unwrap();
    let headers = request.headers_mut();
    headers.insert("origin", HeaderValue::from_str(origin).unwrap());
    headers.insert("cookie", HeaderValue::from_str(cookie_header).unwrap());
    let tcp = TcpStream::connect(proxy.edge_addr()).await.unwrap();
    let tls = tls_connect(proxy.edge_ca(), tcp, &proxy.session_host(alias)).await;
    tokio_tungstenite::client_async(request, tls).await
}

/// Sends `code` for execution and returns the `text/plain` of its result;
/// `None` when the channel closed without one. A kernel error panics.
pub(crate) async fn execute(ws: &mut Channels, msg_id: &str, code: &str) -> Option<String> {
    ws.send(Message::text(execute_request(msg_id, code)))
        .await
        .unwrap();
    while let Some(message) = ws.next().await {
        let Ok(Message::Text(text)) = message else {
            continue;
        };
        let Ok(msg) = serde_json::from_str::<Value>(text.as_str()) else {
            continue;
        };
        if msg["msg_type"] == "execute_result" && msg["parent_header"]["msg_id"] == msg_id {
            return msg["content"]["data"]["text/plain"]
                .as_str()
                .map(str::to_owned);
        }
        if msg["msg_type"] == "error" {
            panic!("kernel error: {msg}");
        }
    }
    None
}

/// Starts a kernel and opens its channels as the page would, with the
/// page's cookies and Origin; returns them and the kernel's id.
async fn open_kernel(
    proxy: &impl Edge,
    alias: &str,
    token: &str,
    cookies: &[String],
) -> Result<(Channels, String), String> {
    let kernel_id = start_kernel(proxy, alias, token).await?;
    let (ws, _) = connect_channels(
        proxy,
        alias,
        &kernel_id,
        &origin(proxy, alias),
        &cookies.join("; "),
    )
    .await
    .map_err(|e| format!("kernel WebSocket refused: {e}"))?;
    Ok((ws, kernel_id))
}

/// Starts `code` in a new kernel and leaves it running with no client
/// connected, as a browser tab closed on a long cell does; returns once the
/// kernel says it is busy with it.
pub(crate) async fn start_code(
    proxy: &impl Edge,
    alias: &str,
    token: &str,
    code: &str,
) -> Result<(), String> {
    let cookies = lab_cookies(proxy, alias, token).await?;
    let (mut ws, _) = open_kernel(proxy, alias, token, &cookies).await?;
    ws.send(Message::text(execute_request("jrps-busy", code)))
        .await
        .map_err(|e| format!("send: {e}"))?;
    let busy = async {
        while let Some(Ok(Message::Text(text))) = ws.next().await {
            let msg: Value = serde_json::from_str(text.as_str()).unwrap_or_default();
            if msg["msg_type"] == "status"
                && msg["parent_header"]["msg_id"] == "jrps-busy"
                && msg["content"]["execution_state"] == "busy"
            {
                return true;
            }
        }
        false
    };
    match tokio::time::timeout(Duration::from_secs(90), busy).await {
        Ok(true) => {
            let _ = ws.close(None).await;
            Ok(())
        }
        _ => Err("the kernel never said it was busy".to_owned()),
    }
}

/// Shuts a kernel down through the proxy; returns the status.
pub(crate) async fn delete_kernel(
    proxy: &impl Edge,
    alias: &str,
    token: &str,
    kernel_id: &str,
) -> u16 {
    proxy
        .edge_client()
        .delete(proxy.session_url(alias, &format!("/api/kernels/{kernel_id}")))
        .header("authorization", format!("token {token}"))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// The whole browser path in one call: open the lab page with the token,
/// start a kernel, run `code` over its WebSocket, shut the kernel down.
/// Returns the result's `text/plain`, or what went wrong.
pub(crate) async fn run_code(
    proxy: &impl Edge,
    alias: &str,
    token: &str,
    code: &str,
) -> Result<String, String> {
    let cookies = lab_cookies(proxy, alias, token).await?;
    if !cookies
        .iter()
        .any(|c| c.starts_with("__Host-jrps_session="))
        || cookies.len() < 2
    {
        return Err(format!(
            "expected the proxy's and Jupyter's cookies, got {cookies:?}"
        ));
    }
    let (mut ws, kernel_id) = open_kernel(proxy, alias, token, &cookies).await?;
    let value = tokio::time::timeout(Duration::from_secs(90), execute(&mut ws, "jrps-e2e", code))
        .await
        .map_err(|_| "no execute_result in 90 s".to_owned())?
        .ok_or_else(|| "the kernel channel closed without a result".to_owned())?;
    let _ = ws.close(None).await;
    match delete_kernel(proxy, alias, token, &kernel_id).await {
        204 => Ok(value),
        status => Err(format!("DELETE kernel answered {status}")),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jupyterlab_through_the_proxy_runs_a_kernel() {
    let Some(jupyter_bin) = jupyter_executable() else {
        return;
    };
    let proxy = Proxy::start(Options::default());
    let token = random_token();
    let jupyter_dir = tempfile::tempdir().unwrap();
    let jupyter = {
        let (bin, dir, token) = (
            jupyter_bin.clone(),
            jupyter_dir.path().to_owned(),
            token.clone(),
        );
        tokio::task::spawn_blocking(move || Jupyter::start(&bin, &dir, &token))
            .await
            .unwrap()
    };
    let s = proxy.ready_session(&token, jupyter.port).await;
    let origin = origin(&proxy, &s.alias);

    // REST through the proxy, token in the query (what the printed URL does).
    let r = proxy
        .get(proxy.url(&s.alias, &format!("/api/status?token={token}")))
        .await;
    assert_eq!(r.status(), 200, "{}", jupyter.log());
    let status: Value = r.json().await.unwrap();
    assert!(status.get("started").is_some(), "{status}");

    // The JupyterLab page, as a browser first opens it: both the proxy and
    // Jupyter answer the token with their cookies, which carry the rest.
    let cookies = lab_cookies(&proxy, &s.alias, &token).await.unwrap();
    assert!(
        cookies
            .iter()
            .any(|c| c.starts_with("__Host-jrps_session=")),
        "{cookies:?}"
    );
    assert!(
        cookies.len() >= 2,
        "Jupyter set no login cookie: {cookies:?}"
    );
    let cookie_header = cookies.join("; ");

    let kernel_id = start_kernel(&proxy, &s.alias, &token)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", jupyter.log()));

    // A foreign Origin is refused by Jupyter itself (origin checks are on),
    // the page's own is accepted.
    match connect_channels(
        &proxy,
        &s.alias,
        &kernel_id,
        "https://evil.example",
        &cookie_header,
    )
    .await
    {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 403)
        }
        Err(other) => panic!("foreign Origin: unexpected error {other}"),
        Ok(_) => panic!("Jupyter accepted a WebSocket from a foreign Origin"),
    }
    let (mut ws, response) =
        connect_channels(&proxy, &s.alias, &kernel_id, &origin, &cookie_header)
            .await
            .unwrap_or_else(|e| panic!("kernel WebSocket refused: {e}\n{}", jupyter.log()));
    assert_eq!(response.status(), 101);
    let result =
        tokio::time::timeout(Duration::from_secs(90), execute(&mut ws, "jrps-1", "1+1")).await;
    let value = result.unwrap_or_else(|_| panic!("no execute_result in time\n{}", jupyter.log()));
    assert_eq!(value.as_deref(), Some("2"));
    let _ = ws.close(None).await;

    // Shut the kernel down through the proxy as well.
    assert_eq!(
        delete_kernel(&proxy, &s.alias, &token, &kernel_id).await,
        204
    );
    drop(jupyter);
}
