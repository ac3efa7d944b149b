//! `bench revocation`: (a) lookups of a 10,000-chunk manifest against 1,000,000 entries;
//! (b) syncing a 1-entry delta onto a 1,000,000-entry state over HTTP (bytes and time);
//! (c) requests per second for `/checkpoint` and `/v1/snapshot` from the live
//! `weightseal-server` and from its static export served by a tower-http `ServeDir` app,
//! in the same run.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use serde_json::json;
use weightseal_verifier::revocation::client::{submit, HttpSource};
use weightseal_verifier::revocation::entry::{Action, Entry, Reason, Subject};
use weightseal_verifier::revocation::note::NoteSignerKey;
use weightseal_verifier::revocation::state::{DirSource, LogEntry, RevocationState};
use weightseal_verifier::revocation::testing::{public, Publisher};
use weightseal_verifier::revocation::tile::{encode_tile, tiles_covering, CHECKPOINT_PATH, SNAPSHOT_PATH};
use weightseal_verifier::{Chunk, ChunkRole, Digest, FileEntry, FileKind, KeyId};

#[derive(Args, Debug)]
pub struct RevocationArgs {
    /// Entries in the log for (a) and (b).
    #[arg(long, default_value_t = 1_000_000)]
    entries: u64,
    /// Chunks in the manifest for (a).
    #[arg(long, default_value_t = 10_000)]
    chunks: u64,
    /// Seconds of load per endpoint and server for (c).
    #[arg(long, default_value_t = 3.0)]
    load_seconds: f64,
    /// Concurrent keep-alive connections of the load generator.
    #[arg(long, default_value_t = 8)]
    connections: usize,
    /// Folder for the exported log and the states [default: a temporary folder].
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Print the results as JSON on stdout.
    #[arg(long)]
    json: bool,
}

fn now() -> u64 {
    // A benchmark on a machine without a readable clock has nothing to measure.
    weightseal_verifier::clock::now_unix().expect("the system clock")
}

fn digest_of(i: u64, salt: u8) -> Digest {
    let mut b = i.to_le_bytes().to_vec();
    b.push(salt);
    Digest::of(&b)
}

fn note(msg: &str) {
    eprintln!("bench: {msg}");
}

