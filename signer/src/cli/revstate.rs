//! Shared by `verify --revocations`, `check` and `revocations`: where revocation data comes
//! from, the local state folder and its pinned log key, syncing with fail-closed rules, and
//! describing hits.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::anyhow;
use clap::Args;
use serde_json::json;
use weightseal_verifier::revocation::bundle::Bundle;
use weightseal_verifier::revocation::client::HttpSource;
use weightseal_verifier::revocation::entry::SubjectKind;
use weightseal_verifier::revocation::note::NoteVerifierKey;
use weightseal_verifier::revocation::state::{
    DirSource, Hit, LogEntry, Matched, RevocationError, RevocationState, Source, SyncReport,
};

use super::output::{self, utc_time};
use super::{exit, Failure};

/// The file in a state folder that records the log key(s) pinned on first use.
pub const PINNED_KEYS_FILE: &str = "pinned-keys.txt";

/// Where the revocation state lives and which log key it trusts.
#[derive(Debug, Clone, Default, Args)]
pub struct StateArgs {
    /// The local revocation state folder [default: $XDG_STATE_HOME/weightseal/revocations,
    /// or ~/.local/state/weightseal/revocations].
    #[arg(long, value_name = "DIR")]
    pub state: Option<PathBuf>,
    /// The log's note verifier key (`<origin>+<key id>+<base64>`, printed by
    /// `weightseal-server pubkey`). Needed on first use; it is then pinned in the state folder
    /// and a different key later is refused. Repeatable.
    #[arg(long = "revocation-key", value_name = "NOTE_KEY")]
    pub revocation_keys: Vec<String>,
}

/// Where revocation data comes from.
#[derive(Debug)]
pub enum RevSource {
    Http(HttpSource),
    Dir(DirSource),
    Bundle(Box<Bundle>),
}

impl RevSource {
    /// `http://…` → HTTP (live server or static export); a folder → static export on disk;
    /// a file → bundle.
    pub fn parse(text: &str) -> Result<(RevSource, String), Failure> {
        if text.starts_with("http://") || text.starts_with("https://") {
            let source = HttpSource::new(text).map_err(|e| Failure::usage(anyhow!("--revocations: {e}")))?;
            return Ok((RevSource::Http(source), text.to_string()));
        }
        let path = Path::new(text);
        if path.is_dir() {
            return Ok((RevSource::Dir(DirSource::new(path)), format!("static export {text}")));
        }
        if path.is_file() {
            // A bundle that cannot be read is a source that failed (like a server that is down).
            let bundle = Bundle::read(path).map_err(|e| {
                Failure::refused(anyhow!("revocation bundle {text}: {e}"))
                    .hint("a bundle is written by `weightseal revocations bundle --out FILE`")
            });
            return match bundle {
                Ok(b) => Ok((RevSource::Bundle(Box::new(b)), format!("bundle {text}"))),
                Err(f) => Err(f),
            };
        }
        Err(Failure::usage(anyhow!(
            "--revocations {text}: not an http:// URL, and no such folder or file"
        ))
        .hint("pass the server URL, a folder written by `weightseal-server export`, or a bundle file"))
    }

    pub fn as_source(&self) -> &dyn Source {
        match self {
            RevSource::Http(s) => s,
            RevSource::Dir(s) => s,
            RevSource::Bundle(b) => b.as_ref(),
        }
    }
}

/// Unix seconds now.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The state folder to use.
pub fn state_dir(args: &StateArgs) -> Result<PathBuf, Failure> {
    if let Some(dir) = &args.state {
        return Ok(dir.clone());
    }
    let base = match std::env::var_os("XDG_STATE_HOME").filter(|v| !v.is_empty()) {
        Some(x) => PathBuf::from(x),
        None => match std::env::var_os("HOME").filter(|v| !v.is_empty()) {
            Some(h) => PathBuf::from(h).join(".local").join("state"),
            None => {
                return Err(Failure::usage(anyhow!(
                    "no revocation state folder: neither XDG_STATE_HOME nor HOME is set"
                ))
                .hint("pass --state DIR"))
            }
        },
    };
    Ok(base.join("weightseal").join("revocations"))
}

