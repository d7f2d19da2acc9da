//! `jrps ls`, `url`, `logs` and `down`: the user's sessions, read from the
//! session dirs that `jrps up` wrote (so they work from any later shell, and
//! after the launcher itself crashed), and with `identity = "munge"` also
//! from the proxy, which knows the sessions this uid launched elsewhere
//! (another login node, another state directory).

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use crate::api::{EndReason, SessionState};
use crate::clock::unix_now;
use crate::launcher::environment::Environment;
use crate::launcher::launcher_error::LauncherError;
use crate::launcher::site_config::SiteConfig;
use crate::launcher::source::{Source, Sourced};
use crate::proxy_client::{OUTAGE_PATIENCE, ProxyClient, ProxyClientError, ProxyEndpoint};
use crate::scheduler::{CommandEnv, JobId, JobStatus, Scheduler, SchedulerError, SchedulerKind};
use crate::session_dir::{
    REGISTER_SECRET_FILE, SessionDir, SessionDirError, SessionRecord, TOKEN_FILE,
};
use crate::session_kind::SessionKind;
use crate::user_dirs::StateDirs;
use crate::wall_time::WallTime;

#[derive(Debug, thiserror::Error)]
pub enum SessionCommandError {
    #[error("no session `{wanted}`")]
    NotFound { wanted: String, known: Vec<String> },
    #[error("name a session (alias or job id) or pass --all")]
    NothingNamed,
    #[error(
        "{alias} was launched from another login node or state directory: its token and log are there"
    )]
    Elsewhere { alias: String },
    #[error("{alias} cannot be extended: {why}")]
    NotExtendable { alias: String, why: String },
    #[error("{alias} runs {kind}, which is no Jupyter server")]
    NoJupyterServer { alias: String, kind: SessionKind },
    #[error(transparent)]
    SessionDir(#[from] SessionDirError),
    #[error(transparent)]
    Scheduler(#[from] SchedulerError),
    #[error(transparent)]
    Proxy(#[from] ProxyClientError),
    #[error(transparent)]
    Output(#[from] LauncherError),
}

/// Which sessions `jrps down` ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DownTarget {
    /// By alias or job id.
    One(String),
    All,
}

impl SessionCommandError {
    /// 2 for a session that is not there, 1 for failures at run time.
    pub fn exit_code(&self) -> u8 {
        match self {
            SessionCommandError::NotFound { .. }
            | SessionCommandError::NothingNamed
            | SessionCommandError::Elsewhere { .. }
            | SessionCommandError::NotExtendable { .. }
            | SessionCommandError::NoJupyterServer { .. } => 2,
            SessionCommandError::Output(error) => error.exit_code(),
            _ => 1,
        }
    }

    pub fn hint(&self) -> Option<String> {
        match self {
            SessionCommandError::NotFound { known, .. } if known.is_empty() => {
                Some("you have no sessions; start one with `jrps up`".to_owned())
            }
            SessionCommandError::NotFound { known, .. } => {
                Some(format!("your sessions: {}", known.join(", ")))
            }
            SessionCommandError::NothingNamed => Some("see `jrps ls`".to_owned()),
            SessionCommandError::NotExtendable { why, .. } if why.contains("extend_max") => Some(
                "a partition with extend_max in site.toml gives its sessions room to be extended"
                    .to_owned(),
            ),
            SessionCommandError::Scheduler(error) => error.hint(),
            SessionCommandError::Proxy(error) => error.hint(),
            _ => None,
        }
    }
}

/// A session's job as its scheduler answered for it.
#[derive(Debug, Clone)]
enum JobView {
    Known(JobStatus),
    /// `jrps up` was stopped before the scheduler gave the job an id.
    Unsubmitted,
    /// The scheduler could not be asked (it failed, or did not answer in
    /// time): nothing is known of the job, and nothing may be concluded.
    Unknown,
}

/// Every session's job, asking each scheduler once for all of its jobs.
fn job_views(sessions: &[Session]) -> Vec<JobView> {
    let mut views = vec![JobView::Unsubmitted; sessions.len()];
    // One scheduler per cluster: its own commands, asked once.
    type Cluster<'a> = (SchedulerKind, Option<&'a str>);
    let mut by_scheduler: Vec<(Cluster, Vec<usize>)> = Vec::new();
    for (at, session) in sessions.iter().enumerate() {
        if session.record.job_id.is_none() {
            continue;
        }
        let key = (session.record.scheduler, session.record.cluster.as_deref());
        match by_scheduler.iter_mut().find(|(k, _)| *k == key) {
            Some((_, members)) => members.push(at),
            None => by_scheduler.push((key, vec![at])),
        }
    }
    for (_, members) in by_scheduler {
        let ids: Vec<JobId> = members
            .iter()
            .filter_map(|&at| sessions[at].record.job_id.clone().map(JobId::from))
            .collect();
        let scheduler = sessions[members[0]].scheduler();
        match scheduler.and_then(|scheduler| scheduler.status_many(&ids)) {
            Ok(mut found) => {
                for (&at, id) in members.iter().zip(&ids) {
                    if let Some(status) = found.remove(id) {
                        views[at] = JobView::Known(status);
                    }
                }
            }
            Err(error) => {
                let on = sessions[members[0]]
                    .record
                    .cluster
                    .as_ref()
                    .map_or(String::new(), |cluster| format!(" (cluster {cluster})"));
                eprintln!(
                    "warning: {}{on} could not be asked where its jobs are: {error}",
                    sessions[members[0]].record.scheduler
                );
                for &at in &members {
                    views[at] = JobView::Unknown;
                }
            }
        }
    }
    views
}

struct Session {
    /// `None` for a session known only from the proxy.
    dir: Option<SessionDir>,
    record: SessionRecord,
    state: StateDirs,
    /// How its scheduler's commands run (its cluster's environment and
    /// timeout); `None` for a cluster the site no longer defines.
    commands: Option<CommandEnv>,
    /// What the proxy's listing said of it (sessions from the proxy).
    proxy: Option<ProxyView>,
}

/// A session as the proxy sees it.
#[derive(Debug, Clone, Copy)]
struct ProxyView {
    state: SessionState,
    end_reason: Option<EndReason>,
    /// It waits for a new run of its job.
    restarted: bool,
    /// When it ends, which `jrps extend` may have moved.
    ends_at: Option<u64>,
    extend_until: Option<u64>,
}

impl From<&crate::api::SessionStatus> for ProxyView {
    fn from(s: &crate::api::SessionStatus) -> ProxyView {
        ProxyView {
            state: s.state,
            end_reason: s.end_reason,
            restarted: s.restarted,
            ends_at: s.ends_at,
            extend_until: s.extend_until,
        }
    }
}

impl Session {
    fn scheduler(&self) -> Result<Box<dyn Scheduler>, SchedulerError> {
        let commands = self.commands.clone().ok_or_else(|| {
            SchedulerError::UnknownCluster(self.record.cluster.clone().unwrap_or_default())
        })?;
        Ok(crate::scheduler::build(
            self.record.scheduler,
            commands,
            self.state.local_jobs(),
        ))
    }

    fn job_status(&self) -> JobView {
        let Some(id) = self.record.job_id.clone() else {
            return JobView::Unsubmitted;
        };
        match self.scheduler().and_then(|s| s.status(&JobId::from(id))) {
            Ok(status) => JobView::Known(status),
            Err(_) => JobView::Unknown,
        }
    }

    /// The proxy's view: the listing's when it had one, else asked now.
    /// `None` when the proxy does not answer.
    fn proxy_view(&self) -> Option<ProxyView> {
        if let Some(view) = self.proxy {
            return Some(view);
        }
        let client = ProxyClient::new(&self.record.proxy_endpoint(), None).ok()?;
        let runtime = crate::proxy_client::runtime().ok()?;
        let ask = client.status(&self.record.alias, None);
        let status = runtime
            .block_on(async { tokio::time::timeout(Duration::from_secs(5), ask).await })
            .ok()?
            .ok()?;
        Some(ProxyView::from(&status))
    }
}

/// This state directory's sessions.
/// How the scheduler of a session's cluster is asked, on this site: with
/// that cluster's environment and timeout (the site's own on a site of
/// one). `None` when the site does not define it (any more): another
/// cluster's scheduler must not be asked in its place.
fn commands_for(site: &SiteConfig, cluster: Option<&str>) -> Option<CommandEnv> {
    if site.clusters.is_empty() {
        return Some(site.scheduler_commands());
    }
    let named = Sourced::new(cluster?.to_owned(), Source::Default);
    site.for_cluster(Some(&named), "")
        .ok()
        .map(|view| view.scheduler_commands())
}

fn sessions(state: &StateDirs, site: &SiteConfig) -> Result<Vec<Session>, SessionCommandError> {
    let mut sessions = Vec::new();
    for dir in SessionDir::list(state)? {
        // A record being rewritten right now, or a stray directory, is skipped.
        if let Ok(record) = dir.read_record() {
            sessions.push(Session {
                dir: Some(dir),
                commands: commands_for(site, record.cluster.as_deref()),
                record,
                state: state.clone(),
                proxy: None,
            });
        }
    }
    Ok(sessions)
}

/// This state directory's sessions and, with identity on, the caller's
/// others that the proxy knows.
fn all_sessions() -> Result<Vec<Session>, SessionCommandError> {
    let env = Environment::capture();
    let state = env.state_dirs()?;
    let site = SiteConfig::load(&env.site_dir())?;
    let mut sessions = sessions(&state, &site)?;
    let remote = from_proxy(&site, &state, &sessions)?;
    sessions.extend(remote);
    Ok(sessions)
}

/// With `identity = "munge"`, the caller's sessions the proxy knows and
/// this state directory does not. Best effort: a proxy out of reach leaves
/// the local list, with a warning.
fn from_proxy(
    site: &SiteConfig,
    state: &StateDirs,
    local: &[Session],
) -> Result<Vec<Session>, SessionCommandError> {
    let (Some(munge), Some(url)) = (site.munge.clone(), site.proxy_url.clone()) else {
        return Ok(Vec::new());
    };
    let endpoint = ProxyEndpoint {
        url,
        ca_file: site.proxy_ca.clone(),
        connect_to: site.proxy_address.clone(),
        munge: Some(munge.clone()),
    };
    let listed = crate::proxy_client::runtime()
        .map_err(|e| e.to_string())
        .and_then(|runtime| {
            let client = ProxyClient::new(&endpoint, None).map_err(|e| e.to_string())?;
            runtime
                .block_on(client.own_sessions())
                .map_err(|e| e.to_string())
        });
    let own = match listed {
        Ok(own) => own,
        Err(error) => {
            eprintln!("warning: sessions launched elsewhere are not listed: {error}");
            return Ok(Vec::new());
        }
    };
    Ok(own
        .into_iter()
        .filter(|s| !local.iter().any(|l| l.record.alias == s.alias))
        .map(|s| Session {
            dir: None,
            commands: commands_for(site, s.cluster.as_deref()),
            record: SessionRecord {
                alias: s.alias,
                url: s.url,
                proxy_url: endpoint.url.clone(),
                proxy_ca: endpoint.ca_file.clone(),
                proxy_connect_to: None,
                proxy_addresses: endpoint.connect_to.clone(),
                munge_socket: Some(munge.socket.clone()),
                scheduler: s
                    .cluster
                    .as_ref()
                    .and_then(|name| site.clusters.get(name))
                    .map_or(site.scheduler, |cluster| cluster.scheduler),
                cluster: s.cluster,
                job_id: s.job_id,
                profile: "-".into(),
                partition: "-".into(),
                log: PathBuf::new(),
                created_at: s.created_at,
                expires_at: s.expires_at,
                time: None,
                // Only the login node that launched it knows (the proxy
                // holds the kind only of those it logs in to).
                kind: s.kind,
                gpus: None,
            },
            state: state.clone(),
            proxy: Some(ProxyView {
                state: s.state,
                end_reason: s.end_reason,
                restarted: s.restarted,
                ends_at: s.ends_at,
                extend_until: s.extend_until,
            }),
        })
        .collect())
}

impl Session {
    /// Its folder, or the error for a session launched elsewhere.
    fn dir(&self) -> Result<&SessionDir, SessionCommandError> {
        self.dir
            .as_ref()
            .ok_or_else(|| SessionCommandError::Elsewhere {
                alias: self.record.alias.clone(),
            })
    }
}

/// The session named `wanted` (alias or job id): this state directory's
/// first, the proxy asked only when it is not here.
fn find(wanted: &str) -> Result<Session, SessionCommandError> {
    let matches =
        |s: &Session| s.record.alias == wanted || s.record.job_id.as_deref() == Some(wanted);
    let env = Environment::capture();
    let state = env.state_dirs()?;
    let site = SiteConfig::load(&env.site_dir())?;
    let mut local = sessions(&state, &site)?;
    if let Some(index) = local.iter().position(matches) {
        return Ok(local.swap_remove(index));
    }
    let remote = from_proxy(&site, &state, &local)?;
    let known: Vec<String> = local
        .iter()
        .chain(&remote)
        .map(|s| s.record.alias.clone())
        .collect();
    remote
        .into_iter()
        .find(matches)
        .ok_or_else(|| SessionCommandError::NotFound {
            wanted: wanted.to_owned(),
            known,
        })
}

#[derive(Debug, Serialize)]
struct Listing {
    alias: String,
    /// The site's cluster, on a site of several.
    #[serde(skip_serializing_if = "Option::is_none")]
    cluster: Option<String>,
    job_id: Option<String>,
    state: &'static str,
    /// Why a queued job waits (the scheduler's word).
    reason: Option<String>,
    node: Option<String>,
    /// When a running session ends (Unix seconds): the end the proxy
    /// holds, which `jrps extend` moves, else its job's time limit.
    ends_at: Option<u64>,
    /// How far `jrps extend` may still move `ends_at`.
    extend_until: Option<u64>,
    /// Why an ended session ended, when that is known.
    end_reason: Option<EndReason>,
    /// What made its job fail, in the job's words (the proxy's refusal, a
    /// node without an address), when it said.
    cause: Option<String>,
    url: String,
    profile: String,
    partition: String,
    /// What it runs (`lab`, `notebook`, `voila`, `code-server`); unknown
    /// for most sessions launched on another login node.
    kind: Option<SessionKind>,
    /// GPUs its job asked for; unknown for a session launched on another
    /// login node.
    gpus: Option<u32>,
    expires_in_s: u64,
}

pub fn ls(json: bool) -> Result<(), SessionCommandError> {
    let now = unix_now();
    let sessions = all_sessions()?;
    let jobs = job_views(&sessions);
    let rows: Vec<Listing> = sessions
        .iter()
        .zip(jobs)
        .map(|(session, job)| {
            let mut scheduler_end = None;
            let mut view = None;
            let (state, reason, node, time_left) = match job {
                JobView::Known(JobStatus::Pending {
                    reason, restarts, ..
                }) => {
                    // Slurm started it again after its node failed: queued anew.
                    let state = if restarts > 0 { "requeued" } else { "queued" };
                    (state, reason, None, None)
                }
                JobView::Known(JobStatus::Running {
                    node,
                    time_left,
                    restarts,
                }) => {
                    view = session.proxy_view();
                    (running_state(view, restarts), None, Some(node), time_left)
                }
                JobView::Known(JobStatus::Ended { reason, .. }) => {
                    scheduler_end = reason;
                    ("ended", None, None, None)
                }
                // Known only from the proxy, with a job this scheduler cannot see.
                JobView::Unknown if let Some(known) = session.proxy => {
                    view = Some(known);
                    let state = match known.state {
                        SessionState::Ended => "ended",
                        SessionState::Ready => "running",
                        _ => "pending",
                    };
                    (state, None, None, None)
                }
                JobView::Unsubmitted => ("unsubmitted", None, None, None),
                // Never "ended": a scheduler that is down says nothing of
                // the job, and the session's URL may well be serving.
                // `ls` has said why on stderr.
                JobView::Unknown => ("unknown", None, None, None),
            };
            Listing {
                alias: session.record.alias.clone(),
                cluster: session.record.cluster.clone(),
                job_id: session.record.job_id.clone(),
                state,
                reason,
                node,
                // The proxy's end first: with headroom the job runs past it.
                ends_at: view
                    .filter(|v| v.state != SessionState::Ended)
                    .and_then(|v| v.ends_at)
                    .or(time_left.map(|left| now + left)),
                extend_until: view.and_then(|v| v.extend_until),
                end_reason: (state == "ended")
                    .then(|| {
                        let recorded = session.dir.as_ref().and_then(SessionDir::end_reason);
                        recorded
                            .or(session.proxy.and_then(|p| p.end_reason))
                            .or(scheduler_end)
                    })
                    .flatten(),
                cause: session.dir.as_ref().and_then(SessionDir::failure),
                url: session.record.url.clone(),
                profile: session.record.profile.clone(),
                partition: session.record.partition.clone(),
                kind: session.record.kind,
                gpus: session.record.gpus,
                expires_in_s: session.record.expires_at.saturating_sub(now),
            }
        })
        .collect();
    let mut out = std::io::stdout().lock();
    if json {
        let json = serde_json::to_string(&rows).expect("listings always serialise");
        let _ = writeln!(out, "{json}");
        return Ok(());
    }
    if rows.is_empty() {
        eprintln!("no sessions; start one with `jrps up`");
        return Ok(());
    }
    // A cluster column only on a site of several.
    let clusters = rows.iter().any(|row| row.cluster.is_some());
    let cluster_of =
        |row: &Listing| clusters.then(|| format!("{:<10} ", row.cluster.as_deref().unwrap_or("-")));
    let _ = writeln!(
        out,
        "{:<28} {}{:<12} {:<24} {:<11} {:<16} {:<11} {:<4} URL",
        "ALIAS",
        if clusters {
            format!("{:<10} ", "CLUSTER")
        } else {
            String::new()
        },
        "JOB",
        "STATE",
        "LEFT",
        "NODE",
        "KIND",
        "GPUS"
    );
    for row in &rows {
        let state = match (&row.reason, row.end_reason) {
            (Some(reason), _) => format!("{} ({reason})", row.state),
            (None, Some(ended)) => format!("{} ({})", row.state, ended.words()),
            (None, None) => row.state.to_owned(),
        };
        let left = row
            .ends_at
            .and_then(|at| WallTime::from_seconds(at.saturating_sub(now)))
            .map_or("-".to_string(), |t| t.to_string());
        let _ = writeln!(
            out,
            "{:<28} {}{:<12} {:<24} {:<11} {:<16} {:<11} {:<4} {}",
            row.alias,
            cluster_of(row).unwrap_or_default(),
            row.job_id.as_deref().unwrap_or("-"),
            state,
            left,
            row.node.as_deref().unwrap_or("-"),
            row.kind.map_or("-", SessionKind::name),
            row.gpus.map_or("-".to_owned(), |n| n.to_string()),
            row.url
        );
    }
    // Below the table: a cause is a sentence, not a column.
    for row in rows.iter().filter(|row| row.state == "ended") {
        if let Some(cause) = &row.cause {
            let _ = writeln!(out, "{}: {cause}", row.alias);
        }
    }
    Ok(())
}

/// What a running job's session is, by what the proxy sees: serving; its
/// node not answering (it failed, and Slurm has not noticed yet); or a new
/// run of the job starting after a node failure.
fn running_state(proxy: Option<ProxyView>, restarts: u32) -> &'static str {
    let Some(view) = proxy else {
        return "running";
    };
    match (view.state, view.end_reason) {
        (SessionState::Pending, _) if view.restarted => "restarting",
        (SessionState::Ended, Some(EndReason::Unreachable)) if restarts > 0 => "restarting",
        (SessionState::Ended, Some(EndReason::Unreachable)) => "unreachable",
        _ => "running",
    }
}

