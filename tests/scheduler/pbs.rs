//! The PBS Pro dialect against replays of real servers' output: a stand-in
//! `qstat` (named as such; OpenPBS cannot be installed here) prints the
//! recorded output of tests/fixtures/qstat for the options it is given, so
//! what jrps asks, and what it does with each answer, is real.

use std::collections::HashMap;
use std::path::Path;

use jrps::scheduler::{CommandEnv, JobId, JobStatus, Pbs, PbsDialect, Scheduler};

/// A PBS Pro whose `qstat` answers `-F json` with `json` and the text form
/// with `text` (each a fixture name, or a line to print and an exit code).
fn replaying(dir: &Path, json: &str, text: &str) -> Pbs {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/qstat");
    let answer = |what: &str| match what.split_once('|') {
        Some((line, code)) => format!("echo '{line}' >&2; exit {code}"),
        None => format!("cat {}", fixtures.join(what).display()),
    };
    crate::e2e::site::executable(
        dir,
        "qstat",
        &format!(
            "echo \"$*\" >> {dir}/calls\n\
             case \"$*\" in\n\
             *'-F json'*) {json} ;;\n\
             *) {text} ;;\n\
             esac",
            dir = dir.display(),
            json = answer(json),
            text = answer(text),
        ),
    );
    let path = crate::support::path_with_first(dir);
    Pbs::new(
        PbsDialect::Pbs,
        CommandEnv {
            vars: vec![("PATH".into(), path.to_string_lossy().into_owned())],
            ..CommandEnv::default()
        },
    )
}

fn ids(names: &[&str]) -> Vec<JobId> {
    names.iter().map(|&n| JobId::from(n)).collect()
}

fn calls(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("calls"))
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn json_first_for_all_jobs_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let pbs = replaying(dir.path(), "firecrest-finished-and-running.json", "false|1");
    let asked = ids(&["1004.pbs", "1006", "999.pbs"]);
    let found = pbs.status_many(&asked).unwrap();
    assert_eq!(
        calls(dir.path()),
        ["-f -x -F json 1004.pbs 1006 999.pbs"],
        "one qstat for three jobs"
    );
    assert!(matches!(found[&asked[0]], JobStatus::Ended { .. }));
    // `1006` is `1006.pbs`: servers print their name in several lengths.
    assert!(
        matches!(&found[&asked[1]], JobStatus::Running { node, .. } if node == "pbs"),
        "{found:?}"
    );
    // Not in the answer: finished long ago.
    assert_eq!(
        found[&asked[2]],
        JobStatus::Ended {
            state: None,
            reason: None
        }
    );
}

#[test]
fn broken_json_falls_back_to_the_text_form() {
    for broken in [
        "broken-1255-unquoted-numbers.json",
        "broken-2541-invalid-escape.json",
    ] {
        let dir = tempfile::tempdir().unwrap();
        let pbs = replaying(dir.path(), broken, "aiida-pbspro-qstat-f-Q-R-H.txt");
        let asked = ids(&["69301.mycluster", "74165.mycluster"]);
        let found: HashMap<_, _> = pbs.status_many(&asked).unwrap();
        assert_eq!(
            calls(dir.path()),
            [
                "-f -x -F json 69301.mycluster 74165.mycluster",
                "-f -x 69301.mycluster 74165.mycluster"
            ],
            "{broken}"
        );
        assert!(matches!(found[&asked[0]], JobStatus::Running { .. }));
        assert!(matches!(found[&asked[1]], JobStatus::Pending { .. }));
    }
}

#[test]
fn a_server_that_cannot_be_reached_is_an_error_never_an_end() {
    let dir = tempfile::tempdir().unwrap();
    let down = "Connection refused|2";
    let pbs = replaying(dir.path(), down, down);
    let error = pbs.status(&JobId::from("1.pbs")).unwrap_err().to_string();
    assert!(error.contains("Connection refused"), "{error}");
    // A qstat that fails saying nothing is a failure too, never "all ended";
    // Slurm's wrapper says only its exit status (153) for unknown jobs.
    let dir = tempfile::tempdir().unwrap();
    let mute = "|1";
    let pbs = replaying(dir.path(), mute, mute);
    assert!(pbs.status(&JobId::from("1.pbs")).is_err());
    let dir = tempfile::tempdir().unwrap();
    let unknown = "|153";
    let pbs = replaying(dir.path(), unknown, unknown);
    assert!(matches!(
        pbs.status(&JobId::from("1")).unwrap(),
        JobStatus::Ended { .. }
    ));
    // A server that knows the job no more says so, and that is an end.
    let dir = tempfile::tempdir().unwrap();
    let unknown = "qstat: Unknown Job Id 7.pbs|153";
    let pbs = replaying(dir.path(), unknown, unknown);
    assert_eq!(
        pbs.status(&JobId::from("7.pbs")).unwrap(),
        JobStatus::Ended {
            state: None,
            reason: None
        }
    );
    // And garbage on success is named, not read as "no jobs".
    let dir = tempfile::tempdir().unwrap();
    let pbs = replaying(
        dir.path(),
        "buildtest-torque6-completed.txt",
        "firecrest-running.json",
    );
    let error = pbs.status(&JobId::from("1.pbs")).unwrap_err().to_string();
    assert!(error.contains("does not understand"), "{error}");
}
