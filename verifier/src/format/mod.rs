//! Splitting weight files into chunks (spec/format.md §4.1).
//!
//! A file's kind is claimed by its extension. A file that claims a format must pass that
//! format's validation: a broken `.safetensors` is refused, never quietly hashed as raw,
//! because a runtime would then load something the signer never saw as tensors.

pub mod gguf;
pub mod safetensors;

use std::ops::Range;

use crate::manifest::{ChunkRole, FileKind};

/// Raw files are cut into chunks of this size unless the signer picks another.
pub const DEFAULT_RAW_CHUNK_SIZE: u64 = 8 << 20;

/// The kind a file claims by its name: `.safetensors`, `.gguf` (any case), else raw.
pub fn kind_for_path(rel: &str) -> FileKind {
    let lower = rel.rsplit('/').next().unwrap_or(rel).to_ascii_lowercase();
    if lower.ends_with(".safetensors") {
        FileKind::Safetensors
    } else if lower.ends_with(".gguf") {
        FileKind::Gguf
    } else {
        FileKind::Raw
    }
}

/// How a file divides into chunks, with the header bytes that were parsed (so they can
/// be hashed from the same copy).
#[derive(Debug)]
pub(crate) struct Layout {
    /// Chunks in order; they tile the file.
    pub chunks: Vec<(ChunkRole, Range<u64>)>,
    /// The header chunk's bytes, when the format has one.
    pub header: Option<Vec<u8>>,
}

/// Fixed-size chunks for a raw file.
pub(crate) fn raw_layout(size: u64, chunk_size: u64) -> Layout {
    let mut chunks = Vec::new();
    let mut start = 0;
    while start < size {
        let end = size.min(start.saturating_add(chunk_size));
        chunks.push((ChunkRole::Data, start..end));
        start = end;
    }
    Layout { chunks, header: None }
}
