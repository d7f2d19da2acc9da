//! The launch fields every layer may set (profile files, `[defaults]` tables,
//! `JRPS_*` variables, flags), each with its source, and how two layers
//! combine. Nothing here checks values against the site: `LaunchSpec` does.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use crate::cli::LaunchArgs;
use crate::env_vars;
use crate::launcher::environment::Environment;
use crate::launcher::launcher_error::LauncherError;
use crate::launcher::source::{Layer, Source, Sourced, line_of};

/// One layer's launch fields; `None` means "this layer says nothing".
#[derive(Debug, Clone, Default)]
pub struct Settings {
    pub description: Option<Sourced<String>>,
    pub partition: Option<Sourced<String>>,
    pub dir: Option<Sourced<String>>,
    pub account: Option<Sourced<String>>,
    pub batch: Option<Sourced<String>>,
    /// Raw text; `WallTime` parses it so the error can name this source.
    pub time: Option<Sourced<String>>,
    pub gpus: Option<Sourced<i64>>,
    pub image: Option<Sourced<String>>,
    pub server: Option<Sourced<String>>,
    pub modules: Option<Sourced<Vec<String>>>,
    /// Merged by variable name across layers, unlike the other fields.
    pub env: BTreeMap<String, Sourced<String>>,
    pub cpus: Option<Sourced<i64>>,
    pub memory: Option<Sourced<String>>,
    pub sbatch_options: Option<Sourced<Vec<String>>>,
}

impl Settings {
    /// Field by field, `self` wins over `lower` (uv's `combine`).
    pub fn over(self, lower: Settings) -> Settings {
        let mut env = lower.env;
        env.extend(self.env);
        Settings {
            description: self.description.or(lower.description),
            partition: self.partition.or(lower.partition),
            dir: self.dir.or(lower.dir),
            account: self.account.or(lower.account),
            batch: self.batch.or(lower.batch),
            time: self.time.or(lower.time),
            gpus: self.gpus.or(lower.gpus),
            image: self.image.or(lower.image),
            server: self.server.or(lower.server),
            modules: self.modules.or(lower.modules),
            env,
            cpus: self.cpus.or(lower.cpus),
            memory: self.memory.or(lower.memory),
            sbatch_options: self.sbatch_options.or(lower.sbatch_options),
        }
    }

    /// jrps's own defaults, the lowest layer: 30 minutes of JupyterLab in the
    /// home directory (as the original), the built-in `slurm` template, no GPUs.
    /// The partition default comes from the site (`default = true`).
    pub fn defaults() -> Settings {
        let d = |v: &str| Some(Sourced::new(v.to_string(), Source::Default));
        Settings {
            dir: d("~"),
            batch: d("slurm"),
            time: d("30"),
            gpus: Some(Sourced::new(0, Source::Default)),
            server: d("lab"),
            ..Settings::default()
        }
    }

    /// The `JRPS_*` layer. Empty variables count as unset.
    pub fn from_env(env: &Environment) -> Result<Settings, LauncherError> {
        let text = |var: &'static str| {
            env.get(var)
                .filter(|v| !v.is_empty())
                .map(|v| Sourced::new(v.to_string(), Source::Env(var)))
        };
        let number = |var: &'static str, field: &'static str| -> Result<_, LauncherError> {
            text(var)
                .map(|s| match s.value.trim().parse::<i64>() {
                    Ok(n) => Ok(Sourced::new(n, s.source)),
                    Err(_) => Err(LauncherError::Invalid {
                        field,
                        value: s.value,
                        origin: s.source,
                        problem: "it is not a whole number".into(),
                        allowed: "a whole number such as 1".into(),
                    }),
                })
                .transpose()
        };
        Ok(Settings {
            partition: text(env_vars::PARTITION),
            dir: text(env_vars::DIR),
            account: text(env_vars::ACCOUNT),
            batch: text(env_vars::BATCH),
            time: text(env_vars::TIME),
            gpus: number(env_vars::GPUS, "gpus")?,
            image: text(env_vars::IMAGE),
            server: text(env_vars::SERVER),
            cpus: number(env_vars::CPUS, "cpus")?,
            memory: text(env_vars::MEMORY),
            ..Settings::default()
        })
    }

    /// The flag layer, merged last so that only flags actually given override.
    pub fn from_flags(args: &LaunchArgs) -> Settings {
        fn flag<T: Clone>(value: &Option<T>, name: &'static str) -> Option<Sourced<T>> {
            value.clone().map(|v| Sourced::new(v, Source::Flag(name)))
        }
        Settings {
            partition: flag(&args.partition, "--partition"),
            dir: args
                .dir
                .as_ref()
                .map(|d| Sourced::new(d.to_string_lossy().into_owned(), Source::Flag("--dir"))),
            account: flag(&args.account, "--account"),
            batch: flag(&args.batch, "--batch"),
            time: flag(&args.time, "--time"),
            gpus: flag(&args.gpus.map(i64::from), "--gpus"),
            image: flag(&args.image, "--image"),
            server: flag(&args.server, "--server"),
            cpus: flag(&args.cpus.map(i64::from), "--cpus"),
            memory: flag(&args.memory, "--memory"),
            ..Settings::default()
        }
    }
}

