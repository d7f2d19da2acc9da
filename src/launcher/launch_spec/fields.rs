//! One function per launch field: each takes the field as the layers
//! resolved it ([`Field`]: its key and its value with its source), checks
//! it against the site, notes what `jrps profiles show` prints for it, and
//! returns the typed value. Errors name the field by the key the value
//! came with.

use std::collections::BTreeMap;
use std::path::Path;

use super::python::{CondaEnv, PythonEnv};
use crate::launcher::config::Field;
use crate::launcher::job_path::{self, JobPath};
use crate::launcher::launcher_error::{LauncherError, did_you_mean};
use crate::launcher::site_config::{Partition, SiteConfig, is_simple_name};
use crate::launcher::source::{Source, Sourced};
use crate::session_kind::SessionKind;
use crate::wall_time::{self, WallTime};

/// One line of `jrps profiles show`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldOrigin {
    pub field: &'static str,
    pub value: String,
    pub source: Source,
}

/// Every resolved field's value and source, in the order `profiles show`
/// prints them.
#[derive(Debug, Default)]
pub struct Origins(pub Vec<FieldOrigin>);

impl Origins {
    pub fn note(&mut self, field: &'static str, value: String, source: &Source) {
        self.0.push(FieldOrigin {
            field,
            value,
            source: source.clone(),
        });
    }
}

/// Options jrps writes itself (and their short forms); `sbatch_options` may
/// not set them, not even abbreviated, as sbatch accepts unique prefixes.
const CONTROLLED_OPTIONS: &[&str] = &[
    "--partition",
    "--time",
    "--gres",
    "--gpus",
    "--gpus-per-node",
    "--gpus-per-task",
    "--gpus-per-socket",
    "--gpu-bind",
    "--account",
    "--job-name",
    "--output",
    "--error",
    "--export",
    "--chdir",
    "--cpus-per-task",
    "--mem",
    "--wrap",
    // A session follows its job through a requeue only as the site allows
    // (`requeue` in site.toml), and its log keeps every run (`jrps up`
    // submits with --open-mode=append).
    "--requeue",
    "--no-requeue",
    "--open-mode",
];

/// Options that would change which job runs, as whom, or how many of it:
/// a session is one job of the user's, and jrps reads sbatch's answer itself.
const IDENTITY_OR_COUNT_OPTIONS: &[&str] = &[
    "--array",
    "--export-file",
    "--uid",
    "--gid",
    "--get-user-env",
    "--parsable",
    "--wait",
    "--test-only",
    // Another cluster's job is one jrps's squeue and scancel cannot see.
    "--clusters",
];

/// `qsub` options jrps writes itself (`#PBS` lines or its command line);
/// `qsub_options` may not set them.
const QSUB_CONTROLLED: &[&str] = &[
    "-q", "-A", "-N", "-o", "-e", "-j", "-k", "-r", "-pe", "-wd", "-cwd", "-notify", "-terse",
];

/// `-l` resources jrps asks for itself: the time, and the one chunk or
/// node with its CPUs, memory and GPUs.
const QSUB_CONTROLLED_RESOURCES: &[&str] = &[
    "walltime", "select", "nodes", "ncpus", "ppn", "mem", "pmem", "vmem", "ngpus", "gpus", "h_rt",
    "s_rt", "h_vmem", "gpu",
];

/// `qsub` options that would change which job runs, as whom, how many of
/// it, or what it inherits: `-V` and `-v` above all (a user's exported
/// shell functions break `qstat`'s JSON, and jrps passes its variables by
/// name itself).
const QSUB_IDENTITY_OR_COUNT: &[&str] = &[
    "-V", "-v", "-J", "-t", "-I", "-u", "-C", "-S", "-d", "-D", "-w", "-z", "-X", "-P", "-b",
    "-sync", "-now", "-shell",
];

/// Substrings of variable names that suggest a secret; secrets never go in scripts.
const SECRET_WORDS: &[&str] = &[
    "TOKEN",
    "SECRET",
    "PASSWORD",
    "PASSWD",
    "CREDENTIAL",
    "API_KEY",
    "PRIVATE_KEY",
];

pub fn description(field: Field<String>, origins: &mut Origins) {
    if let Some(d) = &field.value {
        origins.note(field.key, d.value.clone(), &d.source);
    }
}

/// The site as seen from the cluster named, else this login node's (only
/// on a site with `[clusters]`).
pub fn cluster(
    field: Field<String>,
    site: &SiteConfig,
    origins: &mut Origins,
) -> Result<SiteConfig, LauncherError> {
    let view = site.for_cluster(
        field.value.as_ref(),
        &crate::launcher::clusters::this_host(),
    )?;
    if let Some(name) = &view.cluster {
        let source = match &field.value {
            Some(given) => given.source.clone(),
            None => view.clusters[name].source.clone(),
        };
        origins.note(field.key, name.clone(), &source);
    }
    Ok(view)
}

