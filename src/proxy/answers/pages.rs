//! Every HTML page the proxy shows a browser itself: starting, 403, 404,
//! 404 (ended), 502, and the generic 400/503. Plain, self-contained (no
//! external assets, a CSP that forbids everything but inline style), each
//! naming the alias and saying what to do next. Status codes come from
//! [`Failure::status`], never from here.

use bytes::Bytes;
use http::Response;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use http_body_util::Full;

use crate::api::{EndReason, Phase};
use crate::proxy::answers::failure::Failure;
use crate::proxy::answers::phases::Reported;

/// How often the "starting" page reloads itself, in seconds.
pub const STARTING_REFRESH_S: u32 = 2;

/// The one look of every page: a white card on a light background, one
/// accent colour, the system font. No external resources.
const STYLE: &str = "\
body{margin:0;background:#f3f5f8;color:#1f2328;font:16px/1.55 system-ui,-apple-system,\
'Segoe UI','DejaVu Sans',sans-serif}\
main{max-width:36em;margin:3em auto;padding:1.5em 2em;background:#fff;border:1px solid #d8dee4;\
border-radius:8px}\
.brand{margin:0;font-weight:700;letter-spacing:.05em;color:#0b6bcb}\
h1{font-size:1.5em;margin:.3em 0 .6em}\
code{font:.92em ui-monospace,'DejaVu Sans Mono',monospace;background:#eef1f4;padding:.1em .3em;\
border-radius:4px}\
.next{border-left:3px solid #0b6bcb;padding-left:.8em}\
.foot{color:#6e7781;font-size:.85em;margin-top:2em}\
small{color:#6e7781}\
.steps{padding-left:1.4em}.steps li{margin:.3em 0}\
.announcement{background:#fff8c5;border:1px solid #d4a72c;border-radius:6px;padding:.5em .8em}\
.steps .done{color:#6e7781}.steps .now{font-weight:600}.steps .later{color:#8c959f}\
.steps .now::marker{color:#0b6bcb}";

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
    render(failure, name, &Page::default())
}

/// The "starting" page, with what the launcher last reported about the job;
/// `restarted` when the job was started again after its node failed.
pub fn starting(
    alias: &str,
    reported: Option<&Reported>,
    restarted: bool,
    announcement: Option<&str>,
) -> Response<Full<Bytes>> {
    let page = Page {
        reported,
        reason: None,
        restarted,
        announcement,
    };
    render(Failure::Starting, alias, &page)
}

/// The "session ended" page, saying why when that is known.
pub fn ended(alias: &str, reason: Option<EndReason>) -> Response<Full<Bytes>> {
    let page = Page {
        reason,
        ..Page::default()
    };
    render(Failure::Ended, alias, &page)
}

/// Why a session ended, as the end of the sentence "The session … has ended".
fn ended_because(reason: Option<EndReason>) -> &'static str {
    match reason {
        Some(EndReason::Idle) => {
            ": nobody used it for its idle timeout, so its Jupyter server was stopped and \
             its job gave its compute node back"
        }
        Some(EndReason::TimeLimit) => ": its job reached its time limit",
        Some(EndReason::Cancelled) => ": its job was cancelled",
        Some(EndReason::JupyterExited) => {
            ": its Jupyter server stopped (shut down from its menu, or it crashed)"
        }
        Some(EndReason::JobFailed) => ": its job failed before Jupyter was running",
        Some(EndReason::Expired) => ": its time ran out",
        Some(EndReason::Unreachable) => ": its Jupyter server stopped answering",
        Some(EndReason::NeverSubmitted) => ": its launch never submitted a job for it",
        Some(EndReason::NodeFailed) => ": its compute node failed",
        None => {
            ": its job finished, reached its time limit, was stopped, or its Jupyter \
             server stopped answering"
        }
    }
}

/// Slurm's common pending reasons in words; others are shown as they are.
fn reason_words(reason: &str) -> Option<&'static str> {
    Some(match reason {
        "Priority" => "other jobs are ahead of it",
        "Resources" => "it waits for a free node",
        "BeginTime" => "its start time has not come yet",
        "Dependency" => "it waits for another job",
        "JobHeldUser" | "JobHeldAdmin" => "it is held",
        "ReqNodeNotAvail" => "the nodes it needs are not available",
        "QOSMaxJobsPerUserLimit" | "AssocMaxJobsLimit" => "you have reached your job limit",
        "None" => return None,
        _ => return None,
    })
}

