//! `jrps render`: every shipped profile and every example of the original
//! README, snapshotted; scripts are valid bash, deterministic and secret-free.

use super::test::{Test, assert_bash_syntax, snapshot};

const TENSORFLOW: &str =
    "/share/apps/gpu/singularity/images/tensorflow/tensorflow-v2.3.0-gpu-20200929.simg";
const PYTORCH: &str = "/share/apps/gpu/singularity/images/pytorch/pytorch-gpu.simg";

/// Renders, checks the script, snapshots the CLI run.
fn render(name: &str, args: &[&str]) -> String {
    let mut all = vec!["render"];
    all.extend_from_slice(args);
    let output = Test::new().args(&all).run();
    output.success();
    assert_bash_syntax(&output.stdout);
    snapshot(name, &output.layout());
    output.stdout.clone()
}

#[test]
fn profile_default() {
    render("render__default", &[]);
}

#[test]
fn profile_debug() {
    render("render__debug", &["debug"]);
}

#[test]
fn profile_notebook() {
    let script = render("render__notebook", &["notebook"]);
    assert!(script.contains("jupyter notebook \\\n"));
}

#[test]
fn profile_gpu_tensorflow() {
    render("render__gpu_tensorflow", &["gpu-tensorflow"]);
}

#[test]
fn profile_gpu_pytorch() {
    render("render__gpu_pytorch", &["gpu-pytorch"]);
}

#[test]
fn readme_debug_partition_in_share_apps() {
    let script = render(
        "render__readme_debug_share_apps",
        &["-d", "/share/apps/compute", "-p", "debug", "-t", "30"],
    );
    assert!(
        script.contains("cd -- /share/apps/compute\n"),
        "-d was ignored by the original"
    );
}

#[test]
fn readme_compute_home_60_minutes() {
    let script = render(
        "render__readme_compute_home_60",
        &["-d", "~", "-p", "compute", "-t", "60"],
    );
    // `~` is the job's $HOME at run time, not the home of whoever rendered it.
    assert!(script.contains("cd -- \"$HOME\"\n"));
    assert!(!script.contains("/home/tester"));
    assert!(script.contains("#SBATCH --time=01:00:00\n"));
}

#[test]
fn readme_server_jupyterlab() {
    let script = render("render__readme_server_jupyterlab", &["-s", "jupyterlab"]);
    assert!(script.contains("jupyter lab \\\n"));
}

#[test]
fn readme_server_notebook() {
    let script = render("render__readme_server_notebook", &["-s", "notebook"]);
    assert!(script.contains("jupyter notebook \\\n"));
}

/// Voilà is Voilà's extension of jupyter_server, sent to what it serves;
/// no page of jrps inside it (Voilà loads no JupyterLab extensions).
#[test]
fn voila_serves_the_notebook_it_opens() {
    let script = render(
        "render__voila",
        &["-s", "voila", "--open", "reports/week 1.ipynb"],
    );
    assert!(script.contains("jupyter server \\\n"), "{script}");
    assert!(
        script.contains(
            "jupyter_extra+=(--ServerApp.default_url=/voila/render/reports/week%201.ipynb)\n"
        ),
        "{script}"
    );
    assert!(
        !script.contains("--write-extension \"$JRPS_SESSION_DIR"),
        "{script}"
    );
}

/// code-server on a port the job picks, its password hash from the token
/// in the environment only, and the folder it opens as its argument.
#[test]
fn code_server_gets_its_port_and_login_from_jrps() {
    let script = render(
        "render__code_server",
        &["-s", "code-server", "--open", "src"],
    );
    assert!(script.contains("jrps_app_port=\"$(jrps register --free-port)\"\n"));
    assert!(
        script.contains(
            "HASHED_PASSWORD=\"$(jrps register --login-secret)\"\nexport HASHED_PASSWORD\n"
        )
    );
    assert!(script.contains(
        "code-server \\\n  --bind-addr \"$jrps_bind:$jrps_app_port\" --auth password \\\n"
    ));
    assert!(
        script.contains("--disable-update-check src &\n"),
        "{script}"
    );
    assert!(script.contains("--pid \"$app_pid\" ${jrps_app[@]+\"${jrps_app[@]}\"} &\n"));
    assert!(script.contains("jrps_app=(--port \"$jrps_app_port\")\n"));
    // Nothing of Jupyter's.
    assert!(!script.contains("jupyter lab"), "{script}");
    assert!(
        !script.contains("--write-extension \"$JRPS_SESSION_DIR"),
        "{script}"
    );
}

