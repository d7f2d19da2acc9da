//! `site.toml`: what only a site knows (proxy, scheduler, partitions and their
//! limits, modules, where programs live). With no `site.toml` the built-in
//! defaults apply: a `local` scheduler and the Slurm partitions of the original
//! (`debug` up to 30 minutes, `compute` by default, `gpu-shared` with 1–3 GPUs).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::api::SessionClock;
use crate::launcher::launcher_error::LauncherError;
use crate::launcher::layers::{LaunchTable, Layers};
use crate::launcher::source::{Layer, Source, Sourced, line_of};
use crate::wall_time::{self, WallTime};

pub use crate::scheduler::SchedulerKind;

/// A value or a list of them (`proxy_address = "10.0.0.5:443"` or
/// `["10.0.0.5:443", "10.0.0.6:443"]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum OneOrMore<T> {
    One(T),
    More(Vec<T>),
}

impl<T> OneOrMore<T> {
    fn into_vec(self) -> Vec<T> {
        match self {
            OneOrMore::One(one) => vec![one],
            OneOrMore::More(more) => more,
        }
    }
}

/// The port an `http(s)://host:port/...` URL names, if it names one.
fn explicit_port(url: &str) -> Option<u16> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let (host, port) = host_port.rsplit_once(':')?;
    if host.starts_with('[') && !host.ends_with(']') {
        return None;
    }
    port.parse().ok()
}

/// How a partition asks Slurm for GPUs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GpuFlag {
    /// `#SBATCH --gpus=N`
    Gpus,
    /// `#SBATCH --gres=gpu:N`
    Gres,
}

impl GpuFlag {
    /// The `#SBATCH` option for `count` GPUs; never called with 0, because an
    /// empty GPU flag on CPU jobs was one of the original's bugs.
    pub fn option(self, count: u32) -> String {
        match self {
            GpuFlag::Gpus => format!("--gpus={count}"),
            GpuFlag::Gres => format!("--gres=gpu:{count}"),
        }
    }
}

/// One partition and its limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    pub name: String,
    pub max_time: Option<Sourced<WallTime>>,
    pub default: bool,
    pub gpus_min: u32,
    pub gpus_max: u32,
    pub gpu_flag: GpuFlag,
    /// The idle timeout of sessions that set none; `Some(None)` is `off`.
    pub idle_timeout: Option<Sourced<Option<WallTime>>>,
    /// The longest idle timeout a session may ask for.
    pub max_idle_timeout: Option<Sourced<WallTime>>,
    /// How far `jrps extend` may move a session's end beyond the time
    /// asked, in total: the job is submitted with this much more.
    pub extend_max: Option<Sourced<WallTime>>,
    /// This partition's own `walltime_warn` and `walltime_save`.
    pub walltime: WalltimeNotice,
    /// Where the partition is defined (the `[partitions.NAME]` header).
    pub source: Source,
}

/// One cluster of a site with several (`[clusters.NAME]`): what differs
/// between them. Which one a launch is for is `launcher::clusters`'.
#[derive(Debug, Clone)]
pub struct Cluster {
    pub name: String,
    pub scheduler: SchedulerKind,
    /// Set for every scheduler command (`SLURM_CONF`, `PBS_SERVER`, ...).
    pub env: Vec<(String, String)>,
    /// Login node names (`*` matches any run of characters) that mean
    /// this cluster when none is named.
    pub hosts: Vec<String>,
    pub partitions: BTreeMap<String, Partition>,
    pub batch_dirs: Vec<PathBuf>,
    pub scheduler_timeout: Option<WallTime>,
    pub parallel_environment: Option<String>,
    pub node_interface: Option<String>,
    pub requeue: Option<bool>,
    /// The `[clusters.NAME]` header.
    pub source: Source,
}

/// When the page inside Jupyter warns and saves before a session's end.
/// Each field unset takes the site's, and the site's unset the defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WalltimeNotice {
    /// How long before the end to warn, each once.
    pub warn: Option<Vec<WallTime>>,
    /// How long before the end to save every open document.
    pub save: Option<WallTime>,
}

/// Warnings 15 and 5 minutes before the end, and a save 2 minutes before.
const DEFAULT_WARN_MINUTES: [u64; 2] = [15, 5];
const DEFAULT_SAVE_MINUTES: u64 = 2;

