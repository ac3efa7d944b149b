//! The client's revocation state (spec/revocation.md §7): pinned log keys, a local state
//! folder, sync over a [`Source`], and fast offline lookups.
//!
//! # State folder
//!
//! * `state.cbor` — replaced atomically (temporary file, fsync, rename, fsync of the
//!   folder): the held snapshot and checkpoint notes, the tree size and the committed
//!   length of `entries.log`.
//! * `entries.log` — append-only: one record per leaf, a 4-byte big-endian length then
//!   the exact signed-entry bytes. Bytes past the committed length (a torn append) are
//!   ignored on load and cut off before the next append.
//! * `lineage/` — the lineage document of every `lineage` entry, one file named by its
//!   digest, checked against the signed digest and written before the state file that
//!   commits the entry (content-addressed, so a file left by a failed sync is harmless).
//! * `evidence/` — pairs of conflicting signed notes (equivocation), kept for audit.
//!
//! A crash at any point leaves the previous state valid. One process at a time may
//! sync a folder (the library takes no lock).
//!
//! # Fail closed
//!
//! [`RevocationState::require_fresh`] refuses when there is no state or the held
//! snapshot has expired. A caller that proceeds anyway is opting out of revocation and
//! must say so by name (the CLI's `--unsafe-ignore-revocation-status`); this crate has
//! no such switch.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};

use ciborium::Value;
use rayon::prelude::*;

use crate::cbor::{self, Limits};
use crate::digest::Digest;
use crate::fields::{FieldError, Fields};
use crate::keys::KeyId;
use crate::manifest::{FileEntry, Manifest};
use crate::revocation::cosignature::{CosignatureError, WitnessPolicy};
use crate::revocation::entry::{
    verify_signatures, Action, EntryError, IssuerKeys, Reason, SignedEntry, Subject, SubjectKind,
};
use crate::revocation::lineage::{
    lineage_path, parse_lineage_path, LineageDoc, LineageDocError, MAX_LINEAGE_DOC_BYTES,
};
use crate::revocation::merkle::{self, Hash, ProofError};
use crate::revocation::note::{split_note, Checkpoint, NoteError, NoteVerifierKey};
use crate::revocation::policy::{KeyLiveness, PolicyViolation, UtcTime};
use crate::revocation::rotation::{is_rotation_leaf, LogKeyRef, RotationError, RotationStatement};
use crate::revocation::snapshot::{open_checkpoint, Snapshot, SnapshotError, MAX_LOG_NOTE_BYTES};
use crate::revocation::tile::{
    consistency_proof_path, decode_publication, decode_tile, tiles_covering, ConsistencyProofDoc, TileError, TileRef,
    CHECKPOINT_PATH, MAX_PROOF_BYTES, MAX_PUBLICATION_BYTES, MAX_TILE_BYTES, PUBLICATION_PATH, SNAPSHOT_PATH,
    TILE_WIDTH,
};

/// Name of the atomically replaced state file.
pub const STATE_FILE: &str = "state.cbor";
/// Name of the append-only entries file.
pub const ENTRIES_FILE: &str = "entries.log";
/// Name of the evidence folder.
pub const EVIDENCE_DIR: &str = "evidence";
/// Name of the folder of lineage documents (one file per document, named by its digest in
/// hex), written before the state file that commits the entries naming them.
pub const LINEAGE_DIR: &str = "lineage";
/// Name of the misbehaviour mark inside the evidence folder (spec/revocation.md §7.5): while
/// it exists, [`RevocationState::require_fresh`] refuses.
pub const MISBEHAVIOUR_MARK: &str = "MISBEHAVED";
/// The largest log a client accepts (entries).
pub const MAX_LOG_ENTRIES: u64 = 1 << 28;
/// The largest state file, in bytes.
const MAX_STATE_FILE_BYTES: usize = 4 * MAX_LOG_NOTE_BYTES;
const STATE_VERSION: u64 = 1;

/// The most bytes a source may return for `path`: 64 KiB for notes and proofs, one
/// tile's limit for tiles, 16 MiB for lineage documents, 64 KiB for anything else.
pub fn max_response_bytes(path: &str) -> usize {
    if TileRef::parse_path(path).is_some() {
        MAX_TILE_BYTES
    } else if parse_lineage_path(path).is_some() {
        MAX_LINEAGE_DOC_BYTES
    } else if path == PUBLICATION_PATH {
        MAX_PUBLICATION_BYTES
    } else if path.contains("proof/") {
        MAX_PROOF_BYTES
    } else {
        MAX_LOG_NOTE_BYTES
    }
}

/// Why a source could not answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    /// Reading a local file failed.
    #[error("reading {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The answer is larger than the limit for that path.
    #[error("{path}: the answer is over the limit of {limit} bytes")]
    TooLarge {
        /// The path asked for.
        path: String,
        /// The limit ([`max_response_bytes`]).
        limit: usize,
    },
    /// A path this source refuses to serve (e.g. one that could leave its folder).
    #[error("{path}: not a valid publication path")]
    BadPath {
        /// The path asked for.
        path: String,
    },
    /// An HTTP status other than 200 or 404.
    #[error("{url}: HTTP status {status}")]
    Status {
        /// The URL.
        url: String,
        /// The status code.
        status: u16,
    },
    /// A network or protocol failure.
    #[error("{url}: {reason}")]
    Transport {
        /// The URL.
        url: String,
        /// What failed.
        reason: String,
    },
}

/// Where published documents come from: a live server, a static export, a bundle.
///
/// `get` returns `Ok(None)` when the document does not exist (HTTP 404). Paths are the
/// relative publication paths of [`crate::revocation::tile`] (e.g. `v1/snapshot`).
/// Implementations must refuse answers over [`max_response_bytes`].
pub trait Source {
    /// Fetches one document.
    fn get(&self, path: &str) -> Result<Option<Vec<u8>>, SourceError>;
}

/// A static export on disk (`weightseal-server export DIR`), served as files.
#[derive(Debug, Clone)]
pub struct DirSource {
    root: PathBuf,
}

impl DirSource {
    /// A source reading from the export folder `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        DirSource { root: root.into() }
    }
}

/// Whether `path` is a plain relative publication path: `[A-Za-z0-9._-]` components,
/// no `.` or `..`, no empty component.
pub fn is_safe_path(path: &str) -> bool {
    !path.is_empty()
        && path.split('/').all(|c| {
            !c.is_empty()
                && c != "."
                && c != ".."
                && c.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
        })
}

impl Source for DirSource {
    fn get(&self, path: &str) -> Result<Option<Vec<u8>>, SourceError> {
        if !is_safe_path(path) {
            return Err(SourceError::BadPath { path: path.into() });
        }
        let full = self.root.join(path);
        let limit = max_response_bytes(path);
        let io = |source| SourceError::Io {
            path: full.display().to_string(),
            source,
        };
        let file = match File::open(&full) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(e)),
        };
        if file.metadata().map_err(io)?.is_dir() {
            return Ok(None);
        }
        let mut buf = Vec::new();
        file.take(limit as u64 + 1).read_to_end(&mut buf).map_err(io)?;
        if buf.len() > limit {
            return Err(SourceError::TooLarge {
                path: path.into(),
                limit,
            });
        }
        Ok(Some(buf))
    }
}

