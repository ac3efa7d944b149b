//! The deterministic CBOR profile of format version 1 (spec/format.md §5).
//!
//! Encoding: RFC 8949 §4.2.1 "core deterministic encoding": shortest-form integers and
//! lengths, definite lengths only, map keys sorted by their encoded bytes, no duplicate
//! keys. The profile also forbids tags, floating point and simple values (null,
//! undefined), which the format never uses; booleans are allowed.
//!
//! Decoding is strict: a first pass over the raw headers enforces the limits (nesting
//! depth, item count) and the forbidden types *before* anything is allocated for the
//! items, then the value is decoded, re-encoded canonically and compared byte for byte
//! with the input. Any difference (a long-form integer, unsorted keys, an indefinite
//! length) is an error, so every accepted document has exactly one encoding — which is
//! what lets signatures cover exact bytes without re-serialising anything.

use ciborium::Value;
use ciborium_ll::{Decoder, Header};

/// Limits applied while decoding untrusted CBOR.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Largest document in bytes.
    pub max_bytes: usize,
    /// Most data items (every integer, string, array, map counts as one).
    pub max_items: u64,
    /// Deepest nesting of arrays and maps.
    pub max_depth: usize,
}

/// Why a CBOR document was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CborError {
    /// The document is larger than the limit.
    #[error("document is {size} bytes, over the limit of {limit}")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The document has more items than the limit.
    #[error("document has more than {limit} data items")]
    TooManyItems {
        /// The limit.
        limit: u64,
    },
    /// Arrays or maps nest deeper than the limit.
    #[error("nesting deeper than {limit} at byte {offset}")]
    TooDeep {
        /// The limit.
        limit: usize,
        /// Where.
        offset: usize,
    },
    /// A construct the profile forbids (tag, float, simple value, indefinite length).
    #[error("{what} at byte {offset} is not allowed by the deterministic profile")]
    Forbidden {
        /// What was found.
        what: &'static str,
        /// Where.
        offset: usize,
    },
    /// The bytes are not well-formed CBOR.
    #[error("malformed CBOR at byte {offset}: {reason}")]
    Malformed {
        /// Where.
        offset: usize,
        /// What the decoder said.
        reason: String,
    },
    /// Bytes follow the single top-level item.
    #[error("{extra} bytes after the end of the document")]
    TrailingBytes {
        /// How many.
        extra: usize,
    },
    /// A map has the same key twice.
    #[error("a map has the key {key} twice")]
    DuplicateKey {
        /// The key, in diagnostic form.
        key: String,
    },
    /// Well-formed, but not the one deterministic encoding of its value.
    #[error("not in deterministic encoding (first difference at byte {offset}): non-shortest integer or length, or unsorted map keys")]
    NotDeterministic {
        /// First byte that differs from the canonical encoding.
        offset: usize,
    },
}

/// Encodes `value` in the deterministic profile: maps sorted, no duplicates.
pub(crate) fn encode(value: &Value) -> Result<Vec<u8>, CborError> {
    let canonical = canonicalize(value)?;
    let mut out = Vec::new();
    // Writing into a Vec cannot fail.
    ciborium::into_writer(&canonical, &mut out).map_err(|e| CborError::Malformed {
        offset: 0,
        reason: e.to_string(),
    })?;
    Ok(out)
}

/// Returns a copy of `value` with every map's entries sorted by encoded key.
fn canonicalize(value: &Value) -> Result<Value, CborError> {
    Ok(match value {
        Value::Array(items) => Value::Array(items.iter().map(canonicalize).collect::<Result<_, _>>()?),
        Value::Map(entries) => {
            let mut keyed = Vec::with_capacity(entries.len());
            for (k, v) in entries {
                let mut key_bytes = Vec::new();
                ciborium::into_writer(k, &mut key_bytes).map_err(|e| CborError::Malformed {
                    offset: 0,
                    reason: e.to_string(),
                })?;
                keyed.push((key_bytes, canonicalize(k)?, canonicalize(v)?));
            }
            keyed.sort_by(|a, b| a.0.cmp(&b.0));
            if let Some(pair) = keyed.windows(2).find(|w| w[0].0 == w[1].0) {
                return Err(CborError::DuplicateKey {
                    key: format!("{:?}", pair[0].1),
                });
            }
            Value::Map(keyed.into_iter().map(|(_, k, v)| (k, v)).collect())
        }
        other => other.clone(),
    })
}