/// The resolved site configuration.
#[derive(Debug, Clone)]
pub struct SiteConfig {
    /// The `site.toml` read, `None` for the built-in defaults.
    pub path: Option<PathBuf>,
    pub proxy_url: Option<String>,
    pub proxy_ca: Option<PathBuf>,
    /// Connect to the proxy here instead of resolving `proxy_url`'s host
    /// (compute nodes without DNS for it; TLS still checks `proxy_url`'s name).
    /// Several when the proxy runs as replicas: calls try them in order.
    pub proxy_address: Vec<std::net::SocketAddr>,
    pub scheduler: SchedulerKind,
    pub account_required: Option<Source>,
    pub modules: Vec<String>,
    /// Where `modules` is set, for `profiles show`.
    pub modules_source: Source,
    pub jupyter: String,
    /// The `code-server` sessions run (`-s code-server`).
    pub code_server: String,
    /// The file that defines `conda` on compute nodes, sourced before
    /// `conda activate`; without it the site's modules must provide `conda`.
    pub conda_init: Option<Sourced<String>>,
    pub container_runtime: String,
    pub jrps: String,
    /// `identity = "munge"`: API calls carry a munge credential made here
    /// (the launcher) and on compute nodes (the job helper).
    pub munge: Option<crate::identity::Munge>,
    /// Network interface whose address Jupyter binds to; the node's first
    /// address that is not loopback when unset.
    pub node_interface: Option<String>,
    /// How long `jrps up` waits out a proxy it cannot reach (a restart, a
    /// replica fail-over) before it gives the launch up.
    pub proxy_outage_limit: Sourced<WallTime>,
    /// How long one scheduler command may take before it is killed and
    /// the job's state is "unknown".
    pub scheduler_timeout: WallTime,
    /// Grid Engine: the parallel environment whose slots are a job's CPUs.
    pub parallel_environment: String,
    /// Whether Slurm may start a session's job again after its node fails
    /// (its default); `false` submits with `--no-requeue`, and the session
    /// ends with its node.
    pub requeue: bool,
    /// `walltime_notice = false` turns the page inside Jupyter off.
    pub walltime_notice: bool,
    /// The site's `walltime_warn` and `walltime_save`.
    pub walltime: WalltimeNotice,
    pub batch_dirs: Vec<PathBuf>,
    pub partitions: BTreeMap<String, Partition>,
    /// The `[defaults]` table: launch fields for every profile.
    pub defaults: Layers,
    /// `[clusters.NAME]`: a site of several clusters; empty for one.
    pub clusters: BTreeMap<String, Cluster>,
    /// In a view of one cluster (`for_cluster`): its name.
    pub cluster: Option<String>,
    /// In a view of one cluster: what its scheduler commands are run with.
    pub scheduler_env: Vec<(String, String)>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SiteFile {
    proxy_url: Option<Spanned<String>>,
    proxy_ca: Option<PathBuf>,
    proxy_address: Option<Spanned<OneOrMore<std::net::SocketAddr>>>,
    scheduler: Option<Spanned<SchedulerKind>>,
    account_required: Option<Spanned<bool>>,
    modules: Option<Spanned<Vec<String>>>,
    jupyter: Option<Spanned<String>>,
    code_server: Option<Spanned<String>>,
    conda_init: Option<Spanned<String>>,
    container_runtime: Option<Spanned<String>>,
    jrps: Option<Spanned<String>>,
    identity: Option<crate::identity::IdentityKind>,
    munge_socket: Option<PathBuf>,
    node_interface: Option<Spanned<String>>,
    proxy_outage_limit: Option<Spanned<toml::Value>>,
    scheduler_timeout: Option<Spanned<toml::Value>>,
    parallel_environment: Option<Spanned<String>>,
    requeue: Option<bool>,
    walltime_notice: Option<bool>,
    walltime_warn: Option<Spanned<Vec<Spanned<toml::Value>>>>,
    walltime_save: Option<Spanned<toml::Value>>,
    batch_dirs: Option<Vec<PathBuf>>,
    partitions: Option<Spanned<BTreeMap<String, Spanned<PartitionFile>>>>,
    defaults: Option<LaunchTable>,
    clusters: Option<BTreeMap<String, Spanned<ClusterFile>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClusterFile {
    scheduler: Spanned<SchedulerKind>,
    #[serde(default)]
    env: BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    hosts: Vec<String>,
    partitions: Option<BTreeMap<String, Spanned<PartitionFile>>>,
    batch_dirs: Option<Vec<PathBuf>>,
    scheduler_timeout: Option<Spanned<toml::Value>>,
    parallel_environment: Option<Spanned<String>>,
    node_interface: Option<Spanned<String>>,
    requeue: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PartitionFile {
    max_time: Option<Spanned<toml::Value>>,
    #[serde(default)]
    default: bool,
    #[serde(default)]
    gpus_min: u32,
    #[serde(default)]
    gpus_max: u32,
    gpu_flag: Option<GpuFlag>,
    idle_timeout: Option<Spanned<toml::Value>>,
    max_idle_timeout: Option<Spanned<toml::Value>>,
    extend_max: Option<Spanned<toml::Value>>,
    walltime_warn: Option<Spanned<Vec<Spanned<toml::Value>>>>,
    walltime_save: Option<Spanned<toml::Value>>,
}

/// `proxy_outage_limit` when the site sets none: longer than a proxy
/// restart or a database fail-over takes.
const DEFAULT_PROXY_OUTAGE_MINUTES: u64 = 10;

/// The partitions of the original `start-jupyter`, used when a site defines none.
const BUILT_IN_PARTITIONS: &[(&str, Option<u64>, bool, u32, u32)] = &[
    // (name, max minutes, default, gpus_min, gpus_max)
    ("compute", Some(48 * 60), true, 0, 0),
    ("debug", Some(30), false, 0, 0),
    ("gpu-shared", Some(48 * 60), false, 1, 3),
];

impl SiteConfig {
    /// How this site's scheduler commands run.
    pub fn scheduler_commands(&self) -> crate::scheduler::CommandEnv {
        crate::scheduler::CommandEnv {
            vars: self.scheduler_env.clone(),
            timeout: std::time::Duration::from_secs(self.scheduler_timeout.seconds()),
        }
    }

    pub fn built_in() -> SiteConfig {
        let partitions = BUILT_IN_PARTITIONS
            .iter()
            .map(|&(name, max, default, gpus_min, gpus_max)| {
                let partition = Partition {
                    name: name.to_string(),
                    max_time: max
                        .and_then(WallTime::from_minutes)
                        .map(|t| Sourced::new(t, Source::BuiltInSite)),
                    default,
                    gpus_min,
                    gpus_max,
                    gpu_flag: GpuFlag::Gres,
                    idle_timeout: None,
                    max_idle_timeout: None,
                    extend_max: None,
                    walltime: WalltimeNotice::default(),
                    source: Source::BuiltInSite,
                };
                (name.to_string(), partition)
            })
            .collect();
        SiteConfig {
            path: None,
            proxy_url: None,
            proxy_ca: None,
            proxy_address: Vec::new(),
            scheduler: SchedulerKind::Local,
            account_required: None,
            modules: Vec::new(),
            modules_source: Source::BuiltInSite,
            jupyter: "jupyter".into(),
            code_server: "code-server".into(),
            conda_init: None,
            container_runtime: "singularity".into(),
            jrps: "jrps".into(),
            munge: None,
            node_interface: None,
            proxy_outage_limit: Sourced::new(
                WallTime::from_minutes(DEFAULT_PROXY_OUTAGE_MINUTES)
                    .expect("a positive number of minutes is a wall time"),
                Source::BuiltInSite,
            ),
            scheduler_timeout: WallTime::from_seconds(crate::scheduler::DEFAULT_TIMEOUT.as_secs())
                .expect("a positive number of seconds is a wall time"),
            parallel_environment: "smp".into(),
            requeue: true,
            walltime_notice: true,
            walltime: WalltimeNotice::default(),
            batch_dirs: Vec::new(),
            partitions,
            defaults: Layers::default(),
            clusters: BTreeMap::new(),
            cluster: None,
            scheduler_env: Vec::new(),
        }
    }

    /// Reads `site_dir/site.toml`; the built-in defaults when it does not exist.
    /// `site_dir/batch` is always a batch folder when it exists.
    pub fn load(site_dir: &Path) -> Result<SiteConfig, LauncherError> {
        let path = site_dir.join("site.toml");
        let mut site = match std::fs::read_to_string(&path) {
            Ok(text) => SiteConfig::parse(&text, &path)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => SiteConfig::built_in(),
            Err(source) => return Err(LauncherError::Read { path, source }),
        };
        let batch = site_dir.join("batch");
        if batch.is_dir() {
            site.batch_dirs.push(batch);
        }
        Ok(site)
    }

    /// Parses the text of a `site.toml` at `path`; missing keys take the built-in values.
    pub fn parse(text: &str, path: &Path) -> Result<SiteConfig, LauncherError> {
        let file: SiteFile =
            toml::from_str(text).map_err(|e| toml_error(&e, text, Layer::Site, path))?;
        let at = SiteText { text, path };
        let mut site = SiteConfig::built_in();
        site.path = Some(path.to_path_buf());
        site.scheduler = file
            .scheduler
            .as_ref()
            .map_or(SchedulerKind::Slurm, |s| *s.get_ref());
        if let Some(url) = file.proxy_url {
            site.proxy_url = Some(rules::proxy_url(url, &at)?);
        }
        site.proxy_ca = file.proxy_ca;
        site.munge = rules::munge(file.identity, file.munge_socket);
        if let Some(addresses) = file.proxy_address {
            site.proxy_address = rules::proxy_address(addresses, site.proxy_url.as_deref(), &at)?;
        }
        if let Some(required) = file.account_required {
            site.account_required = required.get_ref().then(|| at.source(required.span().start));
        }
        if let Some(modules) = file.modules {
            site.modules_source = at.source(modules.span().start);
            site.modules = modules.into_inner();
        }
        for (value, field, slot) in [
            (file.jupyter, "jupyter", &mut site.jupyter),
            (file.code_server, "code_server", &mut site.code_server),
            (
                file.container_runtime,
                "container_runtime",
                &mut site.container_runtime,
            ),
            (file.jrps, "jrps", &mut site.jrps),
        ] {
            if let Some(value) = value {
                *slot = rules::program(value, field, &at)?;
            }
        }
        if let Some(init) = file.conda_init {
            site.conda_init = Some(rules::conda_init(init, &at)?);
        }
        if let Some(interface) = file.node_interface {
            site.node_interface = Some(rules::node_interface(interface, &at)?);
        }
        if let Some(limit) = file.proxy_outage_limit {
            site.proxy_outage_limit = rules::span_of_time("proxy_outage_limit", limit, &at)?;
        }
        if let Some(timeout) = file.scheduler_timeout {
            site.scheduler_timeout = rules::span_of_time("scheduler_timeout", timeout, &at)?.value;
        }
        if let Some(pe) = file.parallel_environment {
            site.parallel_environment = rules::parallel_environment(pe, &at)?;
        }
        site.requeue = file.requeue.unwrap_or(true);
        site.walltime_notice = file.walltime_notice.unwrap_or(true);
        site.walltime = rules::walltime_notice(file.walltime_warn, file.walltime_save, &at)?;
        site.batch_dirs = file.batch_dirs.unwrap_or_default();
        if let Some(clusters) = file.clusters {
            // Each cluster names its scheduler and partitions: at the top
            // they would say which cluster's they are no better than a guess.
            if let Some(partitions) = &file.partitions {
                return Err(rules::not_with_clusters(
                    "partitions",
                    partitions.span(),
                    &at,
                ));
            }
            if let Some(scheduler) = &file.scheduler {
                return Err(rules::not_with_clusters("scheduler", scheduler.span(), &at));
            }
            site.partitions = BTreeMap::new();
            for (name, cluster) in clusters {
                let cluster = rules::cluster(name, cluster, &at)?;
                site.clusters.insert(cluster.name.clone(), cluster);
            }
        }
        if let Some(partitions) = file.partitions {
            site.partitions = rules::partitions(partitions.into_inner(), &at)?;
        }
        if let Some(defaults) = file.defaults {
            let (layers, extends) = Layers::from_table(defaults, text, Layer::Site, path)?;
            if let Some(extends) = &extends {
                return Err(no_extends_in_defaults(extends));
            }
            site.defaults = layers;
        }
        Ok(site)
    }

    /// When the page inside a session on `partition` warns and saves, in
    /// seconds before its end: the partition's settings, else the site's,
    /// else 15 and 5 minutes and 2 minutes.
    pub fn walltime_notice(&self, partition: &Partition) -> (Vec<u32>, u32) {
        let seconds = |t: &WallTime| u32::try_from(t.seconds()).unwrap_or(u32::MAX);
        let warn = partition
            .walltime
            .warn
            .as_ref()
            .or(self.walltime.warn.as_ref())
            .map(|warn| warn.iter().map(seconds).collect())
            .unwrap_or_else(|| {
                DEFAULT_WARN_MINUTES
                    .iter()
                    .map(|m| *m as u32 * 60)
                    .collect()
            });
        let save = partition
            .walltime
            .save
            .or(self.walltime.save)
            .map_or(DEFAULT_SAVE_MINUTES as u32 * 60, |t| seconds(&t));
        (warn, save)
    }

    /// The partition marked `default = true`, if any.
    pub fn default_partition(&self) -> Option<&Partition> {
        self.partitions.values().find(|p| p.default)
    }

    /// Where the site's values come from, for messages.
    pub fn source(&self) -> Source {
        match &self.path {
            Some(path) => Source::file(Layer::Site, path, None),
            None => Source::BuiltInSite,
        }
    }
}

pub(crate) fn no_extends_in_defaults(extends: &Sourced<String>) -> LauncherError {
    LauncherError::Invalid {
        field: "extends".into(),
        value: extends.value.clone(),
        origin: extends.source.clone(),
        problem: "a [defaults] table cannot extend a profile".into(),
        allowed: "`extends` in profile files only".into(),
    }
}

/// The text of a `site.toml` and its path: where a key's value came from.
struct SiteText<'a> {
    text: &'a str,
    path: &'a Path,
}

impl SiteText<'_> {
    fn source(&self, offset: usize) -> Source {
        Source::file(Layer::Site, self.path, Some(line_of(self.text, offset)))
    }
}

/// One function per `site.toml` key that needs a check: each takes the
/// value as written (with its place in the file) and returns it typed, or
/// an error naming the key, its line and what is allowed.
mod rules {
    use super::*;