/// Why a sync, a load or a freshness check failed. On every sync error the trusted
/// state (in memory and on disk) is unchanged.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RevocationError {
    /// Reading or writing the local state folder failed.
    #[error("revocation state {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The local state folder is damaged (not a torn append: those are ignored).
    #[error("revocation state {path} is damaged: {problem}")]
    Corrupt {
        /// The file.
        path: String,
        /// What is wrong.
        problem: String,
    },
    /// The source failed.
    #[error("revocation source: {0}")]
    Source(#[from] SourceError),
    /// The source does not have a document every publication has.
    #[error("revocation source has no {path}")]
    Missing {
        /// The path.
        path: String,
    },
    /// A checkpoint or snapshot is not signed by a pinned log key.
    #[error("{what} is not signed by a pinned log key (wrong server key?): {reason}")]
    WrongServerKey {
        /// `checkpoint` or `snapshot`.
        what: &'static str,
        /// Details.
        reason: String,
    },
    /// A checkpoint or snapshot is malformed or over its size limit.
    #[error("{0}")]
    BadNote(SnapshotError),
    /// A tile or proof document is malformed.
    #[error("{0}")]
    BadDocument(#[from] TileError),
    /// The fetched snapshot has expired (freeze attack or a stalled log).
    #[error("the log's snapshot version {version} expired at {} (now {}); refusing frozen data", UtcTime(*expires), UtcTime(*now))]
    Expired {
        /// Its version.
        version: u64,
        /// Its expiry.
        expires: u64,
        /// The clock used.
        now: u64,
    },
    /// The held snapshot has expired and nothing fresher was verified: status unknown.
    #[error("revocation status is stale: snapshot version {version} expired at {} (now {})", UtcTime(*expired_at), UtcTime(*now))]
    Stale {
        /// The held version.
        version: u64,
        /// Its expiry.
        expired_at: u64,
        /// The clock used.
        now: u64,
    },
    /// Nothing was ever synced into this state: status unknown.
    #[error("no revocation status: this state was never synced")]
    NoState,
    /// The fetched snapshot is older than the held one.
    #[error("rollback: snapshot version {found} is older than the held version {held}")]
    Rollback {
        /// The held version.
        held: u64,
        /// The fetched version.
        found: u64,
    },
    /// The fetched tree is smaller than the held one.
    #[error("rollback: the log shrank from {held} to {found} entries")]
    Shrunk {
        /// The held size.
        held: u64,
        /// The fetched size.
        found: u64,
    },
    /// Two validly signed documents contradict each other: same size, different roots,
    /// or same snapshot version, different content. Both were kept as evidence.
    #[error("equivocation: two signed {what}s for size {size} disagree (held root {held_root}, received {found_root}); evidence kept at {evidence:?}")]
    Equivocation {
        /// `checkpoint` or `snapshot`.
        what: &'static str,
        /// The size both claim.
        size: u64,
        /// Root (hex) of the held document.
        held_root: String,
        /// Root (hex) of the received one.
        found_root: String,
        /// Where the two notes were written, if the state has a folder.
        evidence: Option<PathBuf>,
    },
    /// The snapshot and checkpoint describe different trees.
    #[error(
        "the snapshot (size {snapshot_size}) and the checkpoint (size {checkpoint_size}) describe different trees"
    )]
    SnapshotMismatch {
        /// The snapshot's size.
        snapshot_size: u64,
        /// The checkpoint's size.
        checkpoint_size: u64,
    },
    /// The consistency proof from the held tree to the new one does not verify.
    #[error("the new checkpoint (size {new_size}) does not extend the held one (size {held_size}): {source}")]
    NotAnExtension {
        /// The held size.
        held_size: u64,
        /// The new size.
        new_size: u64,
        /// Why the proof failed.
        source: ProofError,
    },
    /// The fetched entries, appended to the held tree, do not give the signed root.
    #[error("the entries {held_size}..{new_size} do not lead to the signed root {expected} (computed {computed})")]
    DeltaMismatch {
        /// The held size.
        held_size: u64,
        /// The signed size.
        new_size: u64,
        /// The signed root, hex.
        expected: String,
        /// The computed root, hex.
        computed: String,
    },
    /// A fetched entry failed to decode or its issuer signature did not verify.
    #[error("log entry {index} is invalid: {source}")]
    TamperedEntry {
        /// The entry's index in the log.
        index: u64,
        /// Why.
        source: EntryError,
    },
    /// The source does not serve the lineage document a `lineage` entry names: the entry
    /// could not be enforced, so the sync is refused.
    #[error("log entry {index} names lineage document {digest}, which the source does not serve")]
    MissingLineage {
        /// The entry's index in the log.
        index: u64,
        /// The document's digest.
        digest: crate::Digest,
    },
    /// The lineage document a `lineage` entry names was refused (over the limit, malformed,
    /// or not the document the digest names).
    #[error("log entry {index} names lineage document {digest}: {source}")]
    BadLineage {
        /// The entry's index in the log.
        index: u64,
        /// The digest the entry names.
        digest: crate::Digest,
        /// Why (boxed: every sync error travels by value, and this one is rare).
        source: Box<LineageDocError>,
    },
    /// The log is larger than a client accepts.
    #[error("the log claims {found} entries, over the limit of {limit}")]
    TooManyEntries {
        /// The claimed size.
        found: u64,
        /// [`MAX_LOG_ENTRIES`].
        limit: u64,
    },
    /// The signed documents name another log than the held one.
    #[error("the log origin changed from {held:?} to {found:?}")]
    OriginChanged {
        /// The held origin.
        held: String,
        /// The fetched origin.
        found: String,
    },
    /// A leaf that is a rotation statement (spec/revocation.md §5.2) is invalid or is about
    /// another log.
    #[error("log entry {index} is an invalid rotation statement: {source}")]
    BadRotation {
        /// The leaf's index in the log.
        index: u64,
        /// Why.
        source: RotationError,
    },
    /// A note is signed by log keys that are not pinned and that no rotation statement by a
    /// pinned key announced (spec/revocation.md §7.6): refused, whatever the key.
    #[error("the {what} is signed by the log key {}, which is not pinned ({}) and which no rotation statement by a pinned key announced", key_list(signed_by), key_list(pinned))]
    UnannouncedLogKey {
        /// `checkpoint` or `snapshot`.
        what: &'static str,
        /// The log-named keys whose signature lines the note carries (none: no log signature).
        signed_by: Vec<LogKeyRef>,
        /// The keys this state follows.
        pinned: Vec<LogKeyRef>,
    },
    /// A note is signed only by a log key that this state retired when it followed a
    /// rotation statement (spec/revocation.md §7.6).
    #[error("the {what} is signed only by the log key {key}, which the rotation statement at log entry {index} retired for {successor}")]
    RetiredLogKey {
        /// `checkpoint` or `snapshot`.
        what: &'static str,
        /// The retired key.
        key: LogKeyRef,
        /// The key that replaced it.
        successor: LogKeyRef,
        /// The statement's index in the log.
        index: u64,
    },
    /// The tree that holds a rotation statement this client follows is not signed by the
    /// announced key: the log must sign with both keys from the statement on (§5.2).
    #[error("the {what} of the tree holding the rotation statement at log entry {index} is not signed by the announced key {key}")]
    RotationNotSigned {
        /// `checkpoint` or `snapshot`.
        what: &'static str,
        /// The statement's index in the log.
        index: u64,
        /// The announced key.
        key: LogKeyRef,
    },
    /// The checkpoint lacks the witness cosignatures the client's policy requires
    /// (spec/revocation.md §5.1): it may be a view of the log that no honest witness saw.
    #[error("the log's checkpoint (size {size}) is refused: {source}")]
    WitnessQuorum {
        /// The checkpoint's size.
        size: u64,
        /// What is missing.
        source: CosignatureError,
    },
    /// An earlier sync caught the log contradicting itself; the evidence is kept and every
    /// answer is refused until an operator investigates and clears the mark
    /// ([`RevocationState::clear_misbehaviour`], `weightseal revocations clear-evidence`).
    #[error("the revocation log misbehaved ({kind}); evidence at {}; refusing until an operator clears it", evidence.as_deref().map_or_else(|| "(not kept: no state folder)".to_owned(), |p| p.display().to_string()))]
    LogMisbehaved {
        /// What was caught.
        kind: Misbehaviour,
        /// The evidence file, if the state has a folder.
        evidence: Option<PathBuf>,
    },
}

/// What a log was caught doing (spec/revocation.md §7.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Misbehaviour {
    /// Two signed notes for one tree size (or one snapshot version) with different content.
    Equivocation,
    /// A larger signed tree whose consistency proof from the held tree does not verify.
    NotAnExtension,
    /// A larger signed tree that the held entries plus the served new entries do not give.
    DeltaMismatch,
}

impl Misbehaviour {
    /// The name written in the mark file.
    pub fn as_str(self) -> &'static str {
        match self {
            Misbehaviour::Equivocation => "equivocation",
            Misbehaviour::NotAnExtension => "not-an-extension",
            Misbehaviour::DeltaMismatch => "delta-mismatch",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        [Self::Equivocation, Self::NotAnExtension, Self::DeltaMismatch]
            .into_iter()
            .find(|m| m.as_str() == text)
    }
}

impl std::fmt::Display for Misbehaviour {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

fn key_list(keys: &[LogKeyRef]) -> String {
    if keys.is_empty() {
        return "(none)".to_owned();
    }
    keys.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
}

/// Whether opening a note failed only because no pinned key signed it (as opposed to a
/// pinned key's signature failing, or a malformed note): the case a rotation may explain.
fn unpinned(e: &SnapshotError) -> bool {
    matches!(
        e,
        SnapshotError::Note {
            source: NoteError::NoVerifiedSignature { .. },
            ..
        }
    )
}

/// The keys named by the log origin (the note body's first line) whose signature lines
/// `note` carries, verified or not; witness cosignature lines carry other names.
fn log_signers(note: &[u8]) -> Vec<LogKeyRef> {
    let Some((body, lines)) = std::str::from_utf8(note).ok().and_then(|t| split_note(t).ok()) else {
        return Vec::new();
    };
    let origin = body.lines().next().unwrap_or_default();
    let origin = origin.strip_prefix("weightseal-snapshot/v1").map_or(origin, |_| {
        // A snapshot's origin is its second line.
        body.lines().nth(1).unwrap_or_default()
    });
    let mut out: Vec<LogKeyRef> = Vec::new();
    for l in lines.iter().filter(|l| l.name == origin) {
        let key = LogKeyRef {
            name: l.name.to_owned(),
            key_id: l.key_id,
        };
        if !out.contains(&key) {
            out.push(key);
        }
    }
    out
}

/// A leaf as held: a signed entry (§2.2), as the state keeps it, or a rotation statement
/// (§5.2; boxed, being rare and large).
enum Leaf {
    Entry(LogEntry),
    Rotation(Box<RotationStatement>),
}

fn note_error(what: &'static str, e: SnapshotError) -> RevocationError {
    match e {
        SnapshotError::Note {
            source: source @ (NoteError::NoVerifiedSignature { .. } | NoteError::InvalidSignature { .. }),
            ..
        } => RevocationError::WrongServerKey {
            what,
            reason: source.to_string(),
        },
        SnapshotError::WrongOrigin { found, signed_by, .. } => RevocationError::WrongServerKey {
            what,
            reason: format!("origin {found:?} is not the name of the signing key ({signed_by:?})"),
        },
        other => RevocationError::BadNote(other),
    }
}

/// One log entry as held for lookups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    /// Its index in the log.
    pub index: u64,
    /// What it is about.
    pub subject: Subject,
    /// Revoke or reinstate.
    pub action: Action,
    /// Why.
    pub reason: Reason,
    /// The issuer's key id.
    pub issuer: KeyId,
    /// The issuer's time, Unix seconds.
    pub time: u64,
    /// The evidence URL, if any.
    pub evidence: Option<String>,
}

