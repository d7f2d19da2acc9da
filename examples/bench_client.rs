//! Load and WebSocket helper for `scripts/bench` (not shipped in `jrps`).
//!
//! Subcommands (all on loopback):
//! - `backend ADDR`: the one fast backend: a small HTTP body on every path,
//!   and a WebSocket echo on any path that asks to upgrade. Prints
//!   `listening ADDR`.
//! - `ws-rtt ADDR HOST COOKIE N`: one WebSocket through ADDR (Host: HOST),
//!   N sequential 32-byte round trips; prints `p50_us p99_us`.
//! - `ws-hold ADDR HOST COOKIE N`: opens N WebSockets and holds them idle,
//!   prints `held N` and waits for stdin to close.
//! - `h2-hold ADDR HOST COOKIE N`: opens N HTTP/2 connections over TLS
//!   (any certificate accepted: loopback benchmarks only), sends one GET /
//!   on each, as a page load would, and holds them idle, like `ws-hold`.
//! - `jrps-routes API DOMAIN TOKEN BACKEND_PORT N CONC [FROM]`: creates and
//!   registers N sessions through the real API (the first from 127.0.0.1,
//!   the rest each from an address of its own, 127.1.0.0 on; with FROM, an
//!   IPv4 address, all of them from FROM on, so that runs at once on one
//!   database do not claim each other's routes),
//!   prints `alias ALIAS` of the first and `cookie VALUE` (from `?token=`).
//! - `jrps-activate API DOMAIN TOKEN BACKEND_PORT N [SERVE]`: N times:
//!   create, register from 127.0.0.2, time from the register call's answer
//!   to the first proxied 200 (asked of SERVE, another replica, when given),
//!   end the session; prints `p50_us p99_us max_us`.
//! - `chp-routes API AUTH DOMAIN TARGET N CONC`: adds N host routes to
//!   configurable-http-proxy's REST API.
//! - `chp-activate API AUTH PROXY DOMAIN TARGET N`: time from the route
//!   POST's answer to the first proxied 200.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use sha2::{Digest, Sha256};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::tungstenite::{Message, handshake::client::generate_key};

type Err = Box<dyn std::error::Error + Send + Sync>;

const BODY: &[u8] = b"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\n";

fn main() -> Result<(), Err> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cmd = args.first().map(String::as_str).unwrap_or("");
    let a = |i: usize| -> String { args.get(i).cloned().unwrap_or_default() };
    let n = |i: usize| -> usize { a(i).parse().unwrap_or(0) };
    // Latency probes run on one thread (no cross-thread wake-ups in what
    // they time); the backend and the bulk helpers on two.
    let rt = if matches!(cmd, "ws-rtt" | "jrps-activate" | "chp-activate") {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?
    };
    rt.block_on(async {
        match cmd {
            "backend" => backend(a(1).parse()?).await,
            "ws-rtt" => ws_rtt(a(1).parse()?, &a(2), &a(3), n(4)).await,
            "ws-hold" => ws_hold(a(1).parse()?, &a(2), &a(3), n(4)).await,
            "h2-hold" => h2_hold(a(1).parse()?, &a(2), &a(3), n(4)).await,
            "jrps-routes" => {
                let from = if a(7).is_empty() {
                    None
                } else {
                    Some(a(7).parse()?)
                };
                jrps_routes(a(1).parse()?, &a(2), &a(3), n(4) as u16, n(5), n(6), from).await
            }
            "jrps-activate" => {
                // An optional last address serves the browser's requests: a
                // second replica, for the cross-replica activation latency.
                let serve = if a(6).is_empty() { a(1) } else { a(6) };
                jrps_activate(
                    a(1).parse()?,
                    serve.parse()?,
                    &a(2),
                    &a(3),
                    n(4) as u16,
                    n(5),
                )
                .await
            }
            "chp-routes" => chp_routes(a(1).parse()?, &a(2), &a(3), &a(4), n(5), n(6)).await,
            "chp-activate" => {
                chp_activate(a(1).parse()?, &a(2), a(3).parse()?, &a(4), &a(5), n(6)).await
            }
            _ => Err(format!("unknown subcommand {cmd:?}").into()),
        }
    })
}

// ---------------------------------------------------------------- backend

