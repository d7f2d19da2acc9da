//! Sessions over time and the proxy process itself: durability across
//! SIGKILL, expiry, delete, health check, SIGTERM, SIGHUP, config errors.

use std::time::Duration;

use assert_cmd::Command;
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

use super::backends::{http_backend, websocket_backend};
use super::harness::{Options, Proxy, TestCa, random_token};
use crate::support::eventually;

async fn get(proxy: &Proxy, alias: &str, token: &str) -> u16 {
    proxy
        .get(proxy.url(alias, &format!("/?token={token}")))
        .await
        .status()
        .as_u16()
}

/// Reads until the server's Close frame; its code, or None if the stream
/// ended without one (an unclean close) or nothing came within 5 s.
async fn close_code<S>(ws: &mut tokio_tungstenite::WebSocketStream<S>) -> Option<u16>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let wait = async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Close(frame))) => return frame.map(|f| u16::from(f.code)),
                Some(Ok(_)) => continue,
                _ => return None,
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(5), wait)
        .await
        .ok()
        .flatten()
}

#[tokio::test]
async fn sigkill_and_restart_still_serves_the_same_alias() {
    let mut proxy = Proxy::start(Options::default());
    let backend = http_backend("one").await;
    let token = random_token();
    let ready = proxy.ready_session(&token, backend.port()).await;
    let pending_token = random_token();
    let pending = proxy.create(&pending_token, 600).await;
    let first = proxy
        .get(proxy.url(&ready.alias, &format!("/?token={token}")))
        .await;
    let cookie = first.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();

    proxy.signal("KILL");
    let status = proxy.wait_exit(Duration::from_secs(10));
    assert!(!status.success());
    let (dir, ca, options) = (proxy.dir.clone(), proxy.ca.clone(), proxy.options.clone());
    drop(proxy);

    let proxy = Proxy::start_in(dir, ca, options);
    assert_eq!(get(&proxy, &ready.alias, &token).await, 200);
    // The edge cookie survives too.
    let r = proxy
        .client
        .get(proxy.url(&ready.alias, "/"))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // The pending session can still register (its secret was kept as a
    // hash), on a backend of its own: the restart also kept which address
    // the ready session holds.
    let r = proxy
        .register(&pending.alias, backend.port(), &pending.register_secret)
        .await;
    assert_eq!(r.status(), 409, "the restart forgot the held address");
    let second = http_backend("two").await;
    let r = proxy
        .register(&pending.alias, second.port(), &pending.register_secret)
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(get(&proxy, &pending.alias, &pending_token).await, 200);
}

#[tokio::test]
async fn expiry_removes_the_route() {
    let proxy = Proxy::start(Options::default());
    let backend = http_backend("one").await;
    let token = random_token();
    let s = proxy.create(&token, 2).await;
    let r = proxy
        .register(&s.alias, backend.port(), &s.register_secret)
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(get(&proxy, &s.alias, &token).await, 200);
    assert!(
        eventually(Duration::from_secs(6), || async {
            get(&proxy, &s.alias, &token).await == 404
        })
        .await,
        "route still served after its TTL"
    );
    let (_, status) = proxy.status(&s.alias, "?wait=ready").await;
    assert_eq!(status["state"], "ended");
    assert_eq!(status["end_reason"], "expired");
}

#[tokio::test]
async fn delete_removes_the_route_at_once() {
    let proxy = Proxy::start(Options::default());
    let backend = http_backend("one").await;
    let ws_backend = websocket_backend().await;
    let token = random_token();
    let s = proxy.ready_session(&token, backend.port()).await;
    let ws_token = random_token();
    let ws_session = proxy.ready_session(&ws_token, ws_backend.port()).await;
    assert_eq!(get(&proxy, &s.alias, &token).await, 200);

    // A WebSocket open on the deleted session is closed too.
    let mut ws = proxy.websocket(&ws_session.alias, &ws_token).await;
    ws.send(Message::text("hi")).await.unwrap();
    assert_eq!(ws.next().await.unwrap().unwrap(), Message::text("hi"));

    assert_eq!(proxy.delete(&s.alias, "wrong").await, 403);
    assert_eq!(get(&proxy, &s.alias, &token).await, 200);
    assert_eq!(proxy.delete(&s.alias, &s.register_secret).await, 204);
    assert_eq!(get(&proxy, &s.alias, &token).await, 404);
    assert_eq!(
        proxy.delete(&s.alias, &s.register_secret).await,
        204,
        "delete is idempotent"
    );
    let (_, status) = proxy.status(&s.alias, "").await;
    assert_eq!(status["state"], "ended");

    assert_eq!(
        proxy
            .delete(&ws_session.alias, &ws_session.register_secret)
            .await,
        204
    );
    assert_eq!(
        close_code(&mut ws).await,
        Some(1001),
        "WebSocket kept running after delete"
    );
}

