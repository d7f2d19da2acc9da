//! Jobs on this machine, for a workstation without a batch system: the script
//! runs as `bash SCRIPT` in its own process group, detached from the jrps that
//! started it, with stdout and stderr in the job's log file.
//!
//! The submitting jrps exits while the job lives on, so everything `status`
//! and `cancel` need is kept in a small JSON record per job under the state
//! directory, named after the job id (`local-<pid>`). A record stores the
//! leader's start time too: pids are reused, and a job must never be confused
//! with an unrelated process that later got its number.

use std::fs;
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rustix::io::Errno;
use rustix::process::{Pid, Signal, kill_process_group, test_kill_process_group};
use serde::{Deserialize, Serialize};

use super::error::SchedulerError;
use super::interface::Scheduler;
use super::job::{JobId, JobStatus, JobSubmission};
use super::job_log;
use super::kind::SchedulerKind;

const ID_PREFIX: &str = "local-";
const DEFAULT_GRACE: Duration = Duration::from_secs(5);
const POLL: Duration = Duration::from_millis(50);

#[derive(Debug, Clone)]
pub struct Local {
    state_dir: PathBuf,
    grace: Duration,
}

/// What a later jrps process needs to find a job again.
#[derive(Debug, Serialize, Deserialize)]
struct Record {
    /// Pid of `bash SCRIPT`, which is also the process group id.
    pid: i32,
    /// Field 22 of `/proc/<pid>/stat` (clock ticks after boot) at submission.
    start_time: u64,
    job_name: String,
    script: PathBuf,
    log: PathBuf,
}

impl Local {
    /// Jobs' records and scripts go under `state_dir` (created, mode 0700).
    pub fn new(state_dir: impl Into<PathBuf>) -> Self {
        Local {
            state_dir: state_dir.into(),
            grace: DEFAULT_GRACE,
        }
    }

    /// How long `cancel` waits after SIGTERM before SIGKILL (default 5 s).
    pub fn with_grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    fn record_path(&self, id: &JobId) -> PathBuf {
        self.state_dir.join(format!("{id}.json"))
    }

    fn read_record(&self, id: &JobId) -> Result<Option<Record>, SchedulerError> {
        local_pid(id)?;
        let path = self.record_path(id);
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(io_error("read the job record", &path, source)),
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|error| SchedulerError::DamagedRecord {
                path: path.clone(),
                detail: error.to_string(),
            })
    }

    fn write_record(&self, id: &JobId, record: &Record) -> Result<(), SchedulerError> {
        let path = self.record_path(id);
        let partial = path.with_extension("json.partial");
        let text = serde_json::to_string_pretty(record).expect("a record always serialises");
        // Written aside and renamed, so a concurrent `status` never reads half a record.
        fs::write(&partial, text)
            .and_then(|()| fs::rename(&partial, &path))
            .map_err(|source| io_error("write the job record", &path, source))
    }
}

impl Scheduler for Local {
    fn kind(&self) -> SchedulerKind {
        SchedulerKind::Local
    }

