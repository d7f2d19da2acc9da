//! The configuration layers, merged with figment. Each value enters through a
//! provider of its own whose metadata names its `Source` (`path:line`, a
//! `JRPS_*` variable, a flag, a default); figment keeps that tag through every
//! merge, so the merged figment can say where each value came from and its
//! errors name the value's origin. Which profile file is used, and the
//! `extends` chain, are decided in `Config` before merging.
//!
//! Sharp edges of figment this avoids: providers put their data in
//! `Profile::Default` (a `Global` value would beat every layer); the `JRPS_*`
//! layer reads the variables itself (figment's `Env` parses `1234` into an
//! integer and cannot tell empty from unset); each layer is extracted on its
//! own as well as merged, because a bad value that a higher layer overrides
//! would otherwise never be looked at.

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::path::Path;

use figment::error::{Actual, Kind};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};
use serde::Deserialize;
use toml::Spanned;

use crate::env_vars;
use crate::launcher::environment::Environment;
use crate::launcher::launch_fields::LaunchFields;
use crate::launcher::launcher_error::{LauncherError, did_you_mean};
use crate::launcher::source::{Layer, Source, Sourced, line_of};

/// One layer, or several merged: a figment and the `Source` behind each of
/// its metadata names.
#[derive(Debug, Clone, Default)]
pub struct Layers {
    figment: Figment,
    sources: HashMap<String, Source>,
}

/// A provider of exactly one value: `path` is the key, or `env` and a
/// variable name, so that `env` is merged by variable name.
struct OneValue {
    path: Vec<String>,
    value: Value,
    name: String,
}

impl Provider for OneValue {
    fn metadata(&self) -> Metadata {
        Metadata::named(self.name.clone())
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        let mut value = self.value.clone();
        for key in self.path.iter().skip(1).rev() {
            value = Value::from(Dict::from([(key.clone(), value)]));
        }
        let dict = Dict::from([(self.path[0].clone(), value)]);
        Ok(Map::from([(Profile::Default, dict)]))
    }
}

impl Layers {
    fn with(mut self, path: Vec<String>, value: Value, source: Source) -> Layers {
        let name = source.to_string();
        self.figment = self.figment.merge(OneValue {
            path,
            value,
            name: name.clone(),
        });
        self.sources.insert(name, source);
        self
    }

    /// Each set field of `fields` as a value from `source_of(field)`.
    fn from_fields(fields: &LaunchFields, source_of: impl Fn(&str) -> Source) -> Layers {
        let mut layers = Layers::default();
        // A struct of strings, numbers, lists and maps always serialises.
        let Ok(Value::Dict(_, dict)) = Value::serialize(fields) else {
            return layers;
        };
        for (key, value) in dict {
            let source = source_of(&key);
            layers = layers.with(vec![key], value, source);
        }
        layers
    }

    /// jrps's defaults (`LaunchFields::defaults`).
    pub fn defaults() -> Layers {
        Layers::from_fields(&LaunchFields::defaults(), |_| Source::Default)
    }

    /// The flag layer: only flags actually given.
    pub fn from_flags(flags: &LaunchFields) -> Layers {
        Layers::from_fields(flags, |key| {
            let long = LaunchFields::flags().iter().find(|(id, _)| id == key);
            Source::Flag(long.map_or(key, |(_, long)| long.as_str()).into())
        })
    }

    /// The `JRPS_*` layer: `JRPS_<FIELD>` for every field that is a flag,
    /// kept as text (the field's type reads numbers from it). Empty
    /// variables count as unset.
    pub fn from_env(env: &Environment) -> Result<Layers, LauncherError> {
        let mut layers = Layers::default();
        for (field, _) in LaunchFields::flags() {
            let var = env_vars::for_field(field);
            if let Some(value) = env.get(&var).filter(|v| !v.is_empty()) {
                layers = layers.with(
                    vec![field.clone()],
                    Value::from(value),
                    Source::Env(var.into()),
                );
            }
        }
        layers.extract()?;
        Ok(layers)
    }