    pub(super) fn proxy_url(url: Spanned<String>, at: &SiteText) -> Result<String, LauncherError> {
        let source = at.source(url.span().start);
        let url = url.into_inner();
        if !(url.starts_with("https://") || url.starts_with("http://"))
            || url.contains(char::is_whitespace)
        {
            return Err(LauncherError::Invalid {
                field: "proxy_url".into(),
                value: url,
                origin: source,
                problem: "it is not an http(s) URL".into(),
                allowed: "a URL such as https://manage.jrps.example.org".into(),
            });
        }
        Ok(url.trim_end_matches('/').to_string())
    }

    pub(super) fn munge(
        identity: Option<crate::identity::IdentityKind>,
        socket: Option<PathBuf>,
    ) -> Option<crate::identity::Munge> {
        (identity == Some(crate::identity::IdentityKind::Munge)).then(|| crate::identity::Munge {
            socket: socket.unwrap_or_else(|| PathBuf::from(crate::identity::DEFAULT_MUNGE_SOCKET)),
        })
    }

    /// A URL that names a port is connected to on that port, whatever an
    /// address says (the HTTP client's rule): an address on another port
    /// would silently reach the URL's instead.
    pub(super) fn proxy_address(
        addresses: Spanned<OneOrMore<std::net::SocketAddr>>,
        url: Option<&str>,
        at: &SiteText,
    ) -> Result<Vec<std::net::SocketAddr>, LauncherError> {
        let source = at.source(addresses.span().start);
        let addresses = addresses.into_inner().into_vec();
        if let Some(port) = url.and_then(explicit_port)
            && let Some(other) = addresses.iter().find(|a| a.port() != port)
        {
            return Err(LauncherError::Invalid {
                field: "proxy_address".into(),
                value: other.to_string(),
                origin: source,
                problem: format!(
                    "its port is not {port}, the port proxy_url names, which is the one \
                     connected to"
                ),
                allowed: format!(
                    "addresses on port {port} (replicas differ by IP address), or a \
                     proxy_url without a port"
                ),
            });
        }
        Ok(addresses)
    }