/// The partition named, else the site's default one.
pub fn partition(
    field: Field<String>,
    site: &SiteConfig,
    origins: &mut Origins,
) -> Result<Partition, LauncherError> {
    match &field.value {
        Some(p) => {
            let found = site.partitions.get(&p.value).ok_or_else(|| {
                let names: Vec<&str> = site.partitions.keys().map(String::as_str).collect();
                let mut allowed = format!("the site's partitions: {}", names.join(", "));
                if let Some(guess) = did_you_mean(&p.value, names.iter().copied()) {
                    allowed = format!("{allowed} (did you mean `{guess}`?)");
                }
                invalid(
                    field.key,
                    p,
                    "the site does not define this partition".into(),
                    allowed,
                )
            })?;
            origins.note(field.key, p.value.clone(), &p.source);
            Ok(found.clone())
        }
        None => {
            let found = site
                .default_partition()
                .ok_or_else(|| LauncherError::Missing {
                    field: field.key,
                    required_by: site.source(),
                    how: "no partition is marked `default = true`; pass -p PARTITION".into(),
                })?;
            origins.note(field.key, found.name.clone(), &found.source);
            Ok(found.clone())
        }
    }
}

/// The wall time, within the partition's `max_time`.
pub fn time(
    field: Field<String>,
    partition: &Partition,
    origins: &mut Origins,
) -> Result<WallTime, LauncherError> {
    let raw = &required(field.value, field.key)?;
    let time = WallTime::parse(&raw.value)
        .map_err(|problem| invalid(field.key, raw, problem, wall_time::FORMATS.into()))?;
    if let Some(max) = partition.max_time.as_ref().filter(|max| time > max.value) {
        return Err(invalid(
            field.key,
            raw,
            format!(
                "{time} is over the {} limit of partition `{}` (set by {})",
                max.value, partition.name, max.source
            ),
            format!("at most {} on `{}`", max.value, partition.name),
        ));
    }
    origins.note(field.key, time.to_string(), &raw.source);
    Ok(time)
}

/// GPUs, within the partition's `gpus_min..=gpus_max`; 0 when none asked.
pub fn gpus(
    field: Field<i64>,
    partition: &Partition,
    site: &SiteConfig,
    origins: &mut Origins,
) -> Result<u32, LauncherError> {
    let Some(g) = &field.value else {
        return Ok(0);
    };
    let allowed = gpu_range(partition);
    if g.value < 0 {
        return Err(invalid_num(field.key, g, "it is negative".into(), allowed));
    }
    if g.value == 0 && partition.gpus_min > 0 {
        return Err(LauncherError::Missing {
            field: field.key,
            required_by: partition.source.clone(),
            how: format!("partition `{}` needs {allowed}; pass -g N", partition.name),
        });
    }
    if g.value > 0 && partition.gpus_max == 0 {
        return Err(invalid_num(
            field.key,
            g,
            format!("partition `{}` has no GPUs", partition.name),
            format!("{allowed}; GPU partitions: {}", gpu_partitions(site)),
        ));
    }
    if g.value > i64::from(partition.gpus_max) || g.value < i64::from(partition.gpus_min) {
        return Err(invalid_num(
            field.key,
            g,
            format!("partition `{}` allows {allowed}", partition.name),
            allowed,
        ));
    }
    origins.note(field.key, g.value.to_string(), &g.source);
    // In range of a u32 partition limit, so this conversion cannot fail.
    Ok(u32::try_from(g.value).unwrap_or(0))
}

/// The folder the job starts in, as the job sees it.
pub fn dir(
    field: Field<String>,
    cwd: Option<&Path>,
    origins: &mut Origins,
) -> Result<JobPath, LauncherError> {
    let raw = &required(field.value, field.key)?;
    let dir = JobPath::parse(&raw.value, cwd)
        .map_err(|problem| invalid(field.key, raw, problem, job_path::ALLOWED.into()))?;
    origins.note(field.key, dir.to_string(), &raw.source);
    Ok(dir)
}

/// The account, required where the site says so.
pub fn account(
    field: Field<String>,
    site: &SiteConfig,
    origins: &mut Origins,
) -> Result<Option<String>, LauncherError> {
    match &field.value {
        Some(a) => {
            if !is_simple_name(&a.value) {
                return Err(invalid(
                    field.key,
                    a,
                    "it is not an account name".into(),
                    "letters, digits, `-`, `_` and `.`".into(),
                ));
            }
            origins.note(field.key, a.value.clone(), &a.source);
            Ok(Some(a.value.clone()))
        }
        None => match &site.account_required {
            Some(required_by) => Err(LauncherError::Missing {
                field: field.key,
                required_by: required_by.clone(),
                how: "pass -A ACCOUNT, set JRPS_ACCOUNT, or set `account` under [defaults] in your config.toml"
                    .into(),
            }),
            None => Ok(None),
        },
    }
}

/// The Jupyter server and the batch template, which may not both be given:
/// a custom template decides which server it starts. The template's name
/// comes back with its source, which finding it needs.
/// The server, and the batch template: the one named, else the built-in
/// template of the site's scheduler.
pub fn server_and_batch(
    server: Field<String>,
    batch: Field<String>,
    site: &SiteConfig,
    origins: &mut Origins,
) -> Result<(SessionKind, Sourced<String>), LauncherError> {
    let server_raw = required(server.value, server.key)?;
    let parsed = SessionKind::parse(&server_raw.value).ok_or_else(|| {
        invalid(
            server.key,
            &server_raw,
            "it is not a kind of session jrps knows".into(),
            SessionKind::allowed(),
        )
    })?;
    let batch_raw = batch
        .value
        .unwrap_or_else(|| Sourced::new(site.scheduler.template().into(), Source::Default));
    if batch_raw.source.is_explicit() && server_raw.source.is_explicit() {
        return Err(LauncherError::Conflict {
            first: batch.key,
            first_source: batch_raw.source.clone(),
            second: server.key,
            second_source: server_raw.source.clone(),
            why: "a custom batch template decides which server it starts; give either -b or -s"
                .into(),
        });
    }
    if !is_simple_name(&batch_raw.value) || batch_raw.value.starts_with('.') {
        return Err(invalid(
            batch.key,
            &batch_raw,
            "it must name a template, not a path".into(),
            "the name of a template in a batch folder, such as `slurm` (see `jrps profiles check`)"
                .into(),
        ));
    }
    origins.note(server.key, parsed.to_string(), &server_raw.source);
    origins.note(batch.key, batch_raw.value.clone(), &batch_raw.source);
    Ok((parsed, batch_raw))
}

