//! The job-helper role (`jrps register`), run by the batch script on the
//! compute node. It finds the port the session's app listens on (Jupyter's
//! `--port=0`: the kernel picks a free one, not jrps; an app that writes no
//! runtime file is given one, `--free-port`), waits until the app answers
//! (jupyter_server writes its runtime file before it binds the port), and
//! registers the session with the proxy from the address the app listens
//! on, because the proxy takes the backend host from the peer address of
//! that call. With `--deregister` (the script's exit trap) it ends the
//! session so the route dies with the job.
//!
//! Every wait is bounded and announces what it waits for in the job log:
//! the original scraped the runtime file in an endless loop. With an idle
//! timeout or a time plan it then stays while the app runs ([`idle`],
//! [`end_watch`]).

mod app;
mod end_watch;
mod extension;
mod idle;
mod log;
mod process;

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Deserialize;
use tokio::signal::unix::SignalKind;

use log::log;
use process::alive;

use crate::api::{EndReason, Register};
use crate::env_vars;
use crate::proxy_client::{Ended, OUTAGE_PATIENCE, ProxyClient, ProxyClientError, through_outages};
use crate::session_dir::{
    REGISTER_SECRET_FILE, SessionDir, SessionDirError, SessionRecord, TOKEN_FILE,
};
use crate::session_kind::{Readiness, SessionKind};
use app::AppApi;

const POLL: Duration = Duration::from_millis(100);

