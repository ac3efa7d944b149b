//! GGUF (llama.cpp) header parsing and chunk layout.
//!
//! The verifier hashes a GGUF file as one header chunk (every byte before the
//! tensor data section, alignment padding included) followed by one chunk per
//! tensor in file order, each chunk carrying the padding that follows its
//! tensor. This module derives that layout from the header alone.
//!
//! The rules follow the reference readers (llama.cpp `ggml/src/gguf.cpp` and
//! gguf-py `GGUFReader`), so that a file we accept is one they would load the
//! same way: a second, different interpretation of the same bytes would let a
//! signature cover something other than what the runtime uses. Where the two
//! readers disagree we take the stricter rule; where both are lax and the
//! laxness creates ambiguity we are stricter still:
//!
//! * only little-endian GGUF v2 and v3 (v1 used 32-bit counts; big-endian
//!   files are refused with a dedicated error rather than mis-parsed);
//! * metadata keys must be non-empty, unique and UTF-8; tensor names must be
//!   unique, UTF-8, shorter than 64 bytes (ggml's `GGML_MAX_NAME`) and free of
//!   NUL bytes (ggml stores names as C strings, so `a\0b` would load as `a`);
//! * bool values must be 0 or 1 (llama.cpp reads any non-zero byte as true,
//!   which would let two different files mean the same thing);
//! * `general.alignment` must be a scalar u32 that is a non-zero power of two;
//! * each tensor's relative offset must equal the running sum of the previous
//!   tensors' sizes, each padded to the alignment (llama.cpp's rule), which
//!   forbids holes, overlaps and out-of-order data;
//! * the file must end at or after the last tensor's data and at or before its
//!   padded end, so no unsigned bytes can trail the last tensor.
//!
//! The input is untrusted. Every count read from the file is checked against
//! the bytes that can actually hold it before it drives a loop or an
//! allocation, every arithmetic on file values is checked, and every loop
//! iteration consumes bytes of the prefix, so the work is bounded by the
//! prefix length.

use std::collections::HashSet;

/// Alignment of the tensor data when `general.alignment` is absent.
pub(crate) const DEFAULT_ALIGNMENT: u64 = 32;

const MAGIC: [u8; 4] = *b"GGUF";
/// gguf-py writes this magic for big-endian files.
const MAGIC_BIG_ENDIAN: [u8; 4] = *b"FUGG";
const ALIGNMENT_KEY: &str = "general.alignment";
/// Largest header (metadata and tensor infos, up to the data) we parse. Headers hold the
/// tokenizer vocabulary; real ones reach tens of MB. The header chunk is held in memory
/// while it is parsed and hashed, so this bounds memory too (spec/format.md §4.1).
pub(crate) const MAX_HEADER_BYTES: u64 = 512 << 20;

/// Real models have at most tens of thousands of tensors; the cap keeps the
/// tensor table's memory small even for a huge file of tiny tensor infos.
const MAX_TENSORS: u64 = 1 << 20;
/// Real models have at most a few hundred metadata pairs.
const MAX_KV: u64 = 1 << 20;
/// llama.cpp's `GGUF_MAX_STRING_LENGTH`; values are skipped, not copied, so a
/// lower cap would only reject files llama.cpp loads.
const MAX_STRING_LEN: u64 = 1 << 30;
/// Keys are copied (for the duplicate check); real keys are well under 100
/// bytes, so a tight cap bounds that copy without rejecting real files.
const MAX_KEY_LEN: u64 = 1 << 16;
/// llama.cpp's `GGUF_MAX_ARRAY_ELEMENTS`.
const MAX_ARRAY_LEN: u64 = 1 << 30;
/// llama.cpp refuses nested arrays outright and gguf-py accepts any depth;
/// we accept a little nesting so gguf-py-written files still parse, but bound
/// the recursion.
const MAX_ARRAY_DEPTH: u32 = 4;
/// ggml's `GGML_MAX_DIMS`.
const MAX_DIMS: u32 = 4;
/// ggml's `GGML_MAX_NAME` (64) minus the C string terminator.
const MAX_TENSOR_NAME_LEN: u64 = 63;

/// Smallest possible encoded metadata pair: key length, a one-byte key, the
/// value type and a one-byte value. Used to refuse counts the file cannot hold.
const MIN_KV_BYTES: u64 = 8 + 1 + 4 + 1;
/// Smallest possible tensor info: name length, empty name, `n_dims` = 0,
/// type, offset.
const MIN_TENSOR_INFO_BYTES: u64 = 8 + 4 + 4 + 8;
/// Smallest possible array element that is itself an array: type and count.
const MIN_NESTED_ARRAY_BYTES: u64 = 4 + 8;
const STRING_LEN_BYTES: u64 = 8;

// GGUF metadata value types.
const T_U8: u32 = 0;
const T_I8: u32 = 1;
const T_U16: u32 = 2;
const T_I16: u32 = 3;
const T_U32: u32 = 4;
const T_I32: u32 = 5;
const T_F32: u32 = 6;
const T_BOOL: u32 = 7;
const T_STRING: u32 = 8;
const T_ARRAY: u32 = 9;
const T_U64: u32 = 10;
const T_I64: u32 = 11;
const T_F64: u32 = 12;

/// Layout of a GGUF file: the header chunk is `[0, data_start)`, then each
/// tensor's chunk is `[offset, offset + chunk_len)`, and together they tile
/// the file exactly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GgufLayout {
    pub version: u32,
    pub alignment: u64,
    /// Start of the data section = length of the header chunk (tensor-info end rounded up to alignment).
    /// When the file has zero tensors and ends before that padded offset, this is file_size.
    pub data_start: u64,
    /// In file (offset) order.
    pub tensors: Vec<GgufTensor>,
}

/// One tensor and the chunk that holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GgufTensor {
    pub name: String,
    pub ggml_type: u32,
    /// As stored: fastest-varying dimension first; at most four entries.
    pub dims: Vec<u64>,
    /// absolute offset of the tensor's first byte in the file
    pub offset: u64,
    /// bytes of tensor data (without padding)
    pub data_len: u64,
    /// chunk length = data_len + padding up to the next tensor (or to end of file for the last tensor)
    pub chunk_len: u64,
}

