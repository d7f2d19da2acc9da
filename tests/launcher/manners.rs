//! The CLI's manners, as users of mature tools expect them: `--version`, completions, the man page,
//! colour only on a terminal and never with `NO_COLOR`, errors in one style,
//! `-q`. Colour needs a terminal, so those tests run `jrps` under `script`
//! (util-linux), which gives it a pseudo-terminal.

use std::process::Command;
use std::time::Duration;

use assert_cmd::cargo::CommandCargoExt;
use predicates::prelude::*;

fn jrps() -> assert_cmd::Command {
    let command = crate::support::Hermetic {
        home: std::path::Path::new(super::test::HOME),
        site: std::path::Path::new("/nonexistent/jrps-site"),
        config: std::path::Path::new("/nonexistent/jrps-config"),
        state: None,
        path_first: None,
    }
    .jrps(&[]);
    assert_cmd::Command::from_std(command)
}

/// The version and the commit it was built from: the checkout's HEAD now
/// (so a build that missed a commit fails here).
#[test]
fn version_names_the_program_its_version_and_commit() {
    let head = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8(o.stdout).unwrap().trim().to_owned())
        .unwrap_or_else(|| "unknown".to_owned());
    jrps()
        .arg("--version")
        .assert()
        .success()
        .stdout(format!("jrps {} ({head})\n", env!("CARGO_PKG_VERSION")))
        .stderr("");
}

#[test]
fn completions_for_bash_mention_every_subcommand() {
    jrps()
        .args(["completions", "bash"])
        .assert()
        .success()
        .stdout(
            predicate::str::contains("complete")
                .and(predicate::str::contains("jrps"))
                .and(predicate::str::contains("profiles"))
                .and(predicate::str::contains("--json")),
        );
}

#[test]
fn man_page_is_roff() {
    jrps()
        .arg("man")
        .assert()
        .success()
        .stdout(
            predicate::str::starts_with(".ie \\n(.g .ds Aq")
                .or(predicate::str::contains(".TH jrps")),
        )
        .stdout(predicate::str::contains(".TH jrps 1"));
}

#[test]
fn every_subcommand_help_has_examples() {
    for command in [
        "up",
        "render",
        "profiles",
        "profiles show",
        "profiles check",
        "ls",
        "url",
        "logs",
        "down",
        "serve",
        "completions",
        "man",
        "register",
    ] {
        let mut args: Vec<&str> = command.split(' ').collect();
        args.push("--help");
        jrps()
            .args(&args)
            .assert()
            .success()
            .stdout(predicate::str::contains("Examples"));
    }
}

