//! Idle shutdown and Python environments on the real Slurm with real
//! JupyterLab: a session nobody uses ends by itself and gives its node back,
//! a busy kernel or traffic through the proxy keeps it, and `--venv` runs
//! Jupyter from that environment.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::flow::ENDED;
use super::site::{Launched, Site, squeue_active, wait_job_gone};
use crate::proxy::jupyter::{jupyter_executable, run_code, start_code};
use crate::scheduler::slurm::cluster;

/// The idle timeout these tests set, as `--idle-timeout` takes it.
const IDLE: &str = "0:20";
const IDLE_S: u64 = 20;

fn slurm_and_jupyter() -> Option<std::path::PathBuf> {
    cluster()?;
    jupyter_executable()
}

/// The session's row of `jrps ls --json`.
async fn listed(site: &Site, alias: &str) -> Value {
    site.ls_json()
        .await
        .into_iter()
        .find(|row| row["alias"] == alias)
        .unwrap_or_else(|| panic!("{alias} not in jrps ls"))
}

/// `jrps up` with ten minutes and the idle timeout; the URL and the job id.
async fn up_with_idle_timeout(site: &Site) -> (Launched, String) {
    let (launched, _) = site.up_ok(&["-t", "10", "--idle-timeout", IDLE]).await;
    let job_id = listed(site, &launched.alias).await["job_id"]
        .as_str()
        .unwrap()
        .to_owned();
    (launched, job_id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slurm_idle_session_ends_by_itself_unless_traffic_keeps_it() {
    let Some(jupyter) = slurm_and_jupyter() else {
        return;
    };
    let site = Site::new("slurm", &jupyter, "");
    let (launched, job_id) = up_with_idle_timeout(&site).await;
    let alias = launched.alias.as_str();
    let row = listed(&site, alias).await;
    let ends_at = row["ends_at"].as_u64().expect("a running job's end time");
    let table = site.run(&["ls"]).await;
    eprintln!("jrps ls while it runs:\n{}", table.stdout);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(
        (now + 9 * 60..=now + 10 * 60).contains(&ends_at),
        "ten minutes of wall time, less the start: {row}"
    );

    // Requests Jupyter itself does not count as activity (`/api/status`),
    // so only the proxy's record of them keeps the session: twice the
    // timeout of them, and it is still there.
    let status_url = launched.url.replacen("/?token=", "/api/status?token=", 1);
    let traffic_until = Instant::now() + Duration::from_secs(2 * IDLE_S);
    let quiet_from = loop {
        assert_eq!(site.get(&status_url).await.0, 200, "{}", site.logs());
        let sent = Instant::now();
        if sent >= traffic_until {
            break sent;
        }
        tokio::time::sleep(Duration::from_secs(4)).await;
    };
    assert_eq!(
        squeue_active(&job_id).as_deref(),
        Some("RUNNING"),
        "traffic kept it"
    );

    // Then no traffic at all: it ends by itself, its job with it.
    wait_job_gone(&job_id, Duration::from_secs(IDLE_S * 3)).await;
    let took = quiet_from.elapsed();
    eprintln!(
        "idle timeout {IDLE_S}s: the job was gone {:.1}s after the last request",
        took.as_secs_f64()
    );
    assert!(
        took >= Duration::from_secs(IDLE_S),
        "ended after {took:?}, before its idle timeout"
    );

    let row = listed(&site, alias).await;
    assert_eq!(
        (&row["state"], &row["end_reason"]),
        (&Value::from("ended"), &Value::from("idle")),
        "{row}"
    );
    let table = site.run(&["ls"]).await;
    assert!(
        table.stdout.contains("ended (idle)"),
        "{}",
        table.describe()
    );
    eprintln!("jrps ls once it ended:\n{}", table.stdout);
    let (status, page) = site.get(&launched.url).await;
    assert_eq!(status, ENDED);
    assert!(
        page.contains("nobody used it for its idle timeout"),
        "{page}"
    );
    let (_, proxy) = site.proxy_session(alias).await;
    assert_eq!(proxy["end_reason"], "idle", "{proxy}");
    assert!(
        site.job_log(alias).contains("idle watch: no use for"),
        "{}",
        site.job_log(alias)
    );
    let down = site.run(&["down", alias]).await;
    assert_eq!(down.code, Some(0), "{}", down.describe());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slurm_a_busy_kernel_with_no_browser_is_not_idle() {
    let Some(jupyter) = slurm_and_jupyter() else {
        return;
    };
    let site = Site::new("slurm", &jupyter, "");
    let (launched, job_id) = up_with_idle_timeout(&site).await;
    let alias = launched.alias.as_str();
    start_code(
        &site.proxy,
        alias,
        &launched.token,
        "import time; time.sleep(60)",
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", site.logs()));
    // Twice the idle timeout with no request at all: only the kernel works.
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(2 * IDLE_S)).await;
    assert_eq!(
        squeue_active(&job_id).as_deref(),
        Some("RUNNING"),
        "stopped {:?} into a running cell\n{}",
        started.elapsed(),
        site.job_log(alias)
    );
    assert_eq!(site.proxy_session(alias).await.1["state"], "ready");
    let down = site.run(&["down", alias]).await;
    assert_eq!(down.code, Some(0), "{}", down.describe());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slurm_venv_runs_jupyter_from_that_environment() {
    let Some(jupyter) = slurm_and_jupyter() else {
        return;
    };
    let venv = jupyter
        .parent()
        .and_then(Path::parent)
        .expect("the test jupyter is <venv>/bin/jupyter")
        .to_owned();
    // A site `jupyter` that does not exist: only the environment can serve.
    let site = Site::new("slurm", Path::new("/nonexistent/bin/jupyter"), "");
    let venv_arg = venv.display().to_string();
    let (launched, _) = site.up_ok(&["--venv", &venv_arg]).await;
    let code = "import os, sys\n(6 * 7, sys.prefix, open(f'/proc/{os.getppid()}/cmdline').read().split('\\0')[0])";
    let value = run_code(&site.proxy, &launched.alias, &launched.token, code)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", site.logs()));
    // The kernel's interpreter, and the Jupyter server that started it
    // (argv[0]: the venv's python, python3 or python3.N).
    let venv = venv.display().to_string();
    assert!(
        value.starts_with(&format!("(42, '{venv}', '{venv}/bin/python")),
        "{value}\n{}",
        site.job_log(&launched.alias)
    );
    let down = site.run(&["down", &launched.alias]).await;
    assert_eq!(down.code, Some(0), "{}", down.describe());
}