/// The steps of a launch as a list, the current one marked.
fn steps(reported: Option<&Reported>) -> String {
    let detail = reported
        .and_then(|r| r.detail.as_deref())
        .map(escape)
        .unwrap_or_default();
    let current = match reported.map(|r| r.phase) {
        Some(Phase::Queued) => 0,
        Some(Phase::Running) | Some(Phase::Starting) => 1,
        None => 1,
    };
    let queued = match reported {
        Some(Reported {
            phase: Phase::Queued,
            detail: Some(reason),
        }) => match reason_words(reason) {
            Some(words) => format!("Queued: {words} <small>({detail})</small>"),
            None if reason == "None" => "Queued".to_owned(),
            None => format!("Queued <small>({detail})</small>"),
        },
        _ => "Queued".to_owned(),
    };
    let running = match reported {
        Some(Reported {
            phase: Phase::Running,
            detail: Some(_),
        }) => format!("Running on <code>{detail}</code>: Jupyter is starting"),
        _ => "Running: Jupyter is starting".to_owned(),
    };
    let items = [
        queued,
        running,
        "Ready: this page becomes JupyterLab".to_owned(),
    ];
    let mut html = String::from("<ol class=\"steps\">");
    for (i, item) in items.iter().enumerate() {
        let class = match i.cmp(&current) {
            std::cmp::Ordering::Less => "done",
            std::cmp::Ordering::Equal => "now",
            std::cmp::Ordering::Greater => "later",
        };
        html.push_str(&format!("<li class=\"{class}\">{item}</li>"));
    }
    html.push_str("</ol>");
    html
}

/// What a page may say besides its failure: the launcher's report, why the
/// session ended, whether it is restarting, the site's announcement.
#[derive(Default)]
struct Page<'a> {
    reported: Option<&'a Reported>,
    reason: Option<EndReason>,
    restarted: bool,
    announcement: Option<&'a str>,
}

