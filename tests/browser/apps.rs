//! Apps beyond JupyterLab in Chromium, through the real proxy over TLS on
//! the real Slurm: a small real app (a page and a WebSocket echo) inside
//! Jupyter through jupyter-server-proxy from the lock, once on a TCP port
//! and once on a Unix socket; Voilà; and code-server's STAND-IN
//! (tests/fixtures/apps/code-server-standin.py; code-server cannot be
//! installed here).

use std::path::PathBuf;
use std::time::Duration;

use http::HeaderValue;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use super::site::{Browser, Tools, browser_site, slurm_conf, spki_pin};
use crate::e2e::kinds::{code_server_site, fixture};
use crate::e2e::site::Site;
use crate::proxy::harness::{Edge, tls_connect};

const PAGE_TIMEOUT: Duration = Duration::from_secs(60);

/// The Slurm site, the tools, and the venv's python.
fn setup() -> Option<(Tools, PathBuf)> {
    slurm_conf()?;
    let tools = Tools::find()?;
    let python = tools.jupyter.with_file_name("python");
    Some((tools, python))
}

async fn launch(site: &Site, args: &[&str]) -> (String, String) {
    let (launched, _) = site.up_ok(args).await;
    (launched.url, launched.alias)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_inside_jupyter_on_a_port_and_on_a_unix_socket() {
    let Some((tools, python)) = setup() else {
        return;
    };
    let site = browser_site("slurm", &tools.jupyter);
    // What a site or user writes to add an app: jupyter-server-proxy's
    // `ServerProxy.servers`, one entry on a port it picks and one on a
    // Unix socket it makes.
    let app = fixture("echo-app.py");
    let config = serde_json::json!({"ServerProxy": {"servers": {
        "echo-tcp": {"command": [python, app, "--port", "{port}"]},
        "echo-socket": {"command": [python, app, "--unix-socket", "{unix_socket}"],
                         "unix_socket": true}
    }}});
    std::fs::write(
        site.home().join(".jupyter/jupyter_server_config.json"),
        config.to_string(),
    )
    .unwrap();
    let (url, alias) = launch(&site, &["-t", "10"]).await;
    let token = url.split_once("?token=").unwrap().1.to_owned();
    let browser = Browser::start(&tools, &spki_pin(&site.proxy)).await;
    // The printed URL logs the browser in; the apps are paths of the same
    // origin, with nothing added to the URL.
    browser.client.goto(&url).await.unwrap();
    browser.wait_for("#jp-main-dock-panel", PAGE_TIMEOUT).await;
    for (path, how, shot) in [
        ("/echo-tcp/", "a TCP port", "server-proxy-tcp"),
        ("/echo-socket/", "a Unix socket", "server-proxy-unix-socket"),
    ] {
        let page = site.proxy.session_url(&alias, path);
        browser.client.goto(&page).await.unwrap();
        let text = browser
            .wait_for_text(&format!("echo: ping {how}"), PAGE_TIMEOUT)
            .await;
        assert!(text.contains(&format!("echo app on {how}")), "{text}");
        assert!(text.contains(&format!("at {page}")), "{text}");
        browser.screenshot(shot).await;

        // A page of another origin may not open the app's WebSocket: the
        // proxy refuses the handshake.
        let ws = site
            .proxy
            .session_url(&alias, &format!("{path}ws"))
            .replacen("https://", "wss://", 1);
        let mut request = ws.as_str().into_client_request().unwrap();
        let headers = request.headers_mut();
        headers.insert(
            "authorization",
            HeaderValue::from_str(&format!("token {token}")).unwrap(),
        );
        headers.insert("origin", HeaderValue::from_static("https://evil.example"));
        let tcp = TcpStream::connect(site.proxy.edge_addr()).await.unwrap();
        let tls = tls_connect(site.proxy.edge_ca(), tcp, &site.proxy.session_host(&alias)).await;
        match tokio_tungstenite::client_async(request, tls).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                assert_eq!(response.status(), 403, "{path}")
            }
            Err(other) => panic!("{path}: expected 403, got {other}"),
            Ok(_) => panic!("{path}: a foreign Origin opened the WebSocket"),
        }
    }
    browser.close().await;
    let down = site.run(&["down", &alias]).await;
    assert_eq!(down.code, Some(0), "{}", down.describe());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn voila_and_code_server_open_from_the_printed_url() {
    let Some((tools, _)) = setup() else {
        return;
    };
    let bin = tempfile::tempdir().unwrap();
    let site = browser_site("slurm", &tools.jupyter);
    std::fs::write(
        site.site_toml(),
        std::fs::read_to_string(site.site_toml()).unwrap()
            + &code_server_site(bin.path(), &tools.jupyter),
    )
    .unwrap();
    let work = site.work_dir();
    std::fs::create_dir_all(work.join("project")).unwrap();
    std::fs::write(
        work.join("dashboard.ipynb"),
        serde_json::json!({
            "cells": [
                {"cell_type": "markdown", "id": "m1", "metadata": {},
                 "source": ["# Weekly numbers\n", "Rendered by Voilà through jrps."]},
                {"cell_type": "code", "execution_count": null, "id": "c1", "metadata": {},
                 "outputs": [], "source": ["print('sum of squares below 50:', sum(i * i for i in range(50)))"]}],
            "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}},
            "nbformat": 4, "nbformat_minor": 5
        })
        .to_string(),
    )
    .unwrap();
    let browser = Browser::start(&tools, &spki_pin(&site.proxy)).await;

    let (url, voila) = launch(
        &site,
        &["-s", "voila", "--open", "dashboard.ipynb", "-t", "10"],
    )
    .await;
    browser.client.goto(&url).await.unwrap();
    browser
        .wait_for_text("sum of squares below 50: 40425", PAGE_TIMEOUT)
        .await;
    browser.screenshot("voila").await;

    let (url, code) = launch(
        &site,
        &["-s", "code-server", "--open", "project", "-t", "10"],
    )
    .await;
    browser.client.goto(&url).await.unwrap();
    let text = browser
        .wait_for_text("echo: hello through jrps", PAGE_TIMEOUT)
        .await;
    assert!(text.contains("code-server stand-in:"), "{text}");
    let base = url.split_once("?token=").unwrap().0;
    assert!(
        text.contains(&format!("at {base}")),
        "its own origin: {text}"
    );
    assert!(!text.contains("login"), "no password prompt: {text}");
    browser.screenshot("code-server-standin").await;

    browser.close().await;
    for alias in [voila, code] {
        let down = site.run(&["down", &alias]).await;
        assert_eq!(down.code, Some(0), "{}", down.describe());
    }
}
