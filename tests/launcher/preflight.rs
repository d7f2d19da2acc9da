//! The checks `jrps up` makes before submitting: each failure stops it with
//! exit 2, naming the field, its source and the path it looked at.

use super::test::{Output, Test, snapshot};

/// A site whose `jupyter` exists, so that only the case at hand can fail.
fn site() -> Test {
    Test::new().site_file(
        "site.toml",
        "scheduler = \"local\"\njupyter = \"/bin/sh\"\n",
    )
}

/// `jrps up --dry-run` in a test whose folder has `work/`.
fn up(t: Test, args: &[&str]) -> Output {
    std::fs::create_dir_all(t.path().join("work")).unwrap();
    let work = t.path().join("work").display().to_string();
    let mut all = vec!["up", "--dry-run", "-d", work.as_str()];
    all.extend_from_slice(args);
    t.args(&all).run()
}

fn refused(name: &str, output: &Output) {
    output.failure(2);
    assert!(output.stdout.is_empty(), "nothing printed as if submitted");
    snapshot(name, &output.layout());
}

#[test]
fn a_launch_whose_paths_exist_passes() {
    let t = site();
    std::fs::create_dir_all(t.path().join("env/bin")).unwrap();
    std::os::unix::fs::symlink("/bin/sh", t.path().join("env/bin/jupyter")).unwrap();
    let output = up(t, &["--venv", "env"]);
    output.success().stdout_has("would submit with:");
}

#[test]
fn dir_that_does_not_exist() {
    let t = site();
    let output = t.args(&["up", "--dry-run", "-d", "nowhere"]).run();
    refused("error__check_dir_missing", &output);
    output.stderr_has("[TMP]/nowhere does not exist");
}

#[test]
fn dir_that_is_a_file() {
    let t = site();
    std::fs::write(t.path().join("file"), "").unwrap();
    let output = t.args(&["up", "--dry-run", "-d", "file"]).run();
    refused("error__check_dir_not_a_directory", &output);
}

#[test]
fn image_that_is_not_there() {
    let output = up(site(), &["-i", "/nonexistent/tf.sif"]);
    refused("error__check_image", &output);
}

#[test]
fn venv_that_is_not_there() {
    let output = up(site(), &["--venv", "no-env"]);
    refused("error__check_venv_missing", &output);
}

#[test]
fn venv_without_jupyter() {
    let t = site();
    std::fs::create_dir_all(t.path().join("bare-env/bin")).unwrap();
    let output = up(t, &["--venv", "bare-env"]);
    refused("error__check_venv_no_jupyter", &output);
    output.stderr_has("pip install jupyterlab");
}

#[test]
fn conda_env_that_is_not_there() {
    let t = Test::new();
    let init = t.path().join("conda/etc/profile.d/conda.sh");
    std::fs::create_dir_all(init.parent().unwrap()).unwrap();
    // A stand-in: only its place matters here, it is never sourced.
    std::fs::write(&init, "conda() { :; }\n").unwrap();
    let t = t.site_file(
        "site.toml",
        &format!(
            "scheduler = \"local\"\nconda_init = {:?}\n",
            init.display().to_string()
        ),
    );
    let output = up(t, &["--conda-env", "torch"]);
    refused("error__check_conda_env", &output);
    output.stderr_has("[TMP]/conda/envs/torch/bin/jupyter does not exist, nor in /home/tester/.conda/envs/torch/bin/jupyter");
}

#[test]
fn conda_init_that_is_not_there() {
    let t = Test::new().site_file(
        "site.toml",
        "scheduler = \"local\"\nconda_init = \"/nonexistent/conda.sh\"\n",
    );
    let output = up(t, &["--conda-env", "torch"]);
    refused("error__check_conda_init", &output);
}

#[test]
fn jupyter_that_is_not_a_command() {
    let t = Test::new().site_file(
        "site.toml",
        "scheduler = \"local\"\njupyter = \"no-such-jupyter\"\n",
    );
    let output = up(t, &[]);
    refused("error__check_jupyter", &output);
}

#[test]
fn no_check_skips_them_for_paths_only_compute_nodes_see() {
    let output = site()
        .args(&["up", "--dry-run", "--no-check", "-d", "/cluster/only"])
        .run();
    output.success().stdout_has("dir        /cluster/only\n");
}
