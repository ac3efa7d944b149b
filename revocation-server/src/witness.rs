//! A C2SP `tlog-witness` witness (`weightseal-server witness`) and the log's side of the
//! protocol (spec/revocation.md §6.4).
//!
//! The witness is configured with the logs it watches (their note verifier keys; the key name
//! is the origin) and holds, per log, the latest checkpoint it cosigned, in its own SQLite file.
//! `POST /add-checkpoint` carries `old <size>\n`, the consistency proof from that size (one
//! base64 hash per line), a blank line and the checkpoint note. The witness cosigns only a
//! checkpoint that extends the one it holds: the old size must be the size it holds (else
//! `409` and its size, `text/x.tlog.size`), the proof must verify from the root it holds to the
//! new root (else `422`). The check and the update are one SQLite transaction, so two
//! concurrent submissions can never roll the witness back, and the state survives restarts.
//! `GET /<sha256(origin) hex>/checkpoint` serves the latest checkpoint it cosigned.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path as UrlPath, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use rusqlite::{params, Connection, OptionalExtension as _, TransactionBehavior};
use sha2::{Digest as _, Sha256};
use weightseal_log::cosignature::WitnessSigner;
use weightseal_verifier::revocation::cosignature::WitnessKey;
use weightseal_verifier::revocation::merkle::{self, Hash};
use weightseal_verifier::revocation::note::{Checkpoint, NoteError, NoteVerifierKey};
use weightseal_verifier::revocation::snapshot::{open_checkpoint, SnapshotError};

use crate::log::now_unix;

/// The most consistency proof lines a request may carry (tlog-witness).
pub const MAX_PROOF_LINES: usize = 63;
/// The largest `add-checkpoint` body accepted: a 64 KiB checkpoint note and its proof.
pub const MAX_REQUEST_BYTES: usize = 64 * 1024 + 64 * 45 + 32;
/// The content type of a 409 answer.
pub const SIZE_CONTENT_TYPE: &str = "text/x.tlog.size";

/// Why a witness refused a checkpoint: each maps to the tlog-witness status code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// 400: the request is not an `add-checkpoint` body, or the old size is past the new size.
    #[error("malformed request: {0}")]
    Malformed(String),
    /// 404: the witness does not watch this origin.
    #[error("unknown log origin {0:?}")]
    UnknownLog(String),
    /// 403: no valid signature by a configured key of the log.
    #[error("the checkpoint is not signed by the log's key: {0}")]
    BadSignature(String),
    /// 409: the old size is not the size of the checkpoint the witness holds.
    #[error("the witness holds size {held}, not {claimed}")]
    Conflict {
        /// What the witness holds.
        held: u64,
        /// The old size the request claimed.
        claimed: u64,
    },
    /// 422: the checkpoint does not extend the one the witness holds.
    #[error("not consistent with the checkpoint the witness holds: {0}")]
    Inconsistent(String),
    /// 500: the witness's own state failed.
    #[error("witness state: {0}")]
    Internal(String),
}

impl Refusal {
    /// The tlog-witness status code.
    pub fn status(&self) -> StatusCode {
        match self {
            Refusal::Malformed(_) => StatusCode::BAD_REQUEST,
            Refusal::UnknownLog(_) => StatusCode::NOT_FOUND,
            Refusal::BadSignature(_) => StatusCode::FORBIDDEN,
            Refusal::Conflict { .. } => StatusCode::CONFLICT,
            Refusal::Inconsistent(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Refusal::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match &self {
            Refusal::Conflict { held, .. } => (
                StatusCode::CONFLICT,
                [(CONTENT_TYPE, SIZE_CONTENT_TYPE)],
                format!("{held}\n"),
            )
                .into_response(),
            Refusal::Internal(detail) => {
                tracing::error!(error = %detail, "witness state failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal error; see the witness log\n",
                )
                    .into_response()
            }
            other => (other.status(), format!("{other}\n")).into_response(),
        }
    }
}

/// An `add-checkpoint` request body: `old <size>`, the proof lines, a blank line, the note.
pub fn encode_request(old: u64, proof: &[Hash], checkpoint_note: &str) -> Vec<u8> {
    let mut body = format!("old {old}\n");
    for h in proof {
        body.push_str(&BASE64.encode(h));
        body.push('\n');
    }
    body.push('\n');
    body.push_str(checkpoint_note);
    body.into_bytes()
}

/// Parses an `add-checkpoint` body into the old size, the proof and the checkpoint note.
pub fn parse_request(body: &[u8]) -> Result<(u64, Vec<Hash>, &str), Refusal> {
    let bad = |m: &str| Refusal::Malformed(m.to_owned());
    if body.len() > MAX_REQUEST_BYTES {
        return Err(bad("the request is over the size limit"));
    }
    let text = std::str::from_utf8(body).map_err(|_| bad("the request is not UTF-8"))?;
    let (old_line, mut rest) = text.split_once('\n').ok_or_else(|| bad("no old size line"))?;
    let old = old_line
        .strip_prefix("old ")
        .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) && (*n == "0" || !n.starts_with('0')))
        .and_then(|n| n.parse::<u64>().ok())
        .ok_or_else(|| bad("the first line must be `old <size>` in canonical decimal"))?;
    let mut proof = Vec::new();
    loop {
        let (line, tail) = rest
            .split_once('\n')
            .ok_or_else(|| bad("no blank line before the checkpoint"))?;
        rest = tail;
        if line.is_empty() {
            break;
        }
        if proof.len() == MAX_PROOF_LINES {
            return Err(bad("more than 63 consistency proof lines"));
        }
        let raw = BASE64.decode(line).map_err(|_| bad("a proof line is not base64"))?;
        proof.push(Hash::try_from(raw.as_slice()).map_err(|_| bad("a proof line is not a 32-byte hash"))?);
    }
    Ok((old, proof, rest))
}

