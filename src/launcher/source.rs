//! Where a configuration value came from. Every resolved value carries one so
//! that errors and `jrps profiles show` can name the file and line, the
//! `JRPS_*` variable or the flag that set it.

use std::fmt;
use std::path::PathBuf;

use serde::Serialize;

/// The configuration layers of docs/design.md that hold files, lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Layer {
    BuiltIn,
    Site,
    User,
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Layer::BuiltIn => "built-in",
            Layer::Site => "site",
            Layer::User => "user",
        })
    }
}

/// The origin of one value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A file of a layer (boxed: errors carry sources, and stay small).
    File(Box<FileSource>),
    /// A `JRPS_*` environment variable.
    Env(Box<str>),
    /// A command-line flag, named by its long form (`--time`).
    Flag(Box<str>),
    /// A positional command-line argument (the profile name).
    Argument(&'static str),
    /// jrps's built-in site defaults (no `site.toml` sets this).
    BuiltInSite,
    /// A default in jrps's code.
    Default,
}

/// A place in a configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSource {
    pub layer: Layer,
    /// For built-in files the repository-relative path of the embedded file,
    /// otherwise the path read.
    pub path: PathBuf,
    /// 1-based.
    pub line: Option<usize>,
}

impl Source {
    pub fn file(layer: Layer, path: impl Into<PathBuf>, line: Option<usize>) -> Source {
        Source::File(Box::new(FileSource {
            layer,
            path: path.into(),
            line,
        }))
    }

    /// Whether the value was chosen by someone rather than by jrps's code.
    pub fn is_explicit(&self) -> bool {
        !matches!(self, Source::Default | Source::BuiltInSite)
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::File(file) => {
                let FileSource { layer, path, line } = &**file;
                if *layer == Layer::BuiltIn {
                    f.write_str("built-in ")?;
                }
                write!(f, "{}", path.display())?;
                if let Some(line) = line {
                    write!(f, ":{line}")?;
                }
                Ok(())
            }
            Source::Env(var) => write!(f, "environment variable {var}"),
            Source::Flag(flag) => write!(f, "flag {flag}"),
            Source::Argument(name) => write!(f, "argument {name}"),
            Source::BuiltInSite => f.write_str("built-in site defaults"),
            Source::Default => f.write_str("default"),
        }
    }
}

/// A value and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sourced<T> {
    pub value: T,
    pub source: Source,
}

impl<T> Sourced<T> {
    pub fn new(value: T, source: Source) -> Sourced<T> {
        Sourced { value, source }
    }
}

/// 1-based line number of a byte offset in `text`.
pub fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}
