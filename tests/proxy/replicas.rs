//! Two `jrps serve` replicas on one private PostgreSQL database: a session
//! made through one serves through the other, the once-only promises hold
//! across them, a killed replica's work moves, and a database outage costs
//! the API, not the routes already known.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use super::backends::http_backend;
use super::harness::{Options, Proxy, TestCa, edge_cookie, random_token, sha256_hex};
use super::postgres::PgCluster;
use crate::support::eventually;

pub(crate) struct Replicas {
    pub cluster: PgCluster,
    pub ca: Arc<TestCa>,
    /// Both replicas' options but the folder and address: one database, one
    /// cookie key.
    pub options: Options,
    pub a: Proxy,
    pub b: Proxy,
    /// Holds the shared cookie key.
    pub _shared: tempfile::TempDir,
}

impl Replicas {
    /// Two replicas started at once on a new database (so both run the
    /// schema migration concurrently), with `extra` in both proxy.toml.
    pub fn start(extra: &str) -> Option<Replicas> {
        Self::start_each(extra, extra)
    }

    /// As [`Replicas::start`], with `extra_a` in A's proxy.toml and
    /// `extra_b` in B's (`options` are A's).
    pub fn start_each(extra_a: &str, extra_b: &str) -> Option<Replicas> {
        let (cluster, shared, options) = Self::prepare(extra_a)?;
        let options_b = Options {
            extra: extra_b.into(),
            ..options.clone()
        };
        let ca = Arc::new(TestCa::new());
        let (a, b) = std::thread::scope(|scope| {
            let a = scope.spawn(|| replica(&ca, &options));
            let b = scope.spawn(|| replica(&ca, &options_b));
            (a.join().unwrap(), b.join().unwrap())
        });
        Some(Replicas {
            cluster,
            ca,
            options,
            a,
            b,
            _shared: shared,
        })
    }

    /// As [`Replicas::start`], on one port of two loopback addresses (A on
    /// 127.0.0.1, B on 127.0.0.2), as replicas behind one DNS name are: a
    /// launcher's `proxy_url` names one port for all of them.
    pub fn start_on_one_port(extra: &str) -> Option<Replicas> {
        let (cluster, shared, options) = Self::prepare(extra)?;
        let ca = Arc::new(TestCa::new());
        let a = replica(&ca, &options);
        let b = replica(
            &ca,
            &Options {
                listen: std::net::SocketAddr::from(([127, 0, 0, 2], a.addr.port())),
                ..options.clone()
            },
        );
        Some(Replicas {
            cluster,
            ca,
            options,
            a,
            b,
            _shared: shared,
        })
    }

    fn prepare(extra: &str) -> Option<(PgCluster, tempfile::TempDir, Options)> {
        let cluster = PgCluster::start()?;
        let shared = tempfile::tempdir().unwrap();
        let options = Options {
            state: cluster.database("jrps"),
            cookie_key: Some(shared.path().join("cookie.key")),
            allowed_backend_cidrs: r#"["127.0.0.0/8"]"#.into(),
            extra: extra.into(),
            ..Options::default()
        };
        Some((cluster, shared, options))
    }

    /// A killed replica started again in its folder, on its address.
    pub fn restart(ca: &Arc<TestCa>, options: &Options, killed: &Proxy) -> Proxy {
        Proxy::start_in(
            killed.dir.clone(),
            ca.clone(),
            Options {
                listen: killed.addr,
                ..options.clone()
            },
        )
    }
}

fn replica(ca: &Arc<TestCa>, options: &Options) -> Proxy {
    Proxy::start_in(
        Arc::new(tempfile::tempdir().unwrap()),
        ca.clone(),
        options.clone(),
    )
}

async fn state_of(proxy: &Proxy, alias: &str) -> String {
    let (code, body) = proxy.status(alias, "").await;
    match code {
        200 => body["state"].as_str().unwrap_or_default().to_owned(),
        other => other.to_string(),
    }
}

