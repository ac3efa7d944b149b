//! Lineage documents (spec/revocation.md §2.3): what a `lineage` revocation needs of a base
//! and a fork, so that a client can refuse every model that carries the fork's change.
//!
//! A `lineage` entry's subject digest names a document, not a model: the base model's
//! fingerprint and the fork's change from it at the sampled values (a
//! [`ForkDelta`]). The document travels beside the
//! log (the server stores and serves it at a content-addressed path, static exports and
//! bundles carry it) and every holder checks it against the digest the signed entry names,
//! so the issuer's signature covers it without it being in the leaf.
//!
//! The encoding is one deterministic CBOR document of at most [`MAX_LINEAGE_DOC_BYTES`],
//! written with the crate's one-pass CBOR `Writer` and read with its strict `Reader`: fixed
//! keys in canonical order, values as little-endian f32 byte strings (the CBOR profile has
//! no floats), one canonical NaN. What is stored is the fork's data (the base sample and the
//! raw per-tensor deltas), never a derived score, so the scoring can improve without
//! re-issuing documents.

use crate::cbor::{CborError, Item, Limits, Reader, Writer};
use crate::digest::Digest;
use crate::fingerprint::lineage::ForkDelta;
use crate::fingerprint::{plan, Fingerprint, TensorPrint};
use crate::revocation::entry::Subject;

/// The lineage document format version.
pub const LINEAGE_DOC_VERSION: u64 = 1;
/// The value of the document's `format` field.
pub const LINEAGE_DOC_FORMAT: &str = "weightseal-lineage";
/// The largest lineage document, in bytes (16 MiB): a 70B-parameter Llama-shaped model's
/// base sample and deltas take about 15 MB, a 7B one about 4 MB.
pub const MAX_LINEAGE_DOC_BYTES: usize = 16 << 20;
/// The most base tensors a document may list.
pub const MAX_LINEAGE_TENSORS: usize = 1 << 16;
/// The longest tensor name (the fingerprint file's limit, spec/fingerprint.md §4).
pub const MAX_LINEAGE_NAME_BYTES: usize = 1024;
/// The longest element type name.
pub const MAX_LINEAGE_TYPE_BYTES: usize = 16;
/// The BLAKE3 key-derivation context of a document's digest (its subject digest).
pub const LINEAGE_DIGEST_CONTEXT: &str = "weightseal v1 lineage document";
/// The publication folder of lineage documents: `v1/lineage/{64 hex digits}`.
pub const LINEAGE_PATH_PREFIX: &str = "v1/lineage/";

const LIMITS: Limits = Limits {
    max_bytes: MAX_LINEAGE_DOC_BYTES,
    // A base tensor is 11 items, a delta 5, plus the top level.
    max_items: 16 * MAX_LINEAGE_TENSORS as u64 + 16,
    max_depth: 3,
};

