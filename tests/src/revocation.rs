//! Helpers for the revocation end-to-end tests: `weightseal-server` and a plain static
//! file server as separate processes on 127.0.0.1 ports, killed when their guard drops.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{keygen, weightseal_server_bin, Key};

/// The log origin the tests use.
pub const ORIGIN: &str = "e2e.weightseal.test";

/// A spawned process, killed (and reaped) on drop.
#[derive(Debug)]
pub struct ChildGuard {
    /// The process.
    pub child: Child,
}

impl ChildGuard {
    /// Sends SIGTERM and waits up to `timeout` for a clean exit; returns whether it exited
    /// by itself with status 0.
    pub fn terminate(&mut self, timeout: Duration) -> bool {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A free 127.0.0.1 port (bound then released: a small race, fine for tests).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Waits until something accepts connections on `addr`.
pub fn wait_for_port(addr: &str, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {addr}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// One HTTP/1.1 GET; returns (status, body).
pub fn http_get(addr: &str, path: &str) -> (u16, Vec<u8>) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let end = crate::find_bytes(&raw, b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, raw[end + 4..].to_vec())
}

/// The keys and files of one log: the log key, a hub issuer and a lab issuer (whose
/// signing key is `lab`).
#[derive(Debug)]
pub struct LogSetup {
    /// The folder holding everything.
    pub dir: PathBuf,
    /// The log's signing key.
    pub log_key: Key,
    /// The hub issuer key.
    pub hub: Key,
    /// The lab issuer key (also listed as its own signing key).
    pub lab: Key,
    /// The issuers file.
    pub issuers: PathBuf,
    /// The SQLite database path.
    pub database: PathBuf,
    /// The note verifier key clients pin.
    pub note_key: String,
}

impl LogSetup {
    /// Creates keys and an issuers file in `dir`; the lab may revoke what `lab_signing`
    /// keys signed (and those keys).
    pub fn new(dir: &Path, lab_signing: &[&Key]) -> LogSetup {
        std::fs::create_dir_all(dir).unwrap();
        let log_key = keygen(dir, "log.key");
        let hub = keygen(dir, "hub-issuer.key");
        let lab = keygen(dir, "lab-issuer.key");
        let pem = |k: &Key| std::fs::read_to_string(&k.public).unwrap();
        let mut signing: Vec<String> = lab_signing.iter().map(|k| k.id.clone()).collect();
        signing.push(lab.id.clone());
        let issuers = serde_json::json!({"issuers": [
            {"name": "hub.example", "role": "hub", "public_key": pem(&hub)},
            {"name": "lab.example", "role": "lab", "public_key": pem(&lab), "signing_keys": signing},
        ]});
        let issuers_path = dir.join("issuers.json");
        std::fs::write(&issuers_path, serde_json::to_vec_pretty(&issuers).unwrap()).unwrap();
        let out = Command::new(weightseal_server_bin())
            .args(["pubkey", "--origin", ORIGIN, "--key"])
            .arg(&log_key.private)
            .output()
            .unwrap();
        assert!(out.status.success(), "pubkey: {}", String::from_utf8_lossy(&out.stderr));
        let note_key = String::from_utf8(out.stdout).unwrap().trim().to_string();
        LogSetup {
            dir: dir.to_path_buf(),
            log_key,
            hub,
            lab,
            issuers: issuers_path,
            database: dir.join("log.db"),
            note_key,
        }
    }

    /// `weightseal-server export DIR` of the current database.
    pub fn export(&self, out: &Path) {
        let st = Command::new(weightseal_server_bin())
            .arg("export")
            .arg(out)
            .arg("--key")
            .arg(&self.log_key.private)
            .arg("--database")
            .arg(format!("sqlite:{}", self.database.display()))
            .args(["--origin", ORIGIN])
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(st.success(), "export failed");
    }
}

/// A running `weightseal-server serve`.
#[derive(Debug)]
pub struct ServerProcess {
    /// `127.0.0.1:PORT`.
    pub addr: String,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// The process.
    pub guard: ChildGuard,
}

impl ServerProcess {
    /// Starts `serve` on a free port for `setup` (extra flags after the usual ones).
    pub fn start(setup: &LogSetup, extra: &[&str]) -> ServerProcess {
        let log = std::fs::File::create(setup.dir.join("server.log")).unwrap();
        let mut child = Command::new(weightseal_server_bin())
            .args(["serve", "--listen", "127.0.0.1:0", "--origin", ORIGIN, "--key"])
            .arg(&setup.log_key.private)
            .arg("--issuers")
            .arg(&setup.issuers)
            .arg("--database")
            .arg(format!("sqlite:{}", setup.database.display()))
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let guard = ChildGuard { child };
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        // Keep draining stdout so the server never blocks on it.
        std::thread::spawn(move || {
            let mut sink = Vec::new();
            let _ = reader.read_to_end(&mut sink);
        });
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| {
                panic!(
                    "unexpected first line {line:?}; server log:\n{}",
                    std::fs::read_to_string(setup.dir.join("server.log")).unwrap_or_default()
                )
            })
            .to_string();
        let addr = url.trim_start_matches("http://").to_string();
        wait_for_port(&addr, Duration::from_secs(10));
        ServerProcess { addr, url, guard }
    }
}

/// `python3 -m http.server` serving `dir` on a free 127.0.0.1 port, or `None` without python3.
#[derive(Debug)]
pub struct StaticServer {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// The process.
    pub guard: ChildGuard,
}

impl StaticServer {
    /// Starts it.
    pub fn start(dir: &Path) -> Option<StaticServer> {
        let port = free_port();
        let child = Command::new("python3")
            .args([
                "-m",
                "http.server",
                "--bind",
                "127.0.0.1",
                &port.to_string(),
                "--directory",
            ])
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let guard = ChildGuard { child };
        let addr = format!("127.0.0.1:{port}");
        wait_for_port(&addr, Duration::from_secs(15));
        Some(StaticServer {
            url: format!("http://{addr}"),
            guard,
        })
    }
}

/// What a [`LyingServer`] answers to a submission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lie {
    /// `201` with a receipt naming a made-up leaf hash.
    MadeUpLeafHash,
    /// `201` with a receipt naming the submitted entries' true leaf hashes at index 0, though
    /// nothing was forwarded to the log.
    NotLogged,
}

