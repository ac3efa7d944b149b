//! safetensors: a u64 little-endian header length, a JSON header, then tensor data.
//!
//! The JSON is validated by the `safetensors` crate (offsets contiguous from zero, sizes
//! matching dtype and shape), plus checks it lacks: duplicate tensor names (its map
//! keeps only the last), and that the data section ends exactly at the end of the file.

use std::fmt;

use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};

use super::Layout;
use crate::manifest::ChunkRole;
use crate::source::FileSource;

/// The `safetensors` crate's own header size limit (100 MB), which we share.
pub const MAX_HEADER_BYTES: u64 = 100_000_000;

/// Why a safetensors file was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SafetensorsError {
    /// Shorter than the 8-byte length prefix.
    #[error("file is {size} bytes, too small for the 8-byte header length")]
    TooSmall {
        /// The file size.
        size: u64,
    },
    /// The header length is over the limit.
    #[error("header length {len} is over the limit of {MAX_HEADER_BYTES} bytes")]
    HeaderTooLarge {
        /// The declared length.
        len: u64,
    },
    /// The header runs past the end of the file.
    #[error("header length {len} runs past the end of the file ({size} bytes)")]
    HeaderPastEnd {
        /// The declared length.
        len: u64,
        /// The file size.
        size: u64,
    },
    /// The header is not UTF-8.
    #[error("header is not valid UTF-8 (byte {offset} of the file)")]
    HeaderNotUtf8 {
        /// Offset of the first bad byte in the file.
        offset: u64,
    },
    /// The header JSON is malformed or describes inconsistent tensors (holes,
    /// overlaps, sizes that do not match dtype and shape).
    #[error("invalid header: {reason}")]
    InvalidHeader {
        /// What the parser said.
        reason: String,
    },
    /// The same tensor name appears twice.
    #[error("tensor {name:?} appears twice in the header")]
    DuplicateTensor {
        /// The name.
        name: String,
    },
    /// The file ends before the data the header describes.
    #[error("truncated: the header describes data up to byte {expected_end} but the file has {size} bytes")]
    Truncated {
        /// Where the data should end.
        expected_end: u64,
        /// The file size.
        size: u64,
    },
    /// Bytes follow the data the header describes.
    #[error("{} unexplained bytes after the last tensor (data ends at {expected_end}, file has {size} bytes)", size - expected_end)]
    TrailingBytes {
        /// Where the data should end.
        expected_end: u64,
        /// The file size.
        size: u64,
    },
}

/// Reads and validates the header; returns the header chunk then one chunk per tensor
/// in offset order.
pub(crate) fn layout(map: &FileSource) -> Result<Layout, SafetensorsError> {
    let size = map.len();
    let prefix = map.copy(0..8).ok_or(SafetensorsError::TooSmall { size })?;
    let mut len_bytes = [0u8; 8];
    len_bytes.copy_from_slice(&prefix);
    let len = u64::from_le_bytes(len_bytes);
    if len > MAX_HEADER_BYTES {
        return Err(SafetensorsError::HeaderTooLarge { len });
    }
    let header_end = 8 + len;
    let header = map
        .copy(0..header_end)
        .ok_or(SafetensorsError::HeaderPastEnd { len, size })?;
    let (chunks, data_len) = parse_header(&header[8..])?;
    let expected_end = header_end
        .checked_add(data_len)
        .ok_or(SafetensorsError::InvalidHeader {
            reason: "data length overflows".into(),
        })?;
    if expected_end > size {
        return Err(SafetensorsError::Truncated { expected_end, size });
    }
    if expected_end < size {
        return Err(SafetensorsError::TrailingBytes { expected_end, size });
    }
    let mut out = vec![(ChunkRole::Header, 0..header_end)];
    out.extend(chunks.into_iter().map(|(name, range)| {
        (
            ChunkRole::Tensor(name),
            header_end + range.start..header_end + range.end,
        )
    }));
    Ok(Layout {
        chunks: out,
        header: Some(header),
    })
}

/// Tensor names with their ranges inside the data section, in offset order.
pub(crate) type TensorRanges = Vec<(String, std::ops::Range<u64>)>;

/// Most tensors one file may hold: a manifest can list no more chunks than its item
/// limit allows (nine data items per tensor chunk), so a file with more could be parsed
/// but never signed. Refusing during the parse also bounds the parser's memory.
pub const MAX_TENSORS: usize = 888_000;

