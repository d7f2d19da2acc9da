//! The forwarding policy on the wire: what a client's request may make the
//! backend see, and what a backend's answer may make the browser keep. Each
//! case runs on both request paths: the fast path (a keep-alive request with
//! the edge cookie) and hyper (`Connection: close`, which the fast path
//! leaves alone), since one policy must hold on both.

use serde_json::json;

use super::harness::{Options, Proxy};
use super::wire::*;

#[derive(Debug, Clone, Copy)]
enum Via {
    FastPath,
    Hyper,
}

const BOTH: [Via; 2] = [Via::FastPath, Via::Hyper];

impl Via {
    fn header(self) -> &'static str {
        match self {
            Via::FastPath => "",
            Via::Hyper => "Connection: close\r\n",
        }
    }
}

/// One request on a fresh connection, and its answer.
async fn exchange(proxy: &Proxy, site: &Site, via: Via, request: &str, body: &[u8]) -> Answer {
    let (line, headers) = request.split_once("\r\n").unwrap_or((request, ""));
    let (method, path) = line.split_once(' ').unwrap();
    let headers = format!("{}{headers}", via.header());
    let mut wire = site.connect(proxy).await;
    wire.send(&site.request(method, path, &headers, body)).await;
    wire.answer(method == "HEAD").await
}

#[tokio::test]
async fn forwarding_connection_tokens_cannot_unframe_or_reroute_a_request() {
    let proxy = Proxy::start(Options::default());
    let backend = raw_backend(echo_path).await;
    let site = Site::new(&proxy, backend.port).await;
    let smuggled = b"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n";
    for via in BOTH {
        let before = backend.seen().len();
        let answer = exchange(
            &proxy,
            &site,
            via,
            &format!(
                "POST /upload\r\nConnection: content-length\r\nContent-Length: {}\r\n",
                smuggled.len()
            ),
            smuggled,
        )
        .await;
        assert_eq!(answer.head.status(), 200, "{via:?}: {answer:?}");
        let answer = exchange(
            &proxy,
            &site,
            via,
            "GET /rerouted\r\nConnection: host\r\n",
            b"",
        )
        .await;
        assert_eq!(answer.head.status(), 200, "{via:?}: {answer:?}");

        let seen = backend.seen()[before..].to_vec();
        let paths: Vec<_> = seen.iter().map(|s| s.head.path().to_owned()).collect();
        assert_eq!(paths, ["/upload", "/rerouted"], "{via:?}: {seen:?}");
        assert_eq!(seen[0].body, smuggled, "{via:?}: the body is the body");
        assert_eq!(
            seen[0].head.get("content-length"),
            Some(smuggled.len().to_string().as_str()),
            "{via:?}"
        );
        assert_eq!(
            seen[1].head.get("host"),
            Some(site.host().as_str()),
            "{via:?}"
        );
    }
}

#[tokio::test]
async fn forwarding_client_claims_about_the_connection_are_replaced() {
    let proxy = Proxy::start(Options::default());
    let backend = raw_backend(echo_path).await;
    let site = Site::new(&proxy, backend.port).await;
    for via in BOTH {
        let answer = exchange(
            &proxy,
            &site,
            via,
            "GET /claims\r\nX-Scheme: http\r\nForwarded: for=1.2.3.4;proto=http\r\n\
             X-Forwarded-Port: 1\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Host: evil.example\r\n\
             X-Forwarded-For: 1.2.3.4\r\nX-Real-IP: 1.2.3.4\r\n",
            b"",
        )
        .await;
        assert_eq!(answer.head.status(), 200, "{via:?}: {answer:?}");
        let seen = backend.seen();
        let head = &seen.last().unwrap().head;
        for gone in ["x-scheme", "forwarded", "x-forwarded-port"] {
            assert!(
                !head.has(gone),
                "{via:?}: {gone} reached the backend: {head:?}"
            );
        }
        assert_eq!(head.get("x-forwarded-proto"), Some("https"), "{via:?}");
        assert_eq!(
            head.get("x-forwarded-host"),
            Some(site.host().as_str()),
            "{via:?}"
        );
        assert_eq!(head.get("x-forwarded-for"), Some("127.0.0.1"), "{via:?}");
        assert_eq!(head.get("x-real-ip"), Some("127.0.0.1"), "{via:?}");
    }
}

#[tokio::test]
async fn forwarding_the_edge_cookie_never_reaches_jupyter() {
    let proxy = Proxy::start(Options::default());
    let backend = raw_backend(echo_path).await;
    let site = Site::new(&proxy, backend.port).await;
    let edge_value = site.cookie.split_once('=').unwrap().1.to_owned();
    for via in BOTH {
        // `Site::request` sends the edge cookie in a Cookie field of its own;
        // this one mixes it with Jupyter's.
        let answer = exchange(
            &proxy,
            &site,
            via,
            &format!(
                "GET /mixed\r\nCookie: _xsrf=2|ab; {}; username-x=y\r\n",
                site.cookie
            ),
            b"",
        )
        .await;
        assert_eq!(answer.head.status(), 200, "{via:?}: {answer:?}");
        let seen = backend.seen();
        let head = &seen.last().unwrap().head;
        let cookies: Vec<_> = head
            .headers
            .iter()
            .filter(|(n, _)| n == "cookie")
            .map(|(_, v)| v.as_str())
            .collect();
        assert_eq!(cookies, ["_xsrf=2|ab; username-x=y"], "{via:?}: {head:?}");
        assert!(
            !head.headers.iter().any(|(_, v)| v.contains(&edge_value)),
            "{via:?}: the edge cookie reached the backend: {head:?}"
        );
    }
}

