//! `Slurm` against the real single-node cluster from `scripts/slurm up`.

use std::io::{Read, Write};
use std::time::Duration;

use jrps::scheduler::{JobStatus, Scheduler, SchedulerError, Slurm};

use super::{submission, wait_for, wait_for_log};
use crate::proxy::jupyter::wait_until_listening;

/// The cluster `scripts/test` started, or `None` (with a notice) outside CI.
/// Under CI a missing cluster is a failure: a green run must mean these ran.
pub(crate) fn cluster() -> Option<Slurm> {
    if std::env::var_os("SLURM_CONF").is_some() {
        return Some(Slurm::new(jrps::scheduler::CommandEnv::default()));
    }
    crate::support::missing("Slurm (SLURM_CONF; ./scripts/test starts it and sets it)");
    None
}

#[test]
fn submitted_job_runs_then_ends() {
    let Some(slurm) = cluster() else { return };
    let dir = tempfile::tempdir().unwrap();
    let job = submission(
        dir.path(),
        "runs",
        "#!/bin/bash\n#SBATCH --time=5\necho \"greeting: $JRPS_TEST_GREETING\"\necho \"in: $PWD\"\nsleep 2\n",
    );
    let id = slurm.submit(&job).expect("sbatch accepts the job");
    assert!(
        id.as_str().bytes().all(|b| b.is_ascii_digit()),
        "job id {id}"
    );

    let running = wait_for(&slurm, &id, Duration::from_secs(30), "running", |status| {
        matches!(status, JobStatus::Running { .. })
    });
    let JobStatus::Running {
        node,
        time_left,
        restarts,
    } = running
    else {
        unreachable!("waited for Running")
    };
    assert_eq!(node, "localhost");
    assert_eq!(restarts, 0, "a job that was never requeued");
    let left = time_left.expect("squeue says how long a job with a time limit has");
    assert!(
        (240..=300).contains(&left),
        "5 minutes minus a few seconds, got {left}s"
    );
    wait_for(&slurm, &id, Duration::from_secs(30), "ended", |status| {
        matches!(status, JobStatus::Ended { .. })
    });

    let log = wait_for_log(&job.log_path, "in: ", Duration::from_secs(10));
    assert!(
        log.contains("greeting: hello from the submitter"),
        "the job saw the environment it was given: {log}"
    );
    assert!(
        log.contains(&format!("in: {}", dir.path().display())),
        "the job ran in its workdir: {log}"
    );
}

#[test]
fn held_job_is_pending_then_cancelled() {
    let Some(slurm) = cluster() else { return };
    let dir = tempfile::tempdir().unwrap();
    let job = submission(
        dir.path(),
        "held",
        "#!/bin/bash\n#SBATCH --begin=now+1hour\necho never\n",
    );
    let id = slurm.submit(&job).expect("sbatch accepts the job");

    let status = slurm.status(&id).expect("squeue knows the job");
    let JobStatus::Pending {
        reason,
        expected_start,
        ..
    } = status
    else {
        panic!("a job held until later is pending, not {status:?}");
    };
    assert_eq!(reason.as_deref(), Some("BeginTime"));
    assert!(
        expected_start.is_some(),
        "Slurm knows when a --begin job starts"
    );

    slurm.cancel(&id).expect("scancel");
    let ended = wait_for(&slurm, &id, Duration::from_secs(30), "ended", |status| {
        matches!(status, JobStatus::Ended { .. })
    });
    // Slurm still remembers how (for MinJobAge): `jrps ls` says "cancelled"
    // for a job that never ran its exit trap.
    assert_eq!(
        ended,
        JobStatus::Ended {
            state: Some("CANCELLED".into()),
            reason: Some(jrps::api::EndReason::Cancelled),
        }
    );
    // Ended from squeue's own view too: it no longer lists the job as queued.
    let squeue = std::process::Command::new("squeue")
        .args(["-h", "-o", "%i", "-j", id.as_str()])
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&squeue.stdout);
    assert!(
        !listed.lines().any(|line| line.trim() == id.as_str()),
        "squeue still lists job {id}: {listed}"
    );
    // Cancelling again is harmless: clean-up paths cancel unconditionally.
    slurm.cancel(&id).expect("second scancel");
}