fn parse_keys(texts: &[String]) -> Result<Vec<NoteVerifierKey>, Failure> {
    texts
        .iter()
        .map(|t| {
            t.trim().parse::<NoteVerifierKey>().map_err(|e| {
                Failure::usage(anyhow!("--revocation-key {t:?}: {e}"))
                    .hint("pass the note verifier key printed by `weightseal-server pubkey --key LOG_KEY`")
            })
        })
        .collect()
}

fn read_pinned(dir: &Path) -> Result<Option<Vec<String>>, Failure> {
    let path = dir.join(PINNED_KEYS_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(Some(
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(str::to_string)
                .collect(),
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Failure::usage(anyhow!("cannot read {}: {e}", path.display()))),
    }
}

/// Records the pinned keys (temporary file, fsync, rename).
fn write_pinned(dir: &Path, keys: &[NoteVerifierKey]) -> Result<(), Failure> {
    let path = dir.join(PINNED_KEYS_FILE);
    let tmp = dir.join(format!(".{PINNED_KEYS_FILE}.tmp-{}", std::process::id()));
    let text: String = keys.iter().map(|k| format!("{k}\n")).collect();
    let result = (|| -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        let mut f = std::fs::File::create(&tmp)?;
        std::io::Write::write_all(&mut f, text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path)
    })();
    result.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Failure::usage(anyhow!("cannot write {}: {e}", path.display()))
    })
}

/// The state folder with its pinned keys, before it is opened.
#[derive(Debug)]
pub struct Pinned {
    pub dir: PathBuf,
    pub keys: Vec<NoteVerifierKey>,
    /// The keys were given now and are not yet recorded in the folder.
    pub first_use: bool,
}

/// Resolves the pinned keys: those recorded in the folder, or (first use) those given.
/// Giving a different key than the recorded one is an error (exit 2).
pub fn pinned(args: &StateArgs) -> Result<Pinned, Failure> {
    let dir = state_dir(args)?;
    let given = parse_keys(&args.revocation_keys)?;
    let stored = read_pinned(&dir)?;
    match stored {
        Some(stored_texts) => {
            let stored = parse_keys(&stored_texts).map_err(|f| {
                Failure::usage(anyhow!(
                    "{} is damaged: {}",
                    dir.join(PINNED_KEYS_FILE).display(),
                    f.message()
                ))
            })?;
            if !given.is_empty() {
                let mut a: Vec<String> = given.iter().map(ToString::to_string).collect();
                let mut b: Vec<String> = stored.iter().map(ToString::to_string).collect();
                a.sort();
                b.sort();
                if a != b {
                    return Err(Failure::usage(anyhow!(
                        "the revocation state {} is pinned to the log key {}, not {}",
                        dir.display(),
                        b.join(", "),
                        a.join(", ")
                    ))
                    .hint(
                        "a different --revocation-key for the same state is refused: if the log really changed \
                         its key, use a new --state folder",
                    ));
                }
            }
            Ok(Pinned {
                dir,
                keys: stored,
                first_use: false,
            })
        }
        None if given.is_empty() => Err(Failure::usage(anyhow!(
            "no log key is pinned in the revocation state {}",
            dir.display()
        ))
        .hint("pass --revocation-key NOTE_KEY on first use (`weightseal-server pubkey --key LOG_KEY` prints it)")),
        None => Ok(Pinned {
            dir,
            keys: given,
            first_use: true,
        }),
    }
}