/// Why a lineage document was refused (or could not be written).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LineageDocError {
    /// Over [`MAX_LINEAGE_DOC_BYTES`].
    #[error("lineage document is {size} bytes, over the limit of {limit}")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// Not deterministic CBOR (truncated, non-shortest, out of order, trailing bytes…).
    #[error("lineage document: {0}")]
    Cbor(#[from] CborError),
    /// A field is missing, unknown, out of place or of the wrong type.
    #[error("lineage document: field {field}: {problem}")]
    Field {
        /// Where (`base[3].values`).
        field: String,
        /// What is wrong.
        problem: String,
    },
    /// The `format` field names something else.
    #[error("not a lineage document: format is {found:?}, expected \"weightseal-lineage\"")]
    WrongFormat {
        /// What it says (cut to 64 characters).
        found: String,
    },
    /// A version this build does not read.
    #[error("lineage document version {found} is not supported (this build reads version 1)")]
    UnsupportedVersion {
        /// The version found.
        found: u64,
    },
    /// More base tensors than [`MAX_LINEAGE_TENSORS`].
    #[error("lineage document lists {found} base tensors, over the limit of {limit}")]
    TooManyTensors {
        /// How many.
        found: u64,
        /// The limit.
        limit: usize,
    },
    /// A base tensor's shape has no values or overflows.
    #[error("lineage document: base tensor {index}: shape {rows} x {cols} is empty or too large")]
    BadShape {
        /// Position in `base`.
        index: usize,
        /// Rows.
        rows: u64,
        /// Columns.
        cols: u64,
    },
    /// Values that do not fill the sampling plan of the tensor's shape.
    #[error("lineage document: {field}: {found} value bytes, expected {} ({expected} values)", expected * 4)]
    ValueCount {
        /// Where (`base[0].values`, `deltas[2].values`).
        field: String,
        /// Bytes found.
        found: usize,
        /// Values expected.
        expected: usize,
    },
    /// A NaN other than 0x7fc00000 (two encodings of one document would give two digests).
    #[error("lineage document: {field}: value {position} is a NaN other than 0x7fc00000")]
    NonCanonicalNan {
        /// Where.
        field: String,
        /// Value index.
        position: usize,
    },
    /// A delta names a base tensor that is not there, or deltas are not in strictly
    /// increasing tensor order (one order, one encoding).
    #[error("lineage document: deltas[{index}] names base tensor {tensor}: {problem}")]
    BadDelta {
        /// Position in `deltas`.
        index: usize,
        /// The base tensor it names.
        tensor: u64,
        /// What is wrong.
        problem: &'static str,
    },
    /// The fork does not differ from the base at any sampled value: such a document could
    /// never match anything, which is always a mistake (the wrong fork or base).
    #[error("lineage document holds no change: the fork is identical to the base at every sampled value")]
    NoChange,
    /// The document is not the one the entry names.
    #[error("lineage document digest is {found}, but the entry names {expected}")]
    DigestMismatch {
        /// The digest the entry names.
        expected: Digest,
        /// The digest of the bytes.
        found: Digest,
    },
}

/// A decoded, checked lineage document and its exact bytes.
#[derive(Debug, Clone)]
pub struct LineageDoc {
    delta: ForkDelta,
    bytes: Vec<u8>,
    digest: Digest,
}

/// Documents are equal when their bytes are: a document has exactly one encoding, and its
/// values compare by their bits there (NaN included), which float equality would not.
impl PartialEq for LineageDoc {
    fn eq(&self, other: &Self) -> bool {
        self.bytes == other.bytes
    }
}

impl Eq for LineageDoc {}

/// The digest of lineage document bytes: the subject digest of its `lineage` entries.
pub fn lineage_digest(bytes: &[u8]) -> Digest {
    Digest::derive(LINEAGE_DIGEST_CONTEXT, bytes)
}

/// The publication path of the document with this digest: `v1/lineage/{hex}`.
pub fn lineage_path(digest: &Digest) -> String {
    format!("{LINEAGE_PATH_PREFIX}{}", digest.to_hex())
}

/// The digest in a publication path `v1/lineage/{64 lowercase hex digits}`, if it is one.
pub fn parse_lineage_path(path: &str) -> Option<Digest> {
    let hex = path.strip_prefix(LINEAGE_PATH_PREFIX)?;
    let canonical = hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    canonical.then(|| hex.parse().ok()).flatten()
}

fn nan_canonical(v: f32) -> f32 {
    if v.is_nan() {
        f32::NAN
    } else {
        v
    }
}

fn values_bytes(values: &[f32]) -> Vec<u8> {
    let mut raw = Vec::with_capacity(values.len() * 4);
    for v in values {
        raw.extend_from_slice(&nan_canonical(*v).to_le_bytes());
    }
    raw
}