pub fn run(args: &RevocationArgs) -> Result<std::process::ExitCode, String> {
    let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
    let dir = args.dir.clone().unwrap_or_else(|| tmp.path().to_path_buf());
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let mut rows: Vec<(String, String)> = Vec::new();
    let mut out = serde_json::Map::new();

    // (a) Lookups.
    note(&format!("(a) building an in-memory state of {} entries", args.entries));
    let issuer = KeyId::of_raw_public_key(&[7u8; 32]);
    let entries: Vec<LogEntry> = (0..args.entries)
        .map(|i| LogEntry {
            index: i,
            subject: Subject::content(digest_of(i, 0)),
            action: Action::Revoke,
            reason: Reason::GuardrailsRemoved,
            issuer,
            time: 0,
            evidence: None,
        })
        .collect();
    let state = RevocationState::bench_with_entries(entries);
    let chunks: Vec<Chunk> = (0..args.chunks)
        .map(|i| Chunk {
            role: ChunkRole::Tensor(format!("t{i}")),
            offset: i * 4096,
            len: 4096,
            digest: digest_of(i, 1),
        })
        .collect();
    let files = vec![FileEntry {
        path: "model.safetensors".into(),
        size: args.chunks * 4096,
        kind: FileKind::Safetensors,
        chunk_size: None,
        chunks,
        digest: digest_of(0, 2),
    }];
    let runs = 50;
    let started = Instant::now();
    let mut hits = 0;
    for _ in 0..runs {
        hits += state.check_files(std::hint::black_box(&files)).len();
    }
    let per_check = started.elapsed().as_secs_f64() / f64::from(runs);
    if hits != 0 {
        return Err("unexpected hits in the lookup benchmark".into());
    }
    rows.push((
        format!("(a) check {} chunks vs {} entries", args.chunks, args.entries),
        format!(
            "{:.3} ms per check ({:.0} ns per digest)",
            per_check * 1e3,
            per_check * 1e9 / (args.chunks + 1) as f64
        ),
    ));
    out.insert(
        "lookup".into(),
        json!({"entries": args.entries, "chunks": args.chunks, "runs": runs, "seconds_per_check": per_check}),
    );
    drop(state);

    // (b) Delta sync over HTTP.
    note(&format!(
        "(b) signing {} entries and exporting the log",
        args.entries + 1
    ));
    let issuer_key = weightseal_signer::generate_keypair().map_err(|e| e.to_string())?;
    let log_key = weightseal_signer::generate_keypair().map_err(|e| e.to_string())?;
    let signer = NoteSignerKey::new("bench.weightseal-revocations", log_key).map_err(|e| e.to_string())?;
    let verifier = signer.verifier_key();
    let mut publisher = Publisher::new(signer);
    let t = now();
    let all: Vec<Entry> = (0..=args.entries)
        .map(|i| Entry {
            subject: Subject::content(digest_of(i, 3)),
            action: Action::Revoke,
            reason: Reason::Other,
            issuer: public(&issuer_key),
            time: t,
            evidence: None,
        })
        .collect();
    let started = Instant::now();
    let (head, last) = all.split_at(args.entries as usize);
    publisher.append_many(head, &issuer_key).map_err(|e| e.to_string())?;
    let export = dir.join("export");
    publisher.export(&export, t).map_err(|e| e.to_string())?;
    note(&format!(
        "    signed and exported in {:.1} s",
        started.elapsed().as_secs_f64()
    ));
    let state_dir = dir.join("state");
    let _ = std::fs::remove_dir_all(&state_dir);
    let mut client = RevocationState::open(&state_dir, vec![verifier.clone()]).map_err(|e| e.to_string())?;
    let started = Instant::now();
    let full = client
        .sync(&DirSource::new(&export), now())
        .map_err(|e| e.to_string())?;
    let full_secs = started.elapsed().as_secs_f64();
    note(&format!(
        "    initial sync of {} entries from the folder: {full_secs:.1} s",
        full.new_size
    ));
    // Publish one more entry: only the changed documents are rewritten.
    publisher.append_many(last, &issuer_key).map_err(|e| e.to_string())?;
    let size = publisher.tree.len();
    let write = |path: &str, bytes: &[u8]| std::fs::write(export.join(path), bytes).map_err(|e| e.to_string());
    write(
        CHECKPOINT_PATH,
        publisher.checkpoint_note().map_err(|e| e.to_string())?.as_bytes(),
    )?;
    write(
        SNAPSHOT_PATH,
        publisher.snapshot_note(now()).map_err(|e| e.to_string())?.as_bytes(),
    )?;
    if let Some(tile) = tiles_covering(size - 1, size).last() {
        let leaves = &publisher.leaves[tile.first() as usize..tile.end() as usize];
        let p = export.join(tile.path());
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
        }
        std::fs::write(p, encode_tile(leaves).map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
    }
    publisher
        .write_proof(&export, size - 1, size)
        .map_err(|e| e.to_string())?;
    let statik = StaticApp::start(&export)?;
    let source = HttpSource::new(&statik.url).map_err(|e| e.to_string())?;
    let started = Instant::now();
    let delta = client.sync(&source, now()).map_err(|e| e.to_string())?;
    let delta_secs = started.elapsed().as_secs_f64();
    rows.push((
        format!("(b) sync 1-entry delta onto {}", full.new_size),
        format!(
            "{} bytes in {} requests, {:.1} ms (initial full sync {:.1} s)",
            delta.bytes_fetched,
            delta.requests,
            delta_secs * 1e3,
            full_secs
        ),
    ));
    out.insert(
        "delta_sync".into(),
        json!({
            "held": delta.old_size, "new": delta.new_size, "bytes": delta.bytes_fetched,
            "requests": delta.requests, "seconds": delta_secs, "initial_sync_seconds": full_secs,
            "transport": "HTTP to a tower-http ServeDir app serving the export",
        }),
    );
    drop(client);
    drop(publisher);
    drop(statik);

    // (c) Requests per second: live server vs its static export.
    note("(c) starting weightseal-server and submitting a few entries");
    let live = LiveServer::start(&dir.join("live"))?;
    let live_export = dir.join("live-export");
    live.export(&live_export)?;
    let statik = StaticApp::start(&live_export)?;
    let mut load = Vec::new();
    for path in ["/checkpoint", "/v1/snapshot"] {
        let a = loadgen(&live.addr, path, args.connections, args.load_seconds)?;
        let b = loadgen(&statik.addr, path, args.connections, args.load_seconds)?;
        rows.push((
            format!("(c) GET {path}"),
            format!(
                "live {a:.0} req/s, static {b:.0} req/s, live/static {:.2}",
                if b > 0.0 { a / b } else { 0.0 }
            ),
        ));
        load.push(json!({"path": path, "live_rps": a, "static_rps": b, "ratio": if b > 0.0 { a / b } else { 0.0 }}));
    }
    out.insert(
        "load".into(),
        json!({
            "connections": args.connections, "seconds": args.load_seconds, "results": load,
            "static_server": "tower-http ServeDir (axum) in the bench process, serving `weightseal-server export`",
        }),
    );
    drop(statik);
    drop(live);

    if args.json {
        println!("{}", serde_json::to_string_pretty(&out).map_err(|e| e.to_string())?);
    } else {
        let w = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
        println!("{:w$}  result", "benchmark");
        for (k, v) in &rows {
            println!("{k:w$}  {v}");
        }
    }
    Ok(std::process::ExitCode::SUCCESS)
}