/// The witness: its key, the logs it watches and its state file.
#[derive(Debug)]
pub struct Witness {
    signer: WitnessSigner,
    logs: HashMap<String, Vec<NoteVerifierKey>>,
    db: Mutex<Connection>,
    path: PathBuf,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS logs (
    origin TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    root BLOB NOT NULL,
    checkpoint TEXT NOT NULL
);
";

fn internal(e: impl std::fmt::Display) -> Refusal {
    Refusal::Internal(e.to_string())
}

impl Witness {
    /// A witness signing with `signer`, watching the logs of `log_keys` (grouped by key name,
    /// the log origin), keeping its state in the SQLite file `state` (created if needed).
    pub fn open(signer: WitnessSigner, log_keys: Vec<NoteVerifierKey>, state: &Path) -> Result<Self, Refusal> {
        let conn = Connection::open(state).map_err(|e| internal(format!("{}: {e}", state.display())))?;
        // Every cosignature must be on disk before it is handed out: a witness that forgot a
        // checkpoint after a crash could be made to cosign a fork of it.
        conn.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;")
            .and_then(|()| conn.execute_batch(SCHEMA))
            .map_err(|e| internal(format!("{}: {e}", state.display())))?;
        let mut logs: HashMap<String, Vec<NoteVerifierKey>> = HashMap::new();
        for k in log_keys {
            logs.entry(k.name().to_owned()).or_default().push(k);
        }
        Ok(Witness {
            signer,
            logs,
            db: Mutex::new(conn),
            path: state.to_path_buf(),
        })
    }

    /// The witness's public key (what logs and clients configure).
    pub fn public(&self) -> &WitnessKey {
        self.signer.public()
    }

    /// The state file.
    pub fn state_path(&self) -> &Path {
        &self.path
    }

    /// The size and root the witness holds for `origin` (0 and the empty root if none).
    pub fn held(&self, origin: &str) -> Result<(u64, Hash), Refusal> {
        let db = self.db.lock().map_err(|_| internal("state lock poisoned"))?;
        held(&db, origin)
    }

    /// Handles one `add-checkpoint` body: the cosignature line(s) on success.
    pub fn add_checkpoint(&self, body: &[u8]) -> Result<String, Refusal> {
        let (old, proof, note) = parse_request(body)?;
        // The origin is the first line of the body; only its keys can open the note.
        let origin = note.split('\n').next().unwrap_or_default();
        let keys = self
            .logs
            .get(origin)
            .ok_or_else(|| Refusal::UnknownLog(origin.to_owned()))?;
        let checkpoint = open_checkpoint(note.as_bytes(), keys).map_err(|e| match e {
            SnapshotError::Note {
                source: source @ (NoteError::NoVerifiedSignature { .. } | NoteError::InvalidSignature { .. }),
                ..
            } => Refusal::BadSignature(source.to_string()),
            SnapshotError::WrongOrigin { .. } => Refusal::BadSignature(e.to_string()),
            other => Refusal::Malformed(other.to_string()),
        })?;
        if old > checkpoint.size {
            return Err(Refusal::Malformed(format!(
                "old size {old} is past the checkpoint size {}",
                checkpoint.size
            )));
        }
        let mut db = self.db.lock().map_err(|_| internal("state lock poisoned"))?;
        // IMMEDIATE: the write lock is taken before the read, so another process sharing the
        // file cannot slip an update between our check and our write.
        let tx = db
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(internal)?;
        let (held_size, held_root) = held(&tx, origin)?;
        if old != held_size {
            return Err(Refusal::Conflict {
                held: held_size,
                claimed: old,
            });
        }
        check_extends(held_size, &held_root, &checkpoint, &proof)?;
        let line = self
            .signer
            .cosign(&checkpoint.to_body(), now_unix())
            .map_err(internal)?;
        let cosigned = format!("{note}{line}");
        tx.execute(
            "INSERT INTO logs (origin, size, root, checkpoint) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (origin) DO UPDATE SET size = ?2, root = ?3, checkpoint = ?4",
            params![
                origin,
                i64::try_from(checkpoint.size).map_err(internal)?,
                &checkpoint.root[..],
                cosigned
            ],
        )
        .map_err(internal)?;
        tx.commit().map_err(internal)?;
        Ok(line)
    }

