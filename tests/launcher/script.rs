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
    let t = Test::new().site_file(
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
    stub(
        &bin,
        "jupyter-stub",
        &format!(
            "echo \"jupyter $* cwd=$PWD token=$JUPYTER_TOKEN runtime_mode=$(stat -c %a \"$JUPYTER_RUNTIME_DIR\")\" >> {log}",
            log = log.display()
        ),
    );
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
        .env("TMPDIR", &root);
    if session {
        let dir = root.join("session");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("token"), "tok-123").unwrap();
        command.env("JRPS_SESSION_DIR", &dir);
    }
    let out = command.output().unwrap();
    let run = Run {
        code: out.status.code().unwrap_or(-1),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        log: std::fs::read_to_string(&log)
            .unwrap_or_default()
            .replace(&root.display().to_string(), "[TMP]"),
    };
    (run, t)
}

#[test]
fn script_starts_jupyter_registers_and_deregisters_in_order() {
    let (run, t) = run_script(&["-d", "~/work dir"], true);
    let root = t.path();
    assert_eq!(run.code, 0, "{}", run.stderr);
    let lines: Vec<&str> = run.log.lines().collect();
    assert_eq!(lines.len(), 3, "{}", run.log);
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
        "jupyter lab --no-browser --port=0 --ip=10.9.8.7 --ServerApp.allow_remote_access=True --ServerApp.trust_xheaders=True{root_flag} cwd=[TMP]/home/work dir token=tok-123 runtime_mode=700"
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
    assert_eq!(lines[2], "jrps register --deregister");
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