impl LogEntry {
    fn from_entry(index: u64, e: crate::revocation::entry::Entry) -> Self {
        LogEntry {
            index,
            subject: e.subject,
            action: e.action,
            reason: e.reason,
            issuer: e.issuer.id(),
            time: e.time,
            evidence: e.evidence,
        }
    }
}

/// What part of a model matched a revocation.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Matched {
    /// The manifest digest.
    Manifest,
    /// A signer's key id.
    SignerKey,
    /// A file's digest.
    File {
        /// The file's path.
        path: String,
    },
    /// A chunk's (tensor's) digest.
    Chunk {
        /// The file's path.
        path: String,
        /// The chunk's label (`tensor NAME`, `header`, `bytes A..B`).
        chunk: String,
    },
    /// The model's weights carry the fork's change that a `lineage` entry's document
    /// describes ([`crate::fingerprint::lineage::derived_from_fork`]).
    Lineage {
        /// The fork score.
        score: f64,
        /// The threshold it passed.
        threshold: f64,
        /// The derived-from-base score (which passed its own threshold too).
        base_score: f64,
    },
}

/// A revoked subject found in a model.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Hit {
    /// What matched.
    pub matched: Matched,
    /// The entry that decides the subject's status (the last one about it: a revocation).
    pub entry: LogEntry,
}

/// What a sync did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SyncReport {
    /// Size held before.
    pub old_size: u64,
    /// Size held now.
    pub new_size: u64,
    /// Snapshot version held now.
    pub snapshot_version: u64,
    /// Its expiry.
    pub expires: u64,
    /// Documents fetched.
    pub requests: u64,
    /// Bytes fetched (document bodies).
    pub bytes_fetched: u64,
}

/// What is held: snapshot, checkpoint and their notes.
#[derive(Debug, Clone)]
struct Held {
    snapshot: Snapshot,
    snapshot_note: String,
    checkpoint: Checkpoint,
    checkpoint_note: String,
}

/// An RFC 6962 compact range over `[0, size)`: the roots of the complete subtrees of
/// the size's binary decomposition, largest first. Enough to append and to compute the
/// root, in O(log n) memory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Frontier {
    size: u64,
    nodes: Vec<(u32, Hash)>,
}

impl Frontier {
    pub(crate) fn push(&mut self, leaf: Hash) {
        let mut node = (0u32, leaf);
        while let Some(&(h, left)) = self.nodes.last() {
            if h != node.0 {
                break;
            }
            self.nodes.pop();
            node = (h + 1, merkle::node_hash(&left, &node.1));
        }
        self.nodes.push(node);
        self.size += 1;
    }

    /// The compact range of `leaves`, its complete subtrees hashed on every core: what
    /// pushing each leaf in turn gives, in a fraction of the time for a large log.
    pub(crate) fn from_leaves(leaves: &[Hash]) -> Self {
        let mut nodes = Vec::new();
        let mut start = 0usize;
        // The size's binary decomposition, largest subtree first (the order `push` keeps).
        for height in (0..usize::BITS).rev() {
            let width = 1usize << height;
            if leaves.len() & width != 0 {
                nodes.push((height, complete_subtree_root(&leaves[start..start + width])));
                start += width;
            }
        }
        Frontier {
            size: leaves.len() as u64,
            nodes,
        }
    }

    pub(crate) fn root(&self) -> Hash {
        let mut iter = self.nodes.iter().rev();
        let Some(&(_, mut acc)) = iter.next() else {
            return merkle::empty_root();
        };
        for (_, left) in iter {
            acc = merkle::node_hash(left, &acc);
        }
        acc
    }
}

/// The root of a complete subtree (`leaves.len()` a power of two), halves in parallel
/// above a size where splitting costs more than it saves.
fn complete_subtree_root(leaves: &[Hash]) -> Hash {
    const SEQUENTIAL_BELOW: usize = 1 << 12;
    match leaves.len() {
        0 => merkle::empty_root(),
        1 => leaves[0],
        n if n <= SEQUENTIAL_BELOW => {
            let mut level: Vec<Hash> = leaves
                .chunks_exact(2)
                .map(|p| merkle::node_hash(&p[0], &p[1]))
                .collect();
            while level.len() > 1 {
                level = level.chunks_exact(2).map(|p| merkle::node_hash(&p[0], &p[1])).collect();
            }
            level[0]
        }
        n => {
            let (left, right) = leaves.split_at(n / 2);
            let (l, r) = rayon::join(|| complete_subtree_root(left), || complete_subtree_root(right));
            merkle::node_hash(&l, &r)
        }
    }
}

/// The client's verified revocation state.
#[derive(Debug)]
pub struct RevocationState {
    /// The keys this state follows now: the configured keys, with every rotation statement
    /// it followed applied (spec/revocation.md §7.6).
    keys: Vec<NoteVerifierKey>,
    /// The keys it was opened with (the trust root the rotations start from).
    configured: Vec<NoteVerifierKey>,
    /// The rotation statements it followed, with their log indexes, in log order.
    rotations: Vec<(u64, RotationStatement)>,
    dir: Option<PathBuf>,
    held: Option<Held>,
    entries_len: u64,
    frontier: Frontier,
    entries: Vec<LogEntry>,
    /// Subject → position in `entries` of the last entry about it that counts. Hashed with
    /// foldhash under a per-process random seed: a lookup of a 10,000-chunk model is 10,000
    /// probes, and SipHash was a fifth of their cost.
    index: HashMap<Subject, u32, foldhash::quality::RandomState>,
    /// The revoked-key rule (§3.1) over the held entries, in log order.
    liveness: KeyLiveness,
    /// Entries that do not count (signed by a revoked key, or a key reinstating itself).
    void: HashMap<u64, PolicyViolation>,
    /// Set when a sync caught the log misbehaving (persisted as `evidence/MISBEHAVED`).
    misbehaved: Option<(Misbehaviour, Option<PathBuf>)>,
    /// The checkpoint note being synced, kept for evidence if the sync is refused.
    fetched_checkpoint: Option<String>,
    /// Which witnesses must have cosigned a checkpoint before it is accepted.
    witnesses: WitnessPolicy,
    /// Every lineage document digest an entry names (void or not): their documents are held.
    lineage: std::collections::BTreeSet<Digest>,
    /// The lineage documents of a state with no folder (a folder keeps them in
    /// [`LINEAGE_DIR`]).
    lineage_docs: HashMap<Digest, Vec<u8>>,
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> RevocationError + '_ {
    move |source| RevocationError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Writes `bytes` to `dir/name` through [`crate::atomic::write_file`].
pub(crate) fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), RevocationError> {
    let target = dir.join(name);
    crate::atomic::write_file(&target, bytes).map_err(io_err(&target))
}

fn corrupt(path: &Path, problem: impl Into<String>) -> RevocationError {
    RevocationError::Corrupt {
        path: path.display().to_string(),
        problem: problem.into(),
    }
}

/// Splits the entries file into records (4-byte big-endian length, then the bytes).
fn split_records<'a>(path: &Path, bytes: &'a [u8]) -> Result<Vec<&'a [u8]>, RevocationError> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let (len, tail) = rest
            .split_first_chunk::<4>()
            .ok_or_else(|| corrupt(path, "truncated record header"))?;
        let len = u32::from_be_bytes(*len) as usize;
        if len > crate::revocation::entry::MAX_SIGNED_ENTRY_BYTES || len > tail.len() {
            return Err(corrupt(path, format!("record {} has a bad length {len}", out.len())));
        }
        let (record, tail) = tail.split_at(len);
        out.push(record);
        rest = tail;
    }
    Ok(out)
}

impl RevocationState {
    /// A state with no folder (nothing persisted), pinned to `keys`.
    pub fn in_memory(keys: Vec<NoteVerifierKey>) -> Self {
        RevocationState {
            configured: keys.clone(),
            keys,
            rotations: Vec::new(),
            dir: None,
            held: None,
            entries_len: 0,
            frontier: Frontier::default(),
            entries: Vec::new(),
            index: HashMap::default(),
            liveness: KeyLiveness::new(),
            void: HashMap::new(),
            misbehaved: None,
            fetched_checkpoint: None,
            witnesses: WitnessPolicy::none(),
            lineage: std::collections::BTreeSet::new(),
            lineage_docs: HashMap::new(),
        }
    }

    /// Requires every checkpoint a sync accepts from now on to carry the cosignatures of a
    /// quorum of `policy`'s witnesses (spec/revocation.md §5.1). The default,
    /// [`WitnessPolicy::none`], accepts the log's signature alone.
    pub fn set_witness_policy(&mut self, policy: WitnessPolicy) {
        self.witnesses = policy;
    }

    /// The witness policy syncs apply.
    pub fn witness_policy(&self) -> &WitnessPolicy {
        &self.witnesses
    }

