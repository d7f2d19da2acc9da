//! Every validation error: exit code 2, a message naming the field, where its
//! value came from and what is allowed, and never a panic. Snapshots pin the
//! whole message; the asserts say what each one must contain.

use super::test::{Output, Test, snapshot};

fn refused(name: &str, t: Test) -> Output {
    let output = t.run();
    output.failure(2);
    assert!(output.stderr.starts_with("error: "), "{}", output.layout());
    assert!(!output.stderr.contains("panicked"), "{}", output.layout());
    assert_eq!(
        output.stdout, "",
        "nothing may be printed as if it were a script"
    );
    snapshot(name, &output.layout());
    output
}

fn render(args: &[&str]) -> Test {
    let mut all = vec!["render"];
    all.extend_from_slice(args);
    Test::new().args(&all)
}

#[test]
fn debug_time_over_the_partition_limit() {
    // The original compared "45" and "30" as strings; this must fire.
    refused(
        "error__time_over_debug_limit",
        render(&["-p", "debug", "-t", "45"]),
    )
    .stderr_has("--time")
    .stderr_has("00:30:00 limit of partition `debug`");
}

#[test]
fn time_garbage() {
    refused("error__time_garbage", render(&["-t", "half an hour"]))
        .stderr_has("invalid time `half an hour` (from flag --time)")
        .stderr_has("hint: allowed: minutes (M), M:S, H:M:S");
}

#[test]
fn time_zero() {
    refused("error__time_zero", render(&["-t", "0"])).stderr_has("it is zero");
}

#[test]
fn time_negative() {
    refused("error__time_negative", render(&["--time=-5"])).stderr_has("it is negative");
}

#[test]
fn time_from_env_names_the_variable() {
    refused("error__time_env", render(&[]).env("JRPS_TIME", "1:99"))
        .stderr_has("environment variable JRPS_TIME");
}

#[test]
fn time_wrong_type_in_a_file_names_file_and_line() {
    let t = render(&["mine"]).user_file("profiles/mine.toml", "description = \"x\"\ntime = true\n");
    refused("error__time_wrong_type", t)
        .stderr_has("[TMP]/config/jrps/profiles/mine.toml:2")
        .stderr_has("Slurm time");
}

#[test]
fn unknown_partition() {
    refused("error__unknown_partition", render(&["-p", "comptue"]))
        .stderr_has("invalid partition `comptue` (from flag --partition)")
        .stderr_has("compute, debug, gpu-shared")
        .stderr_has("did you mean `compute`?");
}

#[test]
fn gpus_on_a_partition_without_gpus() {
    refused(
        "error__gpus_on_cpu_partition",
        render(&["-p", "compute", "-g", "1"]),
    )
    .stderr_has("partition `compute` has no GPUs")
    .stderr_has("GPU partitions: gpu-shared");
}

#[test]
fn too_many_gpus() {
    refused(
        "error__too_many_gpus",
        render(&["-p", "gpu-shared", "-g", "4"]),
    )
    .stderr_has("1 to 3 GPUs");
}

#[test]
fn gpu_partition_without_gpus() {
    refused(
        "error__gpu_partition_needs_gpus",
        render(&["-p", "gpu-shared"]),
    )
    .stderr_has("pass -g N");
}

#[test]
fn gpus_from_env_must_be_a_number() {
    refused(
        "error__gpus_env_garbage",
        render(&[]).env("JRPS_GPUS", "two"),
    )
    .stderr_has("JRPS_GPUS");
}

#[test]
fn account_required_but_missing() {
    let t = render(&[]).site_file("site.toml", "account_required = true\n");
    refused("error__account_required", t)
        .stderr_has("account")
        .stderr_has("[TMP]/site/site.toml:1");
}

#[test]
fn account_required_is_satisfied_by_a_flag() {
    render(&["-A", "abc123"])
        .site_file("site.toml", "account_required = true\n")
        .run()
        .success()
        .stdout_has("#SBATCH --account=abc123\n");
}

