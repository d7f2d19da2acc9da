//! Reading `qstat -f`: the JSON form (`-F json`, OpenPBS and PBS Pro) and
//! the text form every PBS has (Torque, and the fallback when a server's
//! JSON is broken). Both become one flat map of attributes per job, nested
//! JSON objects joined with dots as the text form writes them
//! (`Resource_List.walltime`), and that map becomes a [`JobStatus`].

use std::collections::BTreeMap;

use super::super::job::JobStatus;
use super::dialect::Dialect;
use crate::api::EndReason;

/// One job's attributes, as `qstat -f` prints them.
pub type Attributes = BTreeMap<String, String>;

/// The jobs in `qstat -f -F json` output, by full id; `None` when the
/// text is not the JSON jrps expects (OpenPBS writes invalid JSON for some
/// values, #1255 and #2541): the caller then asks for the text form.
pub fn from_json(text: &str) -> Option<Vec<(String, Attributes)>> {
    let value: serde_json::Value = serde_json::from_str(text).ok()?;
    let object = value.as_object()?;
    // No "Jobs" key at all: none of the asked jobs is known.
    let Some(jobs) = object.get("Jobs") else {
        return object.contains_key("pbs_version").then(Vec::new);
    };
    let jobs = jobs.as_object()?;
    Some(
        jobs.iter()
            .map(|(id, job)| {
                let mut attributes = Attributes::new();
                flatten("", job, &mut attributes);
                (id.clone(), attributes)
            })
            .collect(),
    )
}

fn flatten(prefix: &str, value: &serde_json::Value, into: &mut Attributes) {
    match value {
        serde_json::Value::Object(members) => {
            for (key, member) in members {
                let key = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                flatten(&key, member, into);
            }
        }
        serde_json::Value::String(text) => {
            into.insert(prefix.to_owned(), text.clone());
        }
        other => {
            into.insert(prefix.to_owned(), other.to_string());
        }
    }
}

/// The jobs in `qstat -f` text: `Job Id: ID` and then `name = value` lines,
/// a long value continued on indented lines that are no attribute (PBS Pro and
/// Torque indent attributes with spaces; Slurm's Torque wrappers with a
/// tab, which is why an attribute is known by its ` = `).
pub fn from_text(text: &str) -> Vec<(String, Attributes)> {
    let mut jobs: Vec<(String, Attributes)> = Vec::new();
    let mut last: Option<String> = None;
    for line in text.lines() {
        if let Some(id) = line.strip_prefix("Job Id:") {
            jobs.push((id.trim().to_owned(), Attributes::new()));
            last = None;
            continue;
        }
        let Some((_, attributes)) = jobs.last_mut() else {
            continue;
        };
        let trimmed = line.trim_start();
        match attribute(trimmed) {
            Some((name, value)) if line.len() > trimmed.len() => {
                attributes.insert(name.to_owned(), value.to_owned());
                last = Some(name.to_owned());
            }
            // PBS wraps with a tab; pasted copies often with spaces.
            _ if line.len() > trimmed.len() && !trimmed.is_empty() => {
                if let Some(value) = last.as_ref().and_then(|name| attributes.get_mut(name)) {
                    value.push_str(trimmed);
                }
            }
            _ => last = None,
        }
    }
    jobs
}

/// `name = value`, where a name is a word with dots.
fn attribute(line: &str) -> Option<(&str, &str)> {
    let (name, value) = line.split_once(" = ")?;
    let is_name = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.');
    is_name.then_some((name, value.trim_end()))
}

/// Where a job is, by its attributes.
pub fn status_of(job: &Attributes, dialect: Dialect) -> JobStatus {
    let get = |name: &str| job.get(name).map(|v| v.trim()).filter(|v| !v.is_empty());
    let state = get("job_state").unwrap_or("U");
    let restarts = get("run_count")
        .and_then(|count| count.parse::<u32>().ok())
        .map_or(0, |runs| runs.saturating_sub(1));
    match state {
        // Queued, held, waiting for its start time, in transit between
        // servers, an array that has begun.
        "Q" | "H" | "W" | "T" | "B" => JobStatus::Pending {
            reason: match state {
                "H" => Some("held".to_owned()),
                "W" => Some("waiting for its start time".to_owned()),
                "T" => Some("in transit".to_owned()),
                _ => get("comment")
                    .map(|comment| comment.strip_prefix("Not Running: ").unwrap_or(comment))
                    .map(str::to_owned),
            },
            expected_start: get("estimated.start_time").map(str::to_owned),
            restarts,
        },
        // Suspended jobs keep their node and come back to it.
        "R" | "S" | "U" => JobStatus::Running {
            node: get("exec_host")
                .and_then(|hosts| hosts.split(['/', '+', ':']).next())
                .unwrap_or("unknown")
                .to_owned(),
            time_left: time_left(&get),
            restarts,
        },
        // E: exiting (the script has ended); F and X: finished (PBS Pro
        // history), C: completed (Torque), M: moved to another server.
        other => JobStatus::Ended {
            state: Some(other.to_owned()),
            reason: get("Exit_status")
                .or_else(|| get("exit_status"))
                .and_then(|code| code.parse::<i64>().ok())
                .and_then(|code| end_reason(code, dialect)),
        },
    }
}