    fn submit(&self, job: &JobSubmission) -> Result<JobId, SchedulerError> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.state_dir)
            .map_err(|source| io_error("create the state directory", &self.state_dir, source))?;
        let script = self.state_dir.join(unique_script_name(&job.job_name));
        fs::write(&script, &job.script)
            .map_err(|source| io_error("write the batch script", &script, source))?;

        let log_path = job.workdir.join(&job.log_path);
        let log = job_log::create(&log_path)?;
        let log_err = log
            .try_clone()
            .map_err(|source| io_error("open the job log", &log_path, source))?;

        let mut child = Command::new("bash")
            .arg(&script)
            .current_dir(&job.workdir)
            .envs(job.env.iter().map(|(name, value)| (name, value)))
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            // Its own group: Ctrl-C at the submitting terminal does not reach the
            // job, and `cancel` can signal the script and all it started at once.
            .process_group(0)
            .spawn()
            .map_err(|source| SchedulerError::Spawn {
                program: "bash".into(),
                source,
            })?;
        let pid = i32::try_from(child.id()).expect("pids fit in i32");
        // Not yet reaped, so /proc/<pid> is there even if the script already exited.
        let start_time = process_start_time(pid).unwrap_or(0);
        // Reap the child if this process outlives it, or it lingers as a zombie
        // that still answers kill(-pgid, 0); if we exit first, init adopts it.
        std::thread::spawn(move || child.wait());

        let id = JobId(format!("{ID_PREFIX}{pid}"));
        self.write_record(
            &id,
            &Record {
                pid,
                start_time,
                job_name: job.job_name.clone(),
                script,
                log: log_path,
            },
        )?;
        Ok(id)
    }

    fn status(&self, id: &JobId) -> Result<JobStatus, SchedulerError> {
        match self.read_record(id)? {
            Some(record) if group_alive(&record) => Ok(JobStatus::Running {
                node: hostname(),
                time_left: None,
                restarts: 0,
            }),
            _ => Ok(JobStatus::Ended {
                state: None,
                reason: None,
            }),
        }
    }

    fn cancel(&self, id: &JobId) -> Result<(), SchedulerError> {
        let Some(record) = self.read_record(id)? else {
            return Ok(());
        };
        for (signal, wait) in [
            (Signal::TERM, self.grace),
            (Signal::KILL, Duration::from_secs(2)),
        ] {
            if !group_alive(&record) {
                return Ok(());
            }
            let pgid = Pid::from_raw(record.pid).expect("record pids are positive");
            match kill_process_group(pgid, signal) {
                Ok(()) | Err(Errno::SRCH) => {}
                Err(error) => {
                    return Err(SchedulerError::Signal {
                        id: id.to_string(),
                        source: error.into(),
                    });
                }
            }
            let deadline = Instant::now() + wait;
            while group_alive(&record) && Instant::now() < deadline {
                std::thread::sleep(POLL);
            }
        }
        if group_alive(&record) {
            return Err(SchedulerError::Signal {
                id: id.to_string(),
                source: std::io::Error::other("the job's processes survived SIGKILL"),
            });
        }
        Ok(())
    }
}

fn io_error(action: &'static str, path: &Path, source: std::io::Error) -> SchedulerError {
    SchedulerError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

/// `local-<pid>` → pid; anything else was made by another scheduler.
fn local_pid(id: &JobId) -> Result<i32, SchedulerError> {
    id.as_str()
        .strip_prefix(ID_PREFIX)
        .and_then(|pid| pid.parse::<i32>().ok())
        .filter(|pid| *pid > 0)
        .ok_or_else(|| SchedulerError::ForeignJobId(id.to_string()))
}

fn unique_script_name(job_name: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_nanos())
        .unwrap_or_default();
    let safe: String = job_name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{safe}-{}-{nanos}.sh", std::process::id())
}

/// State letter and start time of a process, from `/proc/<pid>/stat`.
fn process_stat(pid: i32) -> Option<(char, u64)> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: split after its last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state); start time is field 22.
    let state = fields.first()?.chars().next()?;
    let start = fields.get(19)?.parse().ok()?;
    Some((state, start))
}

fn process_start_time(pid: i32) -> Option<u64> {
    process_stat(pid).map(|(_, start)| start)
}

/// Process group id and state letter, from `/proc/<pid>/stat` (fields 5 and 3).
fn process_group_and_state(pid: &str) -> Option<(i32, char)> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Some((
        fields.get(2)?.parse().ok()?,
        fields.first()?.chars().next()?,
    ))
}

/// Whether any process of the job's group is alive (zombies do not count).
fn group_alive(record: &Record) -> bool {
    let Some(pgid) = Pid::from_raw(record.pid) else {
        return false;
    };
    // The cheap check first: no such group, or one of another user's, is not ours.
    if test_kill_process_group(pgid).is_err() {
        return false;
    }
    match process_stat(record.pid) {
        Some((_, start)) if record.start_time != 0 && start != record.start_time => false,
        Some((state, _)) if state != 'Z' => true,
        // The script is gone (or a zombie) but its group lives on: look for a live member.
        _ => fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|entry| entry.file_name().into_string().ok())
            .filter(|name| name.bytes().all(|b| b.is_ascii_digit()))
            .filter_map(|pid| process_group_and_state(&pid))
            .any(|(group, state)| group == record.pid && state != 'Z'),
    }
}

fn hostname() -> String {
    fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_owned())
        .ok()
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip() {
        assert_eq!(local_pid(&JobId::from("local-42")).unwrap(), 42);
        assert!(local_pid(&JobId::from("42")).is_err());
        assert!(local_pid(&JobId::from("local--1")).is_err());
        assert!(local_pid(&JobId::from("local-../x")).is_err());
    }

    #[test]
    fn reads_own_stat() {
        let pid = i32::try_from(std::process::id()).unwrap();
        let (state, start) = process_stat(pid).unwrap();
        assert!(state == 'R' || state == 'S', "state {state}");
        assert!(start > 0);
    }
}
