//! One launch's directory under the user's state dir (`sessions/<alias>` of
//! `user_dirs::StateDirs`).
//!
//! It is the hand-off between the launcher and the job: the batch script gets
//! only its path (`JRPS_SESSION_DIR`), and reads the secrets from 0600 files
//! here, so no secret is ever on a command line or in a script. Home
//! directories are shared with compute nodes on clusters, which is what makes
//! this work there. Every file is written atomically (temporary file, fsync,
//! rename), so a launcher killed mid-write leaves the old file or the new one.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::api::EndReason;
use crate::proxy_client::ProxyEndpoint;
use crate::scheduler::SchedulerKind;
use crate::session_kind::SessionKind;
use crate::user_dirs::StateDirs;

/// The Jupyter token (the proxy only ever sees its SHA-256).
pub const TOKEN_FILE: &str = "token";
/// The proxy's per-session secret: link, register (once) and delete.
pub const REGISTER_SECRET_FILE: &str = "register_secret";
const RECORD_FILE: &str = "session.json";
/// The batch script as submitted, kept for `jrps up -I` and for the record.
const SCRIPT_FILE: &str = "job.sh";
/// Why the session ended, written by the job (`jrps register`), read by `jrps ls`.
const END_REASON_FILE: &str = "end_reason";
/// What went wrong, in words, when the job failed before Jupyter was ready
/// (the proxy's refusal, a node without an address): shown by `jrps up`
/// and `jrps ls`, so the cause is not only in the job log's tail.
const FAILURE_FILE: &str = "failure";
/// Longest failure text kept: it is a line on a terminal, not a log.
const FAILURE_MAX_BYTES: usize = 500;

#[derive(Debug, thiserror::Error)]
pub enum SessionDirError {
    #[error("cannot {action} {}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{} is not a jrps session record", path.display())]
    BadRecord {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error(transparent)]
    NoStateHome(#[from] crate::user_dirs::NoStateHome),
}

/// What the launcher knows about one session, and what the job helper needs
/// to reach the proxy. Never holds a secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRecord {
    pub alias: String,
    /// The session's public URL, without its token.
    pub url: String,
    pub proxy_url: String,
    pub proxy_ca: Option<PathBuf>,
    /// The one address records of earlier versions name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_connect_to: Option<std::net::SocketAddr>,
    /// Where to reach the proxy instead of resolving its URL, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub proxy_addresses: Vec<std::net::SocketAddr>,
    /// The munged socket for API calls when the site has `identity = "munge"`.
    #[serde(default)]
    pub munge_socket: Option<PathBuf>,
    pub scheduler: SchedulerKind,
    /// The site's cluster the job runs on (`[clusters.NAME]`); absent on a
    /// site of one cluster, and in records of earlier versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    pub job_id: Option<String>,
    pub profile: String,
    pub partition: String,
    /// The job's output. Outside the session dir so that it outlives a
    /// failed or ended session.
    pub log: PathBuf,
    pub created_at: u64,
    pub expires_at: u64,
    /// What the job's end watch needs; absent in records of earlier versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<TimePlan>,
    /// What the session runs; unknown in records of earlier versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<SessionKind>,
    /// GPUs the job asked for; unknown in records of earlier versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpus: Option<u32>,
}

/// A session's time as the launcher planned it: how much more than asked
/// the job was given for `jrps extend`, and when the page warns and saves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimePlan {
    /// Seconds the job runs past the session's first end (0: none).
    pub headroom_s: u64,
    pub warn_before: Vec<u32>,
    pub save_before: u32,
}

impl SessionRecord {
    /// What the session runs: a record of an earlier version is of a
    /// Jupyter session, which all then were.
    pub fn kind(&self) -> SessionKind {
        self.kind.unwrap_or_default()
    }

    pub fn proxy_endpoint(&self) -> ProxyEndpoint {
        ProxyEndpoint {
            url: self.proxy_url.clone(),
            ca_file: self.proxy_ca.clone(),
            connect_to: self
                .proxy_addresses
                .iter()
                .copied()
                .chain(self.proxy_connect_to)
                .collect(),
            munge: self
                .munge_socket
                .clone()
                .map(|socket| crate::identity::Munge { socket }),
        }
    }
}

#[derive(Debug, Clone)]
pub struct SessionDir {
    path: PathBuf,
}