/// A keep-alive HTTP/1.1 load generator: `connections` threads, each sending GET `path`
/// back to back for `seconds`; returns completed requests per second (200s only).
fn loadgen(addr: &str, path: &str, connections: usize, seconds: f64) -> Result<f64, String> {
    let done = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let started = Instant::now();
    let threads: Vec<_> = (0..connections)
        .map(|_| {
            let (addr, path, done, errors) = (addr.to_string(), path.to_string(), done.clone(), errors.clone());
            std::thread::spawn(move || {
                let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n");
                let mut conn: Option<TcpStream> = None;
                let mut buf = vec![0u8; 256 * 1024];
                let mut n = 0u64;
                while Instant::now() < deadline && n < 10_000_000 {
                    let s = match conn.as_mut() {
                        Some(s) => s,
                        None => match TcpStream::connect(&addr) {
                            Ok(s) => {
                                let _ = s.set_nodelay(true);
                                let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                                conn.insert(s)
                            }
                            Err(_) => {
                                errors.fetch_add(1, Ordering::Relaxed);
                                continue;
                            }
                        },
                    };
                    match one_request(s, request.as_bytes(), &mut buf) {
                        Ok((status, keep)) => {
                            if status == 200 {
                                done.fetch_add(1, Ordering::Relaxed);
                            } else {
                                errors.fetch_add(1, Ordering::Relaxed);
                            }
                            if !keep {
                                conn = None;
                            }
                        }
                        Err(()) => {
                            errors.fetch_add(1, Ordering::Relaxed);
                            conn = None;
                        }
                    }
                    n += 1;
                }
            })
        })
        .collect();
    for t in threads {
        t.join().map_err(|_| "a load thread panicked".to_string())?;
    }
    let secs = started.elapsed().as_secs_f64();
    let ok = done.load(Ordering::Relaxed);
    if ok == 0 {
        return Err(format!(
            "no successful request to {addr}{path} ({} errors)",
            errors.load(Ordering::Relaxed)
        ));
    }
    Ok(ok as f64 / secs)
}

/// Sends one request and reads its answer (Content-Length bodies); returns the status and
/// whether the connection stays open.
fn one_request(s: &mut TcpStream, request: &[u8], buf: &mut [u8]) -> Result<(u16, bool), ()> {
    s.write_all(request).map_err(|_| ())?;
    let mut have = 0;
    loop {
        let n = s.read(&mut buf[have..]).map_err(|_| ())?;
        if n == 0 {
            return Err(());
        }
        have += n;
        if let Some(end) = buf[..have].windows(4).position(|w| w == b"\r\n\r\n") {
            let head = std::str::from_utf8(&buf[..end]).map_err(|_| ())?;
            let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).ok_or(())?;
            let mut len = 0usize;
            let mut keep = true;
            for line in head.split("\r\n").skip(1) {
                if let Some((k, v)) = line.split_once(':') {
                    if k.eq_ignore_ascii_case("content-length") {
                        len = v.trim().parse().map_err(|_| ())?;
                    } else if k.eq_ignore_ascii_case("connection") && v.trim().eq_ignore_ascii_case("close") {
                        keep = false;
                    }
                }
            }
            let total = end + 4 + len;
            if total > buf.len() {
                return Err(());
            }
            while have < total {
                let n = s.read(&mut buf[have..]).map_err(|_| ())?;
                if n == 0 {
                    return Err(());
                }
                have += n;
            }
            return Ok((status, keep));
        }
        if have == buf.len() {
            return Err(());
        }
    }
}

