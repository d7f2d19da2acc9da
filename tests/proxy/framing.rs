//! HTTP/1.1 framing through the proxy, pinned with hand-written bytes on both
//! sides ([`super::wire`]).

use std::time::Duration;

use tokio::net::TcpListener;
use tokio::time::timeout;

use super::backends::pattern_byte;
use super::harness::{Options, Proxy};
use super::wire::*;

#[tokio::test]
async fn framing_chunked_response_with_trailers_is_decoded() {
    let proxy = Proxy::start(Options::default());
    let big = pattern(70_000);
    let chunked = {
        let mut b = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n\
                      5\r\nhello\r\n1;ext=1\r\n \r\n"
            .to_vec();
        b.extend(format!("{:x}\r\n", big.len()).bytes());
        b.extend(&big);
        b.extend(b"\r\n0\r\nX-Sum: 42\r\nX-Other: 1\r\n\r\n");
        b
    };
    let backend = raw_backend(move |seen| match seen.head.path() {
        "/chunked" => reply(chunked.clone()),
        _ => echo_path(seen),
    })
    .await;
    let site = Site::new(&proxy, backend.port).await;
    let mut wire = site.connect(&proxy).await;
    let mut expected = b"hello ".to_vec();
    expected.extend(&big);
    for _ in 0..2 {
        wire.send(&site.get("/chunked")).await;
        let answer = wire.answer(false).await;
        assert_eq!(answer.head.status(), 200);
        assert_eq!(answer.body.len(), expected.len());
        assert!(answer.body == expected, "chunked body corrupted");
        site.expect_echo(&mut wire, "/after").await;
    }
}

#[tokio::test]
async fn framing_close_delimited_response_arrives_whole() {
    let proxy = Proxy::start(Options::default());
    let body = pattern(200_000);
    let response = {
        let mut b = b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n\r\n".to_vec();
        b.extend(&body);
        b
    };
    let backend = raw_backend(move |seen| match seen.head.path() {
        "/eof" => Reply {
            close: true,
            ..reply(response.clone())
        },
        _ => echo_path(seen),
    })
    .await;
    let site = Site::new(&proxy, backend.port).await;
    let mut wire = site.connect(&proxy).await;
    wire.send(&site.get("/eof")).await;
    let answer = wire.answer(false).await;
    assert_eq!(answer.head.status(), 200);
    assert_eq!(answer.body.len(), body.len());
    assert!(answer.body == body, "close-delimited body corrupted");
    let framed = answer.head.chunked() || answer.head.has("content-length");
    if framed && !answer.head.connection_lists("close") {
        // Re-framed for the client: the connection goes on.
        site.expect_echo(&mut wire, "/after").await;
    } else {
        assert!(
            wire.closes().await,
            "unframed response but the connection stays open"
        );
    }
}

#[tokio::test]
async fn framing_head_response_has_no_body() {
    let proxy = Proxy::start(Options::default());
    let backend = raw_backend(|seen| match seen.head.method() {
        "HEAD" => {
            reply("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\nContent-Type: text/plain\r\n\r\n")
        }
        _ => echo_path(seen),
    })
    .await;
    let site = Site::new(&proxy, backend.port).await;
    let mut wire = site.connect(&proxy).await;
    for _ in 0..2 {
        wire.send(&site.request("HEAD", "/doc", "", b"")).await;
        let answer = wire.answer(true).await;
        assert_eq!(answer.head.status(), 200, "{answer:?}");
        assert_eq!(
            answer.head.get("content-length"),
            Some("1000"),
            "HEAD keeps the GET length"
        );
        site.expect_echo(&mut wire, "/after-head").await;
    }
}