/// The Singularity/Apptainer image: a path or URI that singularity reads
/// as one.
pub fn image(field: Field<String>, origins: &mut Origins) -> Result<Option<String>, LauncherError> {
    let Some(i) = &field.value else {
        return Ok(None);
    };
    if i.value.trim().is_empty() || i.value.chars().any(char::is_control) {
        return Err(invalid(
            field.key,
            i,
            "it is empty or has control characters".into(),
            "the path or URI of a Singularity/Apptainer image".into(),
        ));
    }
    if i.value.starts_with('-') {
        return Err(invalid(
            field.key,
            i,
            "it starts with `-`, which singularity would read as an option".into(),
            "the path or URI of a Singularity/Apptainer image (write ./-x for a file named -x)"
                .into(),
        ));
    }
    if i.value.starts_with('~') && !i.value.starts_with("~/") {
        return Err(invalid(
            field.key,
            i,
            "`~user` is not supported".into(),
            "the path or URI of a Singularity/Apptainer image; `~/x.sif` is in your home".into(),
        ));
    }
    origins.note(field.key, i.value.clone(), &i.source);
    Ok(Some(i.value.clone()))
}

/// A path inside the session's directory: relative and without `..`, so
/// that a URL names nothing outside the folder the app serves, and not
/// starting with `-`, which an app taking it as an argument (code-server)
/// would read as an option (`--auth=none`).
pub fn open(field: Field<String>, origins: &mut Origins) -> Result<Option<String>, LauncherError> {
    let Some(p) = &field.value else {
        return Ok(None);
    };
    let text = p.value.trim_end_matches('/');
    let allowed = || {
        "a notebook or folder relative to the session's directory (-d), such as \
                      results/summary.ipynb"
            .to_owned()
    };
    if text.is_empty() || text.chars().any(char::is_control) {
        return Err(invalid(
            field.key,
            p,
            "it is empty or has control characters".into(),
            allowed(),
        ));
    }
    if text.starts_with('-') {
        return Err(invalid(
            field.key,
            p,
            "it starts with `-`, which the app would read as an option".into(),
            "a notebook or folder relative to the session's directory (-d); write ./-x for one named -x"
                .into(),
        ));
    }
    if text.starts_with('/') || text.starts_with('~') {
        return Err(invalid(
            field.key,
            p,
            "it is not relative to the session's directory".into(),
            allowed(),
        ));
    }
    if text.split('/').any(|part| part == ".." || part.is_empty()) {
        return Err(invalid(
            field.key,
            p,
            "it has a `..` or an empty part".into(),
            allowed(),
        ));
    }
    origins.note(field.key, text.to_owned(), &p.source);
    Ok(Some(text.to_owned()))
}

/// `image`, `venv` and `conda_env` each say where Jupyter comes from, so at
/// most one may be set; then the environment itself.
pub fn python_env(
    image: &Field<String>,
    venv: Field<String>,
    conda: Field<String>,
    cwd: Option<&Path>,
    origins: &mut Origins,
) -> Result<Option<PythonEnv>, LauncherError> {
    let set: Vec<(&'static str, &Source)> = [
        (image.key, &image.value),
        (venv.key, &venv.value),
        (conda.key, &conda.value),
    ]
    .into_iter()
    .filter_map(|(field, value)| Some((field, &value.as_ref()?.source)))
    .collect();
    if let [(first, first_source), (second, second_source), ..] = set.as_slice() {
        return Err(LauncherError::Conflict {
            first,
            first_source: (*first_source).clone(),
            second,
            second_source: (*second_source).clone(),
            why: "Jupyter runs from one place: an image, a virtual environment or a conda environment; give one".into(),
        });
    }
    if let Some(raw) = &venv.value {
        let path = JobPath::parse(&raw.value, cwd).map_err(|problem| {
            invalid(
                venv.key,
                raw,
                problem,
                format!("the folder of a virtual environment: {}", job_path::ALLOWED),
            )
        })?;
        origins.note(venv.key, path.to_string(), &raw.source);
        return Ok(Some(PythonEnv::Venv(path)));
    }
    if let Some(raw) = &conda.value {
        let value = raw.value.trim();
        let env = if value.contains('/') || value.starts_with('~') || value.starts_with('.') {
            CondaEnv::Path(
                JobPath::parse(value, cwd).map_err(|problem| {
                    invalid(conda.key, raw, problem, job_path::ALLOWED.into())
                })?,
            )
        } else if is_simple_name(value) && !value.starts_with('-') {
            CondaEnv::Name(value.to_string())
        } else {
            return Err(invalid(
                conda.key,
                raw,
                "it is neither an environment name nor a path".into(),
                "a name such as `torch` (letters, digits, `-`, `_`, `.`, not starting with `-`) or the path of the environment".into(),
            ));
        };
        origins.note(conda.key, env.to_string(), &raw.source);
        return Ok(Some(PythonEnv::Conda(env)));
    }
    Ok(None)
}

