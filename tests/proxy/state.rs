//! The proxy's state at rest: private files, nothing in them that lets
//! anyone in, damage refused at start, damaged rows closed rather than open.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::backends::http_backend;
use super::harness::{Options, Proxy, edge_cookie, random_token};

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn state_files_are_private_and_hold_no_cookie() {
    let proxy = Proxy::start(Options::default());
    let backend = http_backend("one").await;
    let token = random_token();
    let s = proxy.ready_session(&token, backend.port()).await;
    let (_, cookie) = edge_cookie(&proxy, &s.alias, &token).await;
    let dir = proxy.dir.path();
    for file in [
        "state.sqlite",
        "state.sqlite-wal",
        "state.sqlite-shm",
        "state.sqlite.key",
    ] {
        assert_eq!(mode(&dir.join(file)), 0o600, "{file}");
    }
    // Neither the cookie nor its bytes are anywhere in the state or journal.
    let raw = hex::decode(&cookie).unwrap();
    for file in ["state.sqlite", "state.sqlite-wal"] {
        let bytes = std::fs::read(dir.join(file)).unwrap();
        assert!(!contains(&bytes, &raw), "{file} holds the cookie");
        assert!(
            !contains(&bytes, cookie.as_bytes()),
            "{file} holds the cookie as hex"
        );
    }
}

#[tokio::test]
async fn a_row_with_a_damaged_digest_loads_as_ended() {
    let proxy = Proxy::start(Options::default());
    let backend = http_backend("one").await;
    let token = random_token();
    let s = proxy.ready_session(&token, backend.port()).await;
    let other_backend = http_backend("two").await;
    let other_token = random_token();
    let other = proxy
        .ready_session(&other_token, other_backend.port())
        .await;
    let (dir, ca, options) = (proxy.dir.clone(), proxy.ca.clone(), proxy.options.clone());
    drop(proxy);

    let db = rusqlite::Connection::open(dir.path().join("state.sqlite")).unwrap();
    for (column, value) in [("cookie", vec![0u8; 3]), ("token_sha256", vec![])] {
        let changed = db
            .execute(
                &format!("UPDATE sessions SET {column} = ?1 WHERE alias = ?2"),
                rusqlite::params![value, s.alias],
            )
            .unwrap();
        assert_eq!(changed, 1);
    }
    drop(db);

    let proxy = Proxy::start_in(dir, ca, options);
    let r = proxy
        .get(proxy.url(&s.alias, &format!("/?token={token}")))
        .await;
    assert_eq!(r.status(), 404);
    assert!(r.text().await.unwrap().contains("Session ended"));
    let (code, status) = proxy.status(&s.alias, "").await;
    assert_eq!(status["state"], "ended", "{code} {status}");
    // The others are untouched.
    let r = proxy
        .get(proxy.url(&other.alias, &format!("/?token={other_token}")))
        .await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn a_damaged_state_file_is_refused_at_start() {
    let proxy = Proxy::start(Options::default());
    for i in 0..50 {
        proxy.create_as(&format!("user{i}")).await;
    }
    let dir = proxy.dir.clone();
    drop(proxy);
    // Checkpoint the journal into the file, then scribble over a table page.
    let path = dir.path().join("state.sqlite");
    let db = rusqlite::Connection::open(&path).unwrap();
    db.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .unwrap();
    drop(db);
    let mut bytes = std::fs::read(&path).unwrap();
    assert!(bytes.len() > 8192, "{} bytes", bytes.len());
    // Page 2 from its header on: an unknown page type and garbage cells.
    for b in &mut bytes[4096..4096 + 600] {
        *b = 0x5a;
    }
    std::fs::write(&path, &bytes).unwrap();

    let output = super::harness::serve_refused("--config", &dir.path().join("proxy.toml"));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("state.sqlite"), "{stderr}");
    assert!(
        stderr.contains("damaged") || stderr.contains("malformed"),
        "{stderr}"
    );
}