/// One tensor as read from the header.
struct Tensor {
    name: String,
    dtype: safetensors::Dtype,
    shape: Vec<usize>,
    begin: u64,
    end: u64,
    /// product(shape) × dtype bits, or `None` if that overflows.
    bits: Option<u128>,
}

/// Shapes of more dimensions than this are kept flattened to one dimension (the same
/// elements in the same order), so that a header of millions of `1,` cannot make the
/// parser hold eight bytes for each; spec/fingerprint.md samples such tensors as 1-D.
pub(crate) const MAX_KEPT_DIMS: usize = 16;

/// One tensor's dtype, shape (slowest dimension first; see [`MAX_KEPT_DIMS`]) and range
/// inside the data section.
#[derive(Debug, Clone)]
pub(crate) struct TensorDesc {
    pub name: String,
    pub dtype: safetensors::Dtype,
    pub shape: Vec<usize>,
    pub range: std::ops::Range<u64>,
}

/// The tensors a header describes, in offset order, validated as [`parse_header`] does.
pub(crate) fn tensor_descs(json: &[u8]) -> Result<(Vec<TensorDesc>, u64), SafetensorsError> {
    let (tensors, data_len) = parse_tensors(json)?;
    let descs = tensors
        .into_iter()
        .map(|t| TensorDesc {
            name: t.name,
            dtype: t.dtype,
            shape: t.shape,
            range: t.begin..t.end,
        })
        .collect();
    Ok((descs, data_len))
}

/// Parses the JSON header in one pass (duplicate names are found in the same pass) and
/// validates it as the `safetensors` crate does; returns the tensors in offset order
/// (ties, which only empty tensors can have, in header order) and the data length.
///
/// Shapes are folded into element counts as they are read and `__metadata__` values
/// are checked without being kept, so memory is a small constant per tensor, not
/// proportional to the JSON.
pub(crate) fn parse_header(json: &[u8]) -> Result<(TensorRanges, u64), SafetensorsError> {
    let (tensors, data_len) = parse_tensors(json)?;
    Ok((
        tensors.into_iter().map(|t| (t.name, t.begin..t.end)).collect(),
        data_len,
    ))
}

fn parse_tensors(json: &[u8]) -> Result<(Vec<Tensor>, u64), SafetensorsError> {
    if let Err(e) = std::str::from_utf8(json) {
        return Err(SafetensorsError::HeaderNotUtf8 {
            offset: 8 + e.valid_up_to() as u64,
        });
    }
    let mut de = serde_json::Deserializer::from_slice(json);
    let mut tensors = de.deserialize_map(HeaderVisitor).map_err(invalid)?;
    de.end().map_err(invalid)?;
    // Duplicates: sort indices by name and compare neighbours (no name is copied).
    let mut by_name: Vec<usize> = (0..tensors.len()).collect();
    by_name.sort_unstable_by(|&a, &b| tensors[a].name.cmp(&tensors[b].name));
    if let Some(pair) = by_name.windows(2).find(|p| tensors[p[0]].name == tensors[p[1]].name) {
        return Err(SafetensorsError::DuplicateTensor {
            name: tensors[pair[0]].name.clone(),
        });
    }
    tensors.sort_by_key(|t| t.begin);
    let mut expected_begin = 0u64;
    for t in &tensors {
        if t.begin != expected_begin || t.end < t.begin {
            return Err(SafetensorsError::InvalidHeader {
                reason: format!(
                    "tensor {:?}: data_offsets [{}, {}] do not continue from {expected_begin} \
                     (holes, overlaps and reversed ranges are not allowed)",
                    t.name, t.begin, t.end
                ),
            });
        }
        let declared = u128::from(t.end - t.begin);
        match t.bits {
            Some(bits) if bits % 8 != 0 => {
                return Err(SafetensorsError::InvalidHeader {
                    reason: format!("tensor {:?}: its elements do not fill a whole number of bytes", t.name),
                });
            }
            Some(bits) if bits / 8 == declared => {}
            _ => {
                return Err(SafetensorsError::InvalidHeader {
                    reason: format!(
                        "tensor {:?}: data_offsets span {} bytes, which is not product(shape) × dtype size",
                        t.name,
                        t.end - t.begin
                    ),
                })
            }
        }
        expected_begin = t.end;
    }
    Ok((tensors, expected_begin))
}

fn invalid(e: serde_json::Error) -> SafetensorsError {
    SafetensorsError::InvalidHeader { reason: e.to_string() }
}

/// The top-level object: `__metadata__` (string to string) and tensors.
struct HeaderVisitor;