    /// `jupyter`, `code_server`, `container_runtime`, `jrps`: a command the
    /// job runs.
    pub(super) fn program(
        value: Spanned<String>,
        field: &'static str,
        at: &SiteText,
    ) -> Result<String, LauncherError> {
        let source = at.source(value.span().start);
        let value = value.into_inner();
        if value.is_empty() || value.chars().any(char::is_control) {
            return Err(LauncherError::Invalid {
                field: field.into(),
                value,
                origin: source,
                problem: "it is empty or has control characters".into(),
                allowed: "a command name or an absolute path".into(),
            });
        }
        Ok(value)
    }

    pub(super) fn conda_init(
        init: Spanned<String>,
        at: &SiteText,
    ) -> Result<Sourced<String>, LauncherError> {
        let source = at.source(init.span().start);
        let init = init.into_inner();
        if !init.starts_with('/') || init.chars().any(char::is_control) {
            return Err(LauncherError::Invalid {
                field: "conda_init".into(),
                value: init,
                origin: source,
                problem: "it is not an absolute path".into(),
                allowed: "the absolute path of the file that defines `conda`, such as /opt/conda/etc/profile.d/conda.sh".into(),
            });
        }
        Ok(Sourced::new(init, source))
    }

    pub(super) fn node_interface(
        interface: Spanned<String>,
        at: &SiteText,
    ) -> Result<String, LauncherError> {
        simple_name(
            interface,
            "node_interface",
            "an interface name",
            "a network interface name such as ib0",
            at,
        )
    }

