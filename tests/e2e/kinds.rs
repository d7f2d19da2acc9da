//! Session kinds beyond JupyterLab on the real Slurm, through the real
//! proxy over TLS: Voilà from the lock serving what a notebook computes; a
//! Jupyter client with the token header only (desktop VS Code's way); and
//! code-server, through a STAND-IN (tests/fixtures/apps/code-server-standin.py:
//! code-server itself cannot be installed here) that keeps code-server's
//! login cookie, Origin check and WebSocket contract.

use std::path::{Path, PathBuf};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use http::HeaderValue;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use super::flow::ENDED;
use super::site::{Launched, Site, executable};
use crate::proxy::harness::{Edge, Proxy, tls_connect};
use crate::proxy::jupyter::{Channels, jupyter_executable};
use crate::scheduler::slurm::cluster;

fn slurm_and_jupyter() -> Option<PathBuf> {
    cluster()?;
    jupyter_executable()
}

pub(crate) fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/apps")
        .join(name)
}

/// The `site.toml` line that makes `-s code-server` start the stand-in
/// (from `bin`, with the venv's python beside `jupyter`).
pub(crate) fn code_server_site(bin: &Path, jupyter: &Path) -> String {
    let standin = executable(
        bin,
        "code-server",
        &format!(
            "exec {:?} {:?} \"$@\"",
            jupyter.with_file_name("python"),
            fixture("code-server-standin.py")
        ),
    );
    format!("code_server = {standin:?}\n")
}