fn render(failure: Failure, name: &str, page: &Page) -> Response<Full<Bytes>> {
    let Page {
        reported,
        reason,
        restarted,
        announcement,
    } = *page;
    let name = escape(name);
    let (title, body, refresh) = match failure {
        Failure::Starting if restarted => (
            "Your session is restarting on another node",
            format!(
                "<p>The compute node of your session <code>{name}</code> failed, and the \
                 scheduler started its job again on another node. JupyterLab comes back at \
                 this same address: this page opens it by itself once it is ready.</p>\
                 <p class=\"next\">What ran before the failure is lost: kernels start \
                 afresh, so run your notebooks again, and changes that were not saved are \
                 gone. Saved files are kept.</p>\
                 <p>This page checks again every {STARTING_REFRESH_S} seconds.</p>"
            ),
            true,
        ),
        Failure::Starting => (
            match reported.map(|r| r.phase) {
                Some(Phase::Queued) => "Waiting for a compute node",
                _ => "Jupyter is starting",
            },
            format!(
                "<p>Your session <code>{name}</code> is on its way.</p>{}\
                 <p>This page checks again every {STARTING_REFRESH_S} seconds and opens \
                 JupyterLab by itself once it is ready: keep it open.</p>\
                 <p class=\"next\">Changed your mind? <code>jrps down {name}</code> on the \
                 login node cancels the job.</p>",
                steps(reported)
            ),
            true,
        ),
        Failure::NoCredentials => (
            "This session is private",
            format!(
                "<p>The session <code>{name}</code> opens only with the full link that \
                 <code>jrps up</code> printed, the one ending in <code>?token=…</code>. \
                 Open that link once; this browser is then let in for the rest of the \
                 session.</p>\
                 <p class=\"next\">Lost the link? <code>jrps url {name}</code> on the login node \
                 prints it again.</p>"
            ),
            false,
        ),
        Failure::CrossOrigin => (
            "Request from another site",
            format!(
                "<p>A page from another address tried to change something in the session \
                 <code>{name}</code>, or to connect to its kernels, using this browser's \
                 login. The proxy refused it.</p>\
                 <p class=\"next\">If you clicked something in your notebook, reload it \
                 from its own address and try again.</p>"
            ),
            false,
        ),
        Failure::UnknownAlias => (
            "No such session",
            format!(
                "<p>There is no session called <code>{name}</code> here. Check the address \
                 for typos; a session that ended a while ago is forgotten.</p>\
                 <p class=\"next\"><code>jrps ls</code> on the login node lists your \
                 sessions; <code>jrps up</code> starts a new one.</p>"
            ),
            false,
        ),
        Failure::Ended => (
            "Session ended",
            format!(
                "<p>The session <code>{name}</code> has ended{}. Files you saved are still \
                 in your folder on the cluster.</p>\
                 <p class=\"next\">Start a new one with <code>jrps up</code>; \
                 <code>jrps logs</code> shows what the last one printed.</p>",
                ended_because(reason)
            ),
            false,
        ),
        Failure::BackendUnreachable => (
            "Jupyter is not answering",
            format!(
                "<p>The session <code>{name}</code> exists, but its Jupyter server on the \
                 compute node did not answer. It may be busy or restarting, or its job may \
                 have stopped.</p>\
                 <p class=\"next\">Reload in a moment. If this goes on, \
                 <code>jrps ls</code> shows whether the job still runs and \
                 <code>jrps logs</code> what it printed.</p>"
            ),
            false,
        ),
        Failure::Unavailable => (
            "Proxy busy",
            "<p>The proxy is restarting or has too much to do right now.</p>\
             <p class=\"next\">Reload in a moment.</p>"
                .to_owned(),
            false,
        ),
        // The API's failures are answered in JSON and never as a page;
        // listed, so that a new failure must choose its page here.
        Failure::BadRequest
        | Failure::MalformedJson
        | Failure::InvalidField
        | Failure::Forbidden
        | Failure::NotFound
        | Failure::Conflict
        | Failure::BodyTooLarge
        | Failure::MethodNotAllowed
        | Failure::TooManySessions
        | Failure::Unauthenticated
        | Failure::Internal => (
            "Bad request",
            format!(
                "<p>The proxy could not understand this request for <code>{name}</code>.</p>\
                 <p class=\"next\">Check the address, or open the link <code>jrps up</code> \
                 printed.</p>"
            ),
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
         <style>{STYLE}</style></head>\
         <body><main><p class=\"brand\">jrps</p>{announcement}<h1>{title}</h1>{body}\
         <p class=\"foot\">{} {}</p></main></body></html>\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or(""),
        // Above the title, where a person waiting looks first.
        announcement = announcement.map_or(String::new(), |text| format!(
            "<p class=\"announcement\">{}</p>",
            escape(text)
        )),
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

    fn text(r: Response<Full<Bytes>>) -> String {
        use http_body_util::BodyExt;
        let collected = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(r.into_body().collect())
            .unwrap();
        String::from_utf8(collected.to_bytes().to_vec()).unwrap()
    }

    #[test]
    fn starting_page_shows_the_reported_phase_escaped() {
        let queued = Reported {
            phase: Phase::Queued,
            detail: Some("Priority".into()),
        };
        let html = text(starting("amber-otter-lagoon", Some(&queued), false, None));
        assert!(html.contains("Waiting for a compute node"), "{html}");
        assert!(html.contains("other jobs are ahead of it"), "{html}");
        assert!(html.contains("http-equiv=\"refresh\""), "{html}");
        let running = Reported {
            phase: Phase::Running,
            detail: Some("<b>node042</b>".into()),
        };
        let html = text(starting("amber-otter-lagoon", Some(&running), false, None));
        assert!(
            html.contains("Running on <code>&lt;b&gt;node042&lt;/b&gt;</code>"),
            "{html}"
        );
    }

    #[test]
    fn a_restarting_session_says_its_node_failed_and_what_is_lost() {
        let html = text(starting("amber-otter-lagoon", None, true, None));
        assert!(html.contains("restarting on another node"), "{html}");
        assert!(html.contains("kernels start afresh"), "{html}");
        assert!(html.contains("http-equiv=\"refresh\""), "{html}");
    }
}
