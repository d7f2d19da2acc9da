//! What a session runs. Each kind is one definition here (its names, how
//! the job helper knows it is up, how the user's token lets a browser in,
//! what counts as use) plus its lines in `batch/jrps-job.sh.j2`; the
//! launcher, the job helper and the proxy all read it from here.

use std::fmt;

use hmac::{KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SessionKind {
    #[default]
    Lab,
    Notebook,
    Voila,
    CodeServer,
}

/// One kind, whole.
#[derive(Debug)]
pub struct Definition {
    pub kind: SessionKind,
    /// As `-s` and profiles write it, and as `jrps ls` shows it.
    pub name: &'static str,
    /// What a person calls it ("JupyterLab is starting").
    pub title: &'static str,
    /// Other spellings `-s` takes (the original's `jupyterlab`).
    pub also: &'static [&'static str],
    /// The `jupyter` subcommand that serves it, for the Jupyter kinds.
    pub jupyter_subcommand: Option<&'static str>,
    pub ready: Readiness,
    pub login: Login,
    pub activity: Activity,
    /// Whether `--open` is the app's argument (a folder to open) rather
    /// than where Jupyter sends the browser first.
    pub open_as_argument: bool,
    /// Whether the page jrps puts inside Jupyter (time warnings, Save all,
    /// Extend, announcements) can show: it is a JupyterLab extension, which
    /// only JupyterLab and Notebook 7 load.
    pub page_inside: bool,
}

/// How the job helper learns the app is up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readiness {
    /// jupyter_server writes the port `--port=0` chose to
    /// `jpserver-PID.json` in the job's private runtime folder, then
    /// answers `GET /api`.
    JupyterRuntimeFile,
    /// The app listens on the port the job chose for it
    /// (`jrps register --free-port`) and answers `GET path` with 200.
    Http { path: &'static str },
}

/// How the token the user holds gets a browser in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Login {
    /// Jupyter checks the token itself: `?token=` sets its own cookie, API
    /// clients send `Authorization: token …`.
    JupyterToken,
    /// code-server checks its `code-server-session` cookie against
    /// `HASHED_PASSWORD`: the job sets that from the token, and the proxy,
    /// when it redeems `?token=`, sets the cookie (`code_server_login`).
    CodeServerCookie,
}

/// What the idle watch counts as use, besides a request through the proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activity {
    /// `/api/status`'s `last_activity` moving (kernel messages, terminal
    /// input, API calls), or a kernel busy.
    JupyterStatus,
    /// `/healthz`'s `lastHeartbeat` moving: code-server beats on every
    /// request and, every minute, while any connection is open.
    Heartbeat,
}

const DEFINITIONS: [Definition; 4] = [
    Definition {
        kind: SessionKind::Lab,
        name: "lab",
        title: "JupyterLab",
        open_as_argument: false,
        jupyter_subcommand: Some("lab"),
        also: &["jupyterlab"],
        ready: Readiness::JupyterRuntimeFile,
        login: Login::JupyterToken,
        activity: Activity::JupyterStatus,
        page_inside: true,
    },
    Definition {
        kind: SessionKind::Notebook,
        name: "notebook",
        title: "Jupyter Notebook",
        open_as_argument: false,
        jupyter_subcommand: Some("notebook"),
        also: &[],
        ready: Readiness::JupyterRuntimeFile,
        login: Login::JupyterToken,
        activity: Activity::JupyterStatus,
        page_inside: true,
    },
    // Voilà's extension of jupyter_server, under `jupyter server`: the
    // token, the runtime file and the status API are Jupyter's.
    Definition {
        kind: SessionKind::Voila,
        name: "voila",
        title: "Voilà",
        open_as_argument: false,
        jupyter_subcommand: Some("server"),
        also: &["voilà"],
        ready: Readiness::JupyterRuntimeFile,
        login: Login::JupyterToken,
        activity: Activity::JupyterStatus,
        page_inside: false,
    },
    Definition {
        kind: SessionKind::CodeServer,
        name: "code-server",
        title: "code-server",
        open_as_argument: true,
        jupyter_subcommand: None,
        also: &["vscode"],
        ready: Readiness::Http { path: "/healthz" },
        login: Login::CodeServerCookie,
        activity: Activity::Heartbeat,
        page_inside: false,
    },
];

impl SessionKind {
    pub fn parse(text: &str) -> Option<SessionKind> {
        let text = text.trim().to_lowercase();
        DEFINITIONS
            .iter()
            .find(|d| d.name == text || d.also.contains(&text.as_str()))
            .map(|d| d.kind)
    }

