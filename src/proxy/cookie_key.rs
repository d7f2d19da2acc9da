//! The server key the edge cookies are derived from. The state file keeps
//! only a random salt per session; the cookie a browser holds is
//! HMAC-SHA256(key, alias, salt), so a copy of the state file lets no one
//! in. The key lives in its own 0600 file, made at first start; losing it
//! only logs browsers out (the printed link lets them in again).

use std::fs::{self, OpenOptions, Permissions};
use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

const KEY_LEN: usize = 32;

pub struct CookieKey([u8; KEY_LEN]);

#[derive(Debug, thiserror::Error)]
pub enum CookieKeyError {
    #[error("cookie key {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cookie key {}: {len} bytes where {KEY_LEN} are expected; remove it to make a new one (browsers then open the printed link again)", path.display())]
    Malformed { path: PathBuf, len: usize },
}

impl CookieKey {
    /// Reads the key at `path`, or makes one (0600) if there is none.
    pub fn load_or_create(path: &Path) -> Result<CookieKey, CookieKeyError> {
        let io = |source| CookieKeyError::Io {
            path: path.to_owned(),
            source,
        };
        match fs::File::open(path) {
            Ok(mut file) => {
                let mut bytes = Vec::new();
                file.read_to_end(&mut bytes).map_err(io)?;
                fs::set_permissions(path, Permissions::from_mode(0o600)).map_err(io)?;
                let key = <[u8; KEY_LEN]>::try_from(bytes.as_slice()).map_err(|_| {
                    CookieKeyError::Malformed {
                        path: path.to_owned(),
                        len: bytes.len(),
                    }
                })?;
                Ok(CookieKey(key))
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                let mut key = [0u8; KEY_LEN];
                rand::fill(&mut key);
                // Written whole under a private name, then linked into place:
                // a link never replaces a file, so of two proxies starting at
                // once (replicas on one shared folder) one key wins, and the
                // other never reads it half-written.
                let mut suffix = [0u8; 8];
                rand::fill(&mut suffix);
                let draft =
                    PathBuf::from(format!("{}.{}.new", path.display(), hex::encode(suffix)));
                let written = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&draft)
                    .and_then(|mut file| {
                        file.write_all(&key)?;
                        file.sync_all()
                    });
                let linked = written.and_then(|()| fs::hard_link(&draft, path));
                let _ = fs::remove_file(&draft);
                match linked {
                    Ok(()) => Ok(CookieKey(key)),
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        Self::load_or_create(path)
                    }
                    Err(e) => Err(io(e)),
                }
            }
            Err(error) => Err(io(error)),
        }
    }

    /// The edge cookie of session `alias` with `salt`.
    pub fn cookie(&self, alias: &str, salt: &[u8; 32]) -> [u8; 32] {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.0)
            .expect("HMAC takes keys of any length");
        mac.update(b"jrps edge cookie\0");
        mac.update(alias.as_bytes());
        mac.update(b"\0");
        mac.update(salt);
        mac.finalize().into_bytes().into()
    }

    /// What replicas compare to learn they hold the same key, without
    /// showing it: a MAC of a label no cookie is made of.
    pub fn fingerprint(&self) -> String {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.0)
            .expect("HMAC takes keys of any length");
        mac.update(b"jrps cookie key fingerprint");
        hex::encode(mac.finalize().into_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_made_once_private_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cookie.key");
        let first = CookieKey::load_or_create(&path).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let again = CookieKey::load_or_create(&path).unwrap();
        let salt = [7u8; 32];
        assert_eq!(first.cookie("a-b-c", &salt), again.cookie("a-b-c", &salt));
        assert_ne!(first.cookie("a-b-c", &salt), first.cookie("a-b-d", &salt));
        assert_ne!(
            first.cookie("a-b-c", &salt),
            first.cookie("a-b-c", &[8u8; 32])
        );
        fs::write(&path, b"short").unwrap();
        assert!(matches!(
            CookieKey::load_or_create(&path),
            Err(CookieKeyError::Malformed { len: 5, .. })
        ));
    }
}
