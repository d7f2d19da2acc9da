//! The main flow, the same on every scheduler: `jrps up` → URL → Jupyter's
//! API and a kernel through the proxy → `jrps ls` → `jrps down` → the URL no
//! longer serves, nothing is left.

use std::time::{Duration, Instant};

use serde_json::Value;

use super::site::{Site, squeue_active, wait_job_gone};
use crate::proxy::jupyter::run_code;

/// What the proxy answers for a session that has ended (`Failure::Ended`):
/// 404, as for any route that is gone (after `jrps down` the URL answers
/// 404, so nothing caches it as alive); the page itself says the session ended.
pub const ENDED: u16 = 404;

pub async fn up_use_down(site: &Site, slurm: bool) {
    let started = Instant::now();
    let (launched, out) = site.up_ok(&[]).await;
    eprintln!(
        "jrps up took {:.1}s; its phases:\n{}",
        started.elapsed().as_secs_f64(),
        out.stderr
    );
    let alias = launched.alias.as_str();
    // Shown with --no-capture: how the wait splits inside the job.
    eprintln!(
        "--- job log ---\n{}--- proxy log ---\n{}",
        site.job_log(alias),
        site.proxy.log()
    );
    assert!(
        out.stderr.contains("] ready"),
        "the last phase is ready:\n{}",
        out.stderr
    );
    // The job's log is the user's alone, whatever the umask and scheduler.
    let logs = site.state_home().join("logs");
    let mode = |path: &std::path::Path| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    };
    assert_eq!(mode(&logs), 0o700, "{}", logs.display());
    assert_eq!(mode(&logs.join(format!("{alias}.log"))), 0o600);

    // Jupyter's REST API through the proxy, with the token of the printed URL.
    let status_url = launched.url.replacen("/?token=", "/api/status?token=", 1);
    let (status, body) = site.get(&status_url).await;
    assert_eq!(status, 200, "{body}\n{}", site.logs());
    let body: Value = serde_json::from_str(&body).unwrap();
    assert!(
        body.get("started").is_some(),
        "Jupyter's /api/status: {body}"
    );

    // A kernel runs code over its WebSocket, as in a browser.
    let value = run_code(&site.proxy, alias, &launched.token, "1+1")
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", site.logs()));
    assert_eq!(value, "2");

    // `jrps ls`, as JSON and as a table.
    let listed = site.ls_json().await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    let row = &listed[0];
    assert_eq!(row["alias"], alias, "{row}");
    assert_eq!(row["state"], "running", "{row}");
    assert_eq!(row["url"], launched.url.split('?').next().unwrap(), "{row}");
    let job_id = row["job_id"].as_str().expect("a job id").to_owned();
    // Slurm enforces the wall time and says how much is left; the local
    // scheduler has none.
    assert_eq!(row["ends_at"].is_u64(), slurm, "{row}");
    if slurm {
        assert!(
            job_id.bytes().all(|b| b.is_ascii_digit()),
            "a Slurm job id: {job_id}"
        );
        assert_eq!(squeue_active(&job_id).as_deref(), Some("RUNNING"));
    } else {
        assert!(job_id.starts_with("local-"), "a local job id: {job_id}");
    }
    let table = site.run(&["ls"]).await;
    assert_eq!(table.code, Some(0), "{}", table.describe());
    let line = table
        .stdout
        .lines()
        .find(|l| l.starts_with(alias))
        .unwrap_or_else(|| panic!("{alias} not in `jrps ls`:\n{}", table.stdout));
    assert!(
        line.split_whitespace().nth(2) == Some("running") && line.contains(&job_id),
        "{line}"
    );

    // The token is a secret: not in the job log, the proxy's log or the
    // submitted script (docs/design.md, security model).
    let script = std::fs::read_to_string(site.session_dir(alias).join("job.sh")).unwrap();
    for (name, text) in [
        ("job log", site.job_log(alias)),
        ("proxy log", site.proxy.log()),
        ("batch script", script),
    ] {
        assert!(!text.is_empty(), "{name} is empty");
        assert!(
            !text.contains(&launched.token),
            "the token is in the {name}"
        );
    }

    // `jrps down` ends it all.
    let down = site.run(&["down", alias]).await;
    assert_eq!(down.code, Some(0), "{}", down.describe());
    assert!(
        down.stderr.contains(&format!("{alias} ended")),
        "{}",
        down.describe()
    );
    if slurm {
        wait_job_gone(&job_id, Duration::from_secs(30)).await;
    }
    // The proxy dropped the route as `down` returned: no waiting here.
    let (status, body) = site.get(&launched.url).await;
    assert_eq!(status, ENDED, "after down: {body}");
    assert!(body.contains("its job was cancelled"), "{body}");
    let (status, _) = site.get(&status_url).await;
    assert_eq!(status, ENDED);
    site.assert_no_live_session(alias).await;
    assert_eq!(site.ls_json().await, Vec::<Value>::new());
    assert!(!site.session_dir(alias).exists(), "the session dir is gone");
}
