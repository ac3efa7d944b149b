//! An unmodified third-party tlog-tiles reader reads the log: `tests/tlog-go/main.go`, built
//! against Go's `golang.org/x/mod/sumdb/{note,tlog}` (the code C2SP's tile layout comes from),
//! verifies the checkpoint (cosigned by a witness), every hash tile, every entry bundle and an
//! inclusion proof, from the live server and from the static export.
//!
//! Needs `go` and `golang.org/x/mod` (Debian: `apt-get install golang-go
//! golang-golang-x-mod-dev`). Without them the test says what is missing and passes, unless
//! `WEIGHTSEAL_REQUIRE_TLOG_GO=1` (set in CI), where it fails.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test fails by panicking"
)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use common::*;
use weightseal_log::cosignature::WitnessSigner;
use weightseal_server::export::export;
use weightseal_server::witness::{router, Witness, WitnessEndpoint};
use weightseal_server::{app, AppState};

/// Where Debian's golang-golang-x-mod-dev puts the sources (a GOPATH).
const DEBIAN_GOPATH: &str = "/usr/share/gocode";

/// Builds the checker, or says exactly what is missing.
fn build_checker(out: &Path) -> Result<PathBuf, String> {
    let version = Command::new("go").arg("version").output();
    if !version.is_ok_and(|o| o.status.success()) {
        return Err("missing: the Go toolchain (`go` is not on PATH; Debian: apt-get install golang-go)".into());
    }
    let gopath = std::env::var("WEIGHTSEAL_TLOG_GOPATH").unwrap_or_else(|_| DEBIAN_GOPATH.to_owned());
    let tlog = Path::new(&gopath).join("src/golang.org/x/mod/sumdb/tlog");
    if !tlog.is_dir() {
        return Err(format!(
            "missing: golang.org/x/mod/sumdb/tlog ({} does not exist; Debian: apt-get install golang-golang-x-mod-dev, or set WEIGHTSEAL_TLOG_GOPATH)",
            tlog.display()
        ));
    }
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/tlog-go/main.go");
    let binary = out.join("tlog-check");
    // GOPATH mode: builds offline against the packaged sources, no module download.
    let built = Command::new("go")
        .args(["build", "-o"])
        .arg(&binary)
        .arg(&source)
        .env("GO111MODULE", "off")
        .env("GOPATH", &gopath)
        // A build cache that outlives the test: the standard library is compiled once.
        .env("GOCACHE", Path::new(env!("CARGO_TARGET_TMPDIR")).join("tlog-go-cache"))
        .env("GOFLAGS", "")
        .output()
        .map_err(|e| format!("cannot run go build: {e}"))?;
    if !built.status.success() {
        return Err(format!(
            "go build of {} failed: {}",
            source.display(),
            String::from_utf8_lossy(&built.stderr)
        ));
    }
    Ok(binary)
}

fn check(binary: &Path, log: &str, key: &str, index: Option<u64>) -> Result<String, String> {
    let mut cmd = Command::new(binary);
    cmd.args(["-log", log, "-key", key]);
    if let Some(i) = index {
        cmd.args(["-index", &i.to_string()]);
    }
    let out = cmd.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        Ok(text)
    } else {
        Err(text)
    }
}

async fn serve(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{addr}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn go_sumdb_tlog_reads_the_live_log_and_the_export() {
    let tmp = tempfile::tempdir().unwrap();
    let binary = match build_checker(tmp.path()) {
        Ok(b) => b,
        Err(missing) if std::env::var("WEIGHTSEAL_REQUIRE_TLOG_GO").as_deref() != Ok("1") => {
            eprintln!("SKIPPED go_sumdb_tlog_reads_the_live_log_and_the_export: {missing}");
            return;
        }
        Err(missing) => panic!("{missing}"),
    };
    let w = World::new();
    let backend = sqlite();
    let (state, live) = w.app(&backend).await;
    let log = Arc::clone(&state.log);
    let vkey = log.verifier_key().to_string();
    // One witness cosigns every checkpoint: the reader must take the cosigned note unchanged.
    let signer = WitnessSigner::new("witness.test/go", key(70)).unwrap();
    let witness = Witness::open(
        signer.clone(),
        vec![log.verifier_key().clone()],
        &tmp.path().join("w.db"),
    )
    .unwrap();
    let witness_url = serve(router(Arc::new(witness))).await;
    log.set_witnesses(vec![WitnessEndpoint {
        url: witness_url,
        key: signer.public().clone(),
    }])
    .await;
    // 300 entries: a full bundle and a partial one, a full level-0 tile, a partial level-0
    // tile and a partial level-1 tile; one batch, then one more entry (a witnessed extension).
    let leaves = (0..299u64)
        .map(|n| {
            let sub = weightseal_verifier::revocation::entry::Submission::from_bytes(&hub_submission(&w, n)).unwrap();
            sub.entry.as_bytes().to_vec()
        })
        .collect();
    log.append_batch(leaves).await.unwrap();
    assert_eq!(
        submit(&live, hub_submission(&w, 299)).await.0,
        axum::http::StatusCode::CREATED
    );
    let note = String::from_utf8(log.published().checkpoint.to_vec()).unwrap();
    assert!(signer.public().cosigned(&note).unwrap().is_some(), "{note}");

    let url = serve(app(AppState::new(Arc::clone(&log), w.policy()))).await;
    let out = check(&binary, &url, &vkey, Some(7)).unwrap_or_else(|e| panic!("live: {e}"));
    assert!(
        out.contains("size 300") && out.contains("inclusion proof of entry 7"),
        "{out}"
    );

    let dir = tmp.path().join("export");
    export(&log, &dir).await.unwrap();
    let out = check(&binary, dir.to_str().unwrap(), &vkey, None).unwrap_or_else(|e| panic!("export: {e}"));
    assert!(out.contains("inclusion proof of entry 299"), "{out}");

    // The checker is not a rubber stamp: a changed entry, a changed hash tile and another
    // log key are each refused.
    let bundle = dir.join("tile/entries/001.p/44");
    let original = std::fs::read(&bundle).unwrap();
    let mut changed = original.clone();
    let last = changed.len() - 1;
    changed[last] ^= 1;
    std::fs::write(&bundle, &changed).unwrap();
    let err = check(&binary, dir.to_str().unwrap(), &vkey, None).unwrap_err();
    assert!(err.contains("does not hash to its leaf"), "{err}");
    std::fs::write(&bundle, &original).unwrap();
    let tile = dir.join("tile/0/001.p/44");
    let mut hashes = std::fs::read(&tile).unwrap();
    hashes[0] ^= 1;
    std::fs::write(&tile, &hashes).unwrap();
    assert!(check(&binary, dir.to_str().unwrap(), &vkey, None).is_err());
    let other = weightseal_server::keys::note_signer(ORIGIN, key(71))
        .unwrap()
        .verifier_key()
        .to_string();
    let err = check(&binary, &url, &other, None).unwrap_err();
    assert!(err.contains("checkpoint"), "{err}");
}
