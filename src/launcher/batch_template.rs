//! Batch templates: finding one by name (the site's batch folders first, then
//! the built-in `batch/` embedded in the binary; never a path) and rendering
//! it for a `LaunchSpec` with minijinja.

use std::collections::BTreeSet;
use std::path::PathBuf;

use minijinja::syntax::SyntaxConfig;
use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use serde::Serialize;

use crate::launcher::directives;
use crate::launcher::launch_spec::{LaunchSpec, PythonEnv};
use crate::launcher::launcher_error::{LauncherError, did_you_mean};
use crate::launcher::shell_quote::shell_quote;
use crate::launcher::source::{Layer, Source};

/// Built-in templates as (name, repository path, text): one per scheduler
/// dialect, each the shared job below with its own header and directives.
const BUILT_IN: &[(&str, &str, &str)] = &[
    (
        "slurm",
        "batch/slurm.sh.j2",
        include_str!("../../batch/slurm.sh.j2"),
    ),
    (
        "pbs",
        "batch/pbs.sh.j2",
        include_str!("../../batch/pbs.sh.j2"),
    ),
    (
        "torque",
        "batch/torque.sh.j2",
        include_str!("../../batch/torque.sh.j2"),
    ),
    (
        "sge",
        "batch/sge.sh.j2",
        include_str!("../../batch/sge.sh.j2"),
    ),
];

/// The job every built-in template extends (`{% extends "jrps-job.sh.j2" %}`),
/// and a site's may: what runs Jupyter and talks to jrps, written once.
const BASE: (&str, &str) = ("jrps-job.sh.j2", include_str!("../../batch/jrps-job.sh.j2"));

const SUFFIX: &str = ".sh.j2";

/// A template's text and where it was found.
#[derive(Debug, Clone)]
pub struct BatchTemplate {
    pub name: String,
    pub source: Source,
    pub text: String,
}

/// What a template sees. Field names are the templates' interface; keep them
/// stable. `dir`, `image_word`, `venv` and `conda_env` are already bash
/// words; every other string goes through `q`.
#[derive(Debug, Serialize)]
struct TemplateContext<'a> {
    profile: &'a str,
    /// Slurm's options, for templates written before `directives`.
    sbatch_directives: Vec<String>,
    /// The site scheduler's directive lines, prefix included (`#SBATCH …`,
    /// `#PBS …`).
    directives: Vec<String>,
    /// The signals the job's trap takes as "stop now" (`TERM`, on Grid
    /// Engine also `USR1 USR2`).
    stop_signals: &'static str,
    /// Grid Engine's soft wall time signal (`USR1`), the end only when due.
    soft_limit: Option<directives::SoftLimit>,
    modules: &'a [String],
    env: &'a std::collections::BTreeMap<String, String>,
    node_interface: Option<&'a str>,
    jrps: &'a str,
    jupyter: &'a str,
    container_runtime: &'a str,
    dir: String,
    /// As written; site templates quote it with `q`.
    image: Option<&'a str>,
    /// One bash word, `~/` expanded in the job.
    image_word: Option<String>,
    venv: Option<String>,
    conda_env: Option<String>,
    conda_init: Option<&'a str>,
    /// Seconds; absent when sessions are never stopped for being idle.
    idle_timeout_s: Option<u64>,
    /// The job's wall time in seconds (with any headroom).
    time_s: u64,
    /// Whether the job writes the page jrps puts inside Jupyter.
    walltime_notice: bool,
    gpus: u32,
    /// The session's kind (`lab`, `notebook`, `voila`, `code-server`).
    kind: &'static str,
    /// The `jupyter` subcommand of the Jupyter kinds (`lab`, `notebook`;
    /// `server` for Voilà's extension).
    server: &'static str,
    /// Where Jupyter sends the browser first, as a shell word.
    start_url: Option<String>,
    /// What code-server opens, as a shell word relative to `dir`.
    open_word: Option<String>,
    code_server: &'a str,
}

/// The batch script for a validated spec.
pub fn script(spec: &LaunchSpec) -> Result<String, LauncherError> {
    BatchTemplate::find(&spec.batch.value, &spec.site.batch_dirs, &spec.batch.source)?.render(spec)
}

