//! `POST /api/v1/sessions/{alias}/phase` (a contract addition): the
//! launcher's report of where the job is, shown on the starting page.

use serde_json::json;

use super::harness::{Options, Proxy, random_token};

async fn report(proxy: &Proxy, alias: &str, body: serde_json::Value) -> u16 {
    proxy
        .client
        .post(proxy.api(&format!("/sessions/{alias}/phase")))
        .json(&body)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn starting_page(proxy: &Proxy, alias: &str, token: &str) -> (u16, String) {
    let response = proxy
        .get(proxy.url(alias, &format!("/?token={token}")))
        .await;
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

#[tokio::test]
async fn reported_phase_shows_on_the_starting_page() {
    let proxy = Proxy::start(Options::default());
    let token = random_token();
    let created = proxy.create(&token, 600).await;
    let (alias, secret) = (&created.alias, &created.register_secret);

    let (status, html) = starting_page(&proxy, alias, &token).await;
    assert_eq!(status, 503);
    assert!(html.contains("Jupyter is starting"), "{html}");

    let queued = json!({"secret": secret, "phase": "queued", "detail": "Priority"});
    assert_eq!(report(&proxy, alias, queued).await, 204);
    let (status, html) = starting_page(&proxy, alias, &token).await;
    assert_eq!(status, 503);
    assert!(html.contains("Waiting for a compute node"), "{html}");
    assert!(html.contains("other jobs are ahead of it"), "{html}");

    let running = json!({"secret": secret, "phase": "running", "detail": "node<042>"});
    assert_eq!(report(&proxy, alias, running).await, 204);
    let (_, html) = starting_page(&proxy, alias, &token).await;
    assert!(
        html.contains("Running on <code>node&lt;042&gt;</code>"),
        "{html}"
    );
    assert!(!html.contains("node<042>"), "HTML-escaped: {html}");
}

#[tokio::test]
async fn phase_reports_are_checked() {
    let proxy = Proxy::start(Options::default());
    let token = random_token();
    let created = proxy.create(&token, 600).await;
    let (alias, secret) = (&created.alias, &created.register_secret);

    let wrong = json!({"secret": "0".repeat(64), "phase": "queued"});
    assert_eq!(report(&proxy, alias, wrong).await, 403);
    for detail in [
        "10.0.0.7",
        "node 10.0.0.7:8888",
        "[::1]:8888",
        "tab\there",
        "ünïcode",
        &"x".repeat(65),
        "",
    ] {
        let body = json!({"secret": secret, "phase": "running", "detail": detail});
        assert_eq!(report(&proxy, alias, body).await, 422, "detail {detail:?}");
    }
    let unknown_phase = json!({"secret": secret, "phase": "dancing"});
    assert_eq!(report(&proxy, alias, unknown_phase).await, 422);
    let extra_field = json!({"secret": secret, "phase": "queued", "node": "x"});
    assert_eq!(report(&proxy, alias, extra_field).await, 422);
    let no_detail = json!({"secret": secret, "phase": "starting"});
    assert_eq!(report(&proxy, alias, no_detail).await, 204);
    let get = proxy
        .get(proxy.api(&format!("/sessions/{alias}/phase")))
        .await;
    assert_eq!(get.status(), 405);
    assert_eq!(
        report(
            &proxy,
            "amber-otter-nowhere",
            json!({"secret": secret, "phase": "queued"})
        )
        .await,
        404
    );

    // Ended: refused; the report never brings a session back.
    assert_eq!(proxy.delete(alias, secret).await, 204);
    let late = json!({"secret": secret, "phase": "queued", "detail": "Priority"});
    assert_eq!(report(&proxy, alias, late).await, 409);
}

/// The site's `[announcement]` heads every waiting page, HTML-escaped;
/// SIGHUP reads a new one from proxy.toml without a restart, and one past
/// its `until` is shown no more.
#[tokio::test]
async fn the_announcement_heads_the_waiting_page_and_sighup_changes_it() {
    let proxy = Proxy::start(Options {
        extra: "[announcement]\ntext = \"Maintenance <Saturday> 8-12\"\n".into(),
        ..Options::default()
    });
    let token = random_token();
    let created = proxy.create(&token, 600).await;
    let alias = &created.alias;
    let (status, html) = starting_page(&proxy, alias, &token).await;
    assert_eq!(status, 503);
    assert!(
        html.contains("<p class=\"announcement\">Maintenance &lt;Saturday&gt; 8-12</p>"),
        "{html}"
    );

    let config = proxy.dir.path().join("proxy.toml");
    let written = std::fs::read_to_string(&config).unwrap();
    let (before, _) = written.split_once("[announcement]").unwrap();
    let rewrite = |announcement: &str| {
        std::fs::write(&config, format!("{before}[announcement]\n{announcement}")).unwrap();
        proxy.signal("HUP");
    };
    rewrite("text = \"Back at noon\"\n");
    assert!(
        page_shows(&proxy, alias, &token, "Back at noon", true).await,
        "SIGHUP did not change it"
    );
    rewrite("text = \"Long gone\"\nuntil = 2020-01-01T00:00:00Z\n");
    assert!(
        page_shows(&proxy, alias, &token, "class=\"announcement\"", false).await,
        "an announcement past its end is still shown"
    );

    // A file that no longer parses keeps the proxy running as it was.
    rewrite("text = \"\"\n");
    let (status, _) = starting_page(&proxy, alias, &token).await;
    assert_eq!(status, 503, "{}", proxy.log());
}

/// Whether the starting page comes to contain `wanted` (or, with
/// `present` false, to lack it) within 5 s.
async fn page_shows(proxy: &Proxy, alias: &str, token: &str, wanted: &str, present: bool) -> bool {
    crate::support::eventually(std::time::Duration::from_secs(5), || async {
        starting_page(proxy, alias, token).await.1.contains(wanted) == present
    })
    .await
}
