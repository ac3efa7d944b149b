//! The deterministic CBOR profile of format version 1 (spec/format.md §5).
//!
//! Encoding: RFC 8949 §4.2.1 "core deterministic encoding": shortest-form integers and
//! lengths, definite lengths only, map keys sorted by their encoded bytes, no duplicate
//! keys. The profile also forbids tags, floating point and simple values (null,
//! undefined), which the format never uses; booleans are allowed.
//!
//! Decoding is strict and one pass: [`Reader`] checks every item header as it reads it
//! (shortest-form integers and lengths, no forbidden types, lengths that fit in the bytes
//! left, the item-count limit) and the callers check that map keys strictly increase in
//! encoded order. Nothing is re-encoded to compare: an item is accepted only if its bytes
//! are already the one deterministic encoding, so every accepted document has exactly one
//! encoding — which is what lets signatures cover exact bytes without re-serialising.
//!
//! Typed decoders (the manifest, the signature file) drive the [`Reader`] directly and
//! build their own structures with no intermediate value tree; [`decode`] builds a
//! `ciborium::Value` for the small documents that are read generically. [`Writer`] is the
//! encoding side: callers write map keys in canonical order, and the limits that decoding
//! enforces are enforced on the finished output too, so nothing is written that a reader
//! would refuse.

use ciborium::value::Integer;
use ciborium::Value;

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
        /// What is wrong there.
        reason: &'static str,
    },
    /// Bytes follow the single top-level item.
    #[error("{extra} bytes after the end of the document")]
    TrailingBytes {
        /// How many.
        extra: usize,
    },
    /// A map has the same key twice.
    #[error("a map has the key {key} twice (at byte {offset})")]
    DuplicateKey {
        /// The key: quoted text, or a description of a non-text key.
        key: String,
        /// Where the second copy starts.
        offset: usize,
    },
    /// Well-formed, but not the one deterministic encoding of its value.
    #[error("not in deterministic encoding at byte {offset}: {what}")]
    NotDeterministic {
        /// Where the offending item starts.
        offset: usize,
        /// `non-shortest integer or length`, or `map keys out of order`.
        what: &'static str,
    },
}

/// One data item as the [`Reader`] returns it. Strings borrow from the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Item<'a> {
    /// An unsigned integer (major type 0).
    Uint(u64),
    /// A negative integer −1 − n (major type 1), carrying n.
    Negative(u64),
    /// A byte string.
    Bytes(&'a [u8]),
    /// A text string (valid UTF-8).
    Text(&'a str),
    /// The header of an array of this many items (which follow).
    Array(u64),
    /// The header of a map of this many pairs (which follow).
    Map(u64),
    /// `true` or `false`.
    Bool(bool),
}

impl Item<'_> {
    /// The item's type, for error messages.
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            Item::Uint(_) => "an unsigned integer",
            Item::Negative(_) => "a negative integer",
            Item::Bytes(_) => "a byte string",
            Item::Text(_) => "text",
            Item::Array(_) => "an array",
            Item::Map(_) => "a map",
            Item::Bool(_) => "a boolean",
        }
    }
}

/// A one-pass reader of the deterministic profile over an in-memory document.
///
/// Each call to [`Reader::next`] reads one item header (and a string's payload) and
/// refuses, at that item, anything the profile forbids. It does not track nesting: the
/// caller knows the structure it expects (typed decoders) or recurses ([`decode`]) and
/// checks map-key order with [`check_key_order`].
#[derive(Debug)]
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    items: u64,
    max_items: u64,
}

impl<'a> Reader<'a> {
    /// A reader over `bytes`, refusing them outright if they are over `limits.max_bytes`.
    pub(crate) fn new(bytes: &'a [u8], limits: Limits) -> Result<Self, CborError> {
        if bytes.len() > limits.max_bytes {
            return Err(CborError::TooLarge {
                size: bytes.len(),
                limit: limits.max_bytes,
            });
        }
        Ok(Reader {
            bytes,
            pos: 0,
            items: 0,
            max_items: limits.max_items,
        })
    }

