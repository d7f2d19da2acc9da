//! Abuse limits and hostile input: each gets a 4xx or a closed connection,
//! never a crash or a stuck task; plain-HTTP mode; metrics.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::backends::http_backend;
use super::harness::{DOMAIN, Options, Proxy, h2_connect, random_token, tls_connect};

fn with(extra: &str) -> Options {
    Options {
        extra: extra.into(),
        ..Options::default()
    }
}

#[tokio::test]
async fn hostile_requests_get_4xx_and_the_proxy_lives_on() {
    let proxy = Proxy::start(Options::default());
    let huge = "a".repeat(40_000);
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"GARBAGE\r\n\r\n".to_vec(), "HTTP/1.1 400"),
        (
            b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n".to_vec(),
            "HTTP/1.1 400",
        ),
        (
            format!("GET / HTTP/1.1\r\nHost: manage.{DOMAIN}\r\nX-Big: {huge}\r\n\r\n")
                .into_bytes(),
            "HTTP/1.1 431",
        ),
        (
            format!("GET /{huge} HTTP/1.1\r\nHost: manage.{DOMAIN}\r\n\r\n").into_bytes(),
            "HTTP/1.1 4",
        ),
        (
            b"GET / HTTP/1.1\r\nHost: \xff\xfe\r\nConnection: close\r\n\r\n".to_vec(),
            "HTTP/1.1 4",
        ),
        (
            b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n".to_vec(),
            "HTTP/1.1 400",
        ),
        (
            format!(
                "GET / HTTP/1.1\r\nHost: {}.{DOMAIN}\r\nConnection: close\r\n\r\n",
                "x".repeat(100)
            )
            .into_bytes(),
            "HTTP/1.1 404",
        ),
    ];
    for (request, expected) in cases {
        let answer = proxy.raw(&request).await;
        assert!(
            answer.starts_with(expected),
            "{:?} -> {answer:?}",
            String::from_utf8_lossy(&request[..request.len().min(80)])
        );
    }
    let r = proxy.get(proxy.url("manage", "/healthz")).await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn slow_headers_and_idle_connections_are_closed() {
    let proxy = Proxy::start(with(
        "[limits]\nheader_read_timeout_s = 1\nidle_timeout_s = 2\n",
    ));
    // A client that starts a request and never finishes its headers.
    let tcp = TcpStream::connect(proxy.addr).await.unwrap();
    let mut tls = tls_connect(&proxy.ca, tcp, &format!("manage.{DOMAIN}")).await;
    tls.write_all(b"GET /healthz HTTP/1.1\r\nHost: manage.jrps.localhost\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), tls.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "slow-header connection left open");
    assert!(started.elapsed() < Duration::from_secs(5));

    // A client that sends nothing at all after the handshake.
    let tcp = TcpStream::connect(proxy.addr).await.unwrap();
    let mut tls = tls_connect(&proxy.ca, tcp, &format!("manage.{DOMAIN}")).await;
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), tls.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "idle connection left open");

    // A keep-alive connection that goes quiet after one request.
    let tcp = TcpStream::connect(proxy.addr).await.unwrap();
    let mut tls = tls_connect(&proxy.ca, tcp, &format!("manage.{DOMAIN}")).await;
    tls.write_all(b"GET /healthz HTTP/1.1\r\nHost: manage.jrps.localhost\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), tls.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "quiet keep-alive connection left open");
    assert!(String::from_utf8_lossy(&buf).starts_with("HTTP/1.1 200"));

    // A TCP client that never even starts TLS.
    let mut tcp = TcpStream::connect(proxy.addr).await.unwrap();
    let read =
        tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut Vec::new())).await;
    assert!(read.is_ok(), "handshake-less connection left open");
}

/// Asserts that the proxy closes `io` (opened at `opened`) well before 5 s,
/// reading (and dropping) whatever it sends first.
async fn assert_closed_soon<S: tokio::io::AsyncRead + Unpin>(
    io: &mut S,
    opened: Instant,
    what: &str,
) {
    let closed = tokio::time::timeout(Duration::from_secs(10), io.read_to_end(&mut Vec::new()))
        .await
        .is_ok();
    assert!(closed, "{what} was left open");
    let took = opened.elapsed();
    assert!(
        took < Duration::from_secs(5),
        "{what}: closed after {took:?}"
    );
}