impl LineageDoc {
    /// The document for `delta` (as built by
    /// [`ForkDelta::new`]). The bytes written are
    /// decoded again, so a document this returns is exactly what every reader accepts (NaNs
    /// are made canonical on the way).
    pub fn new(delta: &ForkDelta) -> Result<LineageDoc, LineageDocError> {
        if delta.base.tensors.len() > MAX_LINEAGE_TENSORS {
            return Err(LineageDocError::TooManyTensors {
                found: delta.base.tensors.len() as u64,
                limit: MAX_LINEAGE_TENSORS,
            });
        }
        let size: usize = delta
            .base
            .tensors
            .iter()
            .map(|t| t.values.len() * 4 + t.name.len() + 48)
            .sum::<usize>()
            + delta.deltas.iter().map(|(_, d)| d.len() * 4 + 24).sum::<usize>();
        if size > MAX_LINEAGE_DOC_BYTES + 64 {
            return Err(LineageDocError::TooLarge {
                size,
                limit: MAX_LINEAGE_DOC_BYTES,
            });
        }
        // Keys in canonical order (shorter first, then bytewise): v, base, deltas, format;
        // cols, name, rows, type, values; tensor, values.
        let mut w = Writer::with_capacity(size + 64);
        w.map(4);
        w.text("v");
        w.uint(LINEAGE_DOC_VERSION);
        w.text("base");
        w.array(delta.base.tensors.len());
        for t in &delta.base.tensors {
            w.map(5);
            w.text("cols");
            w.uint(t.cols);
            w.text("name");
            w.text(&t.name);
            w.text("rows");
            w.uint(t.rows);
            w.text("type");
            w.text(&t.dtype);
            w.text("values");
            w.bytes(&values_bytes(&t.values));
        }
        w.text("deltas");
        w.array(delta.deltas.len());
        for (tensor, values) in &delta.deltas {
            w.map(2);
            w.text("tensor");
            w.uint(*tensor as u64);
            w.text("values");
            w.bytes(&values_bytes(values));
        }
        w.text("format");
        w.text(LINEAGE_DOC_FORMAT);
        let bytes = w.finish(LIMITS)?;
        LineageDoc::from_bytes(&bytes)
    }

    /// Decodes document bytes strictly and checks them whole: the version, every base
    /// tensor's values against its shape's sampling plan, every delta against its base
    /// tensor, canonical NaNs, and at least one change.
    pub fn from_bytes(input: &[u8]) -> Result<LineageDoc, LineageDocError> {
        let delta = Self::decode(input)?;
        Ok(LineageDoc {
            delta,
            digest: lineage_digest(input),
            bytes: input.to_vec(),
        })
    }

    /// The strict decode and checks of [`LineageDoc::from_bytes`], without the digest.
    fn decode(input: &[u8]) -> Result<ForkDelta, LineageDocError> {
        if input.len() > MAX_LINEAGE_DOC_BYTES {
            return Err(LineageDocError::TooLarge {
                size: input.len(),
                limit: MAX_LINEAGE_DOC_BYTES,
            });
        }
        let mut r = Reader::new(input, LIMITS)?;
        expect_map(&mut r, "lineage document", 4)?;
        expect_key(&mut r, "", "v")?;
        let version = expect_uint(&mut r, "v")?;
        if version != LINEAGE_DOC_VERSION {
            return Err(LineageDocError::UnsupportedVersion { found: version });
        }
        expect_key(&mut r, "", "base")?;
        let count = expect_array(&mut r, "base")?;
        if count > MAX_LINEAGE_TENSORS as u64 {
            return Err(LineageDocError::TooManyTensors {
                found: count,
                limit: MAX_LINEAGE_TENSORS,
            });
        }
        let mut tensors = Vec::with_capacity(count.min(r.remaining() as u64 / 32) as usize);
        for index in 0..count as usize {
            let at = format!("base[{index}]");
            expect_map(&mut r, &at, 5)?;
            expect_key(&mut r, &at, "cols")?;
            let cols = expect_uint(&mut r, &format!("{at}.cols"))?;
            expect_key(&mut r, &at, "name")?;
            let name = expect_text(&mut r, &format!("{at}.name"), MAX_LINEAGE_NAME_BYTES)?;
            expect_key(&mut r, &at, "rows")?;
            let rows = expect_uint(&mut r, &format!("{at}.rows"))?;
            expect_key(&mut r, &at, "type")?;
            let dtype = expect_text(&mut r, &format!("{at}.type"), MAX_LINEAGE_TYPE_BYTES)?;
            expect_key(&mut r, &at, "values")?;
            let raw = expect_bytes(&mut r, &format!("{at}.values"))?;
            if rows.checked_mul(cols).is_none_or(|n| n == 0) {
                return Err(LineageDocError::BadShape { index, rows, cols });
            }
            let values = decode_values(raw, plan(rows, cols).len(), &format!("{at}.values"))?;
            tensors.push(TensorPrint {
                name,
                dtype,
                rows,
                cols,
                values,
            });
        }
        expect_key(&mut r, "", "deltas")?;
        let count = expect_array(&mut r, "deltas")?;
        if count > tensors.len() as u64 {
            return Err(LineageDocError::Field {
                field: "deltas".into(),
                problem: format!("{count} deltas for {} base tensors", tensors.len()),
            });
        }
        let mut deltas: Vec<(usize, Vec<f32>)> = Vec::with_capacity(count as usize);
        for index in 0..count as usize {
            let at = format!("deltas[{index}]");
            expect_map(&mut r, &at, 2)?;
            expect_key(&mut r, &at, "tensor")?;
            let tensor = expect_uint(&mut r, &format!("{at}.tensor"))?;
            let bad = |problem| LineageDocError::BadDelta { index, tensor, problem };
            let Some(base) = usize::try_from(tensor).ok().and_then(|t| tensors.get(t)) else {
                return Err(bad("there is no such base tensor"));
            };
            if deltas.last().is_some_and(|(prev, _)| *prev as u64 >= tensor) {
                return Err(bad("deltas must name base tensors in strictly increasing order"));
            }
            expect_key(&mut r, &at, "values")?;
            let raw = expect_bytes(&mut r, &format!("{at}.values"))?;
            let values = decode_values(raw, base.values.len(), &format!("{at}.values"))?;
            deltas.push((tensor as usize, values));
        }
        expect_key(&mut r, "", "format")?;
        let format = expect_text(&mut r, "format", 64)?;
        if format != LINEAGE_DOC_FORMAT {
            return Err(LineageDocError::WrongFormat {
                found: crate::revocation::entry::excerpt(&format),
            });
        }
        r.finish()?;
        let changed = deltas.iter().any(|(_, d)| d.iter().any(|v| v.is_finite() && *v != 0.0));
        if !changed {
            return Err(LineageDocError::NoChange);
        }
        Ok(ForkDelta {
            base: Fingerprint { tensors },
            deltas,
        })
    }