    /// Opens (or creates) the state folder `dir`, pinned to the log keys `keys`.
    ///
    /// The held notes are re-opened with `keys` (a folder synced under other keys is
    /// refused), the entries up to the committed length are decoded and their root is
    /// recomputed and compared with the held checkpoint. Entry signatures were verified
    /// at sync and are not checked again.
    pub fn open(dir: &Path, keys: Vec<NoteVerifierKey>) -> Result<Self, RevocationError> {
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        let mut state = Self::in_memory(keys);
        state.dir = Some(dir.to_path_buf());
        state.misbehaved = read_mark(dir)?;
        let state_path = dir.join(STATE_FILE);
        let bytes = match fs::read(&state_path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(state),
            Err(e) => return Err(io_err(&state_path)(e)),
        };
        let (snapshot_note, checkpoint_note, size, entries_len, persisted_keys) =
            decode_state_file(&bytes).map_err(|p| corrupt(&state_path, p))?;
        let persisted_keys = persisted_keys
            .map(|texts| {
                texts
                    .iter()
                    .map(|t| t.parse::<NoteVerifierKey>())
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()
            .map_err(|e| corrupt(&state_path, format!("a pinned log key: {e}")))?;
        let entries_path = dir.join(ENTRIES_FILE);
        // Sized up front: growing by doubling would copy a large log several times over.
        let mut file_bytes = Vec::with_capacity(usize::try_from(entries_len).unwrap_or(0));
        if entries_len > 0 {
            let f = File::open(&entries_path).map_err(io_err(&entries_path))?;
            f.take(entries_len)
                .read_to_end(&mut file_bytes)
                .map_err(io_err(&entries_path))?;
        }
        if file_bytes.len() as u64 != entries_len {
            return Err(corrupt(
                &entries_path,
                format!("{} bytes, but {entries_len} are committed", file_bytes.len()),
            ));
        }
        let records = split_records(&entries_path, &file_bytes)?;
        if records.len() as u64 != size {
            return Err(corrupt(
                &entries_path,
                format!("{} entries, but the state holds {size}", records.len()),
            ));
        }
        // Every record decoded on every core straight into what the state keeps, collected
        // in place into a vector of known length (through `Result<Vec<_>>` rayon would
        // collect pieces into a list and copy every leaf once more). Rotation statements
        // are re-verified (they are few, and they decide which keys the held notes are
        // opened with); entry signatures were checked at sync. A failure keeps its message.
        let decoded: Vec<Result<Leaf, String>> = records
            .par_iter()
            .enumerate()
            .map_init(IssuerKeys::default, |keys, (i, r)| {
                if is_rotation_leaf(r) {
                    RotationStatement::from_leaf(r)
                        .map(|statement| Leaf::Rotation(Box::new(statement)))
                        .map_err(|e| e.to_string())
                } else {
                    SignedEntry::decode_entry_unverified(r, keys)
                        .map(|e| Leaf::Entry(LogEntry::from_entry(i as u64, e)))
                        .map_err(|e| e.to_string())
                }
            })
            .collect();
        if let Some((i, e)) = decoded
            .iter()
            .enumerate()
            .find_map(|(i, d)| d.as_ref().err().map(|e| (i, e)))
        {
            return Err(corrupt(&entries_path, format!("entry {i}: {e}")));
        }
        let hashes: Vec<Hash> = records.par_iter().map(|r| merkle::leaf_hash(r)).collect();
        // The keys the committed rotation statements lead to from the configured ones must be
        // the keys the state file pins (absent: the configured keys): the two are committed
        // together, so a difference means the folder was changed behind the client's back or
        // is opened with another trust root.
        let mut pins = state.configured.clone();
        for (i, leaf) in decoded.iter().enumerate() {
            if let Ok(Leaf::Rotation(statement)) = leaf {
                if let Some(next) = statement.follow(&pins) {
                    pins = next;
                    state.rotations.push((i as u64, (**statement).clone()));
                }
            }
        }
        let expected = persisted_keys.unwrap_or_else(|| state.configured.clone());
        if sorted_keys(&pins) != sorted_keys(&expected) {
            return Err(corrupt(
                &state_path,
                format!(
                    "it pins the log keys {}, but the rotation statements it holds lead from the configured keys to {}",
                    sorted_keys(&expected).join(", "),
                    sorted_keys(&pins).join(", ")
                ),
            ));
        }
        state.keys = pins;
        let snapshot = Snapshot::open(snapshot_note.as_bytes(), &state.keys).map_err(|e| note_error("snapshot", e))?;
        let checkpoint =
            open_checkpoint(checkpoint_note.as_bytes(), &state.keys).map_err(|e| note_error("checkpoint", e))?;
        if !snapshot.matches(&checkpoint) || checkpoint.size != size {
            return Err(corrupt(&state_path, "snapshot, checkpoint and size disagree"));
        }
        // The root (on every core) and the lookup index (one thread: entries apply in log
        // order) are independent; the index is dropped if the root is wrong.
        state.entries.reserve(decoded.len());
        state.index.reserve(decoded.len());
        let (frontier, ()) = rayon::join(
            || Frontier::from_leaves(&hashes),
            || {
                // Every record decoded (a failure returned above): `flatten` drops nothing.
                for leaf in decoded.into_iter().flatten() {
                    match leaf {
                        Leaf::Entry(e) => state.add_entry(e),
                        Leaf::Rotation(_) => state.liveness.skip(),
                    }
                }
            },
        );
        if frontier.root() != checkpoint.root {
            return Err(corrupt(
                &entries_path,
                "the entries do not give the held checkpoint's root",
            ));
        }
        state.frontier = frontier;
        state.entries_len = entries_len;
        state.held = Some(Held {
            snapshot,
            snapshot_note,
            checkpoint,
            checkpoint_note,
        });
        Ok(state)
    }

    /// Adds the next entry in log order. An entry the revoked-key rule voids is held (and
    /// listed) but decides nothing, so a log that accepted it anyway revives no key.
    fn add_entry(&mut self, e: LogEntry) {
        let pos = self.entries.len() as u32;
        if e.subject.kind == SubjectKind::Lineage {
            self.lineage.insert(e.subject.digest);
        }
        match self.liveness.apply(&e.issuer, &e.subject, e.action) {
            Ok(()) => {
                self.index.insert(e.subject, pos);
            }
            Err(why) => {
                self.void.insert(e.index, why);
            }
        }
        self.entries.push(e);
    }

    /// Why the entry at `index` does not count, if it does not (§3.1).
    pub fn voided(&self, index: u64) -> Option<&PolicyViolation> {
        self.void.get(&index)
    }

    /// The misbehaviour an earlier sync caught, and where its evidence is, if the state is
    /// marked.
    pub fn misbehaviour(&self) -> Option<(Misbehaviour, Option<&Path>)> {
        self.misbehaved.as_ref().map(|(m, p)| (*m, p.as_deref()))
    }

    /// Clears the misbehaviour mark (after an operator investigated); the evidence files are
    /// kept. Returns what was cleared.
    pub fn clear_misbehaviour(&mut self) -> Result<Option<Misbehaviour>, RevocationError> {
        if let Some(dir) = &self.dir {
            let evidence = dir.join(EVIDENCE_DIR);
            let mark = evidence.join(MISBEHAVIOUR_MARK);
            match fs::remove_file(&mark) {
                Ok(()) => File::open(&evidence)
                    .and_then(|d| d.sync_all())
                    .map_err(io_err(&evidence))?,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err(&mark)(e)),
            }
        }
        Ok(self.misbehaved.take().map(|(m, _)| m))
    }

    /// The log keys this state follows now: the keys it was opened with, with every rotation
    /// statement it followed applied (spec/revocation.md §7.6).
    pub fn keys(&self) -> &[NoteVerifierKey] {
        &self.keys
    }

    /// The log keys the state was opened with, where its rotations start from.
    pub fn configured_keys(&self) -> &[NoteVerifierKey] {
        &self.configured
    }

    /// The rotation statements this state followed, with their log indexes, in log order.
    pub fn rotations(&self) -> &[(u64, RotationStatement)] {
        &self.rotations
    }

    /// The state folder, if any.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// The held snapshot, if the state was ever synced.
    pub fn snapshot(&self) -> Option<&Snapshot> {
        self.held.as_ref().map(|h| &h.snapshot)
    }

    /// The held checkpoint, if the state was ever synced.
    pub fn checkpoint(&self) -> Option<&Checkpoint> {
        self.held.as_ref().map(|h| &h.checkpoint)
    }

    /// The held signed snapshot and checkpoint notes.
    pub fn notes(&self) -> Option<(&str, &str)> {
        self.held
            .as_ref()
            .map(|h| (h.snapshot_note.as_str(), h.checkpoint_note.as_str()))
    }

    /// Number of leaves held (entries and rotation statements).
    pub fn size(&self) -> u64 {
        self.frontier.size
    }

    /// Every entry held, in log order (rotation statements are not entries: see
    /// [`RevocationState::rotations`]).
    pub fn entries(&self) -> &[LogEntry] {
        &self.entries
    }

    /// Fails closed: `Ok` only when a snapshot is held and has not expired at `now`.
    /// [`RevocationError::NoState`] or [`RevocationError::Stale`] mean the status of
    /// every model is unknown and the model must be refused; proceeding anyway is the
    /// caller's explicit, unsafe opt-out.
    pub fn require_fresh(&self, now: u64) -> Result<&Snapshot, RevocationError> {
        if let Some((kind, evidence)) = &self.misbehaved {
            return Err(RevocationError::LogMisbehaved {
                kind: *kind,
                evidence: evidence.clone(),
            });
        }
        let held = self.held.as_ref().ok_or(RevocationError::NoState)?;
        if held.snapshot.is_expired(now) {
            return Err(RevocationError::Stale {
                version: held.snapshot.version,
                expired_at: held.snapshot.expires,
                now,
            });
        }
        Ok(&held.snapshot)
    }

    /// The last entry about `subject` (its status is that entry's action), if any.
    pub fn status_of(&self, subject: &Subject) -> Option<&LogEntry> {
        self.index.get(subject).and_then(|&i| self.entries.get(i as usize))
    }

    /// The deciding entry if `subject` is revoked now.
    pub fn revoked(&self, subject: &Subject) -> Option<&LogEntry> {
        self.status_of(subject).filter(|e| e.action == Action::Revoke)
    }

    /// Every revoked subject of a signed model: its manifest digest, each signer key
    /// id, each file digest and each chunk digest. Empty means nothing is revoked (as
    /// far as this state knows: check [`RevocationState::require_fresh`] too).
    pub fn check_manifest(&self, manifest: &Manifest, manifest_digest: &Digest, signers: &[KeyId]) -> Vec<Hit> {
        let mut hits = Vec::new();
        if let Some(e) = self.revoked(&Subject::manifest(*manifest_digest)) {
            hits.push(Hit {
                matched: Matched::Manifest,
                entry: e.clone(),
            });
        }
        for key in signers {
            if let Some(e) = self.revoked(&Subject::key(*key)) {
                hits.push(Hit {
                    matched: Matched::SignerKey,
                    entry: e.clone(),
                });
            }
        }
        hits.extend(self.check_files(&manifest.files));
        hits
    }

    /// Every revoked file or chunk digest among `files` (for unsigned models, hash the
    /// files first, e.g. with [`crate::scan`]).
    pub fn check_files(&self, files: &[FileEntry]) -> Vec<Hit> {
        let mut hits = Vec::new();
        if self.index.is_empty() {
            return hits;
        }
        for f in files {
            if let Some(e) = self.revoked(&Subject::content(f.digest)) {
                hits.push(Hit {
                    matched: Matched::File { path: f.path.clone() },
                    entry: e.clone(),
                });
            }
            for c in &f.chunks {
                if let Some(e) = self.revoked(&Subject::content(c.digest)) {
                    hits.push(Hit {
                        matched: Matched::Chunk {
                            path: f.path.clone(),
                            chunk: c.label(),
                        },
                        entry: e.clone(),
                    });
                }
            }
        }
        hits
    }

    /// The deciding entry of every revoked `lineage` subject, in digest order. Empty (and
    /// free) when the log holds no lineage entry, so models pay for fingerprinting only when
    /// there is something to compare them with.
    pub fn revoked_lineage(&self) -> Vec<&LogEntry> {
        self.lineage
            .iter()
            .filter_map(|d| self.revoked(&Subject::lineage(*d)))
            .collect()
    }

    /// The lineage document with this digest, read back and checked against the digest
    /// (a held document that is missing or damaged is an error: fail closed).
    pub fn lineage_document(&self, digest: &Digest) -> Result<LineageDoc, RevocationError> {
        let bytes = self.lineage_bytes(digest)?;
        let at = self.dir.as_ref().map_or_else(
            || PathBuf::from(lineage_path(digest)),
            |d| d.join(LINEAGE_DIR).join(digest.to_hex()),
        );
        LineageDoc::from_vec_named(bytes, digest).map_err(|e| corrupt(&at, e.to_string()))
    }

    /// The bytes of every held lineage document, in digest order (for bundles).
    pub fn lineage_documents(&self) -> Result<Vec<Vec<u8>>, RevocationError> {
        self.lineage.iter().map(|d| self.lineage_bytes(d)).collect()
    }

    fn lineage_bytes(&self, digest: &Digest) -> Result<Vec<u8>, RevocationError> {
        let Some(dir) = &self.dir else {
            return self
                .lineage_docs
                .get(digest)
                .cloned()
                .ok_or_else(|| corrupt(Path::new(&lineage_path(digest)), "the lineage document is not held"));
        };
        let path = dir.join(LINEAGE_DIR).join(digest.to_hex());
        let file = File::open(&path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                corrupt(&path, "the lineage document an entry names is missing")
            } else {
                io_err(&path)(e)
            }
        })?;
        let mut bytes = Vec::new();
        file.take(MAX_LINEAGE_DOC_BYTES as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(io_err(&path))?;
        Ok(bytes)
    }