    /// `DEFINITIONS` is in the enum's order (a test holds it to that).
    pub fn definition(self) -> &'static Definition {
        &DEFINITIONS[self as usize]
    }

    pub fn name(self) -> &'static str {
        self.definition().name
    }

    /// Whether Jupyter serves the session (its token, API and kernels).
    pub fn is_jupyter(self) -> bool {
        self.definition().jupyter_subcommand.is_some()
    }

    /// Where Jupyter sends the browser first (`ServerApp.default_url`), for
    /// the Jupyter kinds: the notebook or folder the session opens, else
    /// the kind's own start. `open` is relative and has no `..` (checked by
    /// the launcher).
    pub fn start_url(self, open: Option<&str>) -> Option<String> {
        let encoded = open.map(|path| {
            path.split('/')
                .map(|part| percent_encoding::utf8_percent_encode(part, PATH_PART).to_string())
                .collect::<Vec<_>>()
                .join("/")
        });
        let notebook = open.is_some_and(|path| path.ends_with(".ipynb"));
        match (self, encoded) {
            (SessionKind::Lab, Some(path)) => Some(format!("/lab/tree/{path}")),
            (SessionKind::Notebook, Some(path)) if notebook => Some(format!("/notebooks/{path}")),
            (SessionKind::Notebook, Some(path)) => Some(format!("/tree/{path}")),
            (SessionKind::Voila, Some(path)) if notebook => Some(format!("/voila/render/{path}")),
            (SessionKind::Voila, Some(path)) => Some(format!("/voila/tree/{path}")),
            (SessionKind::Voila, None) => Some("/voila/tree".to_owned()),
            _ => None,
        }
    }

    /// Whether the proxy logs the browser in when it redeems the token
    /// (and so must be told the kind when the session is made).
    pub fn proxy_logs_in(self) -> bool {
        self.definition().login != Login::JupyterToken
    }

    /// The app's own login cookie, `(name, value)`, made from the token,
    /// for a kind the proxy logs in: what the proxy sets and what the job
    /// gives the app (`jrps register --login-secret` prints the value).
    pub fn app_login(self, token: &str) -> Option<(&'static str, String)> {
        match self.definition().login {
            Login::JupyterToken => None,
            Login::CodeServerCookie => Some((CODE_SERVER_COOKIE, code_server_login(token))),
        }
    }

    /// What `-s` takes, for error messages and help.
    pub fn allowed() -> String {
        DEFINITIONS
            .iter()
            .map(|d| match d.also.first() {
                Some(other) => format!("{} (or {other})", d.name),
                None => d.name.to_owned(),
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl fmt::Display for SessionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a path part keeps as is in a URL: RFC 3986's unreserved characters.
const PATH_PART: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// code-server's session cookie, as versions 4.0 to 4.106 name it and later
/// ones do unless given `--cookie-suffix` (which the job never gives).
const CODE_SERVER_COOKIE: &str = "code-server-session";

/// The password code-server's login form would take: derived from the
/// token, so that neither the proxy's state (the token's SHA-256) nor the
/// batch script holds it.
fn code_server_password(token: &str) -> String {
    let mut mac = <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(token.as_bytes())
        .expect("HMAC takes a key of any length");
    mac.update(b"jrps code-server password");
    hex::encode(mac.finalize().into_bytes())
}

/// What the job puts in `HASHED_PASSWORD` and the proxy in the
/// `code-server-session` cookie: code-server's legacy SHA-256 form of the
/// password, whose cookie is the hash itself (`isCookieValid`, method
/// `SHA256`), so the proxy needs no password hashing to log a browser in.
fn code_server_login(token: &str) -> String {
    hex::encode(Sha256::digest(code_server_password(token).as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_parses_from_each_of_its_names() {
        for d in &DEFINITIONS {
            assert_eq!(SessionKind::parse(d.name), Some(d.kind));
            assert_eq!(d.kind.definition().name, d.name);
            for other in d.also {
                assert_eq!(SessionKind::parse(other), Some(d.kind));
            }
        }
        assert_eq!(SessionKind::parse("rstudio"), None);
        assert_eq!(
            SessionKind::allowed(),
            "lab (or jupyterlab), notebook, voila (or voilà), code-server (or vscode)"
        );
    }

    #[test]
    fn each_jupyter_kind_starts_at_what_it_opens() {
        let nb = Some("results/week 1.ipynb");
        assert_eq!(
            SessionKind::Voila.start_url(nb).as_deref(),
            Some("/voila/render/results/week%201.ipynb")
        );
        assert_eq!(
            SessionKind::Voila.start_url(Some("results")).as_deref(),
            Some("/voila/tree/results")
        );
        assert_eq!(
            SessionKind::Voila.start_url(None).as_deref(),
            Some("/voila/tree")
        );
        assert_eq!(
            SessionKind::Lab.start_url(Some("a&b?.ipynb")).as_deref(),
            Some("/lab/tree/a%26b%3F.ipynb")
        );
        assert_eq!(
            SessionKind::Notebook.start_url(nb).as_deref(),
            Some("/notebooks/results/week%201.ipynb")
        );
        assert_eq!(SessionKind::Lab.start_url(None), None);
        assert_eq!(SessionKind::CodeServer.start_url(Some("src")), None);
    }

    #[test]
    fn the_code_server_login_is_neither_the_token_nor_its_stored_digest() {
        let token = "a".repeat(64);
        let login = code_server_login(&token);
        assert_eq!(login.len(), 64);
        assert_ne!(login, hex::encode(Sha256::digest(token.as_bytes())));
        assert_ne!(login, token);
        assert_ne!(login, code_server_login(&"b".repeat(64)));
        // The legacy method's hash of the password is what code-server
        // compares the cookie with.
        assert_eq!(
            login,
            hex::encode(Sha256::digest(code_server_password(&token).as_bytes()))
        );
    }
}
