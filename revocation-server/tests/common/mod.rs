//! Helpers shared by the integration tests: backends (a temporary SQLite file, or a fresh
//! PostgreSQL schema dropped afterwards), keys, issuers files, signed entries, one-shot calls.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "shared by every test binary, each using some of it; a test fails by panicking"
)]

use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Request, StatusCode};
use axum::Router;
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::EncodePrivateKey as _;
use ed25519_dalek::SigningKey;
use http_body_util::BodyExt as _;
use tower::ServiceExt as _;
use weightseal_server::config::DatabaseUrl;
use weightseal_server::formats::Policy;
use weightseal_server::{app, open_store, AppState, Log, LogOptions};
use weightseal_verifier::revocation::entry::{Action, Entry, Reason, SignedEntry, Subject, Submission};
use weightseal_verifier::{Digest, KeyId, PublicKey};

pub const ORIGIN: &str = "test.weightseal/revocations";
pub const DEFAULT_PG: &str = "postgres://postgres@127.0.0.1:5432/test";

/// Where a test's log lives; dropping it removes the file or the schema.
pub struct Backend {
    pub url: DatabaseUrl,
    pub name: &'static str,
    _guard: Guard,
}

enum Guard {
    Dir(tempfile::TempDir),
    Pg(PgSchema),
}

pub fn sqlite() -> Backend {
    let dir = tempfile::tempdir().unwrap();
    let url = DatabaseUrl::Sqlite(dir.path().join("log.db"));
    Backend {
        url,
        name: "sqlite",
        _guard: Guard::Dir(dir),
    }
}

fn pg_base() -> String {
    std::env::var("WEIGHTSEAL_TEST_POSTGRES").unwrap_or_else(|_| DEFAULT_PG.to_owned())
}

/// A fresh schema in the test database, or `None` when WEIGHTSEAL_SKIP_POSTGRES=1. Fails the
/// test, saying so, when PostgreSQL is not reachable.
pub async fn postgres() -> Option<Backend> {
    if std::env::var("WEIGHTSEAL_SKIP_POSTGRES").is_ok_and(|v| v == "1") {
        eprintln!("WEIGHTSEAL_SKIP_POSTGRES=1: skipping the PostgreSQL run");
        return None;
    }
    let base = pg_base();
    let schema = unique_name("ws_test");
    let client = pg_connect(&base).await;
    client
        .batch_execute(&format!("CREATE SCHEMA {schema}"))
        .await
        .unwrap_or_else(|e| panic!("cannot create schema {schema} in {base}: {e}"));
    let sep = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{sep}options=-c%20search_path%3D{schema}");
    Some(Backend {
        url: DatabaseUrl::Postgres(url),
        name: "postgres",
        _guard: Guard::Pg(PgSchema { base, schema }),
    })
}

async fn pg_connect(base: &str) -> tokio_postgres::Client {
    let connect = tokio_postgres::connect(base, tokio_postgres::NoTls);
    let result = tokio::time::timeout(Duration::from_secs(5), connect).await;
    let place = if base == DEFAULT_PG {
        "127.0.0.1:5432".to_owned()
    } else {
        weightseal_server::config::redact(base)
    };
    let (client, conn) = match result {
        Ok(Ok(pair)) => pair,
        Ok(Err(e)) => {
            let mut why = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                why.push_str(&format!(": {s}"));
                source = s.source();
            }
            panic!("PostgreSQL not reachable at {place}: {why}; set WEIGHTSEAL_SKIP_POSTGRES=1 to skip")
        }
        Err(_) => {
            panic!("PostgreSQL not reachable at {place}: timed out after 5 s; set WEIGHTSEAL_SKIP_POSTGRES=1 to skip")
        }
    };
    tokio::spawn(conn);
    client
}

struct PgSchema {
    base: String,
    schema: String,
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        let base = self.base.clone();
        let schema = self.schema.clone();
        // Drop may run inside a runtime: do the async work on a thread of its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                if let Ok(Ok((client, conn))) = tokio::time::timeout(
                    Duration::from_secs(5),
                    tokio_postgres::connect(&base, tokio_postgres::NoTls),
                )
                .await
                {
                    tokio::spawn(conn);
                    let _ = client
                        .batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                        .await;
                }
            });
        })
        .join();
    }
}