    /// Where the next item starts.
    pub(crate) fn offset(&self) -> usize {
        self.pos
    }

    /// The input bytes in `range` (for map-key order checks on items already read).
    pub(crate) fn input(&self, range: std::ops::Range<usize>) -> &'a [u8] {
        &self.bytes[range]
    }

    /// Bytes not read yet.
    pub(crate) fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    /// Refuses any bytes after the top-level item.
    pub(crate) fn finish(self) -> Result<(), CborError> {
        match self.bytes.len() - self.pos {
            0 => Ok(()),
            extra => Err(CborError::TrailingBytes { extra }),
        }
    }

    fn take(&mut self, n: usize, offset: usize) -> Result<&'a [u8], CborError> {
        let end = self.pos.checked_add(n).filter(|&end| end <= self.bytes.len());
        match end {
            Some(end) => {
                let out = &self.bytes[self.pos..end];
                self.pos = end;
                Ok(out)
            }
            None => Err(CborError::Malformed {
                offset,
                reason: "the document ends inside an item header",
            }),
        }
    }

    /// Reads the next item.
    pub(crate) fn next(&mut self) -> Result<Item<'a>, CborError> {
        let offset = self.pos;
        let initial = self.take(1, offset)?[0];
        self.items += 1;
        if self.items > self.max_items {
            return Err(CborError::TooManyItems { limit: self.max_items });
        }
        let major = initial >> 5;
        let info = initial & 0x1f;
        if major == 6 {
            return Err(CborError::Forbidden { what: "tag", offset });
        }
        if major == 7 {
            return match info {
                20 => Ok(Item::Bool(false)),
                21 => Ok(Item::Bool(true)),
                25..=27 => Err(CborError::Forbidden {
                    what: "floating-point number",
                    offset,
                }),
                31 => Err(CborError::Forbidden { what: "break", offset }),
                28..=30 => Err(CborError::Malformed {
                    offset,
                    reason: "reserved additional information",
                }),
                _ => Err(CborError::Forbidden {
                    what: "simple value",
                    offset,
                }),
            };
        }
        let (arg, long_form) = match info {
            0..=23 => (u64::from(info), false),
            24..=27 => {
                let width = 1usize << (info - 24);
                let raw = self.take(width, offset)?;
                let arg = raw.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
                // The shortest form: each width only for values the next smaller cannot hold.
                let smallest = match info {
                    24 => 24,
                    25 => 0x100,
                    26 => 0x1_0000,
                    _ => 0x1_0000_0000,
                };
                (arg, arg < smallest)
            }
            28..=30 => {
                return Err(CborError::Malformed {
                    offset,
                    reason: "reserved additional information",
                })
            }
            _ => {
                return Err(match major {
                    2 | 3 => CborError::Forbidden {
                        what: "indefinite-length string",
                        offset,
                    },
                    4 | 5 => CborError::Forbidden {
                        what: "indefinite-length container",
                        offset,
                    },
                    _ => CborError::Malformed {
                        offset,
                        reason: "an integer cannot have an indefinite length",
                    },
                })
            }
        };
        let remaining = self.bytes.len() - self.pos;
        // A length the input cannot hold is malformed whatever its form; checked first so
        // that a lying count is reported as such (and before anything is reserved for it).
        let past_end = match major {
            2 | 3 => arg > remaining as u64,
            // Every item takes at least one byte.
            4 => arg > remaining as u64,
            5 => arg.checked_mul(2).is_none_or(|n| n > remaining as u64),
            _ => false,
        };
        if past_end {
            return Err(CborError::Malformed {
                offset,
                reason: if major < 4 {
                    "a string is longer than the bytes that remain"
                } else {
                    "a container declares more items than the bytes that remain could hold"
                },
            });
        }
        if long_form {
            return Err(CborError::NotDeterministic {
                offset,
                what: "non-shortest integer or length",
            });
        }
        match major {
            0 => Ok(Item::Uint(arg)),
            1 => Ok(Item::Negative(arg)),
            2 | 3 => {
                let payload = self.take(arg as usize, offset)?;
                if major == 2 {
                    return Ok(Item::Bytes(payload));
                }
                std::str::from_utf8(payload)
                    .map(Item::Text)
                    .map_err(|_| CborError::Malformed {
                        offset,
                        reason: "text string is not valid UTF-8",
                    })
            }
            4 => Ok(Item::Array(arg)),
            _ => Ok(Item::Map(arg)),
        }
    }
}

