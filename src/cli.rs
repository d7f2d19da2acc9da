//! The command line: clap's parsing, the conversion of each command's
//! arguments into the option types of the role that runs it, logging set-up,
//! and the one place where errors become `crate::Error`. Nothing else in
//! jrps imports this module. The launch flags are declared on the
//! launcher's own `LaunchFields`, next to the fields they set, so that a
//! field is defined once.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::Error;
use crate::api::{ALL_END_REASONS, EndReason};
use crate::job_helper::RegisterOptions;
use crate::launcher::launch::UpOptions;
use crate::launcher::launch_fields::LaunchRequest;
use crate::launcher::profiles_command::ProfilesAction;
use crate::launcher::session_commands::{self, DownTarget, SessionCommandError};

#[derive(Debug, Parser)]
#[command(
    name = "jrps",
    version = concat!(env!("CARGO_PKG_VERSION"), " (", env!("JRPS_COMMIT"), ")"),
    about = "Jupyter on HPC compute nodes behind a private HTTPS URL"
)]
pub struct Arguments {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Launch a Jupyter session on a compute node and print its URL.
    #[command(after_help = "Examples:
  jrps up                               the default profile
  jrps up gpu-tensorflow -t 60          a profile, one flag changed
  jrps up -p debug -d ~/project -t 20   no profile named: the default one
  jrps up -p gpu-shared -g 1 -i IMAGE   one GPU, Jupyter inside an image
  jrps up --no-wait --json              submit, print one JSON object, return
  url=$(jrps up -q)                     the URL alone, for scripts")]
    Up(UpArgs),
    /// Print the batch script that `up` would submit.
    #[command(after_help = "Examples:
  jrps render gpu-tensorflow -t 90      the script for a profile and a flag
  jrps render -p debug -t 45            refused: over debug's 30-minute limit")]
    Render(LaunchRequest),
    /// List, explain and check profiles.
    #[command(after_help = "Examples:
  jrps profiles                         name, layer and description of each
  jrps profiles show gpu-pytorch -t 60  every value and where it came from
  jrps profiles check                   validate and render all (for site CI)")]
    Profiles(ProfilesArgs),
    /// List your sessions.
    #[command(after_help = "Examples:
  jrps ls
  jrps ls --json")]
    Ls(LsArgs),
    /// Print a session's URL (with its token).
    #[command(after_help = "Examples:
  jrps url amber-otter-lagoon
  jrps url 4711                         by job id")]
    Url(UrlArgs),
    /// Print a session's job log.
    #[command(after_help = "Examples:
  jrps logs amber-otter-lagoon
  jrps logs 4711 -f                     follow until the job ends")]
    Logs(LogsArgs),
    /// Move a session's end later, within what its partition allows.
    #[command(after_help = "Examples:
  jrps extend amber-otter-lagoon 30     30 minutes more
  jrps extend 4711 1:30:00              by job id, an hour and a half more")]
    Extend(ExtendArgs),
    /// End sessions: cancel the job and remove the route.
    #[command(after_help = "Examples:
  jrps down amber-otter-lagoon
  jrps down --all")]
    Down(DownArgs),
    /// Run the proxy.
    #[command(after_help = "Examples:
  jrps serve --config /etc/jrps/proxy.toml
  kill -HUP PID                         reload the TLS certificate
  kill -TERM PID                        finish requests in flight, then stop")]
    Serve(ServeArgs),
    /// Print a shell completion script.
    #[command(after_help = "Examples:
  jrps completions bash > /etc/bash_completion.d/jrps
  jrps completions zsh > ~/.zfunc/_jrps")]
    Completions { shell: clap_complete::Shell },
    /// Print the man page (roff).
    #[command(after_help = "Examples:
  jrps man > /usr/local/share/man/man1/jrps.1")]
    Man,
    /// (Inside a job) tell the proxy where this job's Jupyter listens.
    #[command(
        hide = true,
        after_help = "Examples (the batch template's own calls):
  jrps register --runtime-dir \"$JUPYTER_RUNTIME_DIR\" --pid \"$app_pid\"
  jrps register --runtime-dir \"$JUPYTER_RUNTIME_DIR\" --pid \"$app_pid\" --port \"$jrps_app_port\"
  jrps register --deregister
  jrps register --write-extension \"$JRPS_SESSION_DIR/jupyter\""
    )]
    Register(RegisterArgs),
}