#[test]
fn unknown_partition_is_refused_in_slurms_words() {
    let Some(slurm) = cluster() else { return };
    let dir = tempfile::tempdir().unwrap();
    let job = submission(
        dir.path(),
        "nopartition",
        "#!/bin/bash\n#SBATCH --partition=no-such-partition\ntrue\n",
    );
    let error = slurm.submit(&job).expect_err("sbatch refuses the job");
    assert!(matches!(error, SchedulerError::Refused { .. }), "{error:?}");
    let message = error.to_string();
    assert!(
        message.contains("Invalid partition name specified"),
        "quotes sbatch: {message}"
    );
    assert!(
        message.contains("exit status: 1"),
        "names the status: {message}"
    );

    // The same error as the user sees it, through the one top-level error.
    let top: jrps::Error = error.into();
    assert_eq!(top.exit_code(), 1);
}

#[test]
fn ids_from_another_scheduler_are_refused() {
    let Some(slurm) = cluster() else { return };
    let error = slurm
        .status(&"local-12".into())
        .expect_err("not a Slurm id");
    assert!(
        matches!(error, SchedulerError::ForeignJobId(_)),
        "{error:?}"
    );
}

/// The environment later tests build on: the venv's Jupyter, started inside a
/// Slurm job as the batch template does (`--port=0`), reports its port in
/// `$JUPYTER_RUNTIME_DIR/jpserver-<pid>.json` and answers there; cancelling the
/// job stops it.
#[test]
fn jupyter_from_the_test_venv_runs_inside_a_slurm_job() {
    let Some(slurm) = cluster() else { return };
    let Some(jupyter) = std::env::var_os("JRPS_TEST_JUPYTER") else {
        crate::support::missing("JupyterLab (JRPS_TEST_JUPYTER; ./scripts/test sets it)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let runtime = dir.path().join("runtime");
    std::fs::create_dir(&runtime).unwrap();
    let mut job = submission(
        dir.path(),
        "jupyter",
        // --allow-root: CI runs as root, and Jupyter refuses root without it.
        // The token arrives as JUPYTER_TOKEN in the environment, never as an argument.
        "#!/bin/bash\nexec \"$JUPYTER\" lab --no-browser --allow-root --ip=127.0.0.1 --port=0\n",
    );
    job.env.extend([
        ("JUPYTER".into(), jupyter.to_string_lossy().into_owned()),
        (
            "JUPYTER_RUNTIME_DIR".into(),
            runtime.to_string_lossy().into_owned(),
        ),
        ("JUPYTER_TOKEN".into(), "test-token-not-secret".into()),
    ]);
    let id = slurm.submit(&job).expect("sbatch accepts the job");

    let port = crate::support::until_sync(Duration::from_secs(90), "a jpserver-*.json", || {
        let found = std::fs::read_dir(&runtime)
            .unwrap()
            .flatten()
            .map(|entry| entry.path())
            .filter(|path| {
                let name = path.file_name().unwrap().to_string_lossy();
                name.starts_with("jpserver-") && name.ends_with(".json")
            })
            .find_map(|path| {
                let info: serde_json::Value =
                    serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()?;
                info["port"].as_u64()
            });
        match found {
            Some(port) => Ok(u16::try_from(port).unwrap()),
            None => Err(format!(
                "job log:\n{}",
                std::fs::read_to_string(&job.log_path).unwrap_or_default()
            )),
        }
    });
    assert_ne!(port, 0, "--port=0 resolves to a real port");
    if !wait_until_listening(port, Duration::from_secs(30)) {
        let log = std::fs::read_to_string(&job.log_path).unwrap_or_default();
        let _ = slurm.cancel(&id);
        panic!("Jupyter named port {port} but does not listen there; job log:\n{log}");
    }

    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("Jupyter listens");
    stream
        .write_all(b"GET /api HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("\"version\""), "{answer}");

    slurm.cancel(&id).expect("scancel");
    wait_for(&slurm, &id, Duration::from_secs(30), "ended", |status| {
        matches!(status, JobStatus::Ended { .. })
    });
}