    /// A launch table of a file (a profile, or a `[defaults]` table); every
    /// value is attributed to `path:line`. `extends` is returned apart: it
    /// chooses layers rather than being one.
    pub fn from_table(
        table: LaunchTable,
        text: &str,
        layer: Layer,
        path: &Path,
    ) -> Result<(Layers, Option<Sourced<String>>), LauncherError> {
        let at = |span: Range<usize>| Source::file(layer, path, Some(line_of(text, span.start)));
        let mut layers = Layers::default();
        let mut extends = None;
        let mut key_lines = HashMap::new();
        for (key, entry) in table.0 {
            let source = at(entry.span());
            key_lines.insert(key.clone(), source.clone());
            let FileValue { value, entries } = entry.into_inner();
            if key == "extends" {
                match value {
                    toml::Value::String(name) => extends = Some(Sourced::new(name, source)),
                    other => {
                        return Err(file_error(
                            &source,
                            text,
                            &format!(
                                "invalid type: {}, expected a profile name",
                                other.type_str()
                            ),
                        ));
                    }
                }
                continue;
            }
            match entries {
                // A table (`env`): one value per entry, each with its line.
                Some(entries) => {
                    for (name, (value, span)) in entries {
                        layers =
                            layers.with(vec![key.clone(), name], figment_value(&value), at(span));
                    }
                }
                None => layers = layers.with(vec![key], figment_value(&value), source),
            }
        }
        let file = FileContext { text, key_lines };
        layers
            .figment
            .extract::<LaunchFields>()
            .map_err(|error| layers.error(error, Some(&file)))?;
        Ok((layers, extends))
    }

    /// `self` over `lower`: field by field the higher layer wins, `env` by
    /// variable name.
    pub fn over(self, lower: Layers) -> Layers {
        let mut sources = lower.sources;
        sources.extend(self.sources);
        Layers {
            figment: lower.figment.merge(self.figment),
            sources,
        }
    }

    /// Where the value at `key` (`time`, `env.NAME`) came from.
    pub fn source_of(&self, key: &str) -> Source {
        self.figment
            .find_metadata(key)
            .and_then(|metadata| self.sources.get(metadata.name.as_ref()))
            .cloned()
            .unwrap_or(Source::Default)
    }

    /// The merged fields; a value of the wrong type is an error naming the
    /// field, its source and what the field takes.
    pub fn extract(&self) -> Result<LaunchFields, LauncherError> {
        self.figment
            .extract::<LaunchFields>()
            .map_err(|error| self.error(error, None))
    }

    fn error(&self, error: figment::Error, file: Option<&FileContext>) -> LauncherError {
        let field = error.path.join(".");
        let source = error
            .metadata
            .as_ref()
            .and_then(|m| self.sources.get(m.name.as_ref()))
            .cloned();
        let (value, problem, allowed) = match error.kind {
            Kind::UnknownField(unknown, fields) => {
                // figment cannot tag a key it holds no value of, so the
                // file's own positions place it.
                let mut names: Vec<&str> = fields.to_vec();
                names.insert(names.len().min(1), "extends");
                let mut message = format!("unknown field `{unknown}`");
                if let Some(guess) = did_you_mean(&unknown, names.iter().copied()) {
                    message.push_str(&format!(" (did you mean `{guess}`?)"));
                }
                message.push_str(&format!("; the fields are: {}", names.join(", ")));
                let location = file.and_then(|f| f.key_lines.get(&unknown).cloned());
                return match (file, location) {
                    (Some(file), Some(location)) => file_error(&location, file.text, &message),
                    _ => LauncherError::ConfigFile {
                        location: source.unwrap_or(Source::Default),
                        message,
                    },
                };
            }
            Kind::InvalidType(actual, expected) => (
                actual_text(&actual),
                format!("invalid type: {}, expected {expected}", describe(&actual)),
                expected,
            ),
            Kind::InvalidValue(actual, expected) => (
                actual_text(&actual),
                format!("invalid value: {}, expected {expected}", describe(&actual)),
                expected,
            ),
            other => (String::new(), other.to_string(), String::new()),
        };
        match (source, file) {
            (Some(location @ Source::File(_)), Some(file)) => {
                file_error(&location, file.text, &problem)
            }
            (Some(location @ Source::File(_)), None) => LauncherError::ConfigFile {
                location,
                message: format!("`{field}`: {problem}"),
            },
            (origin, _) => LauncherError::Invalid {
                field,
                value,
                origin: origin.unwrap_or(Source::Default),
                problem: format!("it is not {allowed}"),
                allowed,
            },
        }
    }
}