#[tokio::test]
async fn connections_that_send_nothing_get_the_header_timeout_not_the_idle_one() {
    let limits = "[limits]\nheader_read_timeout_s = 1\nidle_timeout_s = 60\n";
    let tls = Proxy::start(with(limits));
    let plain = Proxy::start(Options {
        tls: false,
        ..with(limits)
    });
    let manage = format!("manage.{DOMAIN}");

    let started = Instant::now();
    let mut silent_tcp = TcpStream::connect(plain.addr).await.unwrap();
    assert_closed_soon(
        &mut silent_tcp,
        started,
        "a plain connection that sent nothing",
    )
    .await;

    let started = Instant::now();
    let tcp = TcpStream::connect(tls.addr).await.unwrap();
    let mut silent_tls = tls_connect(&tls.ca, tcp, &manage).await;
    let what = "a TLS connection that sent nothing after its handshake";
    assert_closed_soon(&mut silent_tls, started, what).await;

    // HTTP/2 by ALPN, then not even the connection preface.
    let started = Instant::now();
    let tcp = TcpStream::connect(tls.addr).await.unwrap();
    let mut silent_h2 = h2_connect(&tls.ca, tcp, &manage).await;
    assert_eq!(silent_h2.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let what = "an HTTP/2 connection that sent no preface";
    assert_closed_soon(&mut silent_h2, started, what).await;

    // HTTP/2: the preface and SETTINGS, then nothing; and the same with
    // half a first request (a HEADERS frame without END_HEADERS, whose
    // CONTINUATION never comes). Neither has made a request yet.
    const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    const SETTINGS: [u8; 9] = [0, 0, 0, 4, 0, 0, 0, 0, 0];
    // One byte of HPACK (`:method: GET`), END_STREAM but not END_HEADERS, stream 1.
    const HALF_HEADERS: [u8; 10] = [0, 0, 1, 1, 0x1, 0, 0, 0, 1, 0x82];
    for (what, frames) in [
        (
            "an HTTP/2 connection that sent only its preface",
            vec![PREFACE, &SETTINGS[..]],
        ),
        (
            "an HTTP/2 connection with a half-sent first request",
            vec![PREFACE, &SETTINGS[..], &HALF_HEADERS[..]],
        ),
    ] {
        let started = Instant::now();
        let tcp = TcpStream::connect(tls.addr).await.unwrap();
        let mut h2 = h2_connect(&tls.ca, tcp, &manage).await;
        for frame in frames {
            h2.write_all(frame).await.unwrap();
        }
        h2.flush().await.unwrap();
        assert_closed_soon(&mut h2, started, what).await;
    }

    // After a whole request is answered, a second one left half-sent: a
    // HEADERS frame without END_HEADERS, or one whose payload stops short.
    // Until either is complete the connection can carry nothing else.
    for (what, second) in [
        (
            "an HTTP/2 connection with a half-sent second request",
            vec![0, 0, 1, 1, 0x1, 0, 0, 0, 3, 0x82],
        ),
        (
            "an HTTP/2 connection whose second HEADERS frame stops short",
            vec![0, 0, 100, 1, 0x5, 0, 0, 0, 3, 0x82],
        ),
    ] {
        let tcp = TcpStream::connect(tls.addr).await.unwrap();
        let mut h2 = h2_connect(&tls.ca, tcp, &manage).await;
        h2.write_all(PREFACE).await.unwrap();
        h2.write_all(&SETTINGS).await.unwrap();
        h2.write_all(&healthz_request(&manage)).await.unwrap();
        h2.flush().await.unwrap();
        read_response_headers(&mut h2, 1).await;
        let started = Instant::now();
        h2.write_all(&second).await.unwrap();
        h2.flush().await.unwrap();
        assert_closed_soon(&mut h2, started, what).await;
    }

    // Meanwhile a client that talks is served.
    let r = tls.get(tls.url("manage", "/healthz")).await;
    assert_eq!(r.status(), 200);
}

/// `GET https://{authority}/healthz` on stream 1 as one HEADERS frame
/// (END_STREAM, END_HEADERS), its fields as HPACK literals never indexed.
fn healthz_request(authority: &str) -> Vec<u8> {
    let mut block = vec![0x82, 0x87]; // :method GET, :scheme https
    for (index, value) in [(4u8, "/healthz"), (1, authority)] {
        block.push(0x10 | index); // literal never indexed, name by index
        block.push(value.len() as u8);
        block.extend_from_slice(value.as_bytes());
    }
    let len = block.len();
    let mut frame = vec![0, 0, len as u8, 0x1, 0x5, 0, 0, 0, 1];
    frame.extend(block);
    frame
}

/// Reads frames until the response HEADERS of `stream` arrives.
async fn read_response_headers<S: tokio::io::AsyncRead + Unpin>(io: &mut S, stream: u8) {
    let reading = async {
        loop {
            let mut head = [0u8; 9];
            io.read_exact(&mut head).await.unwrap();
            let len = usize::from(head[0]) << 16 | usize::from(head[1]) << 8 | usize::from(head[2]);
            let mut payload = vec![0u8; len];
            io.read_exact(&mut payload).await.unwrap();
            if head[3] == 0x1 && head[5..9] == [0, 0, 0, stream] {
                return;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(5), reading)
        .await
        .expect("no answer to the first request");
}

#[tokio::test]
async fn an_http2_connection_with_no_open_stream_closes_whatever_pings_it_sends() {
    let proxy = Proxy::start(with("[limits]\nidle_timeout_s = 2\n"));
    let host = format!("manage.{DOMAIN}");
    let tcp = TcpStream::connect(proxy.addr).await.unwrap();
    let tls = h2_connect(&proxy.ca, tcp, &host).await;
    // The client PINGs every 200 ms: bytes move both ways all the time.
    let (mut sender, connection) =
        hyper::client::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
            .timer(hyper_util::rt::TokioTimer::new())
            .keep_alive_interval(Duration::from_millis(200))
            .keep_alive_while_idle(true)
            .handshake::<_, http_body_util::Empty<bytes::Bytes>>(hyper_util::rt::TokioIo::new(tls))
            .await
            .unwrap();
    let connection = tokio::spawn(connection);
    let request = http::Request::get(format!("https://{host}/healthz"))
        .body(http_body_util::Empty::new())
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.status(), 200);
    drop(response);
    let started = Instant::now();
    let ended = tokio::time::timeout(Duration::from_secs(15), connection).await;
    assert!(
        ended.is_ok(),
        "an idle HTTP/2 connection was kept open by its PINGs"
    );
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(1500) && took < Duration::from_secs(6),
        "closed after {took:?}, not about the 2 s idle timeout"
    );
}

async fn connect_from(local: &str, to: std::net::SocketAddr) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(format!("{local}:0").parse().unwrap()).unwrap();
    socket.connect(to).await.unwrap()
}

