//! The checks `jrps up` makes on the login node before anything is
//! submitted, because a job that fails after an hour in the queue is the
//! worst way to learn of a typo: the folder Jupyter starts in, the image,
//! the Python environment and the `jupyter` command. Clusters share home
//! and project file systems between login and compute nodes, which is what
//! makes a check here mean something there; `--no-check` is for paths only
//! compute nodes see. Each failure names the field, where its value came
//! from and the path that was looked at.

use std::path::{Path, PathBuf};

use rustix::fs::{Access, access};

use crate::launcher::environment::Environment;
use crate::launcher::job_path::JobPath;
use crate::launcher::launch_spec::{CondaEnv, LaunchSpec, PythonEnv};
use crate::launcher::launcher_error::LauncherError;

/// Runs every check for `spec`; the first failure is the error.
pub fn check(spec: &LaunchSpec, env: &Environment) -> Result<(), LauncherError> {
    let home = env.home();
    let dir = dir(spec, home.as_deref())?;
    image(spec, home.as_deref(), &dir)?;
    match &spec.python {
        Some(PythonEnv::Venv(venv)) => venv_jupyter(spec, venv, home.as_deref()),
        Some(PythonEnv::Conda(conda)) => conda_jupyter(spec, env, conda, home.as_deref()),
        None if spec.image.is_none() => site_jupyter(spec, env),
        None => Ok(()),
    }
}

/// `path` on this machine; `field` names it when HOME is needed and unset.
fn here(
    spec: &LaunchSpec,
    path: &JobPath,
    field: &'static str,
    home: Option<&Path>,
) -> Result<PathBuf, LauncherError> {
    path.here(home).ok_or_else(|| {
        failed(
            spec,
            field,
            path.to_string(),
            PathBuf::from("~"),
            "cannot be found: HOME is not set".into(),
        )
    })
}

/// The job's folder exists, and the user may write there.
fn dir(spec: &LaunchSpec, home: Option<&Path>) -> Result<PathBuf, LauncherError> {
    let dir = here(spec, &spec.dir, "dir", home)?;
    if !dir.is_dir() {
        let problem = if dir.exists() {
            "is not a directory"
        } else {
            "does not exist"
        };
        return Err(failed(
            spec,
            "dir",
            spec.dir.to_string(),
            dir,
            problem.into(),
        ));
    }
    if access(&dir, Access::WRITE_OK | Access::EXEC_OK).is_err() {
        return Err(failed(
            spec,
            "dir",
            spec.dir.to_string(),
            dir,
            "is not writable by you".into(),
        ));
    }
    Ok(dir)
}

/// An image file (not a URI) is one the user can read.
fn image(spec: &LaunchSpec, home: Option<&Path>, dir: &Path) -> Result<(), LauncherError> {
    if let (Some(image), Some(path)) = (&spec.image, spec.image_here(home, dir))
        && (!path.is_file() || std::fs::File::open(&path).is_err())
    {
        return Err(failed(
            spec,
            "image",
            image.clone(),
            path,
            "is not a file you can read".into(),
        ));
    }
    Ok(())
}

/// The virtual environment has a Jupyter.
fn venv_jupyter(
    spec: &LaunchSpec,
    venv: &JobPath,
    home: Option<&Path>,
) -> Result<(), LauncherError> {
    let root = here(spec, venv, "venv", home)?;
    let jupyter = root.join("bin/jupyter");
    if !executable(&jupyter) {
        let problem = if root.is_dir() {
            "does not exist: the environment has no Jupyter (pip install jupyterlab in it)"
        } else {
            "does not exist: there is no environment there"
        };
        return Err(failed(
            spec,
            "venv",
            venv.to_string(),
            jupyter,
            problem.into(),
        ));
    }
    Ok(())
}

