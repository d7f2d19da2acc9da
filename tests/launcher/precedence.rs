//! Precedence, one rule per test, read from `jrps profiles show`: the `time`
//! row says which layer won and names it.

use super::test::Test;

/// The `time` row of `profiles show` for `t`, columns squeezed.
fn time_row(t: Test, args: &[&str]) -> String {
    let mut all = vec!["profiles", "show"];
    all.extend_from_slice(args);
    let output = t.args(&all).run();
    output.success();
    output
        .stdout
        .lines()
        .find(|l| l.starts_with("time "))
        .unwrap_or_else(|| panic!("no time row:\n{}", output.layout()))
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

fn site_default() -> Test {
    Test::new().site_file("profiles/default.toml", "time = 45\n")
}

#[test]
fn built_in_profile_applies_without_site_or_user() {
    assert_eq!(
        time_row(Test::new(), &[]),
        "time 00:30:00 built-in profiles/default.toml:2"
    );
}

#[test]
fn site_profile_beats_built_in() {
    let row = time_row(site_default(), &[]);
    assert!(row.starts_with("time 00:45:00 /"), "{row}");
    assert!(row.ends_with("/site/profiles/default.toml:1"), "{row}");
}

#[test]
fn user_profile_beats_site() {
    let t = site_default().user_file(
        "profiles/default.toml",
        "description = \"mine\"\ntime = 50\n",
    );
    let row = time_row(t, &[]);
    assert!(row.starts_with("time 00:50:00 /"), "{row}");
    assert!(
        row.ends_with("/config/jrps/profiles/default.toml:2"),
        "{row}"
    );
}

#[test]
fn env_beats_files() {
    let t = site_default()
        .user_file("profiles/default.toml", "time = 50\n")
        .env("JRPS_TIME", "55");
    assert_eq!(
        time_row(t, &[]),
        "time 00:55:00 environment variable JRPS_TIME"
    );
}

#[test]
fn flags_beat_env() {
    let t = Test::new().env("JRPS_TIME", "55");
    assert_eq!(time_row(t, &["-t", "20"]), "time 00:20:00 flag --time");
}

#[test]
fn absent_flags_do_not_wipe_lower_layers() {
    // The classic layering trap: an unset flag must not override the env or a file.
    let t = Test::new().env("JRPS_TIME", "55");
    assert_eq!(
        time_row(t, &["-p", "compute"]),
        "time 00:55:00 environment variable JRPS_TIME"
    );
}

#[test]
fn profile_beats_defaults_tables() {
    // [defaults] apply to every profile; a profile's own value is more specific.
    let t = Test::new()
        .site_file("site.toml", "[defaults]\ntime = 40\n")
        .user_file("config.toml", "[defaults]\ntime = 41\n");
    assert_eq!(
        time_row(t, &[]),
        "time 00:30:00 built-in profiles/default.toml:2"
    );
}

#[test]
fn user_defaults_beat_site_defaults() {
    let t = Test::new()
        .site_file("site.toml", "[defaults]\naccount = \"site-acct\"\n")
        .user_file("config.toml", "[defaults]\naccount = \"my-acct\"\n");
    let output = t.args(&["render"]).run();
    output.success().stdout_has("#SBATCH --account=my-acct\n");
}

#[test]
fn child_profile_beats_the_profile_it_extends() {
    let t = Test::new().user_file("profiles/long.toml", "extends = \"debug\"\ntime = 20\n");
    let row = time_row(t, &["long"]);
    assert!(row.ends_with("/config/jrps/profiles/long.toml:2"), "{row}");
}

#[test]
fn a_profile_may_extend_the_one_it_hides() {
    let t = Test::new().user_file(
        "profiles/gpu-pytorch.toml",
        "extends = \"gpu-pytorch\"\ntime = 60\n",
    );
    let output = t.args(&["render", "gpu-pytorch"]).run();
    output
        .success()
        .stdout_has("#SBATCH --time=01:00:00\n")
        .stdout_has("pytorch-gpu.simg");
}

#[test]
fn env_tables_merge_by_variable_name_and_each_entry_keeps_its_line() {
    let t = Test::new()
        .site_file(
            "site.toml",
            "[defaults.env]\nSHARED = \"site\"\nSITE_ONLY = \"site\"\n",
        )
        .user_file(
            "profiles/mine.toml",
            "extends = \"default\"\n\n[env]\nSHARED = \"mine\"\n",
        );
    let output = t.args(&["profiles", "show", "mine"]).run();
    output.success();
    let rows: Vec<String> = output
        .stdout
        .lines()
        .filter(|l| l.starts_with("env "))
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(rows.len(), 2, "{}", output.layout());
    assert!(rows[0].starts_with("env SHARED=mine /"), "{rows:?}");
    assert!(
        rows[0].ends_with("/config/jrps/profiles/mine.toml:4"),
        "{rows:?}"
    );
    assert!(rows[1].starts_with("env SITE_ONLY=site /"), "{rows:?}");
    assert!(rows[1].ends_with("/site/site.toml:3"), "{rows:?}");
}

#[test]
fn a_bad_value_that_a_higher_layer_overrides_is_still_refused() {
    // Each layer is checked on its own: a flag must not hide a broken file.
    let t = Test::new().user_file("profiles/mine.toml", "description = \"x\"\ntime = true\n");
    let output = t.args(&["render", "mine", "-t", "60"]).run();
    output.failure(2).stderr_has(
        "[TMP]/config/jrps/profiles/mine.toml:2: in `time = true`: invalid type: boolean `true`",
    );
}

#[test]
fn variables_stay_text_and_empty_ones_count_as_unset() {
    // A parsing environment layer would read 0012 as the number 12.
    let t = Test::new().env("JRPS_ACCOUNT", "0012").env("JRPS_TIME", "");
    let output = t.args(&["render"]).run();
    output
        .success()
        .stdout_has("#SBATCH --account=0012\n")
        .stdout_has("#SBATCH --time=00:30:00\n");
}
