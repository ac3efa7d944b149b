//! `lineage` entries at the log (spec/revocation.md §2.3, §6.1, §6.4): a submission carries the
//! document its entry names; one without it (and not already held), with a malformed document,
//! with another document, or with an unreferenced one is refused and records nothing; the
//! document is served back at its content-addressed path and written by the static export;
//! the issuer policy applies as to every entry (a hub may, a lab may not). Both backends.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a test fails by panicking")]

mod common;

use axum::http::StatusCode;
use common::*;
use weightseal_server::export::export;
use weightseal_verifier::fingerprint::lineage::ForkDelta;
use weightseal_verifier::fingerprint::{plan, Fingerprint, TensorPrint};
use weightseal_verifier::revocation::entry::{Action, BatchSubmission, SignedEntry, Subject};
use weightseal_verifier::revocation::lineage::{lineage_path, LineageDoc};

fn print(seed: u32, scale: f32) -> Fingerprint {
    let mut x = seed;
    Fingerprint {
        tensors: (0..3)
            .map(|i| TensorPrint {
                name: format!("m.safetensors/t{i}"),
                dtype: "F32".into(),
                rows: 16,
                cols: 16,
                values: (0..plan(16, 16).len())
                    .map(|_| {
                        x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                        ((x >> 8) as f32 / (1u32 << 24) as f32 - 0.5) * scale
                    })
                    .collect(),
            })
            .collect(),
    }
}

fn doc(seed: u32) -> LineageDoc {
    let base = print(seed, 1.0);
    let mut fork = base.clone();
    for (t, d) in fork.tensors.iter_mut().zip(print(seed + 1, 0.02).tensors) {
        for (v, dv) in t.values.iter_mut().zip(d.values) {
            *v += dv;
        }
    }
    LineageDoc::new(&ForkDelta::new(&base, &fork)).unwrap()
}

fn body(entries: Vec<SignedEntry>, lineage: Vec<LineageDoc>) -> Vec<u8> {
    BatchSubmission {
        entries,
        authority: None,
        lineage,
    }
    .to_bytes()
    .unwrap()
}

/// `body` with the carried document's bytes replaced by `bytes` (same length).
fn with_document_bytes(good: &LineageDoc, entry: SignedEntry, bytes: &[u8]) -> Vec<u8> {
    let mut raw = body(vec![entry], vec![good.clone()]);
    let at = raw
        .windows(good.as_bytes().len())
        .position(|w| w == good.as_bytes())
        .unwrap();
    raw[at..at + bytes.len()].copy_from_slice(bytes);
    raw
}

async fn lineage_submission_rules(backend: Backend) {
    let w = World::new();
    let (state, router) = w.app(&backend).await;
    let d = doc(1);
    let revoke = || signed(&w.hub, d.subject(), Action::Revoke);

    // Without its document (and none held): refused, nothing recorded.
    let (status, answer) = submit(&router, body(vec![revoke()], Vec::new())).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert_eq!(answer["error"], "bad_lineage");
    assert!(
        answer["message"].as_str().unwrap().contains(&d.digest().to_hex()),
        "{answer}"
    );
    // With another valid document (not the one the entry names).
    let other = doc(7);
    let (status, answer) = submit(&router, body(vec![revoke()], vec![other.clone()])).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .contains("named by no lineage entry"),
        "{answer}"
    );
    // With a malformed document (one byte of its format name changed).
    let mut broken = d.as_bytes().to_vec();
    let n = broken.len();
    broken[n - 1] ^= 0x20;
    let (status, answer) = submit(&router, with_document_bytes(&d, revoke(), &broken)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert_eq!(answer["error"], "bad_lineage");
    assert!(answer["message"].as_str().unwrap().contains("lineage[0]"), "{answer}");
    // A lab may not issue lineage entries (the issuer policy applies as to content).
    let lab_entry = signed(&w.lab, d.subject(), Action::Revoke);
    let (status, answer) = submit(&router, body(vec![lab_entry], vec![d.clone()])).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    assert_eq!(answer["error"], "out_of_scope");
    assert_eq!(state.log.published().size, 0, "nothing was recorded");
    assert_eq!(
        call(&router, get(&format!("/{}", lineage_path(&d.digest())))).await.0,
        StatusCode::NOT_FOUND
    );

    // With its document: accepted, and the document is served back, immutable.
    let (status, answer) = submit(&router, body(vec![revoke()], vec![d.clone()])).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    let (status, headers, served) = call(&router, get(&format!("/{}", lineage_path(&d.digest())))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(&served[..], d.as_bytes());
    assert!(headers["cache-control"].to_str().unwrap().contains("immutable"));
    let upper = format!(
        "/{}",
        lineage_path(&d.digest())
            .to_uppercase()
            .replace("V1/LINEAGE", "v1/lineage")
    );
    assert_eq!(call(&router, get(&upper)).await.0, StatusCode::BAD_REQUEST);

    // A later entry about the same document (a reinstatement) may leave it out: it is held.
    let reinstate = signed(&w.hub, d.subject(), Action::Reinstate);
    let (status, answer) = submit(&router, body(vec![reinstate], Vec::new())).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    assert_eq!(state.log.published().size, 2);

    // Over 1 MiB without a lineage document: too large, although the body limit allows more.
    let big = vec![0u8; (1 << 20) + 16];
    let content = Subject::content(weightseal_verifier::Digest::of(b"x"));
    let mut raw = body(vec![signed(&w.hub, content, Action::Revoke)], Vec::new());
    // An unknown field (sorting after "entries") holding the padding: the size is checked first.
    raw[0] += 1;
    raw.extend_from_slice(b"\x68zzzzzzzz\x5a");
    raw.extend_from_slice(&(big.len() as u32).to_be_bytes());
    raw.extend_from_slice(&big);
    let (status, answer) = submit(&router, raw).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{answer}");

    // The static export carries the document at the same path.
    let out = tempfile::tempdir().unwrap();
    let summary = export(&state.log, out.path()).await.unwrap();
    let path = lineage_path(&d.digest());
    assert!(summary.paths.contains(&path), "{:?}", summary.paths);
    assert_eq!(std::fs::read(out.path().join(&path)).unwrap(), d.as_bytes());
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

on_both_backends!(lineage_submission_rules);
