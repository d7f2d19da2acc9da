//! The client side of proxy API v1, shared by the launcher (`jrps up`, `down`)
//! and the job helper (`jrps register`). It speaks only the types in
//! [`crate::api`], so the contract lives in one place.
//!
//! TLS is rustls on ring. With a site CA file, only that CA is trusted (a
//! private CA should not widen trust to the public roots); without one, the
//! platform's trust store is used.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use reqwest::{Method, StatusCode, Url};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::api::{
    self, Activity, ActivityQuery, ApiError, ClockBeat, CreateSession, DeleteSession, EndReason,
    Extend, LinkJob, OwnSession, Register, ReportPhase, SessionClock, SessionCreated,
    SessionStatus,
};
use crate::identity::Munge;

/// How long a call may take before the launcher gives up and says so; the
/// long-poll adds its own wait on top.
const CALL_TIMEOUT: Duration = Duration::from_secs(20);

#[derive(Debug, thiserror::Error)]
pub enum ProxyClientError {
    #[error("the proxy URL `{url}` is not a valid http(s) URL")]
    BadUrl { url: String },
    #[error("cannot read the proxy CA file {}", path.display())]
    CaFile {
        path: PathBuf,
        #[source]
        source: rustls_pki_types::pem::Error,
    },
    #[error("cannot set up TLS for the proxy")]
    Tls(#[source] rustls::Error),
    #[error("cannot build the HTTP client")]
    Client(#[source] reqwest::Error),
    #[error("cannot reach the proxy at {url}")]
    Unreachable {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("the proxy refused {call}: {status} {error}: {detail}")]
    Refused {
        call: &'static str,
        status: StatusCode,
        error: String,
        detail: String,
    },
    #[error("cannot encode the request to the proxy")]
    Encode(#[source] serde_json::Error),
    /// `identity = "munge"` and no credential could be made.
    #[error("cannot make a munge credential for the proxy")]
    Munge(#[source] crate::identity::MungeError),
    #[error("the proxy answered with the alias `{alias}`, which is not three words joined by `-`")]
    BadAlias { alias: String },
    #[error("the proxy sent an answer to {call} that jrps cannot read")]
    BadAnswer {
        call: &'static str,
        #[source]
        source: reqwest::Error,
    },
}

impl ProxyClientError {
    /// What to do about it, when jrps knows: every command that calls the
    /// proxy shows the same.
    pub fn hint(&self) -> Option<String> {
        match self.status() {
            Some(StatusCode::UNAUTHORIZED) => Some(
                "the proxy asks for munge credentials: set `identity = \"munge\"` (and \
                 `munge_socket` if munged is elsewhere) in site.toml"
                    .into(),
            ),
            _ => None,
        }
    }

    /// The HTTP status the proxy answered with, when it answered at all.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            ProxyClientError::Refused { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// What the proxy said of its refusal, when it refused.
    pub fn detail(&self) -> Option<String> {
        match self {
            ProxyClientError::Refused { detail, .. } => Some(detail.clone()),
            _ => None,
        }
    }

    /// Whether the same call may well succeed later: no proxy answered
    /// (restarting, a replica away), or it could not reach its state
    /// database (503). A refusal for cause is never an outage.
    pub fn is_outage(&self) -> bool {
        matches!(self, ProxyClientError::Unreachable { .. })
            || self.status() == Some(StatusCode::SERVICE_UNAVAILABLE)
    }
}

/// How long a call that must land (ending a session, registering one)
/// keeps trying while the proxy is away: a proxy restart or a database
/// fail-over takes seconds to minutes, and a call given up leaves a route
/// to a dead job or a session that never ends.
pub const OUTAGE_PATIENCE: Duration = Duration::from_secs(300);

/// Runs `call` until it succeeds, fails for cause, or the proxy has been
/// away for `patience`, pausing 0.5 s, 1 s, 2 s ... 10 s between tries.
/// `waiting` hears each outage and the pause before the next try.
pub async fn through_outages<T, Fut>(
    patience: Duration,
    mut waiting: impl FnMut(&ProxyClientError, Duration),
    mut call: impl FnMut() -> Fut,
) -> Result<T, ProxyClientError>
where
    Fut: std::future::Future<Output = Result<T, ProxyClientError>>,
{
    let give_up = tokio::time::Instant::now() + patience;
    let mut pause = Duration::from_millis(500);
    loop {
        match call().await {
            Err(error) if error.is_outage() && tokio::time::Instant::now() + pause <= give_up => {
                waiting(&error, pause);
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(10));
            }
            answer => return answer,
        }
    }
}

/// What [`ProxyClient::end_session`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    Now,
    AlreadyGone,
}

/// Where and how to reach the proxy API.
#[derive(Debug, Clone, Default)]
pub struct ProxyEndpoint {
    /// Base URL of the API host, e.g. `https://manage.jrps.example.org`.
    pub url: String,
    /// PEM file of a private CA to trust instead of the platform roots.
    pub ca_file: Option<PathBuf>,
    /// Connect here instead of resolving the URL's host (no DNS needed on
    /// compute nodes; TLS still checks the certificate against the URL's host).
    /// Several for replicas: a call that cannot connect to one tries the next.
    pub connect_to: Vec<SocketAddr>,
    /// The site's `identity = "munge"`: every call carries a fresh credential.
    pub munge: Option<Munge>,
}

#[derive(Debug, Clone)]
pub struct ProxyClient {
    base: Url,
    http: reqwest::Client,
    munge: Option<Munge>,
}

impl ProxyClient {
    /// `local_address` pins the source address of every call: the job helper
    /// needs the proxy to see the address Jupyter listens on, because the
    /// proxy takes the backend host from the peer address of `register`.
    pub fn new(
        endpoint: &ProxyEndpoint,
        local_address: Option<IpAddr>,
    ) -> Result<Self, ProxyClientError> {
        let bad_url = || ProxyClientError::BadUrl {
            url: endpoint.url.clone(),
        };
        let base = Url::parse(&endpoint.url).map_err(|_| bad_url())?;
        if !matches!(base.scheme(), "http" | "https") || base.host_str().is_none() {
            return Err(bad_url());
        }
        let mut builder = reqwest::Client::builder()
            .tls_backend_preconfigured(tls_config(endpoint.ca_file.as_deref())?)
            .connect_timeout(Duration::from_secs(10))
            .local_address(local_address)
            // Proxy variables meant for the internet must not divert calls
            // that stay inside the cluster.
            .no_proxy();
        if let (false, Some(host)) = (endpoint.connect_to.is_empty(), base.host_str()) {
            builder = builder.resolve_to_addrs(host, &endpoint.connect_to);
        }
        let http = builder.build().map_err(ProxyClientError::Client)?;
        Ok(ProxyClient {
            base,
            http,
            munge: endpoint.munge.clone(),
        })
    }

    pub async fn create_session(
        &self,
        request: &CreateSession,
    ) -> Result<SessionCreated, ProxyClientError> {
        let created: SessionCreated = self
            .call(
                "create session",
                Method::POST,
                "sessions",
                Some(request),
                None,
            )
            .await?;
        // The alias names the session's folder and log: whatever a proxy
        // (or something posing as one) answers must not reach outside them.
        if !api::looks_like_alias(&created.alias) {
            return Err(ProxyClientError::BadAlias {
                alias: created.alias.escape_debug().to_string(),
            });
        }
        Ok(created)
    }

    pub async fn link_job(&self, alias: &str, request: &LinkJob) -> Result<(), ProxyClientError> {
        self.call_no_answer(
            "link job",
            Method::POST,
            &format!("sessions/{alias}/job"),
            request,
        )
        .await
    }

    pub async fn register(
        &self,
        alias: &str,
        request: &Register,
    ) -> Result<SessionStatus, ProxyClientError> {
        let path = format!("sessions/{alias}/register");
        self.call("register", Method::POST, &path, Some(request), None)
            .await
    }

    /// Tells the proxy the session's job was started again (a requeue after
    /// a node failure): it waits for this run's registration.
    pub async fn restart(
        &self,
        alias: &str,
        request: &api::Restart,
    ) -> Result<SessionStatus, ProxyClientError> {
        let path = format!("sessions/{alias}/restart");
        self.call("restart", Method::POST, &path, Some(request), None)
            .await
    }

    /// The session's state; with `wait_ready`, the proxy holds the call until
    /// the session is ready or ended, or the wait runs out.
    pub async fn status(
        &self,
        alias: &str,
        wait_ready: Option<Duration>,
    ) -> Result<SessionStatus, ProxyClientError> {
        let mut path = format!("sessions/{alias}");
        if let Some(wait) = wait_ready {
            path.push_str(&format!("?wait=ready&timeout_s={}", wait.as_secs().max(1)));
        }
        let extra = wait_ready.unwrap_or_default();
        self.call::<(), _>("session status", Method::GET, &path, None, Some(extra))
            .await
    }

    /// The caller's sessions (`identity = "munge"` only).
    pub async fn own_sessions(&self) -> Result<Vec<OwnSession>, ProxyClientError> {
        self.call::<(), _>("list sessions", Method::GET, "sessions", None, None)
            .await
    }

    /// When the proxy last passed a request to the session's Jupyter.
    pub async fn activity(&self, alias: &str, secret: &str) -> Result<Activity, ProxyClientError> {
        let request = ActivityQuery {
            secret: secret.to_owned(),
        };
        let path = format!("sessions/{alias}/activity");
        self.call(
            "session activity",
            Method::POST,
            &path,
            Some(&request),
            None,
        )
        .await
    }

    /// The job's end as the scheduler says now; answered with the
    /// session's clock, whose end `jrps extend` may have moved.
    pub async fn clock_beat(
        &self,
        alias: &str,
        request: &ClockBeat,
    ) -> Result<Option<SessionClock>, ProxyClientError> {
        let path = format!("sessions/{alias}/clock");
        self.call("session clock", Method::POST, &path, Some(request), None)
            .await
    }

    /// Moves the session's end (`jrps extend`).
    pub async fn extend(
        &self,
        alias: &str,
        request: &Extend,
    ) -> Result<SessionStatus, ProxyClientError> {
        let path = format!("sessions/{alias}/extend");
        self.call(
            "extend the session",
            Method::POST,
            &path,
            Some(request),
            None,
        )
        .await
    }

    /// Tells the proxy where the job is, for its "starting" page. Callers
    /// treat this as best effort: a launch never fails because of it.
    pub async fn report_phase(
        &self,
        alias: &str,
        request: &ReportPhase,
    ) -> Result<(), ProxyClientError> {
        self.call_no_answer(
            "report phase",
            Method::POST,
            &format!("sessions/{alias}/phase"),
            request,
        )
        .await
    }

    /// Ends a session, trying again through an outage for `patience`
    /// (`waiting` hears each). One the proxy no longer knows (it expired,
    /// or another of `down`, the job's exit trap and a failed launch got
    /// there first) is what every caller wanted, so it is not an error.
    pub async fn end_session(
        &self,
        alias: &str,
        secret: &str,
        reason: Option<EndReason>,
        patience: Duration,
        waiting: impl FnMut(&ProxyClientError, Duration),
    ) -> Result<Ended, ProxyClientError> {
        through_outages(patience, waiting, || {
            self.end_session_once(alias, secret, reason)
        })
        .await
    }

    async fn end_session_once(
        &self,
        alias: &str,
        secret: &str,
        reason: Option<EndReason>,
    ) -> Result<Ended, ProxyClientError> {
        let path = format!("sessions/{alias}");
        let delete = |reason| {
            let request = DeleteSession {
                secret: secret.to_owned(),
                reason,
            };
            let path = path.clone();
            async move {
                self.call_no_answer("delete session", Method::DELETE, &path, &request)
                    .await
            }
        };
        let mut answer = delete(reason).await;
        // A proxy older than `reason` refuses the field: the session must
        // end all the same, without it.
        if reason.is_some()
            && matches!(&answer, Err(error) if error.status() == Some(StatusCode::UNPROCESSABLE_ENTITY))
        {
            answer = delete(None).await;
        }
        match answer {
            Ok(()) => Ok(Ended::Now),
            Err(error) if error.status() == Some(StatusCode::NOT_FOUND) => Ok(Ended::AlreadyGone),
            Err(error) => Err(error),
        }
    }

    fn url(&self, path: &str) -> String {
        let base = self.base.as_str().trim_end_matches('/');
        format!("{base}{}/{path}", api::PREFIX)
    }

    async fn send<B: Serialize>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
        extra_wait: Option<Duration>,
    ) -> Result<reqwest::Response, ProxyClientError> {
        let url = self.url(path);
        // Serialised here, not by reqwest: a credential covers these bytes.
        let body = match body {
            Some(body) => Some(serde_json::to_vec(body).map_err(ProxyClientError::Encode)?),
            None => None,
        };
        // Fresh for each call and bound to it: the proxy takes a credential
        // once, for the call it was made for.
        let credential = match &self.munge {
            Some(munge) => {
                let target = reqwest::Url::parse(&url).map_err(|_| ProxyClientError::BadUrl {
                    url: strip_query(&url),
                })?;
                let path_and_query = match target.query() {
                    Some(query) => format!("{}?{query}", target.path()),
                    None => target.path().to_owned(),
                };
                let payload = crate::api::call_payload(
                    method.as_str(),
                    &path_and_query,
                    body.as_deref().unwrap_or_default(),
                );
                Some(
                    munge
                        .credential(&payload)
                        .await
                        .map_err(ProxyClientError::Munge)?,
                )
            }
            None => None,
        };
        let mut request = self
            .http
            .request(method, &url)
            .timeout(CALL_TIMEOUT + extra_wait.unwrap_or_default());
        if let Some(body) = body {
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body);
        }
        if let Some(credential) = credential {
            request = request.header(
                reqwest::header::AUTHORIZATION,
                format!("{} {credential}", crate::identity::AUTH_SCHEME),
            );
        }
        let response = request
            .send()
            .await
            .map_err(|source| ProxyClientError::Unreachable {
                url: strip_query(&url),
                source,
            })?;
        Ok(response)
    }

