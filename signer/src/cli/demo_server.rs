//! `weightseal demo`'s revocation service: the real `weightseal-server` binary as a child
//! process on a free 127.0.0.1 port, with SQLite in the demo folder; stopped on drop.

use std::io::{BufRead as _, BufReader, Read as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _};
use weightseal_log::note::NoteSignerKey;
use weightseal_signer::read_signing_key;

/// The log origin (note key name) the demo uses.
pub const ORIGIN: &str = "demo.weightseal-revocations";

/// Where `weightseal-server` is: beside the running `weightseal`, else on PATH.
pub fn find_server_binary() -> Option<PathBuf> {
    let name = format!("weightseal-server{}", std::env::consts::EXE_SUFFIX);
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf))
    {
        let p = dir.join(&name);
        if p.is_file() {
            return Some(p);
        }
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(&name))
        .find(|p| p.is_file())
}

/// A running server, stopped (SIGTERM, then kill) on drop.
#[derive(Debug)]
pub struct DemoServer {
    child: Option<Child>,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// The note verifier key clients pin.
    pub note_key: String,
}

impl DemoServer {
    /// Starts `weightseal-server serve` with `log_key`, `issuers` and SQLite at `db`;
    /// stderr goes to `log`.
    pub fn start(binary: &Path, log_key: &Path, issuers: &Path, db: &Path, log: &Path) -> anyhow::Result<Self> {
        let key = read_signing_key(log_key).context("reading the log key")?;
        let note_key = NoteSignerKey::new(ORIGIN, key)
            .map_err(|e| anyhow!("log key: {e}"))?
            .verifier_key()
            .to_string();
        let stderr = std::fs::File::create(log).with_context(|| format!("cannot create {}", log.display()))?;
        let mut child = Command::new(binary)
            .args(["serve", "--listen", "127.0.0.1:0", "--origin", ORIGIN, "--key"])
            .arg(log_key)
            .arg("--issuers")
            .arg(issuers)
            .arg("--database")
            .arg(format!("sqlite:{}", db.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .with_context(|| format!("cannot start {}", binary.display()))?;
        let stdout = child.stdout.take();
        let mut server = DemoServer {
            child: Some(child),
            url: String::new(),
            note_key,
        };
        let Some(stdout) = stdout else {
            bail!("no standard output from weightseal-server");
        };
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        reader
            .read_line(&mut line)
            .context("reading weightseal-server's first line")?;
        std::thread::spawn(move || {
            let mut sink = Vec::new();
            let _ = reader.read_to_end(&mut sink);
        });
        let Some(url) = line.trim().strip_prefix("listening on ") else {
            let log_text = std::fs::read_to_string(log).unwrap_or_default();
            bail!(
                "weightseal-server did not start: {}",
                log_text.lines().last().unwrap_or("no output")
            );
        };
        server.url = url.to_string();
        Ok(server)
    }

    /// Sends SIGTERM and waits for a clean exit (status 0).
    pub fn stop(&mut self) -> anyhow::Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        let sent = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        if sent.is_ok_and(|s| s.success()) {
            while Instant::now() < deadline {
                if let Some(status) = child.try_wait()? {
                    if status.success() {
                        return Ok(());
                    }
                    bail!("weightseal-server exited with {status}");
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        bail!("weightseal-server did not stop on SIGTERM; it was killed")
    }
}

impl Drop for DemoServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