impl SessionDir {
    /// Opens an existing session directory (e.g. `JRPS_SESSION_DIR` in a job).
    pub fn open(path: impl Into<PathBuf>) -> Self {
        SessionDir { path: path.into() }
    }

    /// Makes `sessions/<alias>`, private to the user.
    pub fn create(state: &StateDirs, alias: &str) -> Result<Self, SessionDirError> {
        let sessions = state.sessions();
        make_private_dir(&sessions, true)?;
        let path = sessions.join(alias);
        make_private_dir(&path, false)?;
        Ok(SessionDir { path })
    }

    /// Every session directory of this user, oldest alias order not promised.
    pub fn list(state: &StateDirs) -> Result<Vec<Self>, SessionDirError> {
        let sessions = state.sessions();
        let entries = match fs::read_dir(&sessions) {
            Ok(entries) => entries,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => return Err(io_error("read", &sessions, source)),
        };
        let mut dirs = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|source| io_error("read", &sessions, source))?;
            if entry.path().join(RECORD_FILE).is_file() {
                dirs.push(SessionDir { path: entry.path() });
            }
        }
        dirs.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(dirs)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Saves the submitted script and returns its path.
    pub fn write_script(&self, script: &str) -> Result<PathBuf, SessionDirError> {
        self.write_atomically(SCRIPT_FILE, script.as_bytes())?;
        Ok(self.path.join(SCRIPT_FILE))
    }

    pub fn write_record(&self, record: &SessionRecord) -> Result<(), SessionDirError> {
        let mut json = serde_json::to_vec_pretty(record).expect("a record always serialises");
        json.push(b'\n');
        self.write_atomically(RECORD_FILE, &json)
    }

    pub fn read_record(&self) -> Result<SessionRecord, SessionDirError> {
        let path = self.path.join(RECORD_FILE);
        let bytes = fs::read(&path).map_err(|source| io_error("read", &path, source))?;
        serde_json::from_slice(&bytes).map_err(|source| SessionDirError::BadRecord { path, source })
    }

    pub fn write_secret(&self, name: &str, value: &str) -> Result<(), SessionDirError> {
        self.write_atomically(name, value.as_bytes())
    }

    pub fn read_secret(&self, name: &str) -> Result<String, SessionDirError> {
        let path = self.path.join(name);
        let value = fs::read_to_string(&path).map_err(|source| io_error("read", &path, source))?;
        Ok(value.trim().to_owned())
    }

    /// Records why the session ended, unless a reason is recorded already:
    /// the first to know (the idle watch) is not overwritten by the exit
    /// trap that runs after it.
    pub fn record_end_reason(&self, reason: EndReason) -> Result<EndReason, SessionDirError> {
        if self.write_once(END_REASON_FILE, reason.name())? {
            Ok(reason)
        } else {
            Ok(self.end_reason().unwrap_or(reason))
        }
    }

    /// The recorded reason, if the job recorded one.
    pub fn end_reason(&self) -> Option<EndReason> {
        let text = fs::read_to_string(self.path.join(END_REASON_FILE)).ok()?;
        EndReason::parse(text.trim())
    }

    /// Records what made the job fail, unless a cause is recorded already
    /// (the first failure is the cause; what follows it is consequence).
    /// Control characters become spaces: the text is shown on terminals.
    pub fn record_failure(&self, cause: &str) -> Result<(), SessionDirError> {
        let mut line: String = cause
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        if line.len() > FAILURE_MAX_BYTES {
            let mut end = FAILURE_MAX_BYTES;
            while !line.is_char_boundary(end) {
                end -= 1;
            }
            line.truncate(end);
        }
        self.write_once(FAILURE_FILE, line.trim()).map(|_| ())
    }

    /// What made the job fail, if it said.
    pub fn failure(&self) -> Option<String> {
        let text = fs::read_to_string(self.path.join(FAILURE_FILE)).ok()?;
        Some(text.trim().to_owned()).filter(|t| !t.is_empty())
    }

    /// Writes `line` to `name` unless that file exists; whether it wrote.
    fn write_once(&self, name: &str, line: &str) -> Result<bool, SessionDirError> {
        let path = self.path.join(name);
        let created = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path);
        match created {
            Ok(mut file) => {
                file.write_all(format!("{line}\n").as_bytes())
                    .and_then(|()| file.sync_all())
                    .map_err(|source| io_error("write", &path, source))?;
                Ok(true)
            }
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists => Ok(false),
            Err(source) => Err(io_error("create", &path, source)),
        }
    }

    pub fn remove(&self) -> Result<(), SessionDirError> {
        // A job cancelled a moment ago may still be recording why it ended
        // (its exit trap), so a file can appear while the folder is being
        // emptied: empty it again.
        let mut tries = 0;
        loop {
            match fs::remove_dir_all(&self.path) {
                Ok(()) => return Ok(()),
                Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(()),
                Err(error) if error.kind() == io::ErrorKind::DirectoryNotEmpty && tries < 20 => {
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                Err(source) => return Err(io_error("remove", &self.path, source)),
            }
        }
    }

    fn write_atomically(&self, name: &str, contents: &[u8]) -> Result<(), SessionDirError> {
        let target = self.path.join(name);
        let temporary = self.path.join(format!(".{name}.tmp"));
        let write = || -> io::Result<()> {
            // 0600 from creation: a secret is never readable, not even briefly.
            let mut file = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&temporary)?;
            file.write_all(contents)?;
            file.sync_all()?;
            fs::rename(&temporary, &target)?;
            File::open(&self.path)?.sync_all()
        };
        write().map_err(|source| io_error("write", &target, source))
    }
}