async fn has_duty(proxy: &Proxy) -> bool {
    proxy.metrics().await.lines().any(|l| l == "jrps_duty 1")
}

/// How many replicas hold the duty lock, once one has taken it (each tries
/// at start).
async fn duty_holders(r: &Replicas) -> usize {
    assert!(
        eventually(Duration::from_secs(5), || async {
            has_duty(&r.a).await || has_duty(&r.b).await
        })
        .await,
        "neither replica took the duty lock"
    );
    usize::from(has_duty(&r.a).await) + usize::from(has_duty(&r.b).await)
}

/// A GET of `path` on `alias` through `proxy` with only the edge cookie.
async fn with_cookie(proxy: &Proxy, alias: &str, cookie: &(String, String)) -> u16 {
    proxy
        .client
        .get(proxy.url(alias, "/notebook"))
        .header("cookie", format!("{}={}", cookie.0, cookie.1))
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

#[tokio::test]
async fn created_on_one_replica_registered_on_the_other_and_one_cookie_opens_both() {
    let Some(r) = Replicas::start("") else {
        return;
    };
    let backend = http_backend("lab").await;
    let token = random_token();
    let created = r.a.create(&token, 600).await;
    let registered =
        r.b.register(&created.alias, backend.port(), &created.register_secret)
            .await;
    assert_eq!(registered.status(), 200);
    assert!(
        eventually(Duration::from_secs(5), || async {
            state_of(&r.a, &created.alias).await == "ready"
        })
        .await,
        "A never saw the registration made through B"
    );
    let cookie = edge_cookie(&r.a, &created.alias, &token).await;
    for proxy in [&r.a, &r.b] {
        let response = proxy
            .client
            .get(proxy.url(&created.alias, "/lab"))
            .header("cookie", format!("{}={}", cookie.0, cookie.1))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "through {}", proxy.addr);
        assert!(response.text().await.unwrap().starts_with("hello from lab"));
    }
    assert_eq!(duty_holders(&r).await, 1);
}

#[tokio::test]
async fn of_fifty_concurrent_registers_over_both_replicas_exactly_one_wins() {
    let Some(r) = Replicas::start("") else {
        return;
    };
    let backend = http_backend("lab").await;
    let port = backend.port();
    let created = r.a.create(&random_token(), 600).await;
    let registers = (0..50).map(|i| {
        let proxy = if i % 2 == 0 { &r.a } else { &r.b };
        let (alias, secret) = (&created.alias, &created.register_secret);
        async move { proxy.register(alias, port, secret).await.status() }
    });
    let statuses = futures_util::future::join_all(registers).await;
    let won = statuses.iter().filter(|s| s.as_u16() == 200).count();
    let refused = statuses.iter().filter(|s| s.as_u16() == 409).count();
    assert_eq!((won, refused), (1, 49), "{statuses:?}");
}

#[tokio::test]
async fn the_per_user_quota_counts_sessions_on_every_replica() {
    let Some(r) = Replicas::start("[limits]\nmax_sessions_per_user = 2\n") else {
        return;
    };
    r.a.create_as("ann").await;
    r.b.create_as("ann").await;
    let third =
        r.a.client
            .post(r.a.api("/sessions"))
            .json(&json!({"user": "ann", "token_sha256": sha256_hex("t"), "ttl_seconds": 60}))
            .send()
            .await
            .unwrap();
    assert_eq!(third.status(), 429);
    r.b.create_as("bob").await;
}