#[derive(Debug, Args)]
pub struct ExtendArgs {
    /// The session: its alias or job id.
    pub session: String,
    /// How much more: minutes (M), M:S, H:M:S, D-H, D-H:M or D-H:M:S.
    #[arg(value_parser = parse_wall_time)]
    pub time: crate::wall_time::WallTime,
}

fn parse_wall_time(text: &str) -> Result<crate::wall_time::WallTime, String> {
    crate::wall_time::WallTime::parse(text)
        .map_err(|problem| format!("{problem}; allowed: {}", crate::wall_time::FORMATS))
}

#[derive(Debug, Args)]
pub struct UpArgs {
    #[command(flatten)]
    pub launch: LaunchRequest,
    /// Print the job details (user, account, partition, script, time, GPUs, job id).
    #[arg(short = 'I', long)]
    pub info: bool,
    /// Print what would be submitted and stop (after the checks).
    #[arg(long)]
    pub dry_run: bool,
    /// Skip the checks made before submitting (that the folder, the image
    /// and the Python environment exist here), for paths only compute nodes see.
    #[arg(long)]
    pub no_check: bool,
    /// Return after submission with the URL and job id, without waiting.
    #[arg(long)]
    pub no_wait: bool,
    /// Print the result as one JSON object.
    #[arg(long)]
    pub json: bool,
    /// No waiting screen; print only the URL (as `start-jupyter -q` did).
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct ProfilesArgs {
    #[command(subcommand)]
    pub action: Option<ProfilesSubcommand>,
    /// List as JSON (name, layer, path, description).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum ProfilesSubcommand {
    /// Print every resolved field of a profile with where its value came from;
    /// takes the same flags as `render`, so their effect shows too.
    #[command(after_help = "Examples:
  jrps profiles show gpu-pytorch                 values and their sources
  jrps profiles show gpu-pytorch -t 60 -A abc    with flags, as `up` would use them")]
    Show(Box<LaunchRequest>),
    /// Parse, validate and render every visible profile; non-zero on any problem.
    #[command(after_help = "Examples:
  jrps profiles check
  JRPS_SITE_DIR=. JRPS_ACCOUNT=ci-test jrps profiles check   a site repo's CI")]
    Check,
}

#[derive(Debug, Args)]
pub struct LsArgs {
    /// Print one JSON array.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct UrlArgs {
    /// Alias or job id.
    pub session: String,
    /// The URL for a Jupyter client (VS Code's "Existing Jupyter Server"),
    /// with how to use it.
    #[arg(long)]
    pub server: bool,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Alias or job id.
    pub session: String,
    /// Keep printing as the job writes, until it ends.
    #[arg(short = 'f', long)]
    pub follow: bool,
}

#[derive(Debug, Args)]
pub struct DownArgs {
    /// Alias or job id.
    #[arg(required_unless_present = "all")]
    pub session: Option<String>,
    /// Every session of yours.
    #[arg(long, conflicts_with = "session")]
    pub all: bool,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Path to proxy.toml.
    #[arg(long, short = 'c')]
    pub config: PathBuf,
}

/// Arguments of the job helper; the batch template is its only caller.
#[derive(Debug, Args)]
pub struct RegisterArgs {
    /// End the session instead (the job's exit trap).
    #[arg(long)]
    pub deregister: bool,
    /// Tell the proxy the job was started again (a requeue after a node
    /// failure), before this run's Jupyter starts.
    #[arg(long, conflicts_with = "deregister")]
    pub restart: bool,
    /// Jupyter's private runtime dir, where it writes `jpserver-<pid>.json`.
    #[arg(long)]
    pub runtime_dir: Option<PathBuf>,
    /// The app's process id, to stop waiting at once if it dies.
    #[arg(long)]
    pub pid: Option<u32>,
    /// The port of an app that writes no runtime file (code-server), from
    /// --free-port.
    #[arg(long)]
    pub port: Option<u16>,
    /// Print a port free on this node's address, for an app told its port.
    #[arg(long, conflicts_with_all = ["deregister", "restart", "login_secret"])]
    pub free_port: bool,
    /// Print what the session's kind takes as its login secret, made from
    /// the token (code-server's HASHED_PASSWORD).
    #[arg(long, conflicts_with_all = ["deregister", "restart"])]
    pub login_secret: bool,
    /// The node address Jupyter listens on; calls to the proxy come from it.
    #[arg(long, env = crate::env_vars::NODE_IP)]
    pub ip: Option<std::net::IpAddr>,
    /// Upper bound on each wait, in seconds.
    #[arg(long, default_value_t = 300)]
    pub timeout_s: u64,
    /// After registering, stay and stop Jupyter once unused this many seconds.
    #[arg(long, value_name = "SECONDS")]
    pub idle_timeout: Option<u64>,
    /// With --deregister: why the session ends.
    #[arg(long, value_parser = parse_end_reason)]
    pub reason: Option<EndReason>,
    /// With --deregister: what went wrong, when the batch script found it.
    #[arg(long, requires = "deregister")]
    pub detail: Option<String>,
    /// Write the page jrps puts inside Jupyter into DIR/labextensions
    /// (before Jupyter starts; the script puts DIR on JUPYTER_PATH).
    #[arg(long, value_name = "DIR", conflicts_with_all = ["deregister", "restart"])]
    pub write_extension: Option<PathBuf>,
}

fn parse_end_reason(name: &str) -> Result<EndReason, String> {
    EndReason::parse(name).ok_or_else(|| {
        let names: Vec<&str> = ALL_END_REASONS.iter().map(|r| r.name()).collect();
        format!("one of {}", names.join(", "))
    })
}

impl Arguments {
    pub fn run(self) -> Result<(), Error> {
        match self.command {
            Command::Up(args) => Ok(crate::launcher::launch::up(args.into())?),
            Command::Render(request) => Ok(crate::launcher::render(&request)?),
            Command::Profiles(args) => Ok(crate::launcher::profiles(args.into())?),
            Command::Ls(args) => Ok(session_commands::ls(args.json)?),
            Command::Url(args) => Ok(session_commands::url(&args.session, args.server)?),
            Command::Extend(args) => Ok(session_commands::extend(&args.session, args.time)?),
            Command::Logs(args) => Ok(session_commands::logs(&args.session, args.follow)?),
            Command::Down(args) => {
                let target = match (args.session, args.all) {
                    (_, true) => DownTarget::All,
                    (Some(session), false) => DownTarget::One(session),
                    (None, false) => return Err(SessionCommandError::NothingNamed.into()),
                };
                Ok(session_commands::down(target)?)
            }
            Command::Serve(args) => {
                init_logging();
                Ok(crate::proxy::serve(&args.config)?)
            }
            Command::Register(args) => Ok(crate::job_helper::register(args.into())?),
            Command::Completions { shell } => {
                let mut command = <Arguments as clap::CommandFactory>::command();
                let mut script = Vec::new();
                clap_complete::generate(shell, &mut command, "jrps", &mut script);
                Ok(crate::launcher::print_stdout(&String::from_utf8_lossy(
                    &script,
                ))?)
            }
            Command::Man => {
                let command = <Arguments as clap::CommandFactory>::command();
                let mut page = Vec::new();
                clap_mangen::Man::new(command)
                    .render(&mut page)
                    .map_err(crate::launcher::LauncherError::Output)?;
                Ok(crate::launcher::print_stdout(&String::from_utf8_lossy(
                    &page,
                ))?)
            }
        }
    }
}

/// The proxy's log: one line per event on stderr, coloured by the same rule
/// as errors.
fn init_logging() {
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(crate::error::stderr_colour())
        .with_target(false)
        .try_init();
}

impl From<UpArgs> for UpOptions {
    fn from(args: UpArgs) -> UpOptions {
        UpOptions {
            request: args.launch,
            info: args.info,
            dry_run: args.dry_run,
            no_check: args.no_check,
            no_wait: args.no_wait,
            json: args.json,
            quiet: args.quiet,
        }
    }
}

impl From<ProfilesArgs> for ProfilesAction {
    fn from(args: ProfilesArgs) -> ProfilesAction {
        match args.action {
            None => ProfilesAction::List { json: args.json },
            Some(ProfilesSubcommand::Show(request)) => ProfilesAction::Show(request),
            Some(ProfilesSubcommand::Check) => ProfilesAction::Check,
        }
    }
}

impl From<RegisterArgs> for RegisterOptions {
    fn from(args: RegisterArgs) -> RegisterOptions {
        RegisterOptions {
            deregister: args.deregister,
            restart: args.restart,
            runtime_dir: args.runtime_dir,
            pid: args.pid,
            port: args.port,
            free_port: args.free_port,
            login_secret: args.login_secret,
            ip: args.ip,
            timeout: std::time::Duration::from_secs(args.timeout_s),
            idle_timeout: args.idle_timeout.map(std::time::Duration::from_secs),
            reason: args.reason,
            detail: args.detail,
            write_extension: args.write_extension,
        }
    }
}
