//! Time inside the session, as a person sees it in the browser: on real
//! Slurm, a 3-minute session whose site warns 2 and 1 minutes before its
//! end and saves 40 s before. JupyterLab's autosave is off, so only jrps's
//! save can put what was typed on disk. Once in JupyterLab from the site's
//! Jupyter (with a second document changed on disk, which JupyterLab asks
//! about), once in Notebook 7 from `--venv`.

use std::time::Duration;

use serde_json::{Value, json};

use super::site::{Browser, Tools, browser_site_with, make_notebook, slurm_conf, spki_pin};
use crate::e2e::site::Site;

/// Short thresholds, and five minutes of headroom for `jrps extend`.
const SITE: &str = "walltime_warn = [2, 1]\n\
                    walltime_save = \"0:40\"\n\
                    [partitions.debug]\n\
                    max_time = 30\n\
                    extend_max = 5\n";
const ANNOUNCEMENT: &str = "[announcement]\ntext = \"Maintenance on Saturday 8-12\"\n";
/// The session's length and then some: every wait ends when its condition holds.
const SESSION: Duration = Duration::from_secs(240);
const LOAD: Duration = Duration::from_secs(120);

const DIRTY_JS: &str = r#"
const app = window.jupyterapp;
if (!app) { return "no window.jupyterapp"; }
for (const open of app.shell.widgets("main")) {
    if (open.context && open.context.path === arguments[0]) { return open.context.model.dirty; }
}
return "not open";
"#;

async fn dirty(browser: &Browser, path: &str) -> Value {
    browser
        .client
        .execute(DIRTY_JS, vec![json!(path)])
        .await
        .unwrap_or(Value::Null)
}

/// Writes a text file through Jupyter's API, as another program would.
async fn put_text(site: &Site, base: &str, token: &str, path: &str, text: &str) {
    let response = site
        .proxy
        .client
        .put(format!("{base}api/contents/{path}"))
        .header("Authorization", format!("token {token}"))
        .json(&json!({"type": "file", "format": "text", "content": text}))
        .send()
        .await
        .unwrap();
    assert!(
        response.status().is_success(),
        "PUT {path}: {}",
        response.status()
    );
}

/// The first cell's source as saved on disk, through Jupyter's API.
async fn saved_source(site: &Site, base: &str, token: &str, path: &str) -> String {
    let response = site
        .proxy
        .client
        .get(format!("{base}api/contents/{path}?content=1"))
        .header("Authorization", format!("token {token}"))
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    match &body["content"]["cells"][0]["source"] {
        Value::String(source) => source.clone(),
        other => other.to_string(),
    }
}

