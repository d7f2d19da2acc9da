//! `proxy.toml` → a validated [`ProxyConfig`]. This module owns the file format,
//! its defaults and its error messages (`path:line:column: what`); nothing else
//! in the proxy reads the raw file, and [`super::serve`] accepts only a
//! `ProxyConfig`. No sockets or files other than the config itself are opened
//! here: certificates are loaded by the listener, the state file by the store.

use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;

use crate::identity::{DEFAULT_MUNGE_SOCKET, IdentityKind, Munge};
use crate::proxy::announcement::{Announcement, RawAnnouncement};
use crate::proxy::limits::{Limits, RawLimits};
use crate::proxy::store::{PgTarget, StateLocation};
use serde::Deserialize;
use toml::Spanned;

/// A config problem, located in the file when the problem has a place.
#[derive(Debug, thiserror::Error)]
#[error("{path}{location}: {message}")]
pub struct ConfigError {
    pub path: PathBuf,
    /// `:line:column`, or empty when the problem is the file as a whole.
    location: String,
    pub message: String,
}

impl ConfigError {
    fn whole(path: &Path, message: impl Into<String>) -> Self {
        ConfigError {
            path: path.to_owned(),
            location: String::new(),
            message: message.into(),
        }
    }

    fn at(path: &Path, text: &str, offset: usize, message: impl Into<String>) -> Self {
        let before = &text[..offset.min(text.len())];
        let line = before.matches('\n').count() + 1;
        let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
        ConfigError {
            path: path.to_owned(),
            location: format!(":{line}:{column}"),
            message: message.into(),
        }
    }
}

/// One `[clusters.NAME]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCluster {
    allowed_backend_cidrs: Vec<Spanned<String>>,
}

/// The file as written. Kept apart from [`ProxyConfig`] so that defaults,
/// relative paths and cross-field rules are resolved in one place.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    domain: Spanned<String>,
    listen: Spanned<String>,
    api_addr: Option<Spanned<String>>,
    tls_cert: Option<Spanned<PathBuf>>,
    tls_key: Option<Spanned<PathBuf>>,
    state: Spanned<String>,
    cookie_key: Option<PathBuf>,
    allowed_client_cidrs: Vec<Spanned<String>>,
    allowed_backend_cidrs: Vec<Spanned<String>>,
    backend_ports: Option<Spanned<String>>,
    behind_tls: Option<Spanned<bool>>,
    access_log: Option<bool>,
    max_ttl_seconds: Option<u64>,
    health_check_interval_s: Option<u64>,
    health_check_failures: Option<u32>,
    ended_retention_s: Option<u64>,
    unlinked_session_s: Option<u64>,
    trust_database_roles: Option<bool>,
    workers: Option<usize>,
    identity: Option<IdentityKind>,
    munge_socket: Option<PathBuf>,
    audit_log: Option<PathBuf>,
    limits: Option<RawLimits>,
    announcement: Option<RawAnnouncement>,
    clusters: Option<std::collections::BTreeMap<String, Spanned<RawCluster>>>,
}