    /// [`LineageDoc::from_bytes`] for the document an entry names: the digest is checked
    /// first, so bytes that are not the named document are refused before being decoded.
    pub fn from_bytes_named(input: &[u8], expected: &Digest) -> Result<LineageDoc, LineageDocError> {
        if input.len() > MAX_LINEAGE_DOC_BYTES {
            return Err(LineageDocError::TooLarge {
                size: input.len(),
                limit: MAX_LINEAGE_DOC_BYTES,
            });
        }
        Self::from_vec_named(input.to_vec(), expected)
    }

    /// [`LineageDoc::from_bytes_named`] on bytes the caller hands over (a document read
    /// from disk): hashed once and not copied, which matters when a load decision reads
    /// a thousand of them.
    pub fn from_vec_named(input: Vec<u8>, expected: &Digest) -> Result<LineageDoc, LineageDocError> {
        if input.len() > MAX_LINEAGE_DOC_BYTES {
            return Err(LineageDocError::TooLarge {
                size: input.len(),
                limit: MAX_LINEAGE_DOC_BYTES,
            });
        }
        let found = lineage_digest(&input);
        if found != *expected {
            return Err(LineageDocError::DigestMismatch {
                expected: *expected,
                found,
            });
        }
        let delta = Self::decode(&input)?;
        Ok(LineageDoc {
            delta,
            digest: found,
            bytes: input,
        })
    }

    /// The base fingerprint and the fork's change: what
    /// [`derived_from_fork`](crate::fingerprint::lineage::derived_from_fork) takes.
    pub fn fork_delta(&self) -> &ForkDelta {
        &self.delta
    }

    /// Consumes the document, returning the base fingerprint and the fork's change (for
    /// [`ForkIndex`](crate::fingerprint::lineage::ForkIndex), which checks many at once).
    pub fn into_fork_delta(self) -> ForkDelta {
        self.delta
    }

    /// The exact document bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Consumes the document, returning its bytes.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    /// The document's digest.
    pub fn digest(&self) -> Digest {
        self.digest
    }

    /// The `lineage` subject naming this document.
    pub fn subject(&self) -> Subject {
        Subject::lineage(self.digest)
    }
}

fn field(at: &str, problem: String) -> LineageDocError {
    LineageDocError::Field {
        field: if at.is_empty() {
            "lineage document".into()
        } else {
            at.into()
        },
        problem,
    }
}

fn expect_map(r: &mut Reader<'_>, at: &str, pairs: u64) -> Result<(), LineageDocError> {
    match r.next()? {
        Item::Map(n) if n == pairs => Ok(()),
        Item::Map(n) => Err(field(at, format!("a map of {n} fields, expected exactly {pairs}"))),
        other => Err(field(at, format!("{}, expected a map", other.type_name()))),
    }
}