#[test]
fn readme_gpu_shared_one_gpu_home() {
    let script = render(
        "render__readme_gpu_shared_home",
        &["-p", "gpu-shared", "-g", "1", "-d", "~"],
    );
    assert!(script.contains("#SBATCH --gres=gpu:1\n"));
    // No image: plain jupyter, and so no --nv anywhere.
    assert!(!script.contains("--nv"));
}

#[test]
fn readme_tensorflow_image() {
    let script = render(
        "render__readme_tensorflow_image",
        &[
            "-t",
            "00:30:00",
            "-g",
            "1",
            "-p",
            "gpu-shared",
            "-i",
            TENSORFLOW,
        ],
    );
    assert!(script.contains(&format!(
        "singularity exec --nv --bind \"$JUPYTER_RUNTIME_DIR\" --bind \"$JRPS_SESSION_DIR/jupyter\" {TENSORFLOW} jupyter lab"
    )));
}

#[test]
fn readme_pytorch_image() {
    let script = render(
        "render__readme_pytorch_image",
        &[
            "-t",
            "00:30:00",
            "-g",
            "1",
            "-p",
            "gpu-shared",
            "-i",
            PYTORCH,
        ],
    );
    assert!(script.contains(&format!(
        "singularity exec --nv --bind \"$JUPYTER_RUNTIME_DIR\" --bind \"$JRPS_SESSION_DIR/jupyter\" {PYTORCH} jupyter lab"
    )));
}

/// The issue's "shown when done": one GPU, 01:30:00, the image under --nv.
#[test]
fn gpu_tensorflow_for_90_minutes() {
    let output = Test::new()
        .args(&["render", "gpu-tensorflow", "-t", "90"])
        .run();
    output
        .success()
        .stdout_has("#SBATCH --partition=gpu-shared\n")
        .stdout_has("#SBATCH --time=01:30:00\n")
        .stdout_has("#SBATCH --gres=gpu:1\n")
        .stdout_has("singularity exec --nv ");
}

/// The original added an empty GPU flag to every CPU job.
#[test]
fn cpu_jobs_have_no_gpu_flag() {
    let output = Test::new().args(&["render", "-p", "compute"]).run();
    output.success();
    assert!(!output.stdout.contains("--gres"), "{}", output.stdout);
    assert!(!output.stdout.contains("--gpus"), "{}", output.stdout);
}

#[test]
fn image_without_gpus_runs_without_nv() {
    let output = Test::new().args(&["render", "-i", "/images/cpu.sif"]).run();
    output
        .success()
        .stdout_has("singularity exec --bind \"$JUPYTER_RUNTIME_DIR\" --bind \"$JRPS_SESSION_DIR/jupyter\" /images/cpu.sif jupyter lab");
}

#[test]
fn identical_inputs_give_identical_bytes() {
    let first = Test::new()
        .args(&["render", "gpu-pytorch", "-d", "~/work"])
        .run();
    let second = Test::new()
        .args(&["render", "gpu-pytorch", "-d", "~/work"])
        .run();
    first.success();
    assert_eq!(first.stdout.as_bytes(), second.stdout.as_bytes());
}

#[test]
fn site_gpu_flag_style_gpus() {
    let output = Test::new()
        .site_file(
            "site.toml",
            "[partitions.gpu]\ndefault = true\ngpus_max = 4\ngpu_flag = \"gpus\"\n",
        )
        .args(&["render", "-g", "2"])
        .run();
    output.success().stdout_has("#SBATCH --gpus=2\n");
    assert!(!output.stdout.contains("--gres"));
}

