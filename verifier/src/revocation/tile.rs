//! Entry tiles, publication paths and proof documents (spec/revocation.md §6).
//!
//! Entries are published in tiles of [`TILE_WIDTH`] leaves: tile `k` holds entries
//! `[256k, 256k + 256)` and lives at `v1/entries/{k}`; the last, partial tile of a log of
//! size `n` holds its first `w = n mod 256` entries and lives at `v1/entries/{k}.p/{w}`.
//! A tile is a deterministic CBOR array of byte strings, each the exact signed-entry
//! bytes (the leaf). Paths here never start with `/`: they are relative to the base URL
//! (or export directory).

use ciborium::Value;
use serde::{Deserialize, Serialize};

use crate::cbor::{self, CborError, Limits};
use crate::revocation::entry::MAX_SIGNED_ENTRY_BYTES;
use crate::revocation::merkle::Hash;

/// Entries per full tile.
pub const TILE_WIDTH: u64 = 256;

/// The largest tile, in bytes: 256 entries of at most 8 KiB plus framing.
pub const MAX_TILE_BYTES: usize = 256 * (MAX_SIGNED_ENTRY_BYTES + 3) + 16;

/// The largest proof document, in bytes.
pub const MAX_PROOF_BYTES: usize = 64 * 1024;

/// The most hashes a proof may hold (a tree of 2^64 leaves needs at most 128).
pub const MAX_PROOF_HASHES: usize = 128;

/// Path of the signed checkpoint note.
pub const CHECKPOINT_PATH: &str = "v1/checkpoint";
/// Path of the signed snapshot note.
pub const SNAPSHOT_PATH: &str = "v1/snapshot";
/// Path of the publication: the signed checkpoint and snapshot of one tree as one document
/// (spec/revocation.md §6.2), so that a reader never pairs notes of two different trees.
pub const PUBLICATION_PATH: &str = "v1/publication";
/// The largest publication document: two notes and framing.
pub const MAX_PUBLICATION_BYTES: usize = 2 * crate::revocation::snapshot::MAX_LOG_NOTE_BYTES + 64;
/// Path of the submission endpoint (`POST`, live server only).
pub const SUBMIT_PATH: &str = "v1/submit";
/// Path of the health endpoint (live server only).
pub const HEALTH_PATH: &str = "v1/health";

/// Path of the RFC 9162 consistency proof from `old` to `new` leaves.
pub fn consistency_proof_path(old: u64, new: u64) -> String {
    format!("v1/proof/consistency/{old}/{new}")
}

/// Path of the inclusion proof of leaf `index` in the tree of `size` leaves (live only).
pub fn inclusion_proof_path(size: u64, index: u64) -> String {
    format!("v1/proof/inclusion/{size}/{index}")
}

/// Why a tile or proof document was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TileError {
    /// The document is over its size limit.
    #[error("{what} is {size} bytes, over the limit of {limit}")]
    TooLarge {
        /// `tile` or `proof`.
        what: &'static str,
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The tile's CBOR was refused.
    #[error("tile {path}: {source}")]
    Cbor {
        /// The tile's path.
        path: String,
        /// Why.
        source: CborError,
    },
    /// The tile is not an array of byte strings.
    #[error("tile {path}: {problem}")]
    Shape {
        /// The tile's path.
        path: String,
        /// What is wrong.
        problem: String,
    },
    /// The tile holds a different number of entries than its path says.
    #[error("tile {path} holds {found} entries, expected {expected}")]
    WrongWidth {
        /// The tile's path.
        path: String,
        /// Per the path.
        expected: u64,
        /// In the tile.
        found: u64,
    },
    /// A width outside `1..=256` was asked for.
    #[error("tile width {width} is outside 1..=256")]
    BadWidth {
        /// The width.
        width: u64,
    },
    /// A proof document is malformed or does not match the request.
    #[error("proof document: {problem}")]
    Proof {
        /// What is wrong.
        problem: String,
    },
    /// The publication document (`v1/publication`) is malformed.
    #[error("publication document: {problem}")]
    Publication {
        /// What is wrong.
        problem: String,
    },
}

const PUBLICATION_LIMITS: Limits = Limits {
    max_bytes: MAX_PUBLICATION_BYTES,
    max_items: 8,
    max_depth: 1,
};

