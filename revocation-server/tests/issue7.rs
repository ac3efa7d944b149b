//! issue 7 ("revocations that can't be undone by the attacker, can't hit the innocent, and
//! can't be hidden"), server side, on SQLite and PostgreSQL (`sqlite::*`, `postgres::*`):
//! a revoked key stays dead (item 1), a batch is appended all or nothing (item 3), readers
//! never see a torn publication under concurrent writers on two replicas (item 5), and a body
//! declared over the limit is refused at once.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test fails by panicking"
)]

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use common::*;
use weightseal_log::policy::IssuerPolicy;
use weightseal_server::formats::Policy;
use weightseal_server::{app, AppState};
use weightseal_verifier::revocation::client::{self, HttpSource};
use weightseal_verifier::revocation::entry::{Action, BatchSubmission, SignedEntry, Subject};
use weightseal_verifier::revocation::merkle;
use weightseal_verifier::revocation::state::{RevocationState, Source, SourceError};
use weightseal_verifier::Digest;

/// The lab's issuer key also signs models (it is in its own `signing_keys`), and the lab
/// keeps a second, offline issuer key (`stranger` here) that may name the first.
fn lab_with_recovery_key(w: &World) -> Policy {
    let hex_key = |k: &ed25519_dalek::SigningKey| hex::encode(k.verifying_key().as_bytes());
    let json = serde_json::json!({"issuers": [
        {"name": "hub.example", "role": "hub", "public_key": hex_key(&w.hub)},
        {"name": "lab.example", "role": "lab", "public_key": hex_key(&w.lab),
         "signing_keys": [key_id(&w.lab).to_hex(), key_id(&w.lab_model_key).to_hex()]},
        {"name": "lab-recovery.example", "role": "lab", "public_key": hex_key(&w.stranger),
         "signing_keys": [key_id(&w.lab).to_hex()]},
    ]});
    Policy::from(IssuerPolicy::from_json(&json.to_string()).unwrap())
}

fn batch(entries: Vec<SignedEntry>) -> Vec<u8> {
    BatchSubmission {
        entries,
        authority: None,
        lineage: Vec::new(),
    }
    .to_bytes()
    .unwrap()
}

fn content(n: u64) -> Subject {
    Subject::content(Digest::of(&n.to_be_bytes()))
}