#[tokio::test]
async fn a_killed_replica_s_sessions_serve_through_the_other_and_its_restart_catches_up() {
    let Some(mut r) = Replicas::start("") else {
        return;
    };
    // A is the one holding the duty lock, so that killing it shows the
    // sweeps moving.
    assert_eq!(duty_holders(&r).await, 1);
    if !has_duty(&r.a).await {
        std::mem::swap(&mut r.a, &mut r.b);
    }
    let backend = http_backend("lab").await;
    let token = random_token();
    let first = r.a.ready_session(&token, backend.port()).await;
    let cookie = edge_cookie(&r.a, &first.alias, &token).await;
    assert!(
        eventually(Duration::from_secs(5), || async {
            state_of(&r.b, &first.alias).await == "ready"
        })
        .await
    );

    r.a.child.kill().unwrap();
    r.a.child.wait().unwrap();
    let killed = Instant::now();
    assert_eq!(with_cookie(&r.b, &first.alias, &cookie).await, 200);
    assert!(
        eventually(Duration::from_secs(10), || has_duty(&r.b)).await,
        "B never took the sweeps over"
    );
    eprintln!("duty moved to B {:?} after A was killed", killed.elapsed());

    // While A is down, B takes new sessions (a second backend: one live
    // route per address).
    let second_backend = http_backend("second").await;
    let second_token = random_token();
    let second =
        r.b.ready_session(&second_token, second_backend.port())
            .await;
    r.a = Replicas::restart(&r.ca, &r.options, &r.a);
    for (session, token) in [(&first, &token), (&second, &second_token)] {
        let response =
            r.a.get(r.a.url(&session.alias, &format!("/?token={token}")))
                .await;
        assert_eq!(
            response.status(),
            200,
            "{} through the restarted A",
            session.alias
        );
    }
    assert_eq!(with_cookie(&r.a, &first.alias, &cookie).await, 200);
}

#[tokio::test]
async fn a_database_outage_costs_the_api_not_the_routes_already_known() {
    let Some(mut r) = Replicas::start("") else {
        return;
    };
    let backend = http_backend("lab").await;
    let token = random_token();
    let known = r.a.ready_session(&token, backend.port()).await;
    let cookie = edge_cookie(&r.a, &known.alias, &token).await;
    assert!(
        eventually(Duration::from_secs(5), || async {
            state_of(&r.b, &known.alias).await == "ready"
        })
        .await
    );

    r.cluster.stop();
    let create = || async {
        r.a.client
            .post(r.a.api("/sessions"))
            .json(&json!({"user": "ann", "token_sha256": sha256_hex("t"), "ttl_seconds": 60}))
            .send()
            .await
            .unwrap()
    };
    let refused = create().await;
    assert_eq!(refused.status(), 503);
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(body["error"], "unavailable", "{body}");
    assert!(
        r.a.log().contains("state database unreachable"),
        "{}",
        r.a.log()
    );
    let health = r.a.get(r.a.url("manage", "/healthz")).await;
    assert_eq!(health.status(), 200);
    assert!(health.text().await.unwrap().contains("unreachable"));
    // Known routes are served throughout, through both replicas, while
    // their followers fail to reconnect.
    let outage = Instant::now();
    while outage.elapsed() < Duration::from_secs(3) {
        for proxy in [&r.a, &r.b] {
            assert_eq!(with_cookie(proxy, &known.alias, &cookie).await, 200);
        }
    }

    r.cluster.resume();
    let back = Instant::now();
    assert!(
        eventually(Duration::from_secs(20), || async {
            create().await.status() == 201
        })
        .await,
        "the API did not come back"
    );
    eprintln!(
        "API answering again {:?} after the database",
        back.elapsed()
    );
    // And the replicas follow each other again.
    let second_backend = http_backend("second").await;
    let after =
        r.b.ready_session(&random_token(), second_backend.port())
            .await;
    assert!(
        eventually(Duration::from_secs(10), || async {
            state_of(&r.a, &after.alias).await == "ready"
        })
        .await,
        "A stopped following B"
    );
    assert_eq!(with_cookie(&r.a, &known.alias, &cookie).await, 200);
}