/// The URL that opens the session. With `server`, the one a Jupyter
/// client (VS Code's "Existing Jupyter Server", JupyterLab Desktop) takes:
/// the server's root with the token, which the client then sends as
/// `Authorization: token …`; the same URL, but refused for a kind that is
/// no Jupyter server, and with the steps on stderr.
pub fn url(session: &str, server: bool) -> Result<(), SessionCommandError> {
    let session = find(session)?;
    let kind = session.record.kind();
    if server && !kind.is_jupyter() {
        return Err(SessionCommandError::NoJupyterServer {
            alias: session.record.alias.clone(),
            kind,
        });
    }
    let token = session.dir()?.read_secret(TOKEN_FILE)?;
    if server {
        eprintln!(
            "In VS Code: Select Kernel > Select Another Kernel > Existing Jupyter Server, \
             then paste this URL (it holds the token: keep it to yourself)."
        );
    }
    Ok(super::print_stdout(&format!(
        "{}?token={token}\n",
        session.record.url
    ))?)
}

pub fn logs(session: &str, follow: bool) -> Result<(), SessionCommandError> {
    let session = find(session)?;
    session.dir()?;
    let path = &session.record.log;
    let mut out = std::io::stdout().lock();
    let mut offset = 0;
    loop {
        offset = copy_from(path, offset, &mut out);
        // A scheduler that cannot be asked right now is asked again.
        if !follow
            || matches!(
                session.job_status(),
                JobView::Known(JobStatus::Ended { .. }) | JobView::Unsubmitted
            )
        {
            // One last read: the job may have written its final lines as it ended.
            copy_from(path, offset, &mut out);
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Appends what `path` has past `offset` to `out`; returns the new offset.
fn copy_from(path: &Path, offset: u64, out: &mut impl Write) -> u64 {
    let Ok(mut file) = std::fs::File::open(path) else {
        return offset;
    };
    if file.seek(SeekFrom::Start(offset)).is_err() {
        return offset;
    }
    let mut buffer = Vec::new();
    let read = file.read_to_end(&mut buffer).unwrap_or(0);
    let _ = out.write_all(&buffer[..read]);
    let _ = out.flush();
    offset + read as u64
}

pub fn down(target: DownTarget) -> Result<(), SessionCommandError> {
    let targets = match target {
        // Every live session: those the proxy already ended are not news.
        DownTarget::All => all_sessions()?
            .into_iter()
            .filter(|s| s.dir.is_some() || s.proxy.is_none_or(|p| p.state != SessionState::Ended))
            .collect(),
        DownTarget::One(wanted) => vec![find(&wanted)?],
    };
    let runtime = crate::proxy_client::runtime().map_err(LauncherError::Output)?;
    let mut first_error = None;
    for session in targets {
        match runtime.block_on(end_session(&session)) {
            Ok(()) => eprintln!("{} ended", session.record.alias),
            Err(error) => {
                eprintln!("{}: not ended", session.record.alias);
                first_error.get_or_insert(error);
            }
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// Cancels the job, deletes the proxy session, removes the session dir. The
/// dir goes last, so a failure leaves what is needed to try again.
async fn end_session(session: &Session) -> Result<(), SessionCommandError> {
    if let Some(id) = &session.record.job_id {
        match session
            .scheduler()
            .and_then(|scheduler| scheduler.cancel(&JobId::from(id.clone())))
        {
            Ok(()) => {}
            // From another login node the scheduler may be out of reach;
            // the session still ends, and the job with its trap or limit.
            Err(error) if session.dir.is_none() => {
                eprintln!("warning: job {id} not cancelled from here: {error}");
            }
            Err(error) => return Err(error.into()),
        }
    }
    // A session from another state directory has no secret here; the
    // proxy takes its owner's proven uid instead.
    let secret = match &session.dir {
        Some(dir) => dir.read_secret(REGISTER_SECRET_FILE)?,
        None => String::new(),
    };
    let client = ProxyClient::new(&session.record.proxy_endpoint(), None)?;
    let alias = &session.record.alias;
    let waiting = |error: &ProxyClientError, pause: Duration| {
        eprintln!("{alias}: the proxy cannot end it yet ({error}); trying again in {pause:?}");
    };
    client
        .end_session(
            alias,
            &secret,
            Some(EndReason::Cancelled),
            OUTAGE_PATIENCE,
            waiting,
        )
        .await?;
    if let Some(dir) = &session.dir {
        dir.remove()?;
    }
    Ok(())
}

/// `jrps extend SESSION TIME`: moves the session's end by `by`, within the
/// headroom its partition's `extend_max` gave its job. The proxy holds the
/// end (the page inside Jupyter and `jrps ls` read it there) and the job's
/// end watch stops Jupyter when it comes.
pub fn extend(wanted: &str, by: WallTime) -> Result<(), SessionCommandError> {
    let session = find(wanted)?;
    let alias = session.record.alias.clone();
    let not_extendable = |why: String| SessionCommandError::NotExtendable {
        alias: alias.clone(),
        why,
    };
    if let Some(plan) = &session.record.time
        && plan.headroom_s == 0
    {
        return Err(not_extendable(format!(
            "partition {} has no extend_max in site.toml, so its job ends when the session does",
            session.record.partition
        )));
    }
    let secret = match &session.dir {
        Some(dir) => dir.read_secret(REGISTER_SECRET_FILE)?,
        None => String::new(),
    };
    let client = ProxyClient::new(&session.record.proxy_endpoint(), None)?;
    let request = crate::api::Extend {
        secret,
        by_s: by.seconds(),
    };
    let runtime = crate::proxy_client::runtime().map_err(LauncherError::Output)?;
    let status = match runtime.block_on(client.extend(&alias, &request)) {
        Ok(status) => status,
        // The headroom is used up, or the session has none or has ended:
        // nothing changed, and the proxy says why.
        Err(error) if error.status() == Some(reqwest::StatusCode::CONFLICT) => {
            return Err(not_extendable(error.detail().unwrap_or_default()));
        }
        Err(error) => return Err(error.into()),
    };
    let now = unix_now();
    let line = match (status.ends_at, status.extend_until) {
        (Some(ends_at), until) => {
            let left = until.map_or(String::new(), |until| {
                format!("; it may be extended by {} more", span(until - ends_at))
            });
            format!(
                "{alias} now ends in {}{left}",
                span(ends_at.saturating_sub(now))
            )
        }
        (None, _) => format!("{alias} extended by {by}"),
    };
    crate::launcher::print_stdout(&format!("{line}\n"))?;
    Ok(())
}

/// A span of seconds as people say it: `1 h 05 min`, `12 min`, `40 s`.
fn span(seconds: u64) -> String {
    match seconds {
        s if s >= 3600 => format!("{} h {:02} min", s / 3600, s % 3600 / 60),
        s if s >= 60 => format!("{} min", s / 60),
        s => format!("{s} s"),
    }
}
