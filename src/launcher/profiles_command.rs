//! `jrps profiles`: list the visible profiles, `show` one with the source of
//! every value, `check` them all (sites run it in CI).

use std::io::Write;

use serde::Serialize;

use crate::launcher::config::Config;
use crate::launcher::environment::Environment;
use crate::launcher::launch_fields::LaunchRequest;
use crate::launcher::launch_spec::LaunchSpec;
use crate::launcher::launcher_error::LauncherError;
use crate::launcher::source::Layer;

#[derive(Debug, Serialize)]
struct Listed {
    name: String,
    layer: Layer,
    path: String,
    description: Option<String>,
    /// Shown instead of the description when the file does not parse.
    error: Option<String>,
}

/// What `jrps profiles` was asked to do.
#[derive(Debug, Clone)]
pub enum ProfilesAction {
    List {
        json: bool,
    },
    /// Resolve as `up` would, and say where each value came from.
    Show(Box<LaunchRequest>),
    Check,
}

pub fn run(action: ProfilesAction, env: &Environment) -> Result<(), LauncherError> {
    let config = Config::load(env)?;
    let mut out = String::new();
    let result = match action {
        ProfilesAction::List { json } => list(&config, json, &mut out),
        ProfilesAction::Show(launch) => show(&config, env, &launch, &mut out),
        ProfilesAction::Check => check(&config, env, &mut out),
    };
    // Check prints its report even when it fails.
    std::io::stdout()
        .lock()
        .write_all(out.as_bytes())
        .map_err(LauncherError::Output)?;
    result
}

fn list(config: &Config, json: bool, out: &mut String) -> Result<(), LauncherError> {
    let listed: Vec<Listed> = config
        .profiles
        .visible()
        .map(|file| {
            let (description, error) = match file.parse() {
                Ok(p) => (p.description, None),
                Err(e) => (None, Some(e.to_string())),
            };
            Listed {
                name: file.name.clone(),
                layer: file.layer,
                path: file.path.display().to_string(),
                description,
                error,
            }
        })
        .collect();
    if json {
        // Serialising plain strings and enums cannot fail.
        out.push_str(&serde_json::to_string_pretty(&listed).unwrap_or_default());
        out.push('\n');
        return Ok(());
    }
    let width = listed
        .iter()
        .map(|l| l.name.len())
        .max()
        .unwrap_or(4)
        .max(4);
    out.push_str(&format!(
        "{:<width$}  {:<8}  DESCRIPTION\n",
        "NAME", "LAYER"
    ));
    for l in &listed {
        let text = match (&l.description, &l.error) {
            (_, Some(_)) => "(has a problem: run `jrps profiles check`)".to_string(),
            (Some(d), None) => d.clone(),
            (None, None) => String::new(),
        };
        let row = format!("{:<width$}  {:<8}  {text}", l.name, l.layer.to_string());
        out.push_str(row.trim_end());
        out.push('\n');
    }
    Ok(())
}

fn show(
    config: &Config,
    env: &Environment,
    launch: &LaunchRequest,
    out: &mut String,
) -> Result<(), LauncherError> {
    let resolved = config.settings_for(env, launch)?;
    let spec = LaunchSpec::from_resolved(&resolved, config)?;
    let chain: Vec<String> = resolved
        .chain
        .iter()
        .map(|p| format!("{} ({} {})", p.name, p.layer, p.path.display()))
        .collect();
    out.push_str(&format!("profile: {}\n", chain.join(" extends ")));
    let site = match &config.site.path {
        Some(path) => path.display().to_string(),
        None => format!(
            "built-in defaults (no {})",
            config.site_dir.join("site.toml").display()
        ),
    };
    out.push_str(&format!("site:    {site}\n\n"));
    let rows: Vec<(String, String, String)> = spec
        .provenance
        .iter()
        .map(|f| (f.field.to_string(), f.value.clone(), f.source.to_string()))
        .collect();
    let w1 = rows.iter().map(|r| r.0.len()).max().unwrap_or(5).max(5);
    let w2 = rows.iter().map(|r| r.1.len()).max().unwrap_or(5).max(5);
    out.push_str(&format!("{:<w1$}  {:<w2$}  SOURCE\n", "FIELD", "VALUE"));
    for (field, value, source) in rows {
        out.push_str(&format!("{field:<w1$}  {value:<w2$}  {source}\n"));
    }
    Ok(())
}

fn check(config: &Config, env: &Environment, out: &mut String) -> Result<(), LauncherError> {
    let mut failed = 0;
    let mut total = 0;
    for file in config.profiles.visible() {
        total += 1;
        let launch = LaunchRequest {
            profile: Some(file.name.clone()),
            ..LaunchRequest::default()
        };
        let outcome = config
            .settings_for(env, &launch)
            .and_then(|resolved| LaunchSpec::from_resolved(&resolved, config))
            .and_then(|spec| crate::launcher::batch_template::script(&spec));
        match outcome {
            Ok(_) => out.push_str(&format!(
                "ok    {} ({} {})\n",
                file.name,
                file.layer,
                file.path.display()
            )),
            Err(e) => {
                failed += 1;
                out.push_str(&format!(
                    "FAIL  {} ({} {})\n",
                    file.name,
                    file.layer,
                    file.path.display()
                ));
                let mut cause: Option<&dyn std::error::Error> = Some(&e);
                while let Some(c) = cause {
                    out.push_str(&format!("      {c}\n"));
                    cause = c.source();
                }
                if let Some(hint) = e.hint() {
                    out.push_str(&format!("      hint: {hint}\n"));
                }
            }
        }
    }
    if failed > 0 {
        return Err(LauncherError::CheckFailed { failed, total });
    }
    Ok(())
}