#[test]
fn site_account_modules_env_and_options_are_rendered_quoted() {
    let output = Test::new()
        .site_file(
            "site.toml",
            r#"
jupyter = "/opt/my jupyter/bin/jupyter"
modules = ["anaconda3/2023.09"]
[defaults]
env = { GREETING = "it's $(not run)" }
sbatch_options = ["--begin=now+1hour", "--constraint=haswell"]
"#,
        )
        .args(&["render", "-A", "abc123", "--cpus", "4", "--memory", "16G"])
        .run();
    output
        .success()
        .stdout_has("#SBATCH --account=abc123\n")
        .stdout_has("#SBATCH --cpus-per-task=4\n")
        .stdout_has("#SBATCH --mem=16G\n")
        .stdout_has("#SBATCH --begin=now+1hour\n#SBATCH --constraint=haswell\n")
        .stdout_has("module load anaconda3/2023.09\n")
        .stdout_has("export GREETING='it'\\''s $(not run)'\n")
        .stdout_has("'/opt/my jupyter/bin/jupyter' lab");
    assert_bash_syntax(&output.stdout);
}

#[test]
fn site_batch_template_is_found_by_name() {
    let output = Test::new()
        .site_file(
            "batch/tiny.sh.j2",
            "#!/bin/bash\n#SBATCH --partition={{ profile }}\necho {{ image | q }}\n",
        )
        .args(&["render", "-b", "tiny", "-i", "a b"])
        .run();
    output.success();
    assert_eq!(
        output.stdout,
        "#!/bin/bash\n#SBATCH --partition=default\necho 'a b'\n"
    );
}

#[test]
fn no_secret_reaches_the_script() {
    let t = Test::new();
    let session = t.path().join("session");
    std::fs::create_dir_all(&session).unwrap();
    std::fs::write(session.join("token"), "token-4b1f9e0c7a").unwrap();
    std::fs::write(session.join("register_secret"), "secret-91d2e8f3").unwrap();
    let output = t
        .env("JRPS_SESSION_DIR", session.to_str().unwrap())
        .env("JUPYTER_TOKEN", "token-4b1f9e0c7a")
        .args(&["render", "gpu-tensorflow"])
        .run();
    output.success();
    assert!(!output.stdout.contains("token-4b1f9e0c7a"));
    assert!(!output.stdout.contains("secret-91d2e8f3"));
    assert!(!output.stdout.contains("--NotebookApp.token"));
    assert!(!output.stdout.contains("--ServerApp.token"));
    assert!(!output.stdout.contains("allow_origin"));
}

/// Every script in `snapshots/render__*.snap` passes `bash -n`, so a
/// snapshot accepted by hand cannot smuggle in a broken script.
#[test]
fn every_rendered_snapshot_is_valid_bash() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/snapshots");
    let mut checked = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !(name.starts_with("render__") && name.ends_with(".snap")) {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let Some((_, rest)) = text.split_once("--- stdout\n") else {
            continue;
        };
        let script = rest.split("--- stderr\n").next().unwrap();
        if script.starts_with("#!") {
            assert_bash_syntax(script);
            assert!(
                !script.contains("JUPYTER_TOKEN=") || script.contains("JUPYTER_TOKEN=\"$(<"),
                "{name}"
            );
            checked += 1;
        }
    }
    assert!(checked >= 12, "only {checked} rendered snapshots found");
}

#[test]
fn hostile_values_are_quoted_in_the_script() {
    let output = Test::new()
        .args(&[
            "render",
            "-d",
            "/data/it's $(reboot)",
            "-i",
            "/img/a b;`id`.sif",
        ])
        .run();
    output
        .success()
        .stdout_has("cd -- '/data/it'\\''s $(reboot)'\n")
        .stdout_has("'/img/a b;`id`.sif' jupyter lab");
    assert_bash_syntax(&output.stdout);
}

#[test]
fn broken_site_template_is_a_config_error() {
    Test::new()
        .site_file("batch/bad.sh.j2", "#!/bin/bash\n{% if %}\n")
        .args(&["render", "-b", "bad"])
        .run()
        .failure(2)
        .stderr_has("batch template `bad ([TMP]/site/batch/bad.sh.j2)` cannot be rendered");
}