/// The validated configuration the proxy runs with.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// Lower case, no leading or trailing dot, e.g. `jrps.example.org`.
    pub domain: String,
    pub listen: SocketAddr,
    pub api_addr: Option<SocketAddr>,
    /// Certificate chain and key PEM files; `None` means plain HTTP.
    pub tls: Option<TlsFiles>,
    /// A SQLite file, or a PostgreSQL database replicas share.
    pub state: StateLocation,
    /// The server key edge cookies are derived from (default: the state
    /// file's path with `.key` appended; with PostgreSQL it must be named,
    /// and be the same file on every replica); made 0600 at first start.
    pub cookie_key: PathBuf,
    pub allowed_client_cidrs: Vec<IpNet>,
    pub allowed_backend_cidrs: Vec<IpNet>,
    /// `[clusters.NAME]`: where the backends of each cluster's sessions
    /// may be; a session of one never registers from another's range.
    pub clusters: std::collections::BTreeMap<String, Vec<IpNet>>,
    pub backend_ports: PortSet,
    /// The plain listener sits behind a TLS terminator: cookies get `Secure`
    /// and `X-Forwarded-Proto` says `https`.
    pub behind_tls: bool,
    /// One log line per request (alias, method, path, status; never the query).
    pub access_log: bool,
    pub max_ttl: Duration,
    pub health_check_interval: Duration,
    pub health_check_failures: u32,
    /// How long an ended session stays answerable (`state: ended`) before it
    /// is forgotten and its alias can be drawn again.
    pub ended_retention: Duration,
    /// How long a session may wait for its launcher to link a job before
    /// the proxy ends it (`never-submitted`): a launch that died or gave up
    /// between reserving and submitting must not count against a quota.
    pub unlinked_session: Duration,
    /// Threads serving connections, each with its own single-threaded
    /// runtime and backend connection pool (default: one per CPU).
    pub workers: usize,
    /// `identity = "munge"`: every API call proves its uid; `None` trusts
    /// the `user` field (workstations, the quick start).
    pub identity: Option<Munge>,
    /// One line per session event; `None` logs them to stderr under the
    /// tracing target `jrps::audit`.
    pub audit_log: Option<PathBuf>,
    pub limits: Limits,
    /// A line every waiting page shows (re-read on SIGHUP).
    pub announcement: Option<Announcement>,
    /// The file this came from, to read the announcement again on SIGHUP.
    pub source: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Allowed backend ports: `"1024-65535"`, `"8888"`, `"8000-8999, 10000-20000"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortSet(Vec<RangeInclusive<u16>>);

impl PortSet {
    pub fn contains(&self, port: u16) -> bool {
        self.0.iter().any(|range| range.contains(&port))
    }

    pub fn parse(text: &str) -> Result<PortSet, String> {
        let mut ranges = Vec::new();
        for part in text.split(',').map(str::trim) {
            let (low, high) = part.split_once('-').unwrap_or((part, part));
            let port = |s: &str| {
                s.trim()
                    .parse::<u16>()
                    .ok()
                    .filter(|p| *p != 0)
                    .ok_or_else(|| format!("`{s}` is not a port (1-65535)"))
            };
            let (low, high) = (port(low)?, port(high)?);
            if low > high {
                return Err(format!("range `{part}` is empty"));
            }
            ranges.push(low..=high);
        }
        Ok(PortSet(ranges))
    }
}

/// Who besides the proxy may read a file: anyone (world-readable), or a
/// group that is not the proxy's own. `None` when only the proxy may.
fn readers_beyond_the_proxy(meta: &std::fs::Metadata) -> Option<&'static str> {
    use std::os::unix::fs::MetadataExt;
    let mode = meta.mode();
    if mode & 0o004 != 0 {
        Some("every user")
    } else if mode & 0o040 != 0 && meta.gid() != rustix::process::getegid().as_raw() {
        Some("another group")
    } else {
        None
    }
}

impl ProxyConfig {
    /// Where the backend of a session of `cluster` may be: its cluster's
    /// ranges on a proxy that has `[clusters]` (none for a session of no
    /// cluster, or of one no longer configured); else `allowed_backend_cidrs`.
    pub fn backend_cidrs(&self, cluster: Option<&str>) -> &[IpNet] {
        if self.clusters.is_empty() {
            return &self.allowed_backend_cidrs;
        }
        cluster
            .and_then(|name| self.clusters.get(name))
            .map_or(&[], Vec::as_slice)
    }

    /// Whether any session's backend may be at `ip` (a compute node's call).
    pub fn may_be_backend(&self, ip: std::net::IpAddr) -> bool {
        crate::proxy::addresses::cidrs_contain(&self.allowed_backend_cidrs, ip)
            || self
                .clusters
                .values()
                .any(|cidrs| crate::proxy::addresses::cidrs_contain(cidrs, ip))
    }

    /// Reads and validates `path`. Relative paths inside the file are taken
    /// relative to the file's directory, so a config works from any cwd.
    pub fn load(path: &Path) -> Result<ProxyConfig, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::whole(path, format!("cannot read: {e}")))?;
        let mut config = Self::parse(path, &text)?;
        config.source = Some(path.to_path_buf());
        if let StateLocation::Postgres(target) = &config.state
            && target.has_password()
            && let Some(readers) = std::fs::metadata(path)
                .ok()
                .and_then(|meta| readers_beyond_the_proxy(&meta))
        {
            eprintln!(
                "warning: {} holds the state database's password and {readers} can read it; \
                 make it 0640 root:jrps (or 0600)",
                path.display()
            );
        }
        Ok(config)
    }

    pub fn parse(path: &Path, text: &str) -> Result<ProxyConfig, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| {
            let message = e.message().trim().to_owned();
            match e.span() {
                Some(span) => ConfigError::at(path, text, span.start, message),
                None => ConfigError::whole(path, message),
            }
        })?;
        let file = ConfigText { path, text };
        let at = |offset: usize, message: String| file.at(offset, message);
        let domain = rules::domain(&raw.domain, &file)?;
        let listen = rules::address(&raw.listen, "listen", &file)?;
        let api_addr = raw
            .api_addr
            .as_ref()
            .map(|a| rules::address(a, "api_addr", &file))
            .transpose()?;
        let behind_tls = rules::behind_tls(raw.behind_tls.as_ref(), api_addr, &file)?;
        let tls = rules::tls(raw.tls_cert, raw.tls_key, &file)?;
        let allowed_client_cidrs =
            rules::cidrs(&raw.allowed_client_cidrs, "allowed_client_cidrs", &file)?;
        let allowed_backend_cidrs =
            rules::cidrs(&raw.allowed_backend_cidrs, "allowed_backend_cidrs", &file)?;
        let mut clusters = std::collections::BTreeMap::new();
        for (name, cluster) in raw.clusters.unwrap_or_default() {
            if !crate::api::is_cluster_name(&name) {
                return Err(at(
                    cluster.span().start,
                    format!(
                        "[clusters.{name}]: a cluster's name is letters, digits, `-`, `_` and `.`"
                    ),
                ));
            }
            let key = format!("clusters.{name}.allowed_backend_cidrs");
            let cidrs = rules::cidrs(&cluster.get_ref().allowed_backend_cidrs, &key, &file)?;
            clusters.insert(name, cidrs);
        }
        let backend_ports = match &raw.backend_ports {
            Some(s) => PortSet::parse(s.get_ref())
                .map_err(|why| at(s.span().start, format!("`backend_ports`: {why}")))?,
            None => PortSet(vec![1024..=65535]),
        };
        let limits = raw.limits.unwrap_or_default().resolve(at)?;
        let secs = |v: Option<u64>, d: Duration| v.map_or(d, Duration::from_secs);
        let (state, cookie_key) = rules::state(
            &raw.state,
            raw.cookie_key,
            raw.trust_database_roles.unwrap_or(false),
            &file,
        )?;
        let resolve = |p: PathBuf| file.resolve(p);
        let announcement = raw
            .announcement
            .map(|a| a.resolve().map_err(|(offset, message)| at(offset, message)))
            .transpose()?;
        Ok(ProxyConfig {
            domain,
            listen,
            api_addr,
            tls,
            cookie_key,
            state,
            allowed_client_cidrs,
            allowed_backend_cidrs,
            clusters,
            backend_ports,
            behind_tls,
            access_log: raw.access_log.unwrap_or(true),
            max_ttl: secs(raw.max_ttl_seconds, Duration::from_secs(14 * 24 * 3600)),
            health_check_interval: secs(raw.health_check_interval_s, Duration::from_secs(30))
                .max(Duration::from_secs(1)),
            health_check_failures: raw.health_check_failures.unwrap_or(3).max(1),
            ended_retention: secs(raw.ended_retention_s, Duration::from_secs(24 * 3600)),
            unlinked_session: secs(raw.unlinked_session_s, Duration::from_secs(15 * 60))
                .max(Duration::from_secs(1)),
            workers: raw
                .workers
                .filter(|&n| n > 0)
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
            identity: (raw.identity == Some(IdentityKind::Munge)).then(|| Munge {
                socket: raw
                    .munge_socket
                    .unwrap_or_else(|| PathBuf::from(DEFAULT_MUNGE_SOCKET)),
            }),
            audit_log: raw.audit_log.map(resolve),
            limits,
            announcement,
            source: None,
        })
    }

    /// Whether cookies get `Secure` and forwarded requests say `https`.
    pub fn public_scheme_is_https(&self) -> bool {
        self.tls.is_some() || self.behind_tls
    }
}

/// The text of a `proxy.toml` and its path: where a key's value is, and
/// what its relative paths are relative to.
struct ConfigText<'a> {
    path: &'a Path,
    text: &'a str,
}

impl ConfigText<'_> {
    fn at(&self, offset: usize, message: String) -> ConfigError {
        ConfigError::at(self.path, self.text, offset, message)
    }

    /// A path as written, relative to the file's folder.
    fn resolve(&self, path: PathBuf) -> PathBuf {
        if path.is_absolute() {
            path
        } else {
            self.path.parent().unwrap_or(Path::new(".")).join(path)
        }
    }
}

/// One function per `proxy.toml` key that needs a check: each takes the
/// value as written (with its place in the file) and returns it typed, or
/// an error naming the key and its line.
mod rules {
    use super::*;

    pub(super) fn domain(
        value: &Spanned<String>,
        file: &ConfigText,
    ) -> Result<String, ConfigError> {
        let domain = value.get_ref().trim_matches('.').to_ascii_lowercase();
        if domain.is_empty()
            || !domain
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        {
            return Err(file.at(
                value.span().start,
                format!("`domain` must be a DNS name, not `{}`", value.get_ref()),
            ));
        }
        Ok(domain)
    }

    pub(super) fn address(
        value: &Spanned<String>,
        key: &str,
        file: &ConfigText,
    ) -> Result<SocketAddr, ConfigError> {
        value.get_ref().parse::<SocketAddr>().map_err(|_| {
            file.at(
                value.span().start,
                format!(
                    "`{key}` must be an IP address and port like \"0.0.0.0:443\", not `{}`",
                    value.get_ref()
                ),
            )
        })
    }

    /// Behind a terminator every peer address is the terminator's, so the
    /// API's address checks (allowed_client_cidrs, the backend host of a
    /// register) mean something only on a listener of their own.
    pub(super) fn behind_tls(
        value: Option<&Spanned<bool>>,
        api_addr: Option<SocketAddr>,
        file: &ConfigText,
    ) -> Result<bool, ConfigError> {
        match value.filter(|b| *b.get_ref()) {
            Some(flag) if api_addr.is_none() => Err(file.at(
                flag.span().start,
                "`behind_tls = true` needs `api_addr`: behind a TLS terminator every \
                 client's address is the terminator's, so the API must listen where \
                 login and compute nodes reach it directly"
                    .into(),
            )),
            Some(_) => Ok(true),
            None => Ok(false),
        }
    }

    pub(super) fn tls(
        cert: Option<Spanned<PathBuf>>,
        key: Option<Spanned<PathBuf>>,
        file: &ConfigText,
    ) -> Result<Option<TlsFiles>, ConfigError> {
        match (cert, key) {
            (Some(cert), Some(key)) => Ok(Some(TlsFiles {
                cert: file.resolve(cert.into_inner()),
                key: file.resolve(key.into_inner()),
            })),
            (None, None) => Ok(None),
            (Some(c), None) => {
                Err(file.at(c.span().start, "`tls_cert` needs `tls_key` too".into()))
            }
            (None, Some(k)) => {
                Err(file.at(k.span().start, "`tls_key` needs `tls_cert` too".into()))
            }
        }
    }

    pub(super) fn cidrs(
        list: &[Spanned<String>],
        key: &str,
        file: &ConfigText,
    ) -> Result<Vec<IpNet>, ConfigError> {
        list.iter()
            .map(|s| {
                let text = s.get_ref().trim();
                text.parse::<IpNet>()
                    .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
                    .map(|net| net.trunc())
                    .map_err(|_| {
                        file.at(
                            s.span().start,
                            format!("`{key}`: `{text}` is not a CIDR like \"10.0.0.0/8\""),
                        )
                    })
            })
            .collect()
    }

    /// Where sessions are kept, and the cookie key beside them: with
    /// PostgreSQL it must be named (the same file on every replica); with a
    /// file it defaults to the state file's path with `.key` appended.
    pub(super) fn state(
        state: &Spanned<String>,
        cookie_key: Option<PathBuf>,
        trust_database_roles: bool,
        file: &ConfigText,
    ) -> Result<(StateLocation, PathBuf), ConfigError> {
        let text = state.get_ref();
        if PgTarget::is_url(text) {
            let mut target = PgTarget::parse(text)
                .map_err(|problem| file.at(state.span().start, format!("`state`: {problem}")))?;
            let Some(key) = cookie_key else {
                return Err(file.at(
                    state.span().start,
                    "a PostgreSQL `state` needs `cookie_key`: the path of a key file that is \
                     the same on every replica"
                        .into(),
                ));
            };
            target.trust_database_roles = trust_database_roles;
            Ok((StateLocation::Postgres(Box::new(target)), file.resolve(key)))
        } else {
            let path = file.resolve(PathBuf::from(text));
            let key = cookie_key.map_or_else(
                || PathBuf::from(format!("{}.key", path.display())),
                |k| file.resolve(k),
            );
            Ok((StateLocation::File(path), key))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
domain = "Jrps.Example.org."
listen = "127.0.0.1:0"
state = "state.sqlite"
allowed_client_cidrs = ["127.0.0.1/32"]
allowed_backend_cidrs = ["127.0.0.1"]
"#;

    #[test]
    fn minimal_file_gets_defaults() {
        let c = ProxyConfig::parse(Path::new("/etc/jrps/proxy.toml"), MINIMAL).unwrap();
        assert_eq!(c.domain, "jrps.example.org");
        assert!(c.backend_ports.contains(1024) && !c.backend_ports.contains(22));
        assert!(
            matches!(&c.state, StateLocation::File(f) if f == Path::new("/etc/jrps/state.sqlite"))
        );
        assert_eq!(c.cookie_key, Path::new("/etc/jrps/state.sqlite.key"));
        assert!(c.tls.is_none());
    }

    #[test]
    fn a_postgres_state_needs_a_named_cookie_key_and_a_sound_url() {
        let pg = MINIMAL.replace(
            "state = \"state.sqlite\"",
            "state = \"postgres://jrps@db.example/jrps?sslmode=verify-full\"",
        );
        let e = ProxyConfig::parse(Path::new("p.toml"), &pg).unwrap_err();
        let shown = e.to_string();
        assert!(
            shown.starts_with("p.toml:4:9:") && shown.contains("cookie_key"),
            "{shown}"
        );
        let c = ProxyConfig::parse(
            Path::new("/etc/jrps/p.toml"),
            &format!("{pg}cookie_key = \"cookie.key\"\n"),
        )
        .unwrap();
        assert!(matches!(c.state, StateLocation::Postgres(_)));
        assert_eq!(c.cookie_key, Path::new("/etc/jrps/cookie.key"));
        let bad = MINIMAL.replace(
            "state = \"state.sqlite\"",
            "state = \"postgres://db/jrps?sslmode=maybe\"",
        );
        let shown = ProxyConfig::parse(Path::new("p.toml"), &bad)
            .unwrap_err()
            .to_string();
        assert!(
            shown.starts_with("p.toml:4:9:") && shown.contains("sslmode=maybe"),
            "{shown}"
        );
    }

    #[test]
    fn unknown_key_names_key_and_line() {
        let text = format!("{MINIMAL}listne = \"x\"\n");
        let e = ProxyConfig::parse(Path::new("p.toml"), &text).unwrap_err();
        let shown = e.to_string();
        assert!(shown.starts_with("p.toml:7:1:"), "{shown}");
        assert!(shown.contains("listne"), "{shown}");
    }

    #[test]
    fn bad_cidr_names_line() {
        let text = MINIMAL.replace("\"127.0.0.1\"]", "\"127.0.0.300/8\"]");
        let e = ProxyConfig::parse(Path::new("p.toml"), &text).unwrap_err();
        assert!(e.to_string().starts_with("p.toml:6:"), "{e}");
    }

    #[test]
    fn example_file_is_valid() {
        let text = include_str!("../../docs/proxy.example.toml");
        let c = ProxyConfig::parse(Path::new("docs/proxy.example.toml"), text).unwrap();
        assert!(c.tls.is_some() && c.api_addr.is_none());
        assert_eq!(c.limits.max_connections, 4096);
    }

    #[test]
    fn port_sets() {
        let p = PortSet::parse("8000-8999, 10000").unwrap();
        assert!(p.contains(8500) && p.contains(10000) && !p.contains(9000));
        assert!(PortSet::parse("0-10").is_err());
        assert!(PortSet::parse("10-5").is_err());
    }
}
