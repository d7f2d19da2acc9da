//! Runs rendered scripts with bash (no Slurm) against stub `jupyter`, `jrps`
//! and `hostname` programs, to pin the script's behaviour and its interface
//! with `jrps register`.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use super::test::Test;

fn stub(dir: &Path, name: &str, body: &str) {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/bash\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

struct Run {
    code: i32,
    stderr: String,
    log: String,
}

/// Renders with `args`, then runs the script with stubs first on PATH.
fn run_script(args: &[&str], session: bool) -> (Run, Test) {
    run_script_with_site(args, session, "")
}

/// As `run_script`, with `site` appended to the stubs' `site.toml`.
fn run_script_with_site(args: &[&str], session: bool, site: &str) -> (Run, Test) {
    let (mut command, t, log) = prepare(args, session, site);
    let out = command.output().unwrap();
    let run = Run {
        code: out.status.code().unwrap_or(-1),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        log: read_log(&log, t.path()),
    };
    (run, t)
}

fn read_log(log: &Path, root: &Path) -> String {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .replace(&root.display().to_string(), "[TMP]")
}

/// Renders with `args` and returns the command that runs the script with
/// the stubs, the test (its folder), and the stubs' log. `$STUB_SLEEP`
/// makes the Jupyter stub stay that many seconds after it logged.
/// `{root}` in `site` is the test's folder.
fn prepare(args: &[&str], session: bool, site: &str) -> (Command, Test, std::path::PathBuf) {
    let t = Test::new();
    let site = site.replace("{root}", &t.path().display().to_string());
    let t = t.site_file(
        "site.toml",
        &format!("jrps = \"jrps-stub\"\njupyter = \"jupyter-stub\"\ncontainer_runtime = \"singularity-stub\"\n{site}"),
    );
    let mut all = vec!["render"];
    all.extend_from_slice(args);
    let t = t.args(&all);
    let output = t.run();
    output.success();
    let root = t.path().to_path_buf();
    let bin = root.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let log = root.join("log");
    // Each stub appends one line to the log: what ran, with which arguments.
    stub(&bin, "hostname", "echo '10.9.8.7 fe80::1'");
    let jupyter_stub = format!(
        "echo \"jupyter $* cwd=$PWD token=$JUPYTER_TOKEN runtime_mode=$(stat -c %a \"$JUPYTER_RUNTIME_DIR\") jupyter_path=${{JUPYTER_PATH:-}}\" >> {log}
if [[ -n ${{STUB_IGNORE_TERM:-}} ]]; then trap '' TERM; fi
if [[ -n ${{STUB_SLEEP:-}} ]]; then exec sleep \"$STUB_SLEEP\"; fi",
        log = log.display()
    );
    stub(&bin, "jupyter-stub", &jupyter_stub);
    // A virtual environment and a conda installation whose `jupyter` says
    // which environment it ran from.
    let env_jupyter = format!(
        "echo \"env-jupyter $1 from=$0 VIRTUAL_ENV=${{VIRTUAL_ENV:-}} CONDA_PREFIX=${{CONDA_PREFIX:-}}\" >> {log}",
        log = log.display()
    );
    for env in ["venv", "conda/envs/torch"] {
        let dir = root.join(env).join("bin");
        std::fs::create_dir_all(&dir).unwrap();
        stub(&dir, "jupyter", &env_jupyter);
    }
    // A stand-in for conda's etc/profile.d/conda.sh (conda cannot be
    // installed here): `conda activate NAME` as conda does it, for the envs
    // of this installation.
    let profile_d = root.join("conda/etc/profile.d");
    std::fs::create_dir_all(&profile_d).unwrap();
    std::fs::write(
        profile_d.join("conda.sh"),
        format!(
            "conda() {{
  [[ $1 == activate ]] || return 1
  case $2 in /*) prefix=$2 ;; *) prefix={root}/conda/envs/$2 ;; esac
  [[ -x $prefix/bin/jupyter ]] || return 1
  export CONDA_PREFIX=$prefix PATH=$prefix/bin:$PATH
  echo \"conda activate $2\" >> {log}
}}
",
            root = root.display(),
            log = log.display()
        ),
    )
    .unwrap();
    stub(
        &bin,
        "singularity-stub",
        &format!(
            "echo \"singularity $*\" >> {log}; shift
while [[ $1 == --* ]]; do if [[ $1 == --bind ]]; then shift 2; else shift; fi; done
shift; exec \"$@\"",
            log = log.display()
        ),
    );
    stub(
        &bin,
        "jrps-stub",
        &format!("echo \"jrps $*\" >> {log}", log = log.display()),
    );
    stub(
        &bin,
        "module",
        &format!("echo \"module $*\" >> {log}", log = log.display()),
    );
    let script = root.join("job.sh");
    std::fs::write(&script, &output.stdout).unwrap();
    let home = root.join("home");
    std::fs::create_dir_all(home.join("work dir")).unwrap();
    let mut command = Command::new("bash");
    command
        .arg(&script)
        .env_clear()
        .env(
            "PATH",
            format!("{}:{}", bin.display(), std::env::var("PATH").unwrap()),
        )
        .env("HOME", &home)
        .env("TMPDIR", &root)
        .env("JUPYTER_PATH", "/users/own");
    if session {
        let dir = root.join("session");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("token"), "tok-123").unwrap();
        command.env("JRPS_SESSION_DIR", &dir);
    }
    (command, t, log)
}

#[test]
fn script_starts_jupyter_registers_and_deregisters_in_order() {
    let (run, t) = run_script(&["-d", "~/work dir"], true);
    let root = t.path();
    assert_eq!(run.code, 0, "{}", run.stderr);
    let lines: Vec<&str> = run.log.lines().collect();
    assert_eq!(lines.len(), 4, "{}", run.log);
    // The page inside Jupyter is written first, and its folder leads
    // JUPYTER_PATH, ahead of the user's own.
    assert_eq!(
        lines[0],
        "jrps register --write-extension [TMP]/session/jupyter"
    );
    // Jupyter runs in the background, so its line and register's may come in
    // either order; deregistration comes after both (it runs after `wait`).
    let jupyter = lines
        .iter()
        .find(|l| l.starts_with("jupyter "))
        .expect("jupyter ran");
    // Jupyter refuses root without --allow-root; the script adds it only then.
    let root_flag = if rustix::process::geteuid().is_root() {
        " --allow-root"
    } else {
        ""
    };
    let expected = format!(
        "jupyter lab --no-browser --port=0 --ip=10.9.8.7 --ServerApp.allow_remote_access=True --ServerApp.trust_xheaders=True{root_flag} cwd=[TMP]/home/work dir token=tok-123 runtime_mode=700 jupyter_path=[TMP]/session/jupyter:/users/own"
    );
    assert!(jupyter.starts_with(&expected), "{jupyter}");
    let register = lines
        .iter()
        .find(|l| l.starts_with("jrps register --runtime-dir"))
        .expect("register ran");
    assert!(
        register.starts_with("jrps register --runtime-dir [TMP]/jrps-runtime."),
        "{register}"
    );
    assert!(register.contains(" --pid "), "{register}");
    assert_eq!(
        lines[3],
        "jrps register --deregister --reason jupyter-exited"
    );
    // The private runtime dir is removed on exit.
    let leftovers: Vec<_> = std::fs::read_dir(root)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("jrps-runtime."))
        .collect();
    assert!(leftovers.is_empty());
}

#[test]
fn script_runs_jupyter_in_the_image_with_nv_for_gpus() {
    let (run, _) = run_script(&["-p", "gpu-shared", "-g", "1", "-i", "/img/tf.sif"], true);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.log
            .lines()
            .any(|l| l.starts_with("singularity exec --nv --bind [TMP]/jrps-runtime.")),
        "{}",
        run.log
    );
}

#[test]
fn script_refuses_to_start_without_a_session_dir() {
    let (run, _) = run_script(&[], false);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("JRPS_SESSION_DIR is not set"),
        "{}",
        run.stderr
    );
    assert_eq!(run.log, "", "nothing may start without a session");
}

/// Hostile strings survive `shell_quote` and bash unchanged.
#[test]
fn shell_quote_round_trips_hostile_strings() {
    for hostile in [
        "",
        " ",
        "it's",
        "'",
        "''",
        "\"",
        "$(touch /tmp/jrps-pwned)",
        "`id`",
        "a;b|c&d",
        "$HOME",
        "~",
        "*",
        "-n",
        "\\",
        "line\nbreak",
        "tab\there",
        "ünïcödé",
        "!event",
    ] {
        let word = jrps::launcher::shell_quote::shell_quote(hostile);
        let out = Command::new("bash")
            .arg("-c")
            .arg(format!("printf %s {word}"))
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            hostile,
            "quoted as {word}"
        );
    }
}

#[test]
fn script_loads_site_modules_before_jupyter() {
    let (run, _t) = run_script_with_site(&[], true, "modules = [\"gcc/10.2.0\", \"anaconda3\"]\n");
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.log.starts_with("module load gcc/10.2.0 anaconda3\n"),
        "{}",
        run.log
    );
}

#[test]
fn script_runs_jupyter_from_the_virtual_environment() {
    let (run, t) = run_script(&["--venv", "venv"], true);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let root = t.path().display().to_string();
    // `venv` was relative to where jrps ran (the test's folder).
    let jupyter = run
        .log
        .lines()
        .find(|l| l.starts_with("env-jupyter"))
        .unwrap_or_else(|| panic!("{}", run.log));
    assert_eq!(
        jupyter, "env-jupyter lab from=[TMP]/venv/bin/jupyter VIRTUAL_ENV=[TMP]/venv CONDA_PREFIX=",
        "root {root}"
    );
    assert!(
        !run.log.contains("\njupyter "),
        "the site's jupyter did not run: {}",
        run.log
    );
}

#[test]
fn script_activates_the_conda_environment_with_a_stand_in_conda_sh() {
    let (run, _t) = run_script_with_site(
        &["--conda-env", "torch"],
        true,
        "conda_init = \"{root}/conda/etc/profile.d/conda.sh\"\n",
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let lines: Vec<&str> = run.log.lines().collect();
    assert_eq!(lines[0], "conda activate torch", "{}", run.log);
    let jupyter = lines
        .iter()
        .find(|l| l.starts_with("env-jupyter"))
        .unwrap_or_else(|| panic!("{}", run.log));
    assert_eq!(
        *jupyter,
        "env-jupyter lab from=[TMP]/conda/envs/torch/bin/jupyter VIRTUAL_ENV= CONDA_PREFIX=[TMP]/conda/envs/torch"
    );
}

#[test]
fn script_that_fails_before_jupyter_reports_job_failed() {
    let (run, _t) = run_script(&["-d", "~/no such dir"], true);
    assert_ne!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        run.log,
        "jrps register --write-extension [TMP]/session/jupyter\n\
         jrps register --deregister --reason job-failed\n"
    );
}

/// A node whose only address is loopback (`hostname -I` prints nothing):
/// Jupyter is not started on an address the proxy cannot reach; the job
/// fails at once and says which setting fixes it, to the log and to the
/// session (for `jrps up` and `jrps ls`).
#[test]
fn a_node_with_only_loopback_fails_at_once_naming_node_interface() {
    let (mut command, t, log) = prepare(&[], true, "");
    stub(
        &t.path().join("bin"),
        "hostname",
        "case ${1:-} in -I) echo ;; -i) echo 127.0.1.1 ;; *) echo node9 ;; esac",
    );
    let out = command.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let cause = "node node9 has no address but loopback; set node_interface in site.toml";
    assert!(stderr.contains(&format!("jrps: {cause}")), "{stderr}");
    assert_eq!(
        read_log(&log, t.path()),
        format!("jrps register --deregister --reason job-failed --detail {cause}\n"),
        "Jupyter must not start"
    );
}

/// Runs the script until Jupyter is up, then sends it SIGTERM, as Slurm
/// does at the time limit and on `scancel`; returns the stubs' log.
fn terminated(args: &[&str]) -> String {
    terminated_with(args, &[])
}

/// As [`terminated`], with more variables for the stubs.
fn terminated_with(args: &[&str], env: &[(&str, &str)]) -> String {
    let (mut command, t, log) = prepare(args, true, "");
    let mut child = command
        .env("STUB_SLEEP", "60")
        .envs(env.iter().copied())
        .spawn()
        .unwrap();
    // Jupyter (in the background) and the job helper have both started:
    // only then is the deregistration the last line the log can get.
    crate::support::until_sync(
        std::time::Duration::from_secs(20),
        "Jupyter and the job helper started",
        || {
            let text = read_log(&log, t.path());
            if text.contains("jrps register --runtime-dir") && text.contains("runtime_mode=") {
                Ok(())
            } else {
                Err(text)
            }
        },
    );
    let pid = rustix::process::Pid::from_child(&child);
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(143), "exit as for SIGTERM");
    read_log(&log, t.path())
}

#[test]
fn a_signal_before_the_time_limit_is_a_cancel() {
    let log = terminated(&["-t", "30"]);
    assert!(
        log.ends_with("jrps register --deregister --reason cancelled\n"),
        "{log}"
    );
}

#[test]
fn a_signal_at_the_time_limit_is_the_time_limit() {
    // Ten seconds of wall time: the signal comes within its last ten seconds.
    let log = terminated(&["-t", "0:10"]);
    assert!(
        log.ends_with("jrps register --deregister --reason time-limit\n"),
        "{log}"
    );
}

/// Jupyter can miss a SIGTERM (one that comes just after Grid Engine's
/// SIGUSR1): the exit trap does not wait on it until the hard limit, but
/// sends SIGKILL 20 seconds later, and the job ends.
#[test]
fn an_app_that_outlives_its_sigterm_is_killed_20_seconds_later() {
    let started = std::time::Instant::now();
    let log = terminated_with(&["-t", "30"], &[("STUB_IGNORE_TERM", "1")]);
    let took = started.elapsed();
    assert!(
        log.ends_with("jrps register --deregister --reason cancelled\n"),
        "{log}"
    );
    assert!(
        took >= std::time::Duration::from_secs(20) && took < std::time::Duration::from_secs(45),
        "the script ended after {took:?}"
    );
}

#[test]
fn idle_timeout_is_passed_to_the_job_helper_in_seconds() {
    let (run, _t) = run_script(&["--idle-timeout", "1:30"], true);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let register = run
        .log
        .lines()
        .find(|l| l.starts_with("jrps register --runtime-dir"))
        .unwrap();
    assert!(register.ends_with(" --idle-timeout 90"), "{register}");
}