/// A tower-http `ServeDir` app on a free 127.0.0.1 port, on its own runtime thread.
struct StaticApp {
    addr: String,
    url: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl StaticApp {
    fn start(dir: &Path) -> Result<StaticApp, String> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        let addr: SocketAddr = listener.local_addr().map_err(|e| e.to_string())?;
        listener.set_nonblocking(true).map_err(|e| e.to_string())?;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let dir = dir.to_path_buf();
        let thread = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_multi_thread().enable_all().build() else {
                return;
            };
            rt.block_on(async move {
                let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                    return;
                };
                let app = axum::Router::new().fallback_service(tower_http::services::ServeDir::new(dir));
                let _ = axum::serve(listener, app)
                    .with_graceful_shutdown(async move {
                        let _ = rx.await;
                    })
                    .await;
            });
        });
        Ok(StaticApp {
            addr: addr.to_string(),
            url: format!("http://{addr}"),
            stop: Some(tx),
            thread: Some(thread),
        })
    }
}

impl Drop for StaticApp {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The real `weightseal-server` on a free port with SQLite, and a few entries.
struct LiveServer {
    child: Child,
    addr: String,
    dir: PathBuf,
    log_key: PathBuf,
}

impl LiveServer {
    fn start(dir: &Path) -> Result<LiveServer, String> {
        use std::io::BufRead as _;
        let _ = std::fs::remove_dir_all(dir);
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        let err = |e: &dyn std::fmt::Display| e.to_string();
        let log_key = dir.join("log.key");
        let hub_path = dir.join("hub.key");
        weightseal_signer::write_keypair(&weightseal_signer::generate_keypair().map_err(|e| err(&e))?, &log_key)
            .map_err(|e| err(&e))?;
        let hub = weightseal_signer::generate_keypair().map_err(|e| err(&e))?;
        let hub_pub = weightseal_signer::write_keypair(&hub, &hub_path).map_err(|e| err(&e))?;
        let issuers = json!({"issuers": [{"name": "hub", "role": "hub",
            "public_key": std::fs::read_to_string(hub_pub).map_err(|e| err(&e))?}]});
        std::fs::write(dir.join("issuers.json"), issuers.to_string()).map_err(|e| err(&e))?;
        let mut child = Command::new(weightseal_e2e::weightseal_server_bin())
            .args(["serve", "--listen", "127.0.0.1:0", "--log-format", "json", "--key"])
            .arg(&log_key)
            .arg("--issuers")
            .arg(dir.join("issuers.json"))
            .arg("--database")
            .arg(format!("sqlite:{}", dir.join("log.db").display()))
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| err(&e))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut reader = std::io::BufReader::new(stdout);
        let mut line = String::new();
        reader.read_line(&mut line).map_err(|e| err(&e))?;
        std::thread::spawn(move || {
            let mut sink = Vec::new();
            let _ = reader.read_to_end(&mut sink);
        });
        let mut server = LiveServer {
            child,
            addr: String::new(),
            dir: dir.to_path_buf(),
            log_key,
        };
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .ok_or_else(|| format!("weightseal-server did not start: {line:?}"))?
            .to_string();
        server.addr = url.trim_start_matches("http://").to_string();
        for i in 0..20u64 {
            let entry = Entry {
                subject: Subject::content(digest_of(i, 9)),
                action: Action::Revoke,
                reason: Reason::Other,
                issuer: public(&hub),
                time: now(),
                evidence: None,
            }
            .sign(&hub)
            .map_err(|e| err(&e))?;
            submit(&url, &entry, None).map_err(|e| err(&e))?;
        }
        Ok(server)
    }

    fn export(&self, out: &Path) -> Result<(), String> {
        let st = Command::new(weightseal_e2e::weightseal_server_bin())
            .arg("export")
            .arg(out)
            .arg("--key")
            .arg(&self.log_key)
            .arg("--database")
            .arg(format!("sqlite:{}", self.dir.join("log.db").display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map_err(|e| e.to_string())?;
        if st.success() {
            Ok(())
        } else {
            Err("weightseal-server export failed".into())
        }
    }
}

impl Drop for LiveServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
