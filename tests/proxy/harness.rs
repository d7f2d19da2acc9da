//! Test harness: a CA and wildcard certificate made at test time, `jrps
//! serve` as a real child process on `127.0.0.1:0` (its address read from the
//! `listening …` line it prints), HTTPS clients that resolve
//! `*.jrps.localhost` to loopback and trust the test CA, and API helpers.

use std::io::{BufRead, BufReader};
use std::net::{IpAddr, SocketAddr};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use jrps::api::SessionCreated;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

pub const DOMAIN: &str = "jrps.localhost";

/// A private CA and a `*.jrps.localhost` certificate it signed.
pub struct TestCa {
    pub ca_der: CertificateDer<'static>,
    /// The CA certificate as PEM, for clients configured by file (`proxy_ca`).
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

impl Default for TestCa {
    fn default() -> Self {
        Self::new()
    }
}

impl TestCa {
    pub fn new() -> TestCa {
        Self::for_names(&[&format!("*.{DOMAIN}"), DOMAIN])
    }

    /// A CA and a certificate it signed for `names` (DNS names or IP
    /// addresses).
    pub fn for_names(names: &[&str]) -> TestCa {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "jrps test CA");
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let leaf_key = KeyPair::generate().unwrap();
        let mut leaf_params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        leaf_params
            .distinguished_name
            .push(DnType::CommonName, names[0]);
        let issuer = Issuer::from_params(&ca_params, &ca_key);
        let leaf = leaf_params.signed_by(&leaf_key, &issuer).unwrap();
        TestCa {
            ca_der: ca_cert.der().clone(),
            ca_pem: ca_cert.pem(),
            cert_pem: leaf.pem(),
            key_pem: leaf_key.serialize_pem(),
        }
    }

    pub fn client_config(&self) -> rustls::ClientConfig {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.ca_der.clone()).unwrap();
        rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth()
    }
}

/// Settings for one proxy run; `extra` is appended to proxy.toml.
#[derive(Clone)]
pub struct Options {
    pub tls: bool,
    pub extra: String,
    pub allowed_backend_cidrs: String,
    /// `listen`: port 0 picks one (read back from the proxy's output).
    pub listen: SocketAddr,
    /// `state`: the proxy's own SQLite file, or a PostgreSQL URL
    /// ([`super::postgres::PgCluster::database`]).
    pub state: String,
    /// `cookie_key`, when not the default beside a SQLite file (replicas
    /// share one).
    pub cookie_key: Option<std::path::PathBuf>,
    /// Put first on the proxy's `PATH` (stand-ins for the commands it runs).
    pub path_first: Option<std::path::PathBuf>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            tls: true,
            extra: String::new(),
            allowed_backend_cidrs: r#"["127.0.0.1/32"]"#.into(),
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            state: "state.sqlite".into(),
            cookie_key: None,
            path_first: None,
        }
    }
}

/// A running `jrps serve`, killed when dropped.
pub struct Proxy {
    pub dir: Arc<tempfile::TempDir>,
    pub ca: Arc<TestCa>,
    pub addr: SocketAddr,
    pub api_addr: Option<SocketAddr>,
    pub child: Child,
    pub client: reqwest::Client,
    pub scheme: &'static str,
    pub options: Options,
}

/// Resolves every name to one loopback address (the port comes from the
/// URL): 127.0.0.1, or the one a proxy listens on.
struct Loopback(IpAddr);

impl reqwest::dns::Resolve for Loopback {
    fn resolve(&self, _name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let ip = self.0;
        Box::pin(async move {
            let addrs: reqwest::dns::Addrs = Box::new(std::iter::once(SocketAddr::new(ip, 0)));
            Ok(addrs)
        })
    }
}

pub fn jrps_bin() -> &'static str {
    env!("CARGO_BIN_EXE_jrps")
}

