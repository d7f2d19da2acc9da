//! Every HTML page the proxy shows a browser itself: starting, 403, 404,
//! 404 (ended), 502, and the generic 400/503. Plain, self-contained (no
//! external assets, a CSP that forbids everything but inline style), each
//! naming the alias and saying what to do next. Status codes come from
//! [`Failure::status`], never from here.

use bytes::Bytes;
use http::Response;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use http_body_util::Full;

use super::status::Failure;

/// How often the "starting" page reloads itself, in seconds.
pub const STARTING_REFRESH_S: u32 = 2;

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// The page for `failure` about `name` (an alias, or the Host as sent).
pub fn page(failure: Failure, name: &str) -> Response<Full<Bytes>> {
    let name = escape(name);
    let (title, body, refresh) = match failure {
        Failure::Starting => (
            "Jupyter is starting",
            format!(
                "<p>The session <code>{name}</code> exists, but its Jupyter server has not \
                 reported in yet. This usually takes a few seconds after the job starts; \
                 if the job is still queued it can take longer.</p>\
                 <p>This page reloads itself every {STARTING_REFRESH_S} seconds. \
                 On the login node, <code>jrps ls</code> shows the job's state.</p>"
            ),
            true,
        ),
        Failure::NoCredentials => (
            "Access needs the session link",
            format!(
                "<p>The session <code>{name}</code> is private. Open the full link that \
                 <code>jrps up</code> printed (it ends in <code>?token=…</code>) once; this \
                 browser is then remembered for the session.</p>\
                 <p>Lost the link? Run <code>jrps url</code> on the login node.</p>"
            ),
            false,
        ),
        Failure::UnknownAlias => (
            "No such session",
            format!(
                "<p>There is no session called <code>{name}</code> here. Check the address \
                 for typos; a session that ended long ago is forgotten.</p>\
                 <p><code>jrps ls</code> on the login node lists your sessions; \
                 <code>jrps up</code> starts a new one.</p>"
            ),
            false,
        ),
        Failure::Ended => (
            "Session ended",
            format!(
                "<p>The session <code>{name}</code> has ended: its job finished, reached its \
                 time limit, was stopped, or its Jupyter server stopped answering.</p>\
                 <p>Start a new one with <code>jrps up</code>; \
                 <code>jrps logs</code> shows what the last one printed.</p>"
            ),
            false,
        ),
        Failure::BackendUnreachable => (
            "Jupyter is not answering",
            format!(
                "<p>The proxy could not reach the Jupyter server of <code>{name}</code> on its \
                 compute node. It may be busy, restarting, or its job may have stopped.</p>\
                 <p>Reload in a moment. If this persists, check the job with \
                 <code>jrps ls</code> and <code>jrps logs</code>.</p>"
            ),
            false,
        ),
        Failure::Unavailable => (
            "Proxy unavailable",
            "<p>The proxy is restarting or overloaded. Reload in a moment.</p>".to_owned(),
            false,
        ),
        _ => (
            "Bad request",
            format!("<p>The proxy could not understand this request for <code>{name}</code>.</p>"),
            false,
        ),
    };
    let refresh = if refresh {
        format!("<meta http-equiv=\"refresh\" content=\"{STARTING_REFRESH_S}\">")
    } else {
        String::new()
    };
    let status = failure.status();
    let html = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">{refresh}\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title} · jrps</title>\
         <style>body{{font-family:system-ui,sans-serif;max-width:40em;margin:4em auto;\
         padding:0 1em;line-height:1.5;color:#222}}code{{background:#eee;padding:0 .2em}}\
         small{{color:#666}}</style></head>\
         <body><h1>{title}</h1>{body}<p><small>{} {} · jrps proxy</small></p></body></html>\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or(""),
    );
    let mut response = Response::new(Full::new(Bytes::from(html)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        "content-security-policy",
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'"),
    );
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    if failure == Failure::Starting {
        headers.insert(RETRY_AFTER, HeaderValue::from(STARTING_REFRESH_S));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_escape_the_name() {
        let r = page(Failure::UnknownAlias, "<script>");
        assert_eq!(r.status(), 404);
    }
}
