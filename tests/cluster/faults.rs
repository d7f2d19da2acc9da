//! What every cluster does within a week, each with what its people see
//! asserted at every step: a job that fails before Jupyter registers, the
//! proxy away while a launch waits, a job that reaches its time limit.

use std::time::{Duration, Instant};

use super::{COMMAND_TIMEOUT, Cluster, Launched, on_client, until};
use crate::proxy::jupyter::run_code;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_on_a_node_outside_the_backend_cidrs_ends_at_once_with_its_cause() {
    let Some(cluster) = Cluster::get() else {
        return;
    };
    let started = Instant::now();
    // Partition `stray` is node3, 198.18.0.30: outside allowed_backend_cidrs.
    let out = cluster
        .jrps("alice", &["up", "-p", "stray", "-t", "10"])
        .await;
    let took = started.elapsed();
    assert_eq!(out.code, Some(1), "{}", out.describe());
    let refusal = "198.18.0.30 is in neither allowed_client_cidrs nor allowed_backend_cidrs";
    assert!(
        out.stderr
            .contains("cause: the proxy refused register: 403 Forbidden")
            && out.stderr.contains(refusal),
        "jrps up must say why in words:\n{}",
        out.describe()
    );
    assert!(
        took < Duration::from_secs(30),
        "jrps up took {took:?} to fail"
    );
    let alias = out.reserved_alias().expect("a reserved alias");

    let row = cluster
        .listing("alice", &alias)
        .await
        .expect("the failed session is listed");
    assert_eq!(row["state"], "ended", "{row}");
    assert_eq!(row["end_reason"], "job-failed", "{row}");
    assert!(
        row["cause"].as_str().unwrap_or("").contains(refusal),
        "{row}"
    );
    let table = cluster.jrps("alice", &["ls"]).await;
    assert!(
        table
            .stdout
            .contains(&format!("{alias}: the proxy refused register")),
        "{}",
        table.describe()
    );
    // Nothing pending at the proxy: its page says the session ended, and why.
    let (status, page) = cluster.page(&alias, "/");
    assert_eq!(status, 404, "{page}");
    assert!(page.contains("failed before Jupyter was running"), "{page}");
    let down = cluster.jrps("alice", &["down", &alias]).await;
    assert_eq!(down.code, Some(0), "{}", down.describe());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proxy_away_for_a_minute_while_a_launch_waits_is_not_a_failed_launch() {
    let Some(cluster) = Cluster::get() else {
        return;
    };
    let mut up = cluster.spawn_jrps("alice", &["up", "-t", "10"]);
    up.wait_for_stderr(COMMAND_TIMEOUT, "the reservation", |line| {
        line.contains("reserved ").then_some(())
    })
    .await;
    let stop = cluster.admin(&["stop-proxy"]);
    assert_eq!(stop.code, Some(0), "{}", stop.describe());
    let stopped = Instant::now();
    up.wait_for_stderr(
        Duration::from_secs(60),
        "the outage on the waiting line",
        |line| line.contains("the proxy is unreachable").then_some(()),
    )
    .await;
    while stopped.elapsed() < Duration::from_secs(60) {
        assert!(
            up.child.try_wait().unwrap().is_none(),
            "jrps up gave up during the outage:\n{}",
            up.stderr()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let start = cluster.admin(&["start", "proxy"]);
    assert_eq!(start.code, Some(0), "{}", start.describe());
    let back = Instant::now();
    let out = up.finish(COMMAND_TIMEOUT).await;
    assert_eq!(out.code, Some(0), "{}", out.describe());
    assert!(!out.stderr.contains("cancel"), "{}", out.describe());
    eprintln!("ready {:?} after the proxy came back", back.elapsed());
    let launched = Launched::parse(&out.stdout);
    let Launched { alias, token } = launched.clone();
    let edge = cluster.edge();
    let answer = on_client(move || async move { run_code(&edge, &alias, &token, "6*7").await });
    assert_eq!(answer.as_deref(), Ok("42"));
    let down = cluster.jrps("alice", &["down", &launched.alias]).await;
    assert_eq!(down.code, Some(0), "{}", down.describe());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_at_its_time_limit_ends_as_time_limit() {
    let Some(cluster) = Cluster::get() else {
        return;
    };
    let launched = cluster.up_ok("bob", &["-t", "1"]).await;
    let started = Instant::now();
    let row = until(
        Duration::from_secs(180),
        "ended by the time limit",
        || async {
            let row = cluster.listing("bob", &launched.alias).await;
            match row {
                Some(row) if row["state"] == "ended" => Ok(row),
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await;
    assert_eq!(row["end_reason"], "time-limit", "{row}");
    eprintln!("ended {:?} after the launch", started.elapsed());
    let (status, page) = cluster.page(&launched.alias, "/lab");
    assert_eq!(status, 404, "{page}");
    assert!(page.contains("reached its time limit"), "{page}");
}
