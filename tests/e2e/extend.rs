//! `jrps extend` on the real Slurm: a session asked for 2 minutes on a
//! partition with 5 minutes of `extend_max` is submitted for 7, extended by
//! 3, still serves at minute 3 and ends by itself at about minute 5 with
//! "ended (time limit)", well before Slurm's limit. Extending beyond the
//! headroom, or a session whose partition has none, is exit 2 and changes
//! nothing; someone without the session's secret cannot extend it.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::site::Site;
use crate::proxy::jupyter::jupyter_executable;
use crate::scheduler::slurm::cluster;

const SITE: &str = "[partitions.debug]\nmax_time = 30\nextend_max = 5\n\
                    [partitions.compute]\ndefault = true\n";

fn row<'a>(rows: &'a [Value], alias: &str) -> &'a Value {
    rows.iter()
        .find(|r| r["alias"] == alias)
        .unwrap_or_else(|| panic!("{alias} not in {rows:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extend_moves_the_end_within_the_headroom_and_the_job_ends_the_session_there() {
    if cluster().is_none() {
        return;
    }
    let Some(jupyter) = jupyter_executable() else {
        return;
    };
    let site = Site::new("slurm", &jupyter, SITE);

    // A partition without extend_max: the command names the setting, and
    // the job was submitted with exactly the time asked.
    let plain = site
        .up(&["-p", "compute", "-t", "2", "--no-wait", "--json"])
        .await;
    assert_eq!(plain.code, Some(0), "{}", plain.describe());
    let plain: Value = serde_json::from_str(plain.stdout.trim()).unwrap();
    let plain_alias = plain["alias"].as_str().unwrap().to_owned();
    let refused = site.run(&["extend", &plain_alias, "10"]).await;
    assert_eq!(refused.code, Some(2), "{}", refused.describe());
    assert!(
        refused.stderr.contains("extend_max"),
        "{}",
        refused.describe()
    );
    let job_id = plain["job_id"].as_str().unwrap();
    let limit = std::process::Command::new("squeue")
        .args(["-h", "-j", job_id, "-O", "TimeLimit"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&limit.stdout).trim(), "2:00");
    assert_eq!(site.run(&["down", &plain_alias]).await.code, Some(0));

    let started = Instant::now();
    let (launched, _) = site.up_ok(&["-p", "debug", "-t", "2"]).await;
    let alias = &launched.alias;
    let rows = site.ls_json().await;
    let first_end = row(&rows, alias)["ends_at"].as_u64().unwrap();
    let until = row(&rows, alias)["extend_until"].as_u64().unwrap();
    assert!((290..=310).contains(&(until - first_end)), "{rows:?}");

    // Beyond the headroom: exit 2, the end as it was.
    let beyond = site.run(&["extend", alias, "6"]).await;
    assert_eq!(beyond.code, Some(2), "{}", beyond.describe());
    assert!(
        beyond.stderr.contains("beyond the headroom"),
        "{}",
        beyond.describe()
    );
    assert_eq!(row(&site.ls_json().await, alias)["ends_at"], first_end);

    // Without the session's secret (another user has none): refused.
    let (_, other) = site.proxy_session(alias).await;
    assert_eq!(other["ends_at"], first_end);
    let stranger = site
        .proxy
        .client
        .post(site.proxy.api(&format!("/sessions/{alias}/extend")))
        .json(&json!({"secret": "0".repeat(64), "by_s": 60}))
        .send()
        .await
        .unwrap();
    assert_eq!(stranger.status(), 403);

    let extended = site.run(&["extend", alias, "3"]).await;
    assert_eq!(extended.code, Some(0), "{}", extended.describe());
    assert!(
        extended.stdout.contains("now ends in"),
        "{}",
        extended.describe()
    );
    let rows = site.ls_json().await;
    assert_eq!(row(&rows, alias)["ends_at"], first_end + 180);
    assert_eq!(row(&rows, alias)["state"], "running");

    // Minute 3, past the first end: still serving.
    let minute_3 = Duration::from_secs(180).saturating_sub(started.elapsed());
    tokio::time::sleep(minute_3).await;
    let (base, _) = launched.url.split_once('?').unwrap();
    let api = format!("{base}api/status?token={}", launched.token);
    let (status, body) = site.get(&api).await;
    assert_eq!(status, 200, "the session stopped at its first end: {body}");

    // Then it ends by itself at the new end, as a time limit.
    crate::support::until(Duration::from_secs(240), "ended (time limit)", || async {
        let rows = site.ls_json().await;
        let row = row(&rows, alias);
        if row["state"] == "ended" && row["end_reason"] == "time-limit" {
            Ok(())
        } else {
            Err(format!("{row}"))
        }
    })
    .await;
    let ended_after = started.elapsed();
    assert!(
        ended_after < Duration::from_secs(7 * 60),
        "it ended at Slurm's limit, not its own: {ended_after:?}"
    );
    let now = crate::support::unix_now();
    assert!(
        now + 20 >= first_end + 180,
        "it ended before its extended end: {} s early",
        first_end + 180 - now
    );
}
