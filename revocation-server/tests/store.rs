//! The storage trait's semantics, and several replicas on one store, on both backends
//! (`sqlite::*` and `postgres::*` run the same functions).
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a test fails by panicking")]

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::http::StatusCode;
use common::*;
use weightseal_server::open_store;
use weightseal_server::store::{CommitOutcome, NewEntry, SealError, SealFn, SealInput, SnapshotRecord, StoreError};
use weightseal_verifier::revocation::merkle;

fn entry(n: u8) -> NewEntry {
    let body = vec![n; 10 + n as usize];
    NewEntry {
        leaf_hash: merkle::leaf_hash(&body),
        body,
        received_at: 1,
    }
}

/// A seal step that records its input and signs nothing.
fn recorder(seen: Arc<std::sync::Mutex<Vec<SealInput>>>) -> SealFn {
    Box::new(move |input: SealInput| {
        let record = SnapshotRecord {
            version: input.version,
            size: input.start + input.leaves.len() as u64,
            root: [input.version as u8; 32],
            issued: 10,
            expires: 20,
            checkpoint: format!("checkpoint {}\n", input.version),
            snapshot: format!("snapshot {}\n", input.version),
        };
        seen.lock().unwrap().push(input);
        Ok(record)
    })
}

fn never_called(flag: Arc<AtomicBool>) -> SealFn {
    Box::new(move |_| {
        flag.store(true, Ordering::SeqCst);
        Err(SealError::Failed("should not be called".to_owned()))
    })
}

async fn store_semantics(backend: Backend) {
    let store = open_store(&backend.url).await.unwrap();
    let seen: Arc<std::sync::Mutex<Vec<SealInput>>> = Arc::default();
    assert_eq!(store.count().await.unwrap(), 0);
    assert_eq!(store.latest_snapshot().await.unwrap(), None);

    // A seal with nothing to append.
    let out = store.commit(Vec::new(), 0, recorder(seen.clone())).await.unwrap();
    assert!(
        matches!(out, CommitOutcome::Sealed { index: None, ref record } if record.version == 1 && record.size == 0)
    );

    // Append A, then replay it: Duplicate, no seal, nothing written.
    let a = entry(1);
    let out = store.commit(vec![a.clone()], 0, recorder(seen.clone())).await.unwrap();
    assert!(matches!(out, CommitOutcome::Sealed { index: Some(0), ref record } if record.version == 2));
    let called = Arc::new(AtomicBool::new(false));
    let out = store
        .commit(vec![a.clone()], 1, never_called(called.clone()))
        .await
        .unwrap();
    assert!(matches!(out, CommitOutcome::Duplicate { index: 0 }));
    assert!(!called.load(Ordering::SeqCst));

    // A writer that only knows size 0 is handed A before its own entry B.
    let b = entry(2);
    let out = store.commit(vec![b.clone()], 0, recorder(seen.clone())).await.unwrap();
    assert!(
        matches!(out, CommitOutcome::Sealed { index: Some(1), ref record } if record.version == 3 && record.size == 2)
    );
    {
        let seen = seen.lock().unwrap();
        let last = seen.last().unwrap();
        assert_eq!(
            (last.start, last.leaves.clone(), last.version),
            (0, vec![a.leaf_hash, b.leaf_hash], 3)
        );
    }

    // A writer that claims more than the store holds is refused; nothing is written.
    let err = store
        .commit(vec![entry(3)], 5, recorder(seen.clone()))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Corrupt(_)), "{err}");
    // A failing seal rolls everything back.
    let failing: SealFn = Box::new(|_| Err(SealError::Failed("no".to_owned())));
    let err = store.commit(vec![entry(4)], 2, failing).await.unwrap_err();
    assert!(matches!(err, StoreError::Seal(_)), "{err}");
    assert_eq!(store.count().await.unwrap(), 2);
    assert_eq!(store.latest_snapshot().await.unwrap().unwrap().version, 3);
    assert_eq!(store.find_leaf(&entry(4).leaf_hash).await.unwrap(), None);

    // Reads.
    assert_eq!(store.leaf_hashes(0, 10).await.unwrap(), vec![a.leaf_hash, b.leaf_hash]);
    assert_eq!(store.leaf_hashes(1, 2).await.unwrap(), vec![b.leaf_hash]);
    assert_eq!(store.leaf_hashes(2, 5).await.unwrap(), Vec::<[u8; 32]>::new());
    assert_eq!(store.bodies(0, 2).await.unwrap(), vec![a.body.clone(), b.body.clone()]);
    assert_eq!(store.find_leaf(&b.leaf_hash).await.unwrap(), Some(1));
    let latest = store.latest_snapshot().await.unwrap().unwrap();
    assert_eq!(
        (latest.size, latest.root, latest.checkpoint.as_str()),
        (2, [3; 32], "checkpoint 3\n")
    );

    // Another handle on the same store sees the same thing.
    let again = open_store(&backend.url).await.unwrap();
    assert_eq!(again.count().await.unwrap(), 2);
    assert_eq!(again.latest_snapshot().await.unwrap(), Some(latest));

    batch_semantics(&*store, &seen, a, b).await;
}