impl BatchTemplate {
    /// Finds template `name` in `dirs` (in order), then among the built-in ones.
    pub fn find(
        name: &str,
        dirs: &[PathBuf],
        origin: &Source,
    ) -> Result<BatchTemplate, LauncherError> {
        for dir in dirs {
            let path = dir.join(format!("{name}{SUFFIX}"));
            match std::fs::read_to_string(&path) {
                Ok(text) => {
                    return Ok(BatchTemplate {
                        name: name.to_string(),
                        source: Source::file(Layer::Site, path, None),
                        text,
                    });
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => return Err(LauncherError::Read { path, source }),
            }
        }
        if let Some((name, path, text)) = BUILT_IN.iter().find(|(n, _, _)| *n == name) {
            return Ok(BatchTemplate {
                name: name.to_string(),
                source: Source::file(Layer::BuiltIn, path, None),
                text: text.to_string(),
            });
        }
        let available = BatchTemplate::names(dirs);
        Err(LauncherError::UnknownTemplate {
            name: name.to_string(),
            origin: origin.clone(),
            suggestion: did_you_mean(name, available.iter().map(String::as_str)),
            available,
        })
    }

    /// Names of every template in `dirs` and built in, sorted.
    pub fn names(dirs: &[PathBuf]) -> Vec<String> {
        let mut names: BTreeSet<String> = BUILT_IN.iter().map(|(n, _, _)| n.to_string()).collect();
        for dir in dirs {
            let Ok(entries) = std::fs::read_dir(dir) else {
                continue;
            };
            for entry in entries.flatten() {
                if let Some(name) = entry
                    .file_name()
                    .to_str()
                    .and_then(|f| f.strip_suffix(SUFFIX))
                {
                    names.insert(name.to_string());
                }
            }
        }
        names.into_iter().collect()
    }

    /// The batch script for `spec`.
    pub fn render(&self, spec: &LaunchSpec) -> Result<String, LauncherError> {
        let error = |source| LauncherError::Template {
            name: format!("{} ({})", self.name, self.source),
            source,
        };
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        // Shell scripts, not HTML: quoting is explicit through `q`.
        env.set_auto_escape_callback(|_| AutoEscape::None);
        env.set_syntax(
            SyntaxConfig::builder()
                .trim_blocks(true)
                .lstrip_blocks(true)
                .keep_trailing_newline(true)
                .build()
                .map_err(error)?,
        );
        env.add_filter("q", |value: String| shell_quote(&value).into_owned());
        env.add_template(BASE.0, BASE.1).map_err(error)?;
        env.add_template_owned(self.name.clone(), self.text.clone())
            .map_err(error)?;
        let context = TemplateContext {
            profile: &spec.profile,
            sbatch_directives: directives::sbatch(spec),
            directives: directives::lines(spec),
            stop_signals: directives::stop_signals(spec),
            soft_limit: directives::soft_limit(spec),
            modules: &spec.modules,
            env: &spec.env,
            node_interface: spec.site.node_interface.as_deref(),
            jrps: &spec.site.jrps,
            jupyter: &spec.site.jupyter,
            container_runtime: &spec.site.container_runtime,
            dir: spec.dir.shell_word(),
            image: spec.image.as_deref(),
            image_word: spec.image_word(),
            venv: match &spec.python {
                Some(PythonEnv::Venv(path)) => Some(path.shell_word()),
                _ => None,
            },
            conda_env: match &spec.python {
                Some(PythonEnv::Conda(env)) => Some(env.shell_word()),
                _ => None,
            },
            conda_init: spec.site.conda_init.as_ref().map(|c| c.value.as_str()),
            idle_timeout_s: spec.idle_timeout.map(|t| t.seconds()),
            time_s: spec.job_time().seconds(),
            walltime_notice: spec.site.walltime_notice && spec.kind.definition().page_inside,
            gpus: spec.gpus,
            kind: spec.kind.name(),
            server: spec.kind.definition().jupyter_subcommand.unwrap_or(""),
            start_url: spec
                .kind
                .start_url(spec.open.as_deref())
                .map(|url| shell_quote(&url).into_owned()),
            open_word: spec
                .open
                .as_deref()
                .filter(|_| spec.kind.definition().open_as_argument)
                .map(|path| shell_quote(path).into_owned()),
            code_server: &spec.site.code_server,
        };
        let template = env.get_template(&self.name).map_err(error)?;
        template
            .render(minijinja::value::Serde(&context))
            .map_err(error)
    }
}
