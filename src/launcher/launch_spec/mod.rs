//! `LaunchSpec`: one launch, resolved from all layers and checked against the
//! site's limits. It is the only thing rendering, the scheduler and the proxy
//! client see; building one is where every value is validated, before anything
//! leaves the machine.

mod fields;
mod python;

use std::collections::BTreeMap;

pub use fields::FieldOrigin;
pub use python::{CondaEnv, PythonEnv};

use crate::launcher::config::{Config, Resolved, field};
use crate::launcher::job_path::JobPath;
use crate::launcher::launcher_error::LauncherError;
use crate::launcher::shell_quote::shell_quote;
use crate::launcher::site_config::{Partition, SiteConfig};
use crate::launcher::source::{Source, Sourced};
use crate::session_kind::SessionKind;
use crate::wall_time::WallTime;
use fields::Origins;

/// A validated launch.
#[derive(Debug, Clone)]
pub struct LaunchSpec {
    /// The profile name; the job is called `jrps-<profile>` (`job_name`).
    pub profile: String,
    pub partition: Partition,
    pub dir: JobPath,
    pub account: Option<String>,
    /// Name of the batch template (`batch/<name>.sh.j2`), with where the
    /// name came from (a site's template is looked for first where it said).
    pub batch: Sourced<String>,
    pub time: WallTime,
    /// 0 for CPU jobs; within the partition's `gpus_min..=gpus_max` otherwise.
    pub gpus: u32,
    pub image: Option<String>,
    /// The Python environment Jupyter runs from; the site's `jupyter` when none.
    pub python: Option<PythonEnv>,
    /// Stop Jupyter after this long without use; `None` is never.
    pub idle_timeout: Option<WallTime>,
    pub kind: SessionKind,
    /// What the session opens, relative to `dir`.
    pub open: Option<String>,
    /// The site's modules, then the profile's.
    pub modules: Vec<String>,
    /// Extra variables exported by the script.
    pub env: BTreeMap<String, String>,
    pub cpus: Option<u32>,
    pub memory: Option<String>,
    pub sbatch_options: Vec<String>,
    /// Extra `#PBS` options, on PBS and Torque sites.
    pub qsub_options: Vec<String>,
    pub site: SiteConfig,
    /// Every resolved field with its value and source, for `profiles show`.
    pub provenance: Vec<FieldOrigin>,
}

impl LaunchSpec {
    /// Validates the layered settings against the site: each field by its
    /// own rule (`fields`), in the order `profiles show` lists them.
    pub fn from_resolved(
        resolved: &Resolved,
        config: &Config,
    ) -> Result<LaunchSpec, LauncherError> {
        let cwd = config.cwd.as_deref();
        let mut origins = Origins::default();
        origins.note(
            "profile",
            resolved.profile.value.clone(),
            &resolved.profile.source,
        );
        fields::description(field!(resolved, description), &mut origins);
        let site = &fields::cluster(field!(resolved, cluster), &config.site, &mut origins)?;
        let partition = fields::partition(field!(resolved, partition), site, &mut origins)?;
        let time = fields::time(
            field!(resolved, time).map(|t| t.0),
            &partition,
            &mut origins,
        )?;
        let gpus = fields::gpus(
            field!(resolved, gpus).map(|c| c.0),
            &partition,
            site,
            &mut origins,
        )?;
        let dir = fields::dir(field!(resolved, dir), cwd, &mut origins)?;
        let account = fields::account(field!(resolved, account), site, &mut origins)?;
        let (kind, batch) = fields::server_and_batch(
            field!(resolved, server),
            field!(resolved, batch),
            site,
            &mut origins,
        )?;
        let open = fields::open(field!(resolved, open), &mut origins)?;
        let image_field = field!(resolved, image);
        let image = fields::image(image_field.clone(), &mut origins)?;
        let python = fields::python_env(
            &image_field,
            field!(resolved, venv),
            field!(resolved, conda_env),
            cwd,
            &mut origins,
        )?;
        let idle_timeout = fields::idle_timeout(
            field!(resolved, idle_timeout).map(|t| t.0),
            &partition,
            &mut origins,
        )?;
        let modules = fields::modules(site, field!(resolved, modules), &mut origins)?;
        let variables = resolved
            .fields
            .env
            .iter()
            .map(|(name, value)| {
                let source = resolved.layers.source_of(&format!("env.{name}"));
                (name.clone(), Sourced::new(value.clone(), source))
            })
            .collect();
        let env = fields::env("env", variables, &mut origins)?;
        let cpus = fields::cpus(field!(resolved, cpus).map(|c| c.0), &mut origins)?;
        let memory = fields::memory(field!(resolved, memory), &mut origins)?;
        fields::options_for_the_scheduler(
            site,
            &field!(resolved, sbatch_options),
            &field!(resolved, qsub_options),
        )?;
        let sbatch_options =
            fields::sbatch_options(field!(resolved, sbatch_options), &mut origins)?;
        let qsub_options = fields::qsub_options(field!(resolved, qsub_options), &mut origins)?;

        Ok(LaunchSpec {
            profile: resolved.profile.value.clone(),
            partition,
            dir,
            account,
            batch,
            time,
            gpus,
            image,
            python,
            idle_timeout,
            kind,
            open,
            modules,
            env,
            cpus,
            memory,
            sbatch_options,
            qsub_options,
            site: site.clone(),
            provenance: origins.0,
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

    /// How much longer than asked the job runs, so that `jrps extend` can
    /// move the session's end: the partition's `extend_max`, within its
    /// `max_time`. The session ends at the time asked all the same.
    pub fn headroom_s(&self) -> u64 {
        let Some(extend_max) = &self.partition.extend_max else {
            return 0;
        };
        let room = self.partition.max_time.as_ref().map_or(u64::MAX, |max| {
            max.value.seconds().saturating_sub(self.time.seconds())
        });
        extend_max.value.seconds().min(room)
    }

    /// The time the job is submitted with: what was asked, plus headroom.
    pub fn job_time(&self) -> WallTime {
        WallTime::from_seconds(self.time.seconds() + self.headroom_s()).unwrap_or(self.time)
    }

    /// What the job's end watch and the page inside Jupyter need.
    pub fn time_plan(&self) -> crate::session_dir::TimePlan {
        let (warn_before, save_before) = self.site.walltime_notice(&self.partition);
        crate::session_dir::TimePlan {
            headroom_s: self.headroom_s(),
            warn_before,
            save_before,
        }
    }
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
