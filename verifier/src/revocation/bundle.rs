//! Offline bundles (spec/revocation.md §8): the whole verified state in one CBOR file,
//! for air-gapped machines.
//!
//! A bundle is `{"v": 1, "snapshot": text, "checkpoint": text, "entries": [bstr, …]}`
//! (deterministic CBOR): the signed snapshot and checkpoint notes and every signed entry
//! of the log in order. A bundle is *not* trusted: it is imported by serving it as a
//! [`Source`] to [`RevocationState::sync`], so it passes exactly the same rules as a
//! live sync (pinned key, expiry, rollback, every entry signature, the signed root).

use std::path::Path;

use crate::cbor::{check_key_order, CborError, Item, Limits, Reader, Writer};
use crate::revocation::entry::MAX_SIGNED_ENTRY_BYTES;
use crate::revocation::lineage::{lineage_digest, parse_lineage_path, MAX_LINEAGE_DOC_BYTES};
use crate::revocation::snapshot::MAX_LOG_NOTE_BYTES as MAX_NOTE_SIZE;
use crate::revocation::state::{write_atomic, RevocationError, RevocationState, Source, SourceError, SyncReport};
use crate::revocation::tile::{
    encode_publication, encode_tile, TileRef, CHECKPOINT_PATH, PUBLICATION_PATH, SNAPSHOT_PATH,
};

/// The bundle format version.
pub const BUNDLE_VERSION: u64 = 1;
/// The largest bundle file, in bytes (4 GiB).
pub const MAX_BUNDLE_BYTES: u64 = 4 << 30;
/// The most entries a bundle may hold.
pub const MAX_BUNDLE_ENTRIES: u64 = 1 << 24;
/// The smallest leaf a bundle may carry: a signed entry holds at least its 64-byte
/// Ed25519 signature and the CBOR around it. Lets a lying count be refused up front.
pub const MIN_LEAF_BYTES: usize = 72;

/// Why a bundle could not be written or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BundleError {
    /// Reading or writing the file failed.
    #[error("bundle {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file is over [`MAX_BUNDLE_BYTES`].
    #[error("bundle {path} is {size} bytes, over the limit of {limit}")]
    TooLarge {
        /// The file.
        path: String,
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The bundle is malformed.
    #[error("bundle is malformed: {problem}")]
    Malformed {
        /// What is wrong.
        problem: String,
    },
    /// The state to export was never synced.
    #[error("nothing to export: the revocation state was never synced")]
    Empty,
    /// Reading the state's entries failed.
    #[error(transparent)]
    State(#[from] RevocationError),
}

/// The one rule for a bundle leaf's size, applied when writing and when reading.
fn check_leaf_len(index: u64, len: usize) -> Result<(), BundleError> {
    if (MIN_LEAF_BYTES..=MAX_SIGNED_ENTRY_BYTES).contains(&len) {
        return Ok(());
    }
    Err(BundleError::Malformed {
        problem: format!(
            "entry {index} is {len} bytes; a signed entry is {MIN_LEAF_BYTES} to {MAX_SIGNED_ENTRY_BYTES} bytes"
        ),
    })
}

/// The one rule for a bundle's lineage document size (at most a document's limit; what the
/// document says is checked on import, against the entry that names it).
fn check_lineage_len(index: u64, len: usize) -> Result<(), BundleError> {
    if (1..=MAX_LINEAGE_DOC_BYTES).contains(&len) {
        return Ok(());
    }
    Err(BundleError::Malformed {
        problem: format!("lineage document {index} is {len} bytes; a document is 1 to {MAX_LINEAGE_DOC_BYTES} bytes"),
    })
}

/// A decoded (not yet verified) bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bundle {
    /// The signed snapshot note.
    pub snapshot_note: String,
    /// The signed checkpoint note.
    pub checkpoint_note: String,
    /// Every signed entry (leaf bytes), in log order.
    pub leaves: Vec<Vec<u8>>,
    /// The lineage document of every `lineage` entry (checked on import against the digest
    /// each entry names, like a sync checks what a server serves).
    pub lineage: Vec<Vec<u8>>,
}