/// The fields of every map are fixed and required, so the next key must be exactly
/// `name`: a missing, unknown, repeated or misplaced key is refused here, naming both.
fn expect_key(r: &mut Reader<'_>, at: &str, name: &str) -> Result<(), LineageDocError> {
    match r.next()? {
        Item::Text(k) if k == name => Ok(()),
        Item::Text(k) => Err(field(
            at,
            format!(
                "found key {:?} where {name:?} belongs (the keys are fixed, in canonical order)",
                crate::revocation::entry::excerpt(k)
            ),
        )),
        other => Err(field(at, format!("a key is {}, expected text", other.type_name()))),
    }
}

fn expect_uint(r: &mut Reader<'_>, at: &str) -> Result<u64, LineageDocError> {
    match r.next()? {
        Item::Uint(n) => Ok(n),
        other => Err(field(
            at,
            format!("{}, expected an unsigned integer", other.type_name()),
        )),
    }
}

fn expect_array(r: &mut Reader<'_>, at: &str) -> Result<u64, LineageDocError> {
    match r.next()? {
        Item::Array(n) => Ok(n),
        other => Err(field(at, format!("{}, expected an array", other.type_name()))),
    }
}

fn expect_text(r: &mut Reader<'_>, at: &str, max: usize) -> Result<String, LineageDocError> {
    match r.next()? {
        Item::Text(t) if t.len() <= max => Ok(t.to_string()),
        Item::Text(t) => Err(field(at, format!("{} bytes, over the limit of {max}", t.len()))),
        other => Err(field(at, format!("{}, expected text", other.type_name()))),
    }
}

fn expect_bytes<'a>(r: &mut Reader<'a>, at: &str) -> Result<&'a [u8], LineageDocError> {
    match r.next()? {
        Item::Bytes(b) => Ok(b),
        other => Err(field(at, format!("{}, expected a byte string", other.type_name()))),
    }
}

