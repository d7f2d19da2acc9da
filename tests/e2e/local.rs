//! `jrps` with the Local scheduler: the main flow, and `up --no-wait --json`
//! with `url` and `logs` (no Slurm and no real Jupyter needed for that one).

use std::time::{Duration, Instant};

use serde_json::Value;

use super::flow::{ENDED, up_use_down};
use super::site::{Site, executable};
use crate::proxy::jupyter::jupyter_executable;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_up_serves_jupyter_then_down_ends_everything() {
    let Some(jupyter) = jupyter_executable() else {
        return;
    };
    let site = Site::new("local", &jupyter, "");
    up_use_down(&site, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_up_no_wait_json_then_url_and_logs() {
    // A stand-in Jupyter that says hello and never writes a port: the job
    // stays up (its helper waits), which is all `--no-wait` needs.
    let bin = tempfile::tempdir().unwrap();
    let jupyter = executable(
        bin.path(),
        "jupyter",
        "echo \"jrps-e2e: fake jupyter $1 in $PWD\"\nexec sleep 120",
    );
    let site = Site::new("local", &jupyter, "");

    let out = site.up(&["--no-wait", "--json"]).await;
    assert_eq!(out.code, Some(0), "{}", out.describe());
    assert_eq!(
        out.stdout.lines().count(),
        1,
        "one line: {}",
        out.describe()
    );
    let result: Value = serde_json::from_str(out.stdout.trim())
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", out.describe()));
    assert!(result.is_object(), "{result}");
    let alias = result["alias"].as_str().expect("alias").to_owned();
    let url = result["url"].as_str().expect("url").to_owned();
    let job_id = result["job_id"].as_str().expect("job_id").to_owned();
    assert!(job_id.starts_with("local-"), "{result}");
    assert_eq!(result["ready"], false, "{result}");
    let launched = super::site::Launched::parse(&url, &site.proxy);
    assert_eq!(launched.alias, alias);
    assert!(site.session_dir(&alias).is_dir());

    // `jrps url` prints the same URL, by alias and by job id.
    for name in [&alias, &job_id] {
        let printed = site.run(&["url", name]).await;
        assert_eq!(printed.code, Some(0), "{}", printed.describe());
        assert_eq!(printed.stdout, format!("{url}\n"));
    }

    // `jrps logs` shows the job's lines as the job writes them.
    let deadline = Instant::now() + Duration::from_secs(30);
    let wanted = format!(
        "jrps-e2e: fake jupyter lab in {}",
        site.work_dir().display()
    );
    loop {
        let logs = site.run(&["logs", &alias]).await;
        assert_eq!(logs.code, Some(0), "{}", logs.describe());
        if logs.stdout.contains(&wanted) && logs.stdout.contains("jrps register: waiting") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "`jrps logs` lacks the job's lines:\n{}",
            logs.describe()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Not ready: the proxy shows its starting page; after down, ended.
    let (status, _) = site.get(&url).await;
    assert_eq!(status, 503);
    let down = site.run(&["down", &alias]).await;
    assert_eq!(down.code, Some(0), "{}", down.describe());
    assert_eq!(site.get(&url).await.0, ENDED);
    assert_eq!(site.ls_json().await, Vec::<Value>::new());
    assert!(!site.session_dir(&alias).exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_up_and_the_job_try_the_next_proxy_address_when_one_does_not_answer() {
    let Some(jupyter) = jupyter_executable() else {
        return;
    };
    let site = Site::new("local", &jupyter, "");
    // A replica that is down: a port nothing listens on any more.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let toml_path = site.site_toml();
    let toml = std::fs::read_to_string(&toml_path).unwrap();
    let listed = format!("proxy_address = [\"{dead}\", \"{}\"]", site.proxy.addr);
    let toml: String = toml
        .lines()
        .map(|l| {
            if l.starts_with("proxy_address") {
                listed.clone()
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&toml_path, toml).unwrap();

    // `up` reserves through the second address; `ready` means the job's
    // `jrps register` got through too.
    let (launched, out) = site.up_ok(&[]).await;
    assert!(out.stderr.contains("] ready"), "{}", out.describe());
    let status_url = launched.url.replacen("/?token=", "/api/status?token=", 1);
    assert_eq!(site.get(&status_url).await.0, 200, "{}", site.logs());
    let down = site.run(&["down", &launched.alias]).await;
    assert_eq!(down.code, Some(0), "{}", down.describe());
    assert_eq!(site.get(&launched.url).await.0, ENDED);
}