/// The publication document: deterministic CBOR `{"checkpoint": text, "snapshot": text}`,
/// the exact signed notes the log published together.
pub fn encode_publication(checkpoint: &str, snapshot: &str) -> Result<Vec<u8>, TileError> {
    let t = |s: &str| Value::Text(s.into());
    cbor::encode(&Value::Map(vec![
        (t("snapshot"), t(snapshot)),
        (t("checkpoint"), t(checkpoint)),
    ]))
    .map_err(|e| TileError::Publication { problem: e.to_string() })
}

/// Decodes a publication document into its (checkpoint, snapshot) note texts. The notes are
/// not opened here: the caller verifies them with its pinned keys.
pub fn decode_publication(bytes: &[u8]) -> Result<(String, String), TileError> {
    let bad = |e: crate::ManifestError| TileError::Publication { problem: e.to_string() };
    let value =
        cbor::decode(bytes, PUBLICATION_LIMITS).map_err(|e| TileError::Publication { problem: e.to_string() })?;
    let mut f = crate::manifest::Fields::new(value, "publication").map_err(bad)?;
    let checkpoint = f.required("checkpoint").and_then(|v| v.text()).map_err(bad)?;
    let snapshot = f.required("snapshot").and_then(|v| v.text()).map_err(bad)?;
    f.finish().map_err(bad)?;
    Ok((checkpoint, snapshot))
}

/// One tile as published: its index and how many entries it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TileRef {
    /// Tile index `k`: the tile starts at entry `256k`.
    pub index: u64,
    /// Entries in it, `1..=256`; 256 is a full tile.
    pub width: u64,
}

impl TileRef {
    /// A tile reference; the width must be `1..=256`.
    pub fn new(index: u64, width: u64) -> Result<TileRef, TileError> {
        if width == 0 || width > TILE_WIDTH {
            return Err(TileError::BadWidth { width });
        }
        Ok(TileRef { index, width })
    }

    /// Whether the tile is full (and thus immutable).
    pub fn is_full(&self) -> bool {
        self.width == TILE_WIDTH
    }

    /// Index of its first entry.
    pub fn first(&self) -> u64 {
        self.index.saturating_mul(TILE_WIDTH)
    }

    /// Index just past its last entry.
    pub fn end(&self) -> u64 {
        self.first().saturating_add(self.width)
    }

    /// `v1/entries/{k}` or `v1/entries/{k}.p/{w}`.
    pub fn path(&self) -> String {
        if self.is_full() {
            format!("v1/entries/{}", self.index)
        } else {
            format!("v1/entries/{}.p/{}", self.index, self.width)
        }
    }

    /// Parses a tile path (with or without a leading `/`); `None` if it is not one.
    /// Numbers must be canonical decimal; a partial width must be `1..=255`.
    pub fn parse_path(path: &str) -> Option<TileRef> {
        let rest = path.strip_prefix('/').unwrap_or(path).strip_prefix("v1/entries/")?;
        let num = |s: &str| -> Option<u64> {
            if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || (s.len() > 1 && s.starts_with('0')) {
                return None;
            }
            s.parse().ok()
        };
        match rest.split_once(".p/") {
            None => Some(TileRef {
                index: num(rest)?,
                width: TILE_WIDTH,
            }),
            Some((k, w)) => {
                let width = num(w)?;
                (1..TILE_WIDTH)
                    .contains(&width)
                    .then_some(TileRef { index: num(k)?, width })
            }
        }
    }
}

/// The tiles a client fetches to learn entries `[from, to)` of a log of size `to`:
/// every tile overlapping the range, the last one partial when `to` is not a multiple
/// of 256. Empty when `from >= to`. The first tile may start before `from`.
pub fn tiles_covering(from: u64, to: u64) -> Vec<TileRef> {
    if from >= to {
        return Vec::new();
    }
    let first = from / TILE_WIDTH;
    let last = (to - 1) / TILE_WIDTH;
    (first..=last)
        .map(|index| TileRef {
            index,
            width: (to - index * TILE_WIDTH).min(TILE_WIDTH),
        })
        .collect()
}

/// Encodes a tile: a CBOR array of the leaves' bytes.
pub fn encode_tile<B: AsRef<[u8]>>(leaves: &[B]) -> Result<Vec<u8>, TileError> {
    let n = leaves.len() as u64;
    if n == 0 || n > TILE_WIDTH {
        return Err(TileError::BadWidth { width: n });
    }
    let array = Value::Array(leaves.iter().map(|l| Value::Bytes(l.as_ref().to_vec())).collect());
    let bytes = cbor::encode(&array).map_err(|source| TileError::Cbor {
        path: String::new(),
        source,
    })?;
    if bytes.len() > MAX_TILE_BYTES {
        return Err(TileError::TooLarge {
            what: "tile",
            size: bytes.len(),
            limit: MAX_TILE_BYTES,
        });
    }
    Ok(bytes)
}