/// `jrps serve FLAG CONFIG` for a configuration or state it must refuse:
/// waits for it to exit (a proxy still running after 30 s fails the test)
/// and gives what it printed.
pub fn serve_refused(flag: &str, config: &std::path::Path) -> std::process::Output {
    let mut child = Command::new(jrps_bin())
        .args(["serve", flag])
        .arg(config)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let exited =
        crate::support::until_sync(Duration::from_secs(30), "jrps serve exited", || match child
            .try_wait()
            .unwrap()
        {
            Some(status) => Ok(Some(status)),
            None => Err("still serving".into()),
        });
    if exited.is_none() {
        let _ = child.kill();
    }
    child.wait_with_output().unwrap()
}

impl Proxy {
    pub fn start(options: Options) -> Proxy {
        let dir = Arc::new(tempfile::tempdir().unwrap());
        let ca = Arc::new(TestCa::new());
        Self::start_in(dir, ca, options)
    }

    /// Starts a proxy on an existing state directory (a restart).
    pub fn start_in(dir: Arc<tempfile::TempDir>, ca: Arc<TestCa>, options: Options) -> Proxy {
        std::fs::write(dir.path().join("cert.pem"), &ca.cert_pem).unwrap();
        std::fs::write(dir.path().join("key.pem"), &ca.key_pem).unwrap();
        let tls = if options.tls {
            "tls_cert = \"cert.pem\"\ntls_key = \"key.pem\"\n"
        } else {
            ""
        };
        let cookie_key = match &options.cookie_key {
            Some(path) => format!("cookie_key = {:?}\n", path.display().to_string()),
            None => String::new(),
        };
        let config = format!(
            "domain = \"{DOMAIN}\"\nlisten = \"{}\"\n{tls}state = {:?}\n{cookie_key}\
             allowed_client_cidrs = [\"127.0.0.1/32\"]\nallowed_backend_cidrs = {}\n{}\n",
            options.listen, options.state, options.allowed_backend_cidrs, options.extra
        );
        let config_path = dir.path().join("proxy.toml");
        std::fs::write(&config_path, config).unwrap();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.path().join("proxy.log"))
            .unwrap();
        let mut command = Command::new(jrps_bin());
        if let Some(first) = &options.path_first {
            let path = crate::support::path_with_first(first);
            command.env("PATH", path);
        }
        let mut child = command
            .args(["serve", "--config"])
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        // Keeps draining stdout for the proxy's whole life.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut addr = None;
        let mut api_addr = None;
        // The lines it prints up to `ready` (stdout stays open after).
        let ready = crate::support::eventually_sync(Duration::from_secs(20), || {
            let Ok(line) = rx.recv_timeout(Duration::from_millis(100)) else {
                return false;
            };
            let parse = |rest: &str| {
                rest.rsplit("://")
                    .next()
                    .and_then(|a| a.parse::<SocketAddr>().ok())
            };
            if let Some(rest) = line.strip_prefix("listening ") {
                addr = parse(rest);
            } else if let Some(rest) = line.strip_prefix("api ") {
                api_addr = parse(rest);
            }
            line == "ready"
        });
        if !ready {
            let _ = child.kill();
            panic!(
                "proxy did not become ready; log:\n{}",
                std::fs::read_to_string(dir.path().join("proxy.log")).unwrap_or_default()
            );
        }
        let addr = addr.expect("proxy printed no listening address");
        let client = client_at(&ca, None, addr.ip());
        Proxy {
            dir,
            ca,
            addr,
            api_addr,
            child,
            client,
            scheme: if options.tls { "https" } else { "http" },
            options,
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("proxy.log")).unwrap_or_default()
    }

    /// `scheme://<sub>.jrps.localhost:port<path>`.
    pub fn url(&self, sub: &str, path: &str) -> String {
        format!(
            "{}://{sub}.{DOMAIN}:{}{path}",
            self.scheme,
            self.addr.port()
        )
    }

    /// An API URL, on `api_addr` when the proxy has one (the public
    /// listener then has no API).
    pub fn api(&self, path: &str) -> String {
        let port = self.api_addr.unwrap_or(self.addr).port();
        format!("{}://manage.{DOMAIN}:{port}/api/v1{path}", self.scheme)
    }

    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the process to exit; returns its status.
    pub fn wait_exit(&mut self, timeout: Duration) -> std::process::ExitStatus {
        crate::support::until_sync(timeout, "the proxy exited", || {
            self.child
                .try_wait()
                .unwrap()
                .ok_or_else(|| "still running".to_owned())
        })
    }

    pub async fn create(&self, token: &str, ttl_seconds: u64) -> SessionCreated {
        self.create_for("alice", token, ttl_seconds).await
    }

    /// A session of `user`'s (the per-user quota counts by name).
    pub async fn create_as(&self, user: &str) -> SessionCreated {
        self.create_for(user, &random_token(), 600).await
    }

    async fn create_for(&self, user: &str, token: &str, ttl_seconds: u64) -> SessionCreated {
        let response = self
            .client
            .post(self.api("/sessions"))
            .json(&json!({"user": user, "token_sha256": sha256_hex(token), "ttl_seconds": ttl_seconds}))
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            201,
            "create: {}",
            response.text().await.unwrap()
        );
        response.json().await.unwrap()
    }

    /// Registers from 127.0.0.1 (the backend host is the caller's address).
    pub async fn register(&self, alias: &str, port: u16, secret: &str) -> reqwest::Response {
        self.client
            .post(self.api(&format!("/sessions/{alias}/register")))
            .json(&json!({"port": port, "secret": secret}))
            .send()
            .await
            .unwrap()
    }

    /// A session already routed to `port` on 127.0.0.1.
    /// `GET url` from the test client (which trusts the test CA and resolves
    /// every name to loopback).
    pub async fn get(&self, url: impl reqwest::IntoUrl) -> reqwest::Response {
        self.client.get(url).send().await.unwrap()
    }

    /// A WebSocket to `/ws?token=TOKEN` of `alias`, through the proxy over TLS.
    pub async fn websocket(
        &self,
        alias: &str,
        token: &str,
    ) -> tokio_tungstenite::WebSocketStream<TlsStream<TcpStream>> {
        let host = format!("{alias}.{DOMAIN}");
        let url = format!("wss://{host}:{}/ws?token={token}", self.addr.port());
        let tcp = TcpStream::connect(self.addr).await.unwrap();
        let tls = tls_connect(&self.ca, tcp, &host).await;
        tokio_tungstenite::client_async(url, tls).await.unwrap().0
    }

    /// The Prometheus text of `/metrics`, asked from an allowed client.
    pub async fn metrics(&self) -> String {
        let response = self.get(self.url("manage", "/metrics")).await;
        assert_eq!(response.status(), 200, "GET /metrics");
        response.text().await.unwrap()
    }

    pub async fn ready_session(&self, token: &str, port: u16) -> SessionCreated {
        let created = self.create(token, 3600).await;
        let response = self
            .register(&created.alias, port, &created.register_secret)
            .await;
        assert_eq!(
            response.status(),
            200,
            "register: {}",
            response.text().await.unwrap()
        );
        created
    }

    pub async fn status(&self, alias: &str, query: &str) -> (u16, Value) {
        let response = self
            .client
            .get(self.api(&format!("/sessions/{alias}{query}")))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn delete(&self, alias: &str, secret: &str) -> u16 {
        self.client
            .delete(self.api(&format!("/sessions/{alias}")))
            .json(&json!({"secret": secret}))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    /// A TLS (or plain) connection to the proxy for hand-written requests.
    pub async fn raw(&self, request: &[u8]) -> String {
        let tcp = TcpStream::connect(self.addr).await.unwrap();
        let mut out = Vec::new();
        if self.options.tls {
            let mut tls = tls_connect(&self.ca, tcp, &format!("manage.{DOMAIN}")).await;
            tls.write_all(request).await.unwrap();
            let _ = tokio::time::timeout(Duration::from_secs(10), tls.read_to_end(&mut out)).await;
        } else {
            let mut tcp = tcp;
            tcp.write_all(request).await.unwrap();
            let _ = tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut out)).await;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("---- proxy log ----\n{}", self.log());
        }
    }
}

