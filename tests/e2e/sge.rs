//! `scheduler = "sge"` on Grid Engine's real daemons (`scripts/sge up`:
//! Debian's sge_qmaster and sge_execd on a host of their own name): a launch
//! through qsub serves a kernel, `jrps ls` lists it from one qstat, `jrps
//! down` (qdel, whose SIGUSR2 the job's trap takes) ends it as cancelled,
//! and a session's time limit (the soft wall time's SIGUSR1) as time limit.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::site::Site;
use crate::proxy::jupyter::{jupyter_executable, run_code};

/// The folder of Grid Engine's commands from `scripts/sge up`.
fn sge_bin() -> Option<PathBuf> {
    match std::env::var_os("JRPS_SGE_BIN") {
        Some(dir) => Some(PathBuf::from(dir)),
        None => {
            crate::support::missing("Grid Engine (JRPS_SGE_BIN; ./scripts/test starts it)");
            None
        }
    }
}

fn row<'a>(rows: &'a [Value], alias: &str) -> &'a Value {
    rows.iter()
        .find(|r| r["alias"] == alias)
        .unwrap_or_else(|| panic!("{alias} not in {rows:?}"))
}

fn site(bin: &std::path::Path, jupyter: &std::path::Path) -> Site {
    let mut site = Site::new("sge", jupyter, "[partitions.\"all.q\"]\ndefault = true\n");
    site.path_first(bin);
    site
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_launch_through_grid_engine_serves_lists_and_is_cancelled() {
    let (Some(bin), Some(jupyter)) = (sge_bin(), jupyter_executable()) else {
        return;
    };
    let site = site(&bin, &jupyter);
    let started = Instant::now();
    let (launched, _) = site.up_ok(&["-t", "10", "--cpus", "2"]).await;
    let took = started.elapsed();
    let alias = &launched.alias;

    let value = run_code(&site.proxy, alias, &launched.token, "6*7")
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", site.logs()));
    assert_eq!(value, "42");

    let rows = site.ls_json().await;
    let listed = row(&rows, alias);
    assert_eq!(listed["state"], "running", "{listed}");
    assert_eq!(listed["node"], "sgehost", "{listed}");
    let job_id = listed["job_id"].as_str().unwrap().to_owned();
    let left = listed["ends_at"].as_u64().expect("an end") - crate::support::unix_now();
    assert!((500..=600).contains(&left), "{left} s left: {listed}");
    // Grid Engine's own view: running in all.q on two slots of smp.
    let qstat = std::process::Command::new(bin.join("qstat"))
        .args(["-j", &job_id])
        .output()
        .unwrap();
    let qstat = String::from_utf8_lossy(&qstat.stdout);
    assert!(
        qstat.contains("hard resource_list:         h_rt=660,s_rt=600")
            && qstat.contains("parallel environment:  smp range: 2")
            && qstat.contains("env_list:                   TERM=NONE,JRPS_SESSION_DIR="),
        "{qstat}"
    );

    let down = site.run(&["down", alias]).await;
    assert_eq!(down.code, Some(0), "{}", down.describe());
    site.assert_no_live_session(alias).await;
    let (status, page) = site.get(launched.url.split('?').next().unwrap()).await;
    assert_eq!(status, 404, "{page}");
    assert!(page.contains("was cancelled"), "{page}");
    // The job's own trap ran on qdel's SIGUSR2 (before its SIGKILL): it
    // ended the route as cancelled, or found that `jrps down`, racing it,
    // had already removed the session's folder.
    crate::support::until(
        Duration::from_secs(30),
        "the job's trap in its log",
        || async {
            let log = site.job_log(alias);
            let ended = format!("session {alias} ended (cancelled); its route is gone");
            if log.contains(&ended)
                || log.contains("the session's folder is gone: it was ended from the login node")
            {
                Ok(())
            } else {
                Err(log)
            }
        },
    )
    .await;
    eprintln!("sge: up in {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_ends_at_its_soft_wall_time_as_a_time_limit() {
    let (Some(bin), Some(jupyter)) = (sge_bin(), jupyter_executable()) else {
        return;
    };
    let site = site(&bin, &jupyter);
    let started = Instant::now();
    let (launched, _) = site.up_ok(&["-t", "1"]).await;
    let alias = &launched.alias;
    crate::support::until(Duration::from_secs(150), "ended (time limit)", || async {
        let rows = site.ls_json().await;
        let listed = row(&rows, alias);
        if listed["state"] == "ended" && listed["end_reason"] == "time-limit" {
            Ok(())
        } else {
            Err(format!("{listed}"))
        }
    })
    .await;
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(55) && took < Duration::from_secs(115),
        "ended after {took:?}, not at its minute; the job's log:\n{}",
        site.job_log(alias)
    );
    let (status, page) = site.get(launched.url.split('?').next().unwrap()).await;
    assert_eq!(status, 404, "{page}");
}