/// Decodes a tile fetched as `tile`, requiring exactly `tile.width` leaves of at most
/// [`MAX_SIGNED_ENTRY_BYTES`] each. The leaves are returned undecoded.
pub fn decode_tile(bytes: &[u8], tile: TileRef) -> Result<Vec<Vec<u8>>, TileError> {
    let path = tile.path();
    if bytes.len() > MAX_TILE_BYTES {
        return Err(TileError::TooLarge {
            what: "tile",
            size: bytes.len(),
            limit: MAX_TILE_BYTES,
        });
    }
    let limits = Limits {
        max_bytes: MAX_TILE_BYTES,
        max_items: TILE_WIDTH + 1,
        max_depth: 1,
    };
    let value = cbor::decode(bytes, limits).map_err(|source| TileError::Cbor {
        path: path.clone(),
        source,
    })?;
    let Value::Array(items) = value else {
        return Err(TileError::Shape {
            path,
            problem: "not an array".into(),
        });
    };
    if items.len() as u64 != tile.width {
        return Err(TileError::WrongWidth {
            path,
            expected: tile.width,
            found: items.len() as u64,
        });
    }
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| match item {
            Value::Bytes(b) if b.len() <= MAX_SIGNED_ENTRY_BYTES => Ok(b),
            Value::Bytes(b) => Err(TileError::Shape {
                path: path.clone(),
                problem: format!("item {i} is {} bytes, over {MAX_SIGNED_ENTRY_BYTES}", b.len()),
            }),
            _ => Err(TileError::Shape {
                path: path.clone(),
                problem: format!("item {i} is not a byte string"),
            }),
        })
        .collect()
}

/// A consistency proof document (`GET v1/proof/consistency/{old}/{new}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsistencyProofDoc {
    /// The old tree size.
    pub old: u64,
    /// The new tree size.
    pub new: u64,
    /// The RFC 9162 proof hashes, lower-case hex.
    pub proof: Vec<String>,
}

/// An inclusion proof document (`GET v1/proof/inclusion/{size}/{index}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InclusionProofDoc {
    /// The tree size.
    pub size: u64,
    /// The leaf index.
    pub index: u64,
    /// The RFC 9162 proof hashes, lower-case hex.
    pub proof: Vec<String>,
}

/// The answer to an accepted submission (`201 Created`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubmitReceipt {
    /// The entry's index in the log.
    pub index: u64,
    /// Its RFC 6962 leaf hash, lower-case hex.
    pub leaf_hash: String,
    /// The log size after the append.
    pub size: u64,
    /// For a batch submission (`entries` form): the leaf hash of every entry, in order, at
    /// `index`, `index + 1`, …; `leaf_hash` is the first of them. Absent for the one-entry form.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub leaf_hashes: Vec<String>,
}

/// The body of every error answer: `{"error": "<code>", "message": "..."}`.
///
/// Codes: `malformed` (400), `bad_signature` (400), `bad_time` (400),
/// `unknown_issuer` (403), `out_of_scope` (403), `revoked_issuer` (403), `replay` (409), `too_large` (413),
/// `unsupported_media_type` (415), `not_found` (404), `internal` (500).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    /// A stable machine-readable code.
    pub error: String,
    /// A human-readable message (never internal details).
    pub message: String,
}

/// Hex-encodes proof hashes for a document.
pub fn proof_to_hex(proof: &[Hash]) -> Vec<String> {
    proof.iter().map(hex::encode).collect()
}

fn proof_from_hex(hashes: &[String]) -> Result<Vec<Hash>, TileError> {
    if hashes.len() > MAX_PROOF_HASHES {
        return Err(TileError::Proof {
            problem: format!("{} hashes, over the limit of {MAX_PROOF_HASHES}", hashes.len()),
        });
    }
    hashes
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let mut out = [0u8; 32];
            if h.len() != 64 || hex::decode_to_slice(h, &mut out).is_err() {
                return Err(TileError::Proof {
                    problem: format!("hash {i} is not 64 hexadecimal digits"),
                });
            }
            Ok(out)
        })
        .collect()
}

fn parse_json<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, TileError> {
    if bytes.len() > MAX_PROOF_BYTES {
        return Err(TileError::TooLarge {
            what: "proof",
            size: bytes.len(),
            limit: MAX_PROOF_BYTES,
        });
    }
    serde_json::from_slice(bytes).map_err(|e| TileError::Proof {
        problem: format!("not the expected JSON: {e}"),
    })
}

