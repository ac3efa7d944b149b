//! Every endpoint through `app(state)` with `tower::ServiceExt::oneshot` (no socket), against
//! SQLite and against PostgreSQL: `sqlite::*` and `postgres::*` run the same suite.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a test fails by panicking")]

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::*;
use weightseal_verifier::revocation::merkle::{self, verify_consistency, verify_inclusion};
use weightseal_verifier::revocation::note::{open_note, Checkpoint};
use weightseal_verifier::revocation::snapshot::Snapshot;
use weightseal_verifier::revocation::tile::{decode_tile, ConsistencyProofDoc, InclusionProofDoc, TileRef};

async fn headers_of(router: &axum::Router, path: &str) -> axum::http::HeaderMap {
    call(router, get(path)).await.1
}

/// Decodes a tile with the client's decoder.
fn tile_entries(bytes: &[u8], index: u64, width: u64) -> Vec<Vec<u8>> {
    decode_tile(bytes, TileRef::new(index, width).unwrap()).unwrap()
}

async fn every_endpoint(backend: Backend) {
    let w = World::new();
    let (state, router) = w.app(&backend).await;
    let verifier = state.log.verifier_key().clone();

    // Empty log: a signed checkpoint of size 0, a snapshot, health, no tiles.
    let (status, headers, body) = call(&router, get("/checkpoint")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["cache-control"], "no-cache");
    let note = open_note(std::str::from_utf8(&body).unwrap(), std::slice::from_ref(&verifier)).unwrap();
    let cp = Checkpoint::parse_body(note.body()).unwrap();
    assert_eq!(
        (cp.origin.as_str(), cp.size, cp.root),
        (ORIGIN, 0, merkle::empty_root())
    );
    let (status, _, body) = call(&router, get("/v1/health")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&body).unwrap(),
        serde_json::json!({"status":"ok","size":0})
    );
    assert_eq!(call(&router, get("/tile/entries/000")).await.0, StatusCode::NOT_FOUND);

    // Submit 260 entries: one full tile and a partial one.
    let mut leaves = Vec::new();
    for n in 0..260u64 {
        let body = hub_submission(&w, n);
        let (status, json) = submit(&router, body.clone()).await;
        assert_eq!(status, StatusCode::CREATED, "{json}");
        assert_eq!(json["index"], n);
        assert_eq!(json["size"], n + 1);
        let sub = weightseal_verifier::revocation::entry::Submission::from_bytes(&body).unwrap();
        let leaf = sub.entry.as_bytes().to_vec();
        assert_eq!(json["leaf_hash"], hex::encode(merkle::leaf_hash(&leaf)));
        leaves.push(leaf);
    }
    let mut tree = merkle::MerkleTree::new();
    for l in &leaves {
        tree.push(merkle::leaf_hash(l));
    }

    // Checkpoint and snapshot: signed, size 260, the root of what we submitted; ETag → 304.
    let (status, headers, body) = call(&router, get("/checkpoint")).await;
    assert_eq!(status, StatusCode::OK);
    let note = open_note(std::str::from_utf8(&body).unwrap(), std::slice::from_ref(&verifier)).unwrap();
    let cp = Checkpoint::parse_body(note.body()).unwrap();
    assert_eq!((cp.size, cp.root), (260, tree.root()));
    let tag = headers["etag"].clone();
    let req = Request::get("/checkpoint")
        .header("if-none-match", tag.clone())
        .body(Body::empty())
        .unwrap();
    let (status, headers, body) = call(&router, req).await;
    assert_eq!(status, StatusCode::NOT_MODIFIED);
    assert!(body.is_empty());
    assert_eq!(headers["etag"], tag);
    let req = Request::get("/checkpoint")
        .header("if-none-match", "\"other\", W/".to_owned() + tag.to_str().unwrap())
        .body(Body::empty())
        .unwrap();
    assert_eq!(call(&router, req).await.0, StatusCode::NOT_MODIFIED);

    let (status, headers, body) = call(&router, get("/v1/snapshot")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["cache-control"], "no-cache");
    assert!(headers.contains_key("etag"));
    let snap = Snapshot::open(&body, std::slice::from_ref(&verifier)).unwrap();
    assert_eq!((snap.origin.as_str(), snap.size, snap.root), (ORIGIN, 260, tree.root()));
    assert_eq!(snap.expires - snap.issued, 86_400);
    snap.check_fresh(now()).unwrap();
    let version = snap.version;
    assert!(version >= 261, "one snapshot at start and one per append: {version}");

    // Tiles.
    let (status, headers, body) = call(&router, get("/tile/entries/000")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["cache-control"], "public, max-age=31536000, immutable");
    assert_eq!(tile_entries(&body, 0, 256), leaves[..256]);
    let tag = headers["etag"].clone();
    let req = Request::get("/tile/entries/000")
        .header("if-none-match", tag)
        .body(Body::empty())
        .unwrap();
    assert_eq!(call(&router, req).await.0, StatusCode::NOT_MODIFIED);
    let (status, headers, body) = call(&router, get("/tile/entries/001.p/4")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["cache-control"], "public, max-age=31536000, immutable");
    assert_eq!(tile_entries(&body, 1, 4), leaves[256..]);
    let (status, _, body) = call(&router, get("/tile/entries/000.p/10")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(tile_entries(&body, 0, 10), leaves[..10]);
    assert_eq!(call(&router, get("/tile/entries/001")).await.0, StatusCode::NOT_FOUND);
    assert_eq!(
        call(&router, get("/tile/entries/001.p/5")).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        headers_of(&router, "/tile/entries/000").await["content-type"],
        "application/octet-stream"
    );

    // Hash tiles (tlog-tiles): leaf hashes at level 0, roots of 256-leaf subtrees at level 1.
    let (status, headers, body) = call(&router, get("/tile/0/000")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["cache-control"], "public, max-age=31536000, immutable");
    assert_eq!(headers["content-type"], "application/octet-stream");
    let level0: Vec<u8> = leaves[..256].iter().flat_map(|l| merkle::leaf_hash(l)).collect();
    assert_eq!(body.to_vec(), level0);
    let (status, _, body) = call(&router, get("/tile/0/001.p/4")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body.to_vec(), tree.hash_tile(0, 1, 4).unwrap());
    let (status, _, body) = call(&router, get("/tile/1/000.p/1")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body.to_vec(), tree.root_at(256).unwrap());
    assert_eq!(call(&router, get("/tile/0/001.p/5")).await.0, StatusCode::NOT_FOUND);
    assert_eq!(call(&router, get("/tile/1/000")).await.0, StatusCode::NOT_FOUND);

    // Proofs, checked with the verifier's functions.
    for (old, new) in [(1u64, 260u64), (256, 260), (7, 100), (260, 260), (0, 260)] {
        let (status, _, body) = call(&router, get(&format!("/v1/proof/consistency/{old}/{new}"))).await;
        assert_eq!(status, StatusCode::OK, "{old}/{new}");
        let proof = ConsistencyProofDoc::parse(&body, old, new).unwrap();
        verify_consistency(
            old,
            new,
            &tree.root_at(old).unwrap(),
            &tree.root_at(new).unwrap(),
            &proof,
        )
        .unwrap();
    }
    for (size, index) in [(260u64, 0u64), (260, 259), (100, 57), (1, 0)] {
        let (status, _, body) = call(&router, get(&format!("/v1/proof/inclusion/{size}/{index}"))).await;
        assert_eq!(status, StatusCode::OK);
        let proof = InclusionProofDoc::parse(&body, size, index).unwrap();
        let leaf = merkle::leaf_hash(&leaves[index as usize]);
        verify_inclusion(&leaf, index, size, &proof, &tree.root_at(size).unwrap()).unwrap();
    }

    // Metrics.
    let (status, headers, body) = call(&router, get("/metrics")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(headers["content-type"].to_str().unwrap().starts_with("text/plain"));
    let text = String::from_utf8(body.to_vec()).unwrap();
    assert!(text.contains("weightseal_submissions_accepted_total 260"), "{text}");
    assert!(text.contains("weightseal_log_size 260"), "{text}");
    assert!(
        text.contains(&format!("weightseal_snapshot_version {version}")),
        "{text}"
    );
    assert!(
        text.contains("weightseal_snapshot_expires_timestamp_seconds "),
        "{text}"
    );
    assert!(
        text.contains("weightseal_http_requests_total{route=\"/v1/submit\",status=\"201\"} 260"),
        "{text}"
    );
    assert!(
        text.contains("weightseal_http_requests_total{route=\"/tile/{*path}\",status=\"200\"}"),
        "{text}"
    );
}

async fn bad_requests_get_4xx(backend: Backend) {
    let w = World::new();
    let (state, router) = w.app(&backend).await;
    for n in 0..3 {
        assert_eq!(submit(&router, hub_submission(&w, n)).await.0, StatusCode::CREATED);
    }
    let gets: &[(&str, u16)] = &[
        ("/tile/entries/abc", 400),
        ("/tile/entries/-1", 400),
        ("/tile/entries/5", 400),
        ("/tile/entries/0005", 400),
        ("/tile/entries/x000/005", 400),
        ("/tile/entries/+01", 400),
        ("/tile/entries/1e3", 400),
        ("/tile/entries/x999/x999/x999/x999/x999/x999/x999/999", 400),
        ("/tile/entries/x018/x446/x744/x073/x709/x551/615", 404),
        ("/tile/entries/005", 404),
        ("/tile/entries/000.p/0", 400),
        ("/tile/entries/000.p/256", 400),
        ("/tile/entries/000.p/abc", 400),
        ("/tile/entries/000.p/200", 404),
        ("/tile/entries/000.x/2", 400),
        ("/tile/entries/x018/x446/x744/x073/x709/x551/615.p/255", 404),
        ("/tile/entries/%FF", 400),
        ("/tile/0/000/1/2", 400),
        ("/tile/64/000", 400),
        ("/tile/0/000.p/200", 404),
        ("/tile/3/x018/x446/x744/x073/x709/x551/615", 404),
        ("/v1/entries/0", 404),
        ("/v1/proof/consistency/3/1", 400),
        ("/v1/proof/consistency/1/99", 404),
        ("/v1/proof/consistency/a/b", 400),
        ("/v1/proof/consistency/1", 404),
        ("/v1/proof/consistency/18446744073709551615/18446744073709551615", 404),
        ("/v1/proof/inclusion/3/3", 400),
        ("/v1/proof/inclusion/99/1", 404),
        ("/v1/proof/inclusion/x/1", 400),
        ("/nope", 404),
        ("/v1", 404),
        ("/", 404),
    ];
    for (path, want) in gets {
        let (status, headers, body) = call(&router, get(path)).await;
        assert_eq!(status.as_u16(), *want, "GET {path}: {}", String::from_utf8_lossy(&body));
        if status != StatusCode::NOT_FOUND || path.starts_with("/v1/") {
            assert!(headers.get("cache-control").is_none() || status.is_success(), "{path}");
        }
        let doc: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert!(doc["error"].is_string(), "{path}: {doc}");
    }

    let posts: Vec<(Request<Body>, u16)> = vec![
        (Request::post("/checkpoint").body(Body::empty()).unwrap(), 405),
        (Request::get("/v1/submit").body(Body::empty()).unwrap(), 405),
        (
            Request::post("/v1/submit")
                .header("content-type", "text/plain")
                .body(Body::from(hub_submission(&w, 10)))
                .unwrap(),
            415,
        ),
        (
            Request::post("/v1/submit")
                .body(Body::from(hub_submission(&w, 11)))
                .unwrap(),
            415,
        ),
        // Over the body limit (the limit of a submission carrying a lineage document).
        (post_cbor(vec![0u8; weightseal_server::app::MAX_BODY_BYTES + 1]), 413),
        (post_cbor(vec![0xff, 0x00, 0x13]), 400),
        (post_cbor(Vec::new()), 400),
        (post_cbor(vec![0x83, 0x01, 0x02, 0x03]), 400),
        (post_cbor(b"\xa1\x65entry\x41\x00".to_vec()), 400),
        (post_cbor(tampered(&w)), 400),
    ];
    for (req, want) in posts {
        let what = format!("{} {}", req.method(), req.uri());
        let (status, _, body) = call(&router, req).await;
        assert_eq!(status.as_u16(), want, "{what}: {}", String::from_utf8_lossy(&body));
        let doc: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert!(doc["error"].is_string() && doc["message"].is_string(), "{what}: {doc}");
    }
    // A body larger than the limit sent without a length (chunked) is refused too.
    let chunks = futures_chunks(weightseal_server::app::MAX_BODY_BYTES + (1 << 19));
    let req = Request::post("/v1/submit")
        .header("content-type", "application/cbor")
        .body(Body::from_stream(chunks))
        .unwrap();
    assert_eq!(call(&router, req).await.0, StatusCode::PAYLOAD_TOO_LARGE);

    // Still serving, nothing recorded by the garbage.
    let (status, _, body) = call(&router, get("/v1/health")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(serde_json::from_slice::<serde_json::Value>(&body).unwrap()["size"], 3);
    assert_eq!(submit(&router, hub_submission(&w, 3)).await.0, StatusCode::CREATED);
    assert_eq!(state.log.published().size, 4);
    let text = String::from_utf8(call(&router, get("/metrics")).await.2.to_vec()).unwrap();
    for reason in ["malformed", "bad_signature", "too_large", "unsupported_media_type"] {
        assert!(
            text.contains(&format!("weightseal_submissions_refused_total{{reason=\"{reason}\"}}")),
            "{reason}: {text}"
        );
    }
}

/// A valid submission whose entry signature no longer verifies.
fn tampered(w: &World) -> Vec<u8> {
    let body = hub_submission(w, 99);
    let sub = weightseal_verifier::revocation::entry::Submission::from_bytes(&body).unwrap();
    let mut sig = *sub.entry.signature();
    sig[0] ^= 1;
    let leaf = ciborium::Value::Map(vec![
        // Deterministic order: shorter key first.
        (
            ciborium::Value::Text("sig".into()),
            ciborium::Value::Bytes(sig.to_vec()),
        ),
        (
            ciborium::Value::Text("entry".into()),
            ciborium::Value::Bytes(sub.entry.entry_bytes().to_vec()),
        ),
    ]);
    let mut leaf_bytes = Vec::new();
    ciborium::into_writer(&leaf, &mut leaf_bytes).unwrap();
    let outer = ciborium::Value::Map(vec![(
        ciborium::Value::Text("entry".into()),
        ciborium::Value::Bytes(leaf_bytes),
    )]);
    let mut out = Vec::new();
    ciborium::into_writer(&outer, &mut out).unwrap();
    out
}

fn futures_chunks(total: usize) -> impl futures_core::Stream<Item = Result<Vec<u8>, std::io::Error>> + Send {
    let chunk = vec![0u8; 64 * 1024];
    let n = total.div_ceil(chunk.len());
    ChunkStream { chunk, left: n }
}

struct ChunkStream {
    chunk: Vec<u8>,
    left: usize,
}

impl futures_core::Stream for ChunkStream {
    type Item = Result<Vec<u8>, std::io::Error>;
    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        if self.left == 0 {
            return std::task::Poll::Ready(None);
        }
        self.left -= 1;
        std::task::Poll::Ready(Some(Ok(self.chunk.clone())))
    }
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

on_both_backends!(every_endpoint, bad_requests_get_4xx);