#[test]
fn batch_and_server_together() {
    refused(
        "error__batch_and_server",
        render(&["-b", "slurm", "-s", "notebook"]),
    )
    .stderr_has("flag --batch")
    .stderr_has("flag --server");
}

#[test]
fn batch_must_not_be_a_path() {
    for path in [
        "../batch/slurm",
        "/etc/passwd",
        "batch/slurm.sh.j2",
        ".hidden",
    ] {
        let output = render(&["-b", path]).run();
        output.failure(2).stderr_has("not a path");
    }
    refused("error__batch_path", render(&["-b", "/etc/passwd"]));
}

#[test]
fn batch_unknown_name() {
    refused("error__batch_unknown", render(&["-b", "slrum"]))
        .stderr_has("unknown batch template `slrum`")
        .stderr_has("did you mean `slurm`?");
}

#[test]
fn server_unknown() {
    refused("error__server_unknown", render(&["-s", "rstudio"]))
        .stderr_has("lab (or jupyterlab), notebook, voila (or voilà), code-server (or vscode)");
}

/// What a session opens stays inside its folder.
#[test]
fn open_outside_the_session_folder() {
    for (path, problem) in [
        ("../secrets.ipynb", "it has a `..` or an empty part"),
        (
            "/etc/passwd",
            "it is not relative to the session's directory",
        ),
        ("~/x.ipynb", "it is not relative to the session's directory"),
        ("a//b.ipynb", "it has a `..` or an empty part"),
        (
            "--auth=none",
            "it starts with `-`, which the app would read as an option",
        ),
    ] {
        let open = format!("--open={path}");
        let out = render(&["-s", "voila", &open]).run();
        out.failure(2);
        assert!(
            out.stderr.contains("invalid open") && out.stderr.contains(problem),
            "{path}: {}",
            out.layout()
        );
    }
}

#[test]
fn unknown_profile_lists_the_available_ones() {
    refused("error__unknown_profile", render(&["gpu-tensorflw"]))
        .stderr_has("did you mean `gpu-tensorflow`?")
        .stderr_has("debug, default, gpu-pytorch, gpu-tensorflow, notebook");
}

#[test]
fn unknown_profile_from_env() {
    refused(
        "error__unknown_profile_env",
        render(&[]).env("JRPS_PROFILE", "nope"),
    )
    .stderr_has("environment variable JRPS_PROFILE");
}

#[test]
fn toml_syntax_error_names_file_and_line() {
    let t =
        render(&["broken"]).site_file("profiles/broken.toml", "partition = \"debug\"\ntime = \n");
    refused("error__toml_syntax", t).stderr_has("[TMP]/site/profiles/broken.toml:2");
}

#[test]
fn unknown_profile_key_names_the_key() {
    let t = render(&["typo"]).user_file(
        "profiles/typo.toml",
        "description = \"x\"\npartitoin = \"debug\"\n",
    );
    refused("error__unknown_key", t)
        .stderr_has("[TMP]/config/jrps/profiles/typo.toml:2")
        .stderr_has("partitoin");
}

#[test]
fn site_toml_error_names_file_and_line() {
    let t = render(&[]).site_file("site.toml", "[partitions.debug]\nmax_time = \"soon\"\n");
    refused("error__site_max_time", t).stderr_has("[TMP]/site/site.toml:2");
}

#[test]
fn proxy_addresses_on_another_port_than_proxy_url_names() {
    let t = render(&[]).site_file(
        "site.toml",
        "proxy_url = \"https://manage.jrps.example.org:8443\"\n\
         proxy_address = [\"10.0.0.5:8443\", \"10.0.0.6:443\"]\n",
    );
    refused("error__site_proxy_address_port", t)
        .stderr_has("[TMP]/site/site.toml:2")
        .stderr_has("10.0.0.6:443");
}

#[test]
fn site_two_default_partitions() {
    let t = render(&[]).site_file(
        "site.toml",
        "[partitions.a]\ndefault = true\n[partitions.b]\ndefault = true\n",
    );
    refused("error__site_two_defaults", t).stderr_has("at most one partition");
}