/// Checks that a map key (its encoded bytes `key`, starting at `offset`) sorts strictly
/// after the previous key of the same map, as the deterministic profile requires.
pub(crate) fn check_key_order(previous: Option<&[u8]>, key: &[u8], offset: usize) -> Result<(), CborError> {
    match previous.map(|p| p.cmp(key)) {
        None | Some(std::cmp::Ordering::Less) => Ok(()),
        Some(std::cmp::Ordering::Equal) => Err(CborError::DuplicateKey {
            key: describe_key(key),
            offset,
        }),
        Some(std::cmp::Ordering::Greater) => Err(CborError::NotDeterministic {
            offset,
            what: "map keys out of order",
        }),
    }
}

/// A map key for an error message: quoted text, or what kind of key it is.
fn describe_key(encoded: &[u8]) -> String {
    let limits = Limits {
        max_bytes: encoded.len(),
        max_items: 1,
        max_depth: 0,
    };
    match Reader::new(encoded, limits).and_then(|mut r| r.next()) {
        Ok(Item::Text(text)) => format!("{text:?}"),
        Ok(other) => format!("({})", other.type_name()),
        Err(_) => "(unreadable)".to_string(),
    }
}

/// Decodes one document under `limits` into a value tree, in one pass.
pub(crate) fn decode(bytes: &[u8], limits: Limits) -> Result<Value, CborError> {
    let mut reader = Reader::new(bytes, limits)?;
    let value = decode_value(&mut reader, 0, limits.max_depth)?;
    reader.finish()?;
    Ok(value)
}

/// `open` counts the enclosing containers that have items (an empty array or map opens
/// nothing, and so does not count towards the depth limit).
fn decode_value(reader: &mut Reader<'_>, open: usize, max_depth: usize) -> Result<Value, CborError> {
    let offset = reader.offset();
    let item = reader.next()?;
    let enter = |len: u64| {
        if len > 0 && open >= max_depth {
            Err(CborError::TooDeep {
                limit: max_depth,
                offset,
            })
        } else {
            Ok(())
        }
    };
    Ok(match item {
        Item::Uint(n) => Value::Integer(n.into()),
        Item::Negative(n) => {
            // −1 − n always fits: n ≤ u64::MAX.
            let value = -1 - i128::from(n);
            Value::Integer(Integer::try_from(value).map_err(|_| CborError::Malformed {
                offset,
                reason: "negative integer out of range",
            })?)
        }
        Item::Bytes(b) => Value::Bytes(b.to_vec()),
        Item::Text(t) => Value::Text(t.to_string()),
        Item::Bool(b) => Value::Bool(b),
        Item::Array(len) => {
            enter(len)?;
            let mut items = Vec::new();
            for _ in 0..len {
                items.push(decode_value(reader, open + 1, max_depth)?);
            }
            Value::Array(items)
        }
        Item::Map(len) => {
            enter(len)?;
            let mut entries = Vec::new();
            let mut previous: Option<&[u8]> = None;
            for _ in 0..len {
                let key_start = reader.offset();
                let key = decode_value(reader, open + 1, max_depth)?;
                let key_bytes = reader.input(key_start..reader.offset());
                check_key_order(previous, key_bytes, key_start)?;
                previous = Some(key_bytes);
                let value = decode_value(reader, open + 1, max_depth)?;
                entries.push((key, value));
            }
            Value::Map(entries)
        }
    })
}

/// Writes the deterministic encoding item by item, counting items so that the finished
/// document can be held to the same limits a reader applies.
#[derive(Debug, Default)]
pub(crate) struct Writer {
    out: Vec<u8>,
    items: u64,
}