/// Expiry is recorded once: by the replica holding the duty lock, and a
/// session ends once whichever replica would end it.
#[tokio::test]
async fn an_expired_session_is_ended_once_across_replicas() {
    let Some(r) = Replicas::start("audit_log = \"audit.log\"\n") else {
        return;
    };
    let created = r.a.create(&random_token(), 1).await;
    assert!(
        eventually(Duration::from_secs(10), || async {
            ended_in_memory(&r.a).await && ended_in_memory(&r.b).await
        })
        .await,
        "the expiry did not reach both replicas"
    );
    let ended_lines: usize = [&r.a, &r.b]
        .iter()
        .map(|p| {
            std::fs::read_to_string(p.dir.path().join("audit.log"))
                .unwrap_or_default()
                .lines()
                .filter(|l| l.contains("\"ended\"") && l.contains(&created.alias))
                .count()
        })
        .sum();
    assert_eq!(ended_lines, 1);
}

async fn ended_in_memory(proxy: &Proxy) -> bool {
    proxy
        .metrics()
        .await
        .lines()
        .any(|l| l == "jrps_sessions{state=\"ended\"} 1")
}

#[tokio::test]
async fn a_replica_with_another_cookie_key_refuses_to_start() {
    let Some(r) = Replicas::start("") else {
        return;
    };
    let (code, stderr) = serve_to_exit(&r.options.state, "other.key");
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("cookie_key") && stderr.contains("every replica"),
        "{stderr}"
    );
}

/// `jrps serve` on `state` with `cookie_key`, in a folder of its own, for
/// a start that must fail: its exit code and stderr (within 30 s).
fn serve_to_exit(state: &str, cookie_key: &str) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("proxy.toml");
    std::fs::write(
        &config,
        format!(
            "domain = \"jrps.localhost\"\nlisten = \"127.0.0.1:0\"\nstate = {state:?}\n\
             cookie_key = {cookie_key:?}\nallowed_client_cidrs = [\"127.0.0.1/32\"]\n\
             allowed_backend_cidrs = [\"127.0.0.1/32\"]\n"
        ),
    )
    .unwrap();
    let output = super::harness::serve_refused("--config", &config);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output.status.code(), stderr)
}

/// TLS to the database: with `sslmode=verify-full` the proxy's connections
/// are encrypted and the server's certificate is checked against
/// `sslrootcert`; a server whose certificate another CA signed is refused.
#[tokio::test]
async fn the_database_connection_uses_tls_and_checks_the_certificate_when_asked() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let server_ca = TestCa::for_names(&["127.0.0.1"]);
    let certs = tempfile::tempdir().unwrap();
    let cert = certs.path().join("server.crt");
    let key = certs.path().join("server.key");
    std::fs::write(&cert, &server_ca.cert_pem).unwrap();
    std::fs::write(&key, &server_ca.key_pem).unwrap();
    let owned_by_server = |path: &PathBuf| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
        if rustix::process::geteuid().is_root() {
            assert!(
                Command::new("chown")
                    .arg("postgres:postgres")
                    .arg(path)
                    .status()
                    .unwrap()
                    .success()
            );
        }
    };
    owned_by_server(&cert);
    owned_by_server(&key);
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(certs.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let settings = [
        "ssl=on".to_owned(),
        format!("ssl_cert_file={}", cert.display()),
        format!("ssl_key_file={}", key.display()),
    ];
    let settings: Vec<&str> = settings.iter().map(String::as_str).collect();
    let Some(cluster) = PgCluster::start_with(Some(port), &settings) else {
        return;
    };
    cluster.database("jrps");
    let root = certs.path().join("root.pem");
    std::fs::write(&root, &server_ca.ca_pem).unwrap();
    let url = |root: &std::path::Path| {
        format!(
            "postgres://jrps@127.0.0.1:{port}/jrps?sslmode=verify-full&sslrootcert={}",
            root.display()
        )
    };
    let proxy = Proxy::start(Options {
        state: url(&root),
        cookie_key: Some("cookie.key".into()),
        ..Options::default()
    });
    proxy.create(&random_token(), 60).await;
    let encrypted = cluster.psql(
        "postgres",
        "SELECT bool_and(s.ssl) || ' ' || count(*) FROM pg_stat_ssl s \
         JOIN pg_stat_activity a USING (pid) WHERE a.application_name = 'jrps serve'",
    );
    let (all_tls, connections) = encrypted.trim().split_once(' ').unwrap();
    assert_eq!(all_tls, "true", "{encrypted}");
    assert!(connections.parse::<u32>().unwrap() >= 2, "{encrypted}");

    let stranger = certs.path().join("stranger.pem");
    std::fs::write(&stranger, TestCa::new().ca_pem).unwrap();
    let (code, stderr) = serve_to_exit(&url(&stranger), "cookie.key");
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.to_lowercase().contains("certificate"), "{stderr}");
}

