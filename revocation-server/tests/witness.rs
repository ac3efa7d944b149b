//! Witnesses (C2SP tlog-witness) and cosigned checkpoints (spec/revocation.md §5.1, §6.4):
//! a witness refuses what does not extend the checkpoint it holds (409, 422) and keeps
//! refusing after a restart; a log that shows two trees gets a quorum for one of them at most;
//! a client requiring 2 of 3 refuses the other; a lone lying witness makes no difference.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test fails by panicking"
)]

mod common;

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::http::{Request, StatusCode};
use axum::routing::post;
use axum::Router;
use common::*;
use weightseal_log::cosignature::WitnessSigner;
use weightseal_log::note::NoteSignerKey;
use weightseal_log::testing::Publisher;
use weightseal_server::export::export;
use weightseal_server::store::{CommitOutcome, Hash, NewEntry, SealFn, SnapshotRecord, Store, StoreError};
use weightseal_server::witness::{encode_request, parse_request, router, Refusal, Witness, WitnessEndpoint};
use weightseal_server::{open_store, Log, LogOptions};
use weightseal_verifier::revocation::cosignature::{WitnessKey, WitnessPolicy};
use weightseal_verifier::revocation::state::{DirSource, RevocationError, RevocationState};

fn witness_signer(seed: u8, name: &str) -> WitnessSigner {
    WitnessSigner::new(name, key(seed)).unwrap()
}

/// A publisher whose leaves are `tag` followed by a counter.
fn publisher(log: &NoteSignerKey, tag: u8, n: u32) -> Publisher {
    let mut p = Publisher::new(log.clone());
    for i in 0..n {
        p.append_raw([&[tag][..], &i.to_be_bytes()].concat());
    }
    p
}

fn request(p: &Publisher, old: u64) -> Vec<u8> {
    let proof = p.tree.consistency_proof(old, p.tree.len()).unwrap();
    encode_request(old, &proof, &p.checkpoint_note().unwrap())
}

