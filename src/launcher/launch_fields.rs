//! The launch fields: the one definition every layer reads. A profile file or
//! a `[defaults]` table sets them by key, `JRPS_<FIELD>` sets those that are
//! flags, and the flags come from clap's derive of this same struct. Adding a
//! field means adding it here, checking it in `LaunchSpec`, and using it in the
//! batch template. Nothing here checks values against the site.

use std::collections::BTreeMap;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// What one launch asks for on the command line: a profile and flags.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct LaunchRequest {
    /// Profile name (see `jrps profiles`); `default` when omitted.
    pub profile: Option<String>,
    #[command(flatten)]
    pub flags: LaunchFields,
}

/// One layer's launch fields; `None` means "this layer says nothing". Fields
/// without a flag are `#[arg(skip)]`. Every field skips serialising when
/// unset: the flag layer is serialised into figment, and an absent flag must
/// not wipe a lower layer's value.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, clap::Args)]
#[serde(deny_unknown_fields)]
pub struct LaunchFields {
    /// What the profile is for, shown by `jrps profiles`.
    #[arg(skip)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The cluster, on a site with several (`[clusters]` in site.toml).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// Slurm partition, e.g. debug, compute, gpu-shared.
    #[arg(short = 'p', long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partition: Option<String>,
    /// Directory Jupyter starts in.
    #[arg(short = 'd', long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dir: Option<String>,
    /// Project allocation to charge.
    #[arg(short = 'A', long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// Batch template name from a batch folder (not a path).
    #[arg(short = 'b', long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch: Option<String>,
    /// Wall time in a Slurm format: M, M:S, H:M:S, D-H, D-H:M, D-H:M:S.
    #[arg(short = 't', long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time: Option<TimeText>,
    /// Number of GPUs (GPU partitions only).
    #[arg(short = 'g', long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gpus: Option<Count>,
    /// Singularity/Apptainer image to run Jupyter in.
    #[arg(short = 'i', long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// What the session runs: lab, notebook, voila or code-server.
    #[arg(short = 's', long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// The notebook or folder the session opens, relative to its directory:
    /// the one Voilà serves, or the one JupyterLab, Notebook or code-server
    /// shows first.
    #[arg(long, value_name = "PATH")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub open: Option<String>,
    /// Python virtual environment to run Jupyter from (its bin/jupyter).
    #[arg(long, value_name = "PATH")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub venv: Option<String>,
    /// Conda environment to run Jupyter from: a name or a path.
    #[arg(long, value_name = "NAME_OR_PATH")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conda_env: Option<String>,
    /// Stop Jupyter after this long without use (Slurm time format, or off).
    #[arg(long, value_name = "TIME")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idle_timeout: Option<TimeText>,
    /// Environment modules to load after the site's.
    #[arg(skip)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub modules: Option<Vec<String>>,
    /// Extra variables the script exports; merged by name across layers.
    #[arg(skip)]
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// CPUs per task (`#SBATCH --cpus-per-task`).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpus: Option<Count>,
    /// Memory per node in Slurm's units, e.g. 16G (`#SBATCH --mem`).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<String>,
    /// Further `#SBATCH` long options, such as --constraint=haswell.
    #[arg(skip)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sbatch_options: Option<Vec<String>>,
    /// Further `#PBS` options on PBS and Torque sites, such as `-l place=excl`.
    #[arg(skip)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub qsub_options: Option<Vec<String>>,
}

impl LaunchFields {
    /// jrps's own defaults, the lowest layer: 30 minutes of JupyterLab in the
    /// home directory (as the original), no GPUs. The batch template is the
    /// site scheduler's built-in one unless a layer names another.
    /// The partition default comes from the site (`default = true`).
    pub fn defaults() -> LaunchFields {
        LaunchFields {
            dir: Some("~".into()),
            time: Some(TimeText("30".into())),
            gpus: Some(Count(0)),
            server: Some("lab".into()),
            ..LaunchFields::default()
        }
    }

    /// The fields that are flags, each with its long name: clap's view of
    /// this struct, so a field is a flag, and has a `JRPS_*` variable,
    /// exactly when it has an `#[arg]`.
    pub fn flags() -> &'static [(String, String)] {
        static FLAGS: std::sync::OnceLock<Vec<(String, String)>> = std::sync::OnceLock::new();
        FLAGS.get_or_init(|| {
            let command = <LaunchFields as clap::Args>::augment_args(clap::Command::new("jrps"));
            command
                .get_arguments()
                .filter_map(|arg| {
                    Some((arg.get_id().to_string(), format!("--{}", arg.get_long()?)))
                })
                .collect()
        })
    }
}

/// `time` may be written `30` (minutes, as Slurm) or `"1-12:00:00"`; kept as
/// text so that `WallTime` parses it and its error names this value's source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct TimeText(pub String);

impl FromStr for TimeText {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<TimeText, Self::Err> {
        Ok(TimeText(s.to_string()))
    }
}

impl<'de> Deserialize<'de> for TimeText {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = TimeText;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a Slurm time: a number of minutes or a string such as \"01:30:00\"")
            }
            fn visit_i64<E>(self, v: i64) -> Result<TimeText, E> {
                Ok(TimeText(v.to_string()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<TimeText, E> {
                Ok(TimeText(v.to_string()))
            }
            fn visit_str<E>(self, v: &str) -> Result<TimeText, E> {
                Ok(TimeText(v.to_string()))
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// A whole number: an integer in a file, digits in a `JRPS_*` variable or a
/// flag. Signed, so that `gpus = -1` is refused by `LaunchSpec` with the
/// reason rather than by a type error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Count(pub i64);

impl FromStr for Count {
    type Err = std::num::ParseIntError;
    fn from_str(s: &str) -> Result<Count, Self::Err> {
        s.trim().parse().map(Count)
    }
}

impl<'de> Deserialize<'de> for Count {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Count;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a whole number")
            }
            fn visit_i64<E>(self, v: i64) -> Result<Count, E> {
                Ok(Count(v))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Count, E> {
                i64::try_from(v)
                    .map(Count)
                    .map_err(|_| E::invalid_value(serde::de::Unexpected::Unsigned(v), &self))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Count, E> {
                v.parse()
                    .map_err(|_| E::invalid_value(serde::de::Unexpected::Str(v), &self))
            }
        }
        d.deserialize_any(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_are_the_fields_with_an_arg_and_their_long_names() {
        let flags = LaunchFields::flags();
        let is_flag = |field: &str| flags.iter().any(|(id, _)| id == field);
        // One field of each kind: with an `#[arg]`, and `#[arg(skip)]`.
        assert!(is_flag("time") && is_flag("conda_env"));
        assert!(!is_flag("env") && !is_flag("description"));
        assert!(
            flags
                .iter()
                .all(|(id, long)| *long == format!("--{}", id.replace('_', "-")))
        );
    }
}