fn decode_values(raw: &[u8], expected: usize, at: &str) -> Result<Vec<f32>, LineageDocError> {
    if raw.len() != expected * 4 {
        return Err(LineageDocError::ValueCount {
            field: at.into(),
            found: raw.len(),
            expected,
        });
    }
    let mut values = Vec::with_capacity(expected);
    for (position, c) in raw.chunks_exact(4).enumerate() {
        let v = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        if v.is_nan() && v.to_bits() != f32::NAN.to_bits() {
            return Err(LineageDocError::NonCanonicalNan {
                field: at.into(),
                position,
            });
        }
        values.push(v);
    }
    Ok(values)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a test fails by panicking")]
mod tests {
    use super::*;

    fn tensor(name: &str, rows: u64, cols: u64, seed: u32) -> TensorPrint {
        let n = plan(rows, cols).len();
        TensorPrint {
            name: name.into(),
            dtype: "F32".into(),
            rows,
            cols,
            values: (0..n)
                .map(|i| (((i as u32).wrapping_mul(2654435761u32) ^ seed) % 1000) as f32 / 1000.0 - 0.5)
                .collect(),
        }
    }

    fn delta() -> ForkDelta {
        let base = Fingerprint {
            tensors: vec![tensor("m.safetensors/a", 4, 8, 1), tensor("m.safetensors/b", 2, 3, 2)],
        };
        ForkDelta {
            deltas: vec![(1, vec![0.01, -0.02, 0.0, 0.03, f32::NAN, 0.5])],
            base,
        }
    }

    #[test]
    fn round_trip_is_exact_and_content_addressed() {
        let doc = LineageDoc::new(&delta()).unwrap();
        let back = LineageDoc::from_bytes(doc.as_bytes()).unwrap();
        assert_eq!(back, doc);
        assert_eq!(LineageDoc::new(back.fork_delta()).unwrap().as_bytes(), doc.as_bytes());
        assert_eq!(doc.digest(), lineage_digest(doc.as_bytes()));
        assert_ne!(
            doc.digest(),
            Digest::of(doc.as_bytes()),
            "the digest is domain-separated"
        );
        assert_eq!(doc.subject().to_string(), format!("lineage:{}", doc.digest()));
        assert_eq!(parse_lineage_path(&lineage_path(&doc.digest())), Some(doc.digest()));
        assert_eq!(parse_lineage_path(&lineage_path(&doc.digest()).to_uppercase()), None);
        assert_eq!(parse_lineage_path("v1/lineage/00"), None);
    }

    #[test]
    fn refusals_name_what_is_wrong() {
        let doc = LineageDoc::new(&delta()).unwrap();
        let bytes = doc.as_bytes();
        // Truncated.
        assert!(matches!(
            LineageDoc::from_bytes(&bytes[..bytes.len() - 1]),
            Err(LineageDocError::Cbor(_))
        ));
        // Trailing bytes.
        let mut longer = bytes.to_vec();
        longer.push(0);
        assert!(matches!(
            LineageDoc::from_bytes(&longer),
            Err(LineageDocError::Cbor(CborError::TrailingBytes { .. }))
        ));
        // Wrong version: the byte after "v".
        let mut v2 = bytes.to_vec();
        v2[3] = 2;
        assert_eq!(
            LineageDoc::from_bytes(&v2),
            Err(LineageDocError::UnsupportedVersion { found: 2 })
        );
        // Digest mismatch.
        let other = Digest::of(b"other");
        assert!(matches!(
            LineageDoc::from_bytes_named(bytes, &other),
            Err(LineageDocError::DigestMismatch { expected, .. }) if expected == other
        ));
        // Over the limit, on decode and on encode.
        assert!(matches!(
            LineageDoc::from_bytes(&vec![0u8; MAX_LINEAGE_DOC_BYTES + 1]),
            Err(LineageDocError::TooLarge { .. })
        ));
        let mut huge = delta();
        huge.base.tensors[0] = tensor("big", 1, 16384, 3);
        huge.base
            .tensors
            .extend((0..300).map(|i| tensor(&format!("t{i}"), 1, 16384, i)));
        assert!(matches!(LineageDoc::new(&huge), Err(LineageDocError::TooLarge { .. })));
        // No change, a delta of the wrong length, a delta out of order or out of range.
        let mut same = delta();
        same.deltas[0].1 = vec![0.0; 6];
        assert_eq!(LineageDoc::new(&same), Err(LineageDocError::NoChange));
        let mut short = delta();
        short.deltas[0].1.pop();
        assert!(matches!(
            LineageDoc::new(&short),
            Err(LineageDocError::ValueCount { .. })
        ));
        let mut twice = delta();
        twice.deltas.insert(0, (1, vec![1.0; 6]));
        assert!(matches!(
            LineageDoc::new(&twice),
            Err(LineageDocError::BadDelta {
                index: 1,
                tensor: 1,
                ..
            })
        ));
        let mut missing = delta();
        missing.deltas[0].0 = 2;
        assert!(matches!(
            LineageDoc::new(&missing),
            Err(LineageDocError::BadDelta { tensor: 2, .. })
        ));
    }

    #[test]
    fn non_canonical_encodings_are_refused() {
        let doc = LineageDoc::new(&delta()).unwrap();
        let bytes = doc.as_bytes();
        // The version as a two-byte integer (0x18 0x01): same value, not the shortest form.
        let mut wide = bytes[..3].to_vec();
        wide.extend_from_slice(&[0x18, 0x01]);
        wide.extend_from_slice(&bytes[4..]);
        assert!(matches!(
            LineageDoc::from_bytes(&wide),
            Err(LineageDocError::Cbor(CborError::NotDeterministic { .. }))
        ));
        // A NaN other than the canonical one.
        let pos = bytes.windows(4).position(|w| w == f32::NAN.to_le_bytes()).unwrap();
        let mut nan = bytes.to_vec();
        nan[pos] = 0x01;
        assert!(matches!(
            LineageDoc::from_bytes(&nan),
            Err(LineageDocError::NonCanonicalNan { .. })
        ));
        // Another format name of the same length.
        let pos = bytes
            .windows(LINEAGE_DOC_FORMAT.len())
            .position(|w| w == LINEAGE_DOC_FORMAT.as_bytes())
            .unwrap();
        let mut wrong = bytes.to_vec();
        wrong[pos] = b'W';
        assert!(matches!(
            LineageDoc::from_bytes(&wrong),
            Err(LineageDocError::WrongFormat { .. })
        ));
    }
}