/// Decodes one document under `limits`, requiring the deterministic encoding.
pub(crate) fn decode(bytes: &[u8], limits: Limits) -> Result<Value, CborError> {
    if bytes.len() > limits.max_bytes {
        return Err(CborError::TooLarge {
            size: bytes.len(),
            limit: limits.max_bytes,
        });
    }
    let end = prescan(bytes, limits)?;
    if end != bytes.len() {
        return Err(CborError::TrailingBytes {
            extra: bytes.len() - end,
        });
    }
    let value: Value = ciborium::from_reader(bytes).map_err(|e| CborError::Malformed {
        offset: 0,
        reason: e.to_string(),
    })?;
    let canonical = encode(&value)?;
    if canonical != bytes {
        let offset = canonical
            .iter()
            .zip(bytes)
            .position(|(a, b)| a != b)
            .unwrap_or(canonical.len().min(bytes.len()));
        return Err(CborError::NotDeterministic { offset });
    }
    Ok(value)
}

/// Walks the item headers of one top-level item without building values; returns the
/// offset just past it. This is where the limits are enforced, before allocation.
fn prescan(bytes: &[u8], limits: Limits) -> Result<usize, CborError> {
    let mut decoder = Decoder::from(bytes);
    // Each open container: how many items it still expects.
    let mut open: Vec<u64> = Vec::new();
    let mut items: u64 = 0;
    loop {
        let offset = decoder.offset();
        let header = decoder.pull().map_err(|e| CborError::Malformed {
            offset,
            reason: format!("{e:?}"),
        })?;
        items += 1;
        if items > limits.max_items {
            return Err(CborError::TooManyItems {
                limit: limits.max_items,
            });
        }
        let children: u64 = match header {
            Header::Positive(_) | Header::Negative(_) => 0,
            Header::Bytes(Some(len)) | Header::Text(Some(len)) => {
                // Skip the payload; a length past the end is malformed, not an allocation.
                let remaining = bytes.len() - decoder.offset();
                if len > remaining {
                    return Err(CborError::Malformed {
                        offset,
                        reason: format!("string of {len} bytes but only {remaining} remain"),
                    });
                }
                let malformed = |e: ciborium_ll::Error<std::io::Error>| CborError::Malformed {
                    offset,
                    reason: format!("{e:?}"),
                };
                // `bytes`/`text` re-read the header we just pulled (they push it back).
                let mut scratch = [0u8; 4096];
                if matches!(header, Header::Text(_)) {
                    let mut segments = decoder.text(Some(len));
                    while let Some(mut seg) = segments.pull().map_err(malformed)? {
                        while seg.pull(&mut scratch).map_err(malformed)?.is_some() {}
                    }
                } else {
                    let mut segments = decoder.bytes(Some(len));
                    while let Some(mut seg) = segments.pull().map_err(malformed)? {
                        while seg.pull(&mut scratch).map_err(malformed)?.is_some() {}
                    }
                }
                0
            }
            Header::Bytes(None) | Header::Text(None) => {
                return Err(CborError::Forbidden {
                    what: "indefinite-length string",
                    offset,
                })
            }
            Header::Array(Some(len)) => len as u64,
            Header::Map(Some(len)) => (len as u64).checked_mul(2).ok_or(CborError::TooManyItems {
                limit: limits.max_items,
            })?,
            Header::Array(None) | Header::Map(None) => {
                return Err(CborError::Forbidden {
                    what: "indefinite-length container",
                    offset,
                })
            }
            Header::Tag(_) => return Err(CborError::Forbidden { what: "tag", offset }),
            Header::Float(_) => {
                return Err(CborError::Forbidden {
                    what: "floating-point number",
                    offset,
                })
            }
            Header::Simple(ciborium_ll::simple::FALSE) | Header::Simple(ciborium_ll::simple::TRUE) => 0,
            Header::Simple(_) => {
                return Err(CborError::Forbidden {
                    what: "simple value",
                    offset,
                })
            }
            Header::Break => return Err(CborError::Forbidden { what: "break", offset }),
        };
        // A declared child count can never exceed the bytes left (each item is ≥ 1 byte).
        if children > (bytes.len() - decoder.offset()) as u64 {
            return Err(CborError::Malformed {
                offset,
                reason: format!("container declares {children} items; not enough bytes remain"),
            });
        }
        if children > 0 {
            if open.len() >= limits.max_depth {
                return Err(CborError::TooDeep {
                    limit: limits.max_depth,
                    offset,
                });
            }
            open.push(children);
            continue;
        }
        // This item is complete: close every container it completes.
        loop {
            match open.last_mut() {
                None => return Ok(decoder.offset()),
                Some(left) => {
                    *left -= 1;
                    if *left > 0 {
                        break;
                    }
                    open.pop();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        max_bytes: 1 << 20,
        max_items: 1000,
        max_depth: 8,
    };

    #[test]
    fn round_trips_and_sorts_keys() {
        let v = Value::Map(vec![
            (Value::Text("bb".into()), Value::Integer(1.into())),
            (Value::Text("a".into()), Value::Array(vec![])),
        ]);
        let bytes = encode(&v).unwrap();
        // "a" (shorter encoding) sorts first.
        assert_eq!(bytes, [0xa2, 0x61, b'a', 0x80, 0x62, b'b', b'b', 0x01]);
        decode(&bytes, LIMITS).unwrap();
    }

    #[test]
    fn rejects_non_deterministic_forms() {
        // 1 encoded in two bytes.
        assert!(matches!(
            decode(&[0x18, 0x01], LIMITS),
            Err(CborError::NotDeterministic { .. })
        ));
        // Unsorted keys.
        let unsorted = [0xa2, 0x62, b'b', b'b', 0x01, 0x61, b'a', 0x80];
        assert!(matches!(
            decode(&unsorted, LIMITS),
            Err(CborError::NotDeterministic { .. })
        ));
        // Duplicate keys.
        let dup = [0xa2, 0x61, b'a', 0x01, 0x61, b'a', 0x02];
        assert!(matches!(decode(&dup, LIMITS), Err(CborError::DuplicateKey { .. })));
        // Indefinite array, tag, float, null.
        assert!(matches!(
            decode(&[0x9f, 0xff], LIMITS),
            Err(CborError::Forbidden { .. })
        ));
        assert!(matches!(
            decode(&[0xc1, 0x01], LIMITS),
            Err(CborError::Forbidden { .. })
        ));
        assert!(matches!(
            decode(&[0xf9, 0x3c, 0x00], LIMITS),
            Err(CborError::Forbidden { .. })
        ));
        assert!(matches!(decode(&[0xf6], LIMITS), Err(CborError::Forbidden { .. })));
        assert!(matches!(
            decode(&[0x01, 0x02], LIMITS),
            Err(CborError::TrailingBytes { extra: 1 })
        ));
    }

    #[test]
    fn enforces_limits_before_allocating() {
        // An array claiming 2^64-1 items in 9 bytes.
        let huge = [0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
        assert!(matches!(decode(&huge, LIMITS), Err(CborError::Malformed { .. })));
        // A byte string claiming 4 GiB.
        let long = [0x5a, 0xff, 0xff, 0xff, 0xff];
        assert!(matches!(decode(&long, LIMITS), Err(CborError::Malformed { .. })));
        let deep = vec![0x81; 20].into_iter().chain([0x01]).collect::<Vec<u8>>();
        assert!(matches!(decode(&deep, LIMITS), Err(CborError::TooDeep { .. })));
        let many: Vec<u8> = [0x99, 0x07, 0xd0]
            .into_iter()
            .chain(std::iter::repeat_n(0x01, 2000))
            .collect();
        assert!(matches!(decode(&many, LIMITS), Err(CborError::TooManyItems { .. })));
        assert!(matches!(
            decode(&vec![0; 2 << 20], LIMITS),
            Err(CborError::TooLarge { .. })
        ));
    }
}
