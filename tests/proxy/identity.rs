//! `identity = "munge"` against the test cluster's real munged: every API
//! call proves its uid, a session answers only its owner, and credentials
//! that are missing, garbage, made for another call or replayed (at the same
//! replica or another, with a munged of its own) get 401.

use std::path::PathBuf;
use std::process::Command;

use serde_json::{Value, json};

use super::backends::http_backend;
use super::harness::{Options, Proxy, random_token, sha256_hex};

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

/// A fresh credential for `payload`, made as this test's uid or, with
/// `nobody`, as the `nobody` user (another uid on the same realm).
pub(crate) fn credential(socket: &PathBuf, nobody: bool, payload: &str) -> String {
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
        .args(["--string", payload, "--socket"])
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

/// Who authorises a call.
#[derive(Clone)]
enum Auth {
    Nothing,
    /// A fresh credential for the call, as this test's uid.
    Me,
    /// A fresh credential for the call, as `nobody`.
    Nobody,
    /// This `Authorization` value.
    Header(String),
}

impl Call<'_> {
    /// `method path` with `body`.
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Value,
        auth: Auth,
    ) -> (u16, Value) {
        let bytes = serde_json::to_vec(&body).unwrap();
        let auth = match auth {
            Auth::Nothing => None,
            Auth::Me => Some(self.munge_header(&method, path, &bytes, false)),
            Auth::Nobody => Some(self.munge_header(&method, path, &bytes, true)),
            Auth::Header(value) => Some(value),
        };
        let mut request = self
            .proxy
            .client
            .request(method, self.proxy.api(path))
            .header("content-type", "application/json")
            .body(bytes);
        if let Some(auth) = auth {
            request = request.header("authorization", auth);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// A fresh `Authorization` value for exactly this call.
    fn munge_header(
        &self,
        method: &reqwest::Method,
        path: &str,
        body: &[u8],
        nobody: bool,
    ) -> String {
        let payload = jrps::api::call_payload(method.as_str(), &format!("/api/v1{path}"), body);
        format!("Munge {}", credential(&self.socket, nobody, &payload))
    }

    /// The header [`Auth::Me`] would send for this call, to send it again.
    fn me_for(&self, method: &reqwest::Method, path: &str, body: &Value) -> Auth {
        let bytes = serde_json::to_vec(body).unwrap();
        Auth::Header(self.munge_header(method, path, &bytes, false))
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
        .send(Method::POST, "/sessions", create(me()), Auth::Nothing)
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
            Auth::Header("Munge MUNGE:garbage:".into()),
        )
        .await;
    assert_eq!(status, 401);
    let once = call.me_for(&Method::POST, "/sessions", &create(me()));
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

    // A credential is for the call it was made for: another body, another
    // path or another method gets 401, and so does v1's, good for any call.
    let made_for = |method: &Method, path: &str, body: &Value| {
        let payload = jrps::api::call_payload(
            method.as_str(),
            &format!("/api/v1{path}"),
            &serde_json::to_vec(body).unwrap(),
        );
        format!("Munge {}", credential(&call.socket, false, &payload))
    };
    let other_user = create("somebody-else".into());
    for (what, header) in [
        (
            "another body",
            made_for(&Method::POST, "/sessions", &other_user),
        ),
        (
            "another path",
            made_for(&Method::POST, "/sessions/amber-otter-lagoon", &create(me())),
        ),
        (
            "another method",
            made_for(&Method::GET, "/sessions", &create(me())),
        ),
    ] {
        let (status, body) = call
            .send(
                Method::POST,
                "/sessions",
                create(me()),
                Auth::Header(header),
            )
            .await;
        assert_eq!(status, 401, "{what}: {body}");
        assert!(
            body["detail"]
                .as_str()
                .unwrap()
                .contains("made for another call"),
            "{what}: {body}"
        );
    }
    let v1 = format!("Munge {}", credential(&call.socket, false, "jrps-api v1"));
    let (status, body) = call
        .send(Method::POST, "/sessions", create(me()), Auth::Header(v1))
        .await;
    assert_eq!(status, 401, "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("update jrps"),
        "{body}"
    );

    // Expired: munged's own clock, one second of life, used after two.
    let payload = jrps::api::call_payload(
        "POST",
        "/api/v1/sessions",
        &serde_json::to_vec(&create(me())).unwrap(),
    );
    let out = Command::new("munge")
        .args(["--string", &payload, "--ttl", "1", "--socket"])
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
            Auth::Header(format!("Munge {short}")),
        )
        .await;
    assert_eq!(status, 401, "an expired credential: {body}");
    assert!(
        body["detail"].as_str().unwrap().contains("xpired"),
        "{body}"
    );

    // A good credential for something else: another service's cannot be
    // replayed here.
    let elsewhere = credential(&call.socket, false, "some-other-service");
    let (status, body) = call
        .send(
            Method::POST,
            "/sessions",
            create(me()),
            Auth::Header(format!("Munge {elsewhere}")),
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
            Auth::Me,
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
            .send(method.clone(), path, body.clone(), Auth::Nobody)
            .await;
        assert_eq!(status, 403, "{method} {path} as nobody: {answer}");
        assert_eq!(answer["detail"], "no session of yours by that name");
    }
    let (status, unknown) = call
        .send(
            Method::GET,
            "/sessions/amber-otter-lagoon",
            json!({}),
            Auth::Me,
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
            Auth::Me,
        )
        .await;
    assert_eq!(status, 204);
    let backend = http_backend("jupyter").await;
    let (status, body) = call
        .send(
            Method::POST,
            &format!("{session}/register"),
            json!({"port": backend.port(), "secret": secret}),
            Auth::Me,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, mine) = call
        .send(Method::GET, "/sessions", json!({}), Auth::Me)
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
        .send(Method::GET, "/sessions", json!({}), Auth::Nobody)
        .await;
    assert_eq!((status, theirs), (200, json!([])));
    let (status, _) = call
        .send(
            Method::DELETE,
            &session,
            json!({"reason": "cancelled"}),
            Auth::Me,
        )
        .await;
    assert_eq!(status, 204);
    let (_, ended) = call.send(Method::GET, &session, json!({}), Auth::Me).await;
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
        .send(Method::POST, "/sessions", create.clone(), Auth::Me)
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
            Auth::Me,
        )
        .await;
    assert_eq!(status, 200, "{body}");

    // Another create waits on the directory; the session's requests do not.
    let slow = call.send(Method::POST, "/sessions", create, Auth::Me);
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
    let going = crate::support::eventually(std::time::Duration::from_secs(20), || async {
        refused.load(Ordering::Relaxed) >= 48
    })
    .await;
    assert!(going, "the flood never got going");
    let call = Call {
        proxy: &proxy,
        socket,
    };
    let mut failed = Vec::new();
    for _ in 0..39 {
        let (status, body) = call
            .send(reqwest::Method::GET, "/sessions", Value::Null, Auth::Me)
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

/// Another host's munged: the test cluster's key, so the same realm, but a
/// socket and so a replay cache of its own, as a second proxy host has.
struct OtherHostsMunged {
    dir: tempfile::TempDir,
    socket: PathBuf,
}

impl OtherHostsMunged {
    fn start(first: &std::path::Path) -> OtherHostsMunged {
        let key = first.with_file_name("munge.key");
        let dir = tempfile::Builder::new()
            .prefix("jrps-munged-")
            .tempdir()
            .unwrap();
        // munged runs as munge and checks that nobody else may write there.
        let chown = Command::new("chown")
            .arg("munge:munge")
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(chown.success());
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        let socket = dir.path().join("socket");
        let file = |name: &str| {
            let mut arg = std::ffi::OsString::from(format!("--{name}-file="));
            arg.push(dir.path().join(name));
            arg
        };
        let started = Command::new("runuser")
            .args(["-u", "munge", "--", "munged"])
            .arg(format!("--socket={}", socket.display()))
            .arg(format!("--key-file={}", key.display()))
            .args([file("pid"), file("log"), file("seed")])
            .status()
            .unwrap();
        assert!(started.success(), "munged did not start");
        let answers = || {
            let made = Command::new("munge")
                .args(["-n", "-S"])
                .arg(&socket)
                .output()
                .unwrap();
            made.status.success()
        };
        crate::support::until_sync(
            std::time::Duration::from_secs(10),
            "the second munged answering",
            || {
                if answers() {
                    Ok(())
                } else {
                    Err(std::fs::read_to_string(dir.path().join("log")).unwrap_or_default())
                }
            },
        );
        OtherHostsMunged { dir, socket }
    }
}

impl Drop for OtherHostsMunged {
    fn drop(&mut self) {
        if let Ok(pid) = std::fs::read_to_string(self.dir.path().join("pid")) {
            let _ = Command::new("kill").arg(pid.trim()).status();
        }
    }
}

/// Two replicas on one database, each asking its own host's munged (one
/// key, two replay caches): a credential one took is refused by the other,
/// either way round, though that one's munged alone would take it; a
/// credential made on the other host is good at the first (one realm);
/// and the record of what was taken is forgotten once it could not be
/// presented again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_credential_is_taken_once_across_replicas_with_munged_each() {
    let Some(first) = munge_socket() else { return };
    if super::postgres::postgres_bin().is_none() {
        return;
    }
    let second = OtherHostsMunged::start(&first);
    let identity = |socket: &PathBuf| {
        format!(
            "identity = \"munge\"\nmunge_socket = {:?}\n",
            socket.display().to_string()
        )
    };
    let r = super::replicas::Replicas::start_each(&identity(&first), &identity(&second.socket))
        .expect("PostgreSQL");
    let (at_a, at_b) = (
        Call {
            proxy: &r.a,
            socket: first.clone(),
        },
        Call {
            proxy: &r.b,
            socket: second.socket.clone(),
        },
    );
    use reqwest::Method;
    let token = random_token();
    let create = json!({"user": me(), "token_sha256": sha256_hex(&token), "ttl_seconds": 600});
    let (status, created) = at_a.send(Method::POST, "/sessions", create, Auth::Me).await;
    assert_eq!(status, 201, "{created}");
    let path = format!("/sessions/{}", created["alias"].as_str().unwrap());

    // Made on A's host, taken by A, then sent to B; and the other way round.
    for (maker, taker, replayed_at) in [(&at_a, &at_a, &at_b), (&at_b, &at_b, &at_a)] {
        let once = maker.me_for(&Method::GET, &path, &json!({}));
        let (status, body) = taker
            .send(Method::GET, &path, json!({}), once.clone())
            .await;
        assert_eq!(status, 200, "{body}");
        let (status, body) = replayed_at.send(Method::GET, &path, json!({}), once).await;
        assert_eq!(status, 401, "replayed at the other replica: {body}");
        assert!(
            body["detail"]
                .as_str()
                .unwrap()
                .contains("another replica took it"),
            "refused by the shared record, not by its munged: {body}"
        );
    }
    // One realm: a credential made on B's host is good at A.
    let (status, body) = at_a
        .send(
            Method::GET,
            &path,
            json!({}),
            at_b.me_for(&Method::GET, &path, &json!({})),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    // Every credential taken is recorded until it expires (plus the clock
    // margin), and the duty holder forgets one whose time has passed.
    let recorded = r.cluster.psql(
        "jrps",
        "SELECT count(*) FROM jrps.spent_credentials \
         WHERE until > extract(epoch FROM now()) + 300",
    );
    assert_eq!(
        recorded.trim(),
        "4",
        "create, two status calls, one from B's host"
    );
    r.cluster.psql(
        "jrps",
        "INSERT INTO jrps.spent_credentials (digest, until) VALUES ('\\x00', 1)",
    );
    let forgotten = crate::support::eventually(std::time::Duration::from_secs(10), || async {
        r.cluster
            .psql(
                "jrps",
                "SELECT count(*) FROM jrps.spent_credentials WHERE until < 1000",
            )
            .trim()
            == "0"
    })
    .await;
    assert!(forgotten, "the run-out record is still there");
}
