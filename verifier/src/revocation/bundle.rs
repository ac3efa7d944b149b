//! Offline bundles (spec/revocation.md §8): the whole verified state in one CBOR file,
//! for air-gapped machines.
//!
//! A bundle is `{"v": 1, "snapshot": text, "checkpoint": text, "entries": [bstr, …]}`
//! (deterministic CBOR): the signed snapshot and checkpoint notes and every signed entry
//! of the log in order. A bundle is *not* trusted: it is imported by serving it as a
//! [`Source`] to [`RevocationState::sync`], so it passes exactly the same rules as a
//! live sync (pinned key, expiry, rollback, every entry signature, the signed root).

use std::path::Path;

use ciborium::Value;

use crate::cbor::{self, Limits};
use crate::manifest::Fields;
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

/// A decoded (not yet verified) bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bundle {
    /// The signed snapshot note.
    pub snapshot_note: String,
    /// The signed checkpoint note.
    pub checkpoint_note: String,
    /// Every signed entry (leaf bytes), in log order.
    pub leaves: Vec<Vec<u8>>,
}

impl Bundle {
    /// The verified state as a bundle.
    pub fn from_state(state: &RevocationState) -> Result<Bundle, BundleError> {
        let (snapshot, checkpoint) = state.notes().ok_or(BundleError::Empty)?;
        Ok(Bundle {
            snapshot_note: snapshot.to_string(),
            checkpoint_note: checkpoint.to_string(),
            leaves: state.leaves()?,
        })
    }

    /// The deterministic CBOR encoding.
    pub fn to_bytes(&self) -> Result<Vec<u8>, BundleError> {
        let t = |s: &str| Value::Text(s.into());
        cbor::encode(&Value::Map(vec![
            (t("v"), Value::Integer(BUNDLE_VERSION.into())),
            (t("snapshot"), t(&self.snapshot_note)),
            (t("checkpoint"), t(&self.checkpoint_note)),
            (
                t("entries"),
                Value::Array(self.leaves.iter().map(|l| Value::Bytes(l.clone())).collect()),
            ),
        ]))
        .map_err(|e| BundleError::Malformed { problem: e.to_string() })
    }

    /// Decodes a bundle (structure only: verification happens on import).
    pub fn from_bytes(bytes: &[u8]) -> Result<Bundle, BundleError> {
        let malformed = |problem: String| BundleError::Malformed { problem };
        let limits = Limits {
            max_bytes: usize::try_from(MAX_BUNDLE_BYTES).unwrap_or(usize::MAX),
            max_items: MAX_BUNDLE_ENTRIES + 16,
            max_depth: 2,
        };
        let value = cbor::decode(bytes, limits).map_err(|e| malformed(e.to_string()))?;
        let inner = || -> Result<Bundle, crate::ManifestError> {
            let mut f = Fields::new(value, "bundle")?;
            let v = f.required("v")?.uint()?;
            if v != BUNDLE_VERSION {
                return Err(crate::ManifestError::UnsupportedVersion { found: v });
            }
            let snapshot_note = f.required("snapshot")?.text()?;
            let checkpoint_note = f.required("checkpoint")?.text()?;
            let leaves = f
                .required("entries")?
                .array()?
                .into_iter()
                .map(|a| a.byte_string())
                .collect::<Result<_, _>>()?;
            f.finish()?;
            Ok(Bundle {
                snapshot_note,
                checkpoint_note,
                leaves,
            })
        };
        inner().map_err(|e| malformed(e.to_string()))
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
        let io = |source| BundleError::Io {
            path: path.display().to_string(),
            source,
        };
        let size = std::fs::metadata(path).map_err(io)?.len();
        if size > MAX_BUNDLE_BYTES {
            return Err(BundleError::TooLarge {
                path: path.display().to_string(),
                size,
                limit: MAX_BUNDLE_BYTES,
            });
        }
        Self::from_bytes(&std::fs::read(path).map_err(io)?)
    }
}

impl Source for Bundle {
    /// Serves the two notes and the tiles a static export of this log would have; no
    /// proofs (the root check covers them).
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
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn encoding_round_trip_and_tiles() {
        let b = Bundle {
            snapshot_note: "s\n".into(),
            checkpoint_note: "c\n".into(),
            leaves: (0..300u32).map(|i| i.to_be_bytes().to_vec()).collect(),
        };
        let bytes = b.to_bytes().unwrap();
        assert_eq!(Bundle::from_bytes(&bytes).unwrap(), b);
        assert!(Bundle::from_bytes(&bytes[..bytes.len() - 1]).is_err());
        assert!(b.get("v1/entries/0").unwrap().is_some());
        assert!(b.get("v1/entries/1.p/44").unwrap().is_some());
        assert!(b.get("v1/entries/1.p/43").unwrap().is_none());
        assert!(b.get("v1/entries/1").unwrap().is_none());
        assert!(b.get("v1/proof/consistency/1/2").unwrap().is_none());
        assert_eq!(b.get("v1/snapshot").unwrap().unwrap(), b"s\n");
    }
}