/// `idle_timeout` from the layers, else the partition's default; `off` is
/// `None`. Within the partition's `max_idle_timeout`, where it has one.
pub fn idle_timeout(
    field: Field<String>,
    partition: &Partition,
    origins: &mut Origins,
) -> Result<Option<WallTime>, LauncherError> {
    let chosen = match &field.value {
        Some(raw) => {
            let value = wall_time::parse_idle(&raw.value).map_err(|problem| {
                invalid(field.key, raw, problem, wall_time::IDLE_FORMATS.into())
            })?;
            Sourced::new(value, raw.source.clone())
        }
        // A partition with a maximum and no default gives its maximum: "no
        // idle timeout" would be over it.
        None => match (&partition.idle_timeout, &partition.max_idle_timeout) {
            (Some(default), _) => default.clone(),
            (None, Some(max)) => Sourced::new(Some(max.value), max.source.clone()),
            (None, None) => return Ok(None),
        },
    };
    let shown = chosen.value.map_or("off".to_string(), |t| t.to_string());
    if let Some(max) = &partition.max_idle_timeout
        && chosen.value.is_none_or(|t| t > max.value)
    {
        return Err(LauncherError::Invalid {
            field: field.key.into(),
            value: shown.clone(),
            origin: chosen.source.clone(),
            problem: format!(
                "{shown} is over the {} limit of partition `{}` (set by {})",
                max.value, partition.name, max.source
            ),
            allowed: format!("at most {} on `{}`", max.value, partition.name),
        });
    }
    origins.note(field.key, shown, &chosen.source);
    Ok(chosen.value)
}

/// The site's modules, then the profile's.
pub fn modules(
    site: &SiteConfig,
    field: Field<Vec<String>>,
    origins: &mut Origins,
) -> Result<Vec<String>, LauncherError> {
    let mut modules = site.modules.clone();
    if !modules.is_empty() {
        origins.note(field.key, modules.join(" "), &site.modules_source);
    }
    if let Some(m) = &field.value {
        for module in &m.value {
            let ok = !module.is_empty()
                && module
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_-+./@:".contains(&b));
            if !ok {
                return Err(LauncherError::Invalid {
                    field: field.key.into(),
                    value: module.clone(),
                    origin: m.source.clone(),
                    problem: "it is not a module name".into(),
                    allowed: "module names such as gcc/10.2.0 (letters, digits, `_-+./@:`)".into(),
                });
            }
        }
        origins.note(field.key, m.value.join(" "), &m.source);
        modules.extend(m.value.iter().cloned());
    }
    Ok(modules)
}

/// Variables the script exports: shell names, none of jrps's, Slurm's or
/// Jupyter's, none that looks like a secret, single-line values.
pub fn env(
    key: &'static str,
    variables: Vec<(String, Sourced<String>)>,
    origins: &mut Origins,
) -> Result<BTreeMap<String, String>, LauncherError> {
    let mut env = BTreeMap::new();
    for (name, value) in variables {
        check_env(key, &name, &value)?;
        origins.note(key, format!("{name}={}", value.value), &value.source);
        env.insert(name, value.value);
    }
    Ok(env)
}

/// CPUs per task, 1 to 4096.
pub fn cpus(field: Field<i64>, origins: &mut Origins) -> Result<Option<u32>, LauncherError> {
    let Some(c) = &field.value else {
        return Ok(None);
    };
    if !(1..=4096).contains(&c.value) {
        return Err(invalid_num(
            field.key,
            c,
            "it is out of range".into(),
            "1 to 4096".into(),
        ));
    }
    origins.note(field.key, c.value.to_string(), &c.source);
    Ok(u32::try_from(c.value).ok())
}

/// Memory as Slurm writes it: a whole number with an optional unit.
pub fn memory(
    field: Field<String>,
    origins: &mut Origins,
) -> Result<Option<String>, LauncherError> {
    let Some(m) = &field.value else {
        return Ok(None);
    };
    let digits = m.value.trim_end_matches(['K', 'M', 'G', 'T']);
    let ok = !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && m.value.len() - digits.len() <= 1
        && !digits.trim_start_matches('0').is_empty();
    if !ok {
        return Err(invalid(
            field.key,
            m,
            "it is not a Slurm memory size".into(),
            "a whole number with an optional unit K, M, G or T, such as 16G".into(),
        ));
    }
    origins.note(field.key, m.value.clone(), &m.source);
    Ok(Some(m.value.clone()))
}

/// Extra `#SBATCH` options: long options jrps does not set itself, none
/// that changes which job runs, as whom or how many times.
pub fn sbatch_options(
    field: Field<Vec<String>>,
    origins: &mut Origins,
) -> Result<Vec<String>, LauncherError> {
    let Some(o) = &field.value else {
        return Ok(Vec::new());
    };
    for option in &o.value {
        check_sbatch_option(field.key, option, &o.source)?;
    }
    origins.note(field.key, o.value.join(" "), &o.source);
    Ok(o.value.clone())
}

