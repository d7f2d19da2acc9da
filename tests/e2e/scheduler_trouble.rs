//! Scheduler trouble is not session trouble: an `squeue` that hangs or
//! fails leaves `jrps ls` saying "unknown" (never "ended"), in bounded time,
//! and the session's URL serving; `jrps ls` of many sessions asks Slurm once.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::site::{Site, executable};
use crate::proxy::jupyter::jupyter_executable;
use crate::scheduler::slurm::cluster;

/// A stand-in `squeue` in `dir`: it logs each call to `dir/calls`, then
/// does what `dir/mode` says: `hang`, `fail`, or (absent) the real squeue.
fn squeue_stand_in(dir: &Path) {
    let real = std::process::Command::new("sh")
        .args(["-c", "command -v squeue"])
        .output()
        .unwrap();
    let real = String::from_utf8_lossy(&real.stdout).trim().to_owned();
    assert!(!real.is_empty(), "squeue is not on PATH");
    let dir = dir.display();
    executable(
        Path::new(&dir.to_string()),
        "squeue",
        &format!(
            "echo \"$*\" >> {dir}/calls\n\
             case \"$(cat {dir}/mode 2>/dev/null)\" in\n\
             hang) exec sleep 600 ;;\n\
             fail) echo 'slurm_load_jobs error: Unable to contact slurm controller (connect failure)' >&2; exit 1 ;;\n\
             esac\n\
             exec {real} \"$@\""
        ),
    );
}

fn state_of(rows: &[Value], alias: &str) -> String {
    rows.iter()
        .find(|r| r["alias"] == alias)
        .unwrap_or_else(|| panic!("{alias} not in {rows:?}"))["state"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduler_that_hangs_or_fails_shows_unknown_and_the_session_serves_on() {
    if cluster().is_none() {
        return;
    }
    let Some(jupyter) = jupyter_executable() else {
        return;
    };
    let stand_ins = tempfile::tempdir().unwrap();
    squeue_stand_in(stand_ins.path());
    let mut site = Site::new("slurm", &jupyter, "scheduler_timeout = \"0:03\"\n");
    site.path_first(stand_ins.path());
    let (launched, _) = site.up_ok(&["-t", "10"]).await;
    let alias = &launched.alias;
    assert_eq!(state_of(&site.ls_json().await, alias), "running");
    let (base, _) = launched.url.split_once('?').unwrap();
    let api = format!("{base}api/status?token={}", launched.token);

    for mode in ["hang", "fail"] {
        std::fs::write(stand_ins.path().join("mode"), mode).unwrap();
        let started = Instant::now();
        let out = site.run(&["ls", "--json"]).await;
        let took = started.elapsed();
        assert_eq!(out.code, Some(0), "{mode}: {}", out.describe());
        let rows: Vec<Value> = serde_json::from_str(out.stdout.trim()).unwrap();
        assert_eq!(
            state_of(&rows, alias),
            "unknown",
            "{mode}: {}",
            out.describe()
        );
        let row = rows.iter().find(|r| r["alias"] == *alias).unwrap();
        assert_eq!(row["end_reason"], Value::Null, "{row}");
        let why = if mode == "hang" {
            "`squeue` did not answer within 3 s"
        } else {
            "Unable to contact slurm controller"
        };
        assert!(out.stderr.contains(why), "{mode}: {}", out.describe());
        assert!(took < Duration::from_secs(15), "{mode}: ls took {took:?}");
        let table = site.run(&["ls"]).await;
        assert!(
            table.stdout.contains(&format!("{alias} ")) && table.stdout.contains(" unknown "),
            "{mode}: {}",
            table.describe()
        );
        // The route is the proxy's, and the scheduler's trouble leaves it be.
        let (status, body) = site.get(&api).await;
        assert_eq!(status, 200, "{mode}: the session stopped serving: {body}");
    }

    std::fs::remove_file(stand_ins.path().join("mode")).unwrap();
    assert_eq!(state_of(&site.ls_json().await, alias), "running");
    assert_eq!(site.run(&["down", alias]).await.code, Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ls_of_twenty_sessions_asks_slurm_once() {
    if cluster().is_none() {
        return;
    }
    let Some(jupyter) = jupyter_executable() else {
        return;
    };
    let stand_ins = tempfile::tempdir().unwrap();
    squeue_stand_in(stand_ins.path());
    // Held jobs stay queued: twenty sessions without twenty Jupyters.
    let mut site = Site::new(
        "slurm",
        &jupyter,
        "[defaults]\nsbatch_options = [\"--hold\"]\n",
    );
    site.path_first(stand_ins.path());
    let mut aliases = Vec::new();
    for _ in 0..20 {
        let out = site.up(&["-t", "5", "--no-wait", "--json"]).await;
        assert_eq!(out.code, Some(0), "{}", out.describe());
        let launched: Value = serde_json::from_str(out.stdout.trim()).unwrap();
        aliases.push(launched["alias"].as_str().unwrap().to_owned());
    }
    let calls = stand_ins.path().join("calls");
    let _ = std::fs::remove_file(&calls);
    let rows = site.ls_json().await;
    let asked = std::fs::read_to_string(&calls).unwrap_or_default();
    assert_eq!(
        asked.lines().count(),
        1,
        "squeue calls for 20 sessions:\n{asked}"
    );
    for alias in &aliases {
        let row = rows.iter().find(|r| r["alias"] == *alias).unwrap();
        assert_eq!(row["state"], "queued", "{row}");
        assert_eq!(row["reason"], "JobHeldUser", "{row}");
    }
    let down = site.run(&["down", "--all"]).await;
    assert_eq!(down.code, Some(0), "{}", down.describe());
}
