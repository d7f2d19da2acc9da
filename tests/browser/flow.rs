//! What a person does: open the link `jrps up` printed, get JupyterLab, run
//! `print(6*7)` and read `42`; open the link without its token, a wrong
//! alias, a session whose Jupyter is gone, an ended one; open the link while
//! the job is still queued and watch the page turn into JupyterLab.

use std::time::Duration;

use fantoccini::Locator;

use super::site::{
    Browser, Tools, browser_site, free_port, make_notebook, slurm_conf, spki_pin, status_of,
};
use crate::proxy::harness::{DOMAIN, random_token};

/// Where JupyterLab's main area is: the UI has loaded.
const LAB_READY: &str = "#jp-main-dock-panel";
/// Generous ceilings; the waits end as soon as the condition holds.
const LAB_TIMEOUT: Duration = Duration::from_secs(120);
const PAGE_TIMEOUT: Duration = Duration::from_secs(30);

/// `https://ALIAS.jrps.localhost:PORT/?token=T` → (base URL, alias, token).
fn split_url(url: &str) -> (String, String, String) {
    let (base, token) = url.split_once("?token=").expect("a URL with ?token=");
    let host = base.trim_start_matches("https://");
    let alias = host.split('.').next().unwrap();
    (base.to_owned(), alias.to_owned(), token.to_owned())
}

/// Clicks into the notebook's first cell. The editor may exist before it
/// takes clicks (layout, a dialog on a slow start): retry until one lands.
async fn click_cell(browser: &Browser) -> fantoccini::elements::Element {
    let cell = ".jp-Notebook .jp-Cell .cm-content";
    crate::support::until(LAB_TIMEOUT, "the cell taking a click", || async {
        let editor = browser.wait_for(cell, LAB_TIMEOUT).await;
        match editor.click().await {
            Ok(()) => Ok(editor),
            Err(error) => Err(error.to_string()),
        }
    })
    .await
}

