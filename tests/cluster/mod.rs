//! The cluster in a box: jrps as a centre deploys it, proven with its
//! faults. `tests/cluster/cluster` builds the hosts (network namespaces in
//! 198.18.0.0/24, Slurm across them, munged on each with one key, the proxy
//! as the `jrps` user, users alice and bob); these tests drive it as its
//! people would: the researchers on `login` with `jrps`, a browser on
//! `client`, an admin or a power cut on the other hosts.
//!
//! One cluster serves every test here (they run one at a time: a nextest
//! group), made by the first that needs it; `scripts/test` takes it down
//! at exit. It needs root (namespaces, daemons, users): without it the
//! tests fail when `CI` is set, else they are skipped with a notice.

mod faults;
mod flow;

use std::future::Future;
use std::os::fd::AsFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use crate::e2e::site::{Running, spawn_command};
use crate::proxy::harness::{Edge, TestCa, client_at};
use crate::support::Output;

pub const DOMAIN: &str = "cluster.test";
const PROXY: &str = "198.18.0.2:443";
/// `jrps up` on the cluster: a few seconds; only a ceiling.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(180);

pub struct Cluster {
    script: PathBuf,
    dir: PathBuf,
}

impl Cluster {
    /// The shared cluster, up; `None` when this run cannot have one.
    pub fn get() -> Option<&'static Cluster> {
        static CLUSTER: OnceLock<Option<Cluster>> = OnceLock::new();
        CLUSTER.get_or_init(Cluster::start).as_ref()
    }

    fn start() -> Option<Cluster> {
        if !rustix::process::geteuid().is_root() {
            crate::support::missing("root, to build the cluster in a box");
            return None;
        }
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cluster/cluster");
        let cluster = Cluster {
            script,
            dir: PathBuf::from(
                std::env::var_os("JRPS_CLUSTER_DIR").unwrap_or("/var/lib/jrps-cluster".into()),
            ),
        };
        // Tests in other processes may be bringing it up too: one at a time.
        let lock = std::fs::File::create(std::env::temp_dir().join("jrps-cluster.lock")).unwrap();
        lock.lock().unwrap();
        let up = cluster.admin(&["up"]);
        assert_eq!(up.code, Some(0), "cluster up failed:\n{}", up.describe());
        Some(cluster)
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(&self.script);
        command
            .args(args)
            .env("JRPS_BIN", env!("CARGO_BIN_EXE_jrps"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        command
    }

    /// `tests/cluster/cluster ARGS`, as root, to the end.
    pub fn admin(&self, args: &[&str]) -> Output {
        let output = self.command(args).output().unwrap();
        Output::of(&output, None)
    }

    /// `CMD` on `host` as `user` (root when `None`), to the end.
    pub fn on(&self, host: &str, user: Option<&str>, cmd: &[&str]) -> Output {
        let mut args = vec!["on", host];
        if let Some(user) = user {
            args.extend(["-u", user]);
        }
        args.push("--");
        args.extend_from_slice(cmd);
        self.admin(&args)
    }

    /// `jrps ARGS` run by `user` on the login node, collected as it runs.
    pub fn spawn_jrps(&self, user: &str, args: &[&str]) -> Running {
        self.spawn_jrps_at("site", user, args)
    }

    /// As [`Cluster::spawn_jrps`], with the site folder `site` of the
    /// cluster's (`site-norequeue`: the same site with `requeue = false`).
    pub fn spawn_jrps_at(&self, site: &str, user: &str, args: &[&str]) -> Running {
        let site_dir = format!("JRPS_SITE_DIR={}", self.dir.join(site).display());
        let mut all = vec!["on", "login", "-u", user, "--", "env", &site_dir, "jrps"];
        all.extend_from_slice(args);
        spawn_command(self.command(&all))
    }

    /// `jrps ARGS` run by `user` on the login node, to the end.
    pub async fn jrps(&self, user: &str, args: &[&str]) -> Output {
        self.spawn_jrps(user, args).finish(COMMAND_TIMEOUT).await
    }

    /// `jrps up ARGS` by `user` that must print a URL.
    pub async fn up_ok(&self, user: &str, args: &[&str]) -> Launched {
        let mut all = vec!["up"];
        all.extend_from_slice(args);
        let out = self.jrps(user, &all).await;
        assert_eq!(
            out.code,
            Some(0),
            "{user}: jrps up failed:\n{}",
            out.describe()
        );
        Launched::parse(&out.stdout)
    }

    /// `user`'s session `alias` as `jrps ls --json` shows it.
    pub async fn listing(&self, user: &str, alias: &str) -> Option<serde_json::Value> {
        let out = self.jrps(user, &["ls", "--json"]).await;
        assert_eq!(out.code, Some(0), "{}", out.describe());
        let rows: Vec<serde_json::Value> = serde_json::from_str(out.stdout.trim()).unwrap();
        rows.into_iter().find(|row| row["alias"] == alias)
    }

    /// What a browser on the client host gets for `path` of `alias`
    /// (no token, no cookie): the status and the page.
    pub fn page(&self, alias: &str, path: &str) -> (u16, String) {
        let (edge, url) = (self.edge(), self.edge().session_url(alias, path));
        on_client(move || async move {
            let response = edge
                .edge_client()
                .get(url)
                .timeout(Duration::from_secs(10))
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            (status, response.text().await.unwrap_or_default())
        })
    }

    /// The browser's view: the proxy as the client host reaches it.
    pub fn edge(&self) -> ClusterEdge {
        let pem = std::fs::read(self.dir.join("tls/ca.pem")).unwrap();
        let ca_der = CertificateDer::from_pem_slice(&pem).unwrap();
        let ca = TestCa {
            ca_der,
            ca_pem: String::from_utf8(pem).unwrap(),
            cert_pem: String::new(),
            key_pem: String::new(),
        };
        let addr: std::net::SocketAddr = PROXY.parse().unwrap();
        let client = client_at(&ca, None, addr.ip());
        ClusterEdge {
            client,
            ca: Arc::new(ca),
        }
    }
}

/// The proxy's public side, reached from the client host.
#[derive(Clone)]
pub struct ClusterEdge {
    client: reqwest::Client,
    ca: Arc<TestCa>,
}

impl Edge for ClusterEdge {
    fn edge_client(&self) -> &reqwest::Client {
        &self.client
    }

    fn edge_ca(&self) -> &TestCa {
        &self.ca
    }

    fn edge_addr(&self) -> std::net::SocketAddr {
        PROXY.parse().unwrap()
    }

    fn session_host(&self, alias: &str) -> String {
        format!("{alias}.{DOMAIN}")
    }

    fn session_url(&self, alias: &str, path: &str) -> String {
        format!("https://{alias}.{DOMAIN}{path}")
    }
}

/// Runs `work` on the client host: on a thread of its own that joined the
/// host's network namespace, with a runtime of its own, so that every
/// socket `work` opens is the client's.
pub fn on_client<T, F>(work: impl FnOnce() -> F + Send + 'static) -> T
where
    T: Send + 'static,
    F: Future<Output = T>,
{
    let namespace = std::fs::File::open("/run/netns/jc-client").unwrap();
    std::thread::spawn(move || {
        rustix::thread::move_into_link_name_space(
            namespace.as_fd(),
            Some(rustix::thread::LinkNameSpaceType::Network),
        )
        .unwrap();
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(work())
    })
    .join()
    .unwrap()
}

/// A URL `jrps up` printed on the cluster: `https://ALIAS.cluster.test/?token=T`.
#[derive(Debug, Clone)]
pub struct Launched {
    pub alias: String,
    pub token: String,
}

impl Launched {
    /// From `jrps up`'s stdout, whose last line is the URL.
    pub fn parse(stdout: &str) -> Launched {
        let url = stdout.lines().last().unwrap_or_default().trim();
        let rest = url
            .strip_prefix("https://")
            .and_then(|r| r.split_once("/?token="))
            .unwrap_or_else(|| panic!("not a session URL: {url:?}"));
        let alias = rest
            .0
            .strip_suffix(&format!(".{DOMAIN}"))
            .unwrap_or_else(|| panic!("{url} is not under {DOMAIN} without a port"));
        Launched {
            alias: alias.to_owned(),
            token: rest.1.to_owned(),
        }
    }
}
