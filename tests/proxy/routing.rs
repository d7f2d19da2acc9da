//! Public traffic through the proxy over TLS: streaming both ways, headers,
//! WebSocket, edge auth and its cookie, the pages, dead backends.

use futures_util::{SinkExt, StreamExt};
use http::HeaderValue;
use sha2::{Digest, Sha256};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use super::backends::{http_backend, pattern_byte, websocket_backend};
use super::harness::{DOMAIN, Options, Proxy, h2_connect, random_token, tls_connect};

const SIZE: usize = 6 * 1024 * 1024 + 17;

#[tokio::test]
async fn get_and_post_stream_several_mib() {
    let proxy = Proxy::start(Options::default());
    let backend = http_backend("one").await;
    let token = random_token();
    let s = proxy.ready_session(&token, backend.port()).await;

    // Download: the backend makes the body 64 KiB at a time.
    let response = proxy
        .get(proxy.url(&s.alias, &format!("/big?n={SIZE}&token={token}")))
        .await;
    assert_eq!(response.status(), 200);
    let body = response.bytes().await.unwrap();
    assert_eq!(body.len(), SIZE);
    assert!(body.iter().enumerate().all(|(i, b)| *b == pattern_byte(i)));

    // Upload and echo: several MiB sent as a stream, echoed as a stream.
    let upload: Vec<u8> = (0..SIZE).map(|i| pattern_byte(i * 7)).collect();
    let response = proxy
        .client
        .post(proxy.url(&s.alias, &format!("/echo?token={token}")))
        .body(upload.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let echoed = response.bytes().await.unwrap();
    assert_eq!(echoed.len(), upload.len());
    assert_eq!(Sha256::digest(&echoed), Sha256::digest(&upload));
}

#[tokio::test]
async fn forwarding_headers_set_and_hop_by_hop_stripped() {
    let proxy = Proxy::start(Options::default());
    let backend = http_backend("one").await;
    let token = random_token();
    let s = proxy.ready_session(&token, backend.port()).await;
    let response = proxy
        .client
        .get(proxy.url(&s.alias, &format!("/headers?token={token}")))
        .header("connection", "keep-alive, x-drop-me")
        .header("x-drop-me", "secret")
        .header("keep-alive", "timeout=5")
        .header("x-forwarded-for", "6.6.6.6")
        .header("te", "trailers")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let headers: serde_json::Value = response.json().await.unwrap();
    let host = format!("{}.{DOMAIN}:{}", s.alias, proxy.addr.port());
    assert_eq!(
        headers["host"],
        host.as_str(),
        "Host is kept as the browser sent it"
    );
    assert_eq!(headers["x-forwarded-host"], host.as_str());
    assert_eq!(headers["x-forwarded-proto"], "https");
    assert_eq!(
        headers["x-forwarded-for"], "127.0.0.1",
        "client XFF is not trusted at the edge"
    );
    for gone in ["x-drop-me", "keep-alive", "te"] {
        assert!(
            headers.get(gone).is_none(),
            "{gone} was forwarded: {headers}"
        );
    }
    assert!(!proxy.log().contains(&token), "the token was logged");
}

#[tokio::test]
async fn websocket_echo_both_ways() {
    let proxy = Proxy::start(Options::default());
    let backend = websocket_backend().await;
    let token = random_token();
    let s = proxy.ready_session(&token, backend.port()).await;

    let url = format!(
        "wss://{}.{DOMAIN}:{}/ws?token={token}",
        s.alias,
        proxy.addr.port()
    );
    let mut request = url.into_client_request().unwrap();
    // What Firefox sends; the proxy must see the Upgrade among the tokens.
    request.headers_mut().insert(
        "connection",
        HeaderValue::from_static("keep-alive, Upgrade"),
    );
    let tcp = TcpStream::connect(proxy.addr).await.unwrap();
    let tls = tls_connect(&proxy.ca, tcp, &format!("{}.{DOMAIN}", s.alias)).await;
    let (mut ws, response) = tokio_tungstenite::client_async(request, tls).await.unwrap();
    assert_eq!(response.status(), 101);

    for i in 0..20 {
        let text = format!("message {i}");
        ws.send(Message::text(text.clone())).await.unwrap();
        assert_eq!(ws.next().await.unwrap().unwrap(), Message::text(text));
    }
    let big: Vec<u8> = (0..300_000).map(pattern_byte).collect();
    ws.send(Message::binary(big.clone())).await.unwrap();
    assert_eq!(ws.next().await.unwrap().unwrap(), Message::binary(big));
    ws.close(None).await.unwrap();
    while let Some(Ok(_)) = ws.next().await {}

    let metrics = proxy.metrics().await;
    assert!(metrics.contains("jrps_open_websockets"), "{metrics}");
}

#[tokio::test]
async fn no_token_and_no_cookie_is_403() {
    let proxy = Proxy::start(Options::default());
    let backend = http_backend("one").await;
    let token = random_token();
    let s = proxy.ready_session(&token, backend.port()).await;
    for path in ["/", "/?token=wrong", "/?tokenx=1"] {
        let response = proxy.get(proxy.url(&s.alias, path)).await;
        assert_eq!(response.status(), 403, "{path}");
        let page = response.text().await.unwrap();
        assert!(
            page.contains(&s.alias) && page.contains("jrps url"),
            "{page}"
        );
    }
    // A cookie of the right name but the wrong value is no better.
    let response = proxy
        .client
        .get(proxy.url(&s.alias, "/"))
        .header("cookie", format!("__Host-jrps_session={}", "ab".repeat(32)))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
}

#[tokio::test]
async fn cookie_flow() {
    let proxy = Proxy::start(Options::default());
    let backend = http_backend("one").await;
    let token = random_token();
    let s = proxy.ready_session(&token, backend.port()).await;
    // One live session per backend address: the other alias has its own.
    let other_backend = http_backend("two").await;
    let other = proxy
        .ready_session(&random_token(), other_backend.port())
        .await;

    let first = proxy
        .get(proxy.url(&s.alias, &format!("/tree?token={token}")))
        .await;
    assert_eq!(first.status(), 200);
    let cookie = first
        .headers()
        .get("set-cookie")
        .expect("no cookie set")
        .to_str()
        .unwrap()
        .to_owned();
    // Over TLS, the `__Host-` name: no other alias can set or shadow it.
    assert!(cookie.starts_with("__Host-jrps_session="), "{cookie}");
    for attribute in ["HttpOnly", "Secure", "SameSite=Lax", "Path=/"] {
        assert!(cookie.contains(attribute), "{attribute} missing: {cookie}");
    }
    assert!(
        !cookie.to_ascii_lowercase().contains("domain="),
        "cookie must be host-only"
    );
    assert!(!cookie.contains(&token), "cookie must not reveal the token");
    // The query reached Jupyter unchanged (it needs the token too).
    assert_eq!(first.text().await.unwrap(), "hello from one path=/tree");

    let pair = cookie.split(';').next().unwrap().to_owned();
    let later = proxy
        .client
        .get(proxy.url(&s.alias, "/lab"))
        .header("cookie", format!("_xsrf=abc; {pair}"))
        .send()
        .await
        .unwrap();
    assert_eq!(later.status(), 200);
    assert!(
        later.headers().get("set-cookie").is_none(),
        "cookie set twice"
    );

    // One session's cookie opens nothing else.
    let elsewhere = proxy
        .client
        .get(proxy.url(&other.alias, "/"))
        .header("cookie", pair)
        .send()
        .await
        .unwrap();
    assert_eq!(elsewhere.status(), 403);
}

#[tokio::test]
async fn pages_for_unknown_starting_and_foreign_hosts() {
    let proxy = Proxy::start(Options::default());
    let token = random_token();

    let response = proxy.get(proxy.url("amber-otter-lagoon", "/")).await;
    assert_eq!(response.status(), 404);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("amber-otter-lagoon")
    );

    let s = proxy.create(&token, 600).await;
    let response = proxy
        .get(proxy.url(&s.alias, &format!("/?token={token}")))
        .await;
    assert_eq!(response.status(), 503);
    let page = response.text().await.unwrap();
    assert!(
        page.contains("http-equiv=\"refresh\"") && page.contains(&s.alias),
        "{page}"
    );

    // Host forms: trailing dot, upper case; foreign and missing Hosts.
    let raw = proxy
        .raw(
            format!(
                "GET / HTTP/1.1\r\nHost: {}.{}.:{}\r\nConnection: close\r\n\r\n",
                s.alias.to_uppercase(),
                DOMAIN.to_uppercase(),
                proxy.addr.port()
            )
            .as_bytes(),
        )
        .await;
    assert!(raw.starts_with("HTTP/1.1 403"), "{raw}");
    let raw = proxy
        .raw(b"GET / HTTP/1.1\r\nHost: example.org\r\nConnection: close\r\n\r\n")
        .await;
    assert!(raw.starts_with("HTTP/1.1 404"), "{raw}");
}