pub fn unique_name(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "{prefix}_{}_{}_{}",
        std::process::id(),
        nanos % 1_000_000_000,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

pub fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

/// Writes `key` as a PKCS#8 PEM file with mode 0600.
pub fn write_key(dir: &Path, name: &str, key: &SigningKey) -> PathBuf {
    let path = dir.join(name);
    let pem = key.to_pkcs8_pem(LineEnding::LF).unwrap();
    let mut f = std::fs::File::create(&path).unwrap();
    f.write_all(pem.as_bytes()).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The cast of a test: the log key, a hub, a lab with one model-signing key, and a stranger.
pub struct World {
    pub dir: tempfile::TempDir,
    pub log_key: SigningKey,
    pub log_key_path: PathBuf,
    pub hub: SigningKey,
    pub lab: SigningKey,
    pub lab_model_key: SigningKey,
    pub stranger: SigningKey,
    pub issuers_path: PathBuf,
}

impl World {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let log_key = key(1);
        let log_key_path = write_key(dir.path(), "log.pem", &log_key);
        let (hub, lab, lab_model_key, stranger) = (key(2), key(3), key(4), key(5));
        let issuers = serde_json::json!({
            "issuers": [
                {"name": "hub.example", "role": "hub", "public_key": hex::encode(hub.verifying_key().as_bytes())},
                {"name": "lab.example", "role": "lab", "public_key": hex::encode(lab.verifying_key().as_bytes()),
                 "signing_keys": [key_id(&lab_model_key).to_hex()]}
            ]
        });
        let issuers_path = dir.path().join("issuers.json");
        std::fs::write(&issuers_path, serde_json::to_vec_pretty(&issuers).unwrap()).unwrap();
        Self {
            dir,
            log_key,
            log_key_path,
            hub,
            lab,
            lab_model_key,
            stranger,
            issuers_path,
        }
    }

    pub fn policy(&self) -> Policy {
        Policy::load(&self.issuers_path).unwrap()
    }

    pub async fn log(&self, backend: &Backend) -> Arc<Log> {
        let store = open_store(&backend.url).await.unwrap();
        let signer = weightseal_server::keys::note_signer(ORIGIN, self.log_key.clone()).unwrap();
        let options = LogOptions {
            origin: ORIGIN.to_owned(),
            snapshot_ttl: Duration::from_secs(86_400),
        };
        Arc::new(Log::open(store, signer, options, true).await.unwrap())
    }

    pub async fn app(&self, backend: &Backend) -> (AppState, Router) {
        let state = AppState::new(self.log(backend).await, self.policy());
        let router = app(state.clone());
        (state, router)
    }
}

pub fn key_id(k: &SigningKey) -> KeyId {
    KeyId::of_raw_public_key(k.verifying_key().as_bytes())
}

pub fn entry(issuer: &SigningKey, subject: Subject, action: Action) -> Entry {
    Entry {
        subject,
        action,
        reason: Reason::GuardrailsRemoved,
        issuer: PublicKey::from_verifying_key(issuer.verifying_key()),
        time: now(),
        evidence: Some("https://hub.example/evidence/1".to_owned()),
    }
}

pub fn signed(issuer: &SigningKey, subject: Subject, action: Action) -> SignedEntry {
    SignedEntry::sign(&entry(issuer, subject, action), issuer).unwrap()
}

/// A hub revocation of content digest BLAKE3(`n`): a distinct valid submission per `n`.
pub fn hub_submission(w: &World, n: u64) -> Vec<u8> {
    let subject = Subject::content(Digest::of(&n.to_le_bytes()));
    submission(signed(&w.hub, subject, Action::Revoke), None)
}

pub fn submission(entry: SignedEntry, authority: Option<Vec<u8>>) -> Vec<u8> {
    Submission { entry, authority }.to_bytes().unwrap()
}

pub fn get(path: &str) -> Request<Body> {
    Request::get(path).body(Body::empty()).unwrap()
}

pub fn post_cbor(body: Vec<u8>) -> Request<Body> {
    Request::post("/v1/submit")
        .header("content-type", "application/cbor")
        .body(Body::from(body))
        .unwrap()
}

pub async fn call(router: &Router, req: Request<Body>) -> (StatusCode, HeaderMap, Bytes) {
    let resp = router.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, headers, body)
}

pub async fn submit(router: &Router, body: Vec<u8>) -> (StatusCode, serde_json::Value) {
    let (status, _, body) = call(router, post_cbor(body)).await;
    let json = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
    (status, json)
}

