//! Several clusters behind one site (`[clusters.NAME]` in `site.toml`): what
//! differs between them (the scheduler and what finds it, partitions,
//! templates, how nodes are reached), and which one a launch is for: the
//! one named (`--cluster`, a profile's `cluster`), else the one whose
//! `hosts` patterns match this login node, else the only one.
//!
//! A chosen cluster is applied as a view of the site (`SiteConfig::for_cluster`),
//! so everything after it reads `site.scheduler` and `site.partitions` as
//! on a site with one cluster.

use crate::launcher::launcher_error::{LauncherError, did_you_mean};
use crate::launcher::site_config::{Cluster, SiteConfig};
use crate::launcher::source::Sourced;

impl SiteConfig {
    /// The site as seen by a launch on one of its clusters. A site without
    /// `[clusters]` is itself, and names none.
    pub fn for_cluster(
        &self,
        wanted: Option<&Sourced<String>>,
        this_host: &str,
    ) -> Result<SiteConfig, LauncherError> {
        if self.clusters.is_empty() {
            return match wanted {
                Some(wanted) => Err(LauncherError::Invalid {
                    field: "cluster".into(),
                    value: wanted.value.clone(),
                    origin: wanted.source.clone(),
                    problem: "this site has one cluster, with no name".into(),
                    allowed: "no cluster (site.toml has no [clusters] tables)".into(),
                }),
                None => Ok(self.clone()),
            };
        }
        let names = || self.clusters.keys().map(String::as_str);
        let cluster = match wanted {
            Some(wanted) => self.clusters.get(&wanted.value).ok_or_else(|| {
                let mut allowed = format!(
                    "the site's clusters: {}",
                    names().collect::<Vec<_>>().join(", ")
                );
                if let Some(guess) = did_you_mean(&wanted.value, names()) {
                    allowed = format!("{allowed} (did you mean `{guess}`?)");
                }
                LauncherError::Invalid {
                    field: "cluster".into(),
                    value: wanted.value.clone(),
                    origin: wanted.source.clone(),
                    problem: "the site does not define this cluster".into(),
                    allowed,
                }
            })?,
            None => {
                let by_host: Vec<&Cluster> = self
                    .clusters
                    .values()
                    .filter(|c| c.hosts.iter().any(|p| names_host(p, this_host)))
                    .collect();
                match (by_host.as_slice(), self.clusters.len()) {
                    ([one], _) => one,
                    ([], 1) => self.clusters.values().next().expect("one cluster"),
                    _ => {
                        return Err(LauncherError::Missing {
                            field: "cluster",
                            required_by: self.source(),
                            how: format!(
                                "this login node ({this_host}) is not in one cluster's `hosts`; \
                                 pass --cluster NAME, one of: {}",
                                names().collect::<Vec<_>>().join(", ")
                            ),
                        });
                    }
                }
            }
        };
        let mut view = self.clone();
        view.cluster = Some(cluster.name.clone());
        view.scheduler = cluster.scheduler;
        view.scheduler_env = cluster.env.clone();
        view.partitions = cluster.partitions.clone();
        view.batch_dirs = cluster
            .batch_dirs
            .iter()
            .chain(&self.batch_dirs)
            .cloned()
            .collect();
        if let Some(timeout) = cluster.scheduler_timeout {
            view.scheduler_timeout = timeout;
        }
        if let Some(pe) = &cluster.parallel_environment {
            view.parallel_environment = pe.clone();
        }
        if let Some(interface) = &cluster.node_interface {
            view.node_interface = Some(interface.clone());
        }
        if let Some(requeue) = cluster.requeue {
            view.requeue = requeue;
        }
        Ok(view)
    }
}

/// Whether a `hosts` pattern means `host`: its full name or its short one
/// (before the first dot), in any case.
fn names_host(pattern: &str, host: &str) -> bool {
    let pattern = pattern.to_ascii_lowercase();
    let host = host.to_ascii_lowercase();
    let short = host.split('.').next().unwrap_or_default();
    host_matches(&pattern, &host) || host_matches(&pattern, short)
}

/// This machine's host name, as the kernel has it.
pub fn this_host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_owned())
        .unwrap_or_default()
}

/// `pattern` with `*` for any run of characters, against the whole name.
fn host_matches(pattern: &str, host: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = host.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::{host_matches, names_host};

    #[test]
    fn host_patterns() {
        assert!(host_matches("login1", "login1"));
        assert!(!host_matches("login1", "login12"));
        assert!(host_matches("login*", "login12"));
        assert!(host_matches("*-a", "login-a"));
        assert!(!host_matches("*-a", "login-b"));
        assert!(host_matches("l*n*-a", "login-a"));
        assert!(host_matches("*", "anything"));
        assert!(!host_matches("gpu*", "login"));
        assert!(names_host("login1", "Login1.cluster.example.org"));
        assert!(names_host(
            "*.cluster.example.org",
            "login1.cluster.example.org"
        ));
        assert!(!names_host("login2", "login1.cluster"));
    }
}