    /// Builds an in-memory state holding `entries` (indexes are reassigned in order),
    /// with no snapshot: for benchmarks of lookups only.
    #[doc(hidden)]
    pub fn bench_with_entries(entries: Vec<LogEntry>) -> Self {
        let mut s = Self::in_memory(Vec::new());
        s.entries.reserve(entries.len());
        s.index.reserve(entries.len());
        for (i, mut e) in entries.into_iter().enumerate() {
            e.index = i as u64;
            s.add_entry(e);
        }
        // Only the size matters here (no sync ever runs on this state).
        s.frontier.size = s.entries.len() as u64;
        s
    }

    /// Reads every held leaf (signed-entry bytes) back from the entries file.
    pub fn leaves(&self) -> Result<Vec<Vec<u8>>, RevocationError> {
        let Some(dir) = &self.dir else {
            return Ok(Vec::new());
        };
        if self.entries_len == 0 {
            return Ok(Vec::new());
        }
        let path = dir.join(ENTRIES_FILE);
        let mut bytes = Vec::new();
        File::open(&path)
            .map_err(io_err(&path))?
            .take(self.entries_len)
            .read_to_end(&mut bytes)
            .map_err(io_err(&path))?;
        Ok(split_records(&path, &bytes)?.into_iter().map(<[u8]>::to_vec).collect())
    }

    /// Fetches the newest snapshot and checkpoint from `source` and everything needed
    /// to move the held state forward, applying every client rule; `now` is the clock
    /// (Unix seconds). On any error nothing trusted changes, except that a log caught
    /// contradicting itself (equivocation, a tree that does not extend the held one) leaves
    /// evidence under `evidence/` and marks the state, and
    /// [`RevocationState::require_fresh`] then refuses until the mark is cleared (§7.5).
    ///
    /// The notes come from `v1/publication` (both notes of one tree in one document) when
    /// the source serves it; else from `checkpoint` and `v1/snapshot`, fetched twice at
    /// most when they describe trees of different sizes.
    pub fn sync(&mut self, source: &dyn Source, now: u64) -> Result<SyncReport, RevocationError> {
        self.fetched_checkpoint = None;
        let result = self.sync_inner(source, now);
        let fetched = self.fetched_checkpoint.take();
        match result {
            Err(RevocationError::Equivocation {
                what,
                size,
                held_root,
                found_root,
                evidence,
            }) => {
                let evidence = self.mark(Misbehaviour::Equivocation, evidence);
                Err(RevocationError::Equivocation {
                    what,
                    size,
                    held_root,
                    found_root,
                    evidence,
                })
            }
            Err(e @ (RevocationError::NotAnExtension { .. } | RevocationError::DeltaMismatch { .. })) => {
                let (kind, size) = match &e {
                    RevocationError::NotAnExtension { new_size, .. } => (Misbehaviour::NotAnExtension, *new_size),
                    RevocationError::DeltaMismatch { new_size, .. } => (Misbehaviour::DeltaMismatch, *new_size),
                    _ => (Misbehaviour::DeltaMismatch, 0),
                };
                let held = self
                    .held
                    .as_ref()
                    .map(|h| h.checkpoint_note.clone())
                    .unwrap_or_default();
                let found = format!("{}\nrefused because: {e}\n", fetched.unwrap_or_default());
                let evidence = self.keep_evidence(kind.as_str(), size, &held, &found);
                self.mark(kind, evidence);
                Err(e)
            }
            other => other,
        }
    }

    /// Marks the state as having caught the log misbehaving: in memory, and (with a folder)
    /// as `evidence/MISBEHAVED` naming the kind and the evidence file. Returns the evidence.
    fn mark(&mut self, kind: Misbehaviour, evidence: Option<PathBuf>) -> Option<PathBuf> {
        if let Some(dir) = &self.dir {
            let folder = dir.join(EVIDENCE_DIR);
            let name = evidence
                .as_deref()
                .and_then(Path::file_name)
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let text = format!("{}\n{name}\n", kind.as_str());
            // Best effort: the refusal is returned either way, and the in-memory mark holds
            // for this process even if the folder cannot be written.
            let _ = fs::create_dir_all(&folder).and_then(|()| {
                write_atomic(&folder, MISBEHAVIOUR_MARK, text.as_bytes()).map_err(std::io::Error::other)
            });
        }
        self.misbehaved = Some((kind, evidence.clone()));
        evidence
    }