/// Runs `sql` on the replicas' database with the notifying trigger off:
/// nothing tells them, as when a change lands while they are not listening.
fn change_unannounced(r: &Replicas, sql: &str) {
    r.cluster.psql(
        "jrps",
        &format!(
            "ALTER TABLE sessions DISABLE TRIGGER sessions_changed; {sql}; \
             ALTER TABLE sessions ENABLE TRIGGER sessions_changed"
        ),
    );
}

/// Ends every replica's database connections; they reconnect.
fn cut_connections(r: &Replicas) {
    r.cluster.psql(
        "postgres",
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
         WHERE application_name = 'jrps serve'",
    );
}

async fn both_come_to(r: &Replicas, alias: &str, state: &str) {
    for proxy in [&r.a, &r.b] {
        assert!(
            eventually(Duration::from_secs(10), || async {
                state_of(proxy, alias).await == state
            })
            .await,
            "{} never showed {alias} {state}",
            proxy.addr
        );
    }
}

/// A session registered through A, once both replicas show it ready.
async fn ready_on_both(r: &Replicas) -> (super::backends::Backend, jrps::api::SessionCreated) {
    let backend = http_backend("lab").await;
    let created = r.a.ready_session(&random_token(), backend.port()).await;
    both_come_to(r, &created.alias, "ready").await;
    (backend, created)
}

/// A change made while the replicas were not listening reaches memory when
/// they reconnect: they reload what they missed.
#[tokio::test]
async fn a_replica_that_reconnects_catches_up_on_what_it_missed() {
    let Some(r) = Replicas::start("") else {
        return;
    };
    let (_backend, created) = ready_on_both(&r).await;
    change_unannounced(
        &r,
        &format!(
            "UPDATE sessions SET state = 'ended', end_reason = 'cancelled', \
                 ended_at = extract(epoch FROM now())::bigint, \
                 revision = nextval('session_revisions') \
             WHERE alias = '{}'",
            created.alias
        ),
    );
    for proxy in [&r.a, &r.b] {
        assert_eq!(
            state_of(proxy, &created.alias).await,
            "ready",
            "no news yet"
        );
    }
    cut_connections(&r);
    both_come_to(&r, &created.alias, "ended").await;
}

/// A database put back to an earlier state (a restore; here its rows and
/// revision sequence set back by hand) wins over memory that is ahead of it.
#[tokio::test]
async fn a_database_that_went_back_in_time_is_taken_as_it_is() {
    let Some(r) = Replicas::start("") else {
        return;
    };
    let (backend, created) = ready_on_both(&r).await;
    change_unannounced(
        &r,
        &format!(
            "UPDATE sessions SET state = 'pending', backend = NULL, registered_at = NULL, \
                 revision = 1 WHERE alias = '{}'; \
             SELECT setval('session_revisions', 1, true)",
            created.alias
        ),
    );
    cut_connections(&r);
    both_come_to(&r, &created.alias, "pending").await;
    // And the sessions go on from there: it registers again.
    let again =
        r.b.register(&created.alias, backend.port(), &created.register_secret)
            .await;
    assert_eq!(again.status(), 200);
    both_come_to(&r, &created.alias, "ready").await;
}

