//! `jrps` with the Local scheduler: the main flow, and `up --no-wait --json`
//! with `url` and `logs` (no Slurm and no real Jupyter needed for that one).

use std::time::Duration;

use serde_json::Value;

use super::flow::{ENDED, up_use_down};
use super::site::{Site, executable};
use crate::proxy::jupyter::jupyter_executable;
use crate::proxy::replicas::Replicas;

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
    let wanted = format!(
        "jrps-e2e: fake jupyter lab in {}",
        site.work_dir().display()
    );
    crate::support::until(
        Duration::from_secs(30),
        "the job's lines in `jrps logs`",
        || async {
            let logs = site.run(&["logs", &alias]).await;
            assert_eq!(logs.code, Some(0), "{}", logs.describe());
            if logs.stdout.contains(&wanted) && logs.stdout.contains("jrps register: waiting") {
                Ok(())
            } else {
                Err(logs.describe())
            }
        },
    )
    .await;

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
    // A replica that is down: the proxy's port on another loopback address,
    // where nothing listens (the URL's port is the one used).
    let live = site.proxy.addr;
    let dead = std::net::SocketAddr::from(([127, 0, 0, 2], live.port()));
    assert!(
        std::net::TcpStream::connect(dead).is_err(),
        "{dead} answers"
    );
    site.proxy_addresses(&[dead, live]);

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

/// Two replicas on one PostgreSQL database: with one killed, `jrps up`
/// still launches (reserving, and the job registering, through the other),
/// the first session keeps serving, and the restarted replica serves what
/// the other made meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_up_succeeds_with_a_replica_killed_and_its_restart_serves_what_the_other_made() {
    let Some(jupyter) = jupyter_executable() else {
        return;
    };
    let Some(replicas) = Replicas::start_on_one_port("") else {
        return;
    };
    let (a, b) = (replicas.a.addr, replicas.b.addr);
    let site = Site::around(replicas.a, "local", &jupyter, "");
    site.proxy_addresses(&[a, b]);
    let (first, _) = site.up_ok(&[]).await;
    let status_url = |url: &str| url.replacen("/?token=", "/api/status?token=", 1);
    assert_eq!(site.get(&status_url(&first.url)).await.0, 200);

    let mut site = site;
    site.proxy.child.kill().unwrap();
    site.proxy.child.wait().unwrap();
    let through_b = replicas.b.get(status_url(&first.url)).await;
    assert_eq!(through_b.status(), 200, "the first session through B");

    let (second, out) = site.up_ok(&[]).await;
    assert!(out.stderr.contains("] ready"), "{}", out.describe());
    assert_eq!(
        replicas.b.get(status_url(&second.url)).await.status(),
        200,
        "{}",
        site.logs()
    );

    site.proxy = Replicas::restart(&replicas.ca, &replicas.options, &site.proxy);
    for launched in [&first, &second] {
        assert_eq!(
            site.get(&status_url(&launched.url)).await.0,
            200,
            "{} through the restarted A",
            launched.alias
        );
    }
    for launched in [&first, &second] {
        let down = site.run(&["down", &launched.alias]).await;
        assert_eq!(down.code, Some(0), "{}", down.describe());
    }
}