#[tokio::test]
async fn one_address_at_its_cap_delays_nobody_else() {
    let proxy = Proxy::start(with(
        "[limits]\nmax_connections = 100\nmax_connections_per_address = 20\n",
    ));
    let backend = http_backend("other-user").await;
    let token = random_token();
    let other = proxy.ready_session(&token, backend.port()).await;
    let manage = format!("manage.{DOMAIN}");
    let mut held = Vec::new();
    for _ in 0..20 {
        let tcp = connect_from("127.0.0.3", proxy.addr).await;
        held.push(tls_connect(&proxy.ca, tcp, &manage).await);
    }
    // One more from the same address is closed at once, before TLS.
    let mut over = connect_from("127.0.0.3", proxy.addr).await;
    let mut buf = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(2), over.read_to_end(&mut buf)).await;
    assert!(
        matches!(closed, Ok(Ok(0)) | Ok(Err(_))),
        "the 21st connection from one address was not closed at once: {closed:?} {buf:?}"
    );
    // Everyone else: health, the API, another session, all at once.
    let started = Instant::now();
    assert_eq!(
        proxy.get(proxy.url("manage", "/healthz")).await.status(),
        200
    );
    let created = proxy.create(&random_token(), 60).await;
    assert!(!created.alias.is_empty());
    let page = proxy.get(format!("{}?token={token}", other.url)).await;
    assert_eq!(page.status(), 200);
    assert!(
        page.text()
            .await
            .unwrap()
            .starts_with("hello from other-user")
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "others waited {:?}",
        started.elapsed()
    );
    // A slot given back is the address's again.
    drop(held.pop());
    let served = crate::support::eventually(Duration::from_secs(5), || {
        // Until the proxy has seen the close, the address is still full and
        // the handshake fails; that is an answer here, not a panic.
        let (ca, addr, manage) = (proxy.ca.clone(), proxy.addr, manage.clone());
        async move {
            let attempt = tokio::spawn(async move {
                let tcp = connect_from("127.0.0.3", addr).await;
                let mut tls = tls_connect(&ca, tcp, &manage).await;
                let request =
                    format!("GET /healthz HTTP/1.1\r\nHost: {manage}\r\nConnection: close\r\n\r\n");
                tls.write_all(request.as_bytes()).await.unwrap();
                let mut answer = Vec::new();
                let _ = tls.read_to_end(&mut answer).await;
                answer.starts_with(b"HTTP/1.1 200")
            });
            attempt.await.unwrap_or(false)
        }
    })
    .await;
    assert!(served, "the address got no slot back");
}

