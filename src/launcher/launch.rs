//! `jrps up`: the flow of one launch (docs/design.md, "The flow of one launch").
//!
//! resolve → reserve a session at the proxy → write the session dir → submit →
//! link the job → wait (long-poll the proxy, watch the scheduler) → print.
//! Once a session is reserved, every way out that is not success goes through
//! [`Launch::abandon`]: the job is cancelled, the proxy session deleted and the
//! session dir removed, so a failed or interrupted launch leaves nothing behind.

use std::path::PathBuf;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::signal::unix::{Signal, SignalKind, signal};

use crate::api::{
    CreateSession, EndReason, LinkJob, Phase, ReportPhase, SessionCreated, SessionState,
};
use crate::clock::unix_now;
use crate::env_vars;
use crate::launcher::batch_template::script;
use crate::launcher::launch_fields::LaunchRequest;
use crate::launcher::progress::Progress;
use crate::launcher::{Environment, LaunchSpec, LauncherError, dry_run_summary, resolve};
use crate::proxy_client::{ProxyClient, ProxyClientError, ProxyEndpoint, through_outages};
use crate::scheduler::{JobId, JobStatus, JobSubmission, Scheduler, SchedulerError};
use crate::session_dir::{
    REGISTER_SECRET_FILE, SessionDir, SessionDirError, SessionRecord, TOKEN_FILE,
};
use crate::session_kind::SessionKind;
use crate::user_dirs::StateDirs;
use crate::wall_time::WallTime;

/// Added to the wall time for the proxy's TTL: the job may sit in the queue
/// before its wall time starts, and deregistration plus the proxy's health
/// check end the route as soon as the job really ends.
const QUEUE_ALLOWANCE: Duration = Duration::from_secs(24 * 3600);
const GRACE: Duration = Duration::from_secs(10 * 60);
/// One long-poll of the proxy; the launcher re-asks until the session is ready.
const LONG_POLL: Duration = Duration::from_secs(25);
/// How often the scheduler is asked where the job is: it has no push channel.
const SCHEDULER_POLL: Duration = Duration::from_secs(1);
/// Scheduler queries that may fail in a row before `up` gives up. A busy
/// slurmctld times out now and then ("Socket timed out on send/recv
/// operation"); one such answer must not cancel a job that is fine. Readiness
/// comes from the proxy, so the wait loses nothing while the scheduler is mute.
const SCHEDULER_FAILURES: u32 = 10;
/// Log lines shown when a job dies before Jupyter is ready.
const LOG_TAIL_LINES: usize = 25;