/// A TOML table of launch fields as written in a file: a profile, or the
/// `[defaults]` table of `site.toml`/`config.toml`. Unknown keys are errors.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingsTable {
    description: Option<Spanned<String>>,
    extends: Option<Spanned<String>>,
    partition: Option<Spanned<String>>,
    dir: Option<Spanned<String>>,
    account: Option<Spanned<String>>,
    batch: Option<Spanned<String>>,
    time: Option<Spanned<TimeInput>>,
    gpus: Option<Spanned<i64>>,
    image: Option<Spanned<String>>,
    server: Option<Spanned<String>>,
    modules: Option<Spanned<Vec<String>>>,
    env: Option<BTreeMap<String, Spanned<String>>>,
    cpus: Option<Spanned<i64>>,
    memory: Option<Spanned<String>>,
    sbatch_options: Option<Spanned<Vec<String>>>,
}

/// `time` may be written `30` (minutes, as Slurm) or `"1-12:00:00"`.
#[derive(Debug)]
struct TimeInput(String);

impl<'de> Deserialize<'de> for TimeInput {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = TimeInput;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a Slurm time: a number of minutes or a string such as \"01:30:00\"")
            }
            fn visit_i64<E>(self, v: i64) -> Result<TimeInput, E> {
                Ok(TimeInput(v.to_string()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<TimeInput, E> {
                Ok(TimeInput(v.to_string()))
            }
            fn visit_str<E>(self, v: &str) -> Result<TimeInput, E> {
                Ok(TimeInput(v.to_string()))
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// What a file's launch table holds once its positions are turned into lines.
#[derive(Debug, Clone, Default)]
pub struct FileSettings {
    pub settings: Settings,
    pub extends: Option<Sourced<String>>,
}

impl SettingsTable {
    /// Attributes every value to `path:line` of `layer`; `text` is the whole
    /// file the spans point into.
    pub fn into_settings(self, text: &str, layer: Layer, path: &Path) -> FileSettings {
        let at = |span: std::ops::Range<usize>| {
            Source::file(layer, path, Some(line_of(text, span.start)))
        };
        fn take<T>(
            v: Option<Spanned<T>>,
            at: &impl Fn(std::ops::Range<usize>) -> Source,
        ) -> Option<Sourced<T>> {
            v.map(|s| {
                let source = at(s.span());
                Sourced::new(s.into_inner(), source)
            })
        }
        let env = self
            .env
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| {
                let source = at(v.span());
                (k, Sourced::new(v.into_inner(), source))
            })
            .collect();
        FileSettings {
            extends: take(self.extends, &at),
            settings: Settings {
                description: take(self.description, &at),
                partition: take(self.partition, &at),
                dir: take(self.dir, &at),
                account: take(self.account, &at),
                batch: take(self.batch, &at),
                time: take(self.time, &at).map(|s| Sourced::new(s.value.0, s.source)),
                gpus: take(self.gpus, &at),
                image: take(self.image, &at),
                server: take(self.server, &at),
                modules: take(self.modules, &at),
                env,
                cpus: take(self.cpus, &at),
                memory: take(self.memory, &at),
                sbatch_options: take(self.sbatch_options, &at),
            },
        }
    }
}