/// One HTTP/1.1 request over a fresh connection (`Connection: close`); returns the status
/// and the body. Small on purpose: the tests talk to the real binary with no client library.
pub fn http(addr: &str, method: &str, path: &str, body: Option<(&str, &[u8])>) -> std::io::Result<(u16, Vec<u8>)> {
    use std::io::Read as _;
    let mut stream = std::net::TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some((ct, b)) = body {
        req.push_str(&format!("Content-Type: {ct}\r\nContent-Length: {}\r\n", b.len()));
    }
    req.push_str("\r\n");
    let mut bytes = req.into_bytes();
    if let Some((_, b)) = body {
        bytes.extend_from_slice(b);
    }
    stream.write_all(&bytes)?;
    let mut resp = Vec::new();
    stream.read_to_end(&mut resp)?;
    let bad = |m: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, m.to_owned());
    let split = resp
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| bad("no end of headers"))?;
    let head = String::from_utf8_lossy(&resp[..split]).to_string();
    let status: u16 = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("no status"))?;
    let mut body = resp[split + 4..].to_vec();
    if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        let mut out = Vec::new();
        let mut rest = &body[..];
        loop {
            let line_end = rest.windows(2).position(|w| w == b"\r\n").ok_or_else(|| bad("chunk"))?;
            let size = usize::from_str_radix(
                std::str::from_utf8(&rest[..line_end]).map_err(|_| bad("chunk"))?.trim(),
                16,
            )
            .map_err(|_| bad("chunk size"))?;
            rest = &rest[line_end + 2..];
            if size == 0 {
                break;
            }
            out.extend_from_slice(rest.get(..size).ok_or_else(|| bad("short chunk"))?);
            rest = rest.get(size + 2..).ok_or_else(|| bad("short chunk"))?;
        }
        body = out;
    }
    Ok((status, body))
}

/// A running `weightseal-server serve` process.
pub struct Server {
    pub child: std::process::Child,
    pub addr: String,
}

impl Server {
    /// Starts the binary on a free 127.0.0.1 port and waits for its "listening on" line.
    pub fn start(w: &World, database: &str, extra: &[&str]) -> Self {
        let mut args = vec!["--database", database];
        args.extend_from_slice(extra);
        Self::spawn(w, &args, None)
    }

    /// Starts `serve` with the world's key and issuers, `args`, in folder `cwd`.
    pub fn spawn(w: &World, args: &[&str], cwd: Option<&Path>) -> Self {
        use std::io::BufRead as _;
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_weightseal-server"));
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--origin", ORIGIN, "--key"])
            .arg(&w.log_key_path)
            .arg("--issuers")
            .arg(&w.issuers_path)
            .args(args)
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::piped());
        if let Some(dir) = cwd {
            cmd.current_dir(dir);
        }
        let mut child = cmd.spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        std::io::BufReader::new(stdout).read_line(&mut line).unwrap();
        let addr = line
            .trim()
            .strip_prefix("listening on http://")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_owned();
        Self { child, addr }
    }

    pub fn get(&self, path: &str) -> (u16, Vec<u8>) {
        http(&self.addr, "GET", path, None).unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Fetches the whole published log from a server (checkpoint + every tile), checks the
/// checkpoint signature and that the leaves hash to its root. Returns the leaves.
pub fn fetch_verified_log(
    get: impl Fn(&str) -> (u16, Vec<u8>),
    verifier: &weightseal_verifier::revocation::note::NoteVerifierKey,
) -> Vec<Vec<u8>> {
    use weightseal_verifier::revocation::merkle;
    use weightseal_verifier::revocation::snapshot::{open_checkpoint, Snapshot};
    use weightseal_verifier::revocation::tile::{decode_tile, tiles_covering};
    let (status, body) = get("/checkpoint");
    assert_eq!(status, 200);
    let cp = open_checkpoint(&body, std::slice::from_ref(verifier)).unwrap();
    let (status, body) = get("/v1/snapshot");
    assert_eq!(status, 200);
    let snap = Snapshot::open(&body, std::slice::from_ref(verifier)).unwrap();
    snap.check_fresh(now()).unwrap();
    assert!(snap.matches(&cp), "snapshot {snap:?} does not match checkpoint {cp:?}");
    let mut leaves = Vec::new();
    for tile in tiles_covering(0, cp.size) {
        let (status, body) = get(&format!("/{}", tile.path()));
        assert_eq!(status, 200, "{}", tile.path());
        leaves.extend(decode_tile(&body, tile).unwrap());
    }
    assert_eq!(leaves.len() as u64, cp.size);
    let mut tree = merkle::MerkleTree::new();
    for l in &leaves {
        tree.push(merkle::leaf_hash(l));
    }
    assert_eq!(tree.root(), cp.root, "the leaves do not hash to the signed root");
    leaves
}