    pub(super) fn parallel_environment(
        pe: Spanned<String>,
        at: &SiteText,
    ) -> Result<String, LauncherError> {
        simple_name(
            pe,
            "parallel_environment",
            "a parallel environment's name",
            "the name of a Grid Engine parallel environment such as smp",
            at,
        )
    }

    /// A name a scheduler or the system reads as one word.
    fn simple_name(
        value: Spanned<String>,
        field: &'static str,
        what: &str,
        allowed: &str,
        at: &SiteText,
    ) -> Result<String, LauncherError> {
        let source = at.source(value.span().start);
        let value = value.into_inner();
        if !is_simple_name(&value) {
            return Err(LauncherError::Invalid {
                field: field.into(),
                value,
                origin: source,
                problem: format!("it is not {what}"),
                allowed: allowed.into(),
            });
        }
        Ok(value)
    }

    /// A span of time in a top-level key (`proxy_outage_limit`,
    /// `scheduler_timeout`), in the wall-time forms.
    pub(super) fn span_of_time(
        field: &'static str,
        limit: Spanned<toml::Value>,
        at: &SiteText,
    ) -> Result<Sourced<WallTime>, LauncherError> {
        let source = at.source(limit.span().start);
        let raw = match limit.into_inner() {
            toml::Value::String(s) => s,
            other => other.to_string(),
        };
        let limit = WallTime::parse(&raw).map_err(|problem| LauncherError::Invalid {
            field: field.into(),
            value: raw.clone(),
            origin: source.clone(),
            problem,
            allowed: wall_time::FORMATS.into(),
        })?;
        Ok(Sourced::new(limit, source))
    }