/// Extra `#PBS` or `#$` options (OpenPBS, PBS Pro, Torque, Grid Engine):
/// `-X` or `-X value`,
/// none that jrps sets itself or that changes which job runs, as whom or
/// how many times.
pub fn qsub_options(
    field: Field<Vec<String>>,
    origins: &mut Origins,
) -> Result<Vec<String>, LauncherError> {
    let Some(o) = &field.value else {
        return Ok(Vec::new());
    };
    for option in &o.value {
        check_qsub_option(field.key, option, &o.source)?;
    }
    origins.note(field.key, o.value.join(" "), &o.source);
    Ok(o.value.clone())
}

/// A scheduler's own options only on its sites: on another they would be
/// dropped without a word (or, worse, read by the wrong command).
pub fn options_for_the_scheduler(
    site: &SiteConfig,
    sbatch: &Field<Vec<String>>,
    qsub: &Field<Vec<String>>,
) -> Result<(), LauncherError> {
    use crate::scheduler::SchedulerKind;
    let (given, wanted) = match site.scheduler {
        SchedulerKind::Pbs | SchedulerKind::Torque | SchedulerKind::Sge => (sbatch, "qsub_options"),
        SchedulerKind::Slurm | SchedulerKind::Local => (qsub, "sbatch_options"),
    };
    match &given.value {
        Some(value) if !value.value.is_empty() => Err(LauncherError::Invalid {
            field: given.key.into(),
            value: value.value.join(" "),
            origin: value.source.clone(),
            problem: format!("this site's scheduler is {}", site.scheduler),
            allowed: format!("{wanted} for its own options"),
        }),
        _ => Ok(()),
    }
}

fn check_qsub_option(
    key: &'static str,
    option: &str,
    source: &Source,
) -> Result<(), LauncherError> {
    let bad = |problem: String, allowed: &str| LauncherError::Invalid {
        field: key.into(),
        value: option.escape_debug().to_string(),
        origin: source.clone(),
        problem,
        allowed: allowed.into(),
    };
    let (name, value) = option.split_once(' ').unwrap_or((option, ""));
    let word_ok = |word: &str| {
        word.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_=:+,./@%".contains(&b))
    };
    // PBS's options are one letter; Grid Engine's also words (`-pe`).
    let is_option = name.len() >= 2
        && name.starts_with('-')
        && name[1..]
            .bytes()
            .all(|b| b.is_ascii_alphabetic() || b == b'_');
    if !is_option || !word_ok(value) || value.contains(' ') {
        return Err(bad(
            "it is not one option with at most one value".into(),
            "`-X` or `-X value`, the value of letters, digits and `-_=:+,./@%`, such as `-l place=excl` or `-W group_list=physics`",
        ));
    }
    if QSUB_CONTROLLED.contains(&name) {
        return Err(bad(
            format!("jrps sets {name} itself"),
            "options jrps does not model; use the profile fields partition, time, gpus, account, cpus, memory for the others",
        ));
    }
    if name == "-l"
        && let Some(resource) = value
            .split([',', ':'])
            .filter_map(|part| part.split('=').next())
            .find(|resource| QSUB_CONTROLLED_RESOURCES.contains(resource))
    {
        return Err(bad(
            format!("jrps asks for {resource} itself"),
            "other resources, such as `-l place=excl`; use the profile fields time, cpus, memory, gpus",
        ));
    }
    if QSUB_IDENTITY_OR_COUNT.contains(&name) || (name == "-W" && value.starts_with("block")) {
        return Err(bad(
            format!(
                "{name} changes which job runs, as whom, how many times or what it inherits, \
                 and a session is one job that registers once"
            ),
            "options that shape the one job, such as `-l place=excl`, `-W group_list=physics`, `-m n`",
        ));
    }
    Ok(())
}

fn required(
    value: Option<Sourced<String>>,
    field: &'static str,
) -> Result<Sourced<String>, LauncherError> {
    // LaunchFields::defaults sets every field this is used for; reaching None
    // means a layer was dropped, which is a bug worth a clear error, not a panic.
    value.ok_or(LauncherError::Missing {
        field,
        required_by: Source::Default,
        how: format!("set `{field}`"),
    })
}

fn invalid(
    field: &'static str,
    value: &Sourced<String>,
    problem: String,
    allowed: String,
) -> LauncherError {
    LauncherError::Invalid {
        field: field.into(),
        value: value.value.clone(),
        origin: value.source.clone(),
        problem: problem.to_string(),
        allowed,
    }
}

fn invalid_num(
    field: &'static str,
    value: &Sourced<i64>,
    problem: String,
    allowed: String,
) -> LauncherError {
    LauncherError::Invalid {
        field: field.into(),
        value: value.value.to_string(),
        origin: value.source.clone(),
        problem: problem.to_string(),
        allowed,
    }
}

fn gpu_range(partition: &Partition) -> String {
    match (partition.gpus_min, partition.gpus_max) {
        (_, 0) => "0 GPUs".to_string(),
        (min, max) if min == max => format!("exactly {min} GPUs"),
        (min, max) => format!("{min} to {max} GPUs"),
    }
}