#[test]
fn extends_cycle() {
    let t = render(&["a"])
        .user_file("profiles/a.toml", "extends = \"b\"\n")
        .user_file("profiles/b.toml", "extends = \"a\"\n");
    refused("error__extends_cycle", t).stderr_has("a -> b -> a");
}

#[test]
fn extends_unknown() {
    let t = render(&["a"]).user_file("profiles/a.toml", "extends = \"defualt\"\n");
    refused("error__extends_unknown", t)
        .stderr_has("[TMP]/config/jrps/profiles/a.toml:1")
        .stderr_has("did you mean `default`?");
}

#[test]
fn sbatch_options_jrps_controls() {
    for option in [
        "--partition=debug",
        "--time=10",
        "--gres=gpu:1",
        "--acc=x",
        "--job-name=x",
        "--output=/tmp/x",
        "--export=NONE",
        "--requeue",
        "--no-requeue",
        "--open-mode=truncate",
    ] {
        let t = render(&["o"]).user_file(
            "profiles/o.toml",
            &format!("sbatch_options = [\"{option}\"]\n"),
        );
        t.run().failure(2).stderr_has("jrps sets --");
    }
    let t = render(&["o"]).user_file(
        "profiles/o.toml",
        "sbatch_options = [\"--partition=debug\"]\n",
    );
    refused("error__sbatch_option_controlled", t).stderr_has("[TMP]/config/jrps/profiles/o.toml:1");
}

#[test]
fn sbatch_options_that_change_the_jobs_identity_or_count() {
    for option in [
        "--array=1-10",
        "--export-file=/tmp/env",
        "--uid=0",
        "--gid=0",
        "--wrap=id",
        "--get-user-env",
        "--parsable",
        "--wait",
        "--test-only",
        "--clusters=other",
        "--arr=1-2",
    ] {
        let t = render(&["o"]).user_file(
            "profiles/o.toml",
            &format!("sbatch_options = [\"{option}\"]\n"),
        );
        t.run()
            .failure(2)
            .stderr_has("sbatch_options")
            .stderr_has("[TMP]/config/jrps/profiles/o.toml:1");
    }
    let t = render(&["o"]).user_file("profiles/o.toml", "sbatch_options = [\"--array=0-99\"]\n");
    refused("error__sbatch_option_identity", t).stderr_has("--array changes which job runs");
    // Shaping the one job is still the user's business.
    let t = render(&["o"]).user_file(
        "profiles/o.toml",
        "sbatch_options = [\"--begin=now+1hour\", \"--constraint=haswell\", \"--qos=normal\"]\n",
    );
    t.run().success();
}

#[test]
fn image_that_singularity_would_read_as_an_option() {
    refused("error__image_option", render(&["--image=--bind=/:/host"]))
        .stderr_has("image")
        .stderr_has("flag --image")
        .stderr_has("starts with `-`");
}

#[test]
fn sbatch_options_shell_metacharacters() {
    for option in [
        "--begin=now;id",
        "--comment=a b",
        "--x=$(id)",
        "--a=`id`",
        "--b=1\\n#SBATCH -p x",
        "-p",
    ] {
        let text = format!("sbatch_options = [{}]\n", toml::Value::from(option));
        let t = render(&["o"]).user_file("profiles/o.toml", &text);
        t.run().failure(2).stderr_has("sbatch_options");
    }
    let t = render(&["o"]).user_file(
        "profiles/o.toml",
        "sbatch_options = [\"--begin=now;reboot\"]\n",
    );
    refused("error__sbatch_option_metacharacters", t);
}

#[test]
fn env_names_must_be_shell_names() {
    let t = render(&["e"]).user_file("profiles/e.toml", "[env]\n\"BAD-NAME\" = \"x\"\n");
    refused("error__env_bad_name", t).stderr_has("not a shell variable name");
}