async fn warns_saves_and_ends(front_end: &str) {
    let Some(tools) = Tools::find() else { return };
    if slurm_conf().is_none() {
        return;
    }
    let site = browser_site_with("slurm", &tools.jupyter, SITE, ANNOUNCEMENT);
    let work = site.work_dir().display().to_string();
    let venv = tools
        .jupyter
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .display()
        .to_string();
    let mut args = vec!["up", "-p", "debug", "-d", &work, "-t", "3"];
    let (page, shot) = if front_end == "notebook" {
        args.extend(["-s", "notebook", "--venv", &venv]);
        ("notebooks", "notebook7")
    } else {
        ("lab/tree", "jupyterlab")
    };
    let up = site.run(&args).await;
    assert_eq!(up.code, Some(0), "jrps up:\n{}{}", up.stdout, up.stderr);
    let url = up.stdout.lines().last().unwrap().to_owned();
    let (base, token) = url.split_once("?token=").unwrap();
    let alias = base
        .trim_start_matches("https://")
        .split('.')
        .next()
        .unwrap();
    let name = "before-the-end.ipynb";
    make_notebook(&site.proxy, base, token, name).await;

    let browser = Browser::start(&tools, &spki_pin(&site.proxy)).await;
    browser
        .client
        .goto(&format!("{base}{page}/{name}?token={token}"))
        .await
        .unwrap();
    // The site's announcement, once the page has asked the proxy.
    browser
        .wait_for_text("Announcement: Maintenance on Saturday 8-12", LOAD)
        .await;
    browser.wait_for_idle_kernel(name, LOAD).await;
    let cell = browser
        .wait_for(".jp-Notebook .jp-Cell .cm-content", LOAD)
        .await;
    cell.click().await.unwrap();
    cell.send_keys("typed_before_the_end = 1").await.unwrap();
    crate::support::until(LOAD, "the notebook dirty", || async {
        match dirty(&browser, name).await {
            Value::Bool(true) => Ok(()),
            other => Err(other.to_string()),
        }
    })
    .await;

    // In JupyterLab, a second document with unsaved changes whose file
    // then changes on disk: saving it asks a question, and the report
    // must say so rather than wait on it.
    let changed = "notes.txt";
    if front_end == "lab" {
        put_text(&site, base, token, changed, "first\n").await;
        browser
            .client
            .execute(
                "window.jupyterapp.commands.execute('docmanager:open', {path: arguments[0]});",
                vec![json!(changed)],
            )
            .await
            .unwrap();
        let editor = browser.wait_for(".jp-FileEditor .cm-content", LOAD).await;
        editor.click().await.unwrap();
        editor.send_keys("typed in the browser").await.unwrap();
        crate::support::until(LOAD, "the text file dirty", || async {
            match dirty(&browser, changed).await {
                Value::Bool(true) => Ok(()),
                other => Err(other.to_string()),
            }
        })
        .await;
        put_text(&site, base, token, changed, "changed on disk\n").await;
    }

    // A warning that stays, with the time left and its two actions (which
    // may render a moment after the message: a toast's parts load lazily).
    crate::support::until(SESSION, "the warning and its actions", || async {
        let text = browser.text().await;
        let all = ["This session ends in", "Save all", "Extend 5 min"];
        if all.iter().all(|wanted| text.contains(wanted)) {
            Ok(())
        } else {
            Err(text)
        }
    })
    .await;
    browser.screenshot(&format!("{shot}-warning")).await;

    // A new announcement reaches the open page, without a reload.
    let config = site.proxy.dir.path().join("proxy.toml");
    let written = std::fs::read_to_string(&config).unwrap();
    let (before, _) = written.split_once("[announcement]").unwrap();
    std::fs::write(
        &config,
        format!("{before}[announcement]\ntext = \"Back at noon\"\n"),
    )
    .unwrap();
    site.proxy.signal("HUP");
    browser
        .wait_for_text("Announcement: Back at noon", Duration::from_secs(30))
        .await;
    browser.screenshot(&format!("{shot}-announcement")).await;

    // 40 s before the end, jrps saves what was typed and says so.
    let text = browser
        .wait_for_text(&format!("Saved {name}"), SESSION)
        .await;
    assert!(text.contains("Time is nearly up"), "{text}");
    if front_end == "lab" {
        let text = browser
            .wait_for_text(
                &format!("Not saved: {changed} (a dialog is waiting"),
                SESSION,
            )
            .await;
        assert!(
            text.contains("File Changed"),
            "JupyterLab's question: {text}"
        );
    }
    assert_eq!(dirty(&browser, name).await, Value::Bool(false));
    let source = saved_source(&site, base, token, name).await;
    assert!(source.contains("typed_before_the_end = 1"), "{source}");
    browser.screenshot(&format!("{shot}-saved")).await;

    // The job ends the session at its end, not at its scheduler's limit
    // (5 minutes later), and the page says so.
    browser
        .wait_for_text("This session has ended (time limit)", SESSION)
        .await;
    crate::support::until(
        Duration::from_secs(60),
        "jrps ls: ended (time limit)",
        || async {
            let ls = site.run(&["ls", "--json"]).await;
            let rows: Value = serde_json::from_str(&ls.stdout).unwrap();
            let ended = rows.as_array().unwrap().iter().any(|r| {
                r["alias"] == alias && r["state"] == "ended" && r["end_reason"] == "time-limit"
            });
            if ended { Ok(()) } else { Err(ls.stdout) }
        },
    )
    .await;
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jupyterlab_warns_before_the_end_saves_and_shows_announcements() {
    warns_saves_and_ends("lab").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notebook_7_from_a_venv_warns_saves_and_shows_announcements() {
    warns_saves_and_ends("notebook").await;
}