impl ConsistencyProofDoc {
    /// Parses a document and checks it answers the request for `old` → `new`.
    pub fn parse(bytes: &[u8], old: u64, new: u64) -> Result<Vec<Hash>, TileError> {
        let doc: ConsistencyProofDoc = parse_json(bytes)?;
        if doc.old != old || doc.new != new {
            return Err(TileError::Proof {
                problem: format!(
                    "asked for sizes {old} → {new}, the document is for {} → {}",
                    doc.old, doc.new
                ),
            });
        }
        proof_from_hex(&doc.proof)
    }
}

impl InclusionProofDoc {
    /// Parses a document and checks it answers the request for `index` in `size`.
    pub fn parse(bytes: &[u8], size: u64, index: u64) -> Result<Vec<Hash>, TileError> {
        let doc: InclusionProofDoc = parse_json(bytes)?;
        if doc.size != size || doc.index != index {
            return Err(TileError::Proof {
                problem: format!(
                    "asked for leaf {index} in size {size}, the document is for leaf {} in size {}",
                    doc.index, doc.size
                ),
            });
        }
        proof_from_hex(&doc.proof)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        let full = TileRef::new(3, 256).unwrap();
        assert_eq!(full.path(), "v1/entries/3");
        let part = TileRef::new(3, 17).unwrap();
        assert_eq!(part.path(), "v1/entries/3.p/17");
        assert_eq!(TileRef::parse_path("/v1/entries/3"), Some(full));
        assert_eq!(TileRef::parse_path("v1/entries/3.p/17"), Some(part));
        for bad in [
            "v1/entries/03",
            "v1/entries/3.p/0",
            "v1/entries/3.p/256",
            "v1/entries/",
            "v1/entries/x",
            "v1/entries/3.p/",
        ] {
            assert_eq!(TileRef::parse_path(bad), None, "{bad}");
        }
        assert!(TileRef::new(0, 0).is_err());
        assert!(TileRef::new(0, 257).is_err());
        assert_eq!(consistency_proof_path(256, 300), "v1/proof/consistency/256/300");
    }

    #[test]
    fn covering() {
        assert!(tiles_covering(5, 5).is_empty());
        assert_eq!(tiles_covering(0, 1), vec![TileRef { index: 0, width: 1 }]);
        assert_eq!(tiles_covering(0, 256), vec![TileRef { index: 0, width: 256 }]);
        assert_eq!(
            tiles_covering(255, 600),
            vec![
                TileRef { index: 0, width: 256 },
                TileRef { index: 1, width: 256 },
                TileRef { index: 2, width: 88 }
            ]
        );
        assert_eq!(tiles_covering(512, 513), vec![TileRef { index: 2, width: 1 }]);
    }

    #[test]
    fn tile_round_trip_and_errors() {
        let leaves = vec![b"a".to_vec(), b"bc".to_vec()];
        let bytes = encode_tile(&leaves).unwrap();
        let t = TileRef::new(0, 2).unwrap();
        assert_eq!(decode_tile(&bytes, t).unwrap(), leaves);
        assert!(matches!(
            decode_tile(&bytes, TileRef::new(0, 3).unwrap()),
            Err(TileError::WrongWidth { .. })
        ));
        assert!(matches!(
            decode_tile(&[0x82, 0x01, 0x02], t),
            Err(TileError::Shape { .. })
        ));
        assert!(matches!(decode_tile(&[0xff], t), Err(TileError::Cbor { .. })));
        let empty: Vec<Vec<u8>> = vec![];
        assert!(encode_tile(&empty).is_err());
    }

    #[test]
    fn proof_docs() {
        let doc = ConsistencyProofDoc {
            old: 1,
            new: 2,
            proof: proof_to_hex(&[[7; 32]]),
        };
        let bytes = serde_json::to_vec(&doc).unwrap();
        assert_eq!(ConsistencyProofDoc::parse(&bytes, 1, 2).unwrap(), vec![[7; 32]]);
        assert!(ConsistencyProofDoc::parse(&bytes, 1, 3).is_err());
        assert!(ConsistencyProofDoc::parse(br#"{"old":1,"new":2,"proof":["zz"]}"#, 1, 2).is_err());
        let inc = InclusionProofDoc {
            size: 5,
            index: 2,
            proof: vec![],
        };
        let bytes = serde_json::to_vec(&inc).unwrap();
        assert!(InclusionProofDoc::parse(&bytes, 5, 2).unwrap().is_empty());
    }
}