    /// The latest checkpoint cosigned for the log whose origin hashes to `origin_hash` (lower
    /// case hex of SHA-256), with the log's signature and this witness's cosignature.
    pub fn latest(&self, origin_hash: &str) -> Result<Option<String>, Refusal> {
        let Some(origin) = self
            .logs
            .keys()
            .find(|o| hex::encode(Sha256::digest(o.as_bytes())) == origin_hash)
        else {
            return Ok(None);
        };
        let db = self.db.lock().map_err(|_| internal("state lock poisoned"))?;
        db.query_row("SELECT checkpoint FROM logs WHERE origin = ?1", params![origin], |r| {
            r.get(0)
        })
        .optional()
        .map_err(internal)
    }
}

fn held(conn: &Connection, origin: &str) -> Result<(u64, Hash), Refusal> {
    let row: Option<(i64, Vec<u8>)> = conn
        .query_row("SELECT size, root FROM logs WHERE origin = ?1", params![origin], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()
        .map_err(internal)?;
    match row {
        None => Ok((0, merkle::empty_root())),
        Some((size, root)) => Ok((
            u64::try_from(size).map_err(internal)?,
            Hash::try_from(root.as_slice()).map_err(|_| internal("a stored root is not 32 bytes"))?,
        )),
    }
}

/// The tlog-witness consistency rules from the held (size, root) to `new`.
fn check_extends(held_size: u64, held_root: &Hash, new: &Checkpoint, proof: &[Hash]) -> Result<(), Refusal> {
    if new.size == 0 {
        return if new.root == merkle::empty_root() && proof.is_empty() {
            Ok(())
        } else {
            Err(Refusal::Inconsistent("an empty tree must have the empty root".into()))
        };
    }
    if held_size == 0 {
        return if proof.is_empty() {
            Ok(())
        } else {
            Err(Refusal::Inconsistent("a proof from size 0 must be empty".into()))
        };
    }
    if held_size == new.size {
        return if new.root == *held_root && proof.is_empty() {
            Ok(())
        } else {
            Err(Refusal::Inconsistent(format!(
                "another root for size {held_size} than the one cosigned"
            )))
        };
    }
    merkle::verify_consistency(held_size, new.size, held_root, &new.root, proof)
        .map_err(|e| Refusal::Inconsistent(e.to_string()))
}

async fn add_checkpoint(State(witness): State<Arc<Witness>>, body: Bytes) -> Response {
    // SQLite and signing are blocking work.
    let result = tokio::task::spawn_blocking(move || witness.add_checkpoint(&body)).await;
    match result {
        Ok(Ok(line)) => (StatusCode::OK, [(CONTENT_TYPE, "text/plain; charset=utf-8")], line).into_response(),
        Ok(Err(refusal)) => {
            tracing::info!(%refusal, "checkpoint refused");
            refusal.into_response()
        }
        Err(e) => internal(e).into_response(),
    }
}

async fn latest(State(witness): State<Arc<Witness>>, UrlPath(origin_hash): UrlPath<String>) -> Response {
    match tokio::task::spawn_blocking(move || witness.latest(&origin_hash)).await {
        Ok(Ok(Some(note))) => (StatusCode::OK, [(CONTENT_TYPE, "text/plain; charset=utf-8")], note).into_response(),
        Ok(Ok(None)) => (StatusCode::NOT_FOUND, "no checkpoint cosigned for this log\n").into_response(),
        Ok(Err(refusal)) => refusal.into_response(),
        Err(e) => internal(e).into_response(),
    }
}

/// The witness's HTTP interface: `POST /add-checkpoint`, `GET /{origin hash}/checkpoint`.
pub fn router(witness: Arc<Witness>) -> Router {
    Router::new()
        .route("/add-checkpoint", post(add_checkpoint))
        .route("/{origin_hash}/checkpoint", get(latest))
        .layer(DefaultBodyLimit::max(MAX_REQUEST_BYTES))
        .with_state(witness)
}

/// A witness as the log configures it: where to submit and which key must cosign.
#[derive(Debug, Clone)]
pub struct WitnessEndpoint {
    /// The submission prefix (`<url>/add-checkpoint` is posted to).
    pub url: String,
    /// The witness's key: a cosignature that does not verify under it is dropped.
    pub key: WitnessKey,
}

impl WitnessEndpoint {
    /// Parses `URL=KEY` (the key is a vkey, `<name>+<id>+<base64>`, which never holds `=`).
    pub fn parse(text: &str) -> Result<Self, String> {
        let (url, key) = text
            .rsplit_once('=')
            .ok_or_else(|| format!("{text:?}: expected URL=WITNESS_KEY"))?;
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(format!("{url:?}: a witness URL starts with http:// or https://"));
        }
        let key = key.parse::<WitnessKey>().map_err(|e| e.to_string())?;
        Ok(WitnessEndpoint {
            url: url.trim_end_matches('/').to_owned(),
            key,
        })
    }
}

/// How long the log waits for one witness answer.
pub const WITNESS_TIMEOUT: Duration = Duration::from_secs(5);

/// What one witness said to one submission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WitnessAnswer {
    /// The cosignature line, verified under the witness's key.
    Cosigned(String),
    /// 409: the witness holds this size.
    Holds(u64),
    /// Anything else (refusal, bad answer, network failure), for the log.
    Failed(String),
}