impl Bundle {
    /// The verified state as a bundle.
    pub fn from_state(state: &RevocationState) -> Result<Bundle, BundleError> {
        let (snapshot, checkpoint) = state.notes().ok_or(BundleError::Empty)?;
        Ok(Bundle {
            snapshot_note: snapshot.to_string(),
            checkpoint_note: checkpoint.to_string(),
            leaves: state.leaves()?,
            lineage: state.lineage_documents()?,
        })
    }

    /// The deterministic CBOR encoding.
    pub fn to_bytes(&self) -> Result<Vec<u8>, BundleError> {
        // What a reader refuses is never written (found by the bundle fuzz target).
        let malformed = |problem: String| BundleError::Malformed { problem };
        for (i, leaf) in self.leaves.iter().enumerate() {
            check_leaf_len(i as u64, leaf.len())?;
        }
        for (what, note) in [("snapshot", &self.snapshot_note), ("checkpoint", &self.checkpoint_note)] {
            if note.len() > MAX_NOTE_SIZE {
                return Err(malformed(format!(
                    "the {what} note is {} bytes, over the limit of {MAX_NOTE_SIZE}",
                    note.len()
                )));
            }
        }
        for (i, doc) in self.lineage.iter().enumerate() {
            check_lineage_len(i as u64, doc.len())?;
        }
        // Keys in canonical order: "v", "entries", "lineage", "snapshot", "checkpoint". The
        // lineage field is written only when there are documents, so a log without lineage
        // entries gives the same bytes as before the field existed.
        let size: usize = self.leaves.iter().map(|l| l.len() + 3).sum::<usize>()
            + self.lineage.iter().map(|d| d.len() + 5).sum::<usize>();
        let mut w = Writer::with_capacity(size + self.snapshot_note.len() + self.checkpoint_note.len() + 64);
        w.map(if self.lineage.is_empty() { 4 } else { 5 });
        w.text("v");
        w.uint(BUNDLE_VERSION);
        w.text("entries");
        w.array(self.leaves.len());
        for leaf in &self.leaves {
            w.bytes(leaf);
        }
        if !self.lineage.is_empty() {
            w.text("lineage");
            w.array(self.lineage.len());
            for doc in &self.lineage {
                w.bytes(doc);
            }
        }
        w.text("snapshot");
        w.text(&self.snapshot_note);
        w.text("checkpoint");
        w.text(&self.checkpoint_note);
        let limits = Limits {
            max_bytes: usize::try_from(MAX_BUNDLE_BYTES).unwrap_or(usize::MAX),
            max_items: MAX_BUNDLE_ENTRIES + 16,
            max_depth: 2,
        };
        w.finish(limits)
            .map_err(|e| BundleError::Malformed { problem: e.to_string() })
    }

