//! The session's own channel (`/_jrps/v1/…` on its origin): answered by
//! the proxy behind the edge cookie, never forwarded; the clock the job
//! reports at registration and moves with its beats; `extend` within the
//! headroom, from the page and from the API alike.

use serde_json::{Value, json};

use super::backends::http_backend;
use super::harness::{Options, Proxy, edge_cookie, random_token};
use crate::support::unix_now;

/// A registered session whose job reported a clock: ending in 10 min,
/// with 5 min of headroom, warnings 2 and 1 min before, a save at 40 s.
async fn session_with_clock(proxy: &Proxy, port: u16) -> (String, String, String, u64) {
    let token = random_token();
    let created = proxy.create(&token, 3600).await;
    let now = unix_now();
    let ends_at = now + 600;
    let response = proxy
        .client
        .post(proxy.api(&format!("/sessions/{}/register", created.alias)))
        .json(&json!({
            "port": port,
            "secret": created.register_secret,
            "clock": {"ends_at": ends_at, "extend_until": ends_at + 300,
                      "warn_before": [120, 60], "save_before": 40}
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    (created.alias, token, created.register_secret, ends_at)
}

async fn channel(
    proxy: &Proxy,
    alias: &str,
    cookie: Option<&(String, String)>,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value, reqwest::header::HeaderMap) {
    let mut request = proxy.client.request(method, proxy.url(alias, path));
    if let Some((name, value)) = cookie {
        request = request.header("cookie", format!("{name}={value}"));
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (
        status,
        response.json().await.unwrap_or(Value::Null),
        headers,
    )
}

#[tokio::test]
async fn the_status_channel_is_the_proxys_behind_the_cookie_and_extend_stays_within_the_headroom() {
    let proxy = Proxy::start(Options {
        extra: "[announcement]\ntext = \"Maintenance on Saturday\"\n".into(),
        ..Options::default()
    });
    let backend = http_backend("jupyter").await;
    let (alias, token, secret, ends_at) = session_with_clock(&proxy, backend.port()).await;
    let cookie = edge_cookie(&proxy, &alias, &token).await;
    let get = reqwest::Method::GET;
    let post = reqwest::Method::POST;

    // Without the cookie: the proxy's 403 page, nothing about the session.
    let (status, body, _) =
        channel(&proxy, &alias, None, get.clone(), "/_jrps/v1/status", None).await;
    assert_eq!(status, 403);
    assert_eq!(body, Value::Null);

    let (status, body, headers) = channel(
        &proxy,
        &alias,
        Some(&cookie),
        get.clone(),
        "/_jrps/v1/status",
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(body["state"], "ready");
    assert_eq!(body["ends_at"], ends_at);
    assert_eq!(body["extend_until"], ends_at + 300);
    assert_eq!(body["warn_before"], json!([120, 60]));
    assert_eq!(body["save_before"], 40);
    assert_eq!(body["announcement"], "Maintenance on Saturday");
    let now = body["now"].as_u64().unwrap();
    assert!(now.abs_diff(unix_now()) <= 2, "{body}");

    // Never forwarded: an unknown path under the prefix is the proxy's 404,
    // not Jupyter's answer (the test backend answers every path with 200).
    let (status, body, _) = channel(
        &proxy,
        &alias,
        Some(&cookie),
        get.clone(),
        "/_jrps/v1/other",
        None,
    )
    .await;
    assert_eq!(status, 404, "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("the proxy's"),
        "{body}"
    );
    let (status, _, _) = channel(
        &proxy,
        &alias,
        Some(&cookie),
        get.clone(),
        "/_jrps/v1/extend",
        None,
    )
    .await;
    assert_eq!(status, 405);

    // Extend from the page: JSON only, same origin only, within the headroom.
    let form = proxy
        .client
        .post(proxy.url(&alias, "/_jrps/v1/extend"))
        .header("cookie", format!("{}={}", cookie.0, cookie.1))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("by_s=60")
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), 400);
    let cross_site = proxy
        .client
        .post(proxy.url(&alias, "/_jrps/v1/extend"))
        .header("cookie", format!("{}={}", cookie.0, cookie.1))
        .header("origin", "https://evil.example")
        .json(&json!({"by_s": 60}))
        .send()
        .await
        .unwrap();
    assert_eq!(cross_site.status(), 403);
    let (status, body, _) = channel(
        &proxy,
        &alias,
        Some(&cookie),
        post.clone(),
        "/_jrps/v1/extend",
        Some(json!({"by_s": 120})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["ends_at"], ends_at + 120);
    let (status, body, _) = channel(
        &proxy,
        &alias,
        Some(&cookie),
        post.clone(),
        "/_jrps/v1/extend",
        Some(json!({"by_s": 181})),
    )
    .await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("at most 180 s more"),
        "{body}"
    );

    // The API says the same end, and takes extend with the secret only.
    let (_, status) = proxy.status(&alias, "").await;
    assert_eq!(status["ends_at"], ends_at + 120);
    let extend = |secret: &str, by_s: u64| {
        proxy
            .client
            .post(proxy.api(&format!("/sessions/{alias}/extend")))
            .json(&json!({"secret": secret, "by_s": by_s}))
            .send()
    };
    assert_eq!(extend("not-the-secret", 60).await.unwrap().status(), 403);
    let answer = extend(&secret, 180).await.unwrap();
    assert_eq!(answer.status(), 200);
    let answer: Value = answer.json().await.unwrap();
    assert_eq!(answer["ends_at"], ends_at + 300);
    assert_eq!(extend(&secret, 1).await.unwrap().status(), 409);

    // The job's beat: an operator moved the job's end in; the session's end
    // follows, and the beat answers the end the owner set.
    let beat = proxy
        .client
        .post(proxy.api(&format!("/sessions/{alias}/clock")))
        .json(&json!({"secret": secret, "job_ends_at": ends_at + 100}))
        .send()
        .await
        .unwrap();
    assert_eq!(beat.status(), 200);
    let clock: Value = beat.json().await.unwrap();
    assert_eq!(clock["ends_at"], ends_at + 100);
    assert_eq!(clock["extend_until"], ends_at + 100);

    // Ended: the channel says so (and why), where the page is an error.
    assert_eq!(proxy.delete(&alias, &secret).await, 204);
    let (status, body, _) = channel(
        &proxy,
        &alias,
        Some(&cookie),
        get.clone(),
        "/_jrps/v1/status",
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["state"], "ended");
}

/// A session whose job reported no clock (no scheduler limit) has no end
/// to show and cannot be extended; nor can one without headroom.
#[tokio::test]
async fn without_a_clock_or_headroom_nothing_moves() {
    let proxy = Proxy::start(Options::default());
    let backend = http_backend("jupyter").await;
    let token = random_token();
    let created = proxy.ready_session(&token, backend.port()).await;
    let cookie = edge_cookie(&proxy, &created.alias, &token).await;
    let (status, body, _) = channel(
        &proxy,
        &created.alias,
        Some(&cookie),
        reqwest::Method::GET,
        "/_jrps/v1/status",
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["ends_at"], Value::Null);
    assert_eq!(body["announcement"], Value::Null);
    let (status, body, _) = channel(
        &proxy,
        &created.alias,
        Some(&cookie),
        reqwest::Method::POST,
        "/_jrps/v1/extend",
        Some(json!({"by_s": 60})),
    )
    .await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("not known yet"),
        "{body}"
    );

    let other = proxy.create(&random_token(), 600).await;
    let plain = http_backend("plain").await;
    let now = unix_now();
    let response = proxy
        .client
        .post(proxy.api(&format!("/sessions/{}/register", other.alias)))
        .json(&json!({
            "port": plain.port(),
            "secret": other.register_secret,
            "clock": {"ends_at": now + 600, "warn_before": [], "save_before": 40}
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let refused = proxy
        .client
        .post(proxy.api(&format!("/sessions/{}/extend", other.alias)))
        .json(&json!({"secret": other.register_secret, "by_s": 60}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 409);
    let body: Value = refused.json().await.unwrap();
    assert!(
        body["detail"].as_str().unwrap().contains("extend_max"),
        "{body}"
    );
}