/// A WebSocket to `path` of `alias` through the proxy with exactly these
/// headers: no token in the URL.
async fn websocket(
    proxy: &Proxy,
    alias: &str,
    path: &str,
    headers: &[(&'static str, &str)],
) -> Result<Channels, tokio_tungstenite::tungstenite::Error> {
    let url = proxy
        .session_url(alias, path)
        .replacen("https://", "wss://", 1);
    let mut request = url.as_str().into_client_request().unwrap();
    for (name, value) in headers {
        request
            .headers_mut()
            .insert(*name, HeaderValue::from_str(value).unwrap());
    }
    let tcp = TcpStream::connect(proxy.edge_addr()).await.unwrap();
    let tls = tls_connect(proxy.edge_ca(), tcp, &proxy.session_host(alias)).await;
    tokio_tungstenite::client_async(request, tls)
        .await
        .map(|(ws, _)| ws)
}

fn refused_with(result: Result<Channels, tokio_tungstenite::tungstenite::Error>) -> u16 {
    match result {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => response.status().as_u16(),
        Err(other) => panic!("expected an HTTP refusal, got {other}"),
        Ok(_) => panic!("the WebSocket was accepted"),
    }
}

/// `name=value` of each `Set-Cookie`, with the whole header.
fn set_cookies(response: &reqwest::Response) -> Vec<(String, String)> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(|v| (v.split(';').next().unwrap_or("").to_owned(), v.to_owned()))
        .collect()
}

async fn row_of(site: &Site, alias: &str) -> Value {
    site.ls_json()
        .await
        .into_iter()
        .find(|row| row["alias"] == alias)
        .unwrap_or_else(|| panic!("{alias} not in jrps ls"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn voila_serves_what_the_notebook_computes() {
    let Some(jupyter) = slurm_and_jupyter() else {
        return;
    };
    let site = Site::new("slurm", &jupyter, "");
    let work = site.work_dir();
    std::fs::create_dir_all(work.join("reports")).unwrap();
    // The value is computed by the kernel when Voilà runs the notebook:
    // nowhere in the file as text.
    let notebook = json!({
        "cells": [{"cell_type": "code", "execution_count": null, "id": "c1", "metadata": {},
                   "outputs": [], "source": ["print('answer', sum(i * i for i in range(50)))"]}],
        "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}},
        "nbformat": 4, "nbformat_minor": 5
    });
    std::fs::write(work.join("reports/week 1.ipynb"), notebook.to_string()).unwrap();
    // `up_ok` starts it in the work folder.
    let (launched, _) = site
        .up_ok(&["-s", "voila", "--open", "reports/week 1.ipynb", "-t", "10"])
        .await;
    let Launched { alias, token, .. } = &launched;

    // The printed URL sends the browser to the notebook (Jupyter's
    // redirect to its default URL), where Voilà shows what the kernel
    // printed when it ran it.
    let first = site.proxy.client.get(&launched.url).send().await.unwrap();
    assert_eq!(first.status().as_u16(), 302, "{}", site.logs());
    let location = first.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        location.starts_with("/voila/render/reports/week%201.ipynb"),
        "{location}"
    );
    let page = site
        .proxy
        .session_url(alias, "/voila/render/reports/week%201.ipynb");
    let (status, body) = site.get(&format!("{page}?token={token}")).await;
    assert_eq!(status, 200, "{body}\n{}", site.logs());
    assert!(
        body.contains("answer 40425"),
        "Voilà's page has the computed value:\n{body}\n{}",
        site.logs()
    );
    // Without the token: the proxy's private page, not Voilà's.
    assert_eq!(site.get(&page).await.0, 403);

    let row = row_of(&site, alias).await;
    assert_eq!(row["kind"], "voila", "{row}");
    assert_eq!(row["gpus"], 0, "{row}");
    let table = site.run(&["ls"]).await;
    assert!(
        table
            .stdout
            .lines()
            .next()
            .is_some_and(|header| header.contains(" KIND ") && header.contains(" GPUS ")),
        "{}",
        table.stdout
    );
    assert!(
        table
            .stdout
            .lines()
            .any(|l| l.contains(alias.as_str()) && l.contains(" voila ")),
        "{}",
        table.stdout
    );
    let down = site.run(&["down", alias]).await;
    assert_eq!(down.code, Some(0), "{}", down.describe());
    site.wait_for_status(&launched.url, ENDED, Duration::from_secs(60))
        .await;
}

/// Desktop VS Code (or any Jupyter client) on a session: the URL from
/// `jrps url --server`, then REST and a kernel's WebSocket with
/// `Authorization: token …` only: no cookie, no Origin.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_with_the_token_header_only_runs_a_kernel() {
    let Some(jupyter) = slurm_and_jupyter() else {
        return;
    };
    let site = Site::new("slurm", &jupyter, "");
    let (launched, _) = site.up_ok(&["-t", "10"]).await;
    let alias = launched.alias.as_str();

    let server = site.run(&["url", "--server", alias]).await;
    assert_eq!(server.code, Some(0), "{}", server.describe());
    assert_eq!(server.stdout.trim(), launched.url, "{}", server.describe());
    assert!(
        server.stderr.contains("Existing Jupyter Server"),
        "{}",
        server.describe()
    );
    let token = server
        .stdout
        .trim()
        .split_once("?token=")
        .map(|(_, t)| t.to_owned())
        .unwrap();
    let authorization = format!("token {token}");

    // A client of its own: nothing carried over from another request.
    let client = site.proxy.client.clone();
    let kernel: Value = client
        .post(site.proxy.session_url(alias, "/api/kernels"))
        .header("authorization", &authorization)
        .json(&json!({"name": "python3"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kernel_id = kernel["id"].as_str().unwrap_or_else(|| panic!("{kernel}"));
    let mut ws = websocket(
        &site.proxy,
        alias,
        &format!("/api/kernels/{kernel_id}/channels"),
        &[("authorization", &authorization)],
    )
    .await
    .unwrap_or_else(|e| {
        panic!(
            "kernel WebSocket with the token header: {e}\n{}",
            site.logs()
        )
    });
    let request = json!({
        "header": {"msg_id": "vscode-1", "username": "", "session": "vscode", "msg_type": "execute_request", "version": "5.3"},
        "parent_header": {}, "metadata": {}, "channel": "shell",
        "content": {"code": "print(6*7)", "silent": false, "store_history": false,
                    "user_expressions": {}, "allow_stdin": false}
    });
    ws.send(Message::text(request.to_string())).await.unwrap();
    let printed = tokio::time::timeout(Duration::from_secs(90), async {
        while let Some(Ok(message)) = ws.next().await {
            let Message::Text(text) = message else {
                continue;
            };
            let msg: Value = serde_json::from_str(text.as_str()).unwrap_or_default();
            if msg["msg_type"] == "stream" && msg["parent_header"]["msg_id"] == "vscode-1" {
                return msg["content"]["text"].as_str().map(str::to_owned);
            }
        }
        None
    })
    .await
    .expect("the kernel printed within 90 s");
    assert_eq!(printed.as_deref(), Some("42\n"));
    // A wrong token is refused at the edge: the kernel is the session's alone.
    assert_eq!(
        refused_with(
            websocket(
                &site.proxy,
                alias,
                &format!("/api/kernels/{kernel_id}/channels"),
                &[("authorization", &format!("token {}", "0".repeat(64)))],
            )
            .await
        ),
        403
    );
    let down = site.run(&["down", alias]).await;
    assert_eq!(down.code, Some(0), "{}", down.describe());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn code_server_opens_without_a_password_prompt_and_its_cookie_is_kept_nowhere() {
    let Some(jupyter) = slurm_and_jupyter() else {
        return;
    };
    let bin = tempfile::tempdir().unwrap();
    let site = Site::new("slurm", &jupyter, &code_server_site(bin.path(), &jupyter));
    let work = site.work_dir();
    std::fs::create_dir_all(work.join("project")).unwrap();
    let (launched, _) = site
        .up_ok(&["-s", "code-server", "--open", "project", "-t", "10"])
        .await;
    let alias = launched.alias.as_str();
    let origin = site.proxy.session_url(alias, "");
    let origin = origin.trim_end_matches('/');

    // The printed URL opens the editor: no login page on the way.
    let first = site.proxy.client.get(&launched.url).send().await.unwrap();
    let cookies = set_cookies(&first);
    let status = first.status().as_u16();
    let body = first.text().await.unwrap();
    assert_eq!(status, 200, "{body}\n{}", site.logs());
    assert!(
        body.contains("code-server stand-in:") && body.contains("/project"),
        "the editor page, opening the folder:\n{body}"
    );
    let login = cookies
        .iter()
        .find(|(pair, _)| pair.starts_with("code-server-session="))
        .unwrap_or_else(|| panic!("no code-server cookie: {cookies:?}"));
    let header = login.1.to_ascii_lowercase();
    for attribute in ["httponly", "secure", "path=/"] {
        assert!(header.contains(attribute), "{attribute} in {}", login.1);
    }
    assert!(!header.contains("domain"), "host-only: {}", login.1);
    let value = login
        .0
        .trim_start_matches("code-server-session=")
        .to_owned();
    assert_eq!(value.len(), 64, "{}", login.1);
    let edge = cookies
        .iter()
        .find(|(pair, _)| pair.starts_with("__Host-jrps_session="))
        .expect("the edge cookie")
        .0
        .clone();
    let both = format!("{edge}; {}", login.0);

    // With the edge cookie alone the proxy lets the request through, and
    // the stand-in refuses it as code-server does: to its login page.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let no_login = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .resolve(&site.proxy.session_host(alias), site.proxy.edge_addr())
        .add_root_certificate(
            reqwest::Certificate::from_pem(site.proxy.ca.ca_pem.as_bytes()).unwrap(),
        )
        .build()
        .unwrap();
    let refused = no_login
        .get(site.proxy.session_url(alias, "/"))
        .header("cookie", &edge)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status().as_u16(), 302);
    assert_eq!(refused.headers()["location"], "./login");
    let editor = no_login
        .get(site.proxy.session_url(alias, "/"))
        .header("cookie", &both)
        .send()
        .await
        .unwrap();
    assert_eq!(editor.status().as_u16(), 200);
    // Signed out of the editor (its cookie gone, or stale) but still
    // holding the edge cookie: the printed URL logs it in again, the
    // proxy's login taking the place of the stale one.
    let again = no_login
        .get(&launched.url)
        .header("cookie", format!("{edge}; code-server-session=stale"))
        .send()
        .await
        .unwrap();
    let renewed = set_cookies(&again);
    assert_eq!(again.status().as_u16(), 200, "{renewed:?}");
    assert!(
        renewed.iter().any(|(pair, _)| *pair == login.0),
        "the login cookie again: {renewed:?}"
    );

    // Its WebSocket echoes with the page's own Origin; code-server's Origin
    // check passes on the X-Forwarded-Host the proxy sends.
    let mut ws = websocket(
        &site.proxy,
        alias,
        "/echo",
        &[("cookie", &both), ("origin", origin)],
    )
    .await
    .unwrap_or_else(|e| panic!("code-server's WebSocket: {e}\n{}", site.logs()));
    ws.send(Message::text("hello")).await.unwrap();
    let echoed = tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await
        .expect("an echo within 10 s");
    assert!(
        matches!(echoed, Some(Ok(Message::Text(ref t))) if t.as_str() == "hello"),
        "{echoed:?}"
    );
    let _ = ws.close(None).await;
    // A foreign Origin: 403 at the edge; without code-server's cookie: 401
    // from the stand-in.
    let foreign = websocket(
        &site.proxy,
        alias,
        "/echo",
        &[("cookie", &both), ("origin", "https://evil.example")],
    )
    .await;
    assert_eq!(refused_with(foreign), 403);
    let unauthenticated = websocket(
        &site.proxy,
        alias,
        "/echo",
        &[("cookie", &edge), ("origin", origin)],
    )
    .await;
    assert_eq!(refused_with(unauthenticated), 401);

    // No Jupyter server to attach a client to.
    let server = site.run(&["url", "--server", alias]).await;
    assert_eq!(server.code, Some(2), "{}", server.describe());
    assert!(
        server
            .stderr
            .contains("runs code-server, which is no Jupyter server"),
        "{}",
        server.describe()
    );
    assert!(server.stdout.is_empty(), "{}", server.describe());

    let row = row_of(&site, alias).await;
    assert_eq!(row["kind"], "code-server", "{row}");
    assert_eq!(row["state"], "running", "{row}");

    // The cookie's value is in no file of the proxy (its state, its key),
    // its log, the job's log or the session folder.
    let mut places = vec![("proxy log".to_owned(), site.proxy.log().into_bytes())];
    for entry in walk(site.proxy.dir.path())
        .into_iter()
        .chain(walk(&site.session_dir(alias)))
    {
        places.push((
            entry.display().to_string(),
            std::fs::read(&entry).unwrap_or_default(),
        ));
    }
    places.push(("job log".to_owned(), site.job_log(alias).into_bytes()));
    for (place, bytes) in &places {
        assert!(
            !bytes.windows(value.len()).any(|w| w == value.as_bytes()),
            "the code-server cookie is in {place}"
        );
    }
    assert!(
        places.len() > 3,
        "{:?}",
        places.iter().map(|p| &p.0).collect::<Vec<_>>()
    );

    let down = site.run(&["down", alias]).await;
    assert_eq!(down.code, Some(0), "{}", down.describe());
    site.wait_for_status(&launched.url, ENDED, Duration::from_secs(60))
        .await;
}

/// Every file under `dir`.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return files;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

/// code-server's idle watch reads its heartbeat: a session used for twice
/// the timeout (requests to the editor) stays; left alone it is stopped
/// (code-server has no shutdown call: SIGTERM) and ends as idle.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unused_code_server_session_ends_as_idle() {
    let Some(jupyter) = slurm_and_jupyter() else {
        return;
    };
    let bin = tempfile::tempdir().unwrap();
    let site = Site::new("slurm", &jupyter, &code_server_site(bin.path(), &jupyter));
    let (launched, _) = site
        .up_ok(&["-s", "code-server", "-t", "10", "--idle-timeout", "0:20"])
        .await;
    let alias = launched.alias.as_str();
    let used_until = std::time::Instant::now() + Duration::from_secs(40);
    let quiet = loop {
        let (status, body) = site.get(&launched.url).await;
        assert_eq!(status, 200, "{body}\n{}", site.logs());
        let used = std::time::Instant::now();
        if used >= used_until {
            break used;
        }
        tokio::time::sleep(Duration::from_secs(4)).await;
    };
    assert_eq!(row_of(&site, alias).await["state"], "running");
    crate::support::until(Duration::from_secs(90), "ended (idle)", || async {
        let row = row_of(&site, alias).await;
        if row["state"] == "ended" && row["end_reason"] == "idle" {
            Ok(())
        } else {
            Err(format!("{row}"))
        }
    })
    .await;
    assert!(
        quiet.elapsed() >= Duration::from_secs(18),
        "{:?}",
        quiet.elapsed()
    );
    let log = site.job_log(alias);
    assert!(log.contains("idle watch: no use for"), "{log}");
}