#[tokio::test]
async fn connection_cap_holds_new_connections_back() {
    let proxy = Proxy::start(with("[limits]\nmax_connections = 2\n"));
    let mut held = Vec::new();
    for _ in 0..2 {
        let tcp = TcpStream::connect(proxy.addr).await.unwrap();
        held.push(tls_connect(&proxy.ca, tcp, &format!("manage.{DOMAIN}")).await);
    }
    // The third connection is accepted by the kernel but not served.
    let third = {
        let ca = proxy.ca.clone();
        let addr = proxy.addr;
        tokio::spawn(async move {
            let tcp = TcpStream::connect(addr).await.unwrap();
            let mut tls = tls_connect(&ca, tcp, &format!("manage.{DOMAIN}")).await;
            tls.write_all(b"GET /healthz HTTP/1.1\r\nHost: manage.jrps.localhost\r\nConnection: close\r\n\r\n")
                .await
                .unwrap();
            let mut buf = Vec::new();
            let _ = tls.read_to_end(&mut buf).await;
            String::from_utf8_lossy(&buf).into_owned()
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !third.is_finished(),
        "a third connection was served past the cap"
    );
    drop(held.pop());
    let answer = tokio::time::timeout(Duration::from_secs(10), third)
        .await
        .expect("third connection never served after a slot freed")
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[tokio::test]
async fn plain_http_listener_behind_a_tls_terminator() {
    let behind = Proxy::start(Options {
        tls: false,
        extra: "behind_tls = true\napi_addr = \"127.0.0.1:0\"\naudit_log = \"audit.log\"".into(),
        ..Options::default()
    });
    let backend = http_backend("one").await;
    let token = random_token();
    let s = behind.ready_session(&token, backend.port()).await;
    assert!(s.url.starts_with("https://"), "{}", s.url);
    let r = behind
        .client
        .get(behind.url(&s.alias, &format!("/headers?token={token}")))
        // The client wrote the first entry; the terminator added the last.
        .header("x-forwarded-for", "203.0.113.66, 10.9.8.7")
        .send()
        .await
        .unwrap();
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.contains("; Secure"), "{cookie}");
    let headers: serde_json::Value = r.json().await.unwrap();
    assert_eq!(headers["x-forwarded-proto"], "https");
    assert_eq!(
        headers["x-forwarded-for"],
        "203.0.113.66, 10.9.8.7, 127.0.0.1"
    );
    // The audit log names the browser the terminator says it served, not
    // the address the client wrote before it.
    let audit = std::fs::read_to_string(behind.dir.path().join("audit.log")).unwrap();
    let first = audit
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|l| l["event"] == "first_access")
        .unwrap_or_else(|| panic!("no first_access in {audit}"));
    assert_eq!(
        (&first["client"], &first["forwarded_for"]),
        (
            &serde_json::json!("127.0.0.1"),
            &serde_json::json!("10.9.8.7")
        )
    );

    let bare = Proxy::start(Options {
        tls: false,
        ..Options::default()
    });
    let s = bare.ready_session(&token, backend.port()).await;
    let r = bare
        .client
        .get(bare.url(&s.alias, &format!("/headers?token={token}")))
        .send()
        .await
        .unwrap();
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(!cookie.contains("Secure"), "{cookie}");
    let headers: serde_json::Value = r.json().await.unwrap();
    assert_eq!(headers["x-forwarded-proto"], "http");
}

#[tokio::test]
async fn metrics_count_what_happened() {
    let proxy = Proxy::start(Options::default());
    let backend = http_backend("one").await;
    let token = random_token();
    let s = proxy.ready_session(&token, backend.port()).await;
    let _pending = proxy.create(&random_token(), 600).await;
    proxy.get(proxy.url(&s.alias, "/")).await;
    proxy
        .get(proxy.url(&s.alias, &format!("/?token={token}")))
        .await;
    let text = proxy.metrics().await;
    for line in [
        "jrps_sessions{state=\"pending\"} 1",
        "jrps_sessions{state=\"ready\"} 1",
        "jrps_requests_total{class=\"4xx\"} 1",
        "jrps_upstream_errors_total 0",
        "jrps_open_websockets 0",
        "jrps_activation_seconds_count 1",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
    assert!(text.contains("jrps_requests_total{class=\"2xx\"}"));

    // Only from allowed_client_cidrs.
    let outsider = super::harness::client_for(&proxy.ca, Some([127, 0, 0, 2].into()));
    let r = outsider
        .get(proxy.url("manage", "/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = outsider
        .get(proxy.url("manage", "/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn websocket_tunnels_count_against_the_connection_cap() {
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::Message;

    let proxy = Proxy::start(with("[limits]\nmax_connections = 5\n"));
    let backend = super::backends::websocket_backend().await;
    let token = random_token();
    let s = proxy.ready_session(&token, backend.port()).await;
    let open = || {
        let url = format!(
            "wss://{}.{DOMAIN}:{}/ws?token={token}",
            s.alias,
            proxy.addr.port()
        );
        let (ca, addr, name) = (
            proxy.ca.clone(),
            proxy.addr,
            format!("{}.{DOMAIN}", s.alias),
        );
        async move {
            let tcp = TcpStream::connect(addr).await.unwrap();
            let tls = tls_connect(&ca, tcp, &name).await;
            tokio_tungstenite::client_async(url, tls).await
        }
    };
    // Slots: the accept loop holds one for the next connection, the API
    // client keeps one pooled connection, and while a tunnel opens it holds
    // its HTTP connection's slot and its own: a cap of 5 fits two tunnels.
    let (mut first, _) = open().await.unwrap();
    // The first tunnel's HTTP connection gives its slot back just after the
    // 101; allow that moment to pass.
    let mut second = None;
    for _ in 0..50 {
        if let Ok((ws, _)) = open().await {
            second = Some(ws);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(second.is_some(), "second tunnel refused under the cap");
    match open().await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 503)
        }
        other => panic!(
            "third tunnel past the cap: {:?}",
            other.map(|(_, r)| r.status())
        ),
    }
    first.send(Message::Close(None)).await.unwrap();
    drop(first);
    let reopened =
        crate::support::eventually(Duration::from_secs(5), || async { open().await.is_ok() }).await;
    assert!(reopened, "slot not freed when a tunnel closed");
}

#[tokio::test]
async fn one_session_cannot_take_every_tunnel_or_request() {
    let proxy = Proxy::start(with(
        "[limits]\nmax_websockets_per_session = 2\nmax_requests_per_session = 2\n",
    ));
    let ws_backend = super::backends::websocket_backend().await;
    let token = random_token();
    let busy = proxy.ready_session(&token, ws_backend.port()).await;
    let other_ws_backend = super::backends::websocket_backend().await;
    let other_token = random_token();
    let other = proxy
        .ready_session(&other_token, other_ws_backend.port())
        .await;

    let _first = proxy.websocket(&busy.alias, &token).await;
    let _second = proxy.websocket(&busy.alias, &token).await;
    let handshake = |alias: &str, token: &str| {
        format!(
            "GET /ws?token={token} HTTP/1.1\r\nHost: {alias}.{DOMAIN}\r\nConnection: Upgrade, close\r\n\
             Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
        )
    };
    let third = proxy.raw(handshake(&busy.alias, &token).as_bytes()).await;
    assert!(third.starts_with("HTTP/1.1 503"), "{third}");
    // Another session's tunnels are not held back.
    let _theirs = proxy.websocket(&other.alias, &other_token).await;

    // Requests in flight: two held by the backend fill the session's budget.
    let held = super::wire::raw_backend(|_| super::wire::Reply {
        delay: Duration::from_secs(2),
        ..super::wire::ok("late")
    })
    .await;
    let slow_token = random_token();
    let slow = proxy.ready_session(&slow_token, held.port).await;
    let url = proxy.url(&slow.alias, &format!("/held?token={slow_token}"));
    let in_flight: Vec<_> = (0..2)
        .map(|_| {
            let (client, url) = (proxy.client.clone(), url.clone());
            tokio::spawn(async move { client.get(url).send().await.unwrap().status() })
        })
        .collect();
    let arrived =
        crate::support::eventually(Duration::from_secs(5), || async { held.seen().len() == 2 })
            .await;
    assert!(arrived, "the two requests never reached the backend");
    assert_eq!(proxy.get(url.clone()).await.status(), 503);
    assert_eq!(
        held.seen().len(),
        2,
        "the refused request reached the backend"
    );
    for request in in_flight {
        assert_eq!(request.await.unwrap(), 200);
    }
    // Once they are answered, the session is served again.
    assert_eq!(proxy.get(url).await.status(), 200);
}