/// Where a browser reaches sessions: a proxy on loopback here, or the
/// cluster in a box's proxy seen from its client host.
pub trait Edge {
    /// An HTTPS client that trusts the edge's CA and reaches its address.
    fn edge_client(&self) -> &reqwest::Client;
    fn edge_ca(&self) -> &TestCa;
    fn edge_addr(&self) -> SocketAddr;
    /// `<alias>.<domain>`.
    fn session_host(&self, alias: &str) -> String;
    /// `https://<alias>.<domain>[:port]<path>`, as a browser has it.
    fn session_url(&self, alias: &str, path: &str) -> String;
}

impl Edge for Proxy {
    fn edge_client(&self) -> &reqwest::Client {
        &self.client
    }

    fn edge_ca(&self) -> &TestCa {
        &self.ca
    }

    fn edge_addr(&self) -> SocketAddr {
        self.addr
    }

    fn session_host(&self, alias: &str) -> String {
        format!("{alias}.{DOMAIN}")
    }

    fn session_url(&self, alias: &str, path: &str) -> String {
        self.url(alias, path)
    }
}

pub async fn tls_connect(ca: &TestCa, tcp: TcpStream, name: &str) -> TlsStream<TcpStream> {
    tls_connect_with(ca, tcp, name, b"http/1.1").await
}

