//! A private PostgreSQL cluster per test, from Debian's `postgresql`
//! package: `initdb` into a temporary directory, `postgres` listening on a
//! Unix socket in it (and on loopback TCP when a test needs TLS), never the
//! system's cluster. As root (CI), the server runs as the package's
//! `postgres` user, since PostgreSQL refuses to run as root.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::harness::Options;

/// The server binaries: `JRPS_TEST_PG_BIN`, else the newest
/// `/usr/lib/postgresql/*/bin`. `None` (and a notice) where PostgreSQL is
/// not installed, except in CI, where these tests must run.
pub(crate) fn postgres_bin() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("JRPS_TEST_PG_BIN") {
        return Some(PathBuf::from(dir));
    }
    let newest = std::fs::read_dir("/usr/lib/postgresql")
        .ok()
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let version: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .max_by_key(|(version, _)| *version)
        .map(|(_, bin)| bin);
    if newest.is_none() {
        crate::support::missing("PostgreSQL (apt-get install postgresql)");
    }
    newest
}

/// Runs `program` as the server's user: ourselves, or `postgres` as root.
fn as_server_user(program: &Path) -> Command {
    if rustix::process::geteuid().is_root() {
        let mut command = Command::new("setpriv");
        command
            .args([
                "--reuid=postgres",
                "--regid=postgres",
                "--clear-groups",
                "--",
            ])
            .arg(program);
        command
    } else {
        Command::new(program)
    }
}

pub(crate) struct PgCluster {
    bin: PathBuf,
    dir: tempfile::TempDir,
    /// `host:port` on loopback as well as the socket, when asked for.
    tcp: Option<(String, u16)>,
    /// `-c name=value` for the server.
    settings: Vec<String>,
    server: Option<Child>,
}

impl PgCluster {
    /// A new cluster, started; superuser `jrps`, trusted on its socket.
    pub fn start() -> Option<PgCluster> {
        Self::start_with(None, &[])
    }

    /// Also listening on `127.0.0.1:port`, with server `settings` (`-c`).
    pub fn start_with(tcp_port: Option<u16>, settings: &[&str]) -> Option<PgCluster> {
        let bin = postgres_bin()?;
        let dir = tempfile::Builder::new()
            .prefix("jrps-pg")
            .tempdir()
            .unwrap();
        if rustix::process::geteuid().is_root() {
            let status = Command::new("chown")
                .arg("postgres:postgres")
                .arg(dir.path())
                .status()
                .unwrap();
            assert!(status.success(), "chown of the cluster directory");
        }
        // The proxy under test may run as another user than the server.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let out = as_server_user(&bin.join("initdb"))
            .args(["-D"])
            .arg(dir.path().join("data"))
            .args([
                "-U",
                "jrps",
                "--auth=trust",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut cluster = PgCluster {
            bin,
            dir,
            tcp: tcp_port.map(|port| ("127.0.0.1".to_owned(), port)),
            settings: settings.iter().map(|s| s.to_string()).collect(),
            server: None,
        };
        cluster.resume();
        Some(cluster)
    }

    /// Starts the server (again) and waits until it takes connections.
    pub fn resume(&mut self) {
        assert!(self.server.is_none(), "the server is running already");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("server.log"))
            .unwrap();
        let mut command = as_server_user(&self.bin.join("postgres"));
        command
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .arg("-k")
            .arg(self.dir.path())
            .args(["-c", "fsync=off", "-c", "max_connections=200"]);
        match &self.tcp {
            Some((host, port)) => command.args([
                "-c".to_owned(),
                format!("listen_addresses={host}"),
                "-p".to_owned(),
                port.to_string(),
            ]),
            None => command.args(["-c", "listen_addresses="]),
        };
        for setting in &self.settings {
            command.args(["-c", setting]);
        }
        let server = command
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.server = Some(server);
        crate::support::until_sync(Duration::from_secs(30), "postgres accepting", || {
            if self.accepts() {
                return Ok(());
            }
            if let Some(server) = &mut self.server
                && let Some(status) = server.try_wait().unwrap()
            {
                panic!("postgres exited ({status}):\n{}", self.log());
            }
            Err(self.log())
        });
    }

    fn accepts(&self) -> bool {
        Command::new(self.bin.join("pg_isready"))
            .arg("-q")
            .arg("-h")
            .arg(self.dir.path())
            .args(["-p", &self.port().to_string(), "-U", "jrps"])
            .status()
            .is_ok_and(|s| s.success())
    }

    fn port(&self) -> u16 {
        self.tcp.as_ref().map_or(5432, |(_, port)| *port)
    }

    /// Stops the server (a fast shutdown: clients are disconnected).
    pub fn stop(&mut self) {
        if let Some(mut server) = self.server.take() {
            let _ = rustix::process::kill_process(
                rustix::process::Pid::from_child(&server),
                rustix::process::Signal::INT,
            );
            let _ = server.wait();
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// A URL for database `name` over the Unix socket.
    pub fn url(&self, name: &str) -> String {
        let socket_dir = self.dir.path().display().to_string().replace('/', "%2F");
        format!("postgres://jrps@{socket_dir}:{}/{name}", self.port())
    }

    /// Makes database `name` and returns its URL.
    pub fn database(&self, name: &str) -> String {
        self.psql("postgres", &format!("CREATE DATABASE \"{name}\""));
        // As docs/replicas.md asks: only jrps's role may connect.
        self.psql(
            "postgres",
            &format!("REVOKE CONNECT, TEMPORARY ON DATABASE \"{name}\" FROM PUBLIC"),
        );
        self.url(name)
    }

    /// `psql` running each of `sql` in `database`, left running: a
    /// connection that holds what it took until it is killed.
    pub fn psql_session(&self, database: &str, sql: &[&str]) -> Child {
        let mut command = Command::new(self.bin.join("psql"));
        command.arg("-h").arg(self.dir.path()).args([
            "-p",
            &self.port().to_string(),
            "-U",
            "jrps",
            "-d",
            database,
        ]);
        for statement in sql {
            command.args(["-c", statement]);
        }
        command.stdout(Stdio::null()).spawn().unwrap()
    }

    /// Runs `sql` in `database`; returns what `psql` printed (unaligned,
    /// tuples only).
    pub fn psql(&self, database: &str, sql: &str) -> String {
        self.psql_as("jrps", database, sql)
    }

    /// As [`PgCluster::psql`], connected as `role`.
    pub fn psql_as(&self, role: &str, database: &str, sql: &str) -> String {
        let out = Command::new(self.bin.join("psql"))
            .arg("-h")
            .arg(self.dir.path())
            .args(["-p", &self.port().to_string(), "-U", role, "-d", database])
            .args(["-v", "ON_ERROR_STOP=1", "-At", "-c", sql])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "psql {sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        if let Some(mut server) = self.server.take() {
            // Immediate shutdown: the directory goes away next.
            let _ = rustix::process::kill_process(
                rustix::process::Pid::from_child(&server),
                rustix::process::Signal::QUIT,
            );
            let _ = server.wait();
        }
    }
}

/// Options for a proxy on a database of its own cluster (alive as long as
/// the returned handle).
pub(crate) fn on_postgres() -> Option<(PgCluster, Options)> {
    let cluster = PgCluster::start()?;
    let options = Options {
        state: cluster.database("jrps"),
        cookie_key: Some("cookie.key".into()),
        ..Options::default()
    };
    Some((cluster, options))
}