#[test]
fn odd_input_never_panics() {
    for args in [
        &["-t", "99999999999999999999999"][..],
        &["-t", "1-"],
        &["-t", "::"],
        &["-t", "\u{1}"],
        &["-d", ""],
        &["-p", ""],
        &["-A", "a\nb"],
        &["-i", ""],
        &["--memory", "0"],
        &["--cpus", "0"],
        &["-s", ""],
        &["-b", ""],
        &["ünïcødé"],
    ] {
        let mut all = vec!["render"];
        all.extend_from_slice(args);
        let output = Test::new().args(&all).run();
        assert!(
            !output.stderr.contains("panicked"),
            "{args:?}: {}",
            output.layout()
        );
        assert_eq!(output.code, Some(2), "{args:?}: {}", output.layout());
    }
}

/// Renders `args` with `t`, checks the script, snapshots the CLI run.
fn render_with(t: Test, name: &str, args: &[&str]) -> String {
    let mut all = vec!["render"];
    all.extend_from_slice(args);
    let output = t.args(&all).run();
    output.success();
    assert_bash_syntax(&output.stdout);
    snapshot(name, &output.layout());
    output.stdout.clone()
}

#[test]
fn profile_with_a_virtual_environment() {
    let t = Test::new().user_file(
        "profiles/analysis.toml",
        "description = \"My own Python\"\nvenv = \"~/envs/analysis\"\nidle_timeout = \"1:00:00\"\n",
    );
    let script = render_with(t, "render__venv", &["analysis"]);
    assert!(
        script.contains("VIRTUAL_ENV=\"$HOME\"/envs/analysis\n"),
        "{script}"
    );
    assert!(
        script.contains("\"$VIRTUAL_ENV\"/bin/jupyter lab \\\n"),
        "{script}"
    );
    assert!(script.contains("--idle-timeout 3600 &\n"), "{script}");
}

#[test]
fn profile_with_a_conda_environment() {
    let t = Test::new()
        .site_file(
            "site.toml",
            "scheduler = \"slurm\"\nconda_init = \"/opt/conda/etc/profile.d/conda.sh\"\n",
        )
        .user_file(
            "profiles/torch.toml",
            "description = \"PyTorch from conda\"\nconda_env = \"torch\"\n",
        );
    let script = render_with(t, "render__conda", &["torch"]);
    assert!(
        script.contains("source /opt/conda/etc/profile.d/conda.sh\n"),
        "{script}"
    );
    assert!(script.contains("conda activate torch ||"), "{script}");
    assert!(
        script.contains("\"$CONDA_PREFIX\"/bin/jupyter lab \\\n"),
        "{script}"
    );
    assert!(
        script.contains("--pid \"$app_pid\" ${jrps_app[@]+\"${jrps_app[@]}\"} &\n"),
        "no idle watch: {script}"
    );
}

/// `extend_max` gives the job room for `jrps extend`: it is submitted with
/// the time asked plus that, never over the partition's `max_time`; without
/// it the time asked is exactly what is submitted.
#[test]
fn headroom_is_added_to_the_submitted_time_within_max_time() {
    let site = "[partitions.debug]\nmax_time = 30\nextend_max = 15\n\
                [partitions.compute]\ndefault = true\n";
    let render = |args: &[&str]| {
        let mut all = vec!["render"];
        all.extend_from_slice(args);
        let output = Test::new().site_file("site.toml", site).args(&all).run();
        output.success();
        output.stdout
    };
    assert!(render(&["-p", "debug", "-t", "10"]).contains("#SBATCH --time=00:25:00\n"));
    // 25 asked, 30 allowed: 5 of headroom, not 15.
    assert!(render(&["-p", "debug", "-t", "25"]).contains("#SBATCH --time=00:30:00\n"));
    assert!(render(&["-p", "compute", "-t", "10"]).contains("#SBATCH --time=00:10:00\n"));
}