/// Quotas count only sessions that have not expired, whoever holds the duty
/// lock: here another connection to the database holds it, so no replica
/// sweeps, and two expired sessions must still not keep a third out.
#[tokio::test]
async fn expired_sessions_count_for_no_quota_while_nobody_sweeps() {
    let Some(cluster) = PgCluster::start() else {
        return;
    };
    let state = cluster.database("jrps");
    // A connection that is not a replica takes the duty lock first and keeps it.
    let mut holder = cluster.psql_session(
        "jrps",
        &[
            "SELECT pg_advisory_lock(117039745400835)",
            "SELECT pg_sleep(120)",
        ],
    );
    let held = eventually(Duration::from_secs(10), || async {
        cluster.psql(
            "jrps",
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'",
        ) == "1\n"
    })
    .await;
    assert!(held, "the stranger never took the lock");
    let proxy = Proxy::start(Options {
        state,
        cookie_key: Some("cookie.key".into()),
        extra: "[limits]\nmax_sessions_per_user = 2\n".into(),
        ..Options::default()
    });
    proxy.create(&random_token(), 1).await;
    proxy.create(&random_token(), 1).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let third = proxy
        .client
        .post(proxy.api("/sessions"))
        .json(&json!({"user": "alice", "token_sha256": sha256_hex("t"), "ttl_seconds": 60}))
        .send()
        .await
        .unwrap();
    assert_eq!(third.status(), 201, "expired sessions still counted");
    // And the operator is told that nobody sweeps.
    let told = eventually(Duration::from_secs(20), || async {
        let health = proxy.get(proxy.url("manage", "/healthz")).await;
        health.status() == 200
            && health
                .text()
                .await
                .unwrap()
                .contains("no replica has held the duty lock")
    })
    .await;
    assert!(told, "/healthz never said that no replica holds duty");
    let metrics = proxy.metrics().await;
    assert!(
        !metrics.contains("jrps_duty_lapse_seconds 0\n"),
        "{metrics}"
    );
    let _ = holder.kill();
    let _ = holder.wait();
}

/// A database every role may connect to is refused at start, with the SQL
/// that fixes it, unless the operator says the roles are trusted.
#[tokio::test]
async fn a_database_every_role_may_connect_to_is_refused_with_the_fix() {
    let Some(cluster) = PgCluster::start() else {
        return;
    };
    // Made as `CREATE DATABASE … OWNER jrps` leaves it: CONNECT for PUBLIC.
    cluster.psql("postgres", "CREATE DATABASE open");
    let state = cluster.url("open");
    let (code, said) = serve_to_exit(&state, "cookie.key");
    assert_eq!(code, Some(2), "{said}");
    assert!(
        said.contains("REVOKE CONNECT, TEMPORARY ON DATABASE \"open\" FROM PUBLIC;"),
        "{said}"
    );
    // Fixed as it says, it starts.
    cluster.psql(
        "postgres",
        "REVOKE CONNECT, TEMPORARY ON DATABASE open FROM PUBLIC",
    );
    let proxy = Proxy::start(Options {
        state,
        cookie_key: Some("cookie.key".into()),
        ..Options::default()
    });
    proxy.create(&random_token(), 60).await;
}