#[tokio::test]
async fn framing_204_and_304_have_no_body() {
    let proxy = Proxy::start(Options::default());
    let backend = raw_backend(|seen| match seen.head.path() {
        "/204" => reply("HTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n"),
        // Content-Length on a 304 describes the representation, not a body.
        "/304" => reply("HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\nContent-Length: 5\r\n\r\n"),
        _ => echo_path(seen),
    })
    .await;
    let site = Site::new(&proxy, backend.port).await;
    let mut wire = site.connect(&proxy).await;
    for (path, status) in [("/204", 204), ("/304", 304), ("/204", 204)] {
        wire.send(&site.request("GET", path, "If-None-Match: \"v1\"\r\n", b""))
            .await;
        let answer = wire.answer(false).await;
        assert_eq!(answer.head.status(), status, "{answer:?}");
        assert!(!answer.head.chunked(), "{status} framed as chunked");
        site.expect_echo(&mut wire, "/after").await;
    }
}

#[tokio::test]
async fn framing_pipelined_requests_answered_in_order() {
    let proxy = Proxy::start(Options::default());
    let backend = raw_backend(|seen| {
        let mut r = ok(format!("{} {}", seen.head.path(), seen.body.len()));
        if seen.head.path() == "/first" {
            // The first answer is the slowest: order must still hold.
            r.delay = Duration::from_millis(300);
        }
        r
    })
    .await;
    let site = Site::new(&proxy, backend.port).await;
    let mut wire = site.connect(&proxy).await;
    let mut batch = site.get("/first");
    batch.extend(site.request("POST", "/second", "Content-Length: 5\r\n", b"hello"));
    batch.extend(site.get("/third"));
    wire.send(&batch).await;
    for expected in ["/first 0", "/second 5", "/third 0"] {
        let answer = wire.answer(false).await;
        assert_eq!(answer.head.status(), 200);
        assert_eq!(answer.text(), expected);
    }
}

#[tokio::test]
async fn framing_backend_closing_after_each_response_is_survived() {
    let proxy = Proxy::start(Options::default());
    let backend = raw_backend(|seen| Reply {
        close: true,
        ..echo_path(seen)
    })
    .await;
    let site = Site::new(&proxy, backend.port).await;
    let mut wire = site.connect(&proxy).await;
    for i in 0..5 {
        site.expect_echo(&mut wire, &format!("/n{i}")).await;
    }
    assert_eq!(backend.seen().len(), 5);
}

/// Answers `/up` with the length and SHA-256 of the body it received, and
/// echoes the path of anything else.
async fn upload_backend() -> RawBackend {
    raw_backend(|seen| match seen.head.path() {
        "/up" => ok(format!("{} {}", seen.body.len(), digest(&seen.body))),
        _ => echo_path(seen),
    })
    .await
}

#[tokio::test]
async fn framing_content_length_uploads_arrive_exactly() {
    let proxy = Proxy::start(Options::default());
    let backend = upload_backend().await;
    let site = Site::new(&proxy, backend.port).await;
    let mut wire = site.connect(&proxy).await;
    for size in [10 * 1024, 1024 * 1024] {
        let body: Vec<u8> = (0..size).map(|i| pattern_byte(i * 3)).collect();
        let headers = format!("Content-Length: {size}\r\n");
        wire.send(&site.request("POST", "/up", &headers, &body))
            .await;
        let answer = wire.answer(false).await;
        assert_eq!(answer.head.status(), 200);
        assert_eq!(answer.text(), format!("{size} {}", digest(&body)));
    }
    site.expect_echo(&mut wire, "/after").await;
}

#[tokio::test]
async fn framing_chunked_upload_is_decoded() {
    let proxy = Proxy::start(Options::default());
    let backend = upload_backend().await;
    let site = Site::new(&proxy, backend.port).await;
    let big = pattern(100_000);
    let mut body = b"4;name=val\r\nWiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n".to_vec();
    body.extend(format!("{:X}\r\n", big.len()).bytes());
    body.extend(&big);
    body.extend(b"\r\n0\r\nX-Trailer: 1\r\n\r\n");
    let mut expected = b"Wikipedia in\r\n\r\nchunks.".to_vec();
    expected.extend(&big);

    let mut wire = site.connect(&proxy).await;
    wire.send(&site.request("POST", "/up", "Transfer-Encoding: chunked\r\n", &body))
        .await;
    let answer = wire.answer(false).await;
    assert_eq!(answer.head.status(), 200);
    assert_eq!(
        answer.text(),
        format!("{} {}", expected.len(), digest(&expected))
    );
    site.expect_echo(&mut wire, "/after").await;
    let up = backend
        .seen()
        .into_iter()
        .find(|s| s.head.path() == "/up")
        .unwrap();
    assert!(
        !(up.head.chunked() && up.head.has("content-length")),
        "both framings forwarded: {:?}",
        up.head
    );
}

