//! Entry points for the fuzz targets in `fuzz/` (feature `fuzzing`, off by default and
//! hidden from the documentation: not part of the supported API).
//!
//! The parsers reached here are crate-private because callers should go through the
//! file-level API (`scan`, `Manifest::from_bytes`, `Policy::from_file`). The fuzz targets
//! want them without a file or a signature in the way, so each gets a thin wrapper that
//! also checks the invariants its callers rely on; a broken invariant panics, which the
//! fuzzer reports as a crash.

use std::path::Path;

use crate::cbor;
use crate::decision::{DecisionError, Policy};
use crate::format::{gguf, safetensors};

/// Parses a safetensors JSON header (the bytes after the 8-byte length) and checks that
/// the tensors it describes are sorted, do not overlap and lie inside the data section.
/// Returns the number of tensors.
pub fn safetensors_header(json: &[u8]) -> Result<usize, safetensors::SafetensorsError> {
    let (tensors, data_len) = safetensors::parse_header(json)?;
    let mut end = 0;
    for (name, range) in &tensors {
        assert!(range.start >= end, "tensor {name} overlaps the one before it");
        assert!(
            range.start <= range.end && range.end <= data_len,
            "tensor {name} lies outside the data"
        );
        end = range.end;
    }
    Ok(tensors.len())
}

/// Parses a GGUF header from `prefix` for a file of `file_size` bytes and checks that the
/// header and tensor chunks lie inside the file, in order. Returns the number of tensors.
pub fn gguf_header(prefix: &[u8], file_size: u64) -> Result<usize, gguf::GgufError> {
    let layout = gguf::parse_header(prefix, file_size)?;
    assert!(
        layout.data_start <= file_size,
        "data section starts past the end of the file"
    );
    let mut end = layout.data_start;
    for t in &layout.tensors {
        assert!(t.offset >= end, "tensor {} overlaps the one before it", t.name);
        let chunk_end = t.offset.checked_add(t.chunk_len).expect("chunk end overflows");
        assert!(
            chunk_end <= file_size,
            "tensor {} lies past the end of the file",
            t.name
        );
        end = chunk_end;
    }
    Ok(layout.tensors.len())
}

/// Limits for [`cbor_decode`]: small enough that every input the fuzzer tries is cheap.
const FUZZ_CBOR_LIMITS: cbor::Limits = cbor::Limits {
    max_bytes: 1 << 20,
    max_items: 1 << 16,
    max_depth: 8,
};

/// Decodes one CBOR document under small fixed limits; a document that is accepted must
/// re-encode to exactly its own bytes (the profile has one encoding per value).
pub fn cbor_decode(bytes: &[u8]) -> Result<(), cbor::CborError> {
    let value = cbor::decode(bytes, FUZZ_CBOR_LIMITS)?;
    let again = cbor::encode(&value).expect("an accepted document re-encodes");
    assert_eq!(again, bytes, "an accepted document is not in its one encoding");
    Ok(())
}

/// Builds a load policy from the text of a policy file whose folder is `base`.
pub fn policy_from_toml(text: &str, base: &Path) -> Result<Policy, DecisionError> {
    Policy::from_toml(text, base, &base.join("policy.toml"))
}