fn gpu_partitions(site: &SiteConfig) -> String {
    let names: Vec<&str> = site
        .partitions
        .values()
        .filter(|p| p.gpus_max > 0)
        .map(|p| p.name.as_str())
        .collect();
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

fn check_env(key: &'static str, name: &str, value: &Sourced<String>) -> Result<(), LauncherError> {
    let bad = |problem: &str, allowed: &str| LauncherError::Invalid {
        field: key.into(),
        value: name.to_string(),
        origin: value.source.clone(),
        problem: problem.to_string(),
        allowed: allowed.into(),
    };
    let valid_name = name
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !valid_name {
        return Err(bad(
            "it is not a shell variable name",
            "names of letters, digits and `_`, not starting with a digit",
        ));
    }
    let upper = name.to_ascii_uppercase();
    if upper.starts_with("JRPS_") || upper.starts_with("SLURM_") || upper.starts_with("JUPYTER_") {
        return Err(bad(
            "jrps, Slurm and Jupyter set this variable themselves",
            "names not starting with JRPS_, SLURM_ or JUPYTER_",
        ));
    }
    if SECRET_WORDS.iter().any(|w| upper.contains(w)) {
        return Err(bad(
            "it looks like it holds a secret, and batch scripts must not carry secrets",
            "non-secret variables; let the job read secrets from a file only you can read",
        ));
    }
    if value.value.chars().any(char::is_control) {
        return Err(LauncherError::Invalid {
            field: key.into(),
            value: format!("{name}={}", value.value.escape_debug()),
            origin: value.source.clone(),
            problem: "the value has control characters".into(),
            allowed: "single-line values".into(),
        });
    }
    Ok(())
}

fn check_sbatch_option(
    key: &'static str,
    option: &str,
    source: &Source,
) -> Result<(), LauncherError> {
    let bad = |problem: String, allowed: &str| LauncherError::Invalid {
        field: key.into(),
        value: option.escape_debug().to_string(),
        origin: source.clone(),
        problem: problem.to_string(),
        allowed: allowed.into(),
    };
    let charset_ok = option
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-_=:+,./@%".contains(&b));
    if !charset_ok {
        return Err(bad(
            "it has spaces, newlines or shell metacharacters".into(),
            "one `--option` or `--option=value` of letters, digits and `-_=:+,./@%`",
        ));
    }
    let Some(name) = option
        .split('=')
        .next()
        .filter(|n| n.starts_with("--") && n.len() > 2)
    else {
        return Err(bad(
            "it is not a long option".into(),
            "long options such as --begin=now+1hour or --constraint=haswell",
        ));
    };
    if let Some(controlled) = CONTROLLED_OPTIONS.iter().find(|c| c.starts_with(name)) {
        return Err(bad(
            format!("jrps sets {controlled} itself"),
            "options jrps does not model; use the profile fields partition, time, gpus, account, dir, cpus, memory for the others",
        ));
    }
    if let Some(refused) = IDENTITY_OR_COUNT_OPTIONS
        .iter()
        .find(|c| c.starts_with(name))
    {
        return Err(bad(
            format!(
                "{refused} changes which job runs, as whom or how many times, \
                 and a session is one job that registers once"
            ),
            "options that shape the one job, such as --begin, --constraint, --qos, --nodelist",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example site: `debug` (30 minutes), `compute` (default, two
    /// days), `gpu-shared` (1 to 3 GPUs), `gpu` (1 to 4, idle 1 h, at most
    /// 4 h); accounts required.
    fn site() -> SiteConfig {
        let text = include_str!("../../../docs/site.example.toml");
        SiteConfig::parse(text, Path::new("site.toml")).unwrap()
    }

    fn given<T>(key: &'static str, value: T) -> Field<T> {
        Field {
            key,
            value: Some(Sourced::new(value, Source::Flag(format!("--{key}").into()))),
        }
    }

    fn absent<T>(key: &'static str) -> Field<T> {
        Field { key, value: None }
    }

    /// The problem an `Invalid` error states, naming the field it is for.
    fn problem<T: std::fmt::Debug>(result: Result<T, LauncherError>, key: &str) -> String {
        match result {
            Err(LauncherError::Invalid { field, problem, .. }) => {
                assert_eq!(field, key);
                problem
            }
            other => panic!("not an Invalid error for {key}: {other:?}"),
        }
    }

    #[test]
    fn the_partition_is_the_one_named_or_the_default() {
        let site = site();
        let mut origins = Origins::default();
        let named = partition(given("partition", "gpu".into()), &site, &mut origins).unwrap();
        assert_eq!(named.name, "gpu");
        assert_eq!(
            partition(absent("partition"), &site, &mut origins)
                .unwrap()
                .name,
            "compute"
        );
        let wrong = partition(given("partition", "gpus".into()), &site, &mut origins);
        match wrong {
            Err(LauncherError::Invalid { allowed, .. }) => {
                assert!(allowed.contains("did you mean `gpu`?"), "{allowed}");
            }
            other => panic!("{other:?}"),
        }
        let shown: Vec<&str> = origins.0.iter().map(|o| o.value.as_str()).collect();
        assert_eq!(shown, ["gpu", "compute"]);
    }

    #[test]
    fn time_is_a_slurm_time_within_the_partition() {
        let site = site();
        let debug = &site.partitions["debug"];
        let mut origins = Origins::default();
        let t = time(given("time", "0:20:00".into()), debug, &mut origins).unwrap();
        assert_eq!(t.seconds(), 1200);
        let unparsed = problem(
            time(given("time", "soon".into()), debug, &mut origins),
            "time",
        );
        assert!(!unparsed.is_empty());
        let over = problem(
            time(given("time", "1:00:00".into()), debug, &mut origins),
            "time",
        );
        assert!(
            over.contains("over the 00:30:00 limit of partition `debug`"),
            "{over}"
        );
        assert!(matches!(
            time(absent("time"), debug, &mut origins),
            Err(LauncherError::Missing { field: "time", .. })
        ));
    }

    #[test]
    fn gpus_are_within_the_partition_s_range() {
        let site = site();
        let (compute, gpu) = (&site.partitions["compute"], &site.partitions["gpu"]);
        let mut origins = Origins::default();
        assert_eq!(
            gpus(absent("gpus"), compute, &site, &mut origins).unwrap(),
            0
        );
        assert_eq!(gpus(given("gpus", 2), gpu, &site, &mut origins).unwrap(), 2);
        assert!(
            problem(gpus(given("gpus", -1), gpu, &site, &mut origins), "gpus").contains("negative")
        );
        assert!(
            problem(gpus(given("gpus", 5), gpu, &site, &mut origins), "gpus")
                .contains("allows 1 to 4 GPUs")
        );
        assert!(
            problem(gpus(given("gpus", 1), compute, &site, &mut origins), "gpus")
                .contains("has no GPUs")
        );
        assert!(matches!(
            gpus(given("gpus", 0), gpu, &site, &mut origins),
            Err(LauncherError::Missing { field: "gpus", .. })
        ));
    }

    #[test]
    fn accounts_are_names_and_required_where_the_site_says() {
        let site = site();
        let mut origins = Origins::default();
        assert_eq!(
            account(given("account", "abc-12.x".into()), &site, &mut origins).unwrap(),
            Some("abc-12.x".into())
        );
        assert!(
            problem(
                account(given("account", "a b".into()), &site, &mut origins),
                "account"
            )
            .contains("not an account name")
        );
        assert!(matches!(
            account(absent("account"), &site, &mut origins),
            Err(LauncherError::Missing {
                field: "account",
                ..
            })
        ));
        let open = SiteConfig::built_in();
        assert_eq!(
            account(absent("account"), &open, &mut origins).unwrap(),
            None
        );
    }

    fn server_default_lab() -> Field<String> {
        Field {
            key: "server",
            value: Some(Sourced::new("lab".into(), Source::Default)),
        }
    }

    #[test]
    fn a_template_is_a_name_and_is_not_given_with_a_server() {
        let mut origins = Origins::default();
        let site = SiteConfig::built_in();
        let (server, batch) = server_and_batch(
            given("server", "lab".into()),
            absent("batch"),
            &site,
            &mut origins,
        )
        .unwrap();
        assert_eq!(
            (server.to_string().as_str(), batch.value.as_str()),
            ("lab", "slurm")
        );
        // Unnamed, the template is the site scheduler's.
        let mut torque = SiteConfig::built_in();
        torque.scheduler = crate::scheduler::SchedulerKind::Torque;
        let (_, batch) =
            server_and_batch(server_default_lab(), absent("batch"), &torque, &mut origins).unwrap();
        assert_eq!(batch.value, "torque");
        assert!(matches!(
            server_and_batch(
                given("server", "lab".into()),
                given("batch", "mine".into()),
                &site,
                &mut origins
            ),
            Err(LauncherError::Conflict {
                first: "batch",
                second: "server",
                ..
            })
        ));
        let server_default = || Field {
            key: "server",
            value: Some(Sourced::new("lab".into(), Source::Default)),
        };
        for path in ["../x", ".hidden", "a/b"] {
            let refused = problem(
                server_and_batch(
                    server_default(),
                    given("batch", path.into()),
                    &site,
                    &mut origins,
                ),
                "batch",
            );
            assert!(refused.contains("not a path"), "{path}: {refused}");
        }
        assert!(
            problem(
                server_and_batch(
                    given("server", "ipython".into()),
                    absent("batch"),
                    &site,
                    &mut origins
                ),
                "server"
            )
            .contains("not a kind of session jrps knows")
        );
    }

    #[test]
    fn images_are_one_path_or_uri_singularity_reads_as_such() {
        let mut origins = Origins::default();
        for ok in ["~/x.sif", "/opt/x.sif", "library://x/y", "./-x.sif"] {
            assert_eq!(
                image(given("image", ok.into()), &mut origins)
                    .unwrap()
                    .as_deref(),
                Some(ok)
            );
        }
        for (bad, why) in [
            (" ", "empty"),
            ("a\nb", "control"),
            ("-x", "as an option"),
            ("~bob/x.sif", "`~user`"),
        ] {
            let refused = problem(image(given("image", bad.into()), &mut origins), "image");
            assert!(refused.contains(why), "{bad:?}: {refused}");
        }
    }

    #[test]
    fn jupyter_runs_from_one_environment() {
        let mut origins = Origins::default();
        let cwd = Some(Path::new("/home/ann/work"));
        assert!(matches!(
            python_env(
                &given("image", "x.sif".into()),
                given("venv", "v".into()),
                absent("conda_env"),
                cwd,
                &mut origins
            ),
            Err(LauncherError::Conflict {
                first: "image",
                second: "venv",
                ..
            })
        ));
        let venv = python_env(
            &absent("image"),
            given("venv", "env".into()),
            absent("conda_env"),
            cwd,
            &mut origins,
        )
        .unwrap();
        assert!(matches!(venv, Some(PythonEnv::Venv(_))));
        let named = python_env(
            &absent("image"),
            absent("venv"),
            given("conda_env", "torch".into()),
            cwd,
            &mut origins,
        )
        .unwrap();
        assert_eq!(
            named,
            Some(PythonEnv::Conda(CondaEnv::Name("torch".into())))
        );
        let refused = problem(
            python_env(
                &absent("image"),
                absent("venv"),
                given("conda_env", "-x".into()),
                cwd,
                &mut origins,
            ),
            "conda_env",
        );
        assert!(
            refused.contains("neither an environment name nor a path"),
            "{refused}"
        );
    }

    #[test]
    fn the_idle_timeout_is_the_partition_s_unless_given_and_never_over_its_maximum() {
        let site = site();
        let (compute, gpu) = (&site.partitions["compute"], &site.partitions["gpu"]);
        let mut origins = Origins::default();
        assert_eq!(
            idle_timeout(absent("idle_timeout"), compute, &mut origins).unwrap(),
            None
        );
        assert_eq!(
            idle_timeout(absent("idle_timeout"), gpu, &mut origins)
                .unwrap()
                .map(|t| t.seconds()),
            Some(3600)
        );
        assert_eq!(
            idle_timeout(given("idle_timeout", "20".into()), gpu, &mut origins)
                .unwrap()
                .map(|t| t.seconds()),
            Some(1200)
        );
        for over in ["5:00:00", "off"] {
            let refused = problem(
                idle_timeout(given("idle_timeout", over.into()), gpu, &mut origins),
                "idle_timeout",
            );
            assert!(refused.contains("over the"), "{over}: {refused}");
        }
    }

    #[test]
    fn modules_env_cpus_memory_and_sbatch_options_have_their_formats() {
        let site = site();
        let mut origins = Origins::default();
        let listed = modules(
            &site,
            given("modules", vec!["gcc/10.2.0".into()]),
            &mut origins,
        )
        .unwrap();
        assert_eq!(listed.last().map(String::as_str), Some("gcc/10.2.0"));
        assert!(
            problem(
                modules(&site, given("modules", vec!["a b".into()]), &mut origins),
                "modules"
            )
            .contains("not a module name")
        );

        let var = |name: &str, value: &str| {
            vec![(
                name.to_string(),
                Sourced::new(value.to_string(), Source::Default),
            )]
        };
        assert_eq!(
            env("env", var("OMP_NUM_THREADS", "4"), &mut origins).unwrap()["OMP_NUM_THREADS"],
            "4"
        );
        for (name, value, why) in [
            ("1X", "v", "shell variable name"),
            ("SLURM_X", "v", "set this variable themselves"),
            ("MY_TOKEN", "v", "secret"),
            ("X", "a\nb", "control characters"),
        ] {
            assert!(
                problem(env("env", var(name, value), &mut origins), "env").contains(why),
                "{name}"
            );
        }

        assert_eq!(cpus(given("cpus", 8), &mut origins).unwrap(), Some(8));
        for bad in [0, 4097] {
            assert!(
                problem(cpus(given("cpus", bad), &mut origins), "cpus").contains("out of range")
            );
        }

        assert_eq!(
            memory(given("memory", "16G".into()), &mut origins)
                .unwrap()
                .as_deref(),
            Some("16G")
        );
        for bad in ["16GB", "0", "G", "1.5G", ""] {
            assert!(
                problem(memory(given("memory", bad.into()), &mut origins), "memory")
                    .contains("not a Slurm memory size"),
                "{bad}"
            );
        }

        let options = |o: &str| given("qsub_options", vec![o.to_string()]);
        assert_eq!(
            qsub_options(options("-l place=excl"), &mut origins).unwrap(),
            ["-l place=excl"]
        );
        assert!(qsub_options(options("-W group_list=physics"), &mut origins).is_ok());
        for (bad, why) in [
            ("-V", "what it inherits"),
            ("-v FOO=1", "what it inherits"),
            ("-J 1-2", "how many times"),
            ("-q other", "jrps sets -q itself"),
            ("-l walltime=1:00:00", "jrps asks for walltime itself"),
            ("-l select=2:ncpus=8", "jrps asks for select itself"),
            ("-W block=true", "registers once"),
            ("-l place=excl; rm", "not one option"),
            ("--constraint=x", "not one option"),
        ] {
            let refused = problem(qsub_options(options(bad), &mut origins), "qsub_options");
            assert!(refused.contains(why), "{bad}: {refused}");
        }

        let options = |o: &str| given("sbatch_options", vec![o.to_string()]);
        assert_eq!(
            sbatch_options(options("--constraint=haswell"), &mut origins).unwrap(),
            ["--constraint=haswell"]
        );
        for (bad, why) in [
            ("--time=1:00:00", "jrps sets --time itself"),
            ("--ti", "jrps sets --time itself"),
            ("--array=1-2", "changes which job runs"),
            ("-p x", "spaces"),
            ("-p", "not a long option"),
        ] {
            let refused = problem(sbatch_options(options(bad), &mut origins), "sbatch_options");
            assert!(refused.contains(why), "{bad}: {refused}");
        }
    }
}