/// The site's conda is there, and the conda environment has a Jupyter
/// where conda would look for it.
fn conda_jupyter(
    spec: &LaunchSpec,
    env: &Environment,
    conda: &CondaEnv,
    home: Option<&Path>,
) -> Result<(), LauncherError> {
    if let Some(init) = &spec.site.conda_init
        && !Path::new(&init.value).is_file()
    {
        return Err(LauncherError::Preflight {
            field: "conda_init",
            value: init.value.clone(),
            origin: init.source.clone(),
            checked: PathBuf::from(&init.value),
            problem: "does not exist".into(),
        });
    }
    let candidates = match conda {
        CondaEnv::Path(path) => vec![here(spec, path, "conda_env", home)?],
        // Where a name leads is conda's to say; without the
        // installation's root (conda from a module) it is not checked.
        CondaEnv::Name(_) if spec.site.conda_init.is_none() => return Ok(()),
        CondaEnv::Name(name) => conda_env_dirs(spec, env, name),
    };
    if !candidates
        .iter()
        .any(|c| executable(&c.join("bin/jupyter")))
    {
        let checked = candidates
            .first()
            .map_or_else(PathBuf::new, |c| c.join("bin/jupyter"));
        let looked: Vec<String> = candidates
            .iter()
            .map(|c| c.join("bin/jupyter").display().to_string())
            .collect();
        return Err(failed(
            spec,
            "conda_env",
            conda.to_string(),
            checked,
            match looked.as_slice() {
                [_] => "does not exist".to_string(),
                [_, rest @ ..] => format!("does not exist, nor in {}", rest.join(" or ")),
                [] => "cannot be found without conda_init or HOME".to_string(),
            },
        ));
    }
    Ok(())
}

/// The site's Jupyter, when the session uses it. A bare name may come from
/// a module the job loads, which this shell has not: only a path, or a
/// name with no modules, is checked.
fn site_jupyter(spec: &LaunchSpec, env: &Environment) -> Result<(), LauncherError> {
    let jupyter = &spec.site.jupyter;
    let found = if jupyter.contains('/') {
        Some(PathBuf::from(jupyter)).filter(|p| executable(p))
    } else if spec.modules.is_empty() {
        env.search_path()
            .into_iter()
            .map(|dir| dir.join(jupyter))
            .find(|p| executable(p))
    } else {
        return Ok(());
    };
    if found.is_none() {
        return Err(LauncherError::Preflight {
            field: "jupyter",
            value: jupyter.clone(),
            origin: spec.site.source(),
            checked: PathBuf::from(jupyter),
            problem: if jupyter.contains('/') {
                "is not an executable file".into()
            } else {
                "is not a command on PATH".into()
            },
        });
    }
    Ok(())
}

/// Where `conda activate NAME` may find NAME, in conda's order:
/// `$CONDA_ENVS_PATH`, the `envs` of the installation that `conda_init`
/// belongs to (`<root>/etc/profile.d/conda.sh`), the user's `~/.conda/envs`;
/// `base` is the installation itself.
fn conda_env_dirs(spec: &LaunchSpec, env: &Environment, name: &str) -> Vec<PathBuf> {
    let root = spec
        .site
        .conda_init
        .as_ref()
        .and_then(|init| Path::new(&init.value).ancestors().nth(3));
    if name == "base" {
        return root.map(Path::to_path_buf).into_iter().collect();
    }
    let mut dirs: Vec<PathBuf> = env
        .get("CONDA_ENVS_PATH")
        .map(|p| std::env::split_paths(p).collect())
        .unwrap_or_default();
    dirs.extend(root.map(|root| root.join("envs")));
    dirs.extend(env.home().map(|home| home.join(".conda/envs")));
    dirs.into_iter().map(|dir| dir.join(name)).collect()
}

fn executable(path: &Path) -> bool {
    path.is_file() && access(path, Access::EXEC_OK).is_ok()
}

fn failed(
    spec: &LaunchSpec,
    field: &'static str,
    value: String,
    checked: PathBuf,
    problem: String,
) -> LauncherError {
    LauncherError::Preflight {
        field,
        value,
        origin: spec.source_of(field),
        checked,
        problem,
    }
}
