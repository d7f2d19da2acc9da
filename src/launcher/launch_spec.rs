//! `LaunchSpec`: one launch, resolved from all layers and checked against the
//! site's limits. It is the only thing rendering, the scheduler and the proxy
//! client see; building one is where every value is validated, before anything
//! leaves the machine.

use std::collections::BTreeMap;

use crate::launcher::config::{Config, Resolved};
use crate::launcher::job_path::{self, JobPath};
use crate::launcher::launcher_error::{LauncherError, did_you_mean};
use crate::launcher::server::{self, Server};
use crate::launcher::shell_quote::shell_quote;
use crate::launcher::site_config::{Partition, SiteConfig, is_simple_name};
use crate::launcher::source::{Source, Sourced};
use crate::wall_time::{self, WallTime};

/// A validated launch.
#[derive(Debug, Clone)]
pub struct LaunchSpec {
    /// The profile name; the job is called `jrps-<profile>` (`job_name`).
    pub profile: String,
    pub partition: Partition,
    pub dir: JobPath,
    pub account: Option<String>,
    /// Name of the batch template (`batch/<name>.sh.j2`).
    pub batch: String,
    pub time: WallTime,
    /// 0 for CPU jobs; within the partition's `gpus_min..=gpus_max` otherwise.
    pub gpus: u32,
    pub image: Option<String>,
    /// The Python environment Jupyter runs from; the site's `jupyter` when none.
    pub python: Option<PythonEnv>,
    /// Stop Jupyter after this long without use; `None` is never.
    pub idle_timeout: Option<WallTime>,
    pub server: Server,
    /// The site's modules, then the profile's.
    pub modules: Vec<String>,
    /// Extra variables exported by the script.
    pub env: BTreeMap<String, String>,
    pub cpus: Option<u32>,
    pub memory: Option<String>,
    pub sbatch_options: Vec<String>,
    pub site: SiteConfig,
    /// Every resolved field with its value and source, for `profiles show`.
    pub provenance: Vec<FieldOrigin>,
}

/// A Python environment that Jupyter runs from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PythonEnv {
    Venv(JobPath),
    Conda(CondaEnv),
}

/// A conda environment, as `conda activate` takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CondaEnv {
    Name(String),
    Path(JobPath),
}

impl CondaEnv {
    /// One bash word for `conda activate`.
    pub fn shell_word(&self) -> String {
        match self {
            CondaEnv::Name(name) => shell_quote(name).into_owned(),
            CondaEnv::Path(path) => path.shell_word(),
        }
    }
}

impl std::fmt::Display for CondaEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CondaEnv::Name(name) => f.write_str(name),
            CondaEnv::Path(path) => path.fmt(f),
        }
    }
}

/// One line of `jrps profiles show`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldOrigin {
    pub field: &'static str,
    pub value: String,
    pub source: Source,
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

impl LaunchSpec {
    /// Validates the layered settings against the site.
    pub fn from_resolved(
        resolved: &Resolved,
        config: &Config,
    ) -> Result<LaunchSpec, LauncherError> {
        let site = &config.site;
        let f = &resolved.fields;
        let text = |t: Option<Sourced<crate::launcher::launch_fields::TimeText>>| {
            t.map(|t| Sourced::new(t.value.0, t.source))
        };
        let count = |c: Option<Sourced<crate::launcher::launch_fields::Count>>| {
            c.map(|c| Sourced::new(c.value.0, c.source))
        };
        let mut provenance = vec![FieldOrigin {
            field: "profile",
            value: resolved.profile.value.clone(),
            source: resolved.profile.source.clone(),
        }];
        let mut note = |field: &'static str, value: String, source: &Source| {
            provenance.push(FieldOrigin {
                field,
                value,
                source: source.clone(),
            })
        };
        if let Some(d) = &resolved.sourced("description", &f.description) {
            note("description", d.value.clone(), &d.source);
        }

