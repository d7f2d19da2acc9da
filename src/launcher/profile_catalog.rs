//! Every profile file of every layer: the built-in ones embedded from the
//! repository's `profiles/`, the site's and the user's `profiles/*.toml`. A
//! name in a higher layer hides the same name below. Files are parsed when a
//! profile is used, so one broken file only breaks the profiles that need it
//! (and `jrps profiles check`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::launcher::launcher_error::{LauncherError, did_you_mean};
use crate::launcher::layers::{LaunchTable, Layers};
use crate::launcher::site_config::{is_simple_name, toml_error};
use crate::launcher::source::{Layer, Source, Sourced};

/// The profiles shipped in the binary, as (name, repository path, text).
const BUILT_IN: &[(&str, &str, &str)] = &[
    (
        "debug",
        "profiles/debug.toml",
        include_str!("../../profiles/debug.toml"),
    ),
    (
        "default",
        "profiles/default.toml",
        include_str!("../../profiles/default.toml"),
    ),
    (
        "gpu-pytorch",
        "profiles/gpu-pytorch.toml",
        include_str!("../../profiles/gpu-pytorch.toml"),
    ),
    (
        "gpu-tensorflow",
        "profiles/gpu-tensorflow.toml",
        include_str!("../../profiles/gpu-tensorflow.toml"),
    ),
    (
        "notebook",
        "profiles/notebook.toml",
        include_str!("../../profiles/notebook.toml"),
    ),
];

/// One profile file, not yet parsed.
#[derive(Debug, Clone)]
pub struct ProfileFile {
    pub name: String,
    pub layer: Layer,
    pub path: PathBuf,
    pub text: String,
}

/// A parsed profile file.
#[derive(Debug, Clone)]
pub struct Profile {
    pub name: String,
    pub layer: Layer,
    pub path: PathBuf,
    pub description: Option<String>,
    pub extends: Option<Sourced<String>>,
    /// The file's values, each from its line.
    pub layers: Layers,
}

impl ProfileFile {
    pub fn source(&self) -> Source {
        Source::file(self.layer, &self.path, None)
    }

    pub fn parse(&self) -> Result<Profile, LauncherError> {
        let table: LaunchTable = toml::from_str(&self.text)
            .map_err(|e| toml_error(&e, &self.text, self.layer, &self.path))?;
        let (layers, extends) = Layers::from_table(table, &self.text, self.layer, &self.path)?;
        Ok(Profile {
            name: self.name.clone(),
            layer: self.layer,
            path: self.path.clone(),
            description: layers.extract()?.description,
            extends,
            layers,
        })
    }
}

#[derive(Debug, Clone, Default)]
pub struct ProfileCatalog {
    /// By name, lowest layer first.
    files: BTreeMap<String, Vec<ProfileFile>>,
}

impl ProfileCatalog {
    /// The built-in profiles, then `site_dir/profiles`, then `user_dir/profiles`.
    pub fn load(site_dir: &Path, user_dir: Option<&Path>) -> Result<ProfileCatalog, LauncherError> {
        let mut catalog = ProfileCatalog::default();
        for (name, path, text) in BUILT_IN {
            catalog.add(ProfileFile {
                name: name.to_string(),
                layer: Layer::BuiltIn,
                path: PathBuf::from(path),
                text: text.to_string(),
            });
        }
        catalog.add_dir(Layer::Site, &site_dir.join("profiles"))?;
        if let Some(user_dir) = user_dir {
            catalog.add_dir(Layer::User, &user_dir.join("profiles"))?;
        }
        Ok(catalog)
    }

    fn add(&mut self, file: ProfileFile) {
        self.files.entry(file.name.clone()).or_default().push(file);
    }

    fn add_dir(&mut self, layer: Layer, dir: &Path) -> Result<(), LauncherError> {
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(source) => {
                return Err(LauncherError::Read {
                    path: dir.to_path_buf(),
                    source,
                });
            }
        };
        let mut paths: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        // read_dir order is arbitrary; listings and checks must be stable.
        paths.sort();
        for path in paths {
            let name = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            if !is_simple_name(&name) {
                return Err(LauncherError::Invalid {
                    field: "profile name".into(),
                    value: name,
                    origin: Source::file(layer, &path, None),
                    problem: "profile file names are profile names".into(),
                    allowed: "letters, digits, `-`, `_` and `.` before `.toml`".into(),
                });
            }
            let text = std::fs::read_to_string(&path).map_err(|source| LauncherError::Read {
                path: path.clone(),
                source,
            })?;
            self.add(ProfileFile {
                name,
                layer,
                path,
                text,
            });
        }
        Ok(())
    }

    /// The file a name resolves to: the one in the highest layer.
    pub fn visible(&self) -> impl Iterator<Item = &ProfileFile> {
        self.files.values().filter_map(|files| files.last())
    }

    pub fn names(&self) -> Vec<String> {
        self.files.keys().cloned().collect()
    }

    /// The visible file called `name`; `below` restricts the search to layers
    /// lower than it (so a profile may extend the one it hides).
    pub fn get(&self, name: &str, below: Option<Layer>) -> Option<&ProfileFile> {
        self.files
            .get(name)?
            .iter()
            .rev()
            .find(|f| below.is_none_or(|layer| f.layer < layer))
    }

    pub fn unknown(&self, name: &str, origin: Option<Source>) -> LauncherError {
        let available = self.names();
        LauncherError::UnknownProfile {
            name: name.to_string(),
            origin,
            suggestion: did_you_mean(name, available.iter().map(String::as_str)),
            available,
        }
    }

    /// The chain `name`, its parent, ... ending at a profile with no `extends`,
    /// child first. A profile that extends its own name means the same name in
    /// a lower layer.
    pub fn chain(&self, name: &str, origin: Option<Source>) -> Result<Vec<Profile>, LauncherError> {
        let first = self
            .get(name, None)
            .ok_or_else(|| self.unknown(name, origin))?;
        let mut chain: Vec<Profile> = Vec::new();
        let mut seen: Vec<(String, Layer)> = Vec::new();
        let mut file = first;
        loop {
            let profile = file.parse().map_err(|e| LauncherError::BrokenProfile {
                name: file.name.clone(),
                source: Box::new(e),
            })?;
            seen.push((file.name.clone(), file.layer));
            let next = profile.extends.clone();
            chain.push(profile);
            let Some(parent) = next else { break };
            let below = (parent.value == file.name).then_some(file.layer);
            let next_file = self
                .get(&parent.value, below)
                .ok_or_else(|| self.unknown(&parent.value, Some(parent.source.clone())))?;
            if seen
                .iter()
                .any(|(n, l)| *n == next_file.name && *l == next_file.layer)
            {
                let mut names: Vec<String> = seen.iter().map(|(n, _)| n.clone()).collect();
                names.push(next_file.name.clone());
                return Err(LauncherError::ExtendsCycle { chain: names });
            }
            file = next_file;
        }
        Ok(chain)
    }
}