    pub(super) fn not_with_clusters(
        key: &'static str,
        span: std::ops::Range<usize>,
        at: &SiteText,
    ) -> LauncherError {
        LauncherError::Invalid {
            field: key.into(),
            value: at.text[span.clone()].chars().take(40).collect(),
            origin: at.source(span.start),
            problem: "the site has [clusters], and each names its own".into(),
            allowed: format!("`{key}` inside each [clusters.NAME] table"),
        }
    }

    /// One `[clusters.NAME]` table.
    pub(super) fn cluster(
        name: String,
        spanned: Spanned<ClusterFile>,
        at: &SiteText,
    ) -> Result<Cluster, LauncherError> {
        let source = at.source(spanned.span().start);
        if !is_simple_name(&name) {
            return Err(LauncherError::Invalid {
                field: "clusters".into(),
                value: name,
                origin: source,
                problem: "it is not a cluster name".into(),
                allowed: "letters, digits, `-`, `_` and `.`".into(),
            });
        }
        let file = spanned.into_inner();
        let mut env = Vec::new();
        for (variable, value) in file.env {
            let valid = variable
                .bytes()
                .next()
                .is_some_and(|b| b.is_ascii_uppercase() || b == b'_')
                && variable
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
            if !valid || variable.starts_with("JRPS_") {
                return Err(LauncherError::Invalid {
                    field: format!("clusters.{name}.env"),
                    value: variable,
                    origin: at.source(value.span().start),
                    problem: "it is not a variable a scheduler command reads".into(),
                    allowed: "upper-case names such as SLURM_CONF or PBS_SERVER, not JRPS_*".into(),
                });
            }
            env.push((variable, value.into_inner()));
        }
        let partitions = match file.partitions {
            Some(tables) => partitions(tables, at)?,
            None => {
                return Err(LauncherError::Missing {
                    field: "partitions",
                    required_by: source,
                    how: format!("[clusters.{name}.partitions.NAME] tables, one marked default"),
                });
            }
        };
        Ok(Cluster {
            scheduler: file.scheduler.into_inner(),
            env,
            hosts: file.hosts,
            partitions,
            batch_dirs: file.batch_dirs.unwrap_or_default(),
            scheduler_timeout: file
                .scheduler_timeout
                .map(|t| span_of_time("scheduler_timeout", t, at))
                .transpose()?
                .map(|t| t.value),
            parallel_environment: file
                .parallel_environment
                .map(|pe| parallel_environment(pe, at))
                .transpose()?,
            node_interface: file
                .node_interface
                .map(|interface| node_interface(interface, at))
                .transpose()?,
            requeue: file.requeue,
            name,
            source,
        })
    }

