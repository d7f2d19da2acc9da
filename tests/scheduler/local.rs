//! `Local`: real detached processes on this machine.

use std::time::Duration;

use jrps::scheduler::{JobStatus, Local, Scheduler};

use super::{submission, wait_for, wait_for_log};

#[test]
fn submitted_job_runs_then_ends() {
    let dir = tempfile::tempdir().unwrap();
    let local = Local::new(dir.path().join("state"));
    let job = submission(
        dir.path(),
        "runs",
        "echo \"greeting: $JRPS_TEST_GREETING\"\necho \"in: $PWD\"\nsleep 1\necho done\n",
    );
    let id = local.submit(&job).expect("submit");
    assert!(id.as_str().starts_with("local-"), "job id {id}");

    let status = local.status(&id).unwrap();
    assert!(
        matches!(status, JobStatus::Running { .. }),
        "just started: {status:?}"
    );
    wait_for(&local, &id, Duration::from_secs(20), "ended", |status| {
        matches!(status, JobStatus::Ended { .. })
    });
    let log = wait_for_log(&job.log_path, "done", Duration::from_secs(5));
    assert!(log.contains("greeting: hello from the submitter"), "{log}");
    assert!(
        log.contains(&format!("in: {}", dir.path().display())),
        "{log}"
    );
}

#[test]
fn status_works_from_a_fresh_scheduler_value() {
    // A later `jrps` process has nothing but the state directory to go on.
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let id = Local::new(&state)
        .submit(&submission(dir.path(), "later", "sleep 30\n"))
        .unwrap();
    let later = Local::new(&state).with_grace(Duration::from_secs(2));
    assert!(matches!(
        later.status(&id).unwrap(),
        JobStatus::Running { .. }
    ));
    later.cancel(&id).unwrap();
    assert!(matches!(
        later.status(&id).unwrap(),
        JobStatus::Ended { .. }
    ));
}

#[test]
fn cancel_stops_the_whole_process_group() {
    let dir = tempfile::tempdir().unwrap();
    let local = Local::new(dir.path().join("state")).with_grace(Duration::from_secs(2));
    // A background child that outlives nothing if the group is signalled, and a
    // script that waits on it, as a batch script waits on Jupyter.
    let job = submission(
        dir.path(),
        "group",
        "sleep 300 &\necho \"child $!\"\nwait\n",
    );
    let id = local.submit(&job).unwrap();
    let log = wait_for_log(&job.log_path, "child ", Duration::from_secs(10));
    let child: u32 = log
        .lines()
        .find_map(|line| line.strip_prefix("child "))
        .unwrap()
        .trim()
        .parse()
        .unwrap();

    local.cancel(&id).expect("cancel");
    assert!(matches!(
        local.status(&id).unwrap(),
        JobStatus::Ended { .. }
    ));
    let stat = std::fs::read_to_string(format!("/proc/{child}/stat")).unwrap_or_default();
    assert!(
        stat.is_empty() || stat.contains(") Z "),
        "the script's child {child} survived cancel: {stat}"
    );
    // Cancelling an ended job is not an error.
    local.cancel(&id).expect("second cancel");
}

#[test]
fn script_ignoring_sigterm_is_killed_after_the_grace_period() {
    let dir = tempfile::tempdir().unwrap();
    let local = Local::new(dir.path().join("state")).with_grace(Duration::from_millis(500));
    let job = submission(
        dir.path(),
        "stubborn",
        "trap '' TERM\necho ready\nwhile :; do sleep 0.1; done\n",
    );
    let id = local.submit(&job).unwrap();
    wait_for_log(&job.log_path, "ready", Duration::from_secs(10));
    local.cancel(&id).expect("cancel");
    assert!(matches!(
        local.status(&id).unwrap(),
        JobStatus::Ended { .. }
    ));
}

#[test]
fn unknown_and_foreign_ids() {
    let dir = tempfile::tempdir().unwrap();
    let local = Local::new(dir.path().join("state"));
    // Never submitted here: ended, like a job Slurm has forgotten.
    assert_eq!(
        local.status(&"local-999999".into()).unwrap(),
        JobStatus::Ended {
            state: None,
            reason: None
        }
    );
    local.cancel(&"local-999999".into()).unwrap();
    assert!(local.status(&"4711".into()).is_err());
}