/// Item 1: once the lab's key is revoked, the log takes nothing it signs (not its own
/// reinstatement, not anything else, not even later in the same batch); the lab's other key
/// reinstates it, and then it may sign again.
async fn revoked_key_stays_dead(backend: Backend) {
    let w = World::new();
    let state = AppState::new(w.log(&backend).await, lab_with_recovery_key(&w));
    let router = app(state.clone());
    let lab_key = Subject::key(key_id(&w.lab));
    let model_key = Subject::key(key_id(&w.lab_model_key));

    let (status, json) = submit(&router, submission(signed(&w.lab, lab_key, Action::Revoke), None)).await;
    assert_eq!(status, StatusCode::CREATED, "{json}");
    // The thief tries to undo it with the stolen key.
    let (status, json) = submit(&router, submission(signed(&w.lab, lab_key, Action::Reinstate), None)).await;
    assert_eq!(
        (status, json["error"].as_str()),
        (StatusCode::FORBIDDEN, Some("out_of_scope")),
        "{json}"
    );
    // ... or to use it for anything else.
    let (status, json) = submit(&router, submission(signed(&w.lab, model_key, Action::Revoke), None)).await;
    assert_eq!(
        (status, json["error"].as_str()),
        (StatusCode::FORBIDDEN, Some("revoked_issuer")),
        "{json}"
    );
    assert_eq!(state.log.published().size, 1);

    // The recovery key reinstates it; then it signs again.
    let (status, json) = submit(
        &router,
        submission(signed(&w.stranger, lab_key, Action::Reinstate), None),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{json}");
    let (status, json) = submit(&router, submission(signed(&w.lab, model_key, Action::Revoke), None)).await;
    assert_eq!(status, StatusCode::CREATED, "{json}");

    // Within one batch: revoking the key, then signing with it, refuses the whole batch.
    let body = batch(vec![
        signed(&w.stranger, lab_key, Action::Revoke),
        signed(&w.lab, model_key, Action::Reinstate),
    ]);
    let (status, json) = submit(&router, body).await;
    assert_eq!(
        (status, json["error"].as_str()),
        (StatusCode::FORBIDDEN, Some("revoked_issuer")),
        "{json}"
    );
    assert_eq!(state.log.published().size, 3);

    // A second replica on the same store applies the same rule to what the first appended.
    let other = AppState::new(w.log(&backend).await, lab_with_recovery_key(&w));
    let other_router = app(other.clone());
    let (status, _) = submit(
        &other_router,
        submission(signed(&w.stranger, lab_key, Action::Revoke), None),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    // This replica learns of it inside its own append transaction.
    let (status, json) = submit(&router, submission(signed(&w.lab, model_key, Action::Reinstate), None)).await;
    assert_eq!(
        (status, json["error"].as_str()),
        (StatusCode::FORBIDDEN, Some("revoked_issuer")),
        "{json}"
    );
}

/// Item 3: a batch is appended at consecutive indexes under one new snapshot version, or not
/// at all when any of its entries is refused.
async fn batch_is_all_or_nothing(backend: Backend) {
    let w = World::new();
    let (state, router) = w.app(&backend).await;
    let v0 = state.log.published().version;
    let entries: Vec<SignedEntry> = (0..3).map(|n| signed(&w.hub, content(n), Action::Revoke)).collect();
    let (status, json) = submit(&router, batch(entries.clone())).await;
    assert_eq!(status, StatusCode::CREATED, "{json}");
    assert_eq!((json["index"].as_u64(), json["size"].as_u64()), (Some(0), Some(3)));
    let hashes: Vec<String> = entries.iter().map(|e| hex::encode(e.leaf_hash())).collect();
    assert_eq!(json["leaf_hashes"], serde_json::json!(hashes));
    assert_eq!(json["leaf_hash"], serde_json::json!(hashes[0]));
    assert_eq!(state.log.published().version, v0 + 1, "one batch, one snapshot version");

    // One entry out of scope (a hub may not name keys): nothing of the batch is appended.
    let good = signed(&w.hub, content(10), Action::Revoke);
    let bad = signed(&w.hub, Subject::key(key_id(&w.lab)), Action::Revoke);
    let (status, json) = submit(&router, batch(vec![good.clone(), bad])).await;
    assert_eq!(
        (status, json["error"].as_str()),
        (StatusCode::FORBIDDEN, Some("out_of_scope")),
        "{json}"
    );
    // A replay of a logged entry refuses its new companions too.
    let (status, json) = submit(&router, batch(vec![good.clone(), entries[1].clone()])).await;
    assert_eq!(
        (status, json["error"].as_str()),
        (StatusCode::CONFLICT, Some("replay")),
        "{json}"
    );
    let p = state.log.published();
    assert_eq!((p.size, p.version), (3, v0 + 1));
    assert_eq!(state.log.store().find_leaf(&good.leaf_hash()).await.unwrap(), None);
    // The good entry alone is fine, at the next index.
    let (status, json) = submit(&router, submission(good, None)).await;
    assert_eq!(
        (status, json["index"].as_u64()),
        (StatusCode::CREATED, Some(3)),
        "{json}"
    );
    assert!(
        json.get("leaf_hashes").is_none(),
        "the one-entry form answers as before: {json}"
    );
}

/// Two replicas behind a round-robin load balancer: every request goes to the next replica.
struct RoundRobin {
    replicas: Vec<HttpSource>,
    next: std::sync::atomic::AtomicUsize,
}

impl Source for RoundRobin {
    fn get(&self, path: &str) -> Result<Option<Vec<u8>>, SourceError> {
        let i = self.next.fetch_add(1, Ordering::SeqCst) % self.replicas.len();
        self.replicas[i].get(path)
    }
}

/// Item 5: 4 writers submitting to one of two replicas of one store while a reader syncs 200
/// times through a load balancer that sends each request to the other replica: every sync
/// succeeds (no torn checkpoint/snapshot pair, no rollback, no missing tile).
async fn readers_never_see_a_torn_publication(backend: Backend) {
    let w = World::new();
    let mut urls = Vec::new();
    let mut verifier = None;
    for _ in 0..2 {
        let (state, router) = w.app(&backend).await;
        verifier = Some(state.log.verifier_key().clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        urls.push(format!("http://{}", listener.local_addr().unwrap()));
        tokio::spawn(async move { axum::serve(listener, router).await });
    }
    let verifier = verifier.unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicU64::new(0));
    let mut writers = Vec::new();
    for writer in 0..4u64 {
        let (stop, written, url, hub) = (
            stop.clone(),
            written.clone(),
            // Every write goes to the first replica (the write endpoint); reads are balanced
            // over both, so the second replica only knows what it reads back from the store.
            urls[0].clone(),
            w.hub.clone(),
        );
        writers.push(std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(Ordering::SeqCst) {
                let e = signed(&hub, content(writer << 32 | n), Action::Revoke);
                client::submit(&url, &e, None).unwrap();
                written.fetch_add(1, Ordering::SeqCst);
                n += 1;
            }
        }));
    }
    let reader = {
        let (urls, written) = (urls.clone(), written.clone());
        std::thread::spawn(move || {
            // Let the writers get going so that the syncs overlap the writes.
            let start = Instant::now();
            while written.load(Ordering::SeqCst) < 8 && start.elapsed() < Duration::from_secs(30) {
                std::thread::sleep(Duration::from_millis(5));
            }
            let mut state = RevocationState::in_memory(vec![verifier]);
            let mut failures = Vec::new();
            let mut grew = 0;
            let balancer = RoundRobin {
                replicas: urls.iter().map(|u| HttpSource::new(u).unwrap()).collect(),
                next: std::sync::atomic::AtomicUsize::new(0),
            };
            for i in 0..200 {
                // Spread the syncs over the writes rather than racing through them.
                std::thread::sleep(Duration::from_millis(2));
                match state.sync(&balancer, now()) {
                    Ok(r) if r.new_size > r.old_size => grew += 1,
                    Ok(_) => {}
                    Err(e) => failures.push(format!("sync {i}: {e}")),
                }
            }
            (failures, grew, state.size())
        })
    };
    let (failures, grew, size) = tokio::task::spawn_blocking(move || reader.join().unwrap())
        .await
        .unwrap();
    stop.store(true, Ordering::SeqCst);
    for t in writers {
        tokio::task::spawn_blocking(move || t.join().unwrap()).await.unwrap();
    }
    assert!(
        failures.is_empty(),
        "{} of 200 syncs failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(
        grew >= 10,
        "only {grew} syncs saw new entries: the syncs did not overlap the writes"
    );
    assert!(size > 0 && size <= written.load(Ordering::SeqCst));
}

