//! safetensors: a u64 little-endian header length, a JSON header, then tensor data.
//!
//! The JSON is validated by the `safetensors` crate (offsets contiguous from zero, sizes
//! matching dtype and shape), plus checks it lacks: duplicate tensor names (its map
//! keeps only the last), and that the data section ends exactly at the end of the file.

use std::fmt;

use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};

use super::Layout;
use crate::manifest::ChunkRole;
use crate::mapped::MappedFile;

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
pub(crate) fn layout(map: &MappedFile) -> Result<Layout, SafetensorsError> {
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

/// Parses the JSON header; returns the tensors and the data section's length.
pub(crate) fn parse_header(json: &[u8]) -> Result<(TensorRanges, u64), SafetensorsError> {
    let metadata = parse_metadata(json)?;
    let mut chunks = Vec::new();
    for name in metadata.offset_keys() {
        let Some(info) = metadata.info(&name) else { continue };
        let (start, end) = info.data_offsets;
        chunks.push((name, start as u64..end as u64));
    }
    Ok((chunks, metadata.data_len() as u64))
}

/// One tensor's dtype, shape (slowest dimension first) and range inside the data section.
#[derive(Debug, Clone)]
pub(crate) struct TensorDesc {
    pub name: String,
    pub dtype: safetensors::Dtype,
    pub shape: Vec<usize>,
    pub range: std::ops::Range<u64>,
}

/// The tensors a header describes, in offset order, validated like [`parse_header`].
pub(crate) fn tensor_descs(json: &[u8]) -> Result<(Vec<TensorDesc>, u64), SafetensorsError> {
    let metadata = parse_metadata(json)?;
    let mut out = Vec::new();
    for name in metadata.offset_keys() {
        let Some(info) = metadata.info(&name) else { continue };
        let (start, end) = info.data_offsets;
        out.push(TensorDesc {
            dtype: info.dtype,
            shape: info.shape.clone(),
            range: start as u64..end as u64,
            name,
        });
    }
    Ok((out, metadata.data_len() as u64))
}

/// UTF-8, unique names, then the `safetensors` crate's own validation.
fn parse_metadata(json: &[u8]) -> Result<safetensors::tensor::Metadata, SafetensorsError> {
    if let Err(e) = std::str::from_utf8(json) {
        return Err(SafetensorsError::HeaderNotUtf8 {
            offset: 8 + e.valid_up_to() as u64,
        });
    }
    check_duplicate_names(json)?;
    serde_json::from_slice(json).map_err(|e| SafetensorsError::InvalidHeader { reason: e.to_string() })
}

/// serde_json keeps the last of two equal keys; a second tensor of the same name would
/// then be invisible to the crate's validation. Walk the keys ourselves.
fn check_duplicate_names(json: &[u8]) -> Result<(), SafetensorsError> {
    struct Keys;
    impl<'de> Visitor<'de> for Keys {
        type Value = Option<String>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Option<String>, A::Error> {
            let mut seen = std::collections::HashSet::new();
            while let Some(key) = map.next_key::<String>()? {
                map.next_value::<IgnoredAny>()?;
                if !seen.insert(key.clone()) {
                    return Ok(Some(key));
                }
            }
            Ok(None)
        }
    }
    let mut de = serde_json::Deserializer::from_slice(json);
    match de.deserialize_map(Keys) {
        Ok(Some(name)) => Err(SafetensorsError::DuplicateTensor { name }),
        Ok(None) => Ok(()),
        Err(e) => Err(SafetensorsError::InvalidHeader { reason: e.to_string() }),
    }
}
