//! `jrps` on the real single-node Slurm: the main flow, a submission Slurm
//! refuses, a Jupyter that fails in the job, Ctrl-C while queued, walltime.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::flow::{ENDED, up_use_down};
use super::site::{Site, executable, squeue_active, wait_job_gone};
use crate::proxy::jupyter::jupyter_executable;
use crate::scheduler::slurm::cluster;

/// The cluster and a real Jupyter, or `None` (skip, with a notice) outside CI.
fn slurm_and_jupyter() -> Option<PathBuf> {
    cluster()?;
    jupyter_executable()
}

/// Asserts a failed `up` left nothing: no session in `jrps ls`, no session
/// dir, no live session at the proxy.
async fn assert_nothing_left(site: &Site, alias: &str) {
    assert_eq!(site.ls_json().await, Vec::<serde_json::Value>::new());
    assert!(!site.session_dir(alias).exists(), "session dir left behind");
    assert_eq!(site.session_dirs(), Vec::<String>::new());
    site.assert_no_live_session(alias).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slurm_up_serves_jupyter_then_down_ends_everything() {
    let Some(jupyter) = slurm_and_jupyter() else {
        return;
    };
    let site = Site::new("slurm", &jupyter, "");
    up_use_down(&site, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slurm_refused_submission_quotes_slurm_and_leaves_nothing() {
    if cluster().is_none() {
        return;
    }
    // A partition the site lists but this cluster does not have.
    let site = Site::new(
        "slurm",
        Path::new("/bin/false"),
        "[partitions.bigmem]\ndefault = true\nmax_time = \"1:00:00\"\n",
    );
    let out = site.up(&[]).await;
    eprintln!("{}", out.describe());
    assert_eq!(out.code, Some(1), "{}", out.describe());
    assert!(
        out.stderr.contains("the job was not submitted")
            && out.stderr.contains("Invalid partition name"),
        "Slurm's own words are quoted:\n{}",
        out.describe()
    );
    assert!(out.stdout.is_empty(), "{}", out.describe());
    let alias = crate::e2e::site::reserved_alias(&out.stderr).expect("an alias was reserved");
    assert_nothing_left(&site, &alias).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slurm_jupyter_that_fails_to_start_fails_up_with_the_log() {
    if cluster().is_none() {
        return;
    }
    let bin = tempfile::tempdir().unwrap();
    let jupyter = executable(
        bin.path(),
        "jupyter",
        "echo 'jrps-e2e: this jupyter refuses to start' >&2\nexit 3",
    );
    let site = Site::new("slurm", &jupyter, "");
    let out = site.up(&[]).await;
    eprintln!("{}", out.describe());
    assert_eq!(out.code, Some(1), "{}", out.describe());
    assert!(
        out.stderr.contains("ended before Jupyter was ready")
            && out.stderr.contains("--- last lines of the job log ---")
            && out
                .stderr
                .contains("jrps-e2e: this jupyter refuses to start"),
        "the job log's tail is shown:\n{}",
        out.describe()
    );
    assert!(out.stdout.is_empty(), "{}", out.describe());
    let alias = crate::e2e::site::reserved_alias(&out.stderr).expect("an alias was reserved");
    let cause = "cause: Jupyter (pid";
    assert!(out.stderr.contains(cause), "{}", out.describe());
    // The job ran: its folder stays, so `jrps ls` can say what went wrong
    // and `jrps logs` show the run, until `jrps down` clears it.
    site.assert_no_live_session(&alias).await;
    let rows = site.ls_json().await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["state"], "ended", "{rows:?}");
    assert_eq!(rows[0]["end_reason"], "job-failed", "{rows:?}");
    assert!(
        rows[0]["cause"]
            .as_str()
            .unwrap_or("")
            .contains("exited before it wrote its port"),
        "{rows:?}"
    );
    let down = site.run(&["down", &alias]).await;
    assert_eq!(down.code, Some(0), "{}", down.describe());
    assert_nothing_left(&site, &alias).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slurm_sigint_while_queued_cancels_the_job_and_deletes_the_session() {
    if cluster().is_none() {
        return;
    }
    let site = Site::new("slurm", Path::new("/bin/false"), "");
    site.user_profile("held", "sbatch_options = [\"--begin=now+1hour\"]\n");
    let mut up = site.spawn_up(&["held"]);
    let job_id = up
        .wait_for_stderr(Duration::from_secs(60), "the queued phase", |line| {
            let rest = line.split_once("queued as job ")?.1;
            let (id, reason) = rest.split_once(' ')?;
            reason.starts_with("(BeginTime)").then(|| id.to_owned())
        })
        .await;
    let alias = super::site::reserved_alias(&up.stderr()).expect("an alias was reserved");
    assert_eq!(squeue_active(&job_id).as_deref(), Some("PENDING"));

    up.ctrl_c();
    let out = up.finish(Duration::from_secs(60)).await;
    eprintln!("{}", out.describe());
    assert_eq!(out.code, Some(130), "{}", out.describe());
    assert!(
        out.stderr.contains(&format!(
            "interrupted: job {job_id} cancelled and session {alias} deleted"
        )),
        "{}",
        out.describe()
    );
    assert!(out.stdout.is_empty(), "{}", out.describe());
    // scancel is done when `up` exits: the job is no longer pending.
    assert_eq!(squeue_active(&job_id), None);
    assert_nothing_left(&site, &alias).await;
}

/// Regression: `up` caught signals only once it waited for the job, so a
/// Ctrl-C while sbatch ran killed it outright, leaving the job queued, the
/// session reserved at the proxy and its session dir on disk. And sbatch ran
/// in jrps's process group, so the same Ctrl-C killed sbatch too, possibly
/// after it had submitted the job but before jrps learnt its id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slurm_sigint_during_sbatch_still_cancels_the_job_and_deletes_the_session() {
    if cluster().is_none() {
        return;
    }
    // An sbatch that says it started, waits for the test's go, then runs
    // the real one: the signal lands while `up` is inside sbatch.
    let bin = tempfile::tempdir().unwrap();
    let real = Command::new("sh")
        .args(["-c", "command -v sbatch"])
        .output()
        .unwrap();
    let real = String::from_utf8(real.stdout).unwrap().trim().to_owned();
    assert!(!real.is_empty(), "sbatch is on PATH");
    let (started, go) = (bin.path().join("started"), bin.path().join("go"));
    let body = format!(
        ": > '{started}'\ni=0\nwhile [ ! -e '{go}' ]; do\n  \
         i=$((i + 1)); [ $i -gt 600 ] && exit 99\n  sleep 0.05\ndone\nexec '{real}' \"$@\"",
        started = started.display(),
        go = go.display(),
    );
    executable(bin.path(), "sbatch", &body);
    let mut site = Site::new("slurm", Path::new("/bin/false"), "");
    site.path_first(bin.path());
    site.user_profile("held", "sbatch_options = [\"--begin=now+1hour\"]\n");

    let up = site.spawn_up(&["held"]);
    crate::support::until(Duration::from_secs(30), "sbatch ran", || async {
        if started.exists() {
            Ok(())
        } else {
            Err(up.stderr())
        }
    })
    .await;
    up.ctrl_c();
    std::fs::write(&go, "").unwrap();
    let out = up.finish(Duration::from_secs(60)).await;
    eprintln!("{}", out.describe());
    assert_eq!(out.code, Some(130), "{}", out.describe());
    let alias = crate::e2e::site::reserved_alias(&out.stderr).expect("an alias was reserved");
    let job_id = out
        .stderr
        .lines()
        .find_map(|l| Some(l.split_once("submitted job ")?.1.trim().to_owned()))
        .unwrap_or_else(|| panic!("the job was submitted:\n{}", out.describe()));
    assert!(
        out.stderr.contains(&format!(
            "interrupted: job {job_id} cancelled and session {alias} deleted"
        )),
        "{}",
        out.describe()
    );
    assert_eq!(squeue_active(&job_id), None);
    assert_nothing_left(&site, &alias).await;
}

/// Regression: one failed `squeue` (a busy slurmctld times out now and
/// then) made `up` give up and cancel a job that was fine.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slurm_one_failed_squeue_does_not_abort_up() {
    let Some(jupyter) = slurm_and_jupyter() else {
        return;
    };
    // An squeue whose first answer is a timeout; later ones are the real one's.
    let bin = tempfile::tempdir().unwrap();
    let real = Command::new("sh")
        .args(["-c", "command -v squeue"])
        .output()
        .unwrap();
    let real = String::from_utf8(real.stdout).unwrap().trim().to_owned();
    assert!(!real.is_empty(), "squeue is on PATH");
    let failed = bin.path().join("failed");
    let body = format!(
        "if [ ! -e '{failed}' ]; then\n  : > '{failed}'\n  \
         echo 'slurm_load_jobs error: Socket timed out on send/recv operation' >&2\n  \
         exit 1\nfi\nexec '{real}' \"$@\"",
        failed = failed.display(),
    );
    executable(bin.path(), "squeue", &body);
    let mut site = Site::new("slurm", &jupyter, "");
    site.path_first(bin.path());

    let (launched, out) = site.up_ok(&[]).await;
    assert!(failed.exists(), "the failing squeue was asked");
    assert!(
        out.stderr
            .contains("Socket timed out on send/recv operation; asking again"),
        "the failure is shown, and the wait goes on:\n{}",
        out.stderr
    );
    let status_url = launched.url.replacen("/?token=", "/api/status?token=", 1);
    assert_eq!(site.get(&status_url).await.0, 200, "{}", site.logs());
    let down = site.run(&["down", &launched.alias]).await;
    assert_eq!(down.code, Some(0), "{}", down.describe());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slurm_walltime_expiry_ends_the_route() {
    let Some(jupyter) = slurm_and_jupyter() else {
        return;
    };
    let site = Site::new("slurm", &jupyter, "");
    let (launched, out) = site.up_ok(&["-t", "1"]).await;
    let up_at = Instant::now();
    eprintln!("{}", out.stderr);
    let job_id = site.ls_json().await[0]["job_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let status_url = launched.url.replacen("/?token=", "/api/status?token=", 1);
    assert_eq!(site.get(&status_url).await.0, 200, "{}", site.logs());

    // Slurm checks time limits periodically, so the job ends somewhat after
    // its minute; the route must end with it.
    let (status, body) = site
        .wait_for_status(&status_url, ENDED, Duration::from_secs(150))
        .await;
    assert_eq!(
        status,
        ENDED,
        "the URL still answers {status} {body} {:?} after `up`\n{}",
        up_at.elapsed(),
        site.logs()
    );
    eprintln!(
        "the route ended {:.1}s after `up` returned",
        up_at.elapsed().as_secs_f64()
    );
    wait_job_gone(&job_id, Duration::from_secs(30)).await;
    // Slurm ended it for its time limit, and the job's exit trap ended the
    // session: not `down`, not the proxy's TTL.
    let log = site.job_log(&launched.alias);
    assert!(
        log.contains("DUE TO TIME LIMIT"),
        "Slurm's time-limit notice in the job log:\n{log}"
    );
    assert!(
        log.contains(&format!(
            "session {} ended (time limit); its route is gone",
            launched.alias
        )),
        "the job deregistered on its way out:\n{log}"
    );
    let (state, body) = site.proxy_session(&launched.alias).await;
    assert_eq!((state, &body["state"]), (200, &serde_json::json!("ended")));
    assert_eq!(body["end_reason"], "time-limit", "{body}");
    let listed = site.ls_json().await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["state"], "ended", "{listed:?}");
    assert_eq!(listed[0]["end_reason"], "time-limit", "{listed:?}");
    let (_, page) = site.get(&launched.url).await;
    assert!(page.contains("its job reached its time limit"), "{page}");

    // Cleaning up an ended session works and leaves nothing.
    let down = site.run(&["down", &launched.alias]).await;
    assert_eq!(down.code, Some(0), "{}", down.describe());
    assert_eq!(site.ls_json().await, Vec::<serde_json::Value>::new());
    assert!(!site.session_dir(&launched.alias).exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slurm_with_munge_identity_sessions_are_listed_and_ended_from_anywhere() {
    let Some(jupyter) = slurm_and_jupyter() else {
        return;
    };
    let socket = crate::proxy::identity::munge_socket().expect("the test cluster's munged");
    let identity = format!(
        "identity = \"munge\"\nmunge_socket = {:?}\n",
        socket.display().to_string()
    );
    let audit_dir = tempfile::tempdir().unwrap();
    let audit_log = audit_dir.path().join("audit.log");
    let proxy_extra = format!(
        "{identity}audit_log = {:?}\n",
        audit_log.display().to_string()
    );
    let site = Site::with_proxy("slurm", &jupyter, &identity, &proxy_extra);
    let (launched, _) = site.up_ok(&["-t", "10"]).await;
    let status_url = launched.url.replacen("/?token=", "/api/status?token=", 1);
    assert_eq!(site.get(&status_url).await.0, 200, "{}", site.logs());

    // Another state directory (another login node): the proxy knows the
    // session is this uid's, and the scheduler where its job is.
    let listed = site.run_elsewhere(&["ls", "--json"]).await;
    assert_eq!(listed.code, Some(0), "{}", listed.describe());
    let rows: Vec<serde_json::Value> = serde_json::from_str(listed.stdout.trim()).unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["alias"], launched.alias.as_str());
    assert_eq!(rows[0]["state"], "running", "{rows:?}");
    let job_id = rows[0]["job_id"].as_str().unwrap().to_owned();
    let url = site.run_elsewhere(&["url", &launched.alias]).await;
    assert_eq!(url.code, Some(2), "{}", url.describe());
    assert!(
        url.stderr.contains("launched from another login node"),
        "{}",
        url.describe()
    );

    let down = site.run_elsewhere(&["down", &launched.alias]).await;
    assert_eq!(down.code, Some(0), "{}", down.describe());
    wait_job_gone(&job_id, Duration::from_secs(30)).await;
    let (status, _) = site.get(&launched.url).await;
    assert_eq!(status, ENDED);

    // The audit log of the whole launch, line by line, with no secret in it.
    let secret =
        std::fs::read_to_string(site.session_dir(&launched.alias).join("register_secret")).unwrap();
    let text = std::fs::read_to_string(&audit_log).unwrap();
    eprintln!("audit log:\n{text}");
    for secret in [launched.token.as_str(), secret.trim()] {
        assert!(!text.contains(secret), "a secret in the audit log");
    }
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let events: Vec<&str> = lines.iter().map(|l| l["event"].as_str().unwrap()).collect();
    assert_eq!(
        events,
        [
            "created",
            "job_linked",
            "registered",
            "first_access",
            "ended"
        ],
        "{text}"
    );
    let uid = rustix::process::getuid().as_raw();
    for line in &lines {
        assert_eq!(
            (&line["alias"], &line["uid"]),
            (&serde_json::json!(launched.alias), &serde_json::json!(uid)),
            "{line}"
        );
    }
    assert_eq!(lines[1]["job_id"], job_id.as_str());
    assert_eq!(lines[4]["reason"], "cancelled");
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&audit_log).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    // The launching side sees it ended, and why.
    let here = site.ls_json().await;
    assert_eq!(
        (&here[0]["state"], &here[0]["end_reason"]),
        (&serde_json::json!("ended"), &serde_json::json!("cancelled")),
        "{here:?}"
    );
}
