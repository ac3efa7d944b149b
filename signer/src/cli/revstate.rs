//! Revocation arguments shared by `verify`, `check` and `revocations`, turned into the
//! library's [`RevocationConfig`], and the printing of what the library decided. Every
//! rule (pins, lock, sync, freshness, fail closed) lives in
//! `weightseal_verifier::decision` and `weightseal_verifier::revocation::local`.

use std::path::PathBuf;

use anyhow::anyhow;
use clap::Args;
use serde_json::json;
use weightseal_verifier::decision::{self, DecisionError, RevocationReport};
use weightseal_verifier::revocation::entry::SubjectKind;
use weightseal_verifier::revocation::local::{
    default_state_dir, parse_log_keys, LocalState, LocalStateError, RevocationSource,
};
use weightseal_verifier::revocation::state::{Hit, LogEntry, Matched, RevocationError, RevocationState};
use weightseal_verifier::{RefusalKind, RevocationConfig};

use super::output::{self, utc_time};
use super::Failure;

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

impl StateArgs {
    /// The state folder to use.
    pub fn dir(&self) -> Result<PathBuf, Failure> {
        match &self.state {
            Some(d) => Ok(d.clone()),
            None => default_state_dir().map_err(|e| state_failure(&e)),
        }
    }

    /// The library configuration for `--revocations SRC` with these arguments.
    pub fn config(&self, source: Option<&str>) -> Result<RevocationConfig, Failure> {
        let dir = self.dir()?;
        let keys = parse_log_keys(&self.revocation_keys).map_err(|e| state_failure(&e))?;
        let cfg = match source {
            Some(text) => RevocationConfig::new(RevocationSource::parse(text).map_err(|e| state_failure(&e))?, dir),
            None => RevocationConfig::held_only(dir),
        };
        Ok(cfg.log_keys(keys))
    }

    /// Locks and opens the state folder (for `revocations sync|status|bundle`).
    pub fn open(&self) -> Result<LocalState, Failure> {
        let cfg = self.config(None)?;
        LocalState::open(
            cfg.state_dir(),
            &parse_log_keys(&self.revocation_keys).map_err(|e| state_failure(&e))?,
        )
        .map_err(|e| state_failure(&e))
    }
}

/// The failure (exit code and hint) for a state folder that cannot be used.
pub fn state_failure(e: &LocalStateError) -> Failure {
    let hint = match e {
        LocalStateError::NoStateDir => Some("pass --state DIR".to_string()),
        LocalStateError::BadSource { .. } => {
            Some("pass the server URL, a folder written by `weightseal-server export`, or a bundle file".to_string())
        }
        LocalStateError::BadLogKey { .. } => {
            Some("pass the note verifier key printed by `weightseal-server pubkey --key LOG_KEY`".to_string())
        }
        LocalStateError::NoPinnedKey { .. } => Some(
            "pass --revocation-key NOTE_KEY on first use (`weightseal-server pubkey --key LOG_KEY` prints it)"
                .to_string(),
        ),
        LocalStateError::PinMismatch { .. } => Some(
            "a different --revocation-key for the same state is refused: if the log rotated its key, sync with the \
             key the state was pinned with and it follows the rotation (spec/revocation.md §7.6); for a key the log \
             never announced, use a new --state folder"
                .to_string(),
        ),
        LocalStateError::Open {
            source: RevocationError::WrongServerKey { .. },
            ..
        } => Some(
            "this state folder was synced under another log key: use the key it was pinned with, or a new --state \
             folder"
                .to_string(),
        ),
        LocalStateError::Open {
            source: RevocationError::Corrupt { .. },
            ..
        } => Some("move the damaged folder away and sync again into an empty --state folder".to_string()),
        _ => None,
    };
    let code = if e.is_usage() {
        super::exit::USAGE
    } else {
        super::exit::REFUSED
    };
    Failure::with_code(code, anyhow!("{e}")).maybe_hint(hint)
}

/// The failure for a refused decision, with the hint for unknown revocation status.
pub fn unknown_status_hint(e: &DecisionError, unsafe_flag: Option<&str>) -> Option<String> {
    if e.kind() != RefusalKind::StatusUnknown {
        return None;
    }
    let mut hint = "sync a fresh list (`weightseal revocations sync --revocations SRC`), or bring a recent bundle \
                    file to this machine"
        .to_string();
    if let Some(flag) = unsafe_flag {
        hint += &format!("; to load without knowing whether the model is revoked: {flag} (UNSAFE)");
    }
    Some(hint)
}

/// Says on stderr that the sync failed and the held state is used.
pub fn warn_if_sync_failed(report: &RevocationReport, status_known: bool) {
    if let (Some(e), true) = (&report.sync_error, status_known) {
        let held = report
            .snapshot
            .map(|(version, _, expires)| format!("snapshot version {version}, fresh until {}", utc_time(expires)))
            .unwrap_or_default();
        output::print_warning(&format!(
            "revocation sync from {} failed ({e}); using the held revocation state ({held})",
            report.source.as_deref().unwrap_or("(none)")
        ));
    }
}

/// A short human description of the held state.
pub fn describe(report: &RevocationReport) -> String {
    match report.snapshot {
        Some((version, _, expires)) => format!(
            "{} entries, snapshot version {version}, fresh until {}",
            report.size,
            utc_time(expires)
        ),
        None => "no revocation state".to_string(),
    }
}

pub fn report_json(report: &RevocationReport, status_known: bool) -> serde_json::Value {
    json!({
        "source": report.source,
        "state": report.state_dir.display().to_string(),
        "synced": report.synced.is_some(),
        "sync_error": report.sync_error,
        "status_known": status_known,
        "size": report.size,
        "snapshot_version": report.snapshot.map(|s| s.0),
        "expires": report.snapshot.map(|s| s.2),
    })
}

fn matched_json(m: &Matched) -> serde_json::Value {
    match m {
        Matched::Manifest => json!({"kind": "manifest"}),
        Matched::SignerKey => json!({"kind": "signer_key"}),
        Matched::File { path } => json!({"kind": "file", "path": path}),
        Matched::Chunk { path, chunk } => json!({"kind": "chunk", "path": path, "chunk": chunk}),
        other => json!({"kind": decision::matched_text(other)}),
    }
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

pub fn hits_json(hits: &[Hit]) -> serde_json::Value {
    json!(hits
        .iter()
        .map(|h| json!({"matched": matched_json(&h.matched), "entry": entry_json(&h.entry)}))
        .collect::<Vec<_>>())
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

/// Unix seconds now; a clock that cannot be read is an error (never time 0).
pub fn now() -> Result<u64, Failure> {
    weightseal_verifier::clock::now_unix().map_err(|e| Failure::refused(anyhow!("{e}")))
}