#[tokio::test]
async fn dead_backend_gives_502_and_other_routes_keep_serving() {
    let proxy = Proxy::start(Options::default());
    let doomed = http_backend("doomed").await;
    let healthy = http_backend("healthy").await;
    let (t1, t2) = (random_token(), random_token());
    let s1 = proxy.ready_session(&t1, doomed.port()).await;
    let s2 = proxy.ready_session(&t2, healthy.port()).await;
    for (s, t) in [(&s1, &t1), (&s2, &t2)] {
        let r = proxy
            .get(proxy.url(&s.alias, &format!("/?token={t}")))
            .await;
        assert_eq!(r.status(), 200);
    }
    doomed.kill();
    // The pooled connection to the dead backend may need one request to
    // notice; within a few tries it must be a 502 page.
    let mut last = 0;
    for _ in 0..3 {
        let r = proxy
            .get(proxy.url(&s1.alias, &format!("/?token={t1}")))
            .await;
        last = r.status().as_u16();
        if last == 502 {
            let page = r.text().await.unwrap();
            assert!(page.contains(&s1.alias), "{page}");
            break;
        }
    }
    assert_eq!(last, 502);
    let r = proxy
        .get(proxy.url(&s2.alias, &format!("/?token={t2}")))
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "hello from healthy path=/");
}

