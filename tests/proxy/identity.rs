//! `identity = "munge"` against the test cluster's real munged: every API
//! call proves its uid, a session answers only its owner, and credentials
//! that are missing, garbage or replayed get 401.

use std::path::PathBuf;
use std::process::Command;

use serde_json::{Value, json};

use super::backends::http_backend;
use super::harness::{Options, Proxy, random_token, sha256_hex};

/// The payload of jrps's credentials (`identity::AUDIENCE`).
const AUDIENCE: &str = "jrps-api v1";
use crate::scheduler::slurm::cluster;

/// The munged socket the test cluster's Slurm uses (its `AuthInfo`).
pub(crate) fn munge_socket() -> Option<PathBuf> {
    cluster()?;
    let conf = std::fs::read_to_string(std::env::var_os("SLURM_CONF")?).ok()?;
    conf.lines().find_map(|line| {
        let info = line.trim().strip_prefix("AuthInfo=")?;
        info.split(',')
            .find_map(|part| part.strip_prefix("socket="))
            .map(PathBuf::from)
    })
}

/// A fresh credential, made as this test's uid or, with `nobody`, as the
/// `nobody` user (another uid on the same realm).
pub(crate) fn credential(socket: &PathBuf, nobody: bool) -> String {
    let mut command = if nobody {
        let mut c = Command::new("setpriv");
        c.args([
            "--reuid=nobody",
            "--regid=nogroup",
            "--clear-groups",
            "munge",
        ]);
        c
    } else {
        Command::new("munge")
    };
    let out = command
        .args(["--string", AUDIENCE, "--socket"])
        .arg(socket)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "munge: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

fn me() -> String {
    let out = Command::new("id").arg("-un").output().unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

struct Call<'a> {
    proxy: &'a Proxy,
    socket: PathBuf,
}

impl Call<'_> {
    /// `method path` with `body`, authorised by `auth` (a whole header value).
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Value,
        auth: Option<String>,
    ) -> (u16, Value) {
        let mut request = self
            .proxy
            .client
            .request(method, self.proxy.api(path))
            .json(&body);
        if let Some(auth) = auth {
            request = request.header("authorization", auth);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    fn as_me(&self) -> Option<String> {
        Some(format!("Munge {}", credential(&self.socket, false)))
    }

    fn as_nobody(&self) -> Option<String> {
        Some(format!("Munge {}", credential(&self.socket, true)))
    }
}

#[tokio::test]
async fn sessions_belong_to_the_uid_munge_proves() {
    let Some(socket) = munge_socket() else { return };
    let proxy = Proxy::start(Options {
        extra: format!(
            "identity = \"munge\"\nmunge_socket = {:?}\n",
            socket.display().to_string()
        ),
        ..Options::default()
    });
    let call = Call {
        proxy: &proxy,
        socket,
    };
    let token = random_token();
    let create = |user: String| json!({"user": user, "token_sha256": sha256_hex(&token), "ttl_seconds": 600});
    use reqwest::Method;

    // No credential, a garbage one, a replayed one: 401 in the API's shape.
    let (status, body) = call
        .send(Method::POST, "/sessions", create(me()), None)
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("unauthenticated")),
        "{body}"
    );
    let (status, _) = call
        .send(
            Method::POST,
            "/sessions",
            create(me()),
            Some("Munge MUNGE:garbage:".into()),
        )
        .await;
    assert_eq!(status, 401);
    let once = call.as_me();
    let (status, created) = call
        .send(Method::POST, "/sessions", create(me()), once.clone())
        .await;
    assert_eq!(status, 201, "{created}");
    let (status, body) = call
        .send(Method::POST, "/sessions", create(me()), once)
        .await;
    assert_eq!(status, 401, "a replayed credential: {body}");
    assert!(
        body["detail"].as_str().unwrap().contains("eplayed"),
        "{body}"
    );

    // Expired: munged's own clock, one second of life, used after two.
    let out = Command::new("munge")
        .args(["--string", AUDIENCE, "--ttl", "1", "--socket"])
        .arg(&call.socket)
        .output()
        .unwrap();
    let short = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let made = std::time::Instant::now();
    while made.elapsed() < std::time::Duration::from_secs(2) {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let (status, body) = call
        .send(
            Method::POST,
            "/sessions",
            create(me()),
            Some(format!("Munge {short}")),
        )
        .await;
    assert_eq!(status, 401, "an expired credential: {body}");
    assert!(
        body["detail"].as_str().unwrap().contains("xpired"),
        "{body}"
    );

    // A good credential for something else: another service's cannot be
    // replayed here.
    let out = Command::new("munge")
        .args(["--string", "some-other-service", "--socket"])
        .arg(&call.socket)
        .output()
        .unwrap();
    let elsewhere = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let (status, body) = call
        .send(
            Method::POST,
            "/sessions",
            create(me()),
            Some(format!("Munge {elsewhere}")),
        )
        .await;
    assert_eq!(status, 401, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("not for this API"),
        "{body}"
    );

    // The `user` field must be the caller.
    let (status, body) = call
        .send(
            Method::POST,
            "/sessions",
            create("somebody-else".into()),
            call.as_me(),
        )
        .await;
    assert_eq!(status, 403, "{body}");

    let alias = created["alias"].as_str().unwrap().to_owned();
    let secret = created["register_secret"].as_str().unwrap().to_owned();
    let session = format!("/sessions/{alias}");

    // Another uid, even with the secret, cannot use it; it cannot tell it
    // from an alias that does not exist.
    let denied = [
        (
            Method::POST,
            format!("{session}/job"),
            json!({"job_id": "1", "secret": secret}),
        ),
        (Method::GET, session.clone(), json!({})),
        (
            Method::POST,
            format!("{session}/phase"),
            json!({"secret": secret, "phase": "queued"}),
        ),
        (
            Method::POST,
            format!("{session}/activity"),
            json!({"secret": secret}),
        ),
        (
            Method::POST,
            format!("{session}/register"),
            json!({"port": 8888, "secret": secret}),
        ),
        (Method::DELETE, session.clone(), json!({"secret": secret})),
    ];
    for (method, path, body) in &denied {
        let (status, answer) = call
            .send(method.clone(), path, body.clone(), call.as_nobody())
            .await;
        assert_eq!(status, 403, "{method} {path} as nobody: {answer}");
        assert_eq!(answer["detail"], "no session of yours by that name");
    }
    let (status, unknown) = call
        .send(
            Method::GET,
            "/sessions/amber-otter-lagoon",
            json!({}),
            call.as_me(),
        )
        .await;
    assert_eq!(
        (status, &unknown["detail"]),
        (403, &json!("no session of yours by that name"))
    );

    // The owner: link, register from the "compute node", list, delete
    // without the secret (as `jrps down` from another login node).
    let (status, _) = call
        .send(
            Method::POST,
            &format!("{session}/job"),
            json!({"job_id": "4711", "secret": secret}),
            call.as_me(),
        )
        .await;
    assert_eq!(status, 204);
    let backend = http_backend("jupyter").await;
    let (status, body) = call
        .send(
            Method::POST,
            &format!("{session}/register"),
            json!({"port": backend.port(), "secret": secret}),
            call.as_me(),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, mine) = call
        .send(Method::GET, "/sessions", json!({}), call.as_me())
        .await;
    assert_eq!(status, 200);
    let listed: Vec<&str> = mine
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["alias"].as_str().unwrap())
        .collect();
    assert_eq!(listed, [alias.as_str()], "{mine}");
    assert_eq!(mine[0]["state"], "ready");
    assert_eq!(mine[0]["job_id"], "4711");
    let (status, theirs) = call
        .send(Method::GET, "/sessions", json!({}), call.as_nobody())
        .await;
    assert_eq!((status, theirs), (200, json!([])));
    let (status, _) = call
        .send(
            Method::DELETE,
            &session,
            json!({"reason": "cancelled"}),
            call.as_me(),
        )
        .await;
    assert_eq!(status, 204);
    let (_, ended) = call
        .send(Method::GET, &session, json!({}), call.as_me())
        .await;
    assert_eq!(
        (&ended["state"], &ended["end_reason"]),
        (&json!("ended"), &json!("cancelled"))
    );
}

