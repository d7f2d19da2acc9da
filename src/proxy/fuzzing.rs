//! Entry points for the fuzz targets in `fuzz/` and for the test that
//! replays their corpus: not an API. Each runs one input through a piece
//! of the proxy and panics when the oracle says the result is wrong.

use crate::proxy::request::fastpath::{Rules, take};

const RULES: Rules<'static> = Rules {
    max_header_bytes: 16 * 1024,
    behind_tls: false,
    https: true,
    client_ip: "192.0.2.7",
};

/// The fast path's head parsing and rewriting, admitting every request
/// that names a host. Oracle: either the fast path leaves the request to
/// hyper (which then answers it, 4xx included), or the bytes it would
/// send the backend parse as exactly one request: the same method and
/// path, one `Host` equal to the client's, framing that says exactly the
/// body it parsed, and nothing the forwarding policy must keep from a
/// backend.
pub fn fast_path_request(data: &[u8]) {
    let mut out = Vec::new();
    let Some((host, taken)) = take(data, &RULES, &mut out, |c| Some(c.host.to_owned())) else {
        return;
    };
    assert!(taken.consumed <= data.len(), "consumed past the input");

    let mut headers = [httparse::EMPTY_HEADER; 128];
    let mut req = httparse::Request::new(&mut headers);
    let head_len = match req.parse(&out) {
        Ok(httparse::Status::Complete(n)) => n,
        other => panic!(
            "the backend's head does not parse: {other:?}\n{}",
            show(&out)
        ),
    };
    assert_eq!(req.method, Some(taken.method), "{}", show(&out));
    assert_eq!(req.path, Some(taken.path), "{}", show(&out));
    let fields = |name: &str| {
        req.headers
            .iter()
            .filter(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value)
            .collect::<Vec<_>>()
    };
    assert_eq!(fields("host"), [host.as_bytes()], "{}", show(&out));
    assert!(fields("transfer-encoding").is_empty(), "{}", show(&out));
    for claim in ["x-scheme", "forwarded", "x-forwarded-port"] {
        assert!(
            fields(claim).is_empty(),
            "{claim} forwarded\n{}",
            show(&out)
        );
    }
    let lengths = fields("content-length");
    assert!(lengths.len() <= 1, "{}", show(&out));
    let body = &out[head_len..];
    let declared = lengths
        .first()
        .map(|v| std::str::from_utf8(v).unwrap().parse::<usize>().unwrap())
        .unwrap_or(0);
    assert_eq!(
        declared,
        body.len(),
        "framing does not match the body\n{}",
        show(&out)
    );
    assert_eq!(
        body,
        &data[taken.consumed - body.len()..taken.consumed],
        "the body is not the client's"
    );
    for cookie in fields("cookie") {
        for (name, _) in crate::proxy::request::edge_auth::cookie_pairs(cookie) {
            assert!(
                !crate::proxy::request::edge_auth::is_edge_cookie(name),
                "edge cookie forwarded"
            );
        }
    }
}

fn show(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