fn make_private_dir(path: &Path, recursive: bool) -> Result<(), SessionDirError> {
    DirBuilder::new()
        .recursive(recursive)
        .mode(0o700)
        .create(path)
        .map_err(|source| io_error("create", path, source))
}

fn io_error(action: &'static str, path: &Path, source: io::Error) -> SessionDirError {
    SessionDirError::Io {
        action,
        path: path.to_owned(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn record(alias: &str) -> SessionRecord {
        SessionRecord {
            alias: alias.to_owned(),
            url: format!("https://{alias}.jrps.localhost/"),
            proxy_url: "https://manage.jrps.localhost".to_owned(),
            proxy_ca: None,
            proxy_connect_to: None,
            proxy_addresses: Vec::new(),
            munge_socket: None,
            scheduler: SchedulerKind::Local,
            cluster: None,
            job_id: None,
            profile: "default".to_owned(),
            partition: "compute".to_owned(),
            log: PathBuf::from("/tmp/job.log"),
            created_at: 1,
            expires_at: 2,
            time: None,
            kind: Some(SessionKind::Lab),
            gpus: Some(0),
        }
    }

    #[test]
    fn secrets_are_private_and_records_round_trip() {
        let home = tempfile::tempdir().unwrap();
        let home_path = home.path().to_str().unwrap().to_owned();
        let state =
            StateDirs::locate(|name| (name == "HOME").then_some(home_path.as_str())).unwrap();
        let dir = SessionDir::create(&state, "amber-otter-lagoon").unwrap();
        dir.write_secret(TOKEN_FILE, "s3cret\n").unwrap();
        let mode = fs::metadata(dir.path().join(TOKEN_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let dir_mode = fs::metadata(dir.path()).unwrap().permissions().mode();
        assert_eq!(dir_mode & 0o777, 0o700);
        assert_eq!(dir.read_secret(TOKEN_FILE).unwrap(), "s3cret");

        assert_eq!(dir.end_reason(), None);
        assert_eq!(
            dir.record_end_reason(EndReason::Idle).unwrap(),
            EndReason::Idle
        );
        assert_eq!(
            dir.record_end_reason(EndReason::JupyterExited).unwrap(),
            EndReason::Idle,
            "the first reason stays"
        );
        assert_eq!(dir.end_reason(), Some(EndReason::Idle));

        assert_eq!(dir.failure(), None);
        dir.record_failure("refused:\n403\x1b[31m").unwrap();
        dir.record_failure("a consequence").unwrap();
        assert_eq!(dir.failure().as_deref(), Some("refused: 403 [31m"));
        let long = "é".repeat(FAILURE_MAX_BYTES);
        let other = SessionDir::create(&state, "other-alias-here").unwrap();
        other.record_failure(&long).unwrap();
        assert!(other.failure().unwrap().len() <= FAILURE_MAX_BYTES);

        dir.write_record(&record("amber-otter-lagoon")).unwrap();
        assert_eq!(dir.read_record().unwrap(), record("amber-otter-lagoon"));
        let listed = SessionDir::list(&state).unwrap();
        assert_eq!(listed.len(), 1, "only folders with a record are sessions");
        dir.remove().unwrap();
        assert!(SessionDir::list(&state).unwrap().is_empty());
    }
}