/// issue 7 item 3: a batch is appended all or nothing, at consecutive indexes, under one
/// snapshot version; the seal step sees the other writers' bodies and may refuse.
async fn batch_semantics(
    store: &dyn weightseal_server::Store,
    seen: &Arc<std::sync::Mutex<Vec<SealInput>>>,
    a: NewEntry,
    b: NewEntry,
) {
    let (c, d, e) = (entry(5), entry(6), entry(7));
    // A batch holding a replay of A appends nothing, not even its new entries.
    let called = Arc::new(AtomicBool::new(false));
    let out = store
        .commit(vec![c.clone(), a.clone()], 2, never_called(called.clone()))
        .await
        .unwrap();
    assert!(matches!(out, CommitOutcome::Duplicate { index: 0 }), "{out:?}");
    assert!(!called.load(Ordering::SeqCst));
    assert_eq!(store.find_leaf(&c.leaf_hash).await.unwrap(), None);
    // A refusing seal step rolls back every entry of the batch.
    let refusing: SealFn = Box::new(|_| {
        Err(SealError::Refused(
            weightseal_verifier::revocation::policy::PolicyViolation::Replay { leaf_hash: [0; 32] },
        ))
    });
    let out = store.commit(vec![c.clone(), d.clone()], 2, refusing).await.unwrap();
    assert!(matches!(out, CommitOutcome::Refused(_)), "{out:?}");
    assert_eq!(store.count().await.unwrap(), 2);
    assert_eq!(store.latest_snapshot().await.unwrap().unwrap().version, 3);
    // Accepted: C, D, E at 2, 3, 4 under one new version; a writer knowing size 1 is handed
    // B's body as another writer's entry.
    let out = store
        .commit(vec![c.clone(), d.clone(), e.clone()], 1, recorder(seen.clone()))
        .await
        .unwrap();
    assert!(
        matches!(out, CommitOutcome::Sealed { index: Some(2), ref record } if record.version == 4 && record.size == 5),
        "{out:?}"
    );
    let last = seen.lock().unwrap().last().unwrap().clone();
    assert_eq!(last.others, vec![b.body.clone()]);
    assert_eq!(last.leaves, vec![b.leaf_hash, c.leaf_hash, d.leaf_hash, e.leaf_hash]);
    assert_eq!(store.find_leaf(&e.leaf_hash).await.unwrap(), Some(4));
}