/// Also: a request declaring a body over the limit is answered 413 at once, without the body.
async fn declared_oversized_body_is_refused_at_once(backend: Backend) {
    use std::io::{Read as _, Write as _};
    let w = World::new();
    let (_state, router) = w.app(&backend).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move { axum::serve(listener, router).await });
    let answer = tokio::task::spawn_blocking(move || {
        let mut s = std::net::TcpStream::connect(&addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        write!(
            s,
            "POST /v1/submit HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/cbor\r\nContent-Length: {}\r\n\r\n",
            weightseal_server::app::MAX_BODY_BYTES + 1
        )
        .unwrap();
        let started = Instant::now();
        let mut buf = [0u8; 512];
        let n = s.read(&mut buf).unwrap_or(0);
        (String::from_utf8_lossy(&buf[..n]).into_owned(), started.elapsed())
    })
    .await
    .unwrap();
    assert!(answer.0.starts_with("HTTP/1.1 413"), "{answer:?}");
    assert!(answer.1 < Duration::from_secs(3), "{answer:?}");
    // The leaf hash helper agrees with the receipt format used above.
    assert_eq!(hex::encode(merkle::leaf_hash(b"x")).len(), 64);
}

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name(super::common::sqlite()).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    if let Some(backend) = super::common::postgres().await {
                        super::$name(backend).await;
                    }
                }
            )*
        }
    };
}

on_both_backends!(
    revoked_key_stays_dead,
    batch_is_all_or_nothing,
    readers_never_see_a_torn_publication,
    declared_oversized_body_is_refused_at_once,
);
