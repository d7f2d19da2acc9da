//! What every cluster does within a week, each with what its people see
//! asserted at every step: a job that fails before Jupyter registers, the
//! proxy away while a launch waits, a job that reaches its time limit.

use std::time::{Duration, Instant};

use super::{COMMAND_TIMEOUT, Cluster, Launched, on_client};
use crate::proxy::jupyter::run_code;
use crate::support::until;

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
    let alias = crate::e2e::site::reserved_alias(&out.stderr).expect("a reserved alias");

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
    // At the time limit Slurm shows the job COMPLETING at once, while the
    // script's trap is still recording why (within KillWait): `jrps ls`
    // says "ended" a moment before it can say why. The reason must come.
    let row = until(
        Duration::from_secs(180),
        "ended, with its reason",
        || async {
            let row = cluster.listing("bob", &launched.alias).await;
            match row {
                Some(row) if row["state"] == "ended" && !row["end_reason"].is_null() => Ok(row),
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

/// One look at a session during a fault: what `jrps ls` said, where.
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    at: Duration,
    state: String,
    node: Option<String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_dies_takes_the_session_to_the_requeued_job_on_another_node() {
    let Some(cluster) = Cluster::get() else {
        return;
    };
    let launched = cluster.up_ok("alice", &["-t", "10"]).await;
    let row = cluster.listing("alice", &launched.alias).await.unwrap();
    assert_eq!(row["state"], "running", "{row}");
    let first = row["node"].as_str().unwrap().to_owned();
    let job = row["job_id"].as_str().unwrap().to_owned();
    let Launched { alias, token } = launched.clone();
    let edge = cluster.edge();
    let answer = on_client(move || async move { run_code(&edge, &alias, &token, "6*7").await });
    assert_eq!(answer.as_deref(), Ok("42"));

    // A power cut: every process on the node, Jupyter and slurmd included.
    let kill = cluster.admin(&["kill", &first]);
    assert_eq!(kill.code, Some(0), "{}", kill.describe());
    let cut = Instant::now();
    // Every change `jrps ls` shows on the way, and whether the page said
    // the session is restarting.
    let seen_cell: std::cell::RefCell<Vec<Seen>> = std::cell::RefCell::new(Vec::new());
    let restarting_cell = std::cell::Cell::new(false);
    let (seen_ref, restarting_ref, first_ref, launched_ref) =
        (&seen_cell, &restarting_cell, &first, &launched);
    let serving = until(
        Duration::from_secs(240),
        "the session back",
        || async move {
            let row = cluster.listing("alice", &launched_ref.alias).await.unwrap();
            let now = Seen {
                at: cut.elapsed(),
                state: row["state"].as_str().unwrap_or("").to_owned(),
                node: row["node"].as_str().map(str::to_owned),
            };
            let mut seen = seen_ref.borrow_mut();
            assert_ne!(now.state, "ended", "the session ended: {row}\n{seen:#?}");
            if seen.last().map(|s| (&s.state, &s.node)) != Some((&now.state, &now.node)) {
                seen.push(now.clone());
            }
            let (status, page) = cluster.page(
                &launched_ref.alias,
                &format!("/?token={}", launched_ref.token),
            );
            if status == 503 && page.contains("restarting on another node") {
                restarting_ref.set(true);
            }
            if now.state == "running"
                && now.node.as_deref() != Some(first_ref.as_str())
                && status != 503
            {
                Ok(cut.elapsed())
            } else {
                Err(format!("jrps ls said {seen:#?}"))
            }
        },
    )
    .await;
    let seen = seen_cell.into_inner();
    let restarting_page = restarting_cell.get();
    eprintln!(
        "node {first} cut; jrps ls said, in order: {seen:#?}; serving again after {serving:?}"
    );
    // The truth at each step, in its order: the node stopped answering,
    // Slurm queued the job again, and it runs on the other node.
    let states: Vec<&str> = seen.iter().map(|s| s.state.as_str()).collect();
    let position = |wanted: &str| states.iter().position(|s| *s == wanted);
    let unreachable =
        position("unreachable").unwrap_or_else(|| panic!("never unreachable: {seen:#?}"));
    let requeued = position("requeued").unwrap_or_else(|| panic!("never requeued: {seen:#?}"));
    assert!(unreachable < requeued, "{seen:#?}");
    assert_eq!(
        seen[unreachable].node.as_deref(),
        Some(first.as_str()),
        "{seen:#?}"
    );
    assert!(
        seen[requeued..]
            .iter()
            .all(|s| s.node.as_deref() != Some(first.as_str())),
        "after the requeue, nothing on {first}: {seen:#?}"
    );
    assert!(restarting_page, "the page never said the session restarted");

    // The same URL, a new kernel: it answers again.
    let Launched { alias, token } = launched.clone();
    let edge = cluster.edge();
    let answer = on_client(move || async move { run_code(&edge, &alias, &token, "6*7").await });
    assert_eq!(answer.as_deref(), Ok("42"), "the kernel after the restart");
    let logs = cluster.jrps("alice", &["logs", &launched.alias]).await;
    assert!(
        logs.stdout
            .contains(&format!("run 1 of job {job} on {first}"))
            && logs.stdout.contains(&format!("run 2 of job {job} on ")),
        "the log keeps both runs:\n{}",
        logs.describe()
    );
    let down = cluster.jrps("alice", &["down", &launched.alias]).await;
    assert_eq!(down.code, Some(0), "{}", down.describe());
    // The node back for the tests after this one.
    let back = cluster.admin(&["up"]);
    assert_eq!(back.code, Some(0), "{}", back.describe());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_dies_without_requeue_ends_the_session_as_node_failed() {
    let Some(cluster) = Cluster::get() else {
        return;
    };
    let out = cluster
        .spawn_jrps_at("site-norequeue", "bob", &["up", "-t", "10"])
        .finish(COMMAND_TIMEOUT)
        .await;
    assert_eq!(out.code, Some(0), "{}", out.describe());
    let launched = Launched::parse(&out.stdout);
    let render = cluster
        .spawn_jrps_at("site-norequeue", "bob", &["render", "-t", "10"])
        .finish(COMMAND_TIMEOUT)
        .await;
    assert!(
        render.stdout.contains("#SBATCH --no-requeue\n"),
        "{}",
        render.describe()
    );
    let row = cluster.listing("bob", &launched.alias).await.unwrap();
    let node = row["node"].as_str().unwrap().to_owned();
    let kill = cluster.admin(&["kill", &node]);
    assert_eq!(kill.code, Some(0), "{}", kill.describe());
    let cut = Instant::now();
    let row = until(Duration::from_secs(120), "ended with its node", || async {
        match cluster.listing("bob", &launched.alias).await {
            Some(row) if row["state"] == "ended" => Ok(row),
            Some(row) => {
                assert_ne!(row["state"], "requeued", "{row}");
                Err(row.to_string())
            }
            None => Err("not listed".into()),
        }
    })
    .await;
    eprintln!("ended {:?} after node {node} was cut: {row}", cut.elapsed());
    assert_eq!(row["end_reason"], "node-failed", "{row}");
    let (status, page) = cluster.page(&launched.alias, "/lab");
    assert_eq!(status, 404, "{page}");
    let back = cluster.admin(&["up"]);
    assert_eq!(back.code, Some(0), "{}", back.describe());
}