    async fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        call: &'static str,
        method: Method,
        path: &str,
        body: Option<&B>,
        extra_wait: Option<Duration>,
    ) -> Result<T, ProxyClientError> {
        let response =
            refused_unless_success(call, self.send(method, path, body, extra_wait).await?).await?;
        response
            .json()
            .await
            .map_err(|source| ProxyClientError::BadAnswer { call, source })
    }

    async fn call_no_answer<B: Serialize>(
        &self,
        call: &'static str,
        method: Method,
        path: &str,
        body: &B,
    ) -> Result<(), ProxyClientError> {
        refused_unless_success(call, self.send(method, path, Some(body), None).await?).await?;
        Ok(())
    }
}

/// The runtime a command that talks to the proxy runs on: one thread, as
/// such a command waits on the network, not on the CPU.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

async fn refused_unless_success(
    call: &'static str,
    response: reqwest::Response,
) -> Result<reqwest::Response, ProxyClientError> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let (error, detail) = match response.json::<ApiError>().await {
        Ok(body) => (body.error, body.detail),
        Err(_) => (
            status.canonical_reason().unwrap_or("error").to_owned(),
            "the answer was not an API error body".to_owned(),
        ),
    };
    Err(ProxyClientError::Refused {
        call,
        status,
        error,
        detail,
    })
}

