//! `scheduler = "torque"` for real: Debian's `slurm-wlm-torque` puts
//! Torque's `qsub`, `qstat` and `qdel` over the test Slurm (`scripts/slurm
//! up` unpacks them, as the package conflicts with Grid Engine's client),
//! and jrps speaks to them as to any Torque. What those wrappers cannot show (JSON, held
//! and finished states, server-suffixed ids, time used, exit statuses)
//! the recorded output of real servers covers (`src/scheduler/pbs/qstat.rs`
//! on tests/fixtures/qstat).

use std::time::Instant;

use super::site::{Site, squeue_active};
use crate::proxy::jupyter::{jupyter_executable, run_code};
use crate::scheduler::slurm::cluster;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_launch_through_torques_commands_serves_lists_and_ends() {
    if cluster().is_none() {
        return;
    }
    let Some(jupyter) = jupyter_executable() else {
        return;
    };
    let Some(torque) = std::env::var_os("JRPS_TORQUE_BIN").map(std::path::PathBuf::from) else {
        crate::support::missing(
            "Torque's commands over Slurm (JRPS_TORQUE_BIN; ./scripts/slurm up unpacks them)",
        );
        return;
    };
    // Each Torque command logs its call, then runs.
    let calls = tempfile::tempdir().unwrap();
    for command in ["qsub", "qstat", "qdel"] {
        super::site::executable(
            calls.path(),
            command,
            &format!(
                "echo \"{command} $*\" >> {}/calls\nexec {}/{command} \"$@\"",
                calls.path().display(),
                torque.display()
            ),
        );
    }
    let mut site = Site::new("torque", &jupyter, "");
    site.path_first(calls.path());
    let started = Instant::now();
    let (launched, up) = site.up_ok(&["-t", "10"]).await;
    let took = started.elapsed();
    let alias = &launched.alias;

    // The script Torque got: #PBS lines, which sbatch itself reads.
    let script = site.run(&["render", "-t", "10"]).await;
    assert!(
        script.stdout.contains("#PBS -l walltime=0:10:00\n"),
        "{}",
        script.describe()
    );

    let value = run_code(&site.proxy, alias, &launched.token, "6*7")
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", site.logs()));
    assert_eq!(value, "42");

    let rows = site.ls_json().await;
    let row = rows.iter().find(|r| r["alias"] == *alias).unwrap();
    assert_eq!(row["state"], "running", "{row}");
    assert!(row["node"].is_string(), "{row}");
    let job_id = row["job_id"].as_str().unwrap().to_owned();
    assert_eq!(squeue_active(&job_id).as_deref(), Some("RUNNING"), "{row}");
    // Time left: the wrappers print no time used, so the end is the one the
    // job reckoned at its start and reported to the proxy.
    let left = row["ends_at"].as_u64().expect("an end") - crate::support::unix_now();
    assert!((500..=600).contains(&left), "{left} s left: {row}");
    let table = site.run(&["ls"]).await;
    assert!(table.stdout.contains(" running "), "{}", table.describe());

    let asked = std::fs::read_to_string(calls.path().join("calls")).unwrap();
    let first = asked.lines().next().unwrap_or_default();
    assert!(
        first.starts_with(&format!(
            "qsub -N jrps-default -o {}",
            site.state_home().display()
        )) && first.contains(" -j oe -v JRPS_SESSION_DIR "),
        "{asked}"
    );
    assert!(
        asked.lines().any(|l| l == format!("qstat -f {job_id}")),
        "{asked}"
    );

    let down = site.run(&["down", alias]).await;
    assert_eq!(down.code, Some(0), "{}", down.describe());
    let rows = site.ls_json().await;
    let row = rows.iter().find(|r| r["alias"] == *alias);
    if let Some(row) = row {
        assert_eq!(row["state"], "ended", "{row}");
    }
    super::site::wait_job_gone(&job_id, std::time::Duration::from_secs(60)).await;
    site.assert_no_live_session(alias).await;
    let (status, page) = site.get(launched.url.split('?').next().unwrap()).await;
    assert_eq!(status, 404, "{page}");
    assert!(page.contains("was cancelled"), "{page}");
    let asked = std::fs::read_to_string(calls.path().join("calls")).unwrap();
    assert!(
        asked.lines().any(|l| l == format!("qdel {job_id}")),
        "{asked}"
    );
    eprintln!(
        "torque: up in {took:?}; {}",
        up.stderr.lines().last().unwrap_or("")
    );
}