#[tokio::test]
async fn health_check_ends_sessions_whose_backend_stopped() {
    let options = Options {
        extra: "health_check_interval_s = 1\nhealth_check_failures = 2".into(),
        ..Options::default()
    };
    let proxy = Proxy::start(options);
    let doomed = http_backend("doomed").await;
    let healthy = http_backend("healthy").await;
    let s1 = proxy.ready_session(&random_token(), doomed.port()).await;
    let s2 = proxy.ready_session(&random_token(), healthy.port()).await;
    doomed.kill();
    let ended = eventually(Duration::from_secs(10), || async {
        proxy.status(&s1.alias, "").await.1["state"] == "ended"
    })
    .await;
    assert!(ended, "dead backend's session not ended");
    assert_eq!(
        proxy.status(&s1.alias, "").await.1["end_reason"],
        "unreachable"
    );
    let (_, status) = proxy.status(&s2.alias, "").await;
    assert_eq!(status["state"], "ready");
}

#[tokio::test]
async fn sigterm_finishes_requests_in_flight_and_exits_cleanly() {
    let mut proxy = Proxy::start(Options::default());
    let backend = http_backend("one").await;
    let ws_backend = websocket_backend().await;
    let token = random_token();
    let s = proxy.ready_session(&token, backend.port()).await;
    let ws_token = random_token();
    let ws_session = proxy.ready_session(&ws_token, ws_backend.port()).await;

    let mut ws = proxy.websocket(&ws_session.alias, &ws_token).await;

    let slow = {
        let client = proxy.client.clone();
        let url = proxy.url(&s.alias, &format!("/slow?token={token}"));
        tokio::spawn(async move {
            let r = client.get(url).send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        })
    };
    let pending = proxy.create(&random_token(), 600).await;
    let long_poll = {
        let client = proxy.client.clone();
        let url = proxy.api(&format!(
            "/sessions/{}?wait=ready&timeout_s=60",
            pending.alias
        ));
        tokio::spawn(async move {
            let r = client.get(url).send().await.unwrap();
            (
                r.status().as_u16(),
                r.json::<serde_json::Value>().await.unwrap(),
            )
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    proxy.signal("TERM");
    // A parked long-poll answers at once with the current state.
    let (status, body) = tokio::time::timeout(Duration::from_secs(5), long_poll)
        .await
        .expect("long-poll kept waiting through shutdown")
        .unwrap();
    assert_eq!((status, body["state"].as_str()), (200, Some("pending")));
    let (status, body) = slow.await.unwrap();
    assert_eq!((status, body.as_str()), (200, "one slow done"));

    assert_eq!(
        close_code(&mut ws).await,
        Some(1001),
        "WebSocket not closed cleanly on shutdown"
    );
    let exit = proxy.wait_exit(Duration::from_secs(10));
    assert!(exit.success(), "{exit:?}");
    assert!(
        TcpStream::connect(proxy.addr).await.is_err(),
        "still accepting"
    );
}

#[tokio::test]
async fn sighup_reloads_the_certificate() {
    let proxy = Proxy::start(Options::default());
    let new_ca = TestCa::new();
    std::fs::write(proxy.dir.path().join("cert.pem"), &new_ca.cert_pem).unwrap();
    std::fs::write(proxy.dir.path().join("key.pem"), &new_ca.key_pem).unwrap();
    proxy.signal("HUP");
    let new_client = super::harness::client_for(&new_ca, None);
    let url = proxy.url("manage", "/healthz");
    let switched = eventually(Duration::from_secs(5), || async {
        new_client
            .get(&url)
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
    })
    .await;
    assert!(switched, "new certificate not served after SIGHUP");
    // A broken file on the next SIGHUP keeps the current certificate.
    std::fs::write(proxy.dir.path().join("cert.pem"), "garbage").unwrap();
    proxy.signal("HUP");
    assert!(
        eventually(Duration::from_secs(5), || async {
            proxy.log().contains("not reloaded")
        })
        .await
    );
    assert_eq!(new_client.get(&url).send().await.unwrap().status(), 200);
}

/// `jrps serve FLAG path` with `config` written to `path`.
fn serve_with(path: &std::path::Path, config: &str, flag: &str) -> std::process::Output {
    std::fs::write(path, config).unwrap();
    super::harness::serve_refused(flag, path)
}

#[test]
fn config_errors_exit_2_naming_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("proxy.toml");
    let output = serve_with(
        &path,
        "domain = \"jrps.localhost\"\nlisten = \"127.0.0.1:0\"\nstate = \"s.sqlite\"\n\
         allowed_client_cidrs = []\nallowed_backend_cidrs = []\nlisen = 1\n",
        "--config",
    );
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("proxy.toml:6:1") && stderr.contains("lisen"),
        "{stderr}"
    );

    let output = serve_with(
        &path,
        "domain = \"jrps.localhost\"\nlisten = \"127.0.0.1:0\"\nstate = \"s.sqlite\"\n\
         allowed_client_cidrs = [\"10.0.0.0/33\"]\nallowed_backend_cidrs = []\n",
        "-c",
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("proxy.toml:4:"));

    // Behind a terminator the API needs its own listener.
    let output = serve_with(
        &path,
        "domain = \"jrps.localhost\"\nlisten = \"127.0.0.1:0\"\nstate = \"s.sqlite\"\n\
         behind_tls = true\nallowed_client_cidrs = []\nallowed_backend_cidrs = []\n",
        "-c",
    );
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("proxy.toml:4:")
            && stderr.contains("behind_tls")
            && stderr.contains("api_addr"),
        "{stderr}"
    );

    let output = serve_with(
        &path,
        "domain = \"jrps.localhost\"\nlisten = \"127.0.0.1:0\"\nstate = \"s.sqlite\"\n\
         tls_cert = \"missing.pem\"\ntls_key = \"missing.key\"\n\
         allowed_client_cidrs = []\nallowed_backend_cidrs = []\n",
        "-c",
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("missing.pem"));
}