    fn sync_inner(&mut self, source: &dyn Source, now: u64) -> Result<SyncReport, RevocationError> {
        let mut counter = Counter {
            source,
            requests: 0,
            bytes: 0,
        };
        // One document holding both notes of one tree: nothing to pair up, nothing to retry.
        let together = counter
            .optional(PUBLICATION_PATH)?
            .map(|doc| decode_publication(&doc))
            .transpose()?;
        let mut attempt = 0;
        // The keys the notes are opened with: the pinned ones, or (§7.6) the ones that rotation
        // statements by them announce in the entries the checkpoint claims.
        let mut open_with = self.keys.clone();
        let (snapshot, snapshot_note, checkpoint, checkpoint_note) = loop {
            let (checkpoint_note, snapshot_note) = match &together {
                Some((c, s)) => (c.clone().into_bytes(), s.clone().into_bytes()),
                None => (counter.required(CHECKPOINT_PATH)?, counter.required(SNAPSHOT_PATH)?),
            };
            let checkpoint = match open_checkpoint(&checkpoint_note, &open_with) {
                Ok(c) => c,
                Err(e) if unpinned(&e) => {
                    open_with = self.announced_keys(&mut counter, &checkpoint_note)?;
                    open_checkpoint(&checkpoint_note, &open_with).map_err(|e| note_error("checkpoint", e))?
                }
                Err(e) => return Err(note_error("checkpoint", e)),
            };
            let snapshot = Snapshot::open(&snapshot_note, &open_with).map_err(|e| {
                if unpinned(&e) {
                    self.refuse_unpinned("snapshot", &snapshot_note)
                } else {
                    note_error("snapshot", e)
                }
            })?;
            let checkpoint_note = String::from_utf8(checkpoint_note).unwrap_or_default();
            let snapshot_note = String::from_utf8(snapshot_note).unwrap_or_default();
            if snapshot.size == checkpoint.size && snapshot.root != checkpoint.root {
                let evidence = self.keep_evidence(
                    "checkpoint-vs-snapshot",
                    snapshot.size,
                    &snapshot_note,
                    &checkpoint_note,
                );
                return Err(RevocationError::Equivocation {
                    what: "checkpoint",
                    size: snapshot.size,
                    held_root: hex::encode(snapshot.root),
                    found_root: hex::encode(checkpoint.root),
                    evidence,
                });
            }
            if snapshot.matches(&checkpoint) {
                break (snapshot, snapshot_note, checkpoint, checkpoint_note);
            }
            // A live log may append between the two fetches: try once more (a publication
            // document that pairs two trees is simply wrong).
            attempt += 1;
            if together.is_some() || attempt >= 2 {
                return Err(RevocationError::SnapshotMismatch {
                    snapshot_size: snapshot.size,
                    checkpoint_size: checkpoint.size,
                });
            }
        };
        self.fetched_checkpoint = Some(checkpoint_note.clone());
        if snapshot.is_expired(now) {
            return Err(RevocationError::Expired {
                version: snapshot.version,
                expires: snapshot.expires,
                now,
            });
        }
        if snapshot.size > MAX_LOG_ENTRIES {
            return Err(RevocationError::TooManyEntries {
                found: snapshot.size,
                limit: MAX_LOG_ENTRIES,
            });
        }
        let old_size = self.size();
        if let Some(held) = &self.held {
            if held.checkpoint.origin != checkpoint.origin {
                return Err(RevocationError::OriginChanged {
                    held: held.checkpoint.origin.clone(),
                    found: checkpoint.origin,
                });
            }
            if snapshot.version < held.snapshot.version {
                return Err(RevocationError::Rollback {
                    held: held.snapshot.version,
                    found: snapshot.version,
                });
            }
            if snapshot.version == held.snapshot.version && snapshot != held.snapshot {
                let evidence = self.keep_evidence("snapshot", snapshot.size, &held.snapshot_note, &snapshot_note);
                return Err(RevocationError::Equivocation {
                    what: "snapshot",
                    size: snapshot.size,
                    held_root: hex::encode(held.snapshot.root),
                    found_root: hex::encode(snapshot.root),
                    evidence,
                });
            }
            if checkpoint.size < held.checkpoint.size {
                return Err(RevocationError::Shrunk {
                    held: held.checkpoint.size,
                    found: checkpoint.size,
                });
            }
            if checkpoint.size == held.checkpoint.size && checkpoint.root != held.checkpoint.root {
                let evidence =
                    self.keep_evidence("checkpoint", checkpoint.size, &held.checkpoint_note, &checkpoint_note);
                return Err(RevocationError::Equivocation {
                    what: "checkpoint",
                    size: checkpoint.size,
                    held_root: hex::encode(held.checkpoint.root),
                    found_root: hex::encode(checkpoint.root),
                    evidence,
                });
            }
        }
        // After the comparisons with the held state: a log-signed note that contradicts it is
        // evidence of misbehaviour whether or not witnesses saw it.
        self.witnesses
            .check(&checkpoint_note)
            .map_err(|source| RevocationError::WitnessQuorum {
                size: checkpoint.size,
                source,
            })?;
        let new_size = checkpoint.size;
        // Consistency proof, when the source serves one.
        if old_size > 0 && new_size > old_size {
            let path = consistency_proof_path(old_size, new_size);
            if let Some(doc) = counter.optional(&path)? {
                let proof = ConsistencyProofDoc::parse(&doc, old_size, new_size)?;
                let held_root = self.frontier.root();
                merkle::verify_consistency(old_size, new_size, &held_root, &checkpoint.root, &proof).map_err(
                    |source| RevocationError::NotAnExtension {
                        held_size: old_size,
                        new_size,
                        source,
                    },
                )?;
            }
        }
        // The delta: every entry in [old_size, new_size), verified. Bundles are fetched and
        // checked a group at a time, and each checked group is appended to the entries file
        // past its committed length, where it counts for nothing until the state file commits
        // it (§7.1): memory stays bounded by a group, not by the delta, and the writes overlap
        // the checks. Every leaf is checked before the root is compared, as before.
        let mut frontier = self.frontier.clone();
        let mut verified: Vec<Checked> = Vec::with_capacity((new_size - old_size) as usize);
        let mut appender = match &self.dir {
            Some(dir) if new_size > old_size => Some(Appender::open(dir, self.entries_len)?),
            _ => None,
        };
        let mut entries_len = self.entries_len;
        let tiles = tiles_covering(old_size, new_size);
        for group in tiles.chunks(SYNC_GROUP_TILES) {
            let first = old_size + verified.len() as u64;
            let mut leaves: Vec<Vec<u8>> = Vec::with_capacity(group.len() * TILE_WIDTH as usize);
            for tile in group {
                let bytes = counter.required(&tile.path())?;
                let decoded = decode_tile(&bytes, *tile)?;
                let skip = old_size.saturating_sub(tile.first()) as usize;
                leaves.extend(decoded.into_iter().skip(skip));
            }
            let checked = check_leaves(&leaves, first)?;
            let hashes: Vec<Hash> = leaves.par_iter().map(|l| merkle::leaf_hash(l)).collect();
            for h in hashes {
                frontier.push(h);
            }
            for l in &leaves {
                entries_len += 4 + l.len() as u64;
            }
            if let Some(a) = appender.as_mut() {
                a.append(&leaves)?;
            }
            verified.extend(checked);
        }
        let computed = frontier.root();
        if computed != checkpoint.root {
            return Err(RevocationError::DeltaMismatch {
                held_size: old_size,
                new_size,
                expected: hex::encode(checkpoint.root),
                computed: hex::encode(computed),
            });
        }
        // Rotation statements in log order (§7.6): a statement by a followed key replaces it by
        // the key it announces. The notes of this tree must then verify under the keys that
        // result, so the first tree holding a statement is signed by the new key too, and a
        // state never holds notes that its own pins cannot re-open.
        let mut pins = self.keys.clone();
        let mut followed: Vec<(u64, RotationStatement)> = Vec::new();
        for (i, leaf) in verified.iter().enumerate() {
            let Checked::Rotation(statement) = leaf else { continue };
            let index = old_size + i as u64;
            if statement.origin != checkpoint.origin {
                return Err(RevocationError::BadRotation {
                    index,
                    source: RotationError::OtherLog {
                        found: statement.origin.clone(),
                        log: checkpoint.origin.clone(),
                    },
                });
            }
            if let Some(next) = statement.follow(&pins) {
                pins = next;
                followed.push((index, (**statement).clone()));
            }
        }
        if pins != open_with {
            let Some((index, last)) = followed.last() else {
                // Opened with announced keys, but the verified entries announce nothing.
                return Err(self.refuse_unpinned("checkpoint", checkpoint_note.as_bytes()));
            };
            let not_signed = |what| RevocationError::RotationNotSigned {
                what,
                index: *index,
                key: LogKeyRef::of(&last.new),
            };
            open_checkpoint(checkpoint_note.as_bytes(), &pins).map_err(|_| not_signed("checkpoint"))?;
            Snapshot::open(snapshot_note.as_bytes(), &pins).map_err(|_| not_signed("snapshot"))?;
        }
        // The document of every new `lineage` entry, checked against the digest the signed
        // entry names before anything is kept: an entry this state could not enforce must not
        // be committed, so a missing or wrong document refuses the whole sync.
        let mut docs: Vec<(Digest, Vec<u8>)> = Vec::new();
        for e in verified.iter().filter_map(Checked::entry) {
            let subject = e.subject;
            if subject.kind != SubjectKind::Lineage
                || self.lineage.contains(&subject.digest)
                || docs.iter().any(|(d, _)| *d == subject.digest)
            {
                continue;
            }
            let index = e.index;
            let digest = subject.digest;
            let bytes = counter
                .optional(&lineage_path(&digest))?
                .ok_or(RevocationError::MissingLineage { index, digest })?;
            // Checked without a copy; the checked document hands its bytes back to be kept.
            let doc = LineageDoc::from_vec_named(bytes, &digest).map_err(|source| RevocationError::BadLineage {
                index,
                digest,
                source: Box::new(source),
            })?;
            docs.push((digest, doc.into_bytes()));
        }
        if let Some(dir) = &self.dir {
            if !docs.is_empty() {
                let folder = dir.join(LINEAGE_DIR);
                fs::create_dir_all(&folder).map_err(io_err(&folder))?;
                // Content-addressed: a document written by a sync that then fails is the
                // same document a later sync would write.
                for (digest, bytes) in &docs {
                    write_atomic(&folder, &digest.to_hex(), bytes)?;
                }
            }
        }
        // Everything verified: commit to disk, then to memory.
        if let Some(a) = appender.take() {
            a.finish()?;
        }
        self.commit(&snapshot_note, &checkpoint_note, new_size, entries_len, &pins)?;
        self.entries_len = entries_len;
        self.frontier = frontier;
        self.keys = pins;
        self.rotations.extend(followed);
        if self.dir.is_none() {
            self.lineage_docs.extend(docs);
        }
        self.entries.reserve(verified.len());
        self.index.reserve(verified.len());
        for leaf in verified {
            match leaf {
                Checked::Entry(e) => self.add_entry(e),
                Checked::Rotation(_) => self.liveness.skip(),
            }
        }
        let report = SyncReport {
            old_size,
            new_size,
            snapshot_version: snapshot.version,
            expires: snapshot.expires,
            requests: counter.requests,
            bytes_fetched: counter.bytes,
        };
        self.held = Some(Held {
            snapshot,
            snapshot_note,
            checkpoint,
            checkpoint_note,
        });
        Ok(report)
    }