impl Writer {
    /// A writer with room for about `capacity` bytes.
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        Writer {
            out: Vec::with_capacity(capacity),
            items: 0,
        }
    }

    fn head(&mut self, major: u8, arg: u64) {
        self.items += 1;
        let m = major << 5;
        match arg {
            0..=23 => self.out.push(m | arg as u8),
            24..=0xff => self.out.extend_from_slice(&[m | 24, arg as u8]),
            0x100..=0xffff => {
                self.out.push(m | 25);
                self.out.extend_from_slice(&(arg as u16).to_be_bytes());
            }
            0x1_0000..=0xffff_ffff => {
                self.out.push(m | 26);
                self.out.extend_from_slice(&(arg as u32).to_be_bytes());
            }
            _ => {
                self.out.push(m | 27);
                self.out.extend_from_slice(&arg.to_be_bytes());
            }
        }
    }

    /// An unsigned integer.
    pub(crate) fn uint(&mut self, n: u64) {
        self.head(0, n);
    }
    /// A byte string.
    pub(crate) fn bytes(&mut self, b: &[u8]) {
        self.head(2, b.len() as u64);
        self.out.extend_from_slice(b);
    }
    /// A text string.
    pub(crate) fn text(&mut self, s: &str) {
        self.head(3, s.len() as u64);
        self.out.extend_from_slice(s.as_bytes());
    }
    /// An array header; `len` items must follow.
    pub(crate) fn array(&mut self, len: usize) {
        self.head(4, len as u64);
    }
    /// A map header; `len` pairs must follow, keys in canonical order.
    pub(crate) fn map(&mut self, len: usize) {
        self.head(5, len as u64);
    }
    fn boolean(&mut self, b: bool) {
        self.items += 1;
        self.out.push(if b { 0xf5 } else { 0xf4 });
    }
    fn raw(&mut self, encoded: &[u8], items: u64) {
        self.out.extend_from_slice(encoded);
        self.items += items;
    }

    /// Bytes written so far.
    pub(crate) fn len(&self) -> usize {
        self.out.len()
    }

    /// The document, if a reader with `limits` would accept its size and item count.
    /// (Depth is fixed by each typed encoder's structure and checked by its tests.)
    pub(crate) fn finish(self, limits: Limits) -> Result<Vec<u8>, CborError> {
        if self.out.len() > limits.max_bytes {
            return Err(CborError::TooLarge {
                size: self.out.len(),
                limit: limits.max_bytes,
            });
        }
        if self.items > limits.max_items {
            return Err(CborError::TooManyItems {
                limit: limits.max_items,
            });
        }
        Ok(self.out)
    }

    fn into_unchecked(self) -> Vec<u8> {
        self.out
    }
}

/// Encodes `value` in the deterministic profile: maps sorted by encoded key, duplicate
/// keys and the forbidden types (floats, tags, null) refused.
pub(crate) fn encode(value: &Value) -> Result<Vec<u8>, CborError> {
    let mut writer = Writer::default();
    encode_value(&mut writer, value)?;
    Ok(writer.into_unchecked())
}

fn encode_value(w: &mut Writer, value: &Value) -> Result<(), CborError> {
    match value {
        Value::Integer(i) => {
            let i = i128::from(*i);
            match u64::try_from(i) {
                Ok(n) => w.uint(n),
                // Negative: major type 1 carries −1 − i, which fits in u64 for any CBOR integer.
                Err(_) => w.head(1, u64::try_from(-1 - i).unwrap_or(u64::MAX)),
            }
        }
        Value::Bytes(b) => w.bytes(b),
        Value::Text(t) => w.text(t),
        Value::Bool(b) => w.boolean(*b),
        Value::Array(items) => {
            w.array(items.len());
            for item in items {
                encode_value(w, item)?;
            }
        }
        Value::Map(entries) => {
            let mut encoded = Vec::with_capacity(entries.len());
            for (k, v) in entries {
                let mut key = Writer::default();
                encode_value(&mut key, k)?;
                let mut val = Writer::default();
                encode_value(&mut val, v)?;
                encoded.push((key, val));
            }
            encoded.sort_by(|a, b| a.0.out.cmp(&b.0.out));
            if let Some(pair) = encoded.windows(2).find(|pair| pair[0].0.out == pair[1].0.out) {
                return Err(CborError::DuplicateKey {
                    key: describe_key(&pair[0].0.out),
                    offset: 0,
                });
            }
            w.map(encoded.len());
            for (k, v) in encoded {
                w.raw(&k.out, k.items);
                w.raw(&v.out, v.items);
            }
        }
        Value::Float(_) => {
            return Err(CborError::Forbidden {
                what: "floating-point number",
                offset: w.len(),
            })
        }
        Value::Tag(..) => {
            return Err(CborError::Forbidden {
                what: "tag",
                offset: w.len(),
            })
        }
        _ => {
            return Err(CborError::Forbidden {
                what: "simple value",
                offset: w.len(),
            })
        }
    }
    Ok(())
}