async fn post_witness(router: &Router, body: Vec<u8>) -> (StatusCode, String, String) {
    let req = Request::post("/add-checkpoint").body(Body::from(body)).unwrap();
    let (status, headers, body) = call(router, req).await;
    let ct = headers
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, ct, String::from_utf8(body.to_vec()).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn witness_refuses_what_does_not_extend_its_checkpoint_even_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("witness.db");
    let log = NoteSignerKey::new("example.test/log", key(40)).unwrap();
    let signer = witness_signer(41, "witness.test/w1");
    let honest = publisher(&log, 1, 5);
    let mut grown = publisher(&log, 1, 9);
    let fork = publisher(&log, 2, 9);

    let w = Arc::new(Witness::open(signer.clone(), vec![log.verifier_key()], &state).unwrap());
    let r = router(Arc::clone(&w));
    // First contact: old 0, no proof. The answer is one cosignature line by this witness.
    let (status, _, line) = post_witness(&r, request(&honest, 0)).await;
    assert_eq!(status, StatusCode::OK, "{line}");
    let cosigned = format!("{}{line}", honest.checkpoint_note().unwrap());
    assert!(signer.public().cosigned(&cosigned).unwrap().is_some());
    // Old 0 again: 409 with the size it holds, as text/x.tlog.size.
    let (status, ct, body) = post_witness(&r, request(&grown, 0)).await;
    assert_eq!(
        (status, ct.as_str(), body.as_str()),
        (StatusCode::CONFLICT, "text/x.tlog.size", "5\n")
    );
    // The fork from the held size: its consistency proof does not verify against the held root.
    let (status, _, body) = post_witness(&r, request(&fork, 5)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    // Another root at the held size.
    let (status, _, _) = post_witness(&r, request(&publisher(&log, 3, 5), 5)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    // Bad requests: old past the size, another log, a checkpoint not signed by the log.
    let (status, _, _) = post_witness(&r, encode_request(9, &[], &honest.checkpoint_note().unwrap())).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let stranger = NoteSignerKey::new("other.test/log", key(42)).unwrap();
    let (status, _, _) = post_witness(&r, request(&publisher(&stranger, 1, 5), 0)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let impostor = NoteSignerKey::new("example.test/log", key(43)).unwrap();
    let (status, _, _) = post_witness(&r, request(&publisher(&impostor, 1, 9), 5)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) = post_witness(&r, b"old 1\nnot base64\n\nx".to_vec()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // The honest extension is cosigned; so is the same checkpoint again (a re-signed one).
    assert_eq!(post_witness(&r, request(&grown, 5)).await.0, StatusCode::OK);
    assert_eq!(post_witness(&r, request(&grown, 9)).await.0, StatusCode::OK);
    // The monitoring endpoint serves what it cosigned.
    let hash = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(b"example.test/log"));
    let (status, _, body) = call(&r, get(&format!("/{hash}/checkpoint"))).await;
    assert_eq!(status, StatusCode::OK);
    assert!(signer
        .public()
        .cosigned(std::str::from_utf8(&body).unwrap())
        .unwrap()
        .is_some());

    // Restart: the state is the file's; the fork is still refused, at the size it held.
    drop(r);
    drop(w);
    let w = Arc::new(Witness::open(signer, vec![log.verifier_key()], &state).unwrap());
    assert_eq!(w.held("example.test/log").unwrap(), (9, grown.tree.root()));
    let r = router(Arc::clone(&w));
    let (status, _, body) = post_witness(&r, request(&fork, 0)).await;
    assert_eq!((status, body.as_str()), (StatusCode::CONFLICT, "9\n"));
    let (status, _, _) = post_witness(&r, request(&fork, 9)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    // A shorter tree (a rollback) is refused too.
    assert!(matches!(
        w.add_checkpoint(&request(&honest, 5)),
        Err(Refusal::Conflict { held: 9, claimed: 5 })
    ));
    grown.append_raw(vec![1, 0, 0, 0, 9]);
    assert!(w.add_checkpoint(&request(&grown, 9)).is_ok());
}

/// Serves `router` on a free local port; returns its base URL.
async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{addr}")
}

/// A witness that cosigns whatever it is sent: no state, no checks.
fn lying_witness(signer: WitnessSigner) -> Router {
    Router::new().route(
        "/add-checkpoint",
        post(move |body: Bytes| {
            let signer = signer.clone();
            async move {
                let (_, _, note) = parse_request(&body).unwrap();
                let body = note.rsplit_once("\n\n").unwrap().0.to_owned() + "\n";
                signer.cosign(&body, 1).unwrap()
            }
        }),
    )
}

async fn append(log: &Log, w: &World, range: std::ops::Range<u64>) {
    for n in range {
        let sub = weightseal_verifier::revocation::entry::Submission::from_bytes(&hub_submission(w, n)).unwrap();
        log.append(sub.entry.as_bytes().to_vec()).await.unwrap();
    }
}

fn sync_export(dir: &std::path::Path, log: &Log, policy: &WitnessPolicy) -> Result<u64, RevocationError> {
    let mut client = RevocationState::in_memory(vec![log.verifier_key().clone()]);
    client.set_witness_policy(policy.clone());
    client.sync(&DirSource::new(dir), now()).map(|r| r.new_size)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_split_view_gets_no_quorum_and_a_lone_liar_changes_nothing() {
    let w = World::new();
    let state_dir = tempfile::tempdir().unwrap();
    let signers: Vec<WitnessSigner> = (0..3)
        .map(|i| witness_signer(50 + i, &format!("witness.test/w{i}")))
        .collect();
    let mut honest = Vec::new();
    for s in &signers {
        let witness = Witness::open(
            s.clone(),
            vec![weightseal_server::keys::note_signer(ORIGIN, w.log_key.clone())
                .unwrap()
                .verifier_key()],
            &state_dir
                .path()
                .join(format!("{}.db", s.public().name().replace('/', "_"))),
        )
        .unwrap();
        let url = serve(router(Arc::new(witness))).await;
        honest.push(WitnessEndpoint {
            url,
            key: s.public().clone(),
        });
    }
    let liar_signer = witness_signer(60, "liar.test/w");
    let liar = WitnessEndpoint {
        url: serve(lying_witness(liar_signer.clone())).await,
        key: liar_signer.public().clone(),
    };
    let keys: Vec<WitnessKey> = signers.iter().map(|s| s.public().clone()).collect();
    let two_of_three = WitnessPolicy::new(keys.clone(), 2).unwrap();

    // The log every witness sees: each checkpoint is cosigned by all three.
    let (backend_a, backend_b) = (sqlite(), sqlite());
    let log_a = w.log(&backend_a).await;
    log_a.set_witnesses(honest.clone()).await;
    append(&log_a, &w, 0..3).await;
    let report = log_a.witness_now().await.unwrap();
    assert_eq!(report.cosigned_by.len(), 3, "{report:?}");
    let checkpoint = String::from_utf8(log_a.published().checkpoint.to_vec()).unwrap();
    assert_eq!(two_of_three.check(&checkpoint).unwrap().len(), 3);
    let export_a = tempfile::tempdir().unwrap();
    export(&log_a, export_a.path()).await.unwrap();
    assert_eq!(sync_export(export_a.path(), &log_a, &two_of_three).unwrap(), 3);

    // The same log key shows another tree to other clients: the witnesses hold the first
    // tree, so the fork's consistency proof fails at every one of them.
    let log_b = w.log(&backend_b).await;
    log_b
        .set_witnesses(honest.iter().cloned().chain([liar.clone()]).collect())
        .await;
    append(&log_b, &w, 100..104).await;
    let report = log_b.witness_now().await.unwrap();
    assert_eq!(report.cosigned_by, vec!["liar.test/w".to_owned()], "{report:?}");
    assert_eq!(report.failed.len(), 3);
    let export_b = tempfile::tempdir().unwrap();
    export(&log_b, export_b.path()).await.unwrap();
    // A client requiring 2 of 3 refuses it, also when the liar is one of its three.
    let err = sync_export(export_b.path(), &log_b, &two_of_three).unwrap_err();
    assert!(matches!(err, RevocationError::WitnessQuorum { size: 4, .. }), "{err}");
    assert!(err.to_string().contains("from 0 of the trusted witnesses"), "{err}");
    let with_liar =
        WitnessPolicy::new(vec![keys[0].clone(), keys[1].clone(), liar_signer.public().clone()], 2).unwrap();
    let err = sync_export(export_b.path(), &log_b, &with_liar).unwrap_err();
    assert!(
        err.to_string()
            .contains("from 1 of the trusted witnesses (liar.test/w), 2 are required"),
        "{err}"
    );
    // Without witnesses configured (today's default) the fork is accepted on the log's word:
    // what the witnesses add.
    assert_eq!(sync_export(export_b.path(), &log_b, &WitnessPolicy::none()).unwrap(), 4);

    // The liar cannot stand in for the log either: three cosignatures on a checkpoint the
    // log did not sign are refused before any quorum is counted.
    let forged = NoteSignerKey::new(log_a.origin(), key(61)).unwrap();
    let mut fake = Publisher::new(forged);
    fake.append_raw(vec![1; 80]);
    fake.witnesses = vec![liar_signer.clone(), signers[0].clone(), signers[1].clone()];
    let fake_dir = tempfile::tempdir().unwrap();
    fake.export(fake_dir.path(), now()).unwrap();
    let err = sync_export(fake_dir.path(), &log_a, &with_liar).unwrap_err();
    assert!(matches!(err, RevocationError::UnannouncedLogKey { .. }), "{err}");

    // The honest log keeps growing and stays cosigned; the witnesses follow it.
    append(&log_a, &w, 3..5).await;
    assert_eq!(log_a.witness_now().await.unwrap().cosigned_by.len(), 3);
    export(&log_a, export_a.path()).await.unwrap();
    assert_eq!(sync_export(export_a.path(), &log_a, &two_of_three).unwrap(), 5);
}

/// Starts `weightseal-server witness`; returns the process, its address and its key line.
fn spawn_witness(
    key_path: &std::path::Path,
    log_key: &str,
    state: &std::path::Path,
) -> (std::process::Child, String, String) {
    use std::io::BufRead as _;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_weightseal-server"))
        .args([
            "witness",
            "--listen",
            "127.0.0.1:0",
            "--name",
            "witness.test/process",
            "--key",
        ])
        .arg(key_path)
        .args(["--log", log_key, "--state"])
        .arg(state)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let (mut first, mut second) = (String::new(), String::new());
    out.read_line(&mut first).unwrap();
    out.read_line(&mut second).unwrap();
    let addr = first.trim().strip_prefix("listening on http://").unwrap().to_owned();
    let key = second.trim().strip_prefix("witness key ").unwrap().to_owned();
    (child, addr, key)
}

#[test]
fn the_witness_and_serve_commands_cosign_end_to_end_and_the_witness_survives_a_restart() {
    let w = World::new();
    let tmp = tempfile::tempdir().unwrap();
    let key_path = write_key(tmp.path(), "witness.key", &key(80));
    let log_signer = weightseal_server::keys::note_signer(ORIGIN, w.log_key.clone()).unwrap();
    let vkey = log_signer.verifier_key().to_string();
    let state = tmp.path().join("witness.db");
    let (mut witness, addr, witness_key) = spawn_witness(&key_path, &vkey, &state);
    let witness_key: WitnessKey = witness_key.parse().unwrap();
    assert_eq!(witness_key.name(), "witness.test/process");

    let db = format!("sqlite:{}", tmp.path().join("log.db").display());
    let spec = format!("http://{addr}={witness_key}");
    let server = Server::start(&w, &db, &["--witness", &spec]);
    let (status, _) = http(
        &server.addr,
        "POST",
        "/v1/submit",
        Some(("application/cbor", &hub_submission(&w, 1))),
    )
    .unwrap();
    assert_eq!(status, 201);
    let (status, body) = server.get("/checkpoint");
    assert_eq!(status, 200);
    let note = String::from_utf8(body).unwrap();
    assert!(witness_key.cosigned(&note).unwrap().is_some(), "{note}");
    drop(server);

    // Restart the witness on its state: a fork of the size-1 log it cosigned is refused.
    witness.kill().unwrap();
    witness.wait().unwrap();
    let (mut witness, addr, _) = spawn_witness(&key_path, &vkey, &state);
    let fork = publisher(&log_signer, 9, 2);
    let (status, body) = http(
        &addr,
        "POST",
        "/add-checkpoint",
        Some(("text/plain", &request(&fork, 0))),
    )
    .unwrap();
    assert_eq!((status, body.as_slice()), (409, &b"1\n"[..]));
    let (status, _) = http(
        &addr,
        "POST",
        "/add-checkpoint",
        Some(("text/plain", &request(&fork, 1))),
    )
    .unwrap();
    assert_eq!(status, 422);
    witness.kill().unwrap();
    witness.wait().unwrap();
}

/// A store that pins a catch-up read inside an append: once armed, the append's commit waits
/// (up to a second) for the next `latest_snapshot` to have read the store, and that read then
/// waits for `release` before it answers. What a replica's catch-up loop does when its tick
/// falls between an append's commit and its cosignatures.
#[derive(Debug, Default)]
struct PinnedRead {
    inner: Option<Arc<dyn Store>>,
    armed: std::sync::atomic::AtomicBool,
    committed: tokio::sync::Notify,
    read_done: tokio::sync::Notify,
    release: tokio::sync::Notify,
}

impl PinnedRead {
    fn inner(&self) -> &Arc<dyn Store> {
        self.inner.as_ref().unwrap()
    }
}

#[async_trait::async_trait]
impl Store for PinnedRead {
    fn describe(&self) -> String {
        self.inner().describe()
    }
    async fn count(&self) -> Result<u64, StoreError> {
        self.inner().count().await
    }
    async fn leaf_hashes(&self, start: u64, end: u64) -> Result<Vec<Hash>, StoreError> {
        self.inner().leaf_hashes(start, end).await
    }
    async fn bodies(&self, start: u64, end: u64) -> Result<Vec<Vec<u8>>, StoreError> {
        self.inner().bodies(start, end).await
    }
    async fn find_leaf(&self, leaf_hash: &Hash) -> Result<Option<u64>, StoreError> {
        self.inner().find_leaf(leaf_hash).await
    }
    async fn latest_snapshot(&self) -> Result<Option<SnapshotRecord>, StoreError> {
        let read = self.inner().latest_snapshot().await;
        if self.armed.swap(false, std::sync::atomic::Ordering::SeqCst) {
            self.read_done.notify_one();
            self.release.notified().await;
        }
        read
    }
    async fn set_checkpoint(&self, version: u64, checkpoint: String) -> Result<(), StoreError> {
        self.inner().set_checkpoint(version, checkpoint).await
    }
    async fn commit_with_lineage(
        &self,
        entries: Vec<NewEntry>,
        lineage: Vec<(Hash, Vec<u8>)>,
        known: u64,
        seal: SealFn,
    ) -> Result<CommitOutcome, StoreError> {
        let outcome = self.inner().commit_with_lineage(entries, lineage, known, seal).await;
        if self.armed.load(std::sync::atomic::Ordering::SeqCst) {
            self.committed.notify_one();
            // A catch-up that waits for the write lock cannot read now: go on after a while.
            let _ = tokio::time::timeout(std::time::Duration::from_secs(1), self.read_done.notified()).await;
        }
        outcome
    }
    async fn lineage(&self, digest: &Hash) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner().lineage(digest).await
    }
    async fn lineage_digests(&self) -> Result<Vec<Hash>, StoreError> {
        self.inner().lineage_digests().await
    }
}

/// CI caught this once: the catch-up loop read the sealed, not yet cosigned checkpoint, the
/// append then published the cosigned one, and the loop replaced it by what it had read, so
/// the log served its checkpoint without the witnesses' cosignatures.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_catch_up_during_an_append_does_not_strip_the_cosignatures() {
    let w = World::new();
    let backend = sqlite();
    let store = Arc::new(PinnedRead {
        inner: Some(open_store(&backend.url).await.unwrap()),
        ..PinnedRead::default()
    });
    let signer = weightseal_server::keys::note_signer(ORIGIN, w.log_key.clone()).unwrap();
    let options = LogOptions {
        origin: ORIGIN.to_owned(),
        snapshot_ttl: std::time::Duration::from_secs(86_400),
    };
    let log = Arc::new(Log::open(store.clone(), signer, options, true).await.unwrap());
    let cosigner = witness_signer(70, "witness.test/any");
    log.set_witnesses(vec![WitnessEndpoint {
        url: serve(lying_witness(cosigner.clone())).await,
        key: cosigner.public().clone(),
    }])
    .await;
    let cosigned = |log: &Log| {
        let served = String::from_utf8(log.published().checkpoint.to_vec()).unwrap();
        assert!(
            cosigner.public().cosigned(&served).unwrap().is_some(),
            "served without the cosignature: {served}"
        );
    };

    let entry = weightseal_verifier::revocation::entry::Submission::from_bytes(&hub_submission(&w, 1))
        .unwrap()
        .entry
        .as_bytes()
        .to_vec();
    store.armed.store(true, std::sync::atomic::Ordering::SeqCst);
    let appender = tokio::spawn({
        let log = Arc::clone(&log);
        async move { log.append(entry).await.unwrap() }
    });
    store.committed.notified().await;
    let catch_up = tokio::spawn({
        let log = Arc::clone(&log);
        async move { log.refresh().await }
    });
    appender.await.unwrap();
    cosigned(&log);
    store.release.notify_one();
    catch_up.await.unwrap().unwrap();
    cosigned(&log);
}