impl<'de> Visitor<'de> for HeaderVisitor {
    type Value = Vec<Tensor>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object of tensors")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Vec<Tensor>, A::Error> {
        let mut tensors = Vec::new();
        let mut seen_metadata = false;
        while let Some(key) = map.next_key::<String>()? {
            if key == "__metadata__" {
                if seen_metadata {
                    return Err(serde::de::Error::custom("duplicate key \"__metadata__\""));
                }
                seen_metadata = true;
                map.next_value::<Option<StringMap>>()?;
                continue;
            }
            if tensors.len() == MAX_TENSORS {
                return Err(serde::de::Error::custom(format!(
                    "more than {MAX_TENSORS} tensors: more than a manifest can list"
                )));
            }
            let info = map.next_value::<Info>()?;
            tensors.push(Tensor {
                name: key,
                dtype: info.dtype,
                shape: info.shape,
                begin: info.begin,
                end: info.end,
                bits: info.bits,
            });
        }
        Ok(tensors)
    }
}

/// `__metadata__`: checked to map strings to strings, not kept.
struct StringMap;

impl<'de> serde::Deserialize<'de> for StringMap {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = StringMap;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of strings to strings")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<StringMap, A::Error> {
                while map.next_key::<IgnoredString>()?.is_some() {
                    map.next_value::<IgnoredString>()?;
                }
                Ok(StringMap)
            }
        }
        d.deserialize_map(V)
    }
}

/// A JSON string, checked and dropped.
struct IgnoredString;

impl<'de> serde::Deserialize<'de> for IgnoredString {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = IgnoredString;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<IgnoredString, E> {
                Ok(IgnoredString)
            }
        }
        d.deserialize_str(V)
    }
}

/// One tensor's entry: `dtype`, `shape`, `data_offsets`; other fields are ignored, as
/// the `safetensors` crate ignores them.
struct Info {
    dtype: safetensors::Dtype,
    shape: Vec<usize>,
    begin: u64,
    end: u64,
    bits: Option<u128>,
}

impl<'de> serde::Deserialize<'de> for Info {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Info;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a tensor entry {dtype, shape, data_offsets}")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Info, A::Error> {
                use serde::de::Error;
                let (mut dtype, mut elements, mut offsets) = (None, None, None);
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "dtype" if dtype.is_some() => return Err(A::Error::duplicate_field("dtype")),
                        "shape" if elements.is_some() => return Err(A::Error::duplicate_field("shape")),
                        "data_offsets" if offsets.is_some() => return Err(A::Error::duplicate_field("data_offsets")),
                        "dtype" => dtype = Some(map.next_value::<safetensors::Dtype>()?),
                        "shape" => elements = Some(map.next_value::<Shape>()?),
                        "data_offsets" => offsets = Some(map.next_value::<(u64, u64)>()?),
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                let dtype = dtype.ok_or_else(|| A::Error::missing_field("dtype"))?;
                let shape = elements.ok_or_else(|| A::Error::missing_field("shape"))?;
                let (begin, end) = offsets.ok_or_else(|| A::Error::missing_field("data_offsets"))?;
                let bits = shape.elements.and_then(|n| n.checked_mul(dtype.bitsize() as u128));
                Ok(Info {
                    dtype,
                    shape: shape.dims,
                    begin,
                    end,
                    bits,
                })
            }
        }
        d.deserialize_map(V)
    }
}

/// A shape: its element count, folded as it is read (`None` on overflow past any file
/// size), and its dimensions, at most [`MAX_KEPT_DIMS`] of them (more are flattened).
struct Shape {
    elements: Option<u128>,
    dims: Vec<usize>,
}

impl<'de> serde::Deserialize<'de> for Shape {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Shape;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a shape: an array of non-negative integers")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Shape, A::Error> {
                let mut count: Option<u128> = Some(1);
                let mut dims = Vec::new();
                let mut rank = 0usize;
                while let Some(dim) = seq.next_element::<u64>()? {
                    // Past u64::MAX elements no file can hold the data; stay at None.
                    count = count
                        .and_then(|c| c.checked_mul(u128::from(dim)))
                        .filter(|&c| c <= u128::from(u64::MAX));
                    rank += 1;
                    if rank <= MAX_KEPT_DIMS {
                        dims.push(usize::try_from(dim).unwrap_or(usize::MAX));
                    }
                }
                if rank > MAX_KEPT_DIMS {
                    dims = vec![count.and_then(|c| usize::try_from(c).ok()).unwrap_or(usize::MAX)];
                }
                Ok(Shape { elements: count, dims })
            }
        }
        d.deserialize_seq(V)
    }
}