/// A chunked upload that breaks off into garbage is the client's fault: it
/// gets 400, not the 502 of a backend failure, and the backend-error count
/// that operators watch stays at zero.
#[tokio::test]
async fn framing_malformed_chunked_upload_is_a_400_not_a_backend_error() {
    let proxy = Proxy::start(Options::default());
    let backend = upload_backend().await;
    let site = Site::new(&proxy, backend.port).await;
    for body in [
        &b"5\r\nhello\r\nzz\r\n"[..],
        b"5\r\nhelloXX0\r\n\r\n",
        b"fffffffffffffffffffff\r\n",
    ] {
        let mut wire = site.connect(&proxy).await;
        wire.send(&site.request("POST", "/up", "Transfer-Encoding: chunked\r\n", body))
            .await;
        let answer = wire.answer(false).await;
        assert_eq!(
            answer.head.status(),
            400,
            "{}: {}",
            String::from_utf8_lossy(body),
            answer.text()
        );
    }
    let metrics = proxy.metrics().await;
    assert!(
        metrics.contains("jrps_upstream_errors_total 0"),
        "client garbage counted as backend errors:\n{metrics}"
    );
}

#[tokio::test]
async fn framing_ambiguous_request_framing_is_not_smuggled() {
    let proxy = Proxy::start(Options::default());
    let backend = raw_backend(echo_path).await;
    let site = Site::new(&proxy, backend.port).await;
    let smuggled = site.get("/smuggled");
    let mut te_body = b"0\r\n\r\n".to_vec();
    te_body.extend(&smuggled);
    let cl = format!("Content-Length: {}\r\n", te_body.len());
    let te = "Transfer-Encoding: chunked\r\n";
    // (what, request, may the proxy forward it by Transfer-Encoding alone)
    let cases = [
        (
            "CL then TE",
            site.request("POST", "/a", &format!("{cl}{te}"), &te_body),
            true,
        ),
        (
            "TE then CL",
            site.request("POST", "/b", &format!("{te}{cl}"), &te_body),
            true,
        ),
        (
            "two Content-Lengths",
            site.request(
                "POST",
                "/c",
                &format!("Content-Length: 0\r\n{cl}"),
                &te_body,
            ),
            false,
        ),
        (
            "chunked not last",
            site.request(
                "POST",
                "/d",
                "Transfer-Encoding: chunked, identity\r\n",
                &te_body,
            ),
            false,
        ),
    ];
    for (what, request, may_forward) in cases {
        let mut wire = site.connect(&proxy).await;
        wire.send(&request).await;
        if let Some(answer) = wire.try_answer(false).await {
            let status = answer.head.status();
            assert!(
                status == 400 || (may_forward && status == 200),
                "{what}: {answer:?}"
            );
        }
        // RFC 9112 §6.1/§6.3: close after answering such a request.
        assert!(wire.closes().await, "{what}: connection kept open");
    }
    let seen = backend.seen();
    assert!(
        seen.iter().all(|s| s.head.path() != "/smuggled"),
        "smuggled request reached the backend: {seen:?}"
    );
    for s in &seen {
        assert!(
            !(s.head.chunked() && s.head.has("content-length")),
            "both framings forwarded: {:?}",
            s.head
        );
        assert!(s.body.is_empty(), "{:?}", s);
    }
}