        let partition = match &resolved.sourced("partition", &f.partition) {
            Some(p) => {
                let found = site.partitions.get(&p.value).ok_or_else(|| {
                    let names: Vec<&str> = site.partitions.keys().map(String::as_str).collect();
                    let mut allowed = format!("the site's partitions: {}", names.join(", "));
                    if let Some(guess) = did_you_mean(&p.value, names.iter().copied()) {
                        allowed = format!("{allowed} (did you mean `{guess}`?)");
                    }
                    invalid(
                        "partition",
                        p,
                        "the site does not define this partition".into(),
                        allowed,
                    )
                })?;
                note("partition", p.value.clone(), &p.source);
                found.clone()
            }
            None => {
                let found = site
                    .default_partition()
                    .ok_or_else(|| LauncherError::Missing {
                        field: "partition",
                        required_by: site.source(),
                        how: "no partition is marked `default = true`; pass -p PARTITION".into(),
                    })?;
                note("partition", found.name.clone(), &found.source);
                found.clone()
            }
        };

        let time_raw = &required(text(resolved.sourced("time", &f.time)), "time")?;
        let time = WallTime::parse(&time_raw.value)
            .map_err(|problem| invalid("time", time_raw, problem, wall_time::FORMATS.into()))?;
        if let Some(max) = partition.max_time.as_ref().filter(|max| time > max.value) {
            return Err(invalid(
                "time",
                time_raw,
                format!(
                    "{time} is over the {} limit of partition `{}` (set by {})",
                    max.value, partition.name, max.source
                ),
                format!("at most {} on `{}`", max.value, partition.name),
            ));
        }
        note("time", time.to_string(), &time_raw.source);

        let gpus = match &count(resolved.sourced("gpus", &f.gpus)) {
            None => 0,
            Some(g) => {
                let allowed = gpu_range(&partition);
                if g.value < 0 {
                    return Err(invalid_num("gpus", g, "it is negative".into(), allowed));
                }
                if g.value == 0 && partition.gpus_min > 0 {
                    return Err(LauncherError::Missing {
                        field: "gpus",
                        required_by: partition.source.clone(),
                        how: format!("partition `{}` needs {allowed}; pass -g N", partition.name),
                    });
                }
                if g.value > 0 && partition.gpus_max == 0 {
                    return Err(invalid_num(
                        "gpus",
                        g,
                        format!("partition `{}` has no GPUs", partition.name),
                        format!("{allowed}; GPU partitions: {}", gpu_partitions(site)),
                    ));
                }
                if g.value > i64::from(partition.gpus_max)
                    || g.value < i64::from(partition.gpus_min)
                {
                    return Err(invalid_num(
                        "gpus",
                        g,
                        format!("partition `{}` allows {allowed}", partition.name),
                        allowed,
                    ));
                }
                note("gpus", g.value.to_string(), &g.source);
                // In range of a u32 partition limit, so this conversion cannot fail.
                u32::try_from(g.value).unwrap_or(0)
            }
        };

        let dir_raw = &required(resolved.sourced("dir", &f.dir), "dir")?;
        let dir = JobPath::parse(&dir_raw.value, config.cwd.as_deref())
            .map_err(|problem| invalid("dir", dir_raw, problem, job_path::ALLOWED.into()))?;
        note("dir", dir.to_string(), &dir_raw.source);

        let account = match &resolved.sourced("account", &f.account) {
            Some(a) => {
                if !is_simple_name(&a.value) {
                    return Err(invalid(
                        "account",
                        a,
                        "it is not an account name".into(),
                        "letters, digits, `-`, `_` and `.`".into(),
                    ));
                }
                note("account", a.value.clone(), &a.source);
                Some(a.value.clone())
            }
            None => {
                if let Some(required_by) = &site.account_required {
                    return Err(LauncherError::Missing {
                        field: "account",
                        required_by: required_by.clone(),
                        how: "pass -A ACCOUNT, set JRPS_ACCOUNT, or set `account` under [defaults] in your config.toml"
                            .into(),
                    });
                }
                None
            }
        };

        let server_raw = &required(resolved.sourced("server", &f.server), "server")?;
        let server = Server::parse(&server_raw.value).ok_or_else(|| {
            invalid(
                "server",
                server_raw,
                "it is not a Jupyter server jrps knows".into(),
                server::ALLOWED.into(),
            )
        })?;
        let batch_raw = &required(resolved.sourced("batch", &f.batch), "batch")?;
        if batch_raw.source.is_explicit() && server_raw.source.is_explicit() {
            return Err(LauncherError::Conflict {
                first: "batch",
                first_source: batch_raw.source.clone(),
                second: "server",
                second_source: server_raw.source.clone(),
                why: "a custom batch template decides which server it starts; give either -b or -s"
                    .into(),
            });
        }
        if !is_simple_name(&batch_raw.value) || batch_raw.value.starts_with('.') {
            return Err(invalid(
                "batch",
                batch_raw,
                "it must name a template, not a path".into(),
                "the name of a template in a batch folder, such as `slurm` (see `jrps profiles check`)".into(),
            ));
        }
        note("server", server.to_string(), &server_raw.source);
        note("batch", batch_raw.value.clone(), &batch_raw.source);