    /// Decodes a bundle (structure only: verification happens on import), in one pass
    /// with no value tree. Every count and length is checked against what the bytes left
    /// could hold before anything is reserved for it: an entry is at least
    /// [`MIN_LEAF_BYTES`] and a note at most [`MAX_NOTE_SIZE`], so memory stays
    /// proportional to the bundle's size, whatever it claims.
    pub fn from_bytes(bytes: &[u8]) -> Result<Bundle, BundleError> {
        let malformed = |problem: String| BundleError::Malformed { problem };
        let cbor = |e: CborError| malformed(e.to_string());
        let limits = Limits {
            max_bytes: usize::try_from(MAX_BUNDLE_BYTES).unwrap_or(usize::MAX),
            max_items: MAX_BUNDLE_ENTRIES + 16,
            max_depth: 2,
        };
        let mut r = Reader::new(bytes, limits).map_err(cbor)?;
        let Item::Map(pairs) = r.next().map_err(cbor)? else {
            return Err(malformed("expected a map".into()));
        };
        let mut previous: Option<&[u8]> = None;
        let (mut version, mut snapshot, mut checkpoint, mut leaves) = (None, None, None, None);
        let mut lineage = None;
        for _ in 0..pairs {
            let start = r.offset();
            let Item::Text(key) = r.next().map_err(cbor)? else {
                return Err(malformed("map keys must be text".into()));
            };
            let encoded = r.input(start..r.offset());
            check_key_order(previous, encoded, start).map_err(cbor)?;
            previous = Some(encoded);
            match (key, r.next().map_err(cbor)?) {
                ("v", Item::Uint(BUNDLE_VERSION)) => version = Some(BUNDLE_VERSION),
                ("v", Item::Uint(found)) => {
                    return Err(malformed(format!(
                        "bundle version {found} is not supported (this build reads version {BUNDLE_VERSION})"
                    )))
                }
                ("snapshot" | "checkpoint", Item::Text(note)) => {
                    if note.len() > MAX_NOTE_SIZE {
                        return Err(malformed(format!(
                            "the {key} note is {} bytes, over the limit of {MAX_NOTE_SIZE}",
                            note.len()
                        )));
                    }
                    if key == "snapshot" {
                        snapshot = Some(note.to_string());
                    } else {
                        checkpoint = Some(note.to_string());
                    }
                }
                ("entries", Item::Array(count)) => {
                    if count > MAX_BUNDLE_ENTRIES {
                        return Err(malformed(format!(
                            "{count} entries, over the limit of {MAX_BUNDLE_ENTRIES}"
                        )));
                    }
                    // Each entry takes at least MIN_LEAF_BYTES plus its header byte.
                    if count.saturating_mul(MIN_LEAF_BYTES as u64 + 1) > r.remaining() as u64 {
                        return Err(malformed(format!(
                            "{count} entries cannot fit in the {} bytes that remain (a signed entry is at least \
                             {MIN_LEAF_BYTES} bytes)",
                            r.remaining()
                        )));
                    }
                    let mut out = Vec::with_capacity(count as usize);
                    for i in 0..count {
                        match r.next().map_err(cbor)? {
                            Item::Bytes(leaf) => {
                                check_leaf_len(i, leaf.len())?;
                                out.push(leaf.to_vec())
                            }
                            other => {
                                return Err(malformed(format!(
                                    "entry {i} is {}, expected a byte string",
                                    other.type_name()
                                )))
                            }
                        }
                    }
                    leaves = Some(out);
                }
                ("lineage", Item::Array(count)) => {
                    // Written only when non-empty: an empty array is not the one encoding.
                    if count == 0 || count > MAX_BUNDLE_ENTRIES {
                        return Err(malformed(format!(
                            "{count} lineage documents: a bundle holds 1 to {MAX_BUNDLE_ENTRIES} (the field is left \
                             out when there are none)"
                        )));
                    }
                    if count.saturating_mul(2) > r.remaining() as u64 {
                        return Err(malformed(format!(
                            "{count} lineage documents cannot fit in the {} bytes that remain",
                            r.remaining()
                        )));
                    }
                    let mut out = Vec::with_capacity(count as usize);
                    for i in 0..count {
                        match r.next().map_err(cbor)? {
                            Item::Bytes(doc) => {
                                check_lineage_len(i, doc.len())?;
                                out.push(doc.to_vec())
                            }
                            other => {
                                return Err(malformed(format!(
                                    "lineage document {i} is {}, expected a byte string",
                                    other.type_name()
                                )))
                            }
                        }
                    }
                    lineage = Some(out);
                }
                ("v" | "snapshot" | "checkpoint" | "entries" | "lineage", other) => {
                    return Err(malformed(format!(
                        "field {key} has the wrong type ({})",
                        other.type_name()
                    )))
                }
                (other, _) => return Err(malformed(format!("unknown field {other:?}"))),
            }
        }
        r.finish().map_err(cbor)?;
        if version.is_none() {
            return Err(malformed("missing field v".into()));
        }
        Ok(Bundle {
            snapshot_note: snapshot.ok_or_else(|| malformed("missing field snapshot".into()))?,
            checkpoint_note: checkpoint.ok_or_else(|| malformed("missing field checkpoint".into()))?,
            leaves: leaves.ok_or_else(|| malformed("missing field entries".into()))?,
            lineage: lineage.unwrap_or_default(),
        })
    }