/// Why a GGUF header was refused (or, for [`GgufError::NeedMore`], why more
/// of the file is needed). Offsets are absolute byte offsets in the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GgufError {
    /// The file does not start with the GGUF magic.
    #[error("not a GGUF file: magic bytes are {found:02x?}, expected \"GGUF\"")]
    BadMagic {
        /// The first four bytes of the file.
        found: [u8; 4],
    },
    /// The file is a big-endian GGUF (magic `FUGG`, or a version field that
    /// only makes sense byte-swapped); only little-endian files are supported.
    #[error("big-endian GGUF file (version {version} when read big-endian); only little-endian GGUF is supported")]
    BigEndian {
        /// The version as read big-endian.
        version: u32,
    },
    /// The GGUF version is not 2 or 3.
    #[error("unsupported GGUF version {version} (supported: 2 and 3)")]
    UnsupportedVersion {
        /// The version field as read little-endian.
        version: u32,
    },
    /// The file ends before a field that the header says is there.
    #[error("file ends before the {what} at offset {offset}")]
    Truncated {
        /// The field that does not fit.
        what: &'static str,
        /// Where the field starts.
        offset: u64,
    },
    /// The header continues past the prefix given; retry with at least
    /// `at_least` bytes of the file.
    #[error("need at least the first {at_least} bytes of the file to parse the GGUF header")]
    NeedMore {
        /// Minimum prefix length for the next attempt; always greater than
        /// the prefix given and at most the file size.
        at_least: u64,
    },
    /// A key or tensor name is not valid UTF-8.
    #[error("the {what} at offset {offset} is not valid UTF-8")]
    InvalidUtf8 {
        /// Which kind of string.
        what: &'static str,
        /// Where the string's bytes start.
        offset: u64,
    },
    /// A metadata key is the empty string.
    #[error("the metadata key at offset {offset} is empty")]
    EmptyKey {
        /// Where the key's length field starts.
        offset: u64,
    },
    /// A metadata value (or array element) type is not one of the 13 GGUF types.
    #[error("metadata key `{key}` has unknown value type {type_id} at offset {offset}")]
    UnknownValueType {
        /// The key whose value is being read.
        key: String,
        /// The type id found.
        type_id: u32,
        /// Where the type id is.
        offset: u64,
    },
    /// A bool value is neither 0 nor 1.
    #[error("metadata key `{key}` has bool byte {value:#04x} at offset {offset}; must be 0 or 1")]
    InvalidBool {
        /// The key whose value is being read.
        key: String,
        /// The byte found.
        value: u8,
        /// Where the byte is.
        offset: u64,
    },
    /// The same metadata key appears twice.
    #[error("duplicate metadata key `{key}` at offset {offset}")]
    DuplicateKey {
        /// The repeated key.
        key: String,
        /// Where the second occurrence starts.
        offset: u64,
    },
    /// Two tensors have the same name.
    #[error("duplicate tensor name `{name}` at offset {offset}")]
    DuplicateTensor {
        /// The repeated name.
        name: String,
        /// Where the second occurrence starts.
        offset: u64,
    },
    /// `general.alignment` is zero or not a power of two.
    #[error("general.alignment is {value}; it must be a non-zero power of two")]
    BadAlignment {
        /// The alignment found.
        value: u32,
    },
    /// `general.alignment` is not a scalar u32.
    #[error("general.alignment has value type {type_id}; it must be a u32 (type 4)")]
    BadAlignmentType {
        /// The value type found (9 = array).
        type_id: u32,
    },
    /// A tensor name is unusable by ggml.
    #[error("tensor name {name:?} at offset {offset} {reason}")]
    BadTensorName {
        /// The name (lossily decoded if needed).
        name: String,
        /// Where the name's length field starts.
        offset: u64,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A tensor has more dimensions than ggml supports.
    #[error("tensor `{name}` has {n_dims} dimensions; at most 4 are allowed")]
    TooManyDims {
        /// The tensor.
        name: String,
        /// The dimension count found.
        n_dims: u32,
    },
    /// A dimension does not fit ggml's signed 64-bit element counts.
    #[error("tensor `{name}` dimension {index} is {value}, above i64::MAX")]
    DimOutOfRange {
        /// The tensor.
        name: String,
        /// Which dimension (0 = fastest-varying).
        index: u32,
        /// The value found.
        value: u64,
    },
    /// The tensor's ggml type is unknown to this verifier or was removed from ggml.
    #[error("tensor `{name}` has unknown or removed ggml type {type_id}")]
    UnknownTensorType {
        /// The tensor.
        name: String,
        /// The type id found.
        type_id: u32,
    },
    /// The first dimension is not a whole number of the type's blocks.
    #[error("tensor `{name}` has {ne0} elements per row, not a multiple of its type's block size {block_size}")]
    BlockSizeMismatch {
        /// The tensor.
        name: String,
        /// The first dimension.
        ne0: u64,
        /// The type's block size in elements.
        block_size: u64,
    },
    /// The tensor's element count, byte size, padded size or position overflows.
    #[error("tensor `{name}`: element count, byte size or offset overflows")]
    SizeOverflow {
        /// The tensor.
        name: String,
    },
    /// A tensor's data offset is not a multiple of the alignment.
    #[error(
        "tensor `{name}` has data offset {offset} (relative to the data section), not a multiple of the alignment {alignment}"
    )]
    MisalignedOffset {
        /// The tensor.
        name: String,
        /// The offset found, relative to the data section.
        offset: u64,
        /// The file's alignment.
        alignment: u64,
    },
    /// A tensor's data offset is not where packing the previous tensors puts it.
    #[error(
        "tensor `{name}` has data offset {found} (relative to the data section), expected {expected}: tensors must be stored in order, back to back, each padded to the alignment"
    )]
    OffsetMismatch {
        /// The tensor.
        name: String,
        /// The running sum of the previous tensors' padded sizes.
        expected: u64,
        /// The offset found.
        found: u64,
    },
    /// A tensor's data extends past the end of the file.
    #[error("tensor `{name}` data ends at byte {end}, past the end of the {file_size}-byte file")]
    DataPastEnd {
        /// The tensor.
        name: String,
        /// Absolute end offset of its data.
        end: u64,
        /// The file size.
        file_size: u64,
    },
    /// The file continues past the padded end of the GGUF content.
    #[error("the GGUF content ends at byte {expected_end} but the file has {file_size} bytes")]
    TrailingBytes {
        /// Where the file should end at the latest.
        expected_end: u64,
        /// The file size.
        file_size: u64,
    },
    /// A count or length is beyond what this verifier accepts.
    #[error("the {what} is {value}, above the limit of {limit}")]
    LimitExceeded {
        /// What was counted.
        what: &'static str,
        /// The value found.
        value: u64,
        /// The limit.
        limit: u64,
    },
}

/// Parse the header of a GGUF file and return its chunk layout.
///
/// The caller passes `prefix` = the first prefix.len() bytes of the file, and the file's total size.
/// If parsing needs bytes beyond the prefix but within the file, return Err(GgufError::NeedMore { at_least })
/// (at_least = how many prefix bytes are needed at minimum; caller will retry with a bigger prefix).
///
/// A prefix longer than `file_size` is treated as if cut at `file_size`.
pub(crate) fn parse_header(prefix: &[u8], file_size: u64) -> Result<GgufLayout, GgufError> {
    let mut r = Reader::new(prefix, file_size);

    let magic: [u8; 4] = r.array("magic")?;
    if magic == MAGIC_BIG_ENDIAN {
        let version = u32::from_be_bytes(r.array("version")?);
        return Err(GgufError::BigEndian { version });
    }
    if magic != MAGIC {
        return Err(GgufError::BadMagic { found: magic });
    }
    let version = r.u32("version")?;
    // A big-endian v2/v3 file reads as 0x0N000000 little-endian; llama.cpp
    // detects it the same way (low 16 bits zero), after ruling out 0.
    if version != 0 && version & 0xFFFF == 0 {
        return Err(GgufError::BigEndian {
            version: version.swap_bytes(),
        });
    }
    if !matches!(version, 2 | 3) {
        return Err(GgufError::UnsupportedVersion { version });
    }

    let tensor_count = r.u64("tensor count")?;
    let kv_count = r.u64("metadata key-value count")?;
    check_limit("tensor count", tensor_count, MAX_TENSORS)?;
    check_limit("metadata key-value count", kv_count, MAX_KV)?;
    // Refusing here stops a tiny file from claiming a million entries and
    // making us walk (or ask the caller for) bytes it does not have.
    let min_rest = kv_count
        .checked_mul(MIN_KV_BYTES)
        .zip(tensor_count.checked_mul(MIN_TENSOR_INFO_BYTES))
        .and_then(|(kv, ti)| kv.checked_add(ti));
    match min_rest {
        Some(n) if n <= r.remaining_in_file() => {}
        _ => {
            return Err(GgufError::Truncated {
                what: "metadata and tensor infos",
                offset: r.pos,
            })
        }
    }

    let alignment = read_metadata(&mut r, kv_count)?;
    let mut tensors = read_tensor_infos(&mut r, tensor_count, alignment)?;
    let info_end = r.pos;

    let data_start = place_tensors(&mut tensors, info_end, alignment, file_size)?;
    Ok(GgufLayout {
        version,
        alignment,
        data_start,
        tensors,
    })
}