#[tokio::test]
async fn forwarding_a_backend_cannot_set_cookies_for_other_aliases() {
    let proxy = Proxy::start(Options::default());
    let backend = raw_backend(|_| {
        reply(
            "HTTP/1.1 200 OK\r\nSet-Cookie: wide=1; Domain=jrps.localhost; Path=/\r\n\
             Set-Cookie: own=2; Path=/; HttpOnly\r\nContent-Length: 2\r\n\r\nok",
        )
    })
    .await;
    let site = Site::new(&proxy, backend.port).await;
    for via in BOTH {
        let answer = exchange(&proxy, &site, via, "GET /cookies\r\n", b"").await;
        assert_eq!(answer.head.status(), 200, "{via:?}: {answer:?}");
        let cookies: Vec<_> = answer
            .head
            .headers
            .iter()
            .filter(|(n, _)| n == "set-cookie")
            .map(|(_, v)| v.as_str())
            .collect();
        assert_eq!(
            cookies,
            ["wide=1; Path=/", "own=2; Path=/; HttpOnly"],
            "{via:?}"
        );
    }
}

#[tokio::test]
async fn routing_a_request_names_one_host_or_gets_400() {
    let proxy = Proxy::start(Options::default());
    let backend = raw_backend(echo_path).await;
    let site = Site::new(&proxy, backend.port).await;
    let host = site.host();
    for via in BOTH {
        for (what, request) in [
            (
                "two Host fields",
                "GET /two-hosts\r\nHost: evil.example\r\n".to_owned(),
            ),
            (
                "the same Host twice",
                format!("GET /same-twice\r\nHost: {host}\r\n"),
            ),
            (
                "an absolute target for another host",
                "GET https://evil.example/absolute\r\n".to_owned(),
            ),
        ] {
            let answer = exchange(&proxy, &site, via, &request, b"").await;
            assert_eq!(answer.head.status(), 400, "{via:?}, {what}: {answer:?}");
        }
    }
    assert!(backend.seen().is_empty(), "{:?}", backend.seen());
}

#[tokio::test]
async fn api_paths_match_exactly() {
    let proxy = Proxy::start(Options::default());
    let body = json!({"user": "alice", "token_sha256": "ab".repeat(32), "ttl_seconds": 60});
    for path in [
        "/api/v1sessions",
        "/api/v1//sessions",
        "/api//v1/sessions",
        "/api/v1/sessions/",
    ] {
        let url = format!("{}{path}", proxy.api("").trim_end_matches("/api/v1"));
        let response = proxy.client.post(&url).json(&body).send().await.unwrap();
        assert_eq!(response.status(), 404, "{path}");
    }
    let response = proxy
        .client
        .post(proxy.api("/sessions"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
}

#[tokio::test]
async fn forwarding_a_page_of_another_alias_cannot_act_with_this_ones_cookie() {
    let proxy = Proxy::start(Options::default());
    let backend = raw_backend(echo_path).await;
    let site = Site::new(&proxy, backend.port).await;
    // `Site` sends `Host` without a port, so its own origin has none either.
    let own = format!("https://{}", site.host());
    let other = format!("https://bronze-fox-creek.{}", super::harness::DOMAIN);
    for via in BOTH {
        let with_origin =
            |method: &str, origin: &str| format!("{method} /api/contents\r\nOrigin: {origin}\r\n");
        let before = backend.seen().len();
        let refused = exchange(&proxy, &site, via, &with_origin("POST", &other), b"").await;
        assert_eq!(refused.head.status(), 403, "{via:?}: {refused:?}");
        assert!(refused.text().contains("another address"), "{via:?}");
        let refused = exchange(&proxy, &site, via, &with_origin("DELETE", "null"), b"").await;
        assert_eq!(refused.head.status(), 403, "{via:?}");
        assert_eq!(
            backend.seen().len(),
            before,
            "{via:?}: a refused request reached the backend"
        );

        let allowed = exchange(&proxy, &site, via, &with_origin("POST", &own), b"").await;
        assert_eq!(allowed.head.status(), 200, "{via:?}: {allowed:?}");
        let read = exchange(&proxy, &site, via, &with_origin("GET", &other), b"").await;
        assert_eq!(read.head.status(), 200, "{via:?}: reading is not acting");
    }
    // A WebSocket handshake from another origin never reaches the kernel.
    let before = backend.seen().len();
    let handshake = format!(
        "GET /api/kernels/k/channels\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nOrigin: {other}\r\n"
    );
    let refused = exchange(&proxy, &site, Via::FastPath, &handshake, b"").await;
    assert_eq!(refused.head.status(), 403, "{refused:?}");
    assert_eq!(backend.seen().len(), before);
}
