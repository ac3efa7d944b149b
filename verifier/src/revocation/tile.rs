//! Publication paths, entry bundles, hash tiles and proof documents (spec/revocation.md §6).
//!
//! The log is published in the C2SP `tlog-tiles` layout (<https://c2sp.org/tlog-tiles>), so
//! any tlog-tiles reader or witness reads it unchanged: the checkpoint at `checkpoint`, hash
//! tiles at `tile/<L>/<N>[.p/<W>]` and entry bundles at `tile/entries/<N>[.p/<W>]`, where
//! `<N>` is written in 3-digit groups, every group but the last prefixed with `x`
//! (`1234067` → `x001/x234/067`). Entry bundle `k` ([`TileRef`]) holds entries
//! `[256k, 256k + 256)`; the last, partial bundle of a log of size `n` holds its first
//! `w = n mod 256` entries. A bundle is the leaves one after the other, each a big-endian
//! `u16` length then the exact signed-entry bytes. Our own documents (snapshot,
//! publication, proofs, submission) stay under `v1/`. Paths here never start with `/`: they
//! are relative to the base URL (or export directory).

use ciborium::Value;
use serde::{Deserialize, Serialize};

use crate::cbor::{self, Limits};
use crate::revocation::entry::MAX_SIGNED_ENTRY_BYTES;
use crate::revocation::merkle::Hash;

/// Entries per full tile.
pub const TILE_WIDTH: u64 = 256;

/// The largest entry bundle, in bytes: 256 entries of at most 8 KiB, each after its 2-byte length.
pub const MAX_TILE_BYTES: usize = 256 * (MAX_SIGNED_ENTRY_BYTES + 2);

/// The size of a full hash tile: 256 hashes of 32 bytes.
pub const HASH_TILE_BYTES: usize = 256 * 32;

/// Tile height: every tile spans 8 levels of the tree (256 hashes).
pub const TILE_HEIGHT: u32 = 8;

/// The largest proof document, in bytes.
pub const MAX_PROOF_BYTES: usize = 64 * 1024;

/// The most hashes a proof may hold (a tree of 2^64 leaves needs at most 128).
pub const MAX_PROOF_HASHES: usize = 128;

/// Path of the signed checkpoint note (tlog-tiles; it carries the witnesses' cosignatures).
pub const CHECKPOINT_PATH: &str = "checkpoint";
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
    /// The entry bundle is not a sequence of length-prefixed entries.
    #[error("tile {path}: {problem}")]
    Shape {
        /// The tile's path.
        path: String,
        /// What is wrong.
        problem: String,
    },
    /// The bundle holds fewer entries than its path says.
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
    let bad = |e: crate::fields::FieldError| TileError::Publication { problem: e.to_string() };
    let value =
        cbor::decode(bytes, PUBLICATION_LIMITS).map_err(|e| TileError::Publication { problem: e.to_string() })?;
    let mut f = crate::fields::Fields::new(value, "publication").map_err(bad)?;
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

    /// `tile/entries/<N>` or `tile/entries/<N>.p/<w>`, `<N>` in the tlog-tiles encoding.
    pub fn path(&self) -> String {
        tile_path("entries", self.index, self.width)
    }

    /// Parses an entry bundle path (with or without a leading `/`); `None` if it is not one.
    /// The index must be in the canonical tlog-tiles encoding; a partial width must be
    /// `1..=255`.
    pub fn parse_path(path: &str) -> Option<TileRef> {
        let rest = path.strip_prefix('/').unwrap_or(path).strip_prefix("tile/entries/")?;
        let (index, width) = parse_index_and_width(rest)?;
        Some(TileRef { index, width })
    }
}

/// `tile/<level>/<N>[.p/<w>]`.
fn tile_path(level: &str, index: u64, width: u64) -> String {
    let mut path = format!("tile/{level}/{}", encode_tile_index(index));
    if width != TILE_WIDTH {
        path.push_str(&format!(".p/{width}"));
    }
    path
}