async fn backend(addr: SocketAddr) -> Result<(), Err> {
    let listener = TcpListener::bind(addr).await?;
    println!("listening {}", listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let service = service_fn(backend_request);
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades()
                .await;
        });
    }
}

async fn backend_request(mut req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Err> {
    let key = req.headers().get("sec-websocket-key").cloned();
    let wants_ws = req
        .headers()
        .get("upgrade")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"websocket"));
    if let (true, Some(key)) = (wants_ws, key) {
        let on_upgrade = hyper::upgrade::on(&mut req);
        tokio::spawn(async move {
            let Ok(upgraded) = on_upgrade.await else {
                return;
            };
            let mut ws =
                WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await;
            while let Some(Ok(msg)) = ws.next().await {
                let echo = matches!(msg, Message::Text(_) | Message::Binary(_));
                if msg.is_close() || (echo && ws.send(msg).await.is_err()) {
                    break;
                }
            }
        });
        return Ok(Response::builder()
            .status(StatusCode::SWITCHING_PROTOCOLS)
            .header("connection", "upgrade")
            .header("upgrade", "websocket")
            .header("sec-websocket-accept", derive_accept_key(key.as_bytes()))
            .body(Full::new(Bytes::new()))?);
    }
    // Drain any request body, then answer the small fixed body.
    let _ = req.into_body().collect().await;
    Ok(Response::builder()
        .header("content-type", "text/plain")
        .body(Full::new(Bytes::from_static(BODY)))?)
}

// ---------------------------------------------------------------- WebSocket

async fn ws_connect(
    addr: SocketAddr,
    host: &str,
    cookie: &str,
) -> Result<WebSocketStream<TcpStream>, Err> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let mut req = Request::builder()
        .uri(format!("ws://{host}/ws"))
        .header("host", host)
        .header("connection", "Upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", generate_key());
    if !cookie.is_empty() && cookie != "-" {
        // Both names: the plain listener's and the `__Host-` one TLS uses.
        req = req.header(
            "cookie",
            format!("jrps_session={cookie}; __Host-jrps_session={cookie}"),
        );
    }
    let (ws, resp) = tokio_tungstenite::client_async(req.body(())?, stream).await?;
    if resp.status() != StatusCode::SWITCHING_PROTOCOLS {
        return Err(format!("websocket: {}", resp.status()).into());
    }
    Ok(ws)
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

async fn ws_rtt(addr: SocketAddr, host: &str, cookie: &str, n: usize) -> Result<(), Err> {
    let mut ws = ws_connect(addr, host, cookie).await?;
    let payload = Bytes::from_static(b"0123456789abcdef0123456789abcdef");
    let mut samples = Vec::with_capacity(n);
    for i in 0..(n + n / 10) {
        let t = Instant::now();
        ws.send(Message::Binary(payload.clone())).await?;
        loop {
            match ws.next().await {
                Some(Ok(Message::Binary(_))) => break,
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err(e.into()),
                None => return Err("websocket closed".into()),
            }
        }
        // The first tenth warms up.
        if i >= n / 10 {
            samples.push(t.elapsed().as_micros() as u64);
        }
    }
    let _ = ws.close(None).await;
    samples.sort_unstable();
    println!(
        "{} {}",
        percentile(&samples, 0.5),
        percentile(&samples, 0.99)
    );
    Ok(())
}

async fn ws_hold(addr: SocketAddr, host: &str, cookie: &str, n: usize) -> Result<(), Err> {
    let (host, cookie) = (Arc::<str>::from(host), Arc::<str>::from(cookie));
    hold(n, move || {
        let (host, cookie) = (host.clone(), cookie.clone());
        async move { ws_connect(addr, &host, &cookie).await }
    })
    .await
}