/// Pages must not tell a stranger where the backend is.
fn assert_no_internals(text: &str) {
    for leak in ["127.0.0.1", "localhost:", "backend", "register_secret"] {
        assert!(!text.contains(leak), "the page leaks {leak:?}:\n{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jupyterlab_through_the_proxy_runs_a_cell_and_pages_say_what_happened() {
    let Some(tools) = Tools::find() else { return };
    let site = browser_site("local", &tools.jupyter);
    let work = site.work_dir().display().to_string();
    let up = site.run(&["up", "-d", &work, "-t", "15"]).await;
    assert_eq!(up.code, Some(0), "jrps up:\n{}{}", up.stdout, up.stderr);
    let url = up
        .stdout
        .lines()
        .last()
        .expect("jrps up printed the URL")
        .to_owned();
    let (base, alias, token) = split_url(&url);
    let browser = Browser::start(&tools, &spki_pin(&site.proxy)).await;
    let client = &browser.client;

    // Without its token the session is private: 403, and the page says
    // which link to use.
    client.goto(&base).await.unwrap();
    let text = browser
        .wait_for_text("This session is private", PAGE_TIMEOUT)
        .await;
    assert!(text.contains(&alias), "{text}");
    assert!(text.contains(&format!("jrps url {alias}")), "{text}");
    assert_no_internals(&text);
    assert_eq!(status_of(&site.proxy, &base).await, 403);
    browser.screenshot("403-no-token").await;

    // The printed link opens JupyterLab.
    client.goto(&url).await.unwrap();
    browser.wait_for(LAB_READY, LAB_TIMEOUT).await;

    // A notebook, a cell, Shift+Enter, and the answer on the page.
    make_notebook(&site.proxy, &base, &token, "six-times-seven.ipynb").await;
    client
        .goto(&format!("{base}lab/tree/six-times-seven.ipynb"))
        .await
        .unwrap();
    // Type into the cell once the kernel is up, as a person waits for the
    // kernel indicator to show it idle.
    browser
        .wait_for_idle_kernel("six-times-seven.ipynb", LAB_TIMEOUT)
        .await;
    let editor = click_cell(&browser).await;
    editor.send_keys("print(6*7)").await.unwrap();
    // Shift+Enter: Shift down, Enter, all modifiers up (WebDriver key codes).
    editor.send_keys("\u{E008}\u{E007}\u{E000}").await.unwrap();
    crate::support::until(PAGE_TIMEOUT, "output 42", || async {
        let mut texts = Vec::new();
        for output in client
            .find_all(Locator::Css(".jp-OutputArea-output"))
            .await
            .unwrap()
        {
            texts.push(output.text().await.unwrap_or_default());
        }
        if texts.iter().any(|t| t.trim() == "42") {
            Ok(())
        } else {
            Err(format!(
                "outputs: {texts:?}; page:\n{}",
                browser.text().await
            ))
        }
    })
    .await;
    browser.screenshot("jupyterlab").await;

    // An alias nobody has: 404 "No such session".
    let unknown = format!(
        "https://amber-otter-nowhere.{DOMAIN}:{}/",
        site.proxy.addr.port()
    );
    client.goto(&unknown).await.unwrap();
    let text = browser.wait_for_text("No such session", PAGE_TIMEOUT).await;
    assert_no_internals(&text);
    assert_eq!(status_of(&site.proxy, &unknown).await, 404);
    browser.screenshot("404-unknown").await;

    // A session whose Jupyter is gone (registered, nothing listens): 502,
    // without the address the proxy could not reach.
    let dead_token = random_token();
    let dead = site.proxy.ready_session(&dead_token, free_port()).await;
    let dead_url = format!("{}?token={dead_token}", dead.url);
    client.goto(&dead_url).await.unwrap();
    let text = browser
        .wait_for_text("Jupyter is not answering", PAGE_TIMEOUT)
        .await;
    assert!(text.contains(&dead.alias), "{text}");
    assert_no_internals(&text);
    assert_eq!(status_of(&site.proxy, &dead_url).await, 502);
    browser.screenshot("502-not-answering").await;

    // `jrps down`: the link now says the session ended (404).
    let down = site.run(&["down", &alias]).await;
    assert_eq!(down.code, Some(0), "jrps down:\n{}", down.stderr);
    client.goto(&url).await.unwrap();
    let text = browser.wait_for_text("Session ended", PAGE_TIMEOUT).await;
    assert!(text.contains(&alias), "{text}");
    assert_eq!(status_of(&site.proxy, &url).await, 404);
    browser.screenshot("404-ended").await;

    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starting_page_shows_the_queued_job_and_turns_into_jupyterlab_by_itself() {
    let Some(tools) = Tools::find() else { return };
    if slurm_conf().is_none() {
        return;
    }
    let site = browser_site("slurm", &tools.jupyter);
    // Slurm holds the job for 20 s: long enough to see the page while queued.
    site.user_profile("later", "sbatch_options = [\"--begin=now+20\"]\n");
    let work = site.work_dir().display().to_string();
    let mut up = site.spawn(&["up", "later", "-d", &work, "-t", "15"]);
    let alias = up
        .wait_for_stderr(Duration::from_secs(60), "the reserved alias", |line| {
            line.split_once("reserved ")
                .map(|(_, a)| a.trim().to_owned())
        })
        .await;
    up.wait_for_stderr(Duration::from_secs(60), "the queued phase", |line| {
        line.contains("queued as job").then_some(())
    })
    .await;
    // While `jrps up` waits, the link is there for whoever asks for it.
    let printed = site.run(&["url", &alias]).await;
    assert_eq!(printed.code, Some(0), "jrps url:\n{}", printed.stderr);
    let url = printed.stdout.trim().to_owned();

    let browser = Browser::start(&tools, &spki_pin(&site.proxy)).await;
    browser.client.goto(&url).await.unwrap();
    let text = browser
        .wait_for_text("Waiting for a compute node", PAGE_TIMEOUT)
        .await;
    assert!(text.contains(&alias), "{text}");
    assert!(text.contains("its start time has not come yet"), "{text}");
    assert!(text.contains("opens JupyterLab by itself"), "{text}");
    assert_no_internals(&text);
    assert_eq!(status_of(&site.proxy, &url).await, 503);
    browser.screenshot("starting-queued").await;

    // No navigation from here on: the page reloads itself into JupyterLab.
    browser.wait_for(LAB_READY, LAB_TIMEOUT).await;
    let out = up.finish(Duration::from_secs(120)).await;
    assert_eq!(out.code, Some(0), "jrps up:\n{}{}", out.stdout, out.stderr);
    assert_eq!(out.stdout.lines().last(), Some(url.as_str()));
    assert!(out.stderr.contains("ready"), "{}", out.stderr);

    browser.close().await;
    let down = site.run(&["down", &alias]).await;
    assert_eq!(down.code, Some(0), "jrps down:\n{}", down.stderr);
}