#[test]
fn env_must_not_carry_secrets() {
    let t = render(&["e"]).user_file("profiles/e.toml", "[env]\nAWS_SECRET_ACCESS_KEY = \"x\"\n");
    refused("error__env_secret", t).stderr_has("looks like it holds a secret");
}

#[test]
fn dir_of_another_user() {
    refused("error__dir_other_user", render(&["-d", "~bob/x"]))
        .stderr_has("`~user` is not supported");
}

#[test]
fn memory_garbage() {
    refused("error__memory_garbage", render(&["--memory", "lots"])).stderr_has("16G");
}

#[test]
fn clap_usage_errors_exit_2() {
    let output = Test::new().args(&["render", "-x"]).run();
    output.failure(2).stderr_has("error:");
    // The original exited 0 on unknown options.
    let output = Test::new().args(&["render", "-g", "-1"]).run();
    output.failure(2);
}

#[test]
fn up_refuses_before_anything_leaves_the_machine() {
    Test::new()
        .args(&["up", "-p", "debug", "-t", "45"])
        .run()
        .failure(2)
        .stderr_has("00:30:00 limit");
}

const GPU_SITE: &str =
    "[partitions.gpu]\ndefault = true\ngpus_max = 4\nmax_idle_timeout = \"4:00:00\"\n";

#[test]
fn idle_timeout_over_the_partition_maximum() {
    let t =
        Test::new()
            .site_file("site.toml", GPU_SITE)
            .args(&["render", "--idle-timeout", "5:00:00"]);
    refused("error__idle_timeout_over_max", t)
        .stderr_has("05:00:00 is over the 04:00:00 limit of partition `gpu`")
        .stderr_has("site.toml:4");
    let off = Test::new()
        .site_file("site.toml", GPU_SITE)
        .args(&["render", "--idle-timeout", "off"])
        .run();
    off.failure(2).stderr_has("invalid idle_timeout `off`");
}

#[test]
fn a_partition_maximum_without_a_default_is_the_default() {
    let output = Test::new()
        .site_file("site.toml", GPU_SITE)
        .args(&["render"])
        .run();
    output.success().stdout_has(
        "--pid \"$app_pid\" ${jrps_app[@]+\"${jrps_app[@]}\"} --idle-timeout 14400 &\n",
    );
}

#[test]
fn a_partition_default_over_its_maximum_is_a_site_error() {
    let t = Test::new()
        .site_file("site.toml", &format!("{GPU_SITE}idle_timeout = \"off\"\n"))
        .args(&["render"]);
    refused("error__site_idle_default_over_max", t).stderr_has("site.toml:5");
}

#[test]
fn image_venv_and_conda_env_exclude_each_other() {
    let t = render(&["gpu-pytorch", "--venv", "~/env"]);
    refused("error__image_and_venv", t)
        .stderr_has("image (from built-in profiles/gpu-pytorch.toml:5) cannot be used with venv (from flag --venv)");
}

#[test]
fn conda_env_names_that_could_be_options_are_refused() {
    refused("error__conda_env_option", render(&["--conda-env=-h"]))
        .stderr_has("invalid conda_env `-h`");
}

#[test]
fn walltime_settings_name_the_key_and_line() {
    let output = refused(
        "error__walltime_warn_over_a_day",
        Test::new()
            .site_file(
                "site.toml",
                "walltime_save = 2\nwalltime_warn = [15, \"2-00:00:00\"]\n",
            )
            .args(&["render"]),
    );
    assert!(output.stderr.contains("walltime_warn"), "{}", output.stderr);
    assert!(output.stderr.contains("site.toml:2"), "{}", output.stderr);
    assert!(output.stderr.contains("over a day"), "{}", output.stderr);
    let output = refused(
        "error__extend_max_garbage",
        Test::new()
            .site_file("site.toml", "[partitions.debug]\nextend_max = \"soon\"\n")
            .args(&["render", "-p", "debug"]),
    );
    assert!(output.stderr.contains("extend_max"), "{}", output.stderr);
    assert!(output.stderr.contains("site.toml:2"), "{}", output.stderr);
}