async fn h2_hold(addr: SocketAddr, host: &str, cookie: &str, n: usize) -> Result<(), Err> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config));
    let name = rustls::pki_types::ServerName::try_from(host.to_owned())?;
    let request = Request::get(format!("https://{host}/"))
        .header(
            "cookie",
            format!("jrps_session={cookie}; __Host-jrps_session={cookie}"),
        )
        .body(http_body_util::Empty::<Bytes>::new())?;
    hold(n, move || {
        let (tls, name, request) = (tls.clone(), name.clone(), request.clone());
        async move {
            let tcp = TcpStream::connect(addr).await?;
            let stream = tls.connect(name, tcp).await?;
            let (mut send, conn) = hyper::client::conn::http2::handshake(
                hyper_util::rt::TokioExecutor::new(),
                TokioIo::new(stream),
            )
            .await?;
            tokio::spawn(conn);
            let response = send.send_request(request).await?;
            if response.status() != StatusCode::OK {
                return Err(format!("GET /: {}", response.status()).into());
            }
            response.into_body().collect().await?;
            Ok(send)
        }
    })
    .await
}

/// Accepts the benchmark's self-signed certificate (and any other), still
/// checking the handshake's signatures.
#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &[rustls::pki_types::CertificateDer<'_>],
        _: &rustls::pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Opens `n` connections with `connect`, 64 at a time, holds them, prints
/// `held H failed F`, and waits for stdin to close. A proxy that cannot take
/// more (a thread per connection, say) leaves connections hanging: each
/// gets 5 s, and the first failure stops further attempts.
async fn hold<T, F, Fut>(n: usize, connect: F) -> Result<(), Err>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<T, Err>> + Send + 'static,
    T: Send + 'static,
{
    let sem = Arc::new(tokio::sync::Semaphore::new(64));
    let failed_flag = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut tasks = Vec::with_capacity(n);
    for _ in 0..n {
        let permit = sem.clone().acquire_owned().await?;
        if failed_flag.load(std::sync::atomic::Ordering::Relaxed) {
            break;
        }
        let flag = failed_flag.clone();
        let connecting = connect();
        tasks.push(tokio::spawn(async move {
            let r = match tokio::time::timeout(Duration::from_secs(5), connecting).await {
                Ok(r) => r,
                Err(_) => Err("timed out after 5 s".into()),
            };
            if r.is_err() {
                flag.store(true, std::sync::atomic::Ordering::Relaxed);
            }
            drop(permit);
            r
        }));
    }
    let mut held = Vec::with_capacity(n);
    let mut failed = 0;
    let mut first_err = None;
    for t in tasks {
        match t.await? {
            Ok(connection) => held.push(connection),
            Err(e) => {
                failed += 1;
                first_err.get_or_insert(e.to_string());
            }
        }
    }
    println!("held {} failed {}", held.len(), failed);
    if let Some(e) = first_err {
        eprintln!("first failure: {e}");
    }
    // Hold until the script closes our stdin.
    let _ = tokio::task::spawn_blocking(|| {
        let mut s = String::new();
        while std::io::stdin()
            .read_line(&mut s)
            .map(|n| n > 0)
            .unwrap_or(false)
        {
            s.clear();
        }
    })
    .await;
    drop(held);
    Ok(())
}

// ---------------------------------------------------------------- HTTP helpers

async fn conn_from(
    addr: SocketAddr,
    from: Option<SocketAddr>,
) -> Result<SendRequest<Full<Bytes>>, Err> {
    let stream = match from {
        Some(local) => {
            let socket = TcpSocket::new_v4()?;
            socket.bind(local)?;
            socket.connect(addr).await?
        }
        None => TcpStream::connect(addr).await?,
    };
    stream.set_nodelay(true)?;
    let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    Ok(send)
}

struct Answer {
    status: StatusCode,
    set_cookie: Option<String>,
    body: Bytes,
}

async fn call(
    send: &mut SendRequest<Full<Bytes>>,
    method: &str,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<String>,
) -> Result<Answer, Err> {
    send.ready().await?;
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header("host", host);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let body = match body {
        Some(b) => {
            req = req.header("content-type", "application/json");
            Full::new(Bytes::from(b))
        }
        None => Full::new(Bytes::new()),
    };
    let resp = send.send_request(req.body(body)?).await?;
    let status = resp.status();
    let set_cookie = resp
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = resp.into_body().collect().await?.to_bytes();
    Ok(Answer {
        status,
        set_cookie,
        body,
    })
}