#[tokio::test]
async fn framing_hop_by_hop_headers_stay_on_their_hop() {
    let proxy = Proxy::start(Options::default());
    let backend = raw_backend(|_| {
        reply(
            "HTTP/1.1 200 OK\r\nConnection: x-bar\r\nX-Bar: 1\r\nKeep-Alive: timeout=5\r\n\
             X-Stays: 1\r\nContent-Length: 2\r\n\r\nok",
        )
    })
    .await;
    let site = Site::new(&proxy, backend.port).await;
    let mut wire = site.connect(&proxy).await;
    // A keep-alive request first, then one that closes: the proxy may serve
    // the two differently (the fast path leaves `Connection: close` to
    // hyper), and both must keep every hop's headers to that hop.
    for (round, connection) in ["keep-alive, X-Foo", "close, X-Foo"]
        .into_iter()
        .enumerate()
    {
        wire.send(&site.request(
            "GET",
            "/hop",
            &format!(
                "Connection: {connection}\r\nX-Foo: 1\r\nKeep-Alive: 5\r\nTE: trailers\r\n\
                 Proxy-Connection: keep-alive\r\nX-Keep: yes\r\n\
                 X-Forwarded-For: 192.0.2.66\r\nX-Real-IP: 192.0.2.66\r\n"
            ),
            b"",
        ))
        .await;
        let answer = wire.answer(false).await;
        assert_eq!(answer.head.status(), 200);
        assert_eq!(answer.text(), "ok");
        for gone in ["x-bar", "keep-alive"] {
            assert!(
                !answer.head.has(gone),
                "{gone} reached the client: {answer:?}"
            );
        }
        assert!(!answer.head.connection_lists("x-bar"), "{answer:?}");
        assert_eq!(answer.head.get("x-stays"), Some("1"));

        let seen = backend.seen();
        assert_eq!(seen.len(), round + 1);
        let head = &seen[round].head;
        for gone in ["x-foo", "keep-alive", "te", "proxy-connection"] {
            assert!(!head.has(gone), "{gone} reached the backend: {head:?}");
        }
        assert!(!head.connection_lists("x-foo"), "{head:?}");
        assert_eq!(head.get("x-keep"), Some("yes"));
        assert_eq!(head.get("host"), Some(site.host().as_str()));
        assert_eq!(head.get("x-forwarded-host"), Some(site.host().as_str()));
        // At the edge the client's own claims are replaced, not extended.
        assert_eq!(head.get("x-forwarded-for"), Some("127.0.0.1"), "{head:?}");
        assert_eq!(head.get("x-real-ip"), Some("127.0.0.1"), "{head:?}");
        assert_eq!(head.get("x-forwarded-proto"), Some("https"));
    }
    assert!(wire.closes().await, "Connection: close did not close");
}

#[tokio::test]
async fn framing_broken_backends_give_502_and_others_go_on() {
    let proxy = Proxy::start(Options::default());
    let garbage = raw_backend(|_| Reply {
        close: true,
        ..reply("HELLO\r\n\r\n")
    })
    .await;
    let refused = {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        listener.local_addr().unwrap().port()
    };
    let healthy = raw_backend(echo_path).await;
    let garbage_site = Site::new(&proxy, garbage.port).await;
    let refused_site = Site::new(&proxy, refused).await;
    let healthy_site = Site::new(&proxy, healthy.port).await;

    for site in [&garbage_site, &refused_site] {
        let mut wire = site.connect(&proxy).await;
        // Twice on one connection: a 502 does not end the client's connection.
        for _ in 0..2 {
            wire.send(&site.get("/x")).await;
            let answer = wire.answer(false).await;
            assert_eq!(answer.head.status(), 502, "{answer:?}");
            assert!(answer.text().contains(&site.alias), "{}", answer.text());
        }
    }
    let mut wire = healthy_site.connect(&proxy).await;
    healthy_site.expect_echo(&mut wire, "/fine").await;
}

