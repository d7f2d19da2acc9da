//! `jrps profiles` (list), `show` (provenance), `check`, and `up --dry-run`.

use super::test::{Test, snapshot};

fn layered() -> Test {
    Test::new()
        .site_file(
            "profiles/default.toml",
            "description = \"The site's default\"\ntime = 45\n",
        )
        .site_file(
            "profiles/course.toml",
            "description = \"For the course\"\nextends = \"default\"\naccount = \"course01\"\n",
        )
        .user_file(
            "profiles/mine.toml",
            "description = \"Mine\"\nextends = \"course\"\ndir = \"~/projects\"\n",
        )
}

#[test]
fn list_shows_name_layer_and_description() {
    let output = layered().args(&["profiles"]).run();
    output
        .success()
        .stdout_has("default         site      The site's default\n")
        .stdout_has("mine            user      Mine\n")
        .stdout_has(
            "gpu-tensorflow  built-in  JupyterLab with one GPU in a TensorFlow container\n",
        );
    snapshot("profiles__list", &output.layout());
}

#[test]
fn list_marks_broken_profiles() {
    let output = Test::new()
        .user_file("profiles/broken.toml", "time = [\n")
        .args(&["profiles"])
        .run();
    output
        .success()
        .stdout_has("broken          user      (has a problem: run `jrps profiles check`)");
}

#[test]
fn list_as_json() {
    let output = layered().args(&["profiles", "--json"]).run();
    output.success();
    let list: serde_json::Value = serde_json::from_str(&output.stdout).unwrap();
    let mine = list
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "mine")
        .unwrap();
    assert_eq!(mine["layer"], "user");
    assert_eq!(mine["description"], "Mine");
}

#[test]
fn show_names_every_source() {
    let output = layered()
        .env("JRPS_TIME", "50")
        .args(&["profiles", "show", "mine", "-p", "debug", "-t", "25"])
        .run();
    output
        .success()
        .stdout_has("[TMP]/config/jrps/profiles/mine.toml:3")
        .stdout_has("[TMP]/site/profiles/course.toml:3")
        .stdout_has("flag --time")
        .stdout_has("flag --partition")
        .stdout_has("default");
    snapshot("profiles__show_layered", &output.layout());
}

#[test]
fn show_names_the_environment_variable() {
    let output = layered()
        .env("JRPS_TIME", "50")
        .args(&["profiles", "show", "mine"])
        .run();
    output
        .success()
        .stdout_has("environment variable JRPS_TIME");
}

#[test]
fn show_built_in() {
    let output = Test::new()
        .args(&["profiles", "show", "gpu-tensorflow"])
        .run();
    output.success();
    snapshot("profiles__show_gpu_tensorflow", &output.layout());
}

#[test]
fn check_passes_on_the_shipped_profiles() {
    let output = Test::new().args(&["profiles", "check"]).run();
    output.success();
    snapshot("profiles__check_built_in", &output.layout());
}

#[test]
fn check_fails_on_any_problem_and_reports_all() {
    let output = layered()
        .user_file(
            "profiles/slow.toml",
            "partition = \"debug\"\ntime = \"2:00:00\"\n",
        )
        .user_file("profiles/typo.toml", "partiton = \"debug\"\n")
        .args(&["profiles", "check"])
        .run();
    output
        .failure(2)
        .stdout_has("FAIL  slow")
        .stdout_has("FAIL  typo")
        .stdout_has("ok    mine")
        .stderr_has("error: 2 of 9 profiles have problems");
    snapshot("profiles__check_failing", &output.layout());
}

fn example_site_toml() -> String {
    std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/docs/site.example.toml"
    ))
    .unwrap()
}

/// The shipped example `site.toml` is valid and every profile works with it.
#[test]
fn check_passes_with_the_example_site_toml() {
    let example = example_site_toml();
    let output = Test::new()
        .site_file("site.toml", &example)
        .env("JRPS_ACCOUNT", "ci-test")
        .args(&["profiles", "check"])
        .run();
    output.success();
    // It requires an account: without one, check must fail.
    Test::new()
        .site_file("site.toml", &example)
        .args(&["profiles", "check"])
        .run()
        .failure(2);
}

#[test]
fn worked_example_renders_with_the_example_site_toml() {
    let example = example_site_toml();
    let output = Test::new()
        .site_file("site.toml", &example)
        .args(&[
            "render",
            "gpu-tensorflow",
            "-A",
            "abc123",
            "-t",
            "90",
            "-p",
            "gpu",
            "-g",
            "2",
        ])
        .run();
    output.success();
    super::test::assert_bash_syntax(&output.stdout);
    snapshot("render__example_site_gpu", &output.layout());
}

#[test]
fn up_dry_run_prints_what_would_be_submitted() {
    let output = Test::new()
        // The image exists only on a cluster: its check is for the preflight tests.
        .args(&[
            "up",
            "--dry-run",
            "--no-check",
            "gpu-tensorflow",
            "-t",
            "90",
        ])
        .run();
    output
        .success()
        .stdout_has("would submit with: bash, on this machine (scheduler = local)\n")
        .stdout_has("time       01:30:00\n")
        .stdout_has("--- batch script ---\n#!/usr/bin/env bash\n");
    snapshot("up__dry_run", &output.layout());
}

#[test]
fn up_without_a_proxy_is_a_configuration_error() {
    Test::new()
        .args(&["up", "-I"])
        .run()
        .failure(2)
        .stderr_has("no proxy is configured: site.toml has no `proxy_url`")
        .stderr_has("hint: set `proxy_url`");
}