#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error("no proxy is configured: site.toml has no `proxy_url`")]
    NoProxy { site: Option<PathBuf> },
    #[error("job {job_id} ended before Jupyter was ready (log: {})\n{tail}", log.display())]
    JobEnded {
        job_id: String,
        log: PathBuf,
        tail: String,
    },
    #[error("session {alias} ended before Jupyter was ready\n{tail}")]
    SessionEnded { alias: String, tail: String },
    #[error("interrupted: job {job_id} cancelled and session {alias} deleted")]
    Interrupted { alias: String, job_id: String },
    #[error("the job was not submitted; session {alias} released")]
    SubmitFailed {
        alias: String,
        #[source]
        source: SchedulerError,
    },
    #[error(transparent)]
    Config(#[from] LauncherError),
    #[error(transparent)]
    Scheduler(#[from] SchedulerError),
    #[error(transparent)]
    Proxy(#[from] ProxyClientError),
    #[error(transparent)]
    SessionDir(#[from] SessionDirError),
}

impl LaunchError {
    pub fn exit_code(&self) -> u8 {
        match self {
            LaunchError::NoProxy { .. } => 2,
            LaunchError::Config(error) => error.exit_code(),
            // As a shell reports a command stopped by SIGINT.
            LaunchError::Interrupted { .. } => 130,
            _ => 1,
        }
    }

    pub fn hint(&self) -> Option<String> {
        match self {
            LaunchError::NoProxy { site } => Some(format!(
                "set `proxy_url` (and `proxy_ca` for a private CA) in {}",
                site.as_ref()
                    .map_or("$JRPS_SITE_DIR/site.toml".to_owned(), |p| p
                        .display()
                        .to_string())
            )),
            LaunchError::Config(error) => error.hint(),
            LaunchError::Proxy(error) => error.hint(),
            LaunchError::SubmitFailed { source, .. } => source.hint(),
            LaunchError::Scheduler(source) => source.hint(),
            _ => None,
        }
    }
}

/// What `up` prints at the end (`--json` prints it as one object).
#[derive(Debug, Serialize)]
struct LaunchResult {
    alias: String,
    url: String,
    job_id: String,
    scheduler: String,
    user: String,
    cluster: String,
    account: Option<String>,
    profile: String,
    partition: String,
    time: String,
    gpus: u32,
    script: PathBuf,
    log: PathBuf,
    ready: bool,
}

/// What `jrps up` was asked for.
#[derive(Debug, Clone, Default)]
pub struct UpOptions {
    pub request: LaunchRequest,
    /// Print the job details with the URL.
    pub info: bool,
    /// Print what would be submitted and stop.
    pub dry_run: bool,
    /// Skip the checks before submission (`preflight`).
    pub no_check: bool,
    /// Return after submission, without waiting for Jupyter.
    pub no_wait: bool,
    /// Print the result as one JSON object.
    pub json: bool,
    /// No waiting screen; the URL alone.
    pub quiet: bool,
}

pub fn up(args: UpOptions) -> Result<(), LaunchError> {
    let env = Environment::capture();
    let (_, spec) = resolve(&env, &args.request)?;
    let script = script(&spec)?;
    // The site's configuration first: no check of the user's paths helps
    // while there is no proxy to launch through.
    let no_proxy = || LaunchError::NoProxy {
        site: spec.site.path.clone(),
    };
    if !args.dry_run && spec.site.proxy_url.is_none() {
        return Err(no_proxy());
    }
    if !args.no_check {
        super::preflight::check(&spec, &env)?;
    }
    if args.dry_run {
        let summary = dry_run_summary(&spec);
        return Ok(super::print_stdout(&format!(
            "{summary}--- batch script ---\n{script}"
        ))?);
    }
    let endpoint = ProxyEndpoint {
        url: spec.site.proxy_url.clone().ok_or_else(no_proxy)?,
        ca_file: spec.site.proxy_ca.clone(),
        connect_to: spec.site.proxy_address.clone(),
        munge: spec.site.munge.clone(),
    };
    let runtime = crate::proxy_client::runtime().map_err(LauncherError::Output)?;
    runtime.block_on(launch(&args, &env, &spec, script, endpoint))
}

async fn launch(
    args: &UpOptions,
    env: &Environment,
    spec: &LaunchSpec,
    script: String,
    endpoint: ProxyEndpoint,
) -> Result<(), LaunchError> {
    let mut progress = Progress::new(args.quiet || args.json);
    let state = env.state_dirs()?;
    let client = ProxyClient::new(&endpoint, None)?;
    let scheduler: Arc<dyn Scheduler> = crate::scheduler::build(
        spec.site.scheduler,
        spec.site.scheduler_commands(),
        state.local_jobs(),
    )
    .into();

    // Before anything is reserved: from here on an interrupt is kept and
    // acted on, never a default action that kills jrps between two steps.
    let mut interrupts = Interrupts::install();
    let token = random_hex::<32>();
    // With munge the proxy checks the name against the proven uid, so it
    // must be this uid's, not whatever `$USER` says.
    let user = if spec.site.munge.is_some() {
        uid_name()
    } else {
        user_name(env)
    };
    let ttl = Duration::from_secs(spec.job_time().seconds()) + GRACE + QUEUE_ALLOWANCE;
    let patience = Duration::from_secs(spec.site.proxy_outage_limit.value.seconds());
    let request = CreateSession {
        user: user.clone(),
        token_sha256: hex::encode(Sha256::digest(token.as_bytes())),
        ttl_seconds: ttl.as_secs(),
        cluster: spec.site.cluster.clone(),
        kind: spec.kind.proxy_logs_in().then_some(spec.kind),
    };
    // A reservation whose answer was lost stays unlinked, and the proxy
    // ends unlinked sessions by itself: trying again is safe.
    let created = through_outages(
        patience,
        |error, _| progress.phase(&outage_phase(error, patience, "nothing is queued yet")),
        || client.create_session(&request),
    )
    .await?;
    progress.phase(&format!("reserved {}", created.alias));

    let mut launch = Launch {
        client,
        endpoint,
        scheduler,
        created,
        session_dir: None,
        job_id: None,
        patience,
    };
    let inputs = Inputs {
        args,
        spec,
        script: &script,
        token: &token,
        user: &user,
        state: &state,
    };
    match launch.run(inputs, &mut progress, &mut interrupts).await {
        Ok(result) => {
            progress.finish();
            super::print_stdout(&result_text(args, &result))?;
            Ok(())
        }
        Err(error) => {
            progress.finish();
            let reason = match &error {
                LaunchError::Interrupted { .. } => Some(EndReason::Cancelled),
                LaunchError::JobEnded { .. } | LaunchError::SessionEnded { .. } => {
                    Some(EndReason::JobFailed)
                }
                _ => None,
            };
            launch.abandon(reason, &mut interrupts).await;
            Err(error)
        }
    }
}

/// The waiting line while the proxy is away: what happened, that the
/// launch goes on, and until when.
fn outage_phase(error: &ProxyClientError, patience: Duration, meanwhile: &str) -> String {
    let limit = WallTime::from_seconds(patience.as_secs())
        .map_or_else(|| format!("{}s", patience.as_secs()), |t| t.to_string());
    format!("the proxy is unreachable ({error}); {meanwhile}; waiting up to {limit} for it")
}

/// What one launch is made of: what was asked, the validated spec and its
/// script, the token and user made for it, and where its files go.
#[derive(Clone, Copy)]
struct Inputs<'a> {
    args: &'a UpOptions,
    spec: &'a LaunchSpec,
    script: &'a str,
    token: &'a str,
    user: &'a str,
    state: &'a StateDirs,
}

/// A reserved session and what has been made for it so far.
struct Launch {
    client: ProxyClient,
    /// Where the client reaches the proxy; the job helper reaches it the same way.
    endpoint: ProxyEndpoint,
    scheduler: Arc<dyn Scheduler>,
    created: SessionCreated,
    session_dir: Option<SessionDir>,
    job_id: Option<JobId>,
    /// How long a proxy outage is waited out (site `proxy_outage_limit`).
    patience: Duration,
}

impl Launch {
    async fn run(
        &mut self,
        inputs: Inputs<'_>,
        progress: &mut Progress,
        interrupts: &mut Interrupts,
    ) -> Result<LaunchResult, LaunchError> {
        let Inputs {
            args,
            spec,
            script,
            token,
            user,
            state,
        } = inputs;
        let alias = self.created.alias.clone();
        let secret = self.created.register_secret.clone();
        let session_dir = SessionDir::create(state, &alias)?;
        self.session_dir = Some(session_dir.clone());
        session_dir.write_secret(TOKEN_FILE, token)?;
        session_dir.write_secret(REGISTER_SECRET_FILE, &secret)?;
        let script_path = session_dir.write_script(script)?;
        let log = state.log(&alias);
        let mut record = SessionRecord {
            alias: alias.clone(),
            url: self.created.url.clone(),
            proxy_url: self.endpoint.url.clone(),
            proxy_ca: self.endpoint.ca_file.clone(),
            proxy_connect_to: None,
            proxy_addresses: self.endpoint.connect_to.clone(),
            munge_socket: self.endpoint.munge.as_ref().map(|m| m.socket.clone()),
            scheduler: spec.site.scheduler,
            cluster: spec.site.cluster.clone(),
            job_id: None,
            profile: spec.profile.clone(),
            partition: spec.partition.name.clone(),
            log: log.clone(),
            created_at: unix_now(),
            expires_at: self.created.expires_at,
            time: Some(spec.time_plan()),
            kind: Some(spec.kind),
            gpus: Some(spec.gpus),
        };
        session_dir.write_record(&record)?;

        let submission = JobSubmission {
            script: script.to_owned(),
            job_name: spec.job_name(),
            log_path: log.clone(),
            workdir: session_dir.path().to_owned(),
            env: vec![(
                env_vars::SESSION_DIR.to_owned(),
                session_dir.path().display().to_string(),
            )],
        };
        let scheduler = self.scheduler.clone();
        let job_id = tokio::task::spawn_blocking(move || scheduler.submit(&submission))
            .await
            .expect("the submit task does not panic")
            .map_err(|source| LaunchError::SubmitFailed {
                alias: alias.clone(),
                source,
            })?;
        self.job_id = Some(job_id.clone());
        record.job_id = Some(job_id.to_string());
        session_dir.write_record(&record)?;
        progress.phase(&format!("submitted job {job_id}"));
        let link = LinkJob {
            job_id: job_id.to_string(),
            secret,
        };
        let meanwhile = format!("job {job_id} stays queued");
        through_outages(
            self.patience,
            |error, _| progress.phase(&outage_phase(error, self.patience, &meanwhile)),
            || self.client.link_job(&alias, &link),
        )
        .await?;

        let ready = if args.no_wait {
            // An interrupt while submitting still undoes the launch.
            if interrupts.arrived().await {
                return Err(LaunchError::Interrupted {
                    alias,
                    job_id: job_id.to_string(),
                });
            }
            false
        } else {
            self.wait_until_ready(&job_id, spec.kind, &log, progress, interrupts)
                .await?;
            true
        };
        Ok(LaunchResult {
            alias,
            url: format!("{}?token={token}", self.created.url),
            job_id: job_id.to_string(),
            scheduler: spec.site.scheduler.to_string(),
            user: user.to_owned(),
            cluster: cluster_name(spec),
            account: spec.account.clone(),
            profile: spec.profile.clone(),
            partition: spec.partition.name.clone(),
            time: spec.time.to_string(),
            gpus: spec.gpus,
            script: script_path,
            log,
            ready,
        })
    }

    /// Long-polls the proxy for readiness while asking the scheduler where the
    /// job is, and gives up the moment the job ends or the user interrupts.
    async fn wait_until_ready(
        &self,
        job_id: &JobId,
        kind: SessionKind,
        log: &std::path::Path,
        progress: &mut Progress,
        interrupts: &mut Interrupts,
    ) -> Result<(), LaunchError> {
        let alias = &self.created.alias;
        let interrupted = || LaunchError::Interrupted {
            alias: alias.clone(),
            job_id: job_id.to_string(),
        };
        let mut ready = pin!(self.long_poll(Duration::ZERO));
        let mut ticker = tokio::time::interval(SCHEDULER_POLL);
        let mut failures = 0;
        let mut reported = None;
        // Since when the proxy has been away, and the pause before asking again.
        let mut outage: Option<(tokio::time::Instant, Duration)> = None;
        let mut where_job_is = "submitted".to_owned();
        loop {
            tokio::select! {
                status = &mut ready => {
                    let status = match status {
                        Ok(status) => status,
                        Err(error) if error.is_outage() => {
                            let (since, pause) = outage.unwrap_or((tokio::time::Instant::now(), Duration::from_millis(500)));
                            if since.elapsed() >= self.patience {
                                return Err(error.into());
                            }
                            let meanwhile = format!("job {job_id} is {where_job_is}");
                            progress.phase(&outage_phase(&error, self.patience, &meanwhile));
                            outage = Some((since, (pause * 2).min(Duration::from_secs(10))));
                            ready.set(self.long_poll(pause));
                            continue;
                        }
                        Err(error) => return Err(error.into()),
                    };
                    if outage.take().is_some() {
                        progress.phase("the proxy answers again");
                    }
                    match status.state {
                        SessionState::Ready => {
                            progress.phase("ready");
                            return Ok(());
                        }
                        SessionState::Ended => {
                            return Err(LaunchError::SessionEnded {
                                alias: alias.clone(),
                                tail: self.failure_and_tail(log),
                            });
                        }
                        SessionState::Pending => {
                            ready.set(self.long_poll(Duration::ZERO));
                        }
                    }
                }
                _ = ticker.tick() => {
                    let scheduler = self.scheduler.clone();
                    let id = job_id.clone();
                    let status = tokio::task::spawn_blocking(move || scheduler.status(&id))
                        .await
                        .expect("the status task does not panic");
                    let status = match status {
                        Ok(status) => {
                            failures = 0;
                            status
                        }
                        Err(error) => {
                            failures += 1;
                            if failures >= SCHEDULER_FAILURES {
                                return Err(error.into());
                            }
                            progress.phase(&format!("job {job_id}: {error}; asking again"));
                            continue;
                        }
                    };
                    where_job_is = match &status {
                        JobStatus::Pending { .. } => "queued".into(),
                        JobStatus::Running { node, .. } => format!("running on {node}"),
                        JobStatus::Ended { .. } => "ended".into(),
                    };
                    if let Some((_, _)) = outage {
                        // The outage line stays up; the job's place is in it.
                        if !matches!(status, JobStatus::Ended { .. }) {
                            continue;
                        }
                    }
                    match status {
                        JobStatus::Pending { reason, expected_start, .. } => {
                            let mut text = format!("queued as job {job_id}");
                            if let Some(reason) = &reason {
                                text.push_str(&format!(" ({reason})"));
                            }
                            if let Some(start) = expected_start {
                                text.push_str(&format!(", expected start {start}"));
                            }
                            progress.phase(&text);
                            self.report_phase(&mut reported, Phase::Queued, reason).await;
                        }
                        JobStatus::Running { node, .. } => {
                            let app = kind.definition().title;
                            progress.phase(&format!("running on {node}: {app} starting"));
                            self.report_phase(&mut reported, Phase::Running, Some(node)).await;
                        }
                        JobStatus::Ended { .. } => {
                            // It may have become ready just before it ended.
                            let ready_now = self
                                .client
                                .status(alias, None)
                                .await
                                .is_ok_and(|status| status.state == SessionState::Ready);
                            if ready_now {
                                progress.phase("ready");
                                return Ok(());
                            }
                            return Err(LaunchError::JobEnded {
                                job_id: job_id.to_string(),
                                log: log.to_owned(),
                                tail: self.failure_and_tail(log),
                            });
                        }
                    }
                }
                // Also one that came while reserving or submitting.
                _ = interrupts.recv() => return Err(interrupted()),
            }
        }
    }

    /// One long-poll for readiness, after `pause` (a proxy that was away).
    async fn long_poll(
        &self,
        pause: Duration,
    ) -> Result<crate::api::SessionStatus, ProxyClientError> {
        tokio::time::sleep(pause).await;
        self.client
            .status(&self.created.alias, Some(LONG_POLL))
            .await
    }

    /// What the job said went wrong (its session folder), then its log's tail.
    fn failure_and_tail(&self, log: &std::path::Path) -> String {
        let tail = log_tail(log, LOG_TAIL_LINES);
        match self.session_dir.as_ref().and_then(SessionDir::failure) {
            Some(cause) => format!("cause: {cause}\n{tail}"),
            None => tail,
        }
    }

    /// Tells the proxy's starting page where the job is, when that changed.
    /// Best effort and brief: a proxy that does not take it (an older one,
    /// a detail it refuses) changes nothing about the launch.
    async fn report_phase(
        &self,
        last: &mut Option<(Phase, Option<String>)>,
        phase: Phase,
        detail: Option<String>,
    ) {
        let now = Some((phase, detail.clone()));
        if *last == now {
            return;
        }
        *last = now;
        let request = ReportPhase {
            secret: self.created.register_secret.clone(),
            phase,
            // A node known only by its address stays unnamed: pages never show one.
            detail: detail.filter(|d| crate::api::check_phase_detail(d).is_ok()),
        };
        let call = self.client.report_phase(&self.created.alias, &request);
        let _ = tokio::time::timeout(Duration::from_secs(2), call).await;
    }

    /// Undoes whatever was made: cancels the job, deletes the proxy session,
    /// removes the session dir. Best effort, each step independent, and each
    /// failure said plainly, because the user must know what may be left.
    ///
    /// A job that ran and failed keeps its folder: its cause and log are what
    /// `jrps ls` and `jrps logs` show next, and `jrps down` removes it.
    async fn abandon(&mut self, reason: Option<EndReason>, interrupts: &mut Interrupts) {
        if let Some(job_id) = self.job_id.take() {
            let scheduler = self.scheduler.clone();
            let id = job_id.clone();
            let cancelled = tokio::task::spawn_blocking(move || scheduler.cancel(&id)).await;
            if !matches!(cancelled, Ok(Ok(()))) {
                eprintln!("warning: could not cancel job {job_id}: cancel it by hand");
            }
        }
        let alias = &self.created.alias;
        let waiting = |error: &ProxyClientError, pause: Duration| {
            eprintln!(
                "the proxy cannot end session {alias} yet ({error}); trying again in {pause:?} \
                 (Ctrl-C leaves it to the proxy)"
            );
        };
        let end = self.client.end_session(
            alias,
            &self.created.register_secret,
            reason,
            self.patience,
            waiting,
        );
        let ended = tokio::select! {
            ended = end => Some(ended),
            _ = interrupts.recv() => None,
        };
        match ended {
            Some(Ok(_)) => {}
            Some(Err(error)) => {
                eprintln!("warning: could not delete session {alias} at the proxy: {error}")
            }
            None => eprintln!(
                "warning: session {alias} not ended at the proxy; it ends there when its time runs out"
            ),
        }
        if let Some(dir) = self.session_dir.take() {
            let job_ran = dir.failure().is_some() || dir.end_reason().is_some();
            if !job_ran && let Err(error) = dir.remove() {
                eprintln!("warning: {error}");
            }
        }
    }
}

/// SIGINT, SIGTERM and SIGHUP, caught from before the reservation to the
/// end of `up`. Each stream keeps a signal that arrives while jrps is busy
/// (reserving, running sbatch), so it is acted on at the next await instead
/// of killing jrps with a session reserved and a job queued. A signal whose
/// handler cannot be installed keeps its default action.
struct Interrupts {
    int: Option<Signal>,
    term: Option<Signal>,
    hup: Option<Signal>,
}

impl Interrupts {
    fn install() -> Interrupts {
        Interrupts {
            int: signal(SignalKind::interrupt()).ok(),
            term: signal(SignalKind::terminate()).ok(),
            hup: signal(SignalKind::hangup()).ok(),
        }
    }

    /// Resolves when any of the signals has arrived (at once for one that
    /// arrived earlier).
    async fn recv(&mut self) {
        async fn one(stream: &mut Option<Signal>) {
            match stream {
                Some(stream) => {
                    stream.recv().await;
                }
                None => std::future::pending().await,
            }
        }
        tokio::select! {
            _ = one(&mut self.int) => {}
            _ = one(&mut self.term) => {}
            _ = one(&mut self.hup) => {}
        }
    }

    /// Whether a signal has arrived, without waiting for one.
    async fn arrived(&mut self) -> bool {
        tokio::select! {
            biased;
            _ = self.recv() => true,
            _ = std::future::ready(()) => false,
        }
    }
}

fn result_text(args: &UpOptions, result: &LaunchResult) -> String {
    if args.json {
        let json = serde_json::to_string(result).expect("a launch result always serialises");
        return format!("{json}\n");
    }
    let mut text = String::new();
    if args.info {
        let account = result.account.as_deref().unwrap_or("(scheduler default)");
        text.push_str(&format!(
            "user:      {}\ncluster:   {}\naccount:   {account}\npartition: {}\n\
             script:    {}\ntime:      {}\ngpus:      {}\njob id:    {}\nlog:       {}\n",
            result.user,
            result.cluster,
            result.partition,
            result.script.display(),
            result.time,
            result.gpus,
            result.job_id,
            result.log.display(),
        ));
    }
    if args.quiet {
        // Like the original `start-jupyter -q`: the URL alone, for scripts.
    } else if result.ready {
        text.push_str("Your notebook is here:\n");
    } else {
        text.push_str(&format!(
            "Job {} submitted; your notebook will be here:\n",
            result.job_id
        ));
    }
    text.push_str(&format!("{}\n", result.url));
    text
}

/// The site's name for the cluster; on a site of one, Slurm's cluster name
/// when the scheduler is Slurm, else this host's name.
fn cluster_name(spec: &LaunchSpec) -> String {
    if let Some(name) = &spec.site.cluster {
        return name.clone();
    }
    let commands = spec.site.scheduler_commands();
    let mut scontrol = commands.command("scontrol");
    scontrol.args(["show", "config"]);
    if spec.site.scheduler == crate::scheduler::SchedulerKind::Slurm
        && let Ok(output) = commands.run(scontrol, "scontrol", None)
    {
        let text = output.stdout;
        if let Some(name) = text.lines().find_map(|line| {
            let (key, value) = line.split_once('=')?;
            (key.trim() == "ClusterName").then(|| value.trim().to_owned())
        }) {
            return name;
        }
    }
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_owned())
        .unwrap_or_else(|_| "unknown".to_owned())
}

fn log_tail(path: &std::path::Path, lines: usize) -> String {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let all: Vec<&str> = text.lines().collect();
            let start = all.len().saturating_sub(lines);
            let tail = all[start..].join("\n");
            if tail.is_empty() {
                "(the job log is empty)".to_owned()
            } else {
                format!("--- last lines of the job log ---\n{tail}")
            }
        }
        Err(_) => "(the job wrote no log)".to_owned(),
    }
}

/// `$USER`, `$LOGNAME`, else the passwd entry of this uid (batch shells and
/// CI often set neither variable).
fn user_name(env: &Environment) -> String {
    if let Some(name) = env.get("USER").or_else(|| env.get("LOGNAME")) {
        return name.to_owned();
    }
    uid_name()
}

/// This uid's name in the passwd file, else the number.
fn uid_name() -> String {
    let uid = rustix::process::getuid().as_raw();
    crate::identity::user_name(uid).unwrap_or_else(|| uid.to_string())
}

/// `N` random bytes from the thread CSPRNG, as lower-case hex.
fn random_hex<const N: usize>() -> String {
    let mut bytes = [0u8; N];
    rand::fill(&mut bytes);
    hex::encode(bytes)
}