/// Two replicas (two `Log`s, two connections or pools) on one store: concurrent submissions
/// to both interleave into one gap-free log that both then publish identically.
async fn replicas_interleave(backend: Backend) {
    let w = World::new();
    let (s1, r1) = w.app(&backend).await;
    let (s2, r2) = w.app(&backend).await;
    let first = hub_submission(&w, 0);
    let mut tasks = Vec::new();
    for t in 0..4u64 {
        let routers = [r1.clone(), r2.clone()];
        let mut bodies: Vec<Vec<u8>> = (0..20).map(|i| hub_submission(&w, t * 1000 + i)).collect();
        if t == 0 {
            bodies[0] = first.clone();
        }
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::new();
            for (i, body) in bodies.into_iter().enumerate() {
                let (status, json) = submit(&routers[(i + t as usize) % 2], body).await;
                assert_eq!(status, StatusCode::CREATED, "{json}");
                got.push(json["index"].as_u64().unwrap());
            }
            got
        }));
    }
    let mut indices = Vec::new();
    for t in tasks {
        indices.extend(t.await.unwrap());
    }
    indices.sort_unstable();
    assert_eq!(indices, (0..80).collect::<Vec<u64>>());

    // A replay through the other replica is refused.
    assert_eq!(submit(&r2, first).await.0, StatusCode::CONFLICT);
    s1.log.refresh().await.unwrap();
    s2.log.refresh().await.unwrap();
    let (p1, p2) = (s1.log.published(), s2.log.published());
    assert_eq!((p1.size, p1.version), (80, p2.version));
    assert_eq!(p1.checkpoint, p2.checkpoint);
    assert_eq!(p1.snapshot, p2.snapshot);
    let verifier = s1.log.verifier_key().clone();
    let fetch = |router: axum::Router| {
        move |path: &str| {
            let path = path.to_owned();
            let router = router.clone();
            tokio::task::block_in_place(|| {
                tokio::runtime::Handle::current().block_on(async move {
                    let (status, _, body) = call(&router, get(&path)).await;
                    (status.as_u16(), body.to_vec())
                })
            })
        }
    };
    let l1 = fetch_verified_log(fetch(r1.clone()), &verifier);
    let l2 = fetch_verified_log(fetch(r2.clone()), &verifier);
    assert_eq!(l1, l2);
    assert_eq!(l1.len(), 80);

    // Each replica appends after the other's entries without an explicit refresh.
    let (status, json) = submit(&r1, hub_submission(&w, 5000)).await;
    assert_eq!((status, json["index"].as_u64()), (StatusCode::CREATED, Some(80)));
    let (status, json) = submit(&r2, hub_submission(&w, 5001)).await;
    assert_eq!((status, json["index"].as_u64()), (StatusCode::CREATED, Some(81)));
    assert_eq!(s2.log.published().size, 82);
    let (c, _, _) = call(&r2, get("/v1/proof/consistency/80/82")).await;
    assert_eq!(c, StatusCode::OK);
    // Replica 1 has published only 81, but a request for size 82 makes it catch up.
    assert_eq!(s1.log.published().size, 81);
    let (c, _, body) = call(&r1, get("/v1/proof/consistency/80/82")).await;
    assert_eq!(c, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    assert_eq!(s1.log.published().size, 82);
    assert_eq!(call(&r1, get("/tile/entries/000.p/82")).await.0, StatusCode::OK);
    // A replica restarted on the store resumes at the same size.
    let (s3, _) = w.app(&backend).await;
    assert_eq!(s3.log.published().size, 82);
    assert!(s3.log.published().version > s2.log.published().version);
}

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::common::sqlite()).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(backend) = super::common::postgres().await {
                        super::$name(backend).await;
                    }
                }
            )*
        }
    };
}

on_both_backends!(store_semantics, replicas_interleave);

/// A store whose entries no longer hash to the signed root refuses to load.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_sqlite_log_refuses_to_start() {
    let w = World::new();
    let backend = sqlite();
    let (_, router) = w.app(&backend).await;
    for n in 0..3 {
        assert_eq!(submit(&router, hub_submission(&w, n)).await.0, StatusCode::CREATED);
    }
    let weightseal_server::config::DatabaseUrl::Sqlite(path) = &backend.url else {
        unreachable!()
    };
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute("UPDATE entries SET leaf_hash = zeroblob(32) WHERE idx = 1", [])
        .unwrap();
    drop(conn);
    let store = open_store(&backend.url).await.unwrap();
    let signer = weightseal_server::keys::note_signer(ORIGIN, w.log_key.clone()).unwrap();
    let options = weightseal_server::LogOptions {
        origin: ORIGIN.to_owned(),
        snapshot_ttl: std::time::Duration::from_secs(60),
    };
    let err = weightseal_server::Log::open(store, signer, options, true)
        .await
        .unwrap_err();
    // Caught while reading the entries back (each body against its stored leaf hash), or at
    // the latest when their root is compared with the signed one.
    let text = err.to_string();
    assert!(text.contains("leaf hash") || text.contains("root"), "{err}");
}