/// `walltime_notice = false`: no page inside Jupyter, nothing on JUPYTER_PATH.
#[test]
fn walltime_notice_off_leaves_jupyter_alone() {
    let output = Test::new()
        .site_file("site.toml", "walltime_notice = false\n")
        .args(&["render", "-i", "/images/cpu.sif"])
        .run();
    output.success();
    assert!(
        !output.stdout.contains("--write-extension \""),
        "{}",
        output.stdout
    );
    assert!(
        !output.stdout.contains("export JUPYTER_PATH"),
        "{}",
        output.stdout
    );
    assert!(
        output
            .stdout
            .contains("singularity exec --bind \"$JUPYTER_RUNTIME_DIR\" /images/cpu.sif"),
        "{}",
        output.stdout
    );
}

/// A PBS or Grid Engine site's script: `#PBS` / `#$` lines for the queue,
/// the wall time, the CPUs, memory and GPUs, the account and reruns, and
/// the same job body as Slurm's.
#[test]
fn pbs_pro_and_torque_render_their_own_directives() {
    let site = |scheduler: &str| {
        format!(
            "scheduler = \"{scheduler}\"\nrequeue = false\n\
             [partitions.gpu]\ndefault = true\ngpus_max = 2\n"
        )
    };
    let args = [
        "-t", "90", "-g", "1", "-A", "proj42", "--cpus", "4", "--memory", "16G",
    ];
    for (scheduler, expected) in [
        (
            "pbs",
            "#PBS -q gpu\n#PBS -l walltime=1:30:00\n#PBS -l select=1:ncpus=4:mem=16gb:ngpus=1\n\
             #PBS -A proj42\n#PBS -r n\n",
        ),
        (
            "torque",
            "#PBS -q gpu\n#PBS -l walltime=1:30:00\n#PBS -l nodes=1:ppn=4:gpus=1\n\
             #PBS -l mem=16gb\n#PBS -A proj42\n#PBS -r n\n",
        ),
        // A soft limit at the time asked (SIGUSR1, trapped), the hard one
        // (SIGKILL) a minute later; memory per slot.
        (
            "sge",
            "#$ -q gpu\n#$ -l h_rt=5460,s_rt=5400\n#$ -pe smp 4\n#$ -l h_vmem=4096M\n\
             #$ -l gpu=1\n#$ -A proj42\n#$ -r n\n",
        ),
    ] {
        let t = Test::new().site_file("site.toml", &site(scheduler));
        let script = render_with(t, &format!("render__{scheduler}"), &args);
        assert!(script.contains(expected), "{scheduler}: {script}");
        assert!(!script.contains("#SBATCH"), "{scheduler}: {script}");
        let signals = if scheduler == "sge" {
            "TERM USR2"
        } else {
            "TERM"
        };
        assert!(
            script.contains(&format!("trap 'jrps_reason=signal; exit 143' {signals}\n")),
            "{scheduler}: {script}"
        );
        assert!(
            script.contains(&format!("from batch/{scheduler}.sh.j2")),
            "{scheduler}: {script}"
        );
        // What the job does is Slurm's, line for line, after the header.
        let slurm = Test::new()
            .site_file("site.toml", &site("slurm"))
            .args(&[
                "render", "-t", "90", "-g", "1", "-A", "proj42", "--cpus", "4", "--memory", "16G",
            ])
            .run();
        slurm.success();
        let tail = |s: &str| s[s.find("set -euo pipefail").unwrap()..].to_owned();
        let without_run = |s: String| {
            let start = s.find("export JRPS_NODE_IP\n").unwrap();
            let end = s[start..].find("if (( jrps_run > 1 ))").unwrap() + start;
            format!("{}{}", &s[..start], &s[end..])
        };
        // Grid Engine's: SIGUSR2 too, and SIGUSR1 only when the time is up.
        let same_signals = |s: String| {
            s.replace(" TERM USR2 USR1\n", " TERM\n")
                .replace(" TERM USR2\n", " TERM\n")
                .replace(
                    "# USR1 comes at the soft wall time, and also before the\n\
                     # scheduler suspends the job: only one near the end is the end.\n\
                     trap 'if (( SECONDS + 60 >= 5400 )); then jrps_reason=time-limit; exit 143; fi' USR1\n",
                    "",
                )
        };
        assert_eq!(
            same_signals(without_run(tail(&script))),
            without_run(tail(&slurm.stdout)),
            "{scheduler}"
        );
    }
}