/// Opens the state folder (exit 1 when it cannot be: revocation status is unknown).
pub fn open(pinned: &Pinned) -> Result<RevocationState, Failure> {
    RevocationState::open(&pinned.dir, pinned.keys.clone()).map_err(|e| {
        let hint = match &e {
            RevocationError::WrongServerKey { .. } => Some(
                "this state folder was synced under another log key: use the key it was pinned with, or a new \
                 --state folder"
                    .to_string(),
            ),
            RevocationError::Corrupt { .. } => {
                Some("move the damaged folder away and sync again into an empty --state folder".to_string())
            }
            _ => None,
        };
        Failure::refused(anyhow!(
            "cannot open the revocation state {}: {e}",
            pinned.dir.display()
        ))
        .maybe_hint(hint)
    })
}

/// Records the pinned keys once the state holds data verified under them.
pub fn record_pinned(pinned: &mut Pinned, state: &RevocationState) -> Result<(), Failure> {
    if pinned.first_use && state.snapshot().is_some() {
        write_pinned(&pinned.dir, &pinned.keys)?;
        pinned.first_use = false;
    }
    Ok(())
}

/// How the status was established.
#[derive(Debug)]
pub struct Established {
    pub state: RevocationState,
    /// The sync report, when the sync succeeded.
    pub synced: Option<SyncReport>,
    /// Why the sync failed, when it did.
    pub sync_error: Option<String>,
    /// Why the status is unknown (no state, stale), when it is.
    pub unknown: Option<RevocationError>,
    pub source_name: String,
}

/// Syncs from `source` into the state and establishes freshness. A failed sync is not an
/// error by itself (the held state may still be fresh); `unknown` says when status could
/// not be established at all.
pub fn establish(source_text: &str, args: &StateArgs) -> Result<Established, Failure> {
    let mut pin = pinned(args)?;
    let mut state = open(&pin)?;
    let (synced, sync_error, source_name) = match RevSource::parse(source_text) {
        Ok((source, name)) => match state.sync(source.as_source(), now()) {
            Ok(r) => (Some(r), None, name),
            Err(e) => (None, Some(e.to_string()), name),
        },
        Err(f) if f.code == exit::REFUSED => (None, Some(f.message()), source_text.to_string()),
        Err(f) => return Err(f),
    };
    record_pinned(&mut pin, &state)?;
    let unknown = state.require_fresh(now()).err();
    Ok(Established {
        state,
        synced,
        sync_error,
        unknown,
        source_name,
    })
}

impl Established {
    /// Says on stderr that the sync failed and the held state is used.
    pub fn warn_if_sync_failed(&self) {
        if let (Some(e), None) = (&self.sync_error, &self.unknown) {
            let held = self
                .state
                .snapshot()
                .map(|s| format!("snapshot version {}, fresh until {}", s.version, utc_time(s.expires)))
                .unwrap_or_default();
            output::print_warning(&format!(
                "revocation sync from {} failed ({e}); using the held revocation state ({held})",
                self.source_name
            ));
        }
    }

    /// The failure for unknown status (fail closed, exit 1).
    pub fn unknown_failure(&self, unknown: &RevocationError, unsafe_flag: Option<&str>) -> Failure {
        let why = match &self.sync_error {
            Some(e) => format!("revocation status cannot be established: {unknown}; the sync failed: {e}"),
            None => format!("revocation status cannot be established: {unknown}"),
        };
        let mut hint = "sync a fresh list (`weightseal revocations sync --revocations SRC`), or bring a recent bundle \
                        file to this machine"
            .to_string();
        if let Some(flag) = unsafe_flag {
            hint += &format!("; to load without knowing whether the model is revoked: {flag} (UNSAFE)");
        }
        Failure::refused(anyhow!(why)).hint(hint)
    }

    /// A short human description of the status.
    pub fn describe(&self) -> String {
        match self.state.snapshot() {
            Some(s) => format!(
                "{} entries, snapshot version {}, fresh until {}",
                self.state.size(),
                s.version,
                utc_time(s.expires)
            ),
            None => "no revocation state".to_string(),
        }
    }

