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