    /// Every partition, and at most one of them the default.
    pub(super) fn partitions(
        partitions: BTreeMap<String, Spanned<PartitionFile>>,
        at: &SiteText,
    ) -> Result<BTreeMap<String, Partition>, LauncherError> {
        let mut all = BTreeMap::new();
        for (name, spanned) in partitions {
            let partition = partition(name, spanned, at)?;
            all.insert(partition.name.clone(), partition);
        }
        let defaults: Vec<&Partition> = all.values().filter(|p| p.default).collect();
        if let [first, second, ..] = defaults.as_slice() {
            return Err(LauncherError::Conflict {
                first: "default partition",
                first_source: first.source.clone(),
                second: "another default partition",
                second_source: second.source.clone(),
                why: "mark at most one partition `default = true`".into(),
            });
        }
        Ok(all)
    }

    fn partition(
        name: String,
        spanned: Spanned<PartitionFile>,
        at: &SiteText,
    ) -> Result<Partition, LauncherError> {
        let source = at.source(spanned.span().start);
        let p = spanned.into_inner();
        if !is_simple_name(&name) {
            return Err(LauncherError::Invalid {
                field: "partition name".into(),
                value: name,
                origin: source,
                problem: "it has characters Slurm partition names do not".into(),
                allowed: "letters, digits, `-`, `_` and `.`".into(),
            });
        }
        let limit = limit_of;
        let max_time = limit(time(p.max_time, "max_time", false, at)?);
        let idle_timeout = time(p.idle_timeout, "idle_timeout", true, at)?;
        let max_idle_timeout = limit(time(p.max_idle_timeout, "max_idle_timeout", false, at)?);
        let extend_max = limit(time(p.extend_max, "extend_max", false, at)?);
        let walltime = walltime_notice(p.walltime_warn, p.walltime_save, at)?;
        if let (Some(default), Some(max)) = (&idle_timeout, &max_idle_timeout)
            && default.value.is_none_or(|t| t > max.value)
        {
            return Err(LauncherError::Invalid {
                field: "idle_timeout".into(),
                value: default.value.map_or("off".into(), |t| t.to_string()),
                origin: default.source.clone(),
                problem: format!(
                    "it is over the partition's max_idle_timeout ({})",
                    max.value
                ),
                allowed: format!("at most {} (set by {})", max.value, max.source),
            });
        }
        if p.gpus_min > p.gpus_max {
            return Err(LauncherError::Invalid {
                field: "gpus_min".into(),
                value: p.gpus_min.to_string(),
                origin: source,
                problem: format!("it is above gpus_max ({})", p.gpus_max),
                allowed: "a number from 0 to gpus_max".into(),
            });
        }
        Ok(Partition {
            name,
            max_time,
            default: p.default,
            gpus_min: p.gpus_min,
            gpus_max: p.gpus_max,
            gpu_flag: p.gpu_flag.unwrap_or(GpuFlag::Gpus),
            idle_timeout,
            max_idle_timeout,
            extend_max,
            walltime,
            source,
        })
    }

