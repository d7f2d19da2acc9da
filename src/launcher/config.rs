//! All configuration files read for one run, and the one function that
//! stacks the layers for a launch (`Config::settings_for`).

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::cli::LaunchArgs;
use crate::env_vars;
use crate::launcher::environment::Environment;
use crate::launcher::launcher_error::LauncherError;
use crate::launcher::profile_catalog::{Profile, ProfileCatalog};
use crate::launcher::settings::{FileSettings, Settings, SettingsTable};
use crate::launcher::site_config::{SiteConfig, no_extends_in_defaults, toml_error};
use crate::launcher::source::{Layer, Source, Sourced};

#[derive(Debug, Clone)]
pub struct Config {
    pub site_dir: PathBuf,
    pub user_dir: Option<PathBuf>,
    pub site: SiteConfig,
    /// The `[defaults]` table of the user's `config.toml`.
    pub user_defaults: Settings,
    pub profiles: ProfileCatalog,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UserFile {
    defaults: Option<SettingsTable>,
}

/// The profile chosen for a launch and the layered settings for it.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub profile: Sourced<String>,
    /// The profile and the profiles it extends, child first.
    pub chain: Vec<Profile>,
    pub settings: Settings,
}

impl Config {
    /// Reads the site and user files named by `env` (`JRPS_SITE_DIR`, `XDG_CONFIG_HOME`, `HOME`).
    pub fn load(env: &Environment) -> Result<Config, LauncherError> {
        let site_dir = env.site_dir();
        let user_dir = env.user_dir();
        let site = SiteConfig::load(&site_dir)?;
        let user_defaults = match &user_dir {
            Some(dir) => load_user_defaults(&dir.join("config.toml"))?,
            None => Settings::default(),
        };
        let profiles = ProfileCatalog::load(&site_dir, user_dir.as_deref())?;
        Ok(Config {
            site_dir,
            user_dir,
            site,
            user_defaults,
            profiles,
        })
    }

    /// Stacks the layers for one launch. Lowest first, each field taken from
    /// the highest layer that sets it:
    ///
    /// 1. jrps's defaults (`Settings::defaults`);
    /// 2. the site's `[defaults]` in `site.toml`;
    /// 3. the user's `[defaults]` in `config.toml`;
    /// 4. the profile: built-in, site or user file of that name, the highest
    ///    layer's file winning, over the profiles it `extends`;
    /// 5. `JRPS_*` environment variables;
    /// 6. command-line flags.
    ///
    /// `[defaults]` sit below profiles because a profile is the more specific
    /// choice; the file layers themselves keep DESIGN.md's order
    /// (built-in < site < user) wherever two of them define the same thing.
    /// The profile is the positional argument, else `JRPS_PROFILE`, else `default`.
    pub fn settings_for(
        &self,
        env: &Environment,
        flags: &LaunchArgs,
    ) -> Result<Resolved, LauncherError> {
        let profile = match (
            &flags.profile,
            env.get(env_vars::PROFILE).filter(|p| !p.is_empty()),
        ) {
            (Some(name), _) => Sourced::new(name.clone(), Source::Argument("PROFILE")),
            (None, Some(name)) => Sourced::new(name.to_string(), Source::Env(env_vars::PROFILE)),
            (None, None) => Sourced::new("default".to_string(), Source::Default),
        };
        let origin = profile.source.is_explicit().then(|| profile.source.clone());
        let chain = self.profiles.chain(&profile.value, origin)?;
        let mut settings = Settings::defaults()
            .over_ref(&self.site.defaults.settings)
            .over_ref(&self.user_defaults);
        for link in chain.iter().rev() {
            settings = link.settings.clone().over(settings);
        }
        let settings = Settings::from_flags(flags).over(Settings::from_env(env)?.over(settings));
        Ok(Resolved {
            profile,
            chain,
            settings,
        })
    }
}

impl Settings {
    fn over_ref(self, higher: &Settings) -> Settings {
        higher.clone().over(self)
    }
}

fn load_user_defaults(path: &Path) -> Result<Settings, LauncherError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Settings::default()),
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
        return Ok(Settings::default());
    };
    let FileSettings { settings, extends } = table.into_settings(&text, Layer::User, path);
    if let Some(extends) = &extends {
        return Err(no_extends_in_defaults(extends));
    }
    Ok(settings)
}