#[tokio::test]
async fn http2_clients_are_served_too() {
    use http_body_util::{BodyExt, Empty};
    use hyper_util::rt::{TokioExecutor, TokioIo};

    let proxy = Proxy::start(Options::default());
    let backend = http_backend("one").await;
    let token = random_token();
    let s = proxy.ready_session(&token, backend.port()).await;

    let tcp = TcpStream::connect(proxy.addr).await.unwrap();
    let name = format!("{}.{DOMAIN}", s.alias);
    let tls = h2_connect(&proxy.ca, tcp, &name).await;
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
            .await
            .unwrap();
    tokio::spawn(conn);
    for path in ["/", "/headers"] {
        let request = http::Request::get(format!(
            "https://{name}:{}{path}?token={token}",
            proxy.addr.port()
        ))
        .header("cookie", "a=1")
        .header("cookie", "b=2")
        .body(Empty::<bytes::Bytes>::new())
        .unwrap();
        let response = sender.send_request(request).await.unwrap();
        assert_eq!(response.status(), 200);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        if path == "/" {
            assert_eq!(&body[..], b"hello from one path=/");
        } else {
            let headers: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(
                headers["host"],
                format!("{name}:{}", proxy.addr.port()).as_str()
            );
            assert_eq!(
                headers["cookie"], "a=1; b=2",
                "split cookies are joined for HTTP/1.1"
            );
        }
    }
}

#[tokio::test]
async fn backend_connections_are_reused() {
    let proxy = Proxy::start(Options::default());
    let backend = http_backend("one").await;
    let token = random_token();
    let s = proxy.ready_session(&token, backend.port()).await;
    let mut peers = std::collections::HashSet::new();
    // Sequential requests, each on a fresh client connection: the proxy
    // should still reach the backend over one pooled connection.
    for _ in 0..5 {
        let client = super::harness::client_for(&proxy.ca, None);
        let peer = client
            .get(proxy.url(&s.alias, &format!("/peer?token={token}")))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        peers.insert(peer);
    }
    assert_eq!(
        peers.len(),
        1,
        "backend saw several proxy connections: {peers:?}"
    );
}

/// Peak resident memory of a process, from /proc (Linux).
fn peak_rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

#[tokio::test]
async fn bodies_stream_without_being_buffered() {
    const BIG: usize = 96 * 1024 * 1024;
    let proxy = Proxy::start(Options::default());
    let backend = http_backend("one").await;
    let token = random_token();
    let s = proxy.ready_session(&token, backend.port()).await;
    let before = peak_rss_bytes(proxy.child.id());
    let mut response = proxy
        .get(proxy.url(&s.alias, &format!("/big?n={BIG}&token={token}")))
        .await;
    let mut total = 0;
    while let Some(chunk) = response.chunk().await.unwrap() {
        total += chunk.len();
    }
    assert_eq!(total, BIG);
    let grew = peak_rss_bytes(proxy.child.id()).saturating_sub(before);
    assert!(
        grew < 32 * 1024 * 1024,
        "proxy grew by {grew} bytes for a {BIG}-byte body"
    );
}