    /// `walltime_warn` (a list of times, at most eight) and `walltime_save`,
    /// each at most a day: the page polls the proxy, and a day is more
    /// warning than anyone reads.
    pub(super) fn walltime_notice(
        warn: Option<Spanned<Vec<Spanned<toml::Value>>>>,
        save: Option<Spanned<toml::Value>>,
        at: &SiteText,
    ) -> Result<WalltimeNotice, LauncherError> {
        let within_a_day = |value: Spanned<toml::Value>, field: &'static str| {
            let span = value.span();
            let time = limit_of(time(Some(value), field, false, at)?);
            match time {
                Some(t) if t.value.seconds() > u64::from(SessionClock::MAX_SPAN_S) => {
                    Err(LauncherError::Invalid {
                        field: field.into(),
                        value: t.value.to_string(),
                        origin: at.source(span.start),
                        problem: "it is over a day".into(),
                        allowed: "a time from 1 second to 24 hours, such as 15 or \"0:40\"".into(),
                    })
                }
                t => Ok(t.map(|t| t.value)),
            }
        };
        let warn = match warn {
            None => None,
            Some(list) => {
                let source = at.source(list.span().start);
                let list = list.into_inner();
                if list.len() > SessionClock::MAX_WARNINGS {
                    return Err(LauncherError::Invalid {
                        field: "walltime_warn".into(),
                        value: format!("{} times", list.len()),
                        origin: source,
                        problem: "it has too many times".into(),
                        allowed: format!("at most {} times", SessionClock::MAX_WARNINGS),
                    });
                }
                let mut times = Vec::with_capacity(list.len());
                for item in list {
                    times.extend(within_a_day(item, "walltime_warn")?);
                }
                Some(times)
            }
        };
        let save = save
            .map(|s| within_a_day(s, "walltime_save"))
            .transpose()?
            .flatten();
        Ok(WalltimeNotice { warn, save })
    }

    fn limit_of(s: Option<Sourced<Option<WallTime>>>) -> Option<Sourced<WallTime>> {
        s.and_then(|s| Some(Sourced::new(s.value?, s.source)))
    }

    /// A partition's time limit (`off` allowed where `off` is true).
    fn time(
        value: Option<Spanned<toml::Value>>,
        field: &'static str,
        off: bool,
        at: &SiteText,
    ) -> Result<Option<Sourced<Option<WallTime>>>, LauncherError> {
        let Some(value) = value else {
            return Ok(None);
        };
        let source = at.source(value.span().start);
        let raw = match value.into_inner() {
            toml::Value::String(s) => s,
            toml::Value::Integer(i) => i.to_string(),
            other => other.to_string(),
        };
        let (parsed, allowed) = if off {
            (wall_time::parse_idle(&raw), wall_time::IDLE_FORMATS)
        } else {
            (WallTime::parse(&raw).map(Some), wall_time::FORMATS)
        };
        let time = parsed.map_err(|problem| LauncherError::Invalid {
            field: field.into(),
            value: raw.clone(),
            origin: source.clone(),
            problem,
            allowed: allowed.into(),
        })?;
        Ok(Some(Sourced::new(time, source)))
    }
}

/// Letters, digits, `-`, `_`, `.`: partition, account, interface and profile names.
pub fn is_simple_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

/// A TOML syntax or type error with the file and line it points at. toml's
/// message does not always name the key, so the line itself is quoted.
pub fn toml_error(error: &toml::de::Error, text: &str, layer: Layer, path: &Path) -> LauncherError {
    let line = error.span().map(|span| line_of(text, span.start));
    let excerpt = line
        .and_then(|l| text.lines().nth(l - 1))
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| format!("in `{l}`: "))
        .unwrap_or_default();
    LauncherError::ConfigFile {
        location: Source::file(layer, path, line),
        message: format!("{excerpt}{}", error.message().trim()),
    }
}
