//! The real binary as separate processes: two replicas sharing one PostgreSQL store, and the
//! default SQLite database created in the current folder on first start.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a test fails by panicking")]

mod common;

use std::time::{Duration, Instant};

use common::*;

/// Two `serve` processes on one PostgreSQL schema: submissions to both interleave into one
/// log, which both then publish with identical signed notes and tiles.
#[test]
fn postgres_two_replica_processes_share_one_log() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let Some(backend) = rt.block_on(postgres()) else { return };
    let weightseal_server::config::DatabaseUrl::Postgres(url) = &backend.url else {
        unreachable!()
    };
    let w = World::new();
    let a = Server::start(&w, url, &["--sync-interval", "1s"]);
    let b = Server::start(&w, url, &["--sync-interval", "1s"]);
    let mut indices = Vec::new();
    let threads: Vec<_> = [a.addr.clone(), b.addr.clone()]
        .into_iter()
        .enumerate()
        .map(|(t, addr)| {
            let bodies: Vec<Vec<u8>> = (0..30).map(|i| hub_submission(&w, t as u64 * 1000 + i)).collect();
            std::thread::spawn(move || {
                bodies
                    .iter()
                    .map(|body| {
                        let (status, resp) =
                            http(&addr, "POST", "/v1/submit", Some(("application/cbor", body))).unwrap();
                        assert_eq!(status, 201, "{}", String::from_utf8_lossy(&resp));
                        let json: serde_json::Value = serde_json::from_slice(&resp).unwrap();
                        json["index"].as_u64().unwrap()
                    })
                    .collect::<Vec<u64>>()
            })
        })
        .collect();
    for t in threads {
        indices.extend(t.join().unwrap());
    }
    indices.sort_unstable();
    assert_eq!(indices, (0..60).collect::<Vec<u64>>());

    // Within a sync interval or two both replicas publish the same latest notes.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (ca, cb) = (a.get("/checkpoint"), b.get("/checkpoint"));
        let (sa, sb) = (a.get("/v1/snapshot"), b.get("/v1/snapshot"));
        if ca == cb && sa == sb {
            break;
        }
        assert!(Instant::now() < deadline, "replicas did not converge");
        std::thread::sleep(Duration::from_millis(200));
    }
    let verifier = weightseal_server::keys::note_signer(ORIGIN, w.log_key.clone())
        .unwrap()
        .verifier_key();
    let la = fetch_verified_log(|p| a.get(p), &verifier);
    let lb = fetch_verified_log(|p| b.get(p), &verifier);
    assert_eq!(la.len(), 60);
    assert_eq!(la, lb);
    drop((a, b));
    drop(backend);
}

/// Without `--database`, `serve` creates `weightseal-revocations.db` in the current folder.
#[test]
fn default_database_is_created_in_the_current_folder() {
    let w = World::new();
    let cwd = tempfile::tempdir().unwrap();
    let server = Server::spawn(&w, &[], Some(cwd.path()));
    assert_eq!(server.get("/v1/health").0, 200);
    let (status, _) = http(
        &server.addr,
        "POST",
        "/v1/submit",
        Some(("application/cbor", &hub_submission(&w, 1))),
    )
    .unwrap();
    assert_eq!(status, 201);
    assert!(cwd.path().join("weightseal-revocations.db").is_file());
    drop(server);
    // Restarted in the same folder, it finds the entry again.
    let server = Server::spawn(&w, &[], Some(cwd.path()));
    let (_, body) = server.get("/v1/health");
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(json, serde_json::json!({"status": "ok", "size": 1}));
}