/// The decoder this module had before the one-pass [`Reader`]: a header pre-scan, a
/// decode by `ciborium` into a value tree, then a canonical re-encode compared byte for
/// byte with the input. Kept only so that tests can check the one-pass reader accepts
/// and refuses exactly the same documents.
#[cfg(test)]
pub(crate) mod reference {
    use super::{CborError, Limits};
    use ciborium::Value;
    use ciborium_ll::{Decoder, Header};

    fn malformed(offset: usize) -> CborError {
        CborError::Malformed {
            offset,
            reason: "(reference decoder)",
        }
    }

    /// Encodes with ciborium after sorting every map by encoded key.
    pub(crate) fn encode(value: &Value) -> Result<Vec<u8>, CborError> {
        let canonical = canonicalize(value)?;
        let mut out = Vec::new();
        ciborium::into_writer(&canonical, &mut out).map_err(|_| malformed(0))?;
        Ok(out)
    }

    fn canonicalize(value: &Value) -> Result<Value, CborError> {
        Ok(match value {
            Value::Array(items) => Value::Array(items.iter().map(canonicalize).collect::<Result<_, _>>()?),
            Value::Map(entries) => {
                let mut keyed = Vec::with_capacity(entries.len());
                for (k, v) in entries {
                    let mut key_bytes = Vec::new();
                    ciborium::into_writer(k, &mut key_bytes).map_err(|_| malformed(0))?;
                    keyed.push((key_bytes, canonicalize(k)?, canonicalize(v)?));
                }
                keyed.sort_by(|a, b| a.0.cmp(&b.0));
                if keyed.windows(2).any(|w| w[0].0 == w[1].0) {
                    return Err(CborError::DuplicateKey {
                        key: "(reference decoder)".into(),
                        offset: 0,
                    });
                }
                Value::Map(keyed.into_iter().map(|(_, k, v)| (k, v)).collect())
            }
            other => other.clone(),
        })
    }