/// A `proxy.toml` that holds the database password is a secret: the proxy
/// says so when anyone but itself (or its own group) can read it.
#[test]
fn a_readable_proxy_toml_with_a_database_password_is_warned_about() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("proxy.toml");
    let with_password = "domain = \"jrps.localhost\"\nlisten = \"127.0.0.1:0\"\n\
         state = \"postgres://jrps:pw@%2Fnonexistent/jrps\"\ncookie_key = \"k\"\n\
         allowed_client_cidrs = []\nallowed_backend_cidrs = []\n";
    let warning = "holds the state database's password and every user can read it";
    for (mode, warned) in [(0o644, true), (0o600, false)] {
        std::fs::write(&path, with_password).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        let output = super::harness::serve_refused("--config", &path);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(stderr.contains(warning), warned, "mode {mode:o}: {stderr}");
        assert!(!stderr.contains(":pw@"), "the password stays out: {stderr}");
    }
}

/// The unit the packages install, as `systemd-analyze security` rates it
/// offline: 2.0 or lower ("OK"), so a site's audit does not flag it.
#[test]
fn the_packaged_unit_is_rated_ok_by_systemd_analyze() {
    let unit = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/jrps-proxy.service");
    let output = match Command::new("systemd-analyze")
        .args(["security", "--offline=yes"])
        .arg(&unit)
        .output()
    {
        Ok(output) => output,
        Err(error) => {
            crate::support::missing(&format!("systemd-analyze ({error})"));
            return;
        }
    };
    let text = String::from_utf8_lossy(&output.stdout);
    let score: f64 = text
        .lines()
        .find_map(|line| line.split("exposure level for jrps-proxy.service: ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|score| score.parse().ok())
        .unwrap_or_else(|| {
            panic!(
                "no exposure level in:\n{text}{}",
                String::from_utf8_lossy(&output.stderr)
            )
        });
    assert!(score <= 2.0, "the unit rates {score}:\n{text}");
}