/// Query strings never reach an error message: they may carry a token.
fn strip_query(url: &str) -> String {
    url.split('?').next().unwrap_or(url).to_owned()
}

pub(crate) fn tls_config(ca_file: Option<&Path>) -> Result<rustls::ClientConfig, ProxyClientError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(ProxyClientError::Tls)?;
    let config = match ca_file {
        Some(path) => {
            let ca_error = |source| ProxyClientError::CaFile {
                path: path.to_owned(),
                source,
            };
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_file_iter(path).map_err(ca_error)? {
                roots
                    .add(cert.map_err(ca_error)?)
                    .map_err(ProxyClientError::Tls)?;
            }
            if roots.is_empty() {
                return Err(ca_error(rustls_pki_types::pem::Error::NoItemsFound));
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        None => {
            let verifier =
                rustls_platform_verifier::Verifier::new(provider).map_err(ProxyClientError::Tls)?;
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(verifier))
                .with_no_client_auth()
        }
    };
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A one-call "proxy" on loopback that answers create with `alias`.
    async fn create_answered_with(alias: &str) -> Result<SessionCreated, ProxyClientError> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let body = serde_json::json!({
            "alias": alias,
            "url": "https://x.example/",
            "register_secret": "s",
            "expires_at": 1,
        })
        .to_string();
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; 4096];
            let _ = stream.read(&mut buf).await;
            let answer = format!(
                "HTTP/1.1 201 Created\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(answer.as_bytes()).await;
        });
        let endpoint = ProxyEndpoint {
            url: format!("http://127.0.0.1:{port}"),
            ca_file: None,
            connect_to: Vec::new(),
            munge: None,
        };
        let client = ProxyClient::new(&endpoint, None).unwrap();
        let request = CreateSession {
            user: "alice".into(),
            token_sha256: "ab".repeat(32),
            ttl_seconds: 60,
            cluster: None,
            kind: None,
        };
        client.create_session(&request).await
    }

    #[tokio::test]
    async fn an_alias_that_could_name_another_path_is_refused() {
        for alias in ["../../etc/cron", "amber-otter-lagoon/../../x", "", "a-b"] {
            match create_answered_with(alias).await {
                Err(ProxyClientError::BadAlias { .. }) => {}
                other => panic!("{alias:?}: {other:?}"),
            }
        }
        let created = create_answered_with("amber-otter-lagoon").await.unwrap();
        assert_eq!(created.alias, "amber-otter-lagoon");
    }
}