#[tokio::test]
async fn framing_truncated_backend_body_is_not_passed_off_as_complete() {
    let proxy = Proxy::start(Options::default());
    let backend = raw_backend(|_| Reply {
        close: true,
        ..reply("HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\nonly ten b")
    })
    .await;
    let site = Site::new(&proxy, backend.port).await;
    let mut wire = site.connect(&proxy).await;
    wire.send(&site.get("/short")).await;
    let head = timeout(WAIT, wire.head())
        .await
        .expect("no response in time");
    let Some(head) = head else { return };
    if head.status() == 502 {
        return;
    }
    assert_eq!(head.status(), 200, "{head:?}");
    // The client must see the connection end short of the promised body.
    let ended = timeout(WAIT, async { while wire.fill().await {} }).await;
    assert!(ended.is_ok(), "truncated body left the client hanging");
    let promised = head
        .get("content-length")
        .map(|l| l.parse::<usize>().unwrap());
    if head.chunked() {
        assert!(
            !wire.buf.ends_with(b"0\r\n\r\n"),
            "truncated body was terminated as if complete"
        );
    } else {
        assert!(
            promised.is_some_and(|p| wire.buf.len() < p),
            "truncated body looks complete: {head:?}, {} bytes",
            wire.buf.len()
        );
    }
}

#[tokio::test]
async fn framing_early_hints_then_final_response() {
    let proxy = Proxy::start(Options::default());
    let backend = raw_backend(|seen| match seen.head.path() {
        "/hints" => reply(
            "HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n\
             HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfinal",
        ),
        _ => echo_path(seen),
    })
    .await;
    let site = Site::new(&proxy, backend.port).await;
    let mut wire = site.connect(&proxy).await;
    wire.send(&site.get("/hints")).await;
    let answer = wire.answer(false).await;
    assert_eq!(answer.head.status(), 200, "{answer:?}");
    assert_eq!(answer.text(), "final");
    assert!(answer.interim.iter().all(|s| *s == 103), "{answer:?}");
    site.expect_echo(&mut wire, "/after").await;
}

#[tokio::test]
async fn framing_expect_100_continue_upload() {
    let proxy = Proxy::start(Options::default());
    let backend =
        raw_backend(|seen| ok(format!("{} {}", seen.body.len(), digest(&seen.body)))).await;
    let site = Site::new(&proxy, backend.port).await;
    let body = pattern(50_000);
    let mut wire = site.connect(&proxy).await;
    let headers = format!("Content-Length: {}\r\nExpect: 100-continue\r\n", body.len());
    wire.send(&site.request("POST", "/up", &headers, b"")).await;
    // The backend needs the body to answer, so the client must be told
    // to go on.
    let interim = timeout(WAIT, wire.head())
        .await
        .expect("no 100 Continue in time")
        .expect("closed instead of 100 Continue");
    assert_eq!(interim.status(), 100, "{interim:?}");
    wire.send(&body).await;
    let answer = wire.answer(false).await;
    assert_eq!(answer.head.status(), 200);
    assert_eq!(answer.text(), format!("{} {}", body.len(), digest(&body)));
}

#[tokio::test]
async fn framing_http10_client_gets_a_closed_connection() {
    let proxy = Proxy::start(Options::default());
    // Chunked from the backend, which an HTTP/1.0 client cannot read.
    let backend = raw_backend(|_| {
        reply("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nold\r\n5\r\n-time\r\n0\r\n\r\n")
    })
    .await;
    let site = Site::new(&proxy, backend.port).await;
    let mut wire = site.connect(&proxy).await;
    let mut request = site.get("/old");
    let at = find(&request, b"HTTP/1.1").unwrap();
    request[at..at + 8].copy_from_slice(b"HTTP/1.0");
    wire.send(&request).await;
    let answer = wire.answer(false).await;
    assert_eq!(answer.head.status(), 200, "{answer:?}");
    assert!(
        !answer.head.chunked(),
        "chunked sent to HTTP/1.0: {answer:?}"
    );
    assert_eq!(answer.text(), "old-time");
    assert!(wire.closes().await, "HTTP/1.0 connection kept open");
}