/// Parses the header of a file of `size` bytes, asking `read_prefix(n)` for the first `n`
/// bytes and growing `n` geometrically while the parser needs more. Returns the layout and
/// the prefix it was parsed from. The one place that drives [`parse_header`]'s `NeedMore`.
pub(crate) fn parse_growing<E: From<GgufError>>(
    size: u64,
    mut read_prefix: impl FnMut(u64) -> Result<Vec<u8>, E>,
) -> Result<(GgufLayout, Vec<u8>), E> {
    // Most headers fit in 1 MiB; grow geometrically when the parser asks for more, up
    // to the header limit (which the parser enforces on every offset it reaches).
    let mut want = size.min(1 << 20);
    loop {
        let prefix = read_prefix(want)?;
        match parse_header(&prefix, size) {
            Ok(parsed) => return Ok((parsed, prefix)),
            Err(GgufError::NeedMore { at_least }) => {
                let next = at_least.max(want.saturating_mul(2)).min(size).min(MAX_HEADER_BYTES);
                if at_least > next || next <= want {
                    return Err(GgufError::LimitExceeded {
                        what: "header size",
                        value: at_least,
                        limit: MAX_HEADER_BYTES,
                    }
                    .into());
                }
                want = next;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Read the metadata pairs; returns the data alignment they declare.
fn read_metadata(r: &mut Reader<'_>, kv_count: u64) -> Result<u64, GgufError> {
    let mut alignment = DEFAULT_ALIGNMENT;
    let mut keys: HashSet<String> = HashSet::new();
    for _ in 0..kv_count {
        let key_offset = r.pos;
        let key = r.string("metadata key", MAX_KEY_LEN, "metadata key length")?;
        if key.is_empty() {
            return Err(GgufError::EmptyKey { offset: key_offset });
        }
        if keys.contains(&key) {
            return Err(GgufError::DuplicateKey {
                key,
                offset: key_offset,
            });
        }
        let type_offset = r.pos;
        let type_id = r.u32("metadata value type")?;
        if key == ALIGNMENT_KEY {
            if type_id != T_U32 {
                if !is_value_type(type_id) {
                    return Err(GgufError::UnknownValueType {
                        key,
                        type_id,
                        offset: type_offset,
                    });
                }
                return Err(GgufError::BadAlignmentType { type_id });
            }
            let value = r.u32("general.alignment value")?;
            if !value.is_power_of_two() {
                return Err(GgufError::BadAlignment { value });
            }
            alignment = u64::from(value);
        } else {
            skip_value(r, &key, type_id, type_offset, 0)?;
        }
        keys.insert(key);
    }
    Ok(alignment)
}

fn is_value_type(type_id: u32) -> bool {
    type_id <= T_F64
}

/// Encoded size of a fixed-size metadata type, bool excluded because its
/// bytes must be inspected.
fn fixed_value_size(type_id: u32) -> Option<u64> {
    match type_id {
        T_U8 | T_I8 => Some(1),
        T_U16 | T_I16 => Some(2),
        T_U32 | T_I32 | T_F32 => Some(4),
        T_U64 | T_I64 | T_F64 => Some(8),
        _ => None,
    }
}

/// Step over one metadata value, validating what a reference reader would
/// reject. `depth` counts the arrays enclosing this value.
fn skip_value(r: &mut Reader<'_>, key: &str, type_id: u32, type_offset: u64, depth: u32) -> Result<(), GgufError> {
    if let Some(size) = fixed_value_size(type_id) {
        return r.skip(size, "metadata value");
    }
    match type_id {
        T_BOOL => {
            let offset = r.pos;
            let value = r.u8("bool value")?;
            check_bool(key, value, offset)
        }
        T_STRING => {
            let len = r.u64("string length")?;
            check_limit("string length", len, MAX_STRING_LEN)?;
            r.skip(len, "string bytes")
        }
        T_ARRAY => skip_array(r, key, depth),
        _ => Err(GgufError::UnknownValueType {
            key: key.to_owned(),
            type_id,
            offset: type_offset,
        }),
    }
}

fn skip_array(r: &mut Reader<'_>, key: &str, depth: u32) -> Result<(), GgufError> {
    let level = depth.saturating_add(1);
    if level > MAX_ARRAY_DEPTH {
        return Err(GgufError::LimitExceeded {
            what: "array nesting depth",
            value: u64::from(level),
            limit: u64::from(MAX_ARRAY_DEPTH),
        });
    }
    let elem_type_offset = r.pos;
    let elem_type = r.u32("array element type")?;
    if !is_value_type(elem_type) {
        return Err(GgufError::UnknownValueType {
            key: key.to_owned(),
            type_id: elem_type,
            offset: elem_type_offset,
        });
    }
    let len = r.u64("array length")?;
    check_limit("array length", len, MAX_ARRAY_LEN)?;

    if let Some(size) = fixed_value_size(elem_type) {
        return r.skip_n(len, size, "array elements");
    }
    match elem_type {
        T_BOOL => {
            let start = r.pos;
            let bytes = r.take(len, "bool array elements")?;
            match bytes.iter().position(|&b| b > 1) {
                None => Ok(()),
                Some(i) => check_bool(key, bytes[i], start.saturating_add(i as u64)),
            }
        }
        T_STRING => {
            // Refuse up front a count the rest of the file cannot hold, so
            // the loop below never outlives the bytes.
            r.ensure_fits_n(len, STRING_LEN_BYTES, "array elements")?;
            for _ in 0..len {
                let n = r.u64("string length")?;
                check_limit("string length", n, MAX_STRING_LEN)?;
                r.skip(n, "string bytes")?;
            }
            Ok(())
        }
        T_ARRAY => {
            r.ensure_fits_n(len, MIN_NESTED_ARRAY_BYTES, "array elements")?;
            for _ in 0..len {
                skip_array(r, key, level)?;
            }
            Ok(())
        }
        // Every valid type is fixed-size, bool, string or array.
        _ => Err(GgufError::UnknownValueType {
            key: key.to_owned(),
            type_id: elem_type,
            offset: elem_type_offset,
        }),
    }
}

fn check_bool(key: &str, value: u8, offset: u64) -> Result<(), GgufError> {
    if value > 1 {
        return Err(GgufError::InvalidBool {
            key: key.to_owned(),
            value,
            offset,
        });
    }
    Ok(())
}

fn check_limit(what: &'static str, value: u64, limit: u64) -> Result<(), GgufError> {
    if value > limit {
        return Err(GgufError::LimitExceeded { what, value, limit });
    }
    Ok(())
}

/// Read the tensor infos and check their offsets against the packing rule.
/// Offsets in the result are still relative to the data section and
/// `chunk_len` is the padded size; [`place_tensors`] makes them final.
fn read_tensor_infos(r: &mut Reader<'_>, tensor_count: u64, alignment: u64) -> Result<Vec<GgufTensor>, GgufError> {
    // Size the table by what the prefix could hold, not by the claimed count.
    let fit = r.remaining_in_prefix() / MIN_TENSOR_INFO_BYTES + 1;
    let capacity = usize::try_from(tensor_count.min(fit)).unwrap_or(0);
    let mut tensors = Vec::with_capacity(capacity);
    let mut names: HashSet<String> = HashSet::new();
    let mut expected_offset: u64 = 0;

    for _ in 0..tensor_count {
        let name_offset = r.pos;
        let name = read_tensor_name(r)?;
        if names.contains(&name) {
            return Err(GgufError::DuplicateTensor {
                name,
                offset: name_offset,
            });
        }

        let n_dims = r.u32("tensor dimension count")?;
        if n_dims > MAX_DIMS {
            return Err(GgufError::TooManyDims { name, n_dims });
        }
        let mut dims = Vec::with_capacity(MAX_DIMS as usize);
        for index in 0..n_dims {
            let value = r.u64("tensor dimension")?;
            // ggml holds dimensions as int64_t.
            if value > i64::MAX as u64 {
                return Err(GgufError::DimOutOfRange { name, index, value });
            }
            dims.push(value);
        }

        let ggml_type = r.u32("tensor type")?;
        let Some((block_size, type_size)) = ggml_type_layout(ggml_type) else {
            return Err(GgufError::UnknownTensorType {
                name,
                type_id: ggml_type,
            });
        };
        let ne0 = dims.first().copied().unwrap_or(1);
        if ne0 % block_size != 0 {
            return Err(GgufError::BlockSizeMismatch { name, ne0, block_size });
        }
        let Some(data_len) = tensor_bytes(&dims, block_size, type_size) else {
            return Err(GgufError::SizeOverflow { name });
        };

        let offset = r.u64("tensor data offset")?;
        if offset % alignment != 0 {
            return Err(GgufError::MisalignedOffset {
                name,
                offset,
                alignment,
            });
        }
        if offset != expected_offset {
            return Err(GgufError::OffsetMismatch {
                name,
                expected: expected_offset,
                found: offset,
            });
        }
        let Some(padded) = align_up(data_len, alignment) else {
            return Err(GgufError::SizeOverflow { name });
        };
        let Some(next) = expected_offset.checked_add(padded) else {
            return Err(GgufError::SizeOverflow { name });
        };
        expected_offset = next;

        names.insert(name.clone());
        tensors.push(GgufTensor {
            name,
            ggml_type,
            dims,
            offset,
            data_len,
            chunk_len: padded,
        });
    }
    Ok(tensors)
}

fn read_tensor_name(r: &mut Reader<'_>) -> Result<String, GgufError> {
    let offset = r.pos;
    let len = r.u64("tensor name length")?;
    check_limit("tensor name length", len, MAX_TENSOR_NAME_LEN)?;
    let bytes_offset = r.pos;
    let bytes = r.take(len, "tensor name")?;
    let Ok(name) = std::str::from_utf8(bytes) else {
        return Err(GgufError::InvalidUtf8 {
            what: "tensor name",
            offset: bytes_offset,
        });
    };
    if name.contains('\0') {
        return Err(GgufError::BadTensorName {
            name: name.to_owned(),
            offset,
            reason: "contains a NUL byte",
        });
    }
    Ok(name.to_owned())
}

/// Bytes of a contiguous tensor, or `None` when ggml could not represent it.
fn tensor_bytes(dims: &[u64], block_size: u64, type_size: u64) -> Option<u64> {
    if dims.contains(&0) {
        return Some(0);
    }
    let elements = dims.iter().try_fold(1u64, |acc, &d| acc.checked_mul(d))?;
    // ggml counts elements in int64_t and refuses counts that reach its max.
    if elements >= i64::MAX as u64 {
        return None;
    }
    // The caller checked dims[0] % block_size == 0, so this division is exact.
    (elements / block_size).checked_mul(type_size)
}

fn align_up(value: u64, alignment: u64) -> Option<u64> {
    let mask = alignment.checked_sub(1)?;
    Some(value.checked_add(mask)? & !mask)
}

/// Turn relative offsets into absolute ones, check the tensors against the
/// file's end, and size the chunks so they tile the file. Returns the data
/// section's start.
fn place_tensors(tensors: &mut [GgufTensor], info_end: u64, alignment: u64, file_size: u64) -> Result<u64, GgufError> {
    let padded_info_end = align_up(info_end, alignment);
    if tensors.is_empty() {
        // llama.cpp puts the (empty) data section right after the tensor
        // infos while gguf-py pads first, so both ends are valid; anything
        // past the padding would be unsigned trailing data.
        return match padded_info_end {
            Some(end) if file_size > end => Err(GgufError::TrailingBytes {
                expected_end: end,
                file_size,
            }),
            _ => Ok(file_size),
        };
    }
    let data_start = match padded_info_end {
        Some(start) if start <= file_size => start,
        _ => {
            return Err(GgufError::Truncated {
                what: "padding before the tensor data",
                offset: info_end,
            })
        }
    };

    let last = tensors.len() - 1;
    for (i, t) in tensors.iter_mut().enumerate() {
        let Some(start) = data_start.checked_add(t.offset) else {
            return Err(GgufError::SizeOverflow { name: t.name.clone() });
        };
        let Some(end) = start.checked_add(t.data_len) else {
            return Err(GgufError::SizeOverflow { name: t.name.clone() });
        };
        if end > file_size {
            return Err(GgufError::DataPastEnd {
                name: t.name.clone(),
                end,
                file_size,
            });
        }
        t.offset = start;
        if i == last {
            // The last tensor's padding may be cut short (llama.cpp only
            // needs its data in the file), but nothing may follow it.
            let padded_end = start.saturating_add(t.chunk_len);
            if file_size > padded_end {
                return Err(GgufError::TrailingBytes {
                    expected_end: padded_end,
                    file_size,
                });
            }
            // end <= file_size was checked above, so this cannot fail.
            t.chunk_len = file_size.checked_sub(start).ok_or(GgufError::DataPastEnd {
                name: t.name.clone(),
                end,
                file_size,
            })?;
        }
    }
    Ok(data_start)
}

/// `(block size in elements, bytes per block)` for each ggml type id that can
/// appear in a GGUF file, matching gguf-py's `GGML_QUANT_SIZES`. Ids 4, 5,
/// 31–33 and 36–38 were removed from ggml and are refused like unknown ids.
fn ggml_type_layout(type_id: u32) -> Option<(u64, u64)> {
    const QK_K: u64 = 256;
    let layout = match type_id {
        0 => (1, 4),                                           // F32
        1 => (1, 2),                                           // F16
        2 => (32, 2 + 16),                                     // Q4_0
        3 => (32, 2 + 2 + 16),                                 // Q4_1
        6 => (32, 2 + 4 + 16),                                 // Q5_0
        7 => (32, 2 + 2 + 4 + 16),                             // Q5_1
        8 => (32, 2 + 32),                                     // Q8_0
        9 => (32, 4 + 4 + 32),                                 // Q8_1
        10 => (QK_K, 2 + 2 + QK_K / 16 + QK_K / 4),            // Q2_K
        11 => (QK_K, 2 + QK_K / 4 + QK_K / 8 + 12),            // Q3_K
        12 => (QK_K, 2 + 2 + QK_K / 2 + 12),                   // Q4_K
        13 => (QK_K, 2 + 2 + QK_K / 2 + QK_K / 8 + 12),        // Q5_K
        14 => (QK_K, 2 + QK_K / 2 + QK_K / 4 + QK_K / 16),     // Q6_K
        15 => (QK_K, 4 + QK_K + QK_K / 8),                     // Q8_K
        16 => (QK_K, 2 + QK_K / 4),                            // IQ2_XXS
        17 => (QK_K, 2 + QK_K / 4 + QK_K / 32),                // IQ2_XS
        18 => (QK_K, 2 + QK_K / 4 + QK_K / 8),                 // IQ3_XXS
        19 => (QK_K, 2 + QK_K / 8 + QK_K / 16),                // IQ1_S
        20 => (32, 2 + 16),                                    // IQ4_NL
        21 => (QK_K, 2 + QK_K / 4 + QK_K / 8 + QK_K / 32 + 4), // IQ3_S
        22 => (QK_K, 2 + QK_K / 4 + QK_K / 16),                // IQ2_S
        23 => (QK_K, 2 + 2 + QK_K / 2 + QK_K / 64),            // IQ4_XS
        24 => (1, 1),                                          // I8
        25 => (1, 2),                                          // I16
        26 => (1, 4),                                          // I32
        27 => (1, 8),                                          // I64
        28 => (1, 8),                                          // F64
        29 => (QK_K, QK_K / 8 + QK_K / 16 + QK_K / 32),        // IQ1_M
        30 => (1, 2),                                          // BF16
        34 => (QK_K, 2 + 4 * 13),                              // TQ1_0
        35 => (QK_K, 2 + 64),                                  // TQ2_0
        39 => (32, 1 + 16),                                    // MXFP4
        40 => (64, 4 + 32),                                    // NVFP4
        41 => (128, 2 + 16),                                   // Q1_0
        _ => return None,
    };
    Some(layout)
}

/// Cursor over the file prefix that tells apart "the file is too short"
/// (a definitive error) from "the prefix is too short" (ask for more).
#[derive(Debug)]
struct Reader<'a> {
    buf: &'a [u8],
    pos: u64,
    file_size: u64,
}

impl<'a> Reader<'a> {
    fn new(prefix: &'a [u8], file_size: u64) -> Self {
        let usable = usize::try_from(file_size).map_or(prefix.len(), |n| n.min(prefix.len()));
        Reader {
            buf: prefix.get(..usable).unwrap_or(prefix),
            pos: 0,
            file_size,
        }
    }

    fn buf_len(&self) -> u64 {
        self.buf.len() as u64
    }

    fn remaining_in_file(&self) -> u64 {
        self.file_size.saturating_sub(self.pos)
    }

    fn remaining_in_prefix(&self) -> u64 {
        self.buf_len().saturating_sub(self.pos)
    }

    /// End offset of a field of `len` bytes at the cursor, if the file holds it and it
    /// ends within the header size limit. Skipped values (strings, arrays) move the
    /// cursor without being read, so this is where the limit applies to them too: a
    /// header that claims gigabytes of metadata is refused before anything is copied.
    fn end_of(&self, len: u64, what: &'static str) -> Result<u64, GgufError> {
        match self.pos.checked_add(len) {
            Some(end) if end <= self.file_size && end > MAX_HEADER_BYTES => Err(GgufError::LimitExceeded {
                what: "header size",
                value: end,
                limit: MAX_HEADER_BYTES,
            }),
            Some(end) if end <= self.file_size => Ok(end),
            _ => Err(GgufError::Truncated { what, offset: self.pos }),
        }
    }

    /// Whether `count` items of at least `size` bytes each can fit in the
    /// rest of the file.
    fn ensure_fits_n(&self, count: u64, size: u64, what: &'static str) -> Result<(), GgufError> {
        let len = count
            .checked_mul(size)
            .ok_or(GgufError::Truncated { what, offset: self.pos })?;
        self.end_of(len, what).map(|_| ())
    }

    fn skip_n(&mut self, count: u64, size: u64, what: &'static str) -> Result<(), GgufError> {
        self.ensure_fits_n(count, size, what)?;
        self.pos = self.pos.saturating_add(count.saturating_mul(size));
        Ok(())
    }

    /// Advance without looking at the bytes, so skipped values need not be
    /// in the prefix.
    fn skip(&mut self, len: u64, what: &'static str) -> Result<(), GgufError> {
        self.pos = self.end_of(len, what)?;
        Ok(())
    }

    fn take(&mut self, len: u64, what: &'static str) -> Result<&'a [u8], GgufError> {
        let end = self.end_of(len, what)?;
        let need_more = GgufError::NeedMore { at_least: end };
        if end > self.buf_len() {
            return Err(need_more);
        }
        let (Ok(start), Ok(stop)) = (usize::try_from(self.pos), usize::try_from(end)) else {
            return Err(need_more);
        };
        let bytes = self.buf.get(start..stop).ok_or(need_more)?;
        self.pos = end;
        Ok(bytes)
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], GgufError> {
        let offset = self.pos;
        let bytes = self.take(N as u64, what)?;
        <[u8; N]>::try_from(bytes).map_err(|_| GgufError::Truncated { what, offset })
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, GgufError> {
        Ok(self.array::<1>(what)?[0])
    }

    fn u32(&mut self, what: &'static str) -> Result<u32, GgufError> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    fn u64(&mut self, what: &'static str) -> Result<u64, GgufError> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    /// A length-prefixed UTF-8 string that we keep (keys).
    fn string(&mut self, what: &'static str, max_len: u64, len_what: &'static str) -> Result<String, GgufError> {
        let len = self.u64(len_what)?;
        check_limit(len_what, len, max_len)?;
        let offset = self.pos;
        let bytes = self.take(len, what)?;
        match std::str::from_utf8(bytes) {
            Ok(s) => Ok(s.to_owned()),
            Err(_) => Err(GgufError::InvalidUtf8 { what, offset }),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a test fails by panicking")]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const TINY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/gguf/tiny-llama.gguf");
    const TINY_ALIGN64: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/fixtures/gguf/tiny-llama-align64.gguf"
    );

    const FIXTURE_NAMES: [&str; 8] = [
        "token_embd.weight",
        "blk.0.attn_q.weight",
        "blk.0.attn_norm.weight",
        "blk.0.ffn_up.weight",
        "blk.1.attn_q.weight",
        "blk.1.attn_norm.weight",
        "blk.1.ffn_up.weight",
        "output_norm.weight",
    ];

    fn read(path: &str) -> Vec<u8> {
        std::fs::read(path).unwrap_or_else(|e| panic!("reading fixture {path}: {e}"))
    }

    fn parse_all(bytes: &[u8]) -> Result<GgufLayout, GgufError> {
        parse_header(bytes, bytes.len() as u64)
    }

    /// The invariant the caller relies on: header chunk then tensor chunks,
    /// contiguous, covering the whole file.
    fn assert_tiles(layout: &GgufLayout, file_size: u64) {
        let mut pos = layout.data_start;
        assert!(pos <= file_size);
        for t in &layout.tensors {
            assert_eq!(
                t.offset, pos,
                "tensor {} does not start where the previous chunk ends",
                t.name
            );
            assert!(t.chunk_len >= t.data_len, "tensor {} chunk shorter than data", t.name);
            assert_eq!(t.offset % layout.alignment, 0);
            pos = t.offset.checked_add(t.chunk_len).unwrap();
        }
        assert_eq!(pos, file_size, "chunks do not end at the end of the file");
    }

    // ---------------------------------------------------------------- fixtures

    fn check_fixture(path: &str, alignment: u64, header_len: u64) {
        let bytes = read(path);
        let layout = parse_all(&bytes).unwrap();
        assert_eq!(layout.version, 3);
        assert_eq!(layout.alignment, alignment);
        assert_eq!(layout.data_start, header_len);
        assert_eq!(layout.data_start % alignment, 0);
        let names: Vec<&str> = layout.tensors.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, FIXTURE_NAMES);
        assert_tiles(&layout, bytes.len() as u64);
        let total: u64 = layout.data_start + layout.tensors.iter().map(|t| t.chunk_len).sum::<u64>();
        assert_eq!(total, bytes.len() as u64);

        let by_name = |n: &str| layout.tensors.iter().find(|t| t.name == n).unwrap();
        let embd = by_name("token_embd.weight");
        assert_eq!(
            (embd.ggml_type, embd.dims.as_slice(), embd.data_len),
            (0, &[64, 256][..], 65536)
        );
        assert_eq!(embd.offset, header_len);
        let q = by_name("blk.0.attn_q.weight");
        assert_eq!((q.ggml_type, q.data_len, q.chunk_len), (1, 8192, 8192));
        let up = by_name("blk.0.ffn_up.weight");
        // Q8_0: 64*128 elements in blocks of 32, 34 bytes per block.
        assert_eq!((up.ggml_type, up.data_len), (8, 64 * 128 / 32 * 34));
        let norm = by_name("output_norm.weight");
        assert_eq!(norm.dims, vec![7]);
        assert_eq!(norm.data_len, 28);
        assert_eq!(norm.chunk_len, alignment);
        assert_eq!(norm.offset + norm.chunk_len, bytes.len() as u64);
    }

    #[test]
    fn fixture_default_alignment() {
        // Tensor infos end at 1070, padded to 1088.
        check_fixture(TINY, 32, 1088);
    }

    #[test]
    fn fixture_alignment_64() {
        // Tensor infos end at 1103, padded to 1152.
        check_fixture(TINY_ALIGN64, 64, 1152);
    }

    #[test]
    fn fixture_needs_more_then_succeeds() {
        let bytes = read(TINY);
        let size = bytes.len() as u64;
        let full = parse_all(&bytes).unwrap();

        match parse_header(&bytes[..64], size) {
            Err(GgufError::NeedMore { at_least }) => assert!(at_least > 64 && at_least <= size),
            other => panic!("expected NeedMore, got {other:?}"),
        }
        // What a caller does: grow the prefix until the parse settles.
        let mut len = 16usize;
        let mut rounds = 0;
        let layout = loop {
            rounds += 1;
            assert!(rounds < 64, "prefix growth does not converge");
            match parse_header(&bytes[..len], size) {
                Ok(layout) => break layout,
                Err(GgufError::NeedMore { at_least }) => {
                    assert!(at_least > len as u64 && at_least <= size);
                    len = (at_least as usize).max(len * 2).min(bytes.len());
                }
                Err(e) => panic!("unexpected error with a {len}-byte prefix: {e}"),
            }
        };
        assert_eq!(layout, full);
        assert!(len < bytes.len(), "header parse should not need the tensor data");
    }

    #[test]
    fn fixture_every_prefix_is_needmore_or_ok() {
        let bytes = read(TINY);
        let size = bytes.len() as u64;
        let full = parse_all(&bytes).unwrap();
        for len in 0..=(full.data_start as usize + 64) {
            match parse_header(&bytes[..len], size) {
                Ok(layout) => assert_eq!(layout, full),
                Err(GgufError::NeedMore { at_least }) => {
                    assert!(
                        at_least > len as u64 && at_least <= size,
                        "len {len}: at_least {at_least}"
                    )
                }
                Err(e) => panic!("prefix {len}: {e}"),
            }
        }
    }

    #[test]
    fn fixture_truncated_files_are_refused() {
        let bytes = read(TINY);
        let full = parse_all(&bytes).unwrap();
        let last = full.tensors.last().unwrap();
        let data_end = last.offset + last.data_len;
        // Every length up to the header, then a sample through the data.
        let lens = (0..=full.data_start as usize + 40).chain((full.data_start as usize..bytes.len()).step_by(97));
        for len in lens {
            let res = parse_all(&bytes[..len]);
            if (len as u64) < data_end {
                assert!(
                    matches!(res, Err(ref e) if !matches!(e, GgufError::NeedMore { .. })),
                    "length {len}: {res:?}"
                );
            }
        }
        // Only the last tensor's padding may be missing.
        for len in data_end..=bytes.len() as u64 {
            let layout = parse_all(&bytes[..len as usize]).unwrap();
            assert_tiles(&layout, len);
        }
        assert!(matches!(
            parse_all(&bytes[..data_end as usize - 1]),
            Err(GgufError::DataPastEnd { ref name, end, .. }) if name == "output_norm.weight" && end == data_end
        ));
    }

    #[test]
    fn prefix_longer_than_file_is_cut() {
        let mut bytes = read(TINY);
        let size = bytes.len() as u64;
        bytes.extend_from_slice(&[0xAA; 100]);
        let layout = parse_header(&bytes, size).unwrap();
        assert_tiles(&layout, size);
    }

    // ----------------------------------------------------------- test writer

    /// Minimal GGUF writer for building malformed files.
    #[derive(Default)]
    struct W(Vec<u8>);

    impl W {
        fn u32(&mut self, v: u32) -> &mut Self {
            self.0.extend_from_slice(&v.to_le_bytes());
            self
        }
        fn u64(&mut self, v: u64) -> &mut Self {
            self.0.extend_from_slice(&v.to_le_bytes());
            self
        }
        fn bytes(&mut self, v: &[u8]) -> &mut Self {
            self.0.extend_from_slice(v);
            self
        }
        fn str(&mut self, s: &[u8]) -> &mut Self {
            self.u64(s.len() as u64).bytes(s)
        }
    }

    #[derive(Clone)]
    struct Tensor {
        name: Vec<u8>,
        dims: Vec<u64>,
        ty: u32,
        /// `None`: the offset packing would give.
        offset: Option<u64>,
    }

    fn tensor(name: &str, dims: &[u64], ty: u32) -> Tensor {
        Tensor {
            name: name.as_bytes().to_vec(),
            dims: dims.to_vec(),
            ty,
            offset: None,
        }
    }

    #[derive(Clone)]
    struct Builder {
        magic: [u8; 4],
        version: u32,
        tensor_count: Option<u64>,
        kv_count: Option<u64>,
        /// Encoded key-value pairs (key, type, value bytes).
        kvs: Vec<(Vec<u8>, u32, Vec<u8>)>,
        tensors: Vec<Tensor>,
        /// Alignment used to lay out the file (independent of the metadata,
        /// so a file can lie about it).
        layout_alignment: u64,
        /// Data bytes written per tensor; `None` = its real size.
        data_lens: Vec<Option<u64>>,
        trailing: Vec<u8>,
    }

    impl Builder {
        fn new() -> Self {
            Builder {
                magic: MAGIC,
                version: 3,
                tensor_count: None,
                kv_count: None,
                kvs: Vec::new(),
                tensors: Vec::new(),
                layout_alignment: DEFAULT_ALIGNMENT,
                data_lens: Vec::new(),
                trailing: Vec::new(),
            }
        }

        /// A small valid file using every value kind and three tensor types.
        fn sample() -> Self {
            let mut b = Builder::new();
            b.kv_str("general.architecture", "llama");
            b.kv_raw("llama.block_count", T_U32, &2u32.to_le_bytes());
            b.kv_raw("general.flag", T_BOOL, &[1]);
            b.kv_raw("x.f64", T_F64, &1.5f64.to_le_bytes());
            let mut arr = W::default();
            arr.u32(T_STRING).u64(2).str(b"a").str(b"bc");
            b.kv_raw("tokenizer.ggml.tokens", T_ARRAY, &arr.0);
            let mut arr = W::default();
            arr.u32(T_BOOL).u64(3).bytes(&[0, 1, 0]);
            b.kv_raw("x.bools", T_ARRAY, &arr.0);
            b.tensors = vec![tensor("a", &[3], 0), tensor("b", &[4, 2], 1), tensor("c", &[32], 8)];
            b
        }

        fn kv_raw(&mut self, key: &str, ty: u32, value: &[u8]) -> &mut Self {
            self.kvs.push((key.as_bytes().to_vec(), ty, value.to_vec()));
            self
        }

        fn kv_str(&mut self, key: &str, value: &str) -> &mut Self {
            let mut w = W::default();
            w.str(value.as_bytes());
            self.kv_raw(key, T_STRING, &w.0)
        }

        fn alignment(&mut self, a: u32) -> &mut Self {
            self.layout_alignment = u64::from(a);
            self.kv_raw(ALIGNMENT_KEY, T_U32, &a.to_le_bytes())
        }

        /// Real data size, or 0 where it overflows or is too big to write
        /// (tests of such tensors never reach their data).
        fn real_len(t: &Tensor) -> u64 {
            let (block, size) = ggml_type_layout(t.ty).unwrap_or((1, 1));
            t.dims
                .iter()
                .try_fold(1u64, |a, &d| a.checked_mul(d))
                .and_then(|n| (n / block).checked_mul(size))
                .filter(|&n| n <= 1 << 24)
                .unwrap_or(0)
        }

        fn header(&self) -> Vec<u8> {
            let mut w = W::default();
            w.bytes(&self.magic).u32(self.version);
            w.u64(self.tensor_count.unwrap_or(self.tensors.len() as u64));
            w.u64(self.kv_count.unwrap_or(self.kvs.len() as u64));
            for (k, ty, v) in &self.kvs {
                w.str(k).u32(*ty).bytes(v);
            }
            let mut offset = 0u64;
            for t in &self.tensors {
                w.str(&t.name).u32(t.dims.len() as u32);
                for &d in &t.dims {
                    w.u64(d);
                }
                w.u32(t.ty).u64(t.offset.unwrap_or(offset));
                let len = Self::real_len(t);
                offset += len.div_ceil(self.layout_alignment) * self.layout_alignment;
            }
            w.0
        }

        fn build(&self) -> Vec<u8> {
            let a = self.layout_alignment as usize;
            let mut out = self.header();
            if !self.tensors.is_empty() {
                out.resize(out.len().div_ceil(a) * a, 0);
            }
            for (i, t) in self.tensors.iter().enumerate() {
                let len = self
                    .data_lens
                    .get(i)
                    .copied()
                    .flatten()
                    .unwrap_or_else(|| Self::real_len(t));
                out.extend((0..len).map(|j| (j % 251) as u8));
                out.resize(out.len().div_ceil(a) * a, 0);
            }
            out.extend_from_slice(&self.trailing);
            out
        }
    }

    fn err(b: &Builder) -> GgufError {
        parse_all(&b.build()).unwrap_err()
    }

    // ------------------------------------------------------ writer-built files

    #[test]
    fn sample_parses_and_tiles() {
        let bytes = Builder::sample().build();
        let layout = parse_all(&bytes).unwrap();
        assert_eq!(layout.alignment, 32);
        assert_eq!(layout.tensors.len(), 3);
        let lens: Vec<(u64, u64)> = layout.tensors.iter().map(|t| (t.data_len, t.chunk_len)).collect();
        assert_eq!(lens, [(12, 32), (16, 32), (34, 64)]);
        assert_tiles(&layout, bytes.len() as u64);
    }

    #[test]
    fn version_2_is_accepted() {
        let mut b = Builder::sample();
        b.version = 2;
        assert_eq!(parse_all(&b.build()).unwrap().version, 2);
    }

    #[test]
    fn every_prefix_as_whole_file_is_an_error_not_needmore() {
        let bytes = Builder::sample().build();
        let full = parse_all(&bytes).unwrap();
        let last = full.tensors.last().unwrap();
        let data_end = (last.offset + last.data_len) as usize;
        for len in 0..bytes.len() {
            let res = parse_all(&bytes[..len]);
            if len < data_end {
                match res {
                    Err(GgufError::NeedMore { .. }) => {
                        panic!("length {len}: NeedMore for a complete file")
                    }
                    Err(_) => {}
                    Ok(l) => panic!("length {len}: accepted {l:?}"),
                }
            } else {
                assert_tiles(&res.unwrap(), len as u64);
            }
        }
    }

    #[test]
    fn every_prefix_of_the_sample_asks_for_more_or_parses() {
        let bytes = Builder::sample().build();
        let size = bytes.len() as u64;
        let full = parse_all(&bytes).unwrap();
        for len in 0..=bytes.len() {
            match parse_header(&bytes[..len], size) {
                Ok(layout) => assert_eq!(layout, full),
                Err(GgufError::NeedMore { at_least }) => {
                    assert!(at_least > len as u64 && at_least <= size)
                }
                Err(e) => panic!("prefix {len}: {e}"),
            }
        }
    }

    #[test]
    fn bad_magic() {
        let mut b = Builder::sample();
        b.magic = *b"GGML";
        assert!(matches!(err(&b), GgufError::BadMagic { found } if &found == b"GGML"));
        assert!(matches!(
            parse_all(b"\0\0\0\0\0\0\0\0"),
            Err(GgufError::BadMagic { .. })
        ));
    }

    #[test]
    fn unsupported_versions() {
        for v in [0u32, 1, 4, 0xFFFF_FFFF] {
            let mut b = Builder::sample();
            b.version = v;
            assert!(
                matches!(err(&b), GgufError::UnsupportedVersion { version } if version == v),
                "version {v}"
            );
        }
    }

    #[test]
    fn big_endian_is_named() {
        let mut b = Builder::sample();
        b.version = 3u32.swap_bytes();
        let e = err(&b);
        assert!(matches!(e, GgufError::BigEndian { version: 3 }), "{e:?}");
        assert!(e.to_string().contains("big-endian"));

        let mut w = W::default();
        w.bytes(b"FUGG").bytes(&3u32.to_be_bytes());
        assert!(matches!(parse_all(&w.0), Err(GgufError::BigEndian { version: 3 })));
    }

    #[test]
    fn duplicate_key() {
        let mut b = Builder::sample();
        b.kv_str("general.architecture", "again");
        assert!(matches!(err(&b), GgufError::DuplicateKey { key, .. } if key == "general.architecture"));
    }

    #[test]
    fn empty_key() {
        let mut b = Builder::sample();
        b.kv_raw("", T_U8, &[0]);
        assert!(matches!(err(&b), GgufError::EmptyKey { .. }));
    }

    #[test]
    fn duplicate_tensor_name() {
        let mut b = Builder::sample();
        b.tensors.push(tensor("b", &[8], 0));
        assert!(matches!(err(&b), GgufError::DuplicateTensor { name, .. } if name == "b"));
    }

    #[test]
    fn alignment_64_and_1_lay_out() {
        for a in [1u32, 64, 4096] {
            let mut b = Builder::sample();
            b.alignment(a);
            let bytes = b.build();
            let layout = parse_all(&bytes).unwrap();
            assert_eq!(layout.alignment, u64::from(a));
            assert_tiles(&layout, bytes.len() as u64);
        }
    }

    #[test]
    fn alignment_zero_or_not_power_of_two() {
        for bad in [0u32, 3, 48, u32::MAX] {
            let mut b = Builder::sample();
            b.kv_raw(ALIGNMENT_KEY, T_U32, &bad.to_le_bytes());
            assert!(
                matches!(err(&b), GgufError::BadAlignment { value } if value == bad),
                "{bad}"
            );
        }
    }

    #[test]
    fn alignment_wrong_type() {
        let mut b = Builder::sample();
        b.kv_raw(ALIGNMENT_KEY, T_U64, &32u64.to_le_bytes());
        assert!(matches!(err(&b), GgufError::BadAlignmentType { type_id: T_U64 }));

        let mut b = Builder::sample();
        b.kv_raw(ALIGNMENT_KEY, T_I32, &32i32.to_le_bytes());
        assert!(matches!(err(&b), GgufError::BadAlignmentType { type_id: T_I32 }));

        let mut arr = W::default();
        arr.u32(T_U32).u64(1).u32(32);
        let mut b = Builder::sample();
        b.kv_raw(ALIGNMENT_KEY, T_ARRAY, &arr.0);
        assert!(matches!(err(&b), GgufError::BadAlignmentType { type_id: T_ARRAY }));

        let mut b = Builder::sample();
        b.kv_raw(ALIGNMENT_KEY, 77, &[]);
        assert!(matches!(err(&b), GgufError::UnknownValueType { type_id: 77, .. }));
    }

    #[test]
    fn unknown_value_type() {
        let mut b = Builder::sample();
        b.kv_raw("x.weird", 13, &[0; 8]);
        assert!(matches!(err(&b), GgufError::UnknownValueType { key, type_id: 13, .. } if key == "x.weird"));

        let mut arr = W::default();
        arr.u32(99).u64(1).u32(0);
        let mut b = Builder::sample();
        b.kv_raw("x.arr", T_ARRAY, &arr.0);
        assert!(matches!(err(&b), GgufError::UnknownValueType { type_id: 99, .. }));
    }

    #[test]
    fn invalid_bool() {
        let mut b = Builder::sample();
        b.kv_raw("x.b", T_BOOL, &[2]);
        assert!(matches!(err(&b), GgufError::InvalidBool { key, value: 2, .. } if key == "x.b"));

        let mut arr = W::default();
        arr.u32(T_BOOL).u64(4).bytes(&[0, 1, 0xFF, 0]);
        let mut b = Builder::sample();
        b.kv_raw("x.bs", T_ARRAY, &arr.0);
        let bytes = b.build();
        let e = parse_all(&bytes).unwrap_err();
        let GgufError::InvalidBool {
            value: 0xFF, offset, ..
        } = e
        else {
            panic!("{e:?}")
        };
        assert_eq!(bytes[offset as usize], 0xFF);
    }

    #[test]
    fn bad_utf8_key_and_name() {
        let mut b = Builder::sample();
        b.kvs.push((vec![b'k', 0xC3, 0x28], T_U8, vec![0]));
        let bytes = b.build();
        let e = parse_all(&bytes).unwrap_err();
        let GgufError::InvalidUtf8 {
            what: "metadata key",
            offset,
        } = e
        else {
            panic!("{e:?}")
        };
        assert_eq!(&bytes[offset as usize..offset as usize + 3], &[b'k', 0xC3, 0x28]);

        let mut b = Builder::sample();
        b.tensors[1].name = vec![0xFF, 0xFE];
        assert!(matches!(
            err(&b),
            GgufError::InvalidUtf8 {
                what: "tensor name",
                ..
            }
        ));
    }

    #[test]
    fn tensor_name_rules() {
        let mut b = Builder::sample();
        b.tensors[0].name = b"a\0b".to_vec();
        assert!(matches!(err(&b), GgufError::BadTensorName { .. }));

        let mut b = Builder::sample();
        b.tensors[0].name = vec![b'x'; 64];
        assert!(matches!(
            err(&b),
            GgufError::LimitExceeded {
                what: "tensor name length",
                value: 64,
                ..
            }
        ));

        let mut b = Builder::sample();
        b.tensors[0].name = vec![b'x'; 63];
        assert!(parse_all(&b.build()).is_ok());

        let mut b = Builder::sample();
        b.tensors[0].name = Vec::new();
        assert!(parse_all(&b.build()).is_ok(), "ggml accepts empty tensor names");
    }

    #[test]
    fn offset_hole() {
        let mut b = Builder::sample();
        b.tensors[1].offset = Some(64);
        assert!(matches!(
            err(&b),
            GgufError::OffsetMismatch { name, expected: 32, found: 64 } if name == "b"
        ));
    }

    #[test]
    fn offset_overlap_and_order() {
        let mut b = Builder::sample();
        b.tensors[2].offset = Some(32);
        assert!(matches!(
            err(&b),
            GgufError::OffsetMismatch {
                expected: 64,
                found: 32,
                ..
            }
        ));

        let mut b = Builder::sample();
        b.tensors[0].offset = Some(32);
        b.tensors[1].offset = Some(0);
        assert!(matches!(
            err(&b),
            GgufError::OffsetMismatch {
                expected: 0,
                found: 32,
                ..
            }
        ));
    }

    #[test]
    fn misaligned_offset() {
        let mut b = Builder::sample();
        b.tensors[1].offset = Some(12);
        assert!(matches!(
            err(&b),
            GgufError::MisalignedOffset {
                offset: 12,
                alignment: 32,
                ..
            }
        ));
    }

    #[test]
    fn data_past_end() {
        let mut b = Builder::sample();
        b.data_lens = vec![None, None, Some(10)];
        let e = err(&b);
        assert!(
            matches!(e, GgufError::DataPastEnd { ref name, .. } if name == "c"),
            "{e:?}"
        );

        // A tensor too large for the file, followed by nothing.
        let mut b = Builder::new();
        b.tensors = vec![tensor("big", &[1 << 40], 0)];
        b.data_lens = vec![Some(4)];
        assert!(matches!(err(&b), GgufError::DataPastEnd { end, .. } if end > 1 << 40));
    }

    #[test]
    fn trailing_bytes() {
        let mut b = Builder::sample();
        b.trailing = vec![0];
        let bytes = b.build();
        assert!(matches!(
            parse_all(&bytes).unwrap_err(),
            GgufError::TrailingBytes { expected_end, file_size }
                if expected_end + 1 == file_size && file_size == bytes.len() as u64
        ));
    }

    #[test]
    fn zero_tensors() {
        let mut b = Builder::new();
        b.kv_str("general.architecture", "llama");
        let header = b.header();
        let info_end = header.len() as u64;
        let padded = info_end.div_ceil(32) * 32;
        assert!(padded > info_end);
        let mut bytes = header.clone();
        bytes.resize(padded as usize + 1, 0);
        for len in info_end..=padded {
            let layout = parse_all(&bytes[..len as usize]).unwrap();
            assert!(layout.tensors.is_empty());
            assert_eq!(layout.data_start, len);
        }
        assert!(matches!(
            parse_all(&bytes),
            Err(GgufError::TrailingBytes { expected_end, .. }) if expected_end == padded
        ));
    }

    #[test]
    fn padding_before_data_missing() {
        let mut b = Builder::new();
        b.tensors = vec![tensor("empty", &[0], 0)];
        let header = b.header();
        assert!(!header.len().is_multiple_of(32));
        assert!(matches!(
            parse_all(&header),
            Err(GgufError::Truncated {
                what: "padding before the tensor data",
                ..
            })
        ));
        // With the padding, a zero-byte tensor is a zero-length chunk at EOF.
        let bytes = b.build();
        let layout = parse_all(&bytes).unwrap();
        assert_eq!(layout.data_start, bytes.len() as u64);
        assert_eq!((layout.tensors[0].data_len, layout.tensors[0].chunk_len), (0, 0));
    }

    #[test]
    fn zero_element_and_scalar_tensors() {
        let mut b = Builder::new();
        b.tensors = vec![tensor("s", &[], 0), tensor("z", &[0, 5], 8), tensor("t", &[2], 1)];
        let bytes = b.build();
        let layout = parse_all(&bytes).unwrap();
        let lens: Vec<u64> = layout.tensors.iter().map(|t| t.data_len).collect();
        assert_eq!(lens, [4, 0, 4]);
        assert_tiles(&layout, bytes.len() as u64);
    }

    #[test]
    fn huge_counts_fail_fast() {
        for (tc, kc) in [(u64::MAX, 0), (0, u64::MAX), (MAX_TENSORS + 1, 0), (1 << 63, 1 << 63)] {
            let mut b = Builder::sample();
            b.tensor_count = Some(tc);
            b.kv_count = Some(kc);
            assert!(matches!(err(&b), GgufError::LimitExceeded { .. }), "{tc} {kc}");
        }
        // Within the caps but more than the file could hold.
        let mut b = Builder::sample();
        b.tensor_count = Some(MAX_TENSORS);
        assert!(matches!(err(&b), GgufError::Truncated { .. }));
        let mut b = Builder::sample();
        b.kv_count = Some(MAX_KV);
        assert!(matches!(err(&b), GgufError::Truncated { .. }));
        // Even with a huge claimed file size, a short prefix must not make
        // us allocate for the claimed count.
        let bytes = {
            let mut b = Builder::sample();
            b.tensor_count = Some(MAX_TENSORS);
            b.header()
        };
        assert!(matches!(
            parse_header(&bytes, u64::MAX),
            Err(GgufError::NeedMore { .. })
        ));
    }

    #[test]
    fn huge_lengths_fail_fast() {
        let mut w = W::default();
        w.u64(u64::MAX);
        let mut b = Builder::sample();
        b.kv_raw("x.s", T_STRING, &w.0);
        assert!(matches!(
            err(&b),
            GgufError::LimitExceeded {
                what: "string length",
                ..
            }
        ));

        let mut b = Builder::sample();
        b.kvs.insert(0, (Vec::new(), T_U8, vec![0]));
        let mut bytes = b.build();
        bytes[24..32].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(matches!(
            parse_all(&bytes),
            Err(GgufError::LimitExceeded {
                what: "metadata key length",
                ..
            })
        ));

        for elem in [T_U8, T_U64, T_STRING, T_ARRAY, T_BOOL] {
            let mut arr = W::default();
            arr.u32(elem).u64(u64::MAX);
            let mut b = Builder::sample();
            b.kv_raw("x.a", T_ARRAY, &arr.0);
            assert!(
                matches!(
                    err(&b),
                    GgufError::LimitExceeded {
                        what: "array length",
                        ..
                    }
                ),
                "{elem}"
            );

            let mut arr = W::default();
            arr.u32(elem).u64(MAX_ARRAY_LEN);
            let mut b = Builder::sample();
            b.kv_raw("x.a", T_ARRAY, &arr.0);
            assert!(matches!(err(&b), GgufError::Truncated { .. }), "{elem}");
        }
    }

    #[test]
    fn nested_arrays() {
        // Depth 4 (the limit) parses; depth 5 does not.
        fn nested(levels: u32) -> Vec<u8> {
            let mut w = W::default();
            for _ in 1..levels {
                w.u32(T_ARRAY).u64(1);
            }
            w.u32(T_U16).u64(2).bytes(&[1, 2, 3, 4]);
            w.0
        }
        let mut b = Builder::sample();
        b.kv_raw("x.n", T_ARRAY, &nested(4));
        assert!(parse_all(&b.build()).is_ok());

        let mut b = Builder::sample();
        b.kv_raw("x.n", T_ARRAY, &nested(5));
        assert!(matches!(
            err(&b),
            GgufError::LimitExceeded {
                what: "array nesting depth",
                value: 5,
                ..
            }
        ));
    }

    #[test]
    fn dims_overflow() {
        let cases: [(&[u64], u32); 4] = [
            (&[1 << 32, 1 << 32], 0),
            (&[1 << 31, 1 << 31, 2], 0),
            (&[1 << 62], 28),
            ((&[i64::MAX as u64]), 24),
        ];
        for (dims, ty) in cases {
            let mut b = Builder::new();
            b.tensors = vec![tensor("t", dims, ty)];
            assert!(
                matches!(err(&b), GgufError::SizeOverflow { name } if name == "t"),
                "{dims:?}"
            );
        }
        let mut b = Builder::new();
        b.tensors = vec![tensor("t", &[4, 1 << 63], 0)];
        assert!(matches!(err(&b), GgufError::DimOutOfRange { index: 1, value, .. } if value == 1 << 63));
    }

    #[test]
    fn padded_size_overflow() {
        // 8 * (2^61 - 1) = u64::MAX - 7 fits, but padding it to 32 does not.
        let mut b = Builder::new();
        b.tensors = vec![tensor("t", &[(1u64 << 61) - 1], 28)];
        assert!(matches!(err(&b), GgufError::SizeOverflow { name } if name == "t"));
        assert_eq!(align_up(u64::MAX - 3, 32), None);
        assert_eq!(align_up(33, 32), Some(64));
        assert_eq!(align_up(64, 64), Some(64));
    }

    #[test]
    fn too_many_dims() {
        let mut b = Builder::new();
        b.tensors = vec![tensor("t", &[1, 1, 1, 1, 1], 0)];
        assert!(matches!(err(&b), GgufError::TooManyDims { n_dims: 5, .. }));
        let mut b = Builder::new();
        b.tensors = vec![tensor("t", &[1, 1, 1, 1], 0)];
        assert!(parse_all(&b.build()).is_ok());
        // A huge n_dims must not drive a loop or allocation.
        let mut b = Builder::new();
        b.tensors = vec![tensor("t", &[], 0)];
        let mut bytes = b.header();
        let at = bytes.len() - 8 - 4 - 4;
        bytes[at..at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            parse_all(&bytes),
            Err(GgufError::TooManyDims { n_dims: u32::MAX, .. })
        ));
    }

    #[test]
    fn unknown_ggml_type() {
        for ty in [4u32, 5, 31, 32, 33, 36, 37, 38, 42, 1000, u32::MAX] {
            let mut b = Builder::new();
            b.tensors = vec![tensor("t", &[256], ty)];
            assert!(
                matches!(err(&b), GgufError::UnknownTensorType { type_id, .. } if type_id == ty),
                "{ty}"
            );
        }
    }

    #[test]
    fn block_size_mismatch() {
        let mut b = Builder::new();
        b.tensors = vec![tensor("q", &[48, 2], 8)];
        assert!(matches!(
            err(&b),
            GgufError::BlockSizeMismatch {
                ne0: 48,
                block_size: 32,
                ..
            }
        ));
        // Only the first dimension has to be whole blocks.
        let mut b = Builder::new();
        b.tensors = vec![tensor("q", &[32, 3], 8)];
        assert!(parse_all(&b.build()).is_ok());
    }

    #[test]
    fn ggml_type_table_matches_gguf_py() {
        // (id, block size, type size) as evaluated from GGML_QUANT_SIZES in
        // gguf-py/gguf/constants.py.
        let expected: [(u32, u64, u64); 34] = [
            (0, 1, 4),
            (1, 1, 2),
            (2, 32, 18),
            (3, 32, 20),
            (6, 32, 22),
            (7, 32, 24),
            (8, 32, 34),
            (9, 32, 40),
            (10, 256, 84),
            (11, 256, 110),
            (12, 256, 144),
            (13, 256, 176),
            (14, 256, 210),
            (15, 256, 292),
            (16, 256, 66),
            (17, 256, 74),
            (18, 256, 98),
            (19, 256, 50),
            (20, 32, 18),
            (21, 256, 110),
            (22, 256, 82),
            (23, 256, 136),
            (24, 1, 1),
            (25, 1, 2),
            (26, 1, 4),
            (27, 1, 8),
            (28, 1, 8),
            (29, 256, 56),
            (30, 1, 2),
            (34, 256, 54),
            (35, 256, 66),
            (39, 32, 17),
            (40, 64, 36),
            (41, 128, 18),
        ];
        for (id, block, size) in expected {
            assert_eq!(ggml_type_layout(id), Some((block, size)), "type {id}");
        }
        let known: Vec<u32> = (0..=u32::from(u8::MAX))
            .filter(|&id| ggml_type_layout(id).is_some())
            .collect();
        assert_eq!(known, expected.iter().map(|e| e.0).collect::<Vec<_>>());
    }

    #[test]
    fn errors_say_where() {
        let mut b = Builder::sample();
        b.tensors[1].offset = Some(64);
        let msg = err(&b).to_string();
        assert!(msg.contains("`b`") && msg.contains("64") && msg.contains("32"), "{msg}");
        let msg = GgufError::Truncated {
            what: "tensor type",
            offset: 77,
        }
        .to_string();
        assert!(msg.contains("tensor type") && msg.contains("77"), "{msg}");
    }

    // --------------------------------------------------------------- proptest

    fn check_no_panic_and_tiles(bytes: &[u8], prefix_len: usize, file_size: u64) -> Result<(), TestCaseError> {
        let prefix = &bytes[..prefix_len.min(bytes.len())];
        match parse_header(prefix, file_size) {
            Ok(layout) => {
                let mut pos = layout.data_start;
                prop_assert!(pos <= file_size);
                for t in &layout.tensors {
                    prop_assert_eq!(t.offset, pos);
                    prop_assert!(t.chunk_len >= t.data_len);
                    pos = t.offset.checked_add(t.chunk_len).unwrap();
                }
                prop_assert_eq!(pos, file_size);
            }
            Err(GgufError::NeedMore { at_least }) => {
                prop_assert!(at_least > prefix.len() as u64 && at_least <= file_size);
            }
            Err(e) => {
                // Display must not panic either.
                let _ = e.to_string();
            }
        }
        Ok(())
    }

    #[derive(Debug, Clone)]
    enum Mutation {
        Byte(usize, u8),
        U32(usize, u32),
        U64(usize, u64),
        Truncate(usize),
        Append(Vec<u8>),
    }

    fn mutation(header_len: usize) -> impl Strategy<Value = Mutation> {
        // Most mutations land in the header, where the parser looks.
        let near = 0..header_len + 64;
        prop_oneof![
            4 => (near.clone(), any::<u8>()).prop_map(|(i, b)| Mutation::Byte(i, b)),
            2 => (near.clone(), prop_oneof![any::<u32>(), 0u32..64]).prop_map(|(i, v)| Mutation::U32(i, v)),
            2 => (near, prop_oneof![any::<u64>(), 0u64..4096]).prop_map(|(i, v)| Mutation::U64(i, v)),
            1 => (0usize..120_000).prop_map(Mutation::Truncate),
            1 => proptest::collection::vec(any::<u8>(), 0..70).prop_map(Mutation::Append),
        ]
    }

    fn apply(bytes: &mut Vec<u8>, m: &Mutation) {
        let mut put = |i: usize, v: &[u8]| {
            if i + v.len() <= bytes.len() {
                bytes[i..i + v.len()].copy_from_slice(v);
            }
        };
        match m {
            Mutation::Byte(i, b) => put(*i, &[*b]),
            Mutation::U32(i, v) => put(*i, &v.to_le_bytes()),
            Mutation::U64(i, v) => put(*i, &v.to_le_bytes()),
            Mutation::Truncate(n) => bytes.truncate(*n),
            Mutation::Append(v) => bytes.extend_from_slice(v),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        #[test]
        fn mutated_fixture_never_panics(
            which in any::<bool>(),
            muts in proptest::collection::vec(mutation(1152), 1..6),
            prefix_cut in prop_oneof![Just(usize::MAX), 0usize..4096],
        ) {
            let mut bytes = read(if which { TINY } else { TINY_ALIGN64 });
            for m in &muts {
                apply(&mut bytes, m);
            }
            let size = bytes.len() as u64;
            check_no_panic_and_tiles(&bytes, prefix_cut, size)?;
            // Same bytes claimed to be part of a larger file.
            check_no_panic_and_tiles(&bytes, prefix_cut, size + 4096)?;
        }

        #[test]
        fn mutated_sample_never_panics(
            muts in proptest::collection::vec(mutation(300), 1..6),
        ) {
            let mut bytes = Builder::sample().build();
            for m in &muts {
                apply(&mut bytes, m);
            }
            check_no_panic_and_tiles(&bytes, usize::MAX, bytes.len() as u64)?;
        }

        #[test]
        fn random_bytes_never_panic(
            tail in proptest::collection::vec(any::<u8>(), 0..512),
            version in prop_oneof![Just(2u32), Just(3u32), any::<u32>()],
        ) {
            let mut bytes = b"GGUF".to_vec();
            bytes.extend_from_slice(&version.to_le_bytes());
            bytes.extend_from_slice(&tail);
            check_no_panic_and_tiles(&bytes, usize::MAX, bytes.len() as u64)?;
        }
    }
}
