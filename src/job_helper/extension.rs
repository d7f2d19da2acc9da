//! The page inside Jupyter (`extension/remoteEntry.js`): embedded in the
//! binary, written by the job into the session folder before Jupyter
//! starts, and found by Jupyter through `JUPYTER_PATH`, which the batch
//! script extends (never replaces). Nothing is installed in the user's
//! environment, so it works with the site's Jupyter, a venv, a conda
//! environment or an image alike.

use std::path::Path;

use sha2::{Digest, Sha256};

/// The extension's name: its folder under `labextensions/` and the key it
/// registers under in `_JUPYTERLAB`.
pub const NAME: &str = "jrps-session";

const SCRIPT: &str = include_str!("../../extension/remoteEntry.js");

/// Writes `dir/labextensions/jrps-session/`: its `package.json` and its
/// script, named by its content's hash so that a browser never runs a
/// cached copy of another version.
pub fn write(dir: &Path) -> std::io::Result<()> {
    let root = dir.join("labextensions").join(NAME);
    // What an earlier run (maybe another jrps version) left is replaced whole.
    match std::fs::remove_dir_all(&root) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => return Err(error),
        _ => {}
    }
    let file = format!(
        "remoteEntry.{}.js",
        &hex::encode(Sha256::digest(SCRIPT))[..16]
    );
    std::fs::create_dir_all(root.join("static"))?;
    std::fs::write(root.join("static").join(&file), SCRIPT)?;
    let package = serde_json::json!({
        "name": NAME,
        "version": env!("CARGO_PKG_VERSION"),
        "description": "jrps: warns before the session ends, saves, extends; shows announcements",
        "license": "MIT",
        "jupyterlab": {
            "extension": true,
            "_build": { "load": format!("static/{file}"), "extension": "./extension" }
        }
    });
    std::fs::write(
        root.join("package.json"),
        serde_json::to_string_pretty(&package).expect("a JSON value serialises"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_package_names_the_script_it_ships_and_a_second_write_replaces_the_first() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("labextensions").join(NAME);
        std::fs::create_dir_all(root.join("static")).unwrap();
        std::fs::write(root.join("static/remoteEntry.old.js"), "old").unwrap();
        write(dir.path()).unwrap();
        let package: serde_json::Value =
            serde_json::from_slice(&std::fs::read(root.join("package.json")).unwrap()).unwrap();
        let load = package["jupyterlab"]["_build"]["load"].as_str().unwrap();
        assert_eq!(std::fs::read_to_string(root.join(load)).unwrap(), SCRIPT);
        assert!(!root.join("static/remoteEntry.old.js").exists());
        assert!(SCRIPT.contains(&format!("var NAME = '{NAME}'")));
    }
}