#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    #[error(
        "{} is not set: `jrps register` runs inside a job started by `jrps up`",
        env_vars::SESSION_DIR
    )]
    NoSessionDir,
    #[error("no node address: pass --ip or set {}", env_vars::NODE_IP)]
    NoNodeIp,
    #[error("the session folder names no job: a restart needs the job `jrps up` submitted")]
    NoJobId,
    #[error("Jupyter (pid {pid}) exited before it wrote its port to {}", runtime_dir.display())]
    JupyterExited { pid: u32, runtime_dir: PathBuf },
    #[error("{kind} (pid {pid}) exited before it answered on port {port}")]
    AppExited {
        kind: SessionKind,
        pid: u32,
        port: u16,
    },
    #[error("a {kind} session's app writes no runtime file: pass its port with --port")]
    NoAppPort { kind: SessionKind },
    #[error("no free port on {ip}")]
    NoFreePort {
        ip: IpAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("a {kind} session has no login secret: Jupyter takes the token itself")]
    NoLoginSecret { kind: SessionKind },
    #[error("waited {waited:?} for {what}; giving up")]
    TimedOut { what: String, waited: Duration },
    #[error("cannot write the page inside Jupyter to {}", dir.display())]
    Extension {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start the async runtime")]
    Runtime(#[source] std::io::Error),
    #[error(transparent)]
    SessionDir(#[from] SessionDirError),
    #[error(transparent)]
    Proxy(#[from] ProxyClientError),
}

impl RegisterError {
    pub fn hint(&self) -> Option<String> {
        match self {
            RegisterError::Proxy(error) => error.hint(),
            _ => None,
        }
    }
}

/// The part of Jupyter's `jpserver-<pid>.json` that jrps reads.
#[derive(Debug, Deserialize)]
struct JupyterServerInfo {
    port: u16,
}

/// What the batch script asks of `jrps register`.
#[derive(Debug, Clone)]
pub struct RegisterOptions {
    /// End the session instead (the job's exit trap).
    pub deregister: bool,
    /// Put the session back to waiting for a registration: the scheduler
    /// started the job again after its node failed.
    pub restart: bool,
    /// Jupyter's private runtime dir, where it writes `jpserver-<pid>.json`.
    pub runtime_dir: Option<PathBuf>,
    /// The app's process id, to stop waiting at once if it dies.
    pub pid: Option<u32>,
    /// The port of an app that writes no runtime file.
    pub port: Option<u16>,
    /// Only print a free port on `ip`.
    pub free_port: bool,
    /// Only print the kind's login secret.
    pub login_secret: bool,
    /// The node address Jupyter listens on; calls to the proxy come from it.
    pub ip: Option<IpAddr>,
    /// Upper bound on each wait.
    pub timeout: Duration,
    /// After registering, stay and stop Jupyter once it was idle this long.
    pub idle_timeout: Option<Duration>,
    /// With `deregister`: why the session ends (the exit trap knows).
    pub reason: Option<EndReason>,
    /// With `deregister`: what went wrong, when the batch script found it
    /// (kept in the session folder for `jrps up` and `jrps ls`).
    pub detail: Option<String>,
    /// Only write the page inside Jupyter into this folder.
    pub write_extension: Option<PathBuf>,
}

pub fn register(args: RegisterOptions) -> Result<(), RegisterError> {
    if let Some(dir) = &args.write_extension {
        return extension::write(dir).map_err(|source| RegisterError::Extension {
            dir: dir.clone(),
            source,
        });
    }
    if args.free_port {
        let port = free_port(args.ip.ok_or(RegisterError::NoNodeIp)?)?;
        println!("{port}");
        return Ok(());
    }
    let runtime = crate::proxy_client::runtime().map_err(RegisterError::Runtime)?;
    runtime.block_on(run(args))
}

/// A port the kernel would give a listener on `ip` now. The app binds it a
/// moment later; another process could take it first, and then the app
/// fails to start and the session says so (the usual way with apps that
/// cannot be told to pick one themselves and say which).
fn free_port(ip: IpAddr) -> Result<u16, RegisterError> {
    std::net::TcpListener::bind((ip, 0))
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .map_err(|source| RegisterError::NoFreePort { ip, source })
}

async fn run(args: RegisterOptions) -> Result<(), RegisterError> {
    // Grid Engine's notices (SIGUSR1 at the soft wall time and before a
    // suspension, SIGUSR2 before qdel's kill) reach every process of the
    // job; they are the batch script's to act on, and would otherwise end
    // this helper (their default action) with its watches.
    let _notices = [SignalKind::user_defined1(), SignalKind::user_defined2()]
        .map(|kind| tokio::signal::unix::signal(kind).ok());
    let session_dir = std::env::var_os(env_vars::SESSION_DIR)
        .filter(|v| !v.is_empty())
        .map(SessionDir::open)
        .ok_or(RegisterError::NoSessionDir)?;
    if args.deregister {
        // Recorded first: whatever else fails below, `jrps ls` can say why.
        if let Some(detail) = &args.detail {
            record_failure(&session_dir, detail);
        }
        // The first reason recorded wins: after an idle stop, the exit trap
        // that follows reports "Jupyter exited", which is not the story. A
        // reason that cannot be recorded must not keep the route alive.
        let reason = match args.reason {
            Some(reason) => Some(record_end_reason(&session_dir, reason)),
            None => session_dir.end_reason(),
        };
        // `jrps down` cancels the job and then removes the folder: when
        // it got there first, the session has been ended from the login node.
        let read = session_dir
            .read_record()
            .and_then(|record| Ok((record, session_dir.read_secret(REGISTER_SECRET_FILE)?)));
        let (record, secret) = match read {
            Err(SessionDirError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                log("the session's folder is gone: it was ended from the login node");
                return Ok(());
            }
            read => read?,
        };
        let alias = record.alias.clone();
        let client = ProxyClient::new(&record.proxy_endpoint(), None)?;
        if end_through_outages(&client, &alias, &secret, reason).await? == Ended::Now {
            let why = reason.map_or(String::new(), |r| format!(" ({})", r.words()));
            log(&format!("session {alias} ended{why}; its route is gone"));
        }
        return Ok(());
    }

    let record = session_dir.read_record()?;
    if args.login_secret {
        let kind = record.kind();
        let token = session_dir.read_secret(TOKEN_FILE)?;
        let (_, secret) = kind
            .app_login(&token)
            .ok_or(RegisterError::NoLoginSecret { kind })?;
        println!("{secret}");
        return Ok(());
    }
    let secret = session_dir.read_secret(REGISTER_SECRET_FILE)?;
    if args.restart {
        let job_id = record.job_id.clone().ok_or(RegisterError::NoJobId)?;
        let client = ProxyClient::new(&record.proxy_endpoint(), None)?;
        let request = crate::api::Restart { job_id, secret };
        let waiting = |error: &ProxyClientError, pause: Duration| {
            log(&format!(
                "the proxy cannot take the restart yet ({error}); trying again in {pause:?}"
            ))
        };
        // A refusal is not this run's failure to record: the session may
        // still be served by the first run, or have ended for its reason.
        through_outages(OUTAGE_PATIENCE, waiting, || {
            client.restart(&record.alias, &request)
        })
        .await?;
        log(&format!(
            "{}: the job runs again here; the session waits for this run's Jupyter",
            record.alias
        ));
        return Ok(());
    }
    let registered = go_live(args, &session_dir, &record, &secret).await;
    if let Err(error) = &registered {
        // The cause, where `jrps up` and `jrps ls` on the login node read it.
        record_failure(&session_dir, &crate::error_chain::error_chain(error));
    }
    registered
}

/// Waits for Jupyter, registers it with the proxy and, with an idle
/// timeout, watches it until it is idle.
async fn go_live(
    args: RegisterOptions,
    session_dir: &SessionDir,
    record: &SessionRecord,
    secret: &str,
) -> Result<(), RegisterError> {
    let endpoint = &record.proxy_endpoint();
    let alias = record.alias.clone();
    let secret = secret.to_owned();
    let ip = args.ip.ok_or(RegisterError::NoNodeIp)?;
    let runtime_dir = args.runtime_dir.ok_or(RegisterError::TimedOut {
        what: "a Jupyter runtime dir (pass --runtime-dir)".to_owned(),
        waited: Duration::ZERO,
    })?;
    let timeout = args.timeout;
    let deadline = Instant::now() + timeout;
    let kind = record.kind();

    let port = match kind.definition().ready {
        Readiness::JupyterRuntimeFile => {
            log(&format!(
                "waiting up to {}s for Jupyter to write its port to {}",
                timeout.as_secs(),
                runtime_dir.display()
            ));
            let port = wait_for_port(&runtime_dir, args.pid, deadline, timeout).await?;
            log(&format!("waiting for Jupyter to answer on {ip}:{port}"));
            let alive = || check_alive(args.pid, &runtime_dir);
            wait_for_answer(SocketAddr::new(ip, port), "/api", alive, deadline, timeout).await?;
            port
        }
        Readiness::Http { path } => {
            let port = args.port.ok_or(RegisterError::NoAppPort { kind })?;
            log(&format!(
                "waiting up to {}s for {kind} to answer on {ip}:{port}",
                timeout.as_secs()
            ));
            let alive = || match args.pid {
                Some(pid) if !process::alive(pid) => {
                    Err(RegisterError::AppExited { kind, pid, port })
                }
                _ => Ok(()),
            };
            wait_for_answer(SocketAddr::new(ip, port), path, alive, deadline, timeout).await?;
            port
        }
    };

    log(&format!(
        "registering {alias} with the proxy at {}",
        endpoint.url
    ));
    let client = ProxyClient::new(endpoint, Some(ip))?;
    let job = job_of(record);
    let clock = match (&job, &record.time) {
        (Some(job), Some(plan)) => {
            job.ends_at()
                .await
                .or_else(|| job.reckoned_end())
                .map(|ends_at| {
                    end_watch::first_clock(
                        ends_at,
                        plan.headroom_s,
                        plan.warn_before.clone(),
                        plan.save_before,
                    )
                })
        }
        _ => None,
    };
    let register = Register {
        port,
        secret: secret.clone(),
        clock: clock.clone(),
    };
    register_through_outages(&client, &alias, &register, OUTAGE_PATIENCE).await?;
    log(&format!(
        "{alias} is live: the proxy routes it to {ip}:{port}"
    ));
    if args.idle_timeout.is_none() && clock.is_none() {
        return Ok(());
    }
    let token = session_dir.read_secret(TOKEN_FILE)?;
    let app = AppApi::new(kind, SocketAddr::new(ip, port), token)?;
    // Each watch runs only when it has something to watch; the first to
    // finish decides, and a Jupyter that exits finishes both.
    let idle = async {
        match args.idle_timeout {
            Some(timeout) => {
                let watch = idle::IdleWatch {
                    app: &app,
                    proxy: &client,
                    alias: &alias,
                    secret: &secret,
                    pid: args.pid,
                    timeout,
                };
                (watch.run().await == idle::Outcome::Idle).then_some(EndReason::Idle)
            }
            None => std::future::pending().await,
        }
    };
    let end = async {
        match (job, clock) {
            (Some(job), Some(clock)) => {
                let watch = end_watch::EndWatch {
                    proxy: &client,
                    alias: &alias,
                    secret: &secret,
                    job,
                    pid: args.pid,
                    clock,
                };
                (watch.run().await == end_watch::Outcome::TimeUp).then_some(EndReason::TimeLimit)
            }
            _ => std::future::pending().await,
        }
    };
    let reason = tokio::select! {
        reason = idle => reason,
        reason = end => reason,
    };
    if let Some(reason) = reason {
        record_end_reason(session_dir, reason);
        if let Err(error) = end_through_outages(&client, &alias, &secret, Some(reason)).await {
            log(&format!("could not end {alias} at the proxy: {error}"));
        }
        let who = match reason {
            EndReason::Idle => "idle watch",
            _ => "end watch",
        };
        app::stop_app(&app, args.pid, who).await;
    }
    Ok(())
}

/// The session's job, when the record names one and its scheduler.
fn job_of(record: &SessionRecord) -> Option<end_watch::Job> {
    // The launcher records the id once the scheduler gave it; a job that
    // starts at once may run before that, and its scheduler tells it its own.
    let id = record
        .job_id
        .clone()
        .or_else(|| {
            record
                .scheduler
                .job_id_vars()
                .iter()
                .find_map(|name| std::env::var(name).ok())
        })
        .map(crate::scheduler::JobId)?;
    let vars: std::collections::HashMap<String, String> = std::env::vars().collect();
    let state =
        crate::user_dirs::StateDirs::locate(|name| vars.get(name).map(String::as_str)).ok()?;
    // The job inherits what finds its cluster; the timeout is the default.
    let scheduler = crate::scheduler::build(
        record.scheduler,
        crate::scheduler::CommandEnv::default(),
        state.local_jobs(),
    );
    Some(end_watch::Job {
        scheduler: scheduler.into(),
        id,
    })
}

async fn wait_for_port(
    runtime_dir: &Path,
    pid: Option<u32>,
    deadline: Instant,
    timeout: Duration,
) -> Result<u16, RegisterError> {
    let mut saw_port_zero = false;
    loop {
        // Jupyter in a container has a pid of its own, so any server file in
        // this private runtime dir is ours.
        match read_server_port(runtime_dir) {
            Some(0) => saw_port_zero = true,
            Some(port) => return Ok(port),
            None => {}
        }
        check_alive(pid, runtime_dir)?;
        if Instant::now() >= deadline {
            let what = if saw_port_zero {
                // Measured: 2.19 and older keep `"port": 0` in the file for good.
                format!(
                    "the port in {}/jpserver-*.json, which stayed 0: jupyter_server \
                     before 2.20 does not write the port that --port=0 chose \
                     (install jupyter_server>=2.20)",
                    runtime_dir.display()
                )
            } else {
                format!("a jpserver-*.json in {}", runtime_dir.display())
            };
            return Err(RegisterError::TimedOut {
                what,
                waited: timeout,
            });
        }
        tokio::time::sleep(POLL).await;
    }
}

fn read_server_port(runtime_dir: &Path) -> Option<u16> {
    let entries = std::fs::read_dir(runtime_dir).ok()?;
    entries.flatten().find_map(|entry| {
        let name = entry.file_name();
        let name = name.to_str()?;
        if !(name.starts_with("jpserver-") && name.ends_with(".json")) {
            return None;
        }
        // A file caught half-written fails to parse and is read again next round.
        let info: JupyterServerInfo =
            serde_json::from_slice(&std::fs::read(entry.path()).ok()?).ok()?;
        Some(info.port)
    })
}

/// Until `GET path` answers 2xx, the app exits (`alive` fails) or the
/// deadline passes.
async fn wait_for_answer(
    address: SocketAddr,
    path: &str,
    alive: impl Fn() -> Result<(), RegisterError>,
    deadline: Instant,
    timeout: Duration,
) -> Result<(), RegisterError> {
    let url = format!("http://{address}{path}");
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()
        .map_err(|source| RegisterError::Proxy(ProxyClientError::Client(source)))?;
    loop {
        if let Ok(response) = http.get(&url).send().await
            && response.status().is_success()
        {
            return Ok(());
        }
        alive()?;
        if Instant::now() >= deadline {
            return Err(RegisterError::TimedOut {
                what: format!("an answer at {url}"),
                waited: timeout,
            });
        }
        tokio::time::sleep(POLL).await;
    }
}

fn check_alive(pid: Option<u32>, runtime_dir: &Path) -> Result<(), RegisterError> {
    match pid {
        Some(pid) if !alive(pid) => Err(RegisterError::JupyterExited {
            pid,
            runtime_dir: runtime_dir.to_owned(),
        }),
        _ => Ok(()),
    }
}

/// The reason kept for the session (the first recorded), logging a folder
/// that cannot take it: ending the session matters more than its record.
fn record_end_reason(session_dir: &SessionDir, reason: EndReason) -> EndReason {
    session_dir
        .record_end_reason(reason)
        .unwrap_or_else(|error| {
            log(&format!("could not record why the session ended: {error}"));
            reason
        })
}

/// Records the cause of a failure, logging a folder that cannot take it.
fn record_failure(session_dir: &SessionDir, cause: &str) {
    if let Err(error) = session_dir.record_failure(cause) {
        log(&format!("could not record why the job failed: {error}"));
    }
}

/// Ends the session, waiting out a proxy outage: a route must not outlive
/// its job because the proxy was restarting when the job ended.
async fn end_through_outages(
    client: &ProxyClient,
    alias: &str,
    secret: &str,
    reason: Option<EndReason>,
) -> Result<Ended, ProxyClientError> {
    client
        .end_session(alias, secret, reason, OUTAGE_PATIENCE, |error, pause| {
            log(&format!(
                "the proxy cannot end the session yet ({error}); trying again in {pause:?}"
            ))
        })
        .await
}

/// Registers, trying again for up to `window` while the proxy cannot take it
/// (no replica answers, or its state database is away: 503). The register
/// secret is this job's alone, so "already registered" after a retry means
/// an earlier try landed though its answer was lost; the session's state
/// says so.
async fn register_through_outages(
    client: &ProxyClient,
    alias: &str,
    register: &Register,
    window: Duration,
) -> Result<(), ProxyClientError> {
    let mut tries = 0;
    let waiting = |error: &ProxyClientError, pause: Duration| {
        log(&format!(
            "the proxy cannot take the registration yet ({error}); trying again in {pause:?}"
        ))
    };
    through_outages(window, waiting, || {
        tries += 1;
        let retried = tries > 1;
        async move {
            match client.register(alias, register).await {
                Err(error) if retried && error.status() == Some(reqwest::StatusCode::CONFLICT) => {
                    let status = client.status(alias, None).await?;
                    if status.state == crate::api::SessionState::Ready {
                        Ok(())
                    } else {
                        Err(error)
                    }
                }
                answer => answer.map(|_| ()),
            }
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn wait_on(file: Option<&str>) -> Result<u16, RegisterError> {
        let dir = tempfile::tempdir().unwrap();
        if let Some(json) = file {
            std::fs::write(dir.path().join("jpserver-1234.json"), json).unwrap();
        }
        let timeout = Duration::from_millis(300);
        wait_for_port(dir.path(), None, Instant::now() + timeout, timeout).await
    }

    #[tokio::test]
    async fn the_port_in_the_runtime_file_is_taken() {
        let port = wait_on(Some(r#"{"port": 8123, "pid": 1234}"#)).await;
        assert_eq!(port.unwrap(), 8123);
    }

    #[tokio::test]
    async fn a_port_that_stays_zero_names_the_jupyter_server_version_to_install() {
        let error = wait_on(Some(r#"{"port": 0, "pid": 1234}"#))
            .await
            .unwrap_err()
            .to_string();
        assert!(error.contains("stayed 0"), "{error}");
        assert!(error.contains("jupyter_server>=2.20"), "{error}");
    }

    /// A proxy on loopback that answers each call with the next of
    /// `answers` (status, JSON body) and counts the calls.
    async fn proxy_answering(
        answers: Vec<(u16, &'static str)>,
    ) -> (ProxyClient, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = calls.clone();
        tokio::spawn(async move {
            for (status, body) in answers {
                let (mut stream, _) = listener.accept().await.unwrap();
                let mut buf = vec![0u8; 4096];
                let _ = stream.read(&mut buf).await;
                counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let answer = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\n\
                     content-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(answer.as_bytes()).await;
            }
        });
        let endpoint = crate::proxy_client::ProxyEndpoint {
            url: format!("http://127.0.0.1:{port}"),
            ca_file: None,
            connect_to: Vec::new(),
            munge: None,
        };
        (ProxyClient::new(&endpoint, None).unwrap(), calls)
    }

    const UNAVAILABLE: (u16, &str) = (
        503,
        r#"{"error":"unavailable","detail":"the state database is unreachable"}"#,
    );
    const READY: &str = r#"{"alias":"a-b-c","state":"ready","job_id":null,"expires_at":1}"#;

    fn register() -> Register {
        Register {
            port: 8888,
            secret: "s".into(),
            clock: None,
        }
    }

    #[tokio::test]
    async fn a_registration_waits_out_a_state_database_outage() {
        let (client, calls) = proxy_answering(vec![UNAVAILABLE, UNAVAILABLE, (200, READY)]).await;
        register_through_outages(&client, "a-b-c", &register(), Duration::from_secs(30))
            .await
            .unwrap();
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_retry_that_finds_its_own_registration_landed_succeeds_and_others_fail_at_once() {
        let conflict = (
            409,
            r#"{"error":"conflict","detail":"this session is already registered"}"#,
        );
        let (client, _) = proxy_answering(vec![UNAVAILABLE, conflict, (200, READY)]).await;
        register_through_outages(&client, "a-b-c", &register(), Duration::from_secs(30))
            .await
            .unwrap();
        // A conflict on the first try is someone else's registration.
        let (client, calls) = proxy_answering(vec![conflict]).await;
        let error =
            register_through_outages(&client, "a-b-c", &register(), Duration::from_secs(30))
                .await
                .unwrap_err();
        assert_eq!(error.status(), Some(reqwest::StatusCode::CONFLICT));
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn ending_a_session_waits_out_an_outage_and_a_refusal_does_not() {
        let (client, calls) = proxy_answering(vec![UNAVAILABLE, UNAVAILABLE, (204, "")]).await;
        let ended = end_through_outages(&client, "a-b-c", "s", Some(EndReason::JobFailed))
            .await
            .unwrap();
        assert_eq!(ended, Ended::Now);
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 3);
        let forbidden = (403, r#"{"error":"forbidden","detail":"no"}"#);
        let (client, calls) = proxy_answering(vec![forbidden]).await;
        let error = end_through_outages(&client, "a-b-c", "s", None)
            .await
            .unwrap_err();
        assert_eq!(error.status(), Some(reqwest::StatusCode::FORBIDDEN));
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn no_runtime_file_says_what_was_awaited() {
        let error = wait_on(None).await.unwrap_err().to_string();
        assert!(error.contains("a jpserver-*.json in"), "{error}");
        assert!(!error.contains("2.20"), "{error}");
    }
}
