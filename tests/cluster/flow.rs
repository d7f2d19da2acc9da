//! The happy path as a centre runs it: two researchers launch at once from
//! the login node, each kernel answers through the proxy from the client
//! host, and neither can reach the other's session by any door.

use super::{Cluster, Launched, on_client};
use crate::proxy::jupyter::run_code;

/// `curl` on `host` as `user` against the proxy's API, with a munge
/// credential the user's own shell makes for exactly this call; prints the
/// status.
fn api_status(
    cluster: &Cluster,
    host: &str,
    user: &str,
    method: &str,
    path: &str,
    body: &str,
) -> String {
    let script = format!(
        "body='{body}'; digest=$(printf %s \"$body\" | sha256sum | cut -d' ' -f1); \
         credential=$(printf '{audience}\\n{method} /api/v1{path}\\nsha256:%s' \"$digest\" | munge); \
         curl -s -o /dev/null -w '%{{http_code}}' --cacert /var/lib/jrps-cluster/site/ca.pem \
         -X {method} -H 'content-type: application/json' -H \"authorization: Munge $credential\" \
         --data-binary \"$body\" https://manage.{}/api/v1{path}",
        super::DOMAIN,
        audience = jrps::api::AUDIENCE,
    );
    let out = cluster.on(host, Some(user), &["bash", "-c", &script]);
    out.stdout.trim().to_owned()
}

/// The port `user`'s Jupyter listens on, on `node` (root's view of the node).
fn jupyter_port(cluster: &Cluster, node: &str, user: &str) -> String {
    let uid = cluster
        .on(node, None, &["id", "-u", user])
        .stdout
        .trim()
        .to_owned();
    let sockets = cluster.on(node, None, &["ss", "-Hltne"]).stdout;
    sockets
        .lines()
        .find(|line| line.contains(&format!("uid:{uid} ")))
        .and_then(|line| line.split_whitespace().nth(3))
        .and_then(|local| local.rsplit_once(':'))
        .map(|(_, port)| port.to_owned())
        .unwrap_or_else(|| panic!("no socket of {user} (uid {uid}) listens on {node}:\n{sockets}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_users_launch_at_once_and_each_kernel_answers_from_the_client_host() {
    let Some(cluster) = Cluster::get() else {
        return;
    };
    // Debian's default hosts line is on every compute node: the address
    // Jupyter binds must not come from it.
    let loopback = cluster.on("node1", None, &["hostname", "-i"]);
    assert_eq!(
        loopback.stdout.trim(),
        "127.0.1.1",
        "{}",
        loopback.describe()
    );

    let (alice, bob) = tokio::join!(
        cluster.up_ok("alice", &["-t", "10"]),
        cluster.up_ok("bob", &["-t", "10"]),
    );

    for (user, launched) in [("alice", &alice), ("bob", &bob)] {
        let Launched { alias, token } = launched.clone();
        let edge = cluster.edge();
        let answer = on_client(move || async move { run_code(&edge, &alias, &token, "6*7").await });
        assert_eq!(
            answer.as_deref(),
            Ok("42"),
            "{user}'s kernel through the proxy"
        );
        let row = cluster.listing(user, &launched.alias).await.unwrap();
        assert_eq!(row["state"], "running", "{row}");
        assert!(
            matches!(row["node"].as_str(), Some("node1" | "node2")),
            "{row}"
        );
    }

    // Bob, on the login node, with alice's alias (which he may have seen
    // over her shoulder) but none of her files.
    let theirs = alice.alias.as_str();
    let down = cluster.jrps("bob", &["down", theirs]).await;
    assert_ne!(
        down.code,
        Some(0),
        "bob ended alice's session:\n{}",
        down.describe()
    );
    let url = cluster.jrps("bob", &["url", theirs]).await;
    assert_ne!(
        url.code,
        Some(0),
        "bob got alice's URL:\n{}",
        url.describe()
    );
    assert!(!url.stdout.contains(&alice.token), "{}", url.describe());
    let extend = cluster.jrps("bob", &["extend", theirs, "5"]).await;
    assert_ne!(
        extend.code,
        Some(0),
        "bob extended alice's session:\n{}",
        extend.describe()
    );
    let listed = cluster.jrps("bob", &["ls", "--json"]).await;
    assert!(!listed.stdout.contains(theirs), "{}", listed.describe());
    let path = format!("/sessions/{theirs}");
    for (method, path, body) in [
        ("GET", path.clone(), "{}"),
        ("DELETE", path.clone(), r#"{"secret":""}"#),
        ("POST", format!("{path}/activity"), r#"{"secret":"guess"}"#),
        ("POST", format!("{path}/extend"), r#"{"by_s":60}"#),
    ] {
        let status = api_status(cluster, "login", "bob", method, &path, body);
        assert!(
            matches!(status.as_str(), "403" | "404"),
            "bob {method} {path}: {status}"
        );
    }
    // Registering her alias from a compute node, as a job of his would.
    let register = format!("{path}/register");
    let status = api_status(
        cluster,
        "node2",
        "bob",
        "POST",
        &register,
        r#"{"port":8888,"secret":"guess"}"#,
    );
    assert!(
        matches!(status.as_str(), "403" | "404"),
        "bob registering alice's alias: {status}"
    );

    // Her Jupyter itself, straight on its node's port: the token is its
    // only door, and bob has none.
    let node = cluster.listing("alice", theirs).await.unwrap()["node"]
        .as_str()
        .unwrap()
        .to_owned();
    let port = jupyter_port(cluster, &node, "alice");
    let direct =
        format!("curl -s -o /dev/null -w '%{{http_code}}' http://{node}:{port}/api/contents");
    let status = cluster.on("login", Some("bob"), &["bash", "-c", &direct]);
    assert_eq!(
        status.stdout.trim(),
        "403",
        "bob straight to alice's Jupyter: {}",
        status.describe()
    );

    // Each ends their own; the route goes with it.
    for (user, launched) in [("alice", &alice), ("bob", &bob)] {
        let down = cluster.jrps(user, &["down", &launched.alias]).await;
        assert_eq!(down.code, Some(0), "{}", down.describe());
        let row = cluster.listing(user, &launched.alias).await.unwrap();
        assert_eq!(row["state"], "ended", "{row}");
        assert_eq!(row["end_reason"], "cancelled", "{row}");
        let (status, page) = cluster.page(&launched.alias, "/lab");
        assert_eq!(
            status, 404,
            "{user}'s ended session from the client:\n{page}"
        );
        assert!(page.contains("was cancelled"), "{page}");
    }
}