        let image = match &resolved.sourced("image", &f.image) {
            Some(i) => {
                if i.value.trim().is_empty() || i.value.chars().any(char::is_control) {
                    return Err(invalid(
                        "image",
                        i,
                        "it is empty or has control characters".into(),
                        "the path or URI of a Singularity/Apptainer image".into(),
                    ));
                }
                if i.value.starts_with('-') {
                    return Err(invalid(
                        "image",
                        i,
                        "it starts with `-`, which singularity would read as an option".into(),
                        "the path or URI of a Singularity/Apptainer image (write ./-x for a file named -x)".into(),
                    ));
                }
                if i.value.starts_with('~') && !i.value.starts_with("~/") {
                    return Err(invalid(
                        "image",
                        i,
                        "`~user` is not supported".into(),
                        "the path or URI of a Singularity/Apptainer image; `~/x.sif` is in your home".into(),
                    ));
                }
                note("image", i.value.clone(), &i.source);
                Some(i.value.clone())
            }
            None => None,
        };

        let python = python_env(resolved, config)?;
        if let Some(env) = &python {
            let (field, value) = match env {
                PythonEnv::Venv(path) => ("venv", path.to_string()),
                PythonEnv::Conda(conda) => ("conda_env", conda.to_string()),
            };
            note(field, value, &resolved.layers.source_of(field));
        }
        let idle_timeout = idle_timeout(resolved, &partition)?;
        if let Some(idle) = &idle_timeout {
            note(
                "idle_timeout",
                idle.value.map_or("off".to_string(), |t| t.to_string()),
                &idle.source,
            );
        }