/// Posts one `add-checkpoint` (blocking: call it off the async runtime) and checks the answer:
/// only a cosignature line that verifies under `endpoint.key` on `checkpoint_note` is returned.
pub fn submit(endpoint: &WitnessEndpoint, old: u64, proof: &[Hash], checkpoint_note: &str) -> WitnessAnswer {
    let url = format!("{}/add-checkpoint", endpoint.url);
    let body = encode_request(old, proof, checkpoint_note);
    let (status, answer) = match weightseal_verifier::revocation::client::post(
        &url,
        "text/plain; charset=utf-8",
        body,
        WITNESS_TIMEOUT,
        64 * 1024,
    ) {
        Ok(r) => r,
        Err(e) => return WitnessAnswer::Failed(e.to_string()),
    };
    let text = String::from_utf8_lossy(&answer);
    match status {
        // Keep the first line that is a valid cosignature by the configured key; anything else
        // the witness sent is dropped, so a witness can add nothing but its own cosignature.
        200 => text
            .lines()
            .map(|l| format!("{l}\n"))
            .find(|l| matches!(endpoint.key.cosigned(&format!("{checkpoint_note}{l}")), Ok(Some(_))))
            .map_or_else(
                || WitnessAnswer::Failed("the answer holds no valid cosignature by the configured key".into()),
                WitnessAnswer::Cosigned,
            ),
        409 => text.trim_end_matches('\n').parse::<u64>().map_or_else(
            |_| WitnessAnswer::Failed("409 without a size".into()),
            WitnessAnswer::Holds,
        ),
        other => WitnessAnswer::Failed(format!(
            "HTTP {other}: {}",
            text.trim_end().chars().take(200).collect::<String>()
        )),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "test setup")]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip_and_malformed_ones_are_refused() {
        let body = encode_request(7, &[[1; 32], [2; 32]], "o\n9\nroot\n\n— o sig\n");
        let (old, proof, note) = parse_request(&body).unwrap();
        assert_eq!(
            (old, proof, note),
            (7, vec![[1; 32], [2; 32]], "o\n9\nroot\n\n— o sig\n")
        );
        for bad in [
            &b"old 07\n\nx"[..],
            b"old -1\n\nx",
            b"new 1\n\nx",
            b"old 1\nAAAA\n\nx",
            b"old 1\n!!\n\nx",
            b"old 1\n",
        ] {
            assert!(matches!(parse_request(bad), Err(Refusal::Malformed(_))), "{bad:?}");
        }
        let many = encode_request(1, &vec![[0; 32]; 64], "x\n");
        assert!(matches!(parse_request(&many), Err(Refusal::Malformed(_))));
        assert!(WitnessEndpoint::parse("http://w.example=nokey").is_err());
        assert!(WitnessEndpoint::parse("ftp://x=y").is_err());
    }
}
