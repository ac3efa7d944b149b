//! `export` writes the publication as static files; a plain static file server
//! (`tower_http::services::ServeDir`) serving them answers every exported path with exactly
//! the live server's bytes. Also runs the real binary's `export` on the same SQLite file.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a test fails by panicking")]

mod common;

use std::path::Path;

use axum::http::StatusCode;
use axum::Router;
use common::*;
use weightseal_server::export::{consistency_sizes, export};

async fn static_router(dir: &Path) -> Router {
    Router::new().fallback_service(tower_http::services::ServeDir::new(dir))
}

async fn compare(live: &Router, static_files: &Router, paths: &[String]) {
    for path in paths {
        let url = format!("/{path}");
        let (ls, _, lb) = call(live, get(&url)).await;
        let (ss, _, sb) = call(static_files, get(&url)).await;
        assert_eq!(ls, StatusCode::OK, "live {url}");
        assert_eq!(ss, StatusCode::OK, "static {url}");
        assert!(lb == sb, "{url}: live and static bodies differ");
    }
}

async fn export_matches_live(backend: Backend) {
    let w = World::new();
    let (state, live) = w.app(&backend).await;
    let out = tempfile::tempdir().unwrap();

    // Empty log, then 600 entries (two full tiles and a partial one).
    let summary = export(&state.log, out.path()).await.unwrap();
    assert_eq!(summary.paths, ["checkpoint", "v1/snapshot", "v1/publication"]);
    compare(&live, &static_router(out.path()).await, &summary.paths).await;

    for n in 0..600u64 {
        assert_eq!(submit(&live, hub_submission(&w, n)).await.0, StatusCode::CREATED);
    }
    let dir = tempfile::tempdir().unwrap();
    let summary = export(&state.log, dir.path()).await.unwrap();
    assert_eq!(summary.size, 600);
    let mut expected = vec![
        "tile/entries/000".to_owned(),
        "tile/entries/001".to_owned(),
        "tile/entries/002.p/88".to_owned(),
        "tile/0/000".to_owned(),
        "tile/0/001".to_owned(),
        "tile/0/002.p/88".to_owned(),
        "tile/1/000.p/2".to_owned(),
    ];
    expected.extend(
        consistency_sizes(600)
            .iter()
            .map(|old| format!("v1/proof/consistency/{old}/600")),
    );
    expected.extend([
        "checkpoint".to_owned(),
        "v1/snapshot".to_owned(),
        "v1/publication".to_owned(),
    ]);
    assert_eq!(summary.paths, expected);
    assert!(consistency_sizes(600).contains(&256) && consistency_sizes(600).contains(&344));
    assert!(consistency_sizes(600).contains(&599) && !consistency_sizes(600).contains(&600));
    let statics = static_router(dir.path()).await;
    compare(&live, &statics, &summary.paths).await;

    // Every file on disk is an exported path, nothing else.
    let mut on_disk = Vec::new();
    let mut stack = vec![dir.path().to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                on_disk.push(p.strip_prefix(dir.path()).unwrap().to_str().unwrap().to_owned());
            }
        }
    }
    on_disk.sort();
    let mut want = summary.paths.clone();
    want.sort();
    assert_eq!(on_disk, want);

    // Re-exporting after more entries replaces the publication in place.
    for n in 600..610u64 {
        assert_eq!(submit(&live, hub_submission(&w, n)).await.0, StatusCode::CREATED);
    }
    let again = export(&state.log, dir.path()).await.unwrap();
    assert_eq!(again.size, 610);
    compare(&live, &statics, &again.paths).await;
    assert!(again.paths.contains(&"tile/entries/002.p/98".to_owned()));
    assert!(again.paths.contains(&"tile/0/002.p/98".to_owned()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_export_matches_live() {
    export_matches_live(sqlite()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_export_matches_live() {
    if let Some(backend) = postgres().await {
        export_matches_live(backend).await;
    }
}

/// The binary's `export` reads the same database and writes the same bytes the live server
/// (here in-process on that database) serves; `pubkey` prints the key the notes verify with.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_export_and_pubkey() {
    let w = World::new();
    let backend = sqlite();
    let (state, live) = w.app(&backend).await;
    for n in 0..300u64 {
        assert_eq!(submit(&live, hub_submission(&w, n)).await.0, StatusCode::CREATED);
    }
    let weightseal_server::config::DatabaseUrl::Sqlite(db) = &backend.url else {
        unreachable!()
    };
    let out = tempfile::tempdir().unwrap();
    let bin = env!("CARGO_BIN_EXE_weightseal-server");
    let run = std::process::Command::new(bin)
        .arg("export")
        .arg(out.path())
        .arg("--key")
        .arg(&w.log_key_path)
        .arg("--origin")
        .arg(ORIGIN)
        .arg("--database")
        .arg(format!("sqlite:{}", db.display()))
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let paths = weightseal_server::export::export(&state.log, tempfile::tempdir().unwrap().path())
        .await
        .unwrap()
        .paths;
    assert!(paths.len() > 250);
    compare(&live, &static_router(out.path()).await, &paths).await;

    let run = std::process::Command::new(bin)
        .args(["pubkey", "--origin", ORIGIN, "--key"])
        .arg(&w.log_key_path)
        .output()
        .unwrap();
    assert!(run.status.success());
    assert_eq!(
        String::from_utf8(run.stdout).unwrap().trim(),
        state.log.verifier_key().to_string()
    );

    // A key file others can read is refused.
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&w.log_key_path, std::fs::Permissions::from_mode(0o640)).unwrap();
    let run = std::process::Command::new(bin)
        .args(["pubkey", "--key"])
        .arg(&w.log_key_path)
        .output()
        .unwrap();
    assert!(!run.status.success());
    assert!(String::from_utf8_lossy(&run.stderr).contains("readable by other users"));
}