    /// Writes the bundle to `path` atomically.
    pub fn write(&self, path: &Path) -> Result<(), BundleError> {
        let bytes = self.to_bytes()?;
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| BundleError::Malformed {
                problem: format!("{} is not a file name", path.display()),
            })?;
        write_atomic(dir, name, &bytes)?;
        Ok(())
    }

    /// Reads and decodes a bundle file.
    pub fn read(path: &Path) -> Result<Bundle, BundleError> {
        let bytes = crate::bounded::read_file_within(path, MAX_BUNDLE_BYTES).map_err(|e| match e {
            crate::bounded::ReadWithinError::TooLarge { size } => BundleError::TooLarge {
                path: path.display().to_string(),
                size,
                limit: MAX_BUNDLE_BYTES,
            },
            crate::bounded::ReadWithinError::Io(source) => BundleError::Io {
                path: path.display().to_string(),
                source,
            },
        })?;
        Self::from_bytes(&bytes)
    }
}

impl Source for Bundle {
    /// Serves the two notes, the tiles and the lineage documents a static export of this log
    /// would have; no proofs (the root check covers them).
    fn get(&self, path: &str) -> Result<Option<Vec<u8>>, SourceError> {
        match path {
            SNAPSHOT_PATH => return Ok(Some(self.snapshot_note.clone().into_bytes())),
            CHECKPOINT_PATH => return Ok(Some(self.checkpoint_note.clone().into_bytes())),
            PUBLICATION_PATH => {
                return encode_publication(&self.checkpoint_note, &self.snapshot_note)
                    .map(Some)
                    .map_err(|e| SourceError::Transport {
                        url: format!("bundle:{path}"),
                        reason: e.to_string(),
                    })
            }
            _ => {}
        }
        if let Some(digest) = parse_lineage_path(path) {
            return Ok(self.lineage.iter().find(|d| lineage_digest(d) == digest).cloned());
        }
        let Some(tile) = TileRef::parse_path(path) else {
            return Ok(None);
        };
        let size = self.leaves.len() as u64;
        // Full tiles, and the one partial tile at the end, exist; nothing else.
        let exists = tile.end() <= size && (tile.is_full() || tile.end() == size);
        if !exists {
            return Ok(None);
        }
        let (first, end) = (tile.first() as usize, tile.end() as usize);
        let leaves = self.leaves.get(first..end).unwrap_or_default();
        encode_tile(leaves).map(Some).map_err(|e| SourceError::Transport {
            url: format!("bundle:{path}"),
            reason: e.to_string(),
        })
    }
}

impl RevocationState {
    /// Imports a bundle by the same rules as a sync (see [`RevocationState::sync`]).
    pub fn import_bundle(&mut self, bundle: &Bundle, now: u64) -> Result<SyncReport, RevocationError> {
        self.sync(bundle, now)
    }

    /// Exports the verified state as a bundle file at `path` (written atomically).
    pub fn export_bundle(&self, path: &Path) -> Result<(), BundleError> {
        Bundle::from_state(self)?.write(path)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a test fails by panicking")]
mod tests {
    use super::*;

    #[test]
    fn encoding_round_trip_and_tiles() {
        let b = Bundle {
            snapshot_note: "s\n".into(),
            checkpoint_note: "c\n".into(),
            leaves: (0..300u32)
                .map(|i| {
                    let mut leaf = vec![0u8; MIN_LEAF_BYTES];
                    leaf[..4].copy_from_slice(&i.to_be_bytes());
                    leaf
                })
                .collect(),
            lineage: Vec::new(),
        };
        let bytes = b.to_bytes().unwrap();
        assert_eq!(Bundle::from_bytes(&bytes).unwrap(), b);
        // A leaf shorter than any signed entry is refused, naming it.
        let mut short = b.clone();
        short.leaves[7].truncate(MIN_LEAF_BYTES - 1);
        let err = short.to_bytes().unwrap_err().to_string();
        assert!(err.contains("entry 7 is 71 bytes"), "{err}");
        assert!(Bundle::from_bytes(&bytes[..bytes.len() - 1]).is_err());
        assert!(b.get("tile/entries/000").unwrap().is_some());
        assert!(b.get("tile/entries/001.p/44").unwrap().is_some());
        assert!(b.get("tile/entries/001.p/43").unwrap().is_none());
        assert!(b.get("tile/entries/001").unwrap().is_none());
        assert_eq!(b.get("checkpoint").unwrap().unwrap(), b"c\n");
        assert!(b.get("v1/proof/consistency/1/2").unwrap().is_none());
        assert_eq!(b.get("v1/snapshot").unwrap().unwrap(), b"s\n");
    }
}