    pub fn json(&self) -> serde_json::Value {
        json!({
            "source": self.source_name,
            "state": self.state.dir().map(|d| d.display().to_string()),
            "synced": self.synced.is_some(),
            "sync_error": self.sync_error,
            "status_known": self.unknown.is_none(),
            "size": self.state.size(),
            "snapshot_version": self.state.snapshot().map(|s| s.version),
            "expires": self.state.snapshot().map(|s| s.expires),
        })
    }
}

/// "manifest", "signer key", "file F", "tensor T in F".
pub fn matched_text(m: &Matched) -> String {
    match m {
        Matched::Manifest => "the manifest".to_string(),
        Matched::SignerKey => "a signer's key".to_string(),
        Matched::File { path } => format!("file {path}"),
        Matched::Chunk { path, chunk } => format!("{chunk} in {path}"),
        other => format!("{other:?}"),
    }
}

fn matched_json(m: &Matched) -> serde_json::Value {
    match m {
        Matched::Manifest => json!({"kind": "manifest"}),
        Matched::SignerKey => json!({"kind": "signer_key"}),
        Matched::File { path } => json!({"kind": "file", "path": path}),
        Matched::Chunk { path, chunk } => json!({"kind": "chunk", "path": path, "chunk": chunk}),
        other => json!({"kind": format!("{other:?}")}),
    }
}

pub fn entry_text(e: &LogEntry) -> String {
    let mut s = format!(
        "entry #{} {} {} {} (reason {}, issuer {}, {})",
        e.index,
        e.action,
        e.subject.kind,
        e.subject.digest,
        e.reason,
        e.issuer.to_hex(),
        utc_time(e.time)
    );
    if let Some(url) = &e.evidence {
        s += &format!(", evidence {url}");
    }
    s
}

pub fn entry_json(e: &LogEntry) -> serde_json::Value {
    json!({
        "index": e.index,
        "action": e.action.as_str(),
        "subject": {"type": e.subject.kind.as_str(), "digest": e.subject.digest.to_hex()},
        "reason": e.reason.as_str(),
        "issuer": e.issuer.to_hex(),
        "time": e.time,
        "evidence": e.evidence,
    })
}

pub fn hits_text(hits: &[Hit]) -> String {
    hits.iter()
        .map(|h| format!("  {}: revoked by {}\n", matched_text(&h.matched), entry_text(&h.entry)))
        .collect()
}

pub fn hits_json(hits: &[Hit]) -> serde_json::Value {
    json!(hits
        .iter()
        .map(|h| json!({"matched": matched_json(&h.matched), "entry": entry_json(&h.entry)}))
        .collect::<Vec<_>>())
}

/// The one-line summary of a refusal: the first hit's reason and what matched.
pub fn hits_summary(hits: &[Hit]) -> String {
    let Some(first) = hits.first() else {
        return "not revoked".to_string();
    };
    let mut s = format!(
        "revoked ({}): {} matched {}",
        first.entry.reason,
        matched_text(&first.matched),
        entry_text(&first.entry)
    );
    if hits.len() > 1 {
        s += &format!(" (and {} more)", hits.len() - 1);
    }
    s
}

/// Counts of currently revoked subjects by kind, and of entries by action.
pub fn counts(state: &RevocationState) -> serde_json::Value {
    use std::collections::HashMap;
    let mut last = HashMap::new();
    let (mut revokes, mut reinstates) = (0u64, 0u64);
    for e in state.entries() {
        last.insert(e.subject, e.action);
        match e.action.as_str() {
            "revoke" => revokes += 1,
            _ => reinstates += 1,
        }
    }
    let mut by_kind = serde_json::Map::new();
    for kind in SubjectKind::ALL {
        let n = last
            .iter()
            .filter(|(s, a)| s.kind == kind && a.as_str() == "revoke")
            .count();
        by_kind.insert(kind.as_str().to_string(), json!(n));
    }
    json!({"revoke_entries": revokes, "reinstate_entries": reinstates, "revoked_subjects": by_kind})
}