    /// Replaces the state file, committing `entries_len` bytes of the entries file (the new
    /// records were appended and fsynced before, by an [`Appender`]).
    fn commit(
        &self,
        snapshot_note: &str,
        checkpoint_note: &str,
        size: u64,
        entries_len: u64,
        pins: &[NoteVerifierKey],
    ) -> Result<(), RevocationError> {
        let Some(dir) = &self.dir else {
            return Ok(());
        };
        // The followed keys travel in the same atomic replacement as the notes they verify; a
        // state that never rotated keeps the file as it was before rotations existed.
        let keys: Option<Vec<String>> =
            (pins != self.configured.as_slice()).then(|| pins.iter().map(ToString::to_string).collect());
        let state = encode_state_file(snapshot_note, checkpoint_note, size, entries_len, keys.as_deref())
            .map_err(|p| corrupt(&dir.join(STATE_FILE), p))?;
        write_atomic(dir, STATE_FILE, &state)
    }

    /// The keys the rotation statements in the entries `checkpoint_note` claims (from the
    /// held size on) announce, starting from the pinned keys, for a note that no pinned key
    /// signed (a client that did not sync during a transition period, §7.6). The entries are
    /// not trusted yet: the sync that follows verifies them all again against the root signed
    /// under the keys returned, and the notes must verify under the keys they lead to.
    fn announced_keys(
        &self,
        counter: &mut Counter<'_>,
        checkpoint_note: &[u8],
    ) -> Result<Vec<NoteVerifierKey>, RevocationError> {
        let refused = || self.refuse_unpinned("checkpoint", checkpoint_note);
        let claimed = std::str::from_utf8(checkpoint_note)
            .ok()
            .and_then(|t| split_note(t).ok())
            .and_then(|(body, _)| Checkpoint::parse_body(body).ok())
            .ok_or_else(refused)?;
        let held = self.size();
        if claimed.size <= held || claimed.size > MAX_LOG_ENTRIES {
            return Err(refused());
        }
        let mut pins = self.keys.clone();
        let mut changed = false;
        for tile in tiles_covering(held, claimed.size) {
            let bytes = counter.required(&tile.path())?;
            for (index, leaf) in (tile.first()..).zip(decode_tile(&bytes, tile)?) {
                if index < held || !is_rotation_leaf(&leaf) {
                    continue;
                }
                let statement = RotationStatement::from_leaf(&leaf)
                    .map_err(|source| RevocationError::BadRotation { index, source })?;
                if let Some(next) = statement.follow(&pins) {
                    pins = next;
                    changed = true;
                }
            }
        }
        if !changed {
            return Err(refused());
        }
        Ok(pins)
    }

    /// The refusal of a note that no followed key signed: [`RevocationError::RetiredLogKey`]
    /// when it is signed by a key this state retired, else
    /// [`RevocationError::UnannouncedLogKey`].
    fn refuse_unpinned(&self, what: &'static str, note: &[u8]) -> RevocationError {
        let signed_by = log_signers(note);
        for key in &signed_by {
            if let Some((index, statement)) = self.rotations.iter().rev().find(|(_, r)| LogKeyRef::of(&r.old) == *key) {
                return RevocationError::RetiredLogKey {
                    what,
                    key: key.clone(),
                    successor: LogKeyRef::of(&statement.new),
                    index: *index,
                };
            }
        }
        RevocationError::UnannouncedLogKey {
            what,
            signed_by,
            pinned: self.keys.iter().map(LogKeyRef::of).collect(),
        }
    }

    fn keep_evidence(&self, what: &str, size: u64, held: &str, found: &str) -> Option<PathBuf> {
        let dir = self.dir.as_ref()?.join(EVIDENCE_DIR);
        fs::create_dir_all(&dir).ok()?;
        let tag = &hex::encode(merkle::leaf_hash(found.as_bytes()))[..16];
        let name = format!("{what}-{size}-{tag}.txt");
        let text = format!("held:\n{held}\nreceived:\n{found}");
        write_atomic(&dir, &name, text.as_bytes()).ok()?;
        Some(dir.join(name))
    }
}

/// Bundles fetched and checked per step of a sync (64 × 256 entries).
const SYNC_GROUP_TILES: usize = 64;

/// Decodes `leaves` (log indexes `first..`) and checks every issuer signature, in parallel
/// and in batches ([`verify_signatures`]). The error names the first entry in log order
/// that fails to decode or to verify, as checking them one by one would.
fn check_leaves(leaves: &[Vec<u8>], first: u64) -> Result<Vec<Checked>, RevocationError> {
    enum Decoded {
        Entry(SignedEntry),
        Rotation(RotationStatement),
    }
    let decoded: Vec<Result<Decoded, RevocationError>> = leaves
        .par_iter()
        .enumerate()
        .map_init(IssuerKeys::default, |keys, (i, leaf)| {
            let index = first + i as u64;
            if is_rotation_leaf(leaf) {
                // A rotation statement carries its own signatures, checked as it decodes.
                RotationStatement::from_leaf(leaf)
                    .map(Decoded::Rotation)
                    .map_err(|source| RevocationError::BadRotation { index, source })
            } else {
                SignedEntry::decode_unverified_with(leaf, keys)
                    .map(Decoded::Entry)
                    .map_err(|source| RevocationError::TamperedEntry { index, source })
            }
        })
        .collect();
    let mut signed = Vec::with_capacity(decoded.len());
    // The log index of each entry in `signed`, and the rotation statements with theirs.
    let mut positions: Vec<u64> = Vec::with_capacity(decoded.len());
    let mut rotations: Vec<(u64, RotationStatement)> = Vec::new();
    let mut decode_error = None;
    for (i, d) in decoded.into_iter().enumerate() {
        match d {
            Ok(Decoded::Entry(s)) => {
                signed.push(s);
                positions.push(first + i as u64);
            }
            Ok(Decoded::Rotation(r)) => rotations.push((first + i as u64, r)),
            Err(e) => {
                decode_error = Some(e);
                break;
            }
        }
    }
    // Entries before the first undecodable leaf are checked too: a bad signature earlier in
    // the log is the error to name.
    verify_signatures(&signed).map_err(|(i, source)| RevocationError::TamperedEntry {
        index: positions[i],
        source,
    })?;
    if let Some(e) = decode_error {
        return Err(e);
    }
    let entries: Vec<LogEntry> = signed
        .into_par_iter()
        .zip(positions)
        .map(|(s, index)| LogEntry::from_entry(index, s.into_entry()))
        .collect();
    // Both lists are in log order: merge them back into the leaves' order.
    let mut out = Vec::with_capacity(entries.len() + rotations.len());
    let mut entries = entries.into_iter().peekable();
    let mut rotations = rotations.into_iter().peekable();
    loop {
        let rotation_next = match (entries.peek(), rotations.peek()) {
            (None, None) => break,
            (Some(e), Some((r, _))) => *r < e.index,
            (None, Some(_)) => true,
            (Some(_), None) => false,
        };
        if rotation_next {
            out.extend(rotations.next().map(|(_, r)| Checked::Rotation(Box::new(r))));
        } else {
            out.extend(entries.next().map(Checked::Entry));
        }
    }
    Ok(out)
}

/// A checked leaf of a sync's delta.
enum Checked {
    Entry(LogEntry),
    // Boxed: statements are rare, and a delta holds one `Checked` per leaf.
    Rotation(Box<RotationStatement>),
}

impl Checked {
    fn entry(&self) -> Option<&LogEntry> {
        match self {
            Checked::Entry(e) => Some(e),
            Checked::Rotation(_) => None,
        }
    }
}

/// Appends records to the entries file past its committed length during a sync. Nothing it
/// writes counts until the state file commits the new length (§7.1); a sync that fails
/// cuts the tail off again here (best effort: a tail left by a crash is ignored on load and
/// cut off before the next append anyway).
struct Appender {
    path: PathBuf,
    file: File,
    committed: u64,
    finished: bool,
    /// The background flush of the records appended so far, if one is running.
    flushing: Option<std::thread::JoinHandle<()>>,
}

impl Appender {
    fn open(dir: &Path, committed: u64) -> Result<Self, RevocationError> {
        let path = dir.join(ENTRIES_FILE);
        let opened = (|| {
            let mut f = OpenOptions::new()
                .create(true)
                .truncate(false)
                .read(true)
                .write(true)
                .open(&path)?;
            // Drop whatever a torn append left past the committed length.
            f.set_len(committed)?;
            f.seek(SeekFrom::Start(committed))?;
            Ok(f)
        })();
        let f = opened.map_err(io_err(&path))?;
        Ok(Appender {
            file: f,
            path,
            committed,
            finished: false,
            flushing: None,
        })
    }