/// What an error in a file's layer needs to point into the file.
struct FileContext<'a> {
    text: &'a str,
    key_lines: HashMap<String, Source>,
}

/// The value as a user would have written it.
fn actual_text(actual: &Actual) -> String {
    match actual {
        Actual::Str(s) => s.clone(),
        Actual::Bool(b) => b.to_string(),
        Actual::Signed(n) => n.to_string(),
        Actual::Unsigned(n) => n.to_string(),
        Actual::Float(n) => n.to_string(),
        other => other.to_string(),
    }
}

/// The value in TOML's words (figment's own say `bool true`, `signed int`).
fn describe(actual: &Actual) -> String {
    match actual {
        Actual::Bool(b) => format!("boolean `{b}`"),
        Actual::Signed(n) => format!("integer `{n}`"),
        Actual::Unsigned(n) => format!("integer `{n}`"),
        Actual::Float(n) => format!("float `{n}`"),
        Actual::Str(s) => format!("string {s:?}"),
        Actual::Seq => "array".into(),
        Actual::Map => "table".into(),
        other => other.to_string(),
    }
}

/// A problem at one place of a file, quoting the line (toml's messages and
/// figment's do not always name the key).
fn file_error(location: &Source, text: &str, message: &str) -> LauncherError {
    let excerpt = match location {
        Source::File(file) => file
            .line
            .and_then(|l| text.lines().nth(l - 1))
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(|l| format!("in `{l}`: "))
            .unwrap_or_default(),
        _ => String::new(),
    };
    LauncherError::ConfigFile {
        location: location.clone(),
        message: format!("{excerpt}{message}"),
    }
}

fn figment_value(value: &toml::Value) -> Value {
    // A TOML value is strings, numbers, booleans, dates, arrays and tables,
    // which figment's serializer all takes.
    Value::serialize(value).unwrap_or_else(|_| Value::from(value.to_string()))
}

/// A launch table as written: each key with its value and position, and the
/// position of each entry where the value is itself a table (`env`).
#[derive(Debug, Default, Deserialize)]
#[serde(transparent)]
pub struct LaunchTable(BTreeMap<String, Spanned<FileValue>>);

#[derive(Debug)]
pub struct FileValue {
    value: toml::Value,
    entries: Option<BTreeMap<String, (toml::Value, Range<usize>)>>,
}

impl<'de> Deserialize<'de> for FileValue {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        fn plain(value: toml::Value) -> FileValue {
            FileValue {
                value,
                entries: None,
            }
        }
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = FileValue;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a TOML value")
            }
            fn visit_bool<E>(self, v: bool) -> Result<FileValue, E> {
                Ok(plain(toml::Value::Boolean(v)))
            }
            fn visit_i64<E>(self, v: i64) -> Result<FileValue, E> {
                Ok(plain(toml::Value::Integer(v)))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<FileValue, E> {
                i64::try_from(v)
                    .map(|v| plain(toml::Value::Integer(v)))
                    .map_err(|_| E::custom("integer out of range"))
            }
            fn visit_f64<E>(self, v: f64) -> Result<FileValue, E> {
                Ok(plain(toml::Value::Float(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<FileValue, E> {
                Ok(plain(toml::Value::String(v.to_string())))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<FileValue, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<toml::Value>()? {
                    items.push(item);
                }
                Ok(plain(toml::Value::Array(items)))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<FileValue, A::Error> {
                let mut table = toml::Table::new();
                let mut entries = BTreeMap::new();
                while let Some(key) = map.next_key::<String>()? {
                    let value = map.next_value::<Spanned<toml::Value>>()?;
                    let span = value.span();
                    let value = value.into_inner();
                    table.insert(key.clone(), value.clone());
                    entries.insert(key, (value, span));
                }
                Ok(FileValue {
                    value: toml::Value::Table(table),
                    entries: Some(entries),
                })
            }
        }
        d.deserialize_any(Visitor)
    }
}