/// A user directory that hangs (a stand-in `getent` on the proxy's PATH
/// that sleeps 30 s) delays only the create that asked, for the lookup's
/// bound, and no proxied request: on one worker, requests to a session go
/// on answering while the lookup waits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_user_directory_delays_no_proxied_request() {
    let Some(socket) = munge_socket() else { return };
    let stand_ins = tempfile::tempdir().unwrap();
    let getent = stand_ins.path().join("getent");
    std::fs::write(
        &getent,
        "#!/bin/sh\n# stand-in: a user directory that hangs\nsleep 30\n",
    )
    .unwrap();
    std::fs::set_permissions(&getent, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let proxy = Proxy::start(Options {
        extra: format!(
            "identity = \"munge\"\nmunge_socket = {:?}\nworkers = 1\n",
            socket.display().to_string()
        ),
        path_first: Some(stand_ins.path().to_owned()),
        ..Options::default()
    });
    let call = Call {
        proxy: &proxy,
        socket,
    };
    use reqwest::Method;
    let token = random_token();
    let create = json!({"user": me(), "token_sha256": sha256_hex(&token), "ttl_seconds": 600});
    let started = std::time::Instant::now();
    let (status, created) = call
        .send(Method::POST, "/sessions", create.clone(), call.as_me())
        .await;
    assert_eq!(status, 201, "{created}");
    let waited = started.elapsed();
    assert!(
        waited < std::time::Duration::from_secs(15),
        "the lookup is bounded: {waited:?}"
    );
    let alias = created["alias"].as_str().unwrap().to_owned();
    let backend = http_backend("jupyter").await;
    let register = json!({"port": backend.port(), "secret": created["register_secret"]});
    let (status, body) = call
        .send(
            Method::POST,
            &format!("/sessions/{alias}/register"),
            register,
            call.as_me(),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    // Another create waits on the directory; the session's requests do not.
    let slow = call.send(Method::POST, "/sessions", create, call.as_me());
    let requests = async {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        let mut slowest = std::time::Duration::ZERO;
        for _ in 0..20 {
            let sent = std::time::Instant::now();
            let r = tokio::time::timeout(
                std::time::Duration::from_secs(3),
                proxy.get(proxy.url(&alias, &format!("/?token={token}"))),
            )
            .await
            .expect("a proxied request waited on the user directory");
            assert_eq!(r.status(), 200);
            slowest = slowest.max(sent.elapsed());
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        slowest
    };
    let ((status, _), slowest) = tokio::join!(slow, requests);
    assert_eq!(status, 201);
    assert!(
        slowest < std::time::Duration::from_secs(1),
        "slowest proxied request during the lookup: {slowest:?}"
    );
}

/// One address floods the API with well-formed credentials that are not
/// valid (each costs an `unmunge`), 48 at a time; legitimate calls from
/// another address meanwhile all succeed, because one address gets only its
/// share of the checks and a call waits briefly for a slot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_bad_credentials_from_one_address_fails_no_one_else() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let Some(socket) = munge_socket() else { return };
    let proxy = Proxy::start(Options {
        extra: format!(
            "identity = \"munge\"\nmunge_socket = {:?}\n",
            socket.display().to_string()
        ),
        allowed_backend_cidrs: r#"["127.0.0.0/8"]"#.into(),
        ..Options::default()
    });
    let flooder = super::harness::client_for(&proxy.ca, Some([127, 0, 0, 2].into()));
    let url = proxy.api("/sessions/amber-otter-lagoon/activity");
    let stop = Arc::new(AtomicBool::new(false));
    let (refused, busy) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let mut flood = tokio::task::JoinSet::new();
    for _ in 0..48 {
        let (client, url, stop) = (flooder.clone(), url.clone(), stop.clone());
        let (refused, busy) = (refused.clone(), busy.clone());
        flood.spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let mut bytes = [0u8; 120];
                rand::fill(&mut bytes);
                let fake = format!(
                    "Munge MUNGE:{}:",
                    base64::Engine::encode(&base64::engine::general_purpose::STANDARD, bytes)
                );
                let status = client
                    .post(&url)
                    .header("authorization", fake)
                    .json(&json!({"secret": "x"}))
                    .send()
                    .await
                    .map(|r| r.status().as_u16());
                match status {
                    Ok(401) => refused.fetch_add(1, Ordering::Relaxed),
                    _ => busy.fetch_add(1, Ordering::Relaxed),
                };
            }
        });
    }
    // The flood is on before the first legitimate call.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while refused.load(Ordering::Relaxed) < 48 {
        assert!(
            std::time::Instant::now() < deadline,
            "the flood never got going"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let call = Call {
        proxy: &proxy,
        socket,
    };
    let mut failed = Vec::new();
    for _ in 0..39 {
        let (status, body) = call
            .send(reqwest::Method::GET, "/sessions", Value::Null, call.as_me())
            .await;
        if status != 200 {
            failed.push((status, body));
        }
    }
    stop.store(true, Ordering::Relaxed);
    while flood.join_next().await.is_some() {}
    eprintln!(
        "flood: {} refused, {} not checked (503 or cut); legitimate calls failed: {}",
        refused.load(Ordering::Relaxed),
        busy.load(Ordering::Relaxed),
        failed.len()
    );
    assert!(
        failed.is_empty(),
        "legitimate calls failed during the flood: {failed:?}"
    );
}