/// A server that answers every submission "accepted" without logging anything, and forwards
/// every GET to the real log at `real_addr` (so its checkpoint is genuinely signed). A client
/// that trusts receipts is fooled by it.
#[derive(Debug)]
pub struct LyingServer {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
}

impl LyingServer {
    /// Starts it on a free port (a thread per connection, for the life of the test process).
    pub fn start(real_addr: &str, lie: Lie) -> LyingServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let real = real_addr.to_string();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let real = real.clone();
                std::thread::spawn(move || {
                    let _ = serve_lie(stream, &real, lie);
                });
            }
        });
        LyingServer { url }
    }
}

fn serve_lie(mut stream: TcpStream, real: &str, lie: Lie) -> std::io::Result<()> {
    use weightseal_verifier::revocation::entry::BatchSubmission;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    let head_end = loop {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        raw.extend_from_slice(&buf[..n]);
        if let Some(end) = crate::find_bytes(&raw, b"\r\n\r\n") {
            break end;
        }
    };
    let head = String::from_utf8_lossy(&raw[..head_end]).into_owned();
    let mut words = head.split_whitespace();
    let (method, path) = (words.next().unwrap_or(""), words.next().unwrap_or("/").to_string());
    let length: usize = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0);
    let mut body = raw[head_end + 4..].to_vec();
    while body.len() < length {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&buf[..n]);
    }
    let (status, answer) = if method == "POST" {
        let hashes: Vec<String> = BatchSubmission::from_bytes(&body)
            .map(|b| b.entries.iter().map(|e| hex::encode(e.leaf_hash())).collect())
            .unwrap_or_default();
        let hashes = match lie {
            Lie::MadeUpLeafHash => hashes.iter().map(|_| "ab".repeat(32)).collect(),
            Lie::NotLogged => hashes,
        };
        let mut receipt = serde_json::json!({
            "index": 0,
            "leaf_hash": hashes.first().cloned().unwrap_or_default(),
            "size": hashes.len(),
        });
        if hashes.len() > 1 {
            receipt["leaf_hashes"] = serde_json::json!(hashes);
        }
        (201, serde_json::to_vec(&receipt).unwrap_or_default())
    } else {
        http_get(real, &path)
    };
    write!(
        stream,
        "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        answer.len()
    )?;
    stream.write_all(&answer)?;
    stream.flush()
}