fn token_sha(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

struct Created {
    alias: String,
    secret: String,
}

async fn create(
    send: &mut SendRequest<Full<Bytes>>,
    domain: &str,
    token: &str,
) -> Result<Created, Err> {
    let body = serde_json::json!({"user": "bench", "token_sha256": token_sha(token), "ttl_seconds": 86400});
    let a = call(
        send,
        "POST",
        &format!("manage.{domain}"),
        "/api/v1/sessions",
        &[],
        Some(body.to_string()),
    )
    .await?;
    if a.status != StatusCode::CREATED {
        return Err(format!("create: {} {}", a.status, String::from_utf8_lossy(&a.body)).into());
    }
    let v: serde_json::Value = serde_json::from_slice(&a.body)?;
    Ok(Created {
        alias: v["alias"].as_str().unwrap_or_default().to_owned(),
        secret: v["register_secret"].as_str().unwrap_or_default().to_owned(),
    })
}

async fn delete(send: &mut SendRequest<Full<Bytes>>, domain: &str, c: &Created) -> Result<(), Err> {
    let body = serde_json::json!({"secret": c.secret});
    let a = call(
        send,
        "DELETE",
        &format!("manage.{domain}"),
        &format!("/api/v1/sessions/{}", c.alias),
        &[],
        Some(body.to_string()),
    )
    .await?;
    if a.status != StatusCode::NO_CONTENT {
        return Err(format!("delete: {} {}", a.status, String::from_utf8_lossy(&a.body)).into());
    }
    Ok(())
}

async fn register(
    send: &mut SendRequest<Full<Bytes>>,
    domain: &str,
    c: &Created,
    port: u16,
) -> Result<(), Err> {
    let body = serde_json::json!({"port": port, "secret": c.secret});
    let a = call(
        send,
        "POST",
        &format!("manage.{domain}"),
        &format!("/api/v1/sessions/{}/register", c.alias),
        &[],
        Some(body.to_string()),
    )
    .await?;
    if a.status != StatusCode::OK {
        return Err(format!(
            "register: {} {}",
            a.status,
            String::from_utf8_lossy(&a.body)
        )
        .into());
    }
    Ok(())
}

// ---------------------------------------------------------------- jrps routes

async fn jrps_routes(
    api: SocketAddr,
    domain: &str,
    token: &str,
    port: u16,
    n: usize,
    conc: usize,
    from: Option<std::net::Ipv4Addr>,
) -> Result<(), Err> {
    let started = Instant::now();
    let (first_from, base) = match from {
        Some(ip) => (ip, u32::from(ip) + 1),
        None => (
            std::net::Ipv4Addr::LOCALHOST,
            u32::from(std::net::Ipv4Addr::new(127, 1, 0, 0)),
        ),
    };
    let conc = conc.max(1);
    let mut first = None;
    {
        // The first one on its own, so its alias is known.
        let mut client = conn_from(api, None).await?;
        let mut backend = conn_from(api, Some(SocketAddr::from((first_from, 0)))).await?;
        let c = create(&mut client, domain, token).await?;
        register(&mut backend, domain, &c, port).await?;
        first = first.or(Some(c.alias));
    }
    let per = (n.saturating_sub(1)).div_ceil(conc);
    let mut tasks = Vec::new();
    for w in 0..conc {
        let count = per.min(n.saturating_sub(1).saturating_sub(w * per));
        let domain = domain.to_owned();
        let token = token.to_owned();
        tasks.push(tokio::spawn(async move {
            let mut client = conn_from(api, None).await?;
            for i in 0..count {
                let c = create(&mut client, &domain, &token).await?;
                // One live route per backend address: the others register
                // from addresses of their own (127.1.0.0 on, nothing
                // listens there; the bench turns health checks off).
                let n = base + (w * per + i) as u32;
                let from = SocketAddr::from((std::net::Ipv4Addr::from(n), 0));
                let mut backend = conn_from(api, Some(from)).await?;
                register(&mut backend, &domain, &c, port).await?;
            }
            Ok::<(), Err>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let alias = first.unwrap_or_default();
    eprintln!(
        "{n} sessions created and registered in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let mut client = conn_from(api, None).await?;
    let a = call(
        &mut client,
        "GET",
        &format!("{alias}.{domain}"),
        &format!("/?token={token}"),
        &[],
        None,
    )
    .await?;
    let cookie = a
        .set_cookie
        .as_deref()
        .and_then(|c| c.split(';').next())
        .and_then(|c| c.split_once('='))
        .map(|(_, v)| v.to_owned())
        .unwrap_or_default();
    println!("alias {alias}");
    println!("cookie {cookie}");
    Ok(())
}

async fn jrps_activate(
    api: SocketAddr,
    serve: SocketAddr,
    domain: &str,
    token: &str,
    port: u16,
    n: usize,
) -> Result<(), Err> {
    let mut client = conn_from(api, None).await?;
    // The bench's second backend address: 127.0.0.1's route is held by the
    // session the other runs use.
    let mut backend = conn_from(api, Some("127.0.0.2:0".parse()?)).await?;
    let mut browser = conn_from(serve, None).await?;
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let c = create(&mut client, domain, token).await?;
        register(&mut backend, domain, &c, port).await?;
        let t = Instant::now();
        let host = format!("{}.{domain}", c.alias);
        let path = format!("/?token={token}");
        first_200(&mut browser, &host, &path).await?;
        samples.push(t.elapsed().as_micros() as u64);
        // Ends it, so the next session may register the same backend.
        delete(&mut client, domain, &c).await?;
    }
    print_percentiles(samples);
    Ok(())
}

/// Asks `host` for `path` until it answers 200 (at most 10 s): the moment a
/// new route starts to work.
async fn first_200(
    browser: &mut SendRequest<Full<Bytes>>,
    host: &str,
    path: &str,
) -> Result<(), Err> {
    let t = Instant::now();
    loop {
        let a = call(browser, "GET", host, path, &[], None).await?;
        if a.status == StatusCode::OK {
            return Ok(());
        }
        if t.elapsed() > Duration::from_secs(10) {
            return Err(format!("no 200 after 10 s: {}", a.status).into());
        }
    }
}

/// Prints p50, p99 and max of activation samples (µs) on one line.
fn print_percentiles(mut samples: Vec<u64>) {
    samples.sort_unstable();
    println!(
        "{} {} {}",
        percentile(&samples, 0.5),
        percentile(&samples, 0.99),
        samples.last().copied().unwrap_or(0)
    );
}

// ---------------------------------------------------------------- chp routes

async fn chp_add(
    send: &mut SendRequest<Full<Bytes>>,
    auth: &str,
    host: &str,
    target: &str,
) -> Result<(), Err> {
    let body = serde_json::json!({ "target": target });
    let auth = format!("token {auth}");
    let a = call(
        send,
        "POST",
        "127.0.0.1",
        &format!("/api/routes/{host}"),
        &[("authorization", &auth)],
        Some(body.to_string()),
    )
    .await?;
    if !a.status.is_success() {
        return Err(format!("chp route: {}", a.status).into());
    }
    Ok(())
}

async fn chp_routes(
    api: SocketAddr,
    auth: &str,
    domain: &str,
    target: &str,
    n: usize,
    conc: usize,
) -> Result<(), Err> {
    let started = Instant::now();
    let conc = conc.max(1);
    let per = n.div_ceil(conc);
    let mut tasks = Vec::new();
    for w in 0..conc {
        let (auth, domain, target) = (auth.to_owned(), domain.to_owned(), target.to_owned());
        tasks.push(tokio::spawn(async move {
            let mut send = conn_from(api, None).await?;
            for i in (w * per)..((w + 1) * per).min(n) {
                chp_add(&mut send, &auth, &format!("r{i}.{domain}"), &target).await?;
            }
            Ok::<(), Err>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    eprintln!(
        "{n} chp routes added in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

async fn chp_activate(
    api: SocketAddr,
    auth: &str,
    proxy: SocketAddr,
    domain: &str,
    target: &str,
    n: usize,
) -> Result<(), Err> {
    let mut send = conn_from(api, None).await?;
    let mut browser = conn_from(proxy, None).await?;
    let mut samples = Vec::with_capacity(n);
    for i in 0..n {
        let host = format!("act{i}.{domain}");
        chp_add(&mut send, auth, &host, target).await?;
        let t = Instant::now();
        first_200(&mut browser, &host, "/").await?;
        samples.push(t.elapsed().as_micros() as u64);
    }
    print_percentiles(samples);
    Ok(())
}