/// `qsub_options` on a PBS site become `#PBS` lines; a scheduler's options
/// on another scheduler's site are refused where they are written.
#[test]
fn each_scheduler_takes_its_own_options_only() {
    let output = Test::new()
        .site_file(
            "site.toml",
            "scheduler = \"pbs\"\n[defaults]\nqsub_options = [\"-l place=excl\", \"-W group_list=physics\"]\n",
        )
        .args(&["render"])
        .run();
    output.success();
    assert!(
        output
            .stdout
            .contains("#PBS -r y\n#PBS -l place=excl\n#PBS -W group_list=physics\n"),
        "{}",
        output.stdout
    );
    let output = Test::new()
        .site_file(
            "site.toml",
            "scheduler = \"torque\"\n[defaults]\nsbatch_options = [\"--constraint=x\"]\n",
        )
        .args(&["render"])
        .run();
    assert_eq!(output.code, Some(2), "{}", output.layout());
    assert!(
        output.stderr.contains("sbatch_options")
            && output.stderr.contains("this site's scheduler is torque")
            && output.stderr.contains("qsub_options for its own options")
            && output.stderr.contains("site.toml:3"),
        "{}",
        output.layout()
    );
}

/// A site of several clusters: the cluster named, else the one whose
/// `hosts` match this login node; each with its scheduler, partitions and
/// environment; errors name the cluster and what is allowed.
#[test]
fn clusters_each_render_with_their_own_scheduler_and_partitions() {
    let site = "[clusters.alpha]\nscheduler = \"slurm\"\nenv = { SLURM_CONF = \"/etc/alpha/slurm.conf\" }\n\
                [clusters.alpha.partitions.short]\ndefault = true\nmax_time = 60\n\
                [clusters.beta]\nscheduler = \"torque\"\nhosts = [\"*\"]\n\
                [clusters.beta.partitions.batch]\ndefault = true\n";
    let render = |args: &[&str]| {
        let mut all = vec!["render"];
        all.extend_from_slice(args);
        Test::new().site_file("site.toml", site).args(&all).run()
    };
    // Named.
    let alpha = render(&["--cluster", "alpha", "-t", "30"]);
    alpha.success();
    assert!(
        alpha.stdout.contains("#SBATCH --partition=short\n"),
        "{}",
        alpha.stdout
    );
    let too_long = render(&["--cluster", "alpha", "-t", "90"]);
    assert_eq!(too_long.code, Some(2), "{}", too_long.layout());
    // Not named: beta's hosts pattern matches any login node.
    let beta = render(&["-t", "30"]);
    beta.success();
    assert!(beta.stdout.contains("#PBS -q batch\n"), "{}", beta.stdout);
    // Unknown, with the ones there are.
    let unknown = render(&["--cluster", "gamma"]);
    assert_eq!(unknown.code, Some(2), "{}", unknown.layout());
    assert!(
        unknown
            .stderr
            .contains("invalid cluster `gamma` (from flag --cluster)")
            && unknown.stderr.contains("the site's clusters: alpha, beta"),
        "{}",
        unknown.layout()
    );
    // No hosts pattern matches and there are two: name one.
    let ambiguous = Test::new()
        .site_file(
            "site.toml",
            &site.replace("hosts = [\"*\"]", "hosts = [\"login-b*\"]"),
        )
        .args(&["render"])
        .run();
    assert_eq!(ambiguous.code, Some(2), "{}", ambiguous.layout());
    assert!(
        ambiguous
            .stderr
            .contains("pass --cluster NAME, one of: alpha, beta"),
        "{}",
        ambiguous.layout()
    );
    // Partitions at the top of a site of clusters are refused where they are.
    let mixed = Test::new()
        .site_file(
            "site.toml",
            &format!("[partitions.x]\ndefault = true\n{site}"),
        )
        .args(&["render"])
        .run();
    assert_eq!(mixed.code, Some(2), "{}", mixed.layout());
    assert!(
        mixed.stderr.contains("site.toml:1")
            && mixed
                .stderr
                .contains("`partitions` inside each [clusters.NAME] table"),
        "{}",
        mixed.layout()
    );
}
