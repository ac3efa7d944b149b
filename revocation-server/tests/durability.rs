//! Durability: the real binary on SQLite, killed with SIGKILL during a burst of submissions
//! from several threads; after a restart on the same file every acknowledged (201) entry is at
//! its acknowledged index and the leaves hash to the signed checkpoint. Also: SIGTERM finishes
//! gracefully. The PostgreSQL variant runs the same burst against a fresh schema.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a test fails by panicking")]

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use weightseal_verifier::revocation::entry::Submission;
use weightseal_verifier::revocation::merkle;

fn kill_mid_burst(w: &World, database: &str) {
    let server = Server::start(w, database, &[]);
    let addr = server.addr.clone();
    let acked: Arc<Mutex<Vec<(u64, usize)>>> = Arc::default();
    let next = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut threads = Vec::new();
    let bodies: Arc<Vec<Vec<u8>>> = Arc::new((0..5000).map(|n| hub_submission(w, n)).collect());
    for _ in 0..4 {
        let (addr, acked, next, stop, bodies) =
            (addr.clone(), acked.clone(), next.clone(), stop.clone(), bodies.clone());
        threads.push(std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let n = next.fetch_add(1, Ordering::Relaxed) as usize;
                let Some(body) = bodies.get(n) else { break };
                match http(&addr, "POST", "/v1/submit", Some(("application/cbor", body))) {
                    Ok((201, resp)) => {
                        let json: serde_json::Value = serde_json::from_slice(&resp).unwrap();
                        acked.lock().unwrap().push((json["index"].as_u64().unwrap(), n));
                    }
                    Ok((status, resp)) => panic!("unexpected {status}: {}", String::from_utf8_lossy(&resp)),
                    Err(_) => break, // the server is gone
                }
            }
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while acked.lock().unwrap().len() < 150 {
        assert!(Instant::now() < deadline, "no progress");
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut server = server;
    server.child.kill().unwrap(); // SIGKILL, mid-burst
    server.child.wait().unwrap();
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= 150);

    let restarted = Server::start(w, database, &[]);
    let verifier = weightseal_server::keys::note_signer(ORIGIN, w.log_key.clone())
        .unwrap()
        .verifier_key();
    let leaves = fetch_verified_log(|p| restarted.get(p), &verifier);
    for (index, n) in &acked {
        let leaf = Submission::from_bytes(&bodies[*n]).unwrap().entry.into_bytes();
        assert_eq!(
            leaves.get(*index as usize).map(|l| merkle::leaf_hash(l)),
            Some(merkle::leaf_hash(&leaf)),
            "acknowledged entry {index} lost"
        );
    }
    eprintln!(
        "{} acknowledged, {} in the log after SIGKILL",
        acked.len(),
        leaves.len()
    );

    // It keeps accepting after the restart, and a replay of an acknowledged entry is 409.
    let (status, _) = http(
        &restarted.addr,
        "POST",
        "/v1/submit",
        Some(("application/cbor", &hub_submission(w, 100_000))),
    )
    .unwrap();
    assert_eq!(status, 201);
    let (_, n) = acked[acked.len() / 2];
    let (status, _) = http(
        &restarted.addr,
        "POST",
        "/v1/submit",
        Some(("application/cbor", &bodies[n])),
    )
    .unwrap();
    assert_eq!(status, 409);
}

#[test]
fn sqlite_sigkill_mid_burst_keeps_every_acknowledged_entry() {
    let w = World::new();
    let db = w.dir.path().join("durable.db");
    kill_mid_burst(&w, &format!("sqlite:{}", db.display()));
}

#[test]
fn postgres_sigkill_mid_burst_keeps_every_acknowledged_entry() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let Some(backend) = rt.block_on(postgres()) else { return };
    let weightseal_server::config::DatabaseUrl::Postgres(url) = &backend.url else {
        unreachable!()
    };
    let w = World::new();
    kill_mid_burst(&w, url);
    drop(backend);
}

/// SIGTERM while a submission is half-sent: the server finishes that request (201, recorded)
/// and then exits cleanly.
#[test]
fn sigterm_finishes_requests_in_flight() {
    use std::io::{Read as _, Write as _};
    let w = World::new();
    let db = w.dir.path().join("term.db");
    let database = format!("sqlite:{}", db.display());
    let mut server = Server::start(&w, &database, &[]);
    assert_eq!(server.get("/v1/health").0, 200);

    let body = hub_submission(&w, 7);
    let mut stream = std::net::TcpStream::connect(&server.addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let head = format!(
        "POST /v1/submit HTTP/1.1\r\nHost: x\r\nContent-Type: application/cbor\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    let half = body.len() / 2;
    stream.write_all(&body[..half]).unwrap();
    stream.flush().unwrap();
    std::thread::sleep(Duration::from_millis(300));

    let pid = server.child.id().to_string();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(status.success());
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        server.child.try_wait().unwrap().is_none(),
        "exited with a request in flight"
    );

    stream.write_all(&body[half..]).unwrap();
    let mut resp = Vec::new();
    stream.read_to_end(&mut resp).unwrap();
    let text = String::from_utf8_lossy(&resp);
    assert!(text.starts_with("HTTP/1.1 201"), "{text}");

    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(exit) = server.child.try_wait().unwrap() {
            assert!(exit.success(), "{exit:?}");
            break;
        }
        assert!(Instant::now() < deadline, "did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
    // New connections are refused now; the entry was recorded.
    assert!(http(&server.addr, "GET", "/v1/health", None).is_err());
    let restarted = Server::start(&w, &database, &[]);
    let (_, body) = restarted.get("/v1/health");
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(json["size"], 1);
}

#[test]
fn snapshots_are_resigned_on_schedule() {
    let w = World::new();
    let db = w.dir.path().join("resign.db");
    let server = Server::start(
        &w,
        &format!("sqlite:{}", db.display()),
        &["--resign-interval", "1s", "--snapshot-ttl", "60s"],
    );
    let version = |server: &Server| -> (u64, u64) {
        let (status, body) = server.get("/v1/snapshot");
        assert_eq!(status, 200);
        let text = String::from_utf8(body).unwrap();
        let field = |name: &str| -> u64 {
            text.lines()
                .find_map(|l| l.strip_prefix(name))
                .unwrap()
                .trim()
                .parse()
                .unwrap()
        };
        (field("version "), field("expires ") - field("issued "))
    };
    let (first, ttl) = version(&server);
    assert_eq!(ttl, 60);
    std::thread::sleep(Duration::from_millis(2500));
    let (later, _) = version(&server);
    assert!(later > first, "{first} -> {later}");
    // The resign interval must be shorter than the lifetime.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_weightseal-server"))
        .args(["serve", "--resign-interval", "2h", "--snapshot-ttl", "1h", "--key"])
        .arg(&w.log_key_path)
        .arg("--issuers")
        .arg(&w.issuers_path)
        .output()
        .unwrap();
    assert!(!out.status.success());
}
