//! The issuer policy end to end through `POST /v1/submit`, on SQLite and PostgreSQL: every
//! refusal is answered 400/403/409 and records nothing; allowed submissions are 201.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a test fails by panicking")]

mod common;

use std::path::Path;

use axum::http::StatusCode;
use common::*;
use weightseal_signer::{build_manifest, sign_manifest_bytes, ManifestOptions};
use weightseal_verifier::revocation::entry::{Action, Subject};
use weightseal_verifier::{Digest, SignatureFile};

/// A real weightseal signature file over the base-model fixture, signed by `key`.
fn signature_file(key: &ed25519_dalek::SigningKey) -> SignatureFile {
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/safetensors/base-model");
    let manifest = build_manifest(
        &model,
        Path::new("/nonexistent/weightseal.sig"),
        &ManifestOptions::default(),
    )
    .unwrap();
    let bytes = manifest.to_bytes().unwrap();
    let mut sig = SignatureFile::unsigned(bytes.clone());
    sig.add_signature(sign_manifest_bytes(&bytes, key));
    sig
}

async fn expect(router: &axum::Router, body: Vec<u8>, status: StatusCode, code: &str) -> serde_json::Value {
    let (got, json) = submit(router, body).await;
    assert_eq!(got, status, "{json}");
    if !code.is_empty() {
        assert_eq!(json["error"], code, "{json}");
    }
    json
}

async fn policy_end_to_end(backend: Backend) {
    let w = World::new();
    let (state, router) = w.app(&backend).await;
    let store = state.log.store().clone();
    let content = Subject::content(Digest::of(b"guardrail-stripped tensor"));

    // Refusals: nothing is recorded by any of them.
    let refusals: Vec<(&str, Vec<u8>, StatusCode, &str)> = vec![
        (
            "unknown issuer",
            submission(signed(&w.stranger, content, Action::Revoke), None),
            StatusCode::FORBIDDEN,
            "unknown_issuer",
        ),
        (
            "lab revoking content",
            submission(signed(&w.lab, content, Action::Revoke), None),
            StatusCode::FORBIDDEN,
            "out_of_scope",
        ),
        (
            "lab revoking a key it does not hold",
            submission(signed(&w.lab, Subject::key(key_id(&w.hub)), Action::Revoke), None),
            StatusCode::FORBIDDEN,
            "out_of_scope",
        ),
        (
            "lab revoking a manifest without authority",
            submission(
                signed(&w.lab, Subject::manifest(Digest::of(b"some manifest")), Action::Revoke),
                None,
            ),
            StatusCode::FORBIDDEN,
            "out_of_scope",
        ),
        (
            "lab revoking a manifest signed by someone else",
            {
                let sig = signature_file(&w.stranger);
                submission(
                    signed(&w.lab, Subject::manifest(sig.manifest_digest()), Action::Revoke),
                    Some(sig.to_bytes().unwrap()),
                )
            },
            StatusCode::FORBIDDEN,
            "out_of_scope",
        ),
        (
            "lab revoking another manifest than its authority file",
            {
                let sig = signature_file(&w.lab_model_key);
                submission(
                    signed(&w.lab, Subject::manifest(Digest::of(b"other")), Action::Revoke),
                    Some(sig.to_bytes().unwrap()),
                )
            },
            StatusCode::FORBIDDEN,
            "out_of_scope",
        ),
        (
            "hub revoking a key",
            submission(
                signed(&w.hub, Subject::key(key_id(&w.lab_model_key)), Action::Revoke),
                None,
            ),
            StatusCode::FORBIDDEN,
            "out_of_scope",
        ),
        (
            "stale entry",
            {
                let mut e = entry(&w.hub, content, Action::Revoke);
                e.time = now() - 2 * 86_400;
                submission(
                    weightseal_verifier::revocation::entry::SignedEntry::sign(&e, &w.hub).unwrap(),
                    None,
                )
            },
            StatusCode::BAD_REQUEST,
            "bad_time",
        ),
        (
            "entry from the future",
            {
                let mut e = entry(&w.hub, content, Action::Revoke);
                e.time = now() + 3600;
                submission(
                    weightseal_verifier::revocation::entry::SignedEntry::sign(&e, &w.hub).unwrap(),
                    None,
                )
            },
            StatusCode::BAD_REQUEST,
            "bad_time",
        ),
        (
            "garbage authority file",
            submission(
                signed(&w.lab, Subject::manifest(Digest::of(b"m")), Action::Revoke),
                Some(b"not a signature file".to_vec()),
            ),
            StatusCode::BAD_REQUEST,
            "",
        ),
    ];
    for (what, body, status, code) in refusals {
        let (got, json) = submit(&router, body).await;
        assert_eq!(got, status, "{what}: {json}");
        if !code.is_empty() {
            assert_eq!(json["error"], code, "{what}: {json}");
        }
        assert_eq!(store.count().await.unwrap(), 0, "{what} recorded something");
        assert_eq!(state.log.published().size, 0, "{what}");
    }

    // Allowed.
    let hub_content = submission(signed(&w.hub, content, Action::Revoke), None);
    let json = expect(&router, hub_content.clone(), StatusCode::CREATED, "").await;
    assert_eq!(json["index"], 0);
    expect(
        &router,
        submission(
            signed(&w.hub, Subject::manifest(Digest::of(b"fork")), Action::Revoke),
            None,
        ),
        StatusCode::CREATED,
        "",
    )
    .await;
    expect(
        &router,
        submission(
            signed(&w.lab, Subject::key(key_id(&w.lab_model_key)), Action::Revoke),
            None,
        ),
        StatusCode::CREATED,
        "",
    )
    .await;
    let sig = signature_file(&w.lab_model_key);
    expect(
        &router,
        submission(
            signed(&w.lab, Subject::manifest(sig.manifest_digest()), Action::Revoke),
            Some(sig.to_bytes().unwrap()),
        ),
        StatusCode::CREATED,
        "",
    )
    .await;
    // A reinstatement is a later entry.
    let json = expect(
        &router,
        submission(signed(&w.hub, content, Action::Reinstate), None),
        StatusCode::CREATED,
        "",
    )
    .await;
    assert_eq!(json["index"], 4);
    let version = state.log.published().version;

    // Replay: 409, nothing recorded, no new snapshot.
    let json = expect(&router, hub_content, StatusCode::CONFLICT, "replay").await;
    assert!(json["message"].as_str().unwrap().contains("index 0"), "{json}");
    assert_eq!(store.count().await.unwrap(), 5);
    assert_eq!(state.log.published().size, 5);
    assert_eq!(state.log.published().version, version);
    let text = String::from_utf8(call(&router, get("/metrics")).await.2.to_vec()).unwrap();
    assert!(
        text.contains("weightseal_submissions_refused_total{reason=\"replay\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("weightseal_submissions_refused_total{reason=\"unknown_issuer\"} 1"),
        "{text}"
    );
    assert!(text.contains("weightseal_submissions_accepted_total 5"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_policy_end_to_end() {
    policy_end_to_end(sqlite()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_policy_end_to_end() {
    if let Some(backend) = postgres().await {
        policy_end_to_end(backend).await;
    }
}