    /// Appends one record per leaf (one write for the group).
    fn append(&mut self, leaves: &[Vec<u8>]) -> Result<(), RevocationError> {
        let mut buf = Vec::with_capacity(leaves.iter().map(|l| 4 + l.len()).sum());
        for l in leaves {
            buf.extend_from_slice(&(l.len() as u32).to_be_bytes());
            buf.extend_from_slice(l);
        }
        self.file.write_all(&buf).map_err(io_err(&self.path))?;
        // Flush what is written so far on another thread while the next group is checked,
        // so that the final fsync has little left to wait for (one at a time; a failure
        // here is only lost time: the fsync in `finish` is what counts).
        if self.flushing.as_ref().is_none_or(std::thread::JoinHandle::is_finished) {
            if let Some(done) = self.flushing.take() {
                let _ = done.join();
            }
            if let Ok(f) = self.file.try_clone() {
                self.flushing = Some(std::thread::spawn(move || {
                    let _ = f.sync_data();
                }));
            }
        }
        Ok(())
    }

    /// Flushes and fsyncs the records (before the state file that commits them is replaced).
    fn finish(mut self) -> Result<(), RevocationError> {
        if let Some(flushing) = self.flushing.take() {
            let _ = flushing.join();
        }
        self.file.sync_all().map_err(io_err(&self.path))?;
        self.finished = true;
        Ok(())
    }
}

impl Drop for Appender {
    fn drop(&mut self) {
        if let Some(flushing) = self.flushing.take() {
            let _ = flushing.join();
        }
        if self.finished {
            return;
        }
        // With nothing committed the file goes, as if this sync had never started.
        if self.committed == 0 {
            let _ = fs::remove_file(&self.path);
        } else {
            let _ = self.file.set_len(self.committed);
        }
    }
}

struct Counter<'a> {
    source: &'a dyn Source,
    requests: u64,
    bytes: u64,
}

impl Counter<'_> {
    fn optional(&mut self, path: &str) -> Result<Option<Vec<u8>>, RevocationError> {
        self.requests += 1;
        let got = self.source.get(path)?;
        if let Some(b) = &got {
            let limit = max_response_bytes(path);
            if b.len() > limit {
                return Err(SourceError::TooLarge {
                    path: path.into(),
                    limit,
                }
                .into());
            }
            self.bytes += b.len() as u64;
        }
        Ok(got)
    }

    fn required(&mut self, path: &str) -> Result<Vec<u8>, RevocationError> {
        self.optional(path)?
            .ok_or_else(|| RevocationError::Missing { path: path.into() })
    }
}

/// Reads `evidence/MISBEHAVED`, if present. A mark that cannot be understood still marks
/// the state (fail closed).
fn read_mark(dir: &Path) -> Result<Option<(Misbehaviour, Option<PathBuf>)>, RevocationError> {
    let folder = dir.join(EVIDENCE_DIR);
    let path = folder.join(MISBEHAVIOUR_MARK);
    let text = match fs::read(&path) {
        Ok(b) => String::from_utf8_lossy(&b).into_owned(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(&path)(e)),
    };
    let mut lines = text.lines();
    let kind = lines
        .next()
        .and_then(|k| Misbehaviour::parse(k.trim()))
        .unwrap_or(Misbehaviour::Equivocation);
    let evidence = lines
        .next()
        .map(str::trim)
        .filter(|n| is_safe_path(n))
        .map(|n| folder.join(n))
        .or(Some(path));
    Ok(Some((kind, evidence)))
}

const STATE_LIMITS: Limits = Limits {
    max_bytes: MAX_STATE_FILE_BYTES,
    max_items: 64,
    max_depth: 2,
};

fn encode_state_file(
    snapshot: &str,
    checkpoint: &str,
    size: u64,
    entries_len: u64,
    keys: Option<&[String]>,
) -> Result<Vec<u8>, String> {
    let t = |s: &str| Value::Text(s.into());
    let mut map = vec![
        (t("v"), Value::Integer(STATE_VERSION.into())),
        (t("snapshot"), t(snapshot)),
        (t("checkpoint"), t(checkpoint)),
        (t("size"), Value::Integer(size.into())),
        (t("entries_len"), Value::Integer(entries_len.into())),
    ];
    if let Some(keys) = keys {
        if keys.is_empty() || keys.len() > MAX_PINNED_KEYS {
            return Err(format!(
                "{} pinned log keys, expected 1 to {MAX_PINNED_KEYS}",
                keys.len()
            ));
        }
        map.push((t("keys"), Value::Array(keys.iter().map(|k| t(k)).collect())));
    }
    cbor::encode(&Value::Map(map)).map_err(|e| e.to_string())
}

/// The most log keys a state file pins (spec/revocation.md §7.1).
const MAX_PINNED_KEYS: usize = 16;

/// The state file's fields: snapshot and checkpoint notes, size, committed entries length,
/// and the followed log keys when the state followed a rotation.
type StateFields = (String, String, u64, u64, Option<Vec<String>>);

fn sorted_keys(keys: &[NoteVerifierKey]) -> Vec<String> {
    let mut v: Vec<String> = keys.iter().map(ToString::to_string).collect();
    v.sort();
    v
}

fn decode_state_file(bytes: &[u8]) -> Result<StateFields, String> {
    let value = cbor::decode(bytes, STATE_LIMITS).map_err(|e| e.to_string())?;
    let inner = || -> Result<_, FieldError> {
        let mut f = Fields::new(value, "state")?;
        let v = f.required("v")?.uint()?;
        let snapshot = f.required("snapshot")?.text()?;
        let checkpoint = f.required("checkpoint")?.text()?;
        let size = f.required("size")?.uint()?;
        let entries_len = f.required("entries_len")?.uint()?;
        let keys = f
            .optional("keys")
            .map(|k| {
                k.array_max(MAX_PINNED_KEYS)?
                    .into_iter()
                    .map(|t| t.text())
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?;
        f.finish()?;
        Ok((v, snapshot, checkpoint, size, entries_len, keys))
    };
    let (v, snapshot, checkpoint, size, entries_len, keys) = inner().map_err(|e| e.to_string())?;
    if v != STATE_VERSION {
        return Err(format!("state version {v} is not supported"));
    }
    if keys.as_ref().is_some_and(Vec::is_empty) {
        return Err("it pins an empty set of log keys".to_owned());
    }
    Ok((snapshot, checkpoint, size, entries_len, keys))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a test fails by panicking")]
mod tests {
    use super::*;
    use crate::revocation::merkle::MerkleTree;

    #[test]
    fn frontier_matches_merkle_tree() {
        let mut tree = MerkleTree::new();
        let mut f = Frontier::default();
        assert_eq!(f.root(), merkle::empty_root());
        for i in 0..600u32 {
            let h = merkle::leaf_hash(&i.to_be_bytes());
            tree.push(h);
            f.push(h);
            assert_eq!(f.root(), tree.root(), "size {}", i + 1);
        }
    }

    #[test]
    fn a_frontier_built_from_all_leaves_at_once_is_the_one_pushing_them_builds() {
        let leaves: Vec<Hash> = (0..20_000u32).map(|i| merkle::leaf_hash(&i.to_be_bytes())).collect();
        let mut pushed = Frontier::default();
        // Sizes around the powers of two and the parallel split (4,096 leaves).
        let sizes = [
            0usize, 1, 2, 3, 4, 5, 7, 8, 9, 4095, 4096, 4097, 8191, 8192, 8193, 12_289, 20_000,
        ];
        let mut next = 0;
        for &size in &sizes {
            while next < size {
                pushed.push(leaves[next]);
                next += 1;
            }
            assert_eq!(Frontier::from_leaves(&leaves[..size]), pushed, "size {size}");
        }
    }

    #[test]
    fn safe_paths() {
        assert!(is_safe_path("tile/entries/x001/003.p/4"));
        assert!(is_safe_path("v1/proof/consistency/1/2"));
        for bad in ["", "/v1/snapshot", "v1/../x", "v1//x", "v1/./x", "v1/a b", "v1\\x"] {
            assert!(!is_safe_path(bad), "{bad}");
        }
    }

    #[test]
    fn log_signers_names_only_the_log_keys_of_a_note() {
        use crate::revocation::test_signing::{test_note, TestSigner};
        let log = TestSigner::new("example.test/log", 1);
        let witness = TestSigner::new("witness.test/w", 2);
        let body = "example.test/log\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n";
        let note = test_note(body, &[&log, &witness]);
        assert_eq!(log_signers(note.as_bytes()), vec![LogKeyRef::of(&log.verifier_key())]);
        assert!(log_signers(b"junk").is_empty());
    }

    #[test]
    fn state_file_round_trip() {
        let b = encode_state_file("s\n", "c\n", 3, 99, None).unwrap();
        assert_eq!(
            decode_state_file(&b).unwrap(),
            ("s\n".into(), "c\n".into(), 3, 99, None)
        );
        assert!(decode_state_file(b"junk").is_err());
        let keys = vec!["k+00000000+AA==".to_owned()];
        let b = encode_state_file("s\n", "c\n", 3, 99, Some(&keys)).unwrap();
        assert_eq!(decode_state_file(&b).unwrap().4, Some(keys));
        assert!(encode_state_file("s\n", "c\n", 3, 99, Some(&[])).is_err());
    }
}