/// Another role that may connect and create in `public` plants
/// `public.nextval(text)`, the CVE-2018-1058 pattern: jrps never calls it,
/// because jrps's objects and path are a schema only jrps's role owns.
#[tokio::test]
async fn a_function_another_role_plants_in_public_is_never_called() {
    let Some(cluster) = PgCluster::start() else {
        return;
    };
    let state = cluster.database("jrps");
    cluster.psql(
        "jrps",
        "CREATE ROLE mallory LOGIN; GRANT CONNECT ON DATABASE jrps TO mallory; \
         GRANT CREATE, USAGE ON SCHEMA public TO mallory; \
         CREATE TABLE public.called (at timestamptz DEFAULT now()); \
         GRANT INSERT ON public.called TO PUBLIC;",
    );
    cluster.psql_as(
        "mallory",
        "jrps",
        "CREATE FUNCTION public.nextval(text) RETURNS bigint LANGUAGE sql \
         AS $$ INSERT INTO public.called DEFAULT VALUES; SELECT 424242::bigint $$",
    );
    let proxy = Proxy::start(Options {
        state,
        cookie_key: Some("cookie.key".into()),
        ..Options::default()
    });
    let backend = http_backend("jupyter").await;
    let token = random_token();
    let s = proxy.ready_session(&token, backend.port()).await;
    assert_eq!(proxy.delete(&s.alias, &s.register_secret).await, 204);
    assert_eq!(
        cluster.psql("jrps", "SELECT count(*) FROM public.called"),
        "0\n"
    );
    let revisions = cluster.psql("jrps", "SELECT max(revision) FROM jrps.sessions");
    assert_ne!(
        revisions.trim(),
        "424242",
        "a planted function made the revision"
    );
    // And the trigger, too, names only pg_catalog's functions.
    let trigger = cluster.psql(
        "jrps",
        "SELECT prosrc FROM pg_proc WHERE proname = 'jrps_session_changed'",
    );
    assert!(trigger.contains("pg_catalog.pg_notify"), "{trigger}");
}

/// A database from before jrps had a schema of its own (its tables and
/// refinery's history in `public`) moves in place at start: its sessions
/// are still there, now in `jrps`.
#[tokio::test]
async fn a_database_from_before_the_schema_moves_in_place_with_its_sessions() {
    let Some(cluster) = PgCluster::start() else {
        return;
    };
    // The history row V1 leaves, read from a database migrated now.
    let scratch = cluster.database("scratch");
    drop(Proxy::start(Options {
        state: scratch,
        cookie_key: Some("cookie.key".into()),
        ..Options::default()
    }));
    let v1 = cluster.psql(
        "scratch",
        "SELECT format('%s, %L, %L, %L', version, name, applied_on, checksum) \
         FROM jrps.refinery_schema_history WHERE version = 1",
    );
    let state = cluster.database("old");
    let v1_sql = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("migrations/postgres/V1__sessions.sql"),
    )
    .unwrap();
    cluster.psql("old", &format!("SET search_path = public; {v1_sql}"));
    cluster.psql(
        "old",
        &format!(
            "CREATE TABLE public.refinery_schema_history (version INT4 PRIMARY KEY, \
             name VARCHAR(255), applied_on VARCHAR(255), checksum VARCHAR(255)); \
             INSERT INTO public.refinery_schema_history VALUES ({}); \
             INSERT INTO public.sessions (alias, \"user\", token_sha256, secret_sha256, cookie, \
             state, created_at, expires_at) VALUES ('amber-otter-lagoon', 'ann', \
             decode(repeat('00', 32), 'hex'), decode(repeat('00', 32), 'hex'), \
             decode(repeat('00', 32), 'hex'), 'pending', \
             extract(epoch FROM now())::bigint, extract(epoch FROM now())::bigint + 600)",
            v1.trim()
        ),
    );
    let proxy = Proxy::start(Options {
        state,
        cookie_key: Some("cookie.key".into()),
        ..Options::default()
    });
    let (code, status) = proxy.status("amber-otter-lagoon", "").await;
    assert_eq!(
        (code, &status["state"]),
        (200, &json!("pending")),
        "{status}"
    );
    assert_eq!(
        cluster.psql("old", "SELECT count(*) FROM jrps.sessions"),
        "1\n"
    );
    assert_eq!(
        cluster.psql(
            "old",
            "SELECT pg_catalog.to_regclass('public.sessions') IS NULL"
        ),
        "t\n"
    );
    proxy.create(&random_token(), 60).await;
}