/// Seconds before the job's walltime is up: Torque says so itself
/// (`Walltime.Remaining`); otherwise what was asked less what was used.
fn time_left<'a>(get: &impl Fn(&str) -> Option<&'a str>) -> Option<u64> {
    if let Some(remaining) = get("Walltime.Remaining").and_then(|s| s.parse().ok()) {
        return Some(remaining);
    }
    let asked = duration(get("Resource_List.walltime")?)?;
    let used = get("resources_used.walltime").and_then(duration)?;
    Some(asked.saturating_sub(used))
}

/// PBS durations: `[[HH:]MM:]SS`, hours unbounded, or plain seconds.
pub fn duration(text: &str) -> Option<u64> {
    let mut seconds = 0u64;
    let fields: Vec<&str> = text.trim().split(':').collect();
    if fields.len() > 3 {
        return None;
    }
    for field in fields {
        let value: u64 = field.parse().ok()?;
        seconds = seconds.checked_mul(60)?.checked_add(value)?;
    }
    Some(seconds)
}

/// A job's exit status in the session's words, where it says one: the
/// walltime kill (PBS Pro's JOB_EXEC_KILL_WALLTIME, Torque's
/// JOB_EXEC_OVERLIMIT_WT), a signal (qdel), or a job that could not start.
fn end_reason(code: i64, dialect: Dialect) -> Option<EndReason> {
    let walltime = match dialect {
        Dialect::Pbs => -29,
        Dialect::Torque => -11,
    };
    match code {
        0 => None,
        code if code == walltime => Some(EndReason::TimeLimit),
        // Killed by a signal: PBS Pro reports 256 + N, the shell 128 + N;
        // SIGTERM is how qdel asks.
        143 | 271 | 265 => Some(EndReason::Cancelled),
        _ => Some(EndReason::JobFailed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(duration("01:02:03"), Some(3723));
        assert_eq!(duration("100:00:00"), Some(360_000));
        assert_eq!(duration("90"), Some(90));
        assert_eq!(duration("1:2:3:4"), None);
        assert_eq!(duration("soon"), None);
    }

    #[test]
    fn text_continuations_join_and_both_indents_read() {
        let text = "Job Id: 7.server\n    Job_Name = a\n    Variable_List = A=1,\n\tB=2\n    job_state = R\n\
                    Job Id:\t8\n\tjob_state = Q\n\texec_host = n1/0\n";
        let jobs = from_text(text);
        assert_eq!(jobs.len(), 2);
        assert_eq!(jobs[0].0, "7.server");
        assert_eq!(jobs[0].1["Variable_List"], "A=1,B=2");
        assert_eq!(jobs[0].1["job_state"], "R");
        assert_eq!(jobs[1].0, "8");
        assert_eq!(jobs[1].1["exec_host"], "n1/0");
    }

    /// Recorded `qstat` output from real servers (tests/fixtures/qstat,
    /// with its sources and licences in SOURCES.md there).
    fn fixture(name: &str) -> String {
        let path = format!("{}/tests/fixtures/qstat/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn statuses(jobs: &[(String, Attributes)], dialect: Dialect) -> Vec<(String, JobStatus)> {
        jobs.iter()
            .map(|(id, job)| (id.clone(), status_of(job, dialect)))
            .collect()
    }

    fn running(node: &str, time_left: Option<u64>) -> JobStatus {
        JobStatus::Running {
            node: node.into(),
            time_left,
            restarts: 0,
        }
    }

    fn pending(reason: Option<&str>) -> JobStatus {
        JobStatus::Pending {
            reason: reason.map(str::to_owned),
            expected_start: None,
            restarts: 0,
        }
    }

    fn ended(state: &str, reason: Option<EndReason>) -> JobStatus {
        JobStatus::Ended {
            state: Some(state.into()),
            reason,
        }
    }

    #[test]
    fn openpbs_json_running_finished_and_held() {
        let jobs = from_json(&fixture("firecrest-running.json")).unwrap();
        assert_eq!(
            statuses(&jobs, Dialect::Pbs),
            [("1.pbs".into(), running("pbs", Some(290)))]
        );
        let jobs = from_json(&fixture("firecrest-finished-and-running.json")).unwrap();
        assert_eq!(
            statuses(&jobs, Dialect::Pbs),
            [
                ("1004.pbs".into(), ended("F", None)),
                ("1005.pbs".into(), ended("F", None)),
                ("1006.pbs".into(), running("pbs", Some(290))),
            ]
        );
        let jobs = from_json(&fixture("buildtest-held.json")).unwrap();
        assert_eq!(
            statuses(&jobs, Dialect::Pbs),
            [("157.pbs".into(), pending(Some("held")))]
        );
    }

    #[test]
    fn openpbs_broken_json_is_refused_and_never_half_read() {
        for broken in [
            "broken-1255-unquoted-numbers.json",
            "broken-2541-invalid-escape.json",
        ] {
            let text = fixture(broken);
            assert!(from_json(&text).is_none(), "{broken}");
            assert!(from_text(&text).is_empty(), "{broken}");
        }
        // A server that knows none of the jobs asked prints no "Jobs".
        assert_eq!(
            from_json(r#"{"timestamp":1,"pbs_version":"23.06.06","pbs_server":"pbs"}"#),
            Some(Vec::new())
        );
        assert_eq!(from_json(r#"{"something":"else"}"#), None);
    }

    #[test]
    fn pbs_pro_text_queued_running_held() {
        let jobs = from_text(&fixture("aiida-pbspro-qstat-f-Q-R-H.txt"));
        let offline = Some("Node is in an ineligible state: offline");
        assert_eq!(
            statuses(&jobs, Dialect::Pbs),
            [
                ("68350.mycluster".into(), pending(offline)),
                ("68351.mycluster".into(), pending(offline)),
                ("69301.mycluster".into(), running("b141", Some(27_224))),
                ("69302.mycluster".into(), pending(Some("held"))),
                ("74164.mycluster".into(), running("b270", Some(47_687))),
                ("74165.mycluster".into(), pending(Some("held"))),
            ]
        );
        // Tab continuations are joined as the server split them, mid-word.
        assert!(jobs[0].1["Variable_List"].contains(
            "PBS_O_PATH=/opt/xcat/bin:/opt/xcat/sbin:/usr/lib64/qt-3.3/bin:/usr/local/bin:"
        ));
    }

    #[test]
    fn torque_text_with_its_own_remaining_time_and_exit_statuses() {
        let jobs = from_text(&fixture("aiida-torque-qstat-f-ichec.txt"));
        let all = statuses(&jobs, Dialect::Torque);
        assert_eq!(all.len(), 10);
        assert_eq!(all[0], ("549159".into(), pending(Some("held"))));
        assert_eq!(all[1], ("555716".into(), running("r2i4n13", Some(101_627))));
        assert_eq!(all[2], ("556491".into(), running("r3i1n2", Some(236_282))));
        // 271 = 256 + SIGTERM: deleted with qdel.
        assert_eq!(
            all[3],
            ("546437".into(), ended("C", Some(EndReason::Cancelled)))
        );
        assert_eq!(all[4], ("547637".into(), pending(None)));
        assert_eq!(
            all[9],
            ("543984".into(), ended("C", Some(EndReason::Cancelled)))
        );
        let jobs = from_text(&fixture("buildtest-torque6-completed.txt"));
        assert_eq!(
            statuses(&jobs, Dialect::Torque),
            [("40680075.e4spro-cluster".into(), ended("C", None))]
        );
    }

    #[test]
    fn walltime_kills_per_dialect() {
        assert_eq!(end_reason(-29, Dialect::Pbs), Some(EndReason::TimeLimit));
        assert_eq!(end_reason(-11, Dialect::Torque), Some(EndReason::TimeLimit));
        assert_eq!(end_reason(-11, Dialect::Pbs), Some(EndReason::JobFailed));
        assert_eq!(end_reason(0, Dialect::Pbs), None);
        assert_eq!(end_reason(1, Dialect::Torque), Some(EndReason::JobFailed));
    }
}