/// `jrps ARGS` on a pseudo-terminal; what it printed (stdout and stderr).
fn on_terminal(args: &str, no_color: Option<&str>) -> String {
    let bin = Command::cargo_bin("jrps").unwrap();
    let mut command = Command::new("script");
    command
        .args([
            "-qec",
            &format!("{} {args}", bin.get_program().to_string_lossy()),
            "/dev/null",
        ])
        .env_remove("NO_COLOR")
        .env_remove("CLICOLOR_FORCE")
        .env("TERM", "xterm")
        .env("JRPS_SITE_DIR", "/nonexistent/jrps-site")
        .env("XDG_CONFIG_HOME", "/nonexistent/jrps-config");
    if let Some(value) = no_color {
        command.env("NO_COLOR", value);
    }
    let output = command.output().expect("script (util-linux) runs");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn has_script() -> bool {
    let found = Command::new("script").arg("--version").output().is_ok();
    if !found {
        crate::support::missing("`script` (util-linux), for a terminal");
    }
    found
}

#[test]
fn colour_only_on_a_terminal_and_never_with_no_color() {
    if !has_script() {
        return;
    }
    // On a terminal: clap's help and jrps's own error labels are coloured.
    assert!(on_terminal("--help", None).contains('\x1b'));
    let error = on_terminal("render -t bogus", None);
    assert!(error.contains("\x1b[1;31merror:\x1b[0m"), "{error:?}");
    assert!(error.contains("\x1b[1;32mhint:\x1b[0m"), "{error:?}");
    // NO_COLOR (any non-empty value): no escape sequence at all.
    assert!(!on_terminal("--help", Some("1")).contains('\x1b'));
    assert!(!on_terminal("render -t bogus", Some("1")).contains('\x1b'));
    assert!(!on_terminal("up --help", Some("yes")).contains('\x1b'));
    // Not a terminal: none either, whatever NO_COLOR says.
    let piped = jrps().args(["render", "-t", "bogus"]).output().unwrap();
    assert!(!piped.stderr.contains(&0x1b));
    let piped = jrps().arg("--help").output().unwrap();
    assert!(!piped.stdout.contains(&0x1b));
}

#[test]
fn errors_have_one_style_and_results_stay_off_stdout() {
    // A usage problem: `error:` first, a `hint:`, exit 2, nothing on stdout.
    jrps()
        .args(["render", "-t", "bogus"])
        .assert()
        .code(2)
        .stdout("")
        .stderr(predicate::str::starts_with("error: invalid time `bogus`"))
        .stderr(predicate::str::contains("\nhint: "));
    // A run-time problem with a cause chain: `error:` then `caused by:`.
    jrps()
        .args(["up", "--no-wait"])
        .env(
            "JRPS_SITE_DIR",
            std::env::temp_dir().join("jrps-no-such-site"),
        )
        .assert()
        .failure()
        .stdout("")
        .stderr(predicate::str::starts_with("error: "));
    // Every line of an error is one of the three labels.
    let output = jrps().args(["render", "-p", "nowhere"]).output().unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(!stderr.is_empty());
    for line in stderr.lines() {
        assert!(
            ["error: ", "caused by: ", "hint: "]
                .iter()
                .any(|l| line.starts_with(l)),
            "a line outside the error style: {line:?}\n{stderr}"
        );
    }
}

#[tokio::test]
async fn quiet_and_json_keep_stdout_for_results() {
    // A real proxy; the job never needs to run (`--no-wait`).
    let site = crate::e2e::site::Site::new("local", std::path::Path::new("/bin/false"), "");
    let out = site
        .spawn(&["up", "-q", "--no-wait", "-t", "5"])
        .finish(Duration::from_secs(60))
        .await;
    assert_eq!(out.code, Some(0), "{}{}", out.stdout, out.stderr);
    assert_eq!(out.stderr, "", "-q prints nothing on stderr");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 1, "one line, the URL: {lines:?}");
    assert!(
        lines[0].starts_with("https://") && lines[0].contains("/?token="),
        "{lines:?}"
    );
    // And without -q the same launch shows its progress on stderr only.
    let out = site
        .spawn(&["up", "--no-wait", "-t", "5"])
        .finish(Duration::from_secs(60))
        .await;
    assert_eq!(out.code, Some(0), "{}{}", out.stdout, out.stderr);
    assert!(out.stderr.contains("reserved "), "{}", out.stderr);
    assert!(!out.stdout.contains("reserved "), "{}", out.stdout);
    // --json: one JSON object on stdout, nothing else there.
    let out = site
        .spawn(&["up", "--json", "--no-wait", "-t", "5"])
        .finish(Duration::from_secs(60))
        .await;
    assert_eq!(out.code, Some(0), "{}{}", out.stdout, out.stderr);
    let result: serde_json::Value = serde_json::from_str(&out.stdout).expect("one JSON object");
    assert!(
        result["url"].as_str().unwrap().contains("/?token="),
        "{result}"
    );
    assert_eq!(result["ready"], false, "{result}");
    // `ls --json`: the three launches, as one array.
    let out = site
        .spawn(&["ls", "--json"])
        .finish(Duration::from_secs(60))
        .await;
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let sessions: serde_json::Value = serde_json::from_str(&out.stdout).expect("a JSON array");
    assert_eq!(sessions.as_array().map(Vec::len), Some(3), "{sessions}");
}