/// A TLS connection that offers only HTTP/2, as browsers pick it by ALPN.
pub async fn h2_connect(ca: &TestCa, tcp: TcpStream, name: &str) -> TlsStream<TcpStream> {
    let tls = tls_connect_with(ca, tcp, name, b"h2").await;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    tls
}

async fn tls_connect_with(
    ca: &TestCa,
    tcp: TcpStream,
    name: &str,
    alpn: &[u8],
) -> TlsStream<TcpStream> {
    let mut config = ca.client_config();
    config.alpn_protocols = vec![alpn.to_vec()];
    TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from(name.to_owned()).unwrap(), tcp)
        .await
        .unwrap()
}

/// An HTTPS client trusting the test CA, resolving every name to loopback,
/// optionally sending from `local` (another 127.0.0.0/8 address).
pub fn client_for(ca: &TestCa, local: Option<IpAddr>) -> reqwest::Client {
    client_at(ca, local, IpAddr::from([127, 0, 0, 1]))
}

/// A client that sends every name to `ip`.
pub fn client_at(ca: &TestCa, local: Option<IpAddr>, ip: IpAddr) -> reqwest::Client {
    let mut builder = reqwest::Client::builder()
        .tls_backend_preconfigured(ca.client_config())
        .dns_resolver(Arc::new(Loopback(ip)))
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(60));
    if let Some(local) = local {
        builder = builder.local_address(local);
    }
    builder.build().unwrap()
}

/// The `name=value` edge cookie a browser gets for `alias`.
pub async fn edge_cookie(proxy: &Proxy, alias: &str, token: &str) -> (String, String) {
    let r = proxy
        .get(proxy.url(alias, &format!("/?token={token}")))
        .await;
    assert_eq!(r.status(), 200);
    let set = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    let pair = set.split(';').next().unwrap();
    let (name, value) = pair.split_once('=').unwrap();
    (name.to_owned(), value.to_owned())
}

pub fn sha256_hex(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

pub fn random_token() -> String {
    let mut bytes = [0u8; 16];
    rand::fill(&mut bytes);
    hex::encode(bytes)
}
