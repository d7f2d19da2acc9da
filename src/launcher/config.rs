//! All configuration files read for one run, and the one function that
//! stacks the layers for a launch (`Config::settings_for`).

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::env_vars;
use crate::launcher::environment::Environment;
use crate::launcher::launch_fields::{LaunchFields, LaunchRequest};
use crate::launcher::launcher_error::LauncherError;
use crate::launcher::layers::{LaunchTable, Layers};
use crate::launcher::profile_catalog::{Profile, ProfileCatalog};
use crate::launcher::site_config::{SiteConfig, no_extends_in_defaults, toml_error};
use crate::launcher::source::{Layer, Source, Sourced};

#[derive(Debug, Clone)]
pub struct Config {
    /// Where jrps runs: relative paths in launch fields start here.
    pub cwd: Option<PathBuf>,
    pub site_dir: PathBuf,
    pub user_dir: Option<PathBuf>,
    pub site: SiteConfig,
    /// The `[defaults]` table of the user's `config.toml`.
    pub user_defaults: Layers,
    pub profiles: ProfileCatalog,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UserFile {
    defaults: Option<LaunchTable>,
}

/// The profile chosen for a launch and the layered settings for it.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub profile: Sourced<String>,
    /// The profile and the profiles it extends, child first.
    pub chain: Vec<Profile>,
    /// Every layer merged, for the source of each value.
    pub layers: Layers,
    /// The merged values.
    pub fields: LaunchFields,
}

impl Resolved {
    /// The value of `key` (as `LaunchFields` names it) with its source;
    /// through [`field!`], which takes both from the field's name.
    pub fn sourced<T: Clone>(&self, key: &str, value: &Option<T>) -> Option<Sourced<T>> {
        value
            .clone()
            .map(|value| Sourced::new(value, self.layers.source_of(key)))
    }
}

/// One launch field as the layers resolved it: its key and its value with
/// where the value came from, taken together from the field's name by
/// [`field!`], so that a key cannot name another field's source.
#[derive(Debug, Clone)]
pub struct Field<T> {
    pub key: &'static str,
    pub value: Option<Sourced<T>>,
}

impl<T> Field<T> {
    /// The same field with its value converted (`TimeText` to its text).
    pub fn map<U>(self, convert: impl FnOnce(T) -> U) -> Field<U> {
        Field {
            key: self.key,
            value: self
                .value
                .map(|sourced| Sourced::new(convert(sourced.value), sourced.source)),
        }
    }
}

/// `field!(resolved, time)`: the field `time` of `resolved`, keyed `"time"`.
macro_rules! field {
    ($resolved:expr, $name:ident) => {
        $crate::launcher::config::Field {
            key: stringify!($name),
            value: $resolved.sourced(stringify!($name), &$resolved.fields.$name),
        }
    };
}
pub(crate) use field;

impl Config {
    /// Reads the site and user files named by `env` (`JRPS_SITE_DIR`, `XDG_CONFIG_HOME`, `HOME`).
    pub fn load(env: &Environment) -> Result<Config, LauncherError> {
        let site_dir = env.site_dir();
        let user_dir = env.user_dir();
        let site = SiteConfig::load(&site_dir)?;
        let user_defaults = match &user_dir {
            Some(dir) => load_user_defaults(&dir.join("config.toml"))?,
            None => Layers::default(),
        };
        let profiles = ProfileCatalog::load(&site_dir, user_dir.as_deref())?;
        Ok(Config {
            cwd: env.cwd().map(Path::to_path_buf),
            site_dir,
            user_dir,
            site,
            user_defaults,
            profiles,
        })
    }

    /// Stacks the layers for one launch. Lowest first, each field taken from
    /// the highest layer that sets it (`env` by variable name):
    ///
    /// 1. jrps's defaults (`LaunchFields::defaults`);
    /// 2. the site's `[defaults]` in `site.toml`;
    /// 3. the user's `[defaults]` in `config.toml`;
    /// 4. the profile: built-in, site or user file of that name, the highest
    ///    layer's file winning whole, over the profiles it `extends`;
    /// 5. `JRPS_*` environment variables;
    /// 6. command-line flags.
    ///
    /// `[defaults]` sit below profiles because a profile is the more specific
    /// choice. The profile is the positional argument, else `JRPS_PROFILE`,
    /// else `default`.
    pub fn settings_for(
        &self,
        env: &Environment,
        request: &LaunchRequest,
    ) -> Result<Resolved, LauncherError> {
        let profile = match (
            &request.profile,
            env.get(env_vars::PROFILE).filter(|p| !p.is_empty()),
        ) {
            (Some(name), _) => Sourced::new(name.clone(), Source::Argument("PROFILE")),
            (None, Some(name)) => {
                Sourced::new(name.to_string(), Source::Env(env_vars::PROFILE.into()))
            }
            (None, None) => Sourced::new("default".to_string(), Source::Default),
        };
        let origin = profile.source.is_explicit().then(|| profile.source.clone());
        let chain = self.profiles.chain(&profile.value, origin)?;
        let mut layers = self
            .user_defaults
            .clone()
            .over(self.site.defaults.clone().over(Layers::defaults()));
        for link in chain.iter().rev() {
            layers = link.layers.clone().over(layers);
        }
        let layers = Layers::from_flags(&request.flags).over(Layers::from_env(env)?.over(layers));
        let fields = layers.extract()?;
        Ok(Resolved {
            profile,
            chain,
            layers,
            fields,
        })
    }
}

fn load_user_defaults(path: &Path) -> Result<Layers, LauncherError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Layers::default()),
        Err(source) => {
            return Err(LauncherError::Read {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    let file: UserFile =
        toml::from_str(&text).map_err(|e| toml_error(&e, &text, Layer::User, path))?;
    let Some(table) = file.defaults else {
        return Ok(Layers::default());
    };
    let (layers, extends) = Layers::from_table(table, &text, Layer::User, path)?;
    if let Some(extends) = &extends {
        return Err(no_extends_in_defaults(extends));
    }
    Ok(layers)
}