#[tokio::test]
async fn framing_huge_response_heads_are_answered() {
    let proxy = Proxy::start(Options::default());
    let backend = raw_backend(|seen| {
        let (count, size) = match seen.head.path() {
            "/wide" => (60, 1000),
            "/many" => (1500, 30),
            _ => (0, 0),
        };
        let mut head = String::from("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n");
        for i in 0..count {
            head.push_str(&format!("X-H{i}: {}\r\n", "v".repeat(size)));
        }
        head.push_str("\r\nfat");
        reply(head)
    })
    .await;
    let site = Site::new(&proxy, backend.port).await;
    for path in ["/wide", "/many"] {
        let mut wire = site.connect(&proxy).await;
        wire.send(&site.get(path)).await;
        let answer = wire.answer(false).await;
        match answer.head.status() {
            200 => assert_eq!(answer.text(), "fat"),
            502 => {}
            other => panic!("{path}: {other}"),
        }
    }
    let mut wire = site.connect(&proxy).await;
    wire.send(&site.get("/small")).await;
    let answer = wire.answer(false).await;
    assert_eq!(answer.head.status(), 200);
    assert_eq!(answer.text(), "fat");
}

#[tokio::test]
async fn framing_slow_request_head_is_served() {
    let proxy = Proxy::start(Options::default());
    let backend = raw_backend(echo_path).await;
    let site = Site::new(&proxy, backend.port).await;
    let mut wire = site.connect(&proxy).await;
    let request = site.get("/slowly");
    let pause = Duration::from_millis(1000 / request.len() as u64);
    for byte in &request {
        wire.send(std::slice::from_ref(byte)).await;
        tokio::time::sleep(pause).await;
    }
    let answer = wire.answer(false).await;
    assert_eq!(answer.head.status(), 200);
    assert_eq!(answer.text(), "/slowly");
    site.expect_echo(&mut wire, "/then-fast").await;
}

#[tokio::test]
async fn framing_request_head_size_limit() {
    // 8 KiB: a head over the limit still fits in one read, so whoever
    // serves it must check the limit itself.
    for limit in [8 * 1024, 16 * 1024] {
        let proxy = Proxy::start(Options {
            extra: format!("[limits]\nmax_header_bytes = {limit}\n"),
            ..Options::default()
        });
        let backend =
            raw_backend(|seen| ok(seen.head.get("x-pad").map_or(0, str::len).to_string())).await;
        let site = Site::new(&proxy, backend.port).await;
        let head_with_pad = |total: usize| {
            let base = site.request("GET", "/pad", "X-Pad: \r\n", b"").len();
            let pad = "p".repeat(total - base);
            (
                site.request("GET", "/pad", &format!("X-Pad: {pad}\r\n"), b""),
                pad.len(),
            )
        };

        let (request, pad) = head_with_pad(limit - 1024);
        let mut wire = site.connect(&proxy).await;
        wire.send(&request).await;
        let answer = wire.answer(false).await;
        assert_eq!(answer.head.status(), 200, "limit {limit}: {answer:?}");
        assert_eq!(answer.text(), pad.to_string());

        let (request, _) = head_with_pad(limit + 1024);
        let mut wire = site.connect(&proxy).await;
        wire.send(&request).await;
        let answer = wire.answer(false).await;
        assert!(
            [431, 400].contains(&answer.head.status()),
            "limit {limit}: {answer:?}"
        );
        assert_eq!(
            backend.seen().len(),
            1,
            "limit {limit}: oversized head reached the backend"
        );
    }
}