    /// Pre-scan, decode, re-encode, compare.
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
        let value: Value = ciborium::from_reader(bytes).map_err(|_| malformed(0))?;
        let canonical = encode(&value)?;
        if canonical != bytes {
            return Err(CborError::NotDeterministic {
                offset: 0,
                what: "(reference decoder)",
            });
        }
        Ok(value)
    }

    fn prescan(bytes: &[u8], limits: Limits) -> Result<usize, CborError> {
        let mut decoder = Decoder::from(bytes);
        let mut open: Vec<u64> = Vec::new();
        let mut items: u64 = 0;
        loop {
            let offset = decoder.offset();
            let header = decoder.pull().map_err(|_| malformed(offset))?;
            items += 1;
            if items > limits.max_items {
                return Err(CborError::TooManyItems {
                    limit: limits.max_items,
                });
            }
            let children: u64 = match header {
                Header::Positive(_) | Header::Negative(_) => 0,
                Header::Bytes(Some(len)) | Header::Text(Some(len)) => {
                    let remaining = bytes.len() - decoder.offset();
                    if len > remaining {
                        return Err(malformed(offset));
                    }
                    let mut scratch = [0u8; 4096];
                    if matches!(header, Header::Text(_)) {
                        let mut segments = decoder.text(Some(len));
                        while let Some(mut seg) = segments.pull().map_err(|_| malformed(offset))? {
                            while seg.pull(&mut scratch).map_err(|_| malformed(offset))?.is_some() {}
                        }
                    } else {
                        let mut segments = decoder.bytes(Some(len));
                        while let Some(mut seg) = segments.pull().map_err(|_| malformed(offset))? {
                            while seg.pull(&mut scratch).map_err(|_| malformed(offset))?.is_some() {}
                        }
                    }
                    0
                }
                Header::Array(Some(len)) => len as u64,
                Header::Map(Some(len)) => (len as u64).checked_mul(2).ok_or(malformed(offset))?,
                Header::Simple(ciborium_ll::simple::FALSE) | Header::Simple(ciborium_ll::simple::TRUE) => 0,
                _ => {
                    return Err(CborError::Forbidden {
                        what: "(reference decoder)",
                        offset,
                    })
                }
            };
            if children > (bytes.len() - decoder.offset()) as u64 {
                return Err(malformed(offset));
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

#[cfg(test)]
mod equivalence {
    use super::*;
    use proptest::prelude::*;

    const LIMITS: Limits = Limits {
        max_bytes: 1 << 16,
        max_items: 64,
        max_depth: 4,
    };

    /// Arbitrary values, including the types the profile forbids, nested a little.
    fn value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            any::<u64>().prop_map(|n| Value::Integer(n.into())),
            any::<i64>().prop_map(|n| Value::Integer(n.into())),
            prop::collection::vec(any::<u8>(), 0..30).prop_map(Value::Bytes),
            "[a-c]{0,3}".prop_map(Value::Text),
            any::<bool>().prop_map(Value::Bool),
            Just(Value::Null),
            any::<f32>().prop_map(|f| Value::Float(f64::from(f))),
        ];
        leaf.prop_recursive(4, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::vec((inner.clone(), inner), 0..4).prop_map(Value::Map),
                (0u64..40, "[a-c]{0,2}").prop_map(|(t, s)| Value::Tag(t, Box::new(Value::Text(s)))),
            ]
        })
    }

    /// An encoding by ciborium as given (maps unsorted, floats as they come), then edited.
    fn document() -> impl Strategy<Value = Vec<u8>> {
        let edits = prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), any::<bool>()), 0..3);
        (value(), edits).prop_map(|(v, edits)| {
            let mut bytes = Vec::new();
            ciborium::into_writer(&v, &mut bytes).unwrap();
            for (at, byte, widen) in edits {
                if bytes.is_empty() {
                    break;
                }
                let i = at.index(bytes.len());
                if widen && bytes[i] & 0x1f < 24 {
                    // The same argument in a longer, non-shortest form (if a header).
                    let small = bytes[i] & 0x1f;
                    bytes[i] = (bytes[i] & 0xe0) | 24;
                    bytes.insert(i + 1, small);
                } else {
                    bytes[i] = byte;
                }
            }
            bytes
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]

        /// The one-pass reader and the pre-scan/decode/re-encode pipeline it replaced
        /// accept the same documents, with the same values, and refuse the same ones.
        #[test]
        fn one_pass_reader_matches_the_reference(bytes in document()) {
            let new = decode(&bytes, LIMITS);
            let old = reference::decode(&bytes, LIMITS);
            prop_assert_eq!(new.is_ok(), old.is_ok(), "{:02x?}\nnew: {:?}\nold: {:?}", bytes, new, old);
            if let (Ok(a), Ok(b)) = (new, old) {
                prop_assert_eq!(a, b);
            }
        }

        /// Encoding agrees with the reference encoder wherever that one succeeds on a
        /// value the profile allows.
        #[test]
        fn writer_matches_the_reference_encoder(v in value()) {
            let new = encode(&v);
            if let Ok(bytes) = &new {
                prop_assert_eq!(Some(bytes.clone()), reference::encode(&v).ok());
                let roomy = Limits { max_bytes: 1 << 20, max_items: 1 << 20, max_depth: 16 };
                let decoded = decode(bytes, roomy);
                prop_assert!(decoded.is_ok());
            }
        }
    }
}