/// A tile index in the tlog-tiles path encoding: zero-padded 3-digit groups, every group
/// but the last prefixed with `x` (`5` → `005`, `1234067` → `x001/x234/067`).
pub fn encode_tile_index(index: u64) -> String {
    let mut groups = Vec::new();
    let mut n = index;
    loop {
        groups.push(n % 1000);
        n /= 1000;
        if n == 0 {
            break;
        }
    }
    let last = groups.len() - 1;
    groups
        .iter()
        .rev()
        .enumerate()
        .map(|(i, g)| {
            if i < last {
                format!("x{g:03}")
            } else {
                format!("{g:03}")
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Parses `<N>[.p/<w>]` as [`tile_path`] writes it; only the canonical form is accepted (no
/// leading `x000` group, exactly 3 digits per group), so every tile has exactly one path.
fn parse_index_and_width(text: &str) -> Option<(u64, u64)> {
    let (index_text, width) = match text.split_once(".p/") {
        None => (text, TILE_WIDTH),
        Some((n, w)) => {
            let canonical = !w.is_empty() && w.bytes().all(|b| b.is_ascii_digit()) && !w.starts_with('0');
            let width: u64 = canonical.then(|| w.parse().ok()).flatten()?;
            (n, (1..TILE_WIDTH).contains(&width).then_some(width)?)
        }
    };
    let groups: Vec<&str> = index_text.split('/').collect();
    let (last, leading) = groups.split_last()?;
    // 7 groups hold every u64 (at most 20 digits).
    if groups.len() > 7 {
        return None;
    }
    let digits = |g: &str| (g.len() == 3 && g.bytes().all(|b| b.is_ascii_digit())).then(|| g.parse::<u64>().ok())?;
    let mut index: u64 = 0;
    for (i, g) in leading.iter().enumerate() {
        let v = digits(g.strip_prefix('x')?)?;
        if i == 0 && v == 0 {
            return None;
        }
        index = index.checked_mul(1000)?.checked_add(v)?;
    }
    index = index.checked_mul(1000)?.checked_add(digits(last)?)?;
    Some((index, width))
}

/// One hash tile (tlog-tiles): level `level`, index `index`, `width` hashes. Hash `i` of the
/// tile is the root of the complete subtree of `256^level` leaves starting at leaf
/// `(256 * index + i) * 256^level`; level 0 holds the leaf hashes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HashTileRef {
    /// Level `L`, `0..=63`.
    pub level: u8,
    /// Tile index `N` within the level.
    pub index: u64,
    /// Hashes in it, `1..=256`; 256 is a full tile.
    pub width: u64,
}

impl HashTileRef {
    /// `tile/<L>/<N>[.p/<w>]`.
    pub fn path(&self) -> String {
        tile_path(&self.level.to_string(), self.index, self.width)
    }

    /// Parses a hash tile path (with or without a leading `/`); `None` if it is not one
    /// (entry bundle paths included).
    pub fn parse_path(path: &str) -> Option<HashTileRef> {
        let rest = path.strip_prefix('/').unwrap_or(path).strip_prefix("tile/")?;
        let (level, rest) = rest.split_once('/')?;
        let canonical = !level.is_empty()
            && level.len() <= 2
            && level.bytes().all(|b| b.is_ascii_digit())
            && (level == "0" || !level.starts_with('0'));
        let level: u8 = canonical.then(|| level.parse().ok()).flatten()?;
        if level > 63 {
            return None;
        }
        let (index, width) = parse_index_and_width(rest)?;
        Some(HashTileRef { level, index, width })
    }

    /// Leaves under one hash of this tile: `256^level`, `None` past 2^64.
    pub fn leaves_per_hash(&self) -> Option<u64> {
        1u64.checked_shl(u32::from(self.level) * TILE_HEIGHT)
    }

    /// The smallest tree size whose hashes this tile holds all of.
    pub fn needed_size(&self) -> Option<u64> {
        self.index
            .checked_mul(TILE_WIDTH)?
            .checked_add(self.width)?
            .checked_mul(self.leaves_per_hash()?)
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

/// Encodes an entry bundle: each leaf as a big-endian `u16` length and its bytes.
pub fn encode_tile<B: AsRef<[u8]>>(leaves: &[B]) -> Result<Vec<u8>, TileError> {
    let n = leaves.len() as u64;
    if n == 0 || n > TILE_WIDTH {
        return Err(TileError::BadWidth { width: n });
    }
    let mut out = Vec::with_capacity(leaves.iter().map(|l| l.as_ref().len() + 2).sum());
    for (i, leaf) in leaves.iter().enumerate() {
        let leaf = leaf.as_ref();
        let len = u16::try_from(leaf.len())
            .ok()
            .filter(|&l| usize::from(l) <= MAX_SIGNED_ENTRY_BYTES)
            .ok_or_else(|| TileError::Shape {
                path: String::new(),
                problem: format!("entry {i} is {} bytes, over {MAX_SIGNED_ENTRY_BYTES}", leaf.len()),
            })?;
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(leaf);
    }
    Ok(out)
}

/// Decodes an entry bundle fetched as `tile`, requiring exactly `tile.width` leaves of at
/// most [`MAX_SIGNED_ENTRY_BYTES`] each and nothing after them. The leaves are returned
/// undecoded.
pub fn decode_tile(bytes: &[u8], tile: TileRef) -> Result<Vec<Vec<u8>>, TileError> {
    let path = tile.path();
    if bytes.len() > MAX_TILE_BYTES {
        return Err(TileError::TooLarge {
            what: "tile",
            size: bytes.len(),
            limit: MAX_TILE_BYTES,
        });
    }
    let mut leaves = Vec::with_capacity(tile.width as usize);
    let mut rest = bytes;
    while let Some((len, tail)) = rest.split_first_chunk::<2>() {
        let i = leaves.len();
        if i as u64 == tile.width {
            break;
        }
        let len = usize::from(u16::from_be_bytes(*len));
        if len > MAX_SIGNED_ENTRY_BYTES {
            return Err(TileError::Shape {
                path,
                problem: format!("entry {i} is {len} bytes, over {MAX_SIGNED_ENTRY_BYTES}"),
            });
        }
        let Some((leaf, tail)) = tail.split_at_checked(len) else {
            return Err(TileError::Shape {
                path,
                problem: format!("entry {i} declares {len} bytes, only {} follow", tail.len()),
            });
        };
        leaves.push(leaf.to_vec());
        rest = tail;
    }
    if !rest.is_empty() {
        return Err(if leaves.len() as u64 == tile.width {
            TileError::Shape {
                path,
                problem: format!("{} bytes after the last entry", rest.len()),
            }
        } else {
            TileError::Shape {
                path,
                problem: "a truncated entry length at the end".into(),
            }
        });
    }
    if leaves.len() as u64 != tile.width {
        return Err(TileError::WrongWidth {
            path,
            expected: tile.width,
            found: leaves.len() as u64,
        });
    }
    Ok(leaves)
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
#[allow(clippy::unwrap_used, reason = "a test fails by panicking")]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        let full = TileRef::new(3, 256).unwrap();
        assert_eq!(full.path(), "tile/entries/003");
        let part = TileRef::new(3, 17).unwrap();
        assert_eq!(part.path(), "tile/entries/003.p/17");
        assert_eq!(TileRef::parse_path("/tile/entries/003"), Some(full));
        assert_eq!(TileRef::parse_path("tile/entries/003.p/17"), Some(part));
        let big = TileRef::new(1_234_067, 256).unwrap();
        assert_eq!(big.path(), "tile/entries/x001/x234/067");
        assert_eq!(TileRef::parse_path(&big.path()), Some(big));
        assert_eq!(encode_tile_index(0), "000");
        assert_eq!(encode_tile_index(999), "999");
        assert_eq!(encode_tile_index(1000), "x001/000");
        assert_eq!(encode_tile_index(u64::MAX), "x018/x446/x744/x073/x709/x551/615");
        assert_eq!(
            parse_index_and_width("x018/x446/x744/x073/x709/x551/615"),
            Some((u64::MAX, 256))
        );
        for bad in [
            "tile/entries/3",
            "tile/entries/0003",
            "tile/entries/x000/003",
            "tile/entries/001/003",
            "tile/entries/x1/003",
            "tile/entries/003.p/0",
            "tile/entries/003.p/256",
            "tile/entries/003.p/017",
            "tile/entries/",
            "tile/entries/xyz",
            "tile/entries/003.p/",
            "tile/entries/x018/x446/x744/x073/x709/x551/616",
            "v1/entries/3",
        ] {
            assert_eq!(TileRef::parse_path(bad), None, "{bad}");
        }
        assert!(TileRef::new(0, 0).is_err());
        assert!(TileRef::new(0, 257).is_err());
        assert_eq!(consistency_proof_path(256, 300), "v1/proof/consistency/256/300");
        let h = HashTileRef {
            level: 1,
            index: 1000,
            width: 5,
        };
        assert_eq!(h.path(), "tile/1/x001/000.p/5");
        assert_eq!(HashTileRef::parse_path("/tile/1/x001/000.p/5"), Some(h));
        assert_eq!(h.needed_size(), Some((256 * 1000 + 5) * 256));
        for bad in [
            "tile/entries/000",
            "tile/01/000",
            "tile/64/000",
            "tile/0/00",
            "tile//000",
        ] {
            assert_eq!(HashTileRef::parse_path(bad), None, "{bad}");
        }
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
    fn bundle_round_trip_and_errors() {
        let leaves = vec![b"a".to_vec(), b"bc".to_vec()];
        let bytes = encode_tile(&leaves).unwrap();
        assert_eq!(bytes, b"\x00\x01a\x00\x02bc");
        let t = TileRef::new(0, 2).unwrap();
        assert_eq!(decode_tile(&bytes, t).unwrap(), leaves);
        assert!(matches!(
            decode_tile(&bytes, TileRef::new(0, 3).unwrap()),
            Err(TileError::WrongWidth { found: 2, .. })
        ));
        // One entry too many for the path.
        assert!(matches!(
            decode_tile(&bytes, TileRef::new(0, 1).unwrap()),
            Err(TileError::Shape { .. })
        ));
        // A length past the end, a stray byte, an entry over the limit.
        assert!(matches!(decode_tile(&[0x00, 0x05, 1], t), Err(TileError::Shape { .. })));
        assert!(matches!(
            decode_tile(&[0x00, 0x01, 1, 0x00], t),
            Err(TileError::Shape { .. })
        ));
        assert!(matches!(decode_tile(&[0xff, 0xff], t), Err(TileError::Shape { .. })));
        let empty: Vec<Vec<u8>> = vec![];
        assert!(encode_tile(&empty).is_err());
        assert!(encode_tile(&[vec![0u8; MAX_SIGNED_ENTRY_BYTES + 1]]).is_err());
    }

    #[test]
    fn proof_docs() {
        let doc = ConsistencyProofDoc {
            old: 1,
            new: 2,
            proof: vec![hex::encode([7; 32])],
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