        let mut modules = site.modules.clone();
        if !modules.is_empty() {
            note("modules", modules.join(" "), &site.modules_source);
        }
        if let Some(m) = &resolved.sourced("modules", &f.modules) {
            for module in &m.value {
                let ok = !module.is_empty()
                    && module
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"_-+./@:".contains(&b));
                if !ok {
                    return Err(LauncherError::Invalid {
                        field: "modules".into(),
                        value: module.clone(),
                        origin: m.source.clone(),
                        problem: "it is not a module name".into(),
                        allowed: "module names such as gcc/10.2.0 (letters, digits, `_-+./@:`)"
                            .into(),
                    });
                }
            }
            note("modules", m.value.join(" "), &m.source);
            modules.extend(m.value.iter().cloned());
        }

        let mut env = BTreeMap::new();
        for (name, value) in &f.env {
            let value = &Sourced::new(
                value.clone(),
                resolved.layers.source_of(&format!("env.{name}")),
            );
            check_env(name, value)?;
            note("env", format!("{name}={}", value.value), &value.source);
            env.insert(name.clone(), value.value.clone());
        }

        let cpus = match &count(resolved.sourced("cpus", &f.cpus)) {
            Some(c) => {
                if !(1..=4096).contains(&c.value) {
                    return Err(invalid_num(
                        "cpus",
                        c,
                        "it is out of range".into(),
                        "1 to 4096".into(),
                    ));
                }
                note("cpus", c.value.to_string(), &c.source);
                u32::try_from(c.value).ok()
            }
            None => None,
        };
        let memory = match &resolved.sourced("memory", &f.memory) {
            Some(m) => {
                let digits = m.value.trim_end_matches(['K', 'M', 'G', 'T']);
                let ok = !digits.is_empty()
                    && digits.bytes().all(|b| b.is_ascii_digit())
                    && m.value.len() - digits.len() <= 1
                    && !digits.trim_start_matches('0').is_empty();
                if !ok {
                    return Err(invalid(
                        "memory",
                        m,
                        "it is not a Slurm memory size".into(),
                        "a whole number with an optional unit K, M, G or T, such as 16G".into(),
                    ));
                }
                note("memory", m.value.clone(), &m.source);
                Some(m.value.clone())
            }
            None => None,
        };

        let sbatch_options = match &resolved.sourced("sbatch_options", &f.sbatch_options) {
            Some(o) => {
                for option in &o.value {
                    check_sbatch_option(option, &o.source)?;
                }
                note("sbatch_options", o.value.join(" "), &o.source);
                o.value.clone()
            }
            None => Vec::new(),
        };

        Ok(LaunchSpec {
            profile: resolved.profile.value.clone(),
            partition,
            dir,
            account,
            batch: batch_raw.value.clone(),
            time,
            gpus,
            image,
            python,
            idle_timeout: idle_timeout.and_then(|t| t.value),
            server,
            modules,
            env,
            cpus,
            memory,
            sbatch_options,
            site: site.clone(),
            provenance,
        })
    }

    /// The image as one bash word: `~/x.sif` is in the job's home; a URI
    /// (`library://…`) or another path is used as written, a relative one
    /// from `dir`, where the script is when it starts Jupyter.
    pub fn image_word(&self) -> Option<String> {
        let image = self.image.as_deref()?;
        Some(match image.strip_prefix("~/") {
            Some(rest) => JobPath::Home(Some(rest.to_string())).shell_word(),
            None => shell_quote(image).into_owned(),
        })
    }

    /// The image file on this machine, by the rule of [`Self::image_word`];
    /// `None` for a URI, or for `~/` without a home.
    pub fn image_here(
        &self,
        home: Option<&std::path::Path>,
        dir: &std::path::Path,
    ) -> Option<std::path::PathBuf> {
        let image = self.image.as_deref()?;
        if image.contains("://") {
            return None;
        }
        match image.strip_prefix("~/") {
            Some(rest) => Some(home?.join(rest)),
            None => Some(dir.join(image)),
        }
    }

    /// Where the value of `field` came from (`Default` for fields no layer set).
    pub fn source_of(&self, field: &str) -> Source {
        self.provenance
            .iter()
            .find(|f| f.field == field)
            .map_or(Source::Default, |f| f.source.clone())
    }

    /// The `#SBATCH` GPU option in the partition's style; `None` for CPU jobs.
    pub fn gpu_option(&self) -> Option<String> {
        (self.gpus > 0).then(|| self.partition.gpu_flag.option(self.gpus))
    }

    /// The job's one name, `jrps-<profile>`: the script's `#SBATCH` line
    /// and the submission both use it, and it is the same for every launch
    /// of a profile so that `jrps render` stays byte-stable (`jrps ls` maps
    /// sessions to job ids).
    pub fn job_name(&self) -> String {
        format!("jrps-{}", self.profile)
    }
}