/// The same backend answers as the tests above, to an HTTP/2 client (as
/// browsers are): each reaches it decoded and whole, or visibly broken.
#[tokio::test]
async fn framing_http2_clients_get_every_kind_of_backend_body() {
    let proxy = Proxy::start(Options::default());
    let big = pattern(70_000);
    let chunked = {
        let mut b =
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n1;ext=1\r\n \r\n"
                .to_vec();
        b.extend(format!("{:x}\r\n", big.len()).bytes());
        b.extend(&big);
        b.extend(b"\r\n0\r\nX-Sum: 42\r\n\r\n");
        b
    };
    let until_close = {
        let mut b = b"HTTP/1.1 200 OK\r\n\r\n".to_vec();
        b.extend(&big);
        b
    };
    let backend = raw_backend(move |seen| match (seen.head.method(), seen.head.path()) {
        ("HEAD", _) => reply("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"),
        (_, "/chunked") => reply(chunked.clone()),
        (_, "/eof") => Reply {
            close: true,
            ..reply(until_close.clone())
        },
        (_, "/204") => reply("HTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n"),
        (_, "/304") => {
            reply("HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\nContent-Length: 5\r\n\r\n")
        }
        (_, "/hints") => reply(
            "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n\
             HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfinal",
        ),
        (_, "/short") => Reply {
            close: true,
            ..reply("HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\nonly ten b")
        },
        (_, "/garbage") => Reply {
            close: true,
            ..reply("HELLO\r\n\r\n")
        },
        (_, "/set-cookie") => reply(
            "HTTP/1.1 200 OK\r\nSet-Cookie: a=1; Domain=example.org; Path=/\r\n\
             Connection: close, X-Secret\r\nX-Secret: 1\r\nContent-Length: 2\r\n\r\nok",
        ),
        // Closes after every answer: the next request finds its pooled
        // connection closed and must go again on a new one.
        (_, path) if path.starts_with("/closing") => Reply {
            close: true,
            ..echo_path(seen)
        },
        _ => echo_path(seen),
    })
    .await;
    let site = Site::new(&proxy, backend.port).await;
    let mut h2 = site.connect_h2(&proxy).await;
    let ok_body = |answer: &H2Answer| answer.body.clone().expect("body cut short");

    let mut expected = b"hello ".to_vec();
    expected.extend(&big);
    for _ in 0..2 {
        let answer = h2.send("GET", "/chunked").await;
        assert_eq!(answer.status, 200);
        assert!(ok_body(&answer) == expected, "chunked body corrupted");
    }
    let answer = h2.send("GET", "/eof").await;
    assert_eq!(answer.status, 200);
    assert!(ok_body(&answer) == big, "close-delimited body corrupted");
    let answer = h2.send("HEAD", "/doc").await;
    assert_eq!((answer.status, ok_body(&answer).len()), (200, 0));
    assert_eq!(
        answer.headers["content-length"], "1000",
        "HEAD keeps the GET length"
    );
    for (path, status) in [("/204", 204), ("/304", 304)] {
        let answer = h2.send("GET", path).await;
        assert_eq!(
            (answer.status, ok_body(&answer).len()),
            (status, 0),
            "{path}"
        );
    }
    let answer = h2.send("GET", "/hints").await;
    assert_eq!((answer.status, ok_body(&answer)), (200, b"final".to_vec()));
    let answer = h2.send("GET", "/set-cookie").await;
    assert_eq!(answer.headers["set-cookie"], "a=1; Path=/", "{answer:?}");
    assert!(!answer.headers.contains_key("x-secret"), "{answer:?}");
    // The stream is reset; whether the head got out before depends on how
    // fast the backend closed.
    if let Ok(answer) = h2.try_send("GET", "/short").await {
        assert_eq!(answer.status, 200);
        assert!(
            answer.body.is_err(),
            "a truncated body looked complete: {answer:?}"
        );
    }
    let answer = h2.send("GET", "/garbage").await;
    assert_eq!(answer.status, 502);
    assert!(String::from_utf8_lossy(&ok_body(&answer)).contains(&site.alias));
    for i in 0..5 {
        let path = format!("/closing{i}");
        let answer = h2.send("GET", &path).await;
        assert_eq!((answer.status, ok_body(&answer)), (200, path.into_bytes()));
    }
    // All on the one client connection, which the failures did not end.
    let answer = h2.send("GET", "/after").await;
    assert_eq!((answer.status, ok_body(&answer)), (200, b"/after".to_vec()));
}
