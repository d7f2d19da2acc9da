//! API v1 over TLS on `manage.jrps.localhost`: guards, once-only
//! registration, validation, long-poll.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::backends::http_backend;
use super::harness::{Options, Proxy, client_for, random_token, sha256_hex};

#[tokio::test]
async fn registration_from_outside_backend_cidrs_is_refused() {
    let proxy = Proxy::start(Options::default());
    let backend = http_backend("one").await;
    let s = proxy.create(&random_token(), 600).await;
    let outsider = client_for(&proxy.ca, Some(IpAddr::from([127, 0, 0, 2])));
    let response = outsider
        .post(proxy.api(&format!("/sessions/{}/register", s.alias)))
        .json(&json!({"port": backend.port(), "secret": s.register_secret}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "forbidden");
    assert!(
        body["detail"].as_str().unwrap().contains("127.0.0.2"),
        "{body}"
    );
    let (_, status) = proxy.status(&s.alias, "").await;
    assert_eq!(status["state"], "pending", "a refused call changes nothing");

    // Create is guarded by allowed_client_cidrs the same way.
    let response = outsider
        .post(proxy.api("/sessions"))
        .json(&json!({"user": "mallory", "token_sha256": sha256_hex("x"), "ttl_seconds": 60}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
}

async fn second_registration_is_409_and_backend_is_the_caller(options: Options) {
    let proxy = Proxy::start(options);
    let backend = http_backend("one").await;
    let token = random_token();
    let s = proxy.create(&token, 600).await;
    assert!(
        s.url
            .starts_with(&format!("https://{}.jrps.localhost:", s.alias)),
        "{}",
        s.url
    );
    let first = proxy
        .register(&s.alias, backend.port(), &s.register_secret)
        .await;
    assert_eq!(first.status(), 200);
    let body: Value = first.json().await.unwrap();
    assert_eq!(body["state"], "ready");
    assert_eq!(body["alias"], s.alias.as_str());

    let again = proxy
        .register(&s.alias, backend.port() + 1, &s.register_secret)
        .await;
    assert_eq!(again.status(), 409);
    let wrong = proxy
        .register(&s.alias, backend.port(), "not-the-secret")
        .await;
    assert_eq!(wrong.status(), 403);
    // The route is still the first registration's.
    let r = proxy
        .get(proxy.url(&s.alias, &format!("/?token={token}")))
        .await;
    assert_eq!(r.text().await.unwrap(), "hello from one path=/");
}

async fn a_backend_address_routes_to_one_live_session_at_a_time(options: Options) {
    let proxy = Proxy::start(options);
    let backend = http_backend("first-user").await;
    let first_token = random_token();
    let first = proxy.create(&first_token, 600).await;
    let second = proxy.create(&random_token(), 600).await;
    let registered = proxy
        .register(&first.alias, backend.port(), &first.register_secret)
        .await;
    assert_eq!(registered.status(), 200);

    // Another session claiming the same ip:port while the first is live.
    let claim = proxy
        .register(&second.alias, backend.port(), &second.register_secret)
        .await;
    assert_eq!(claim.status(), 409);
    let body: Value = claim.json().await.unwrap();
    assert_eq!(body["error"], "conflict", "{body}");
    assert!(
        !body["detail"].as_str().unwrap().contains(&first.alias),
        "{body}"
    );
    let (_, status) = proxy.status(&second.alias, "").await;
    assert_eq!(
        status["state"], "pending",
        "a refused claim changes nothing"
    );
    let r = proxy
        .get(proxy.url(&first.alias, &format!("/?token={first_token}")))
        .await;
    assert_eq!(r.text().await.unwrap(), "hello from first-user path=/");

    // Once the first session has ended, the address is free again.
    assert_eq!(
        proxy.delete(&first.alias, &first.register_secret).await,
        204
    );
    let claim = proxy
        .register(&second.alias, backend.port(), &second.register_secret)
        .await;
    assert_eq!(claim.status(), 200);
}

#[tokio::test]
async fn port_22_and_port_0_are_refused() {
    let proxy = Proxy::start(Options::default());
    let s = proxy.create(&random_token(), 600).await;
    for port in [22, 1023] {
        let r = proxy.register(&s.alias, port, &s.register_secret).await;
        assert_eq!(r.status(), 422, "port {port}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"], "invalid_field");
    }
    let r = proxy
        .client
        .post(proxy.api(&format!("/sessions/{}/register", s.alias)))
        .json(&json!({"port": 70000, "secret": s.register_secret}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    // Refusals do not use up the one registration.
    let backend = http_backend("one").await;
    let r = proxy
        .register(&s.alias, backend.port(), &s.register_secret)
        .await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn malformed_and_oversized_bodies_are_4xx() {
    let proxy = Proxy::start(Options::default());
    let post = |path: &str, body: Vec<u8>| {
        proxy
            .client
            .post(proxy.api(path))
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("/sessions", b"{not json".to_vec(), 400),
        ("/sessions", b"".to_vec(), 400),
        ("/sessions", br#"{"user": "a"}"#.to_vec(), 422),
        (
            "/sessions",
            br#"{"user": "a", "token_sha256": "xyz", "ttl_seconds": 5}"#.to_vec(),
            422,
        ),
        (
            "/sessions",
            format!(
                r#"{{"user": "a", "token_sha256": "{}", "ttl_seconds": 0}}"#,
                sha256_hex("t")
            )
            .into_bytes(),
            422,
        ),
        (
            "/sessions",
            format!(
                r#"{{"user": "a b", "token_sha256": "{}", "ttl_seconds": 5}}"#,
                sha256_hex("t")
            )
            .into_bytes(),
            422,
        ),
        (
            "/sessions",
            format!(
                r#"{{"user": "a", "token_sha256": "{}", "ttl_seconds": 5, "extra": 1}}"#,
                sha256_hex("t")
            )
            .into_bytes(),
            422,
        ),
        ("/sessions", vec![b' '; 100_000], 413),
        (
            "/sessions/amber-otter-lagoon/register",
            br#"{"port": 9000, "secret": "x"}"#.to_vec(),
            404,
        ),
        ("/sessions/../../etc/passwd/register", b"{}".to_vec(), 404),
        ("/nothing", b"{}".to_vec(), 404),
    ];
    for (path, body, expected) in cases {
        let response = post(path, body).await.unwrap();
        assert_eq!(response.status().as_u16(), expected, "{path}");
        let body: Value = response.json().await.unwrap();
        assert!(
            body["error"].is_string() && body["detail"].is_string(),
            "{body}"
        );
    }
    let r = proxy
        .client
        .put(proxy.api("/sessions"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    // Still alive and well.
    let r = proxy.get(proxy.url("manage", "/healthz")).await;
    assert_eq!(r.status(), 200);
}

/// POST .../job, as `jrps up` links the job it submitted; the status.
async fn link(proxy: &Proxy, alias: &str, job_id: &str, secret: &str) -> u16 {
    proxy
        .client
        .post(proxy.api(&format!("/sessions/{alias}/job")))
        .json(&json!({"job_id": job_id, "secret": secret}))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn link_job_and_status(options: Options) {
    let proxy = Proxy::start(options);
    let s = proxy.create(&random_token(), 600).await;
    assert_eq!(link(&proxy, &s.alias, "4242", "wrong").await, 403);
    assert_eq!(
        link(&proxy, &s.alias, "4242", &s.register_secret).await,
        204
    );
    assert_eq!(
        link(&proxy, &s.alias, "4242", &s.register_secret).await,
        204
    );
    assert_eq!(
        link(&proxy, &s.alias, "4243", &s.register_secret).await,
        409
    );
    assert_eq!(
        link(&proxy, &s.alias, "42; rm -rf", &s.register_secret).await,
        422
    );
    let (code, status) = proxy.status(&s.alias, "").await;
    assert_eq!(code, 200);
    assert_eq!(status["job_id"], "4242");
    assert_eq!(status["state"], "pending");
    assert_eq!(status["expires_at"], s.expires_at);
    let (code, _) = proxy.status("amber-otter-lagoon", "").await;
    assert_eq!(code, 404);
}

async fn long_poll_answers_the_moment_registration_lands(options: Options) {
    let proxy = Proxy::start(options);
    let backend = http_backend("one").await;
    let s = proxy.create(&random_token(), 600).await;

    // Timing out: answers pending after about timeout_s.
    let started = Instant::now();
    let (_, status) = proxy.status(&s.alias, "?wait=ready&timeout_s=1").await;
    assert_eq!(status["state"], "pending");
    assert!(started.elapsed() >= Duration::from_millis(900));

    let poll = {
        let client = proxy.client.clone();
        let url = proxy.api(&format!("/sessions/{}?wait=ready&timeout_s=30", s.alias));
        tokio::spawn(async move {
            let response = client.get(url).send().await.unwrap();
            let answered = Instant::now();
            (answered, response.json::<Value>().await.unwrap())
        })
    };
    // Give the poll time to be parked before registering.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let registered = Instant::now();
    let r = proxy
        .register(&s.alias, backend.port(), &s.register_secret)
        .await;
    assert_eq!(r.status(), 200);
    let (answered, body) = poll.await.unwrap();
    assert_eq!(body["state"], "ready");
    let lag = answered.saturating_duration_since(registered);
    assert!(
        lag < Duration::from_millis(500),
        "long-poll answered {lag:?} after register"
    );

    // Already ready: no wait at all.
    let started = Instant::now();
    let (_, status) = proxy.status(&s.alias, "?wait=ready&timeout_s=30").await;
    assert_eq!(status["state"], "ready");
    assert!(started.elapsed() < Duration::from_secs(1));

    let (code, _) = proxy.status(&s.alias, "?wait=forever").await;
    assert_eq!(code, 422);
}

#[tokio::test]
async fn api_addr_serves_the_api_only() {
    let options = Options {
        extra: "api_addr = \"127.0.0.1:0\"".into(),
        ..Options::default()
    };
    let proxy = Proxy::start(options);
    let api = proxy.api_addr.expect("no api line printed");
    let url = format!(
        "https://manage.jrps.localhost:{}/api/v1/sessions",
        api.port()
    );
    let r = proxy
        .client
        .post(url)
        .json(&json!({"user": "alice", "token_sha256": sha256_hex("t"), "ttl_seconds": 60}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let url = format!(
        "https://some-alias-here.jrps.localhost:{}/healthz",
        api.port()
    );
    assert_eq!(proxy.get(url).await.status(), 200);

    // The public listener has no API then; /healthz stays for load balancers.
    let public = format!(
        "https://manage.jrps.localhost:{}/api/v1/sessions",
        proxy.addr.port()
    );
    let r = proxy
        .client
        .post(public)
        .json(&json!({"user": "alice", "token_sha256": sha256_hex("t"), "ttl_seconds": 60}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(
        proxy.get(proxy.url("manage", "/metrics")).await.status(),
        404
    );
    assert_eq!(
        proxy.get(proxy.url("manage", "/healthz")).await.status(),
        200
    );
}

#[tokio::test]
async fn live_session_quotas_answer_429_with_retry_after() {
    let proxy = Proxy::start(Options {
        extra: "[limits]\nmax_sessions_per_user = 3\nmax_sessions_per_client = 5\n".into(),
        ..Options::default()
    });
    let create = |user: &'static str| {
        let proxy = &proxy;
        async move {
            proxy
                .client
                .post(proxy.api("/sessions"))
                .json(&json!({"user": user, "token_sha256": sha256_hex(&random_token()), "ttl_seconds": 600}))
                .send()
                .await
                .unwrap()
        }
    };
    let mut alice = Vec::new();
    for _ in 0..3 {
        let r = create("alice").await;
        assert_eq!(r.status(), 201);
        alice.push(r.json::<Value>().await.unwrap());
    }
    let refused = create("alice").await;
    assert_eq!(refused.status(), 429);
    assert_eq!(refused.headers()["retry-after"], "60");
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"], "too_many_sessions", "{body}");
    assert!(body["detail"].as_str().unwrap().contains("user"), "{body}");

    // Another user from the same login node, up to the client's quota.
    for _ in 0..2 {
        assert_eq!(create("bob").await.status(), 201);
    }
    let refused = create("bob").await;
    assert_eq!(refused.status(), 429);
    let body: Value = refused.json().await.unwrap();
    assert!(
        body["detail"].as_str().unwrap().contains("client address"),
        "{body}"
    );

    // An ended session gives its place back.
    let first = &alice[0];
    let code = proxy
        .delete(
            first["alias"].as_str().unwrap(),
            first["register_secret"].as_str().unwrap(),
        )
        .await;
    assert_eq!(code, 204);
    assert_eq!(create("alice").await.status(), 201);

    // And the whole proxy has a ceiling of its own.
    let small = Proxy::start(Options {
        extra: "[limits]\nmax_sessions = 2\n".into(),
        ..Options::default()
    });
    for user in ["carol", "dave"] {
        small.create_as(user).await;
    }
    let r = small
        .client
        .post(small.api("/sessions"))
        .json(&json!({"user": "erin", "token_sha256": sha256_hex("t"), "ttl_seconds": 60}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
}

async fn activity_says_when_a_request_last_reached_jupyter(options: Options) {
    let proxy = Proxy::start(options);
    let backend = http_backend("jupyter").await;
    let token = random_token();
    let s = proxy.ready_session(&token, backend.port()).await;
    let activity = |secret: String| {
        proxy
            .client
            .post(proxy.api(&format!("/sessions/{}/activity", s.alias)))
            .json(&json!({ "secret": secret }))
            .send()
    };
    assert_eq!(activity("wrong".into()).await.unwrap().status(), 403);
    let before: Value = activity(s.register_secret.clone())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(before, json!({"last_request_at": null}), "no request yet");

    // Refused at the edge: not use of the notebook.
    let refused = proxy.get(proxy.url(&s.alias, "/lab")).await;
    assert_eq!(refused.status(), 403);
    let after_refused: Value = activity(s.register_secret.clone())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(after_refused, before);

    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let passed = proxy
        .get(proxy.url(&s.alias, &format!("/lab?token={token}")))
        .await;
    assert_eq!(passed.status(), 200);
    let after: Value = activity(s.register_secret.clone())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let at = after["last_request_at"].as_u64().expect("a time");
    assert!((now..=now + 2).contains(&at), "{at} vs {now}");
}

async fn an_ended_session_keeps_its_first_reason_and_its_page_says_it(options: Options) {
    let proxy = Proxy::start(options);
    let backend = http_backend("jupyter").await;
    let token = random_token();
    let s = proxy.ready_session(&token, backend.port()).await;
    let delete = |reason: &str| {
        proxy
            .client
            .delete(proxy.api(&format!("/sessions/{}", s.alias)))
            .json(&json!({ "secret": s.register_secret, "reason": reason }))
            .send()
    };
    assert_eq!(
        delete("sleepy").await.unwrap().status(),
        422,
        "not a reason"
    );
    assert_eq!(delete("idle").await.unwrap().status(), 204);
    assert_eq!(delete("jupyter-exited").await.unwrap().status(), 204);
    let (code, status) = proxy.status(&s.alias, "").await;
    assert_eq!(code, 200);
    assert_eq!(
        (&status["state"], &status["end_reason"]),
        (&json!("ended"), &json!("idle"))
    );
    let page = proxy
        .get(proxy.url(&s.alias, &format!("/?token={token}")))
        .await;
    assert_eq!(page.status(), 404);
    let body = page.text().await.unwrap();
    assert!(
        body.contains("nobody used it for its idle timeout"),
        "{body}"
    );
}

/// POST .../restart, as a requeued job's new run calls it.
async fn restart(proxy: &Proxy, alias: &str, job_id: &str, secret: &str) -> (u16, Value) {
    let response = proxy
        .client
        .post(proxy.api(&format!("/sessions/{alias}/restart")))
        .json(&json!({"job_id": job_id, "secret": secret}))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// A job the scheduler started again after its node failed: the session
/// waits for the new run and then routes to it, on the same alias and
/// token; only the same job, with its secret, once the old run is gone.
async fn a_requeued_job_takes_its_session_to_its_new_run(options: Options) {
    let proxy = Proxy::start(options);
    let first = http_backend("first-run").await;
    let token = random_token();
    let s = proxy.create(&token, 600).await;
    assert_eq!(
        link(&proxy, &s.alias, "4711", &s.register_secret).await,
        204
    );
    let registered = proxy
        .register(&s.alias, first.port(), &s.register_secret)
        .await;
    assert_eq!(registered.status(), 200);

    let (code, body) = restart(&proxy, &s.alias, "4711", &s.register_secret).await;
    assert_eq!(code, 409, "the first run still answers: {body}");
    first.kill();
    let (code, _) = restart(&proxy, &s.alias, "4711", "not-the-secret").await;
    assert_eq!(code, 403);
    let (code, body) = restart(&proxy, &s.alias, "4712", &s.register_secret).await;
    assert_eq!(code, 409, "another job: {body}");
    let (code, body) = restart(&proxy, &s.alias, "4711", &s.register_secret).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        (&body["state"], &body["restarted"]),
        (&json!("pending"), &json!(true))
    );
    let page = proxy
        .get(proxy.url(&s.alias, &format!("/?token={token}")))
        .await;
    assert_eq!(page.status(), 503);
    let text = page.text().await.unwrap();
    assert!(text.contains("restarting on another node"), "{text}");

    let second = http_backend("second-run").await;
    let registered = proxy
        .register(&s.alias, second.port(), &s.register_secret)
        .await;
    assert_eq!(registered.status(), 200);
    let again = proxy
        .register(&s.alias, second.port(), &s.register_secret)
        .await;
    assert_eq!(again.status(), 409, "once per run");
    let r = proxy
        .get(proxy.url(&s.alias, &format!("/?token={token}")))
        .await;
    assert_eq!(r.text().await.unwrap(), "hello from second-run path=/");

    // A session that ended for another reason stays ended.
    assert_eq!(proxy.delete(&s.alias, &s.register_secret).await, 204);
    second.kill();
    let (code, _) = restart(&proxy, &s.alias, "4711", &s.register_secret).await;
    assert_eq!(code, 409);
}

/// A launch that reserved a session and never linked a job (it died, or
/// gave up while the proxy was away) does not hold a quota slot for long.
async fn a_session_no_job_was_linked_to_ends_as_never_submitted(options: Options) {
    let proxy = Proxy::start(Options {
        extra: format!("{}\nunlinked_session_s = 1\n", options.extra),
        ..options
    });
    let abandoned = proxy.create(&random_token(), 600).await;
    let submitted = proxy.create(&random_token(), 600).await;
    let linked = link(&proxy, &submitted.alias, "12", &submitted.register_secret).await;
    assert_eq!(linked, 204);
    let ended = crate::support::eventually(Duration::from_secs(10), || async {
        proxy.status(&abandoned.alias, "").await.1["state"] == "ended"
    })
    .await;
    assert!(ended, "an unlinked session still pending");
    let (_, status) = proxy.status(&abandoned.alias, "").await;
    assert_eq!(status["end_reason"], "never-submitted", "{status}");
    let (_, status) = proxy.status(&submitted.alias, "").await;
    assert_eq!(
        status["state"], "pending",
        "a linked session waits for its job"
    );
}

/// Each test above twice: on the proxy's own SQLite file, and on a private
/// PostgreSQL cluster (the promises are the store's, whichever backend).
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test]
            async fn sqlite() {
                super::$name(super::Options::default()).await
            }

            #[tokio::test]
            async fn postgres() {
                let Some((_cluster, options)) = super::super::postgres::on_postgres() else {
                    return;
                };
                super::$name(options).await
            }
        }
    )*};
}

on_both_backends!(
    second_registration_is_409_and_backend_is_the_caller,
    a_backend_address_routes_to_one_live_session_at_a_time,
    link_job_and_status,
    long_poll_answers_the_moment_registration_lands,
    activity_says_when_a_request_last_reached_jupyter,
    an_ended_session_keeps_its_first_reason_and_its_page_says_it,
    a_requeued_job_takes_its_session_to_its_new_run,
    a_session_no_job_was_linked_to_ends_as_never_submitted,
);

/// A job that fails before Jupyter registers ends its session from its
/// node: before a backend is known, any host a backend may be on may end
/// it with its secret; others may not.
#[tokio::test]
async fn a_job_that_fails_before_registering_ends_its_session_from_its_node() {
    let proxy = Proxy::start(Options {
        allowed_backend_cidrs: r#"["127.0.0.2/32"]"#.into(),
        ..Options::default()
    });
    let s = proxy.create(&random_token(), 600).await;
    let delete_from = |ip: [u8; 4]| {
        let client = client_for(&proxy.ca, Some(IpAddr::from(ip)));
        let url = proxy.api(&format!("/sessions/{}", s.alias));
        let body = json!({"secret": s.register_secret, "reason": "job-failed"});
        async move {
            client
                .delete(url)
                .json(&body)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(
        delete_from([127, 0, 0, 3]).await,
        403,
        "neither a client nor a node"
    );
    let (_, status) = proxy.status(&s.alias, "").await;
    assert_eq!(status["state"], "pending");
    assert_eq!(delete_from([127, 0, 0, 2]).await, 204);
    let (_, status) = proxy.status(&s.alias, "").await;
    assert_eq!(
        (&status["state"], &status["end_reason"]),
        (&json!("ended"), &json!("job-failed"))
    );
}

/// On a proxy with `[clusters]`, every session names one of them, and its
/// backend registers only from that cluster's range.
#[tokio::test]
async fn a_session_of_one_cluster_registers_only_from_its_range() {
    let proxy = Proxy::start(Options {
        allowed_backend_cidrs: r#"["127.0.0.0/8"]"#.into(),
        extra: "[clusters.near]\nallowed_backend_cidrs = [\"127.0.0.1/32\"]\n\
                [clusters.far]\nallowed_backend_cidrs = [\"127.0.0.2/32\"]\n"
            .into(),
        ..Options::default()
    });
    let backend = http_backend("one").await;
    let create = |cluster: Option<&str>| {
        let mut body = json!({"user": "alice", "token_sha256": sha256_hex("t"), "ttl_seconds": 60});
        if let Some(cluster) = cluster {
            body["cluster"] = json!(cluster);
        }
        proxy.client.post(proxy.api("/sessions")).json(&body).send()
    };
    for refused in [None, Some("elsewhere")] {
        let response = create(refused).await.unwrap();
        assert_eq!(response.status(), 422, "{refused:?}");
        let body: Value = response.json().await.unwrap();
        assert!(
            body["detail"]
                .as_str()
                .unwrap()
                .contains("cluster must be one of this proxy's: far, near"),
            "{body}"
        );
    }
    // A session of `far` from 127.0.0.1, which is `near`'s: refused.
    let far: Value = create(Some("far")).await.unwrap().json().await.unwrap();
    let alias = far["alias"].as_str().unwrap();
    let secret = far["register_secret"].as_str().unwrap();
    let response = proxy.register(alias, backend.port(), secret).await;
    assert_eq!(response.status(), 403);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("127.0.0.1 is not in cluster far's allowed_backend_cidrs"),
        "{body}"
    );
    // And one of `near` from there: registered.
    let near: Value = create(Some("near")).await.unwrap().json().await.unwrap();
    let response = proxy
        .register(
            near["alias"].as_str().unwrap(),
            backend.port(),
            near["register_secret"].as_str().unwrap(),
        )
        .await;
    assert_eq!(response.status(), 200);
}