/// `image`, `venv` and `conda_env` each say where Jupyter comes from, so at
/// most one may be set; then the environment itself.
fn python_env(resolved: &Resolved, config: &Config) -> Result<Option<PythonEnv>, LauncherError> {
    let f = &resolved.fields;
    let image = resolved.sourced("image", &f.image);
    let venv = resolved.sourced("venv", &f.venv);
    let conda = resolved.sourced("conda_env", &f.conda_env);
    let set: Vec<(&'static str, &Source)> =
        [("image", &image), ("venv", &venv), ("conda_env", &conda)]
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
    let cwd = config.cwd.as_deref();
    if let Some(venv) = &venv {
        let path = JobPath::parse(&venv.value, cwd).map_err(|problem| {
            invalid(
                "venv",
                venv,
                problem,
                format!("the folder of a virtual environment: {}", job_path::ALLOWED),
            )
        })?;
        return Ok(Some(PythonEnv::Venv(path)));
    }
    if let Some(conda) = &conda {
        let value = conda.value.trim();
        let env = if value.contains('/') || value.starts_with('~') || value.starts_with('.') {
            CondaEnv::Path(JobPath::parse(value, cwd).map_err(|problem| {
                invalid("conda_env", conda, problem, job_path::ALLOWED.into())
            })?)
        } else if is_simple_name(value) && !value.starts_with('-') {
            CondaEnv::Name(value.to_string())
        } else {
            return Err(invalid(
                "conda_env",
                conda,
                "it is neither an environment name nor a path".into(),
                "a name such as `torch` (letters, digits, `-`, `_`, `.`, not starting with `-`) or the path of the environment".into(),
            ));
        };
        return Ok(Some(PythonEnv::Conda(env)));
    }
    Ok(None)
}

/// `idle_timeout` from the layers, else the partition's default; `off` is
/// `Some(None)`. Within the partition's `max_idle_timeout`, where it has one.
fn idle_timeout(
    resolved: &Resolved,
    partition: &Partition,
) -> Result<Option<Sourced<Option<WallTime>>>, LauncherError> {
    let chosen = match resolved.sourced("idle_timeout", &resolved.fields.idle_timeout) {
        Some(text) => {
            let raw = Sourced::new(text.value.0, text.source);
            let value = wall_time::parse_idle(&raw.value).map_err(|problem| {
                invalid(
                    "idle_timeout",
                    &raw,
                    problem,
                    wall_time::IDLE_FORMATS.into(),
                )
            })?;
            Sourced::new(value, raw.source)
        }
        // A partition with a maximum and no default gives its maximum: "no
        // idle timeout" would be over it.
        None => match (&partition.idle_timeout, &partition.max_idle_timeout) {
            (Some(default), _) => default.clone(),
            (None, Some(max)) => Sourced::new(Some(max.value), max.source.clone()),
            (None, None) => return Ok(None),
        },
    };
    if let Some(max) = &partition.max_idle_timeout
        && chosen.value.is_none_or(|t| t > max.value)
    {
        let shown = chosen.value.map_or("off".to_string(), |t| t.to_string());
        return Err(LauncherError::Invalid {
            field: "idle_timeout".into(),
            value: shown.clone(),
            origin: chosen.source.clone(),
            problem: format!(
                "{shown} is over the {} limit of partition `{}` (set by {})",
                max.value, partition.name, max.source
            ),
            allowed: format!("at most {} on `{}`", max.value, partition.name),
        });
    }
    Ok(Some(chosen))
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

fn check_env(name: &str, value: &Sourced<String>) -> Result<(), LauncherError> {
    let bad = |problem: &str, allowed: &str| LauncherError::Invalid {
        field: "env".into(),
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
            field: "env".into(),
            value: format!("{name}={}", value.value.escape_debug()),
            origin: value.source.clone(),
            problem: "the value has control characters".into(),
            allowed: "single-line values".into(),
        });
    }
    Ok(())
}

fn check_sbatch_option(option: &str, source: &Source) -> Result<(), LauncherError> {
    let bad = |problem: String, allowed: &str| LauncherError::Invalid {
        field: "sbatch_options".into(),
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
    use crate::launcher::environment::Environment;
    use crate::launcher::launch_fields::{Count, LaunchFields, LaunchRequest};

    /// Resolution reads nothing but its inputs: no site, no user files here.
    fn spec(pairs: &[(&str, &str)], args: LaunchRequest) -> Result<LaunchSpec, LauncherError> {
        let mut all = vec![
            ("JRPS_SITE_DIR", "/nonexistent/site"),
            ("HOME", "/nonexistent/home"),
        ];
        all.extend_from_slice(pairs);
        let env = Environment::from_pairs(all);
        let config = Config::load(&env)?;
        let resolved = config.settings_for(&env, &args)?;
        LaunchSpec::from_resolved(&resolved, &config)
    }

    #[test]
    fn cpu_jobs_have_no_gpu_option() {
        let spec = spec(&[], LaunchRequest::default()).unwrap();
        assert_eq!(spec.gpus, 0);
        assert_eq!(spec.gpu_option(), None);
        assert_eq!(spec.partition.name, "compute");
        assert_eq!(spec.time.to_string(), "00:30:00");
    }

    #[test]
    fn gpu_jobs_use_the_partition_flag_style() {
        let args = LaunchRequest {
            profile: Some("gpu-pytorch".into()),
            flags: LaunchFields {
                gpus: Some(Count(2)),
                ..LaunchFields::default()
            },
        };
        let spec = spec(&[], args).unwrap();
        assert_eq!(spec.gpu_option().as_deref(), Some("--gres=gpu:2"));
        assert_eq!(spec.job_name(), "jrps-gpu-pytorch");
    }

    #[test]
    fn env_layer_is_read_from_the_snapshot_not_the_process() {
        let spec = spec(&[("JRPS_TIME", "2:00:00")], LaunchRequest::default()).unwrap();
        assert_eq!(spec.time.seconds(), 7200);
        let time = spec.provenance.iter().find(|f| f.field == "time").unwrap();
        assert_eq!(time.source, Source::Env("JRPS_TIME".into()));
    }
}
