//! The user's jrps directories, by the XDG base-directory spec, all named
//! here: configuration in `$XDG_CONFIG_HOME/jrps` (default `~/.config/jrps`),
//! state in `$XDG_STATE_HOME/jrps` (default `~/.local/state/jrps`) with one
//! folder per session, the job logs, and the `local` scheduler's job records.
//! Variables set but empty count as unset, as the spec says.

use std::path::{Path, PathBuf};

/// Neither `XDG_STATE_HOME` nor `HOME`: no place for jrps's state.
#[derive(Debug, thiserror::Error)]
#[error("neither XDG_STATE_HOME nor HOME is set, so jrps has nowhere to keep its sessions")]
pub struct NoStateHome;

/// `$XDG_CONFIG_HOME/jrps`, else `$HOME/.config/jrps`; none without either.
pub fn config_dir<'a>(var: impl Fn(&str) -> Option<&'a str>) -> Option<PathBuf> {
    xdg_base(var, "XDG_CONFIG_HOME", ".config").map(|d| d.join("jrps"))
}

fn xdg_base<'a>(
    var: impl Fn(&str) -> Option<&'a str>,
    name: &str,
    under_home: &str,
) -> Option<PathBuf> {
    let set = |name: &str| var(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    set(name).or_else(|| set("HOME").map(|home| home.join(under_home)))
}

/// `$XDG_STATE_HOME/jrps` and what jrps keeps there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateDirs {
    root: PathBuf,
}

impl StateDirs {
    pub fn locate<'a>(var: impl Fn(&str) -> Option<&'a str>) -> Result<StateDirs, NoStateHome> {
        xdg_base(var, "XDG_STATE_HOME", ".local/state")
            .map(|base| StateDirs {
                root: base.join("jrps"),
            })
            .ok_or(NoStateHome)
    }

    /// One folder per session (`sessions/<alias>`).
    pub fn sessions(&self) -> PathBuf {
        self.root.join("sessions")
    }

    /// A session's job log: outside its session folder, so that it outlives
    /// a failed or ended session.
    pub fn log(&self, alias: &str) -> PathBuf {
        self.root.join("logs").join(format!("{alias}.log"))
    }

    /// Where the `local` scheduler keeps its job records.
    pub fn local_jobs(&self) -> PathBuf {
        self.root.join("local-jobs")
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xdg_variables_win_and_empty_ones_count_as_unset() {
        let vars = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| *v)
        };
        assert_eq!(
            config_dir(vars(&[("XDG_CONFIG_HOME", "/x"), ("HOME", "/h")])),
            Some(PathBuf::from("/x/jrps"))
        );
        assert_eq!(
            config_dir(vars(&[("XDG_CONFIG_HOME", ""), ("HOME", "/h")])),
            Some(PathBuf::from("/h/.config/jrps"))
        );
        assert_eq!(config_dir(vars(&[])), None);
        let state = StateDirs::locate(vars(&[("HOME", "/h")])).unwrap();
        assert_eq!(
            state.log("a-b-c"),
            PathBuf::from("/h/.local/state/jrps/logs/a-b-c.log")
        );
        assert!(StateDirs::locate(vars(&[("HOME", "")])).is_err());
    }
}
