//! Memory-mapped reading and hashing: the crate's only `unsafe`.
//!
//! Why mmap: hashing a multi-gigabyte weight file through `read` copies every byte
//! into a buffer first; hashing the page cache in place is what lets signing and
//! verifying run at `b3sum` speed (spec target: within 10% of it).
//!
//! SAFETY, and what keeps it sound:
//! - `Mmap::map` is unsafe because the mapped bytes can change, or vanish, if another
//!   process writes or truncates the file while it is mapped. Rust assumes a `&[u8]` is
//!   immutable while borrowed, so a mapped slice is only "sound" under the assumption
//!   that nobody modifies the file concurrently.
//! - This module therefore never lets a mapped slice leave it. Callers get owned
//!   copies ([`MappedFile::copy`]) or digests ([`MappedFile::hash`]); the borrow lives
//!   only inside those two functions, where the bytes are treated as untrusted input
//!   that may be garbage. A concurrent writer can make us compute a digest of a mix of
//!   old and new bytes; for verification that yields a mismatch (fail closed), and for
//!   signing the signer signs what it read — the same outcome as a racing `read`.
//! - What mmap cannot defend against: if the file is truncated while mapped, touching
//!   the lost pages raises SIGBUS and the process dies. That is a crash, not a silent
//!   acceptance, and `b3sum` has the same property; runtimes that must survive it use
//!   [`crate::SignedModel::read_tensor_into`] or `ReadMode::NoMmap` (see `source.rs`),
//!   which read with `pread` instead.
//! - The mapping's length is the `fstat` length the caller already has; a file that
//!   grew since is mapped only up to it (and the size check elsewhere refuses it), one
//!   that shrank is the truncation case above.
//! - Parsers never run on mapped memory: headers are copied out first, then parsed
//!   and hashed from the same copy, so the bytes parsed are the bytes hashed.
#![allow(unsafe_code, reason = "memory-mapping files; see the SAFETY notes above")]

use std::fs::File;
use std::io;
use std::ops::Range;

use memmap2::{Mmap, MmapOptions};

use crate::digest::Digest;

/// A read-only mapping of a whole file.
#[derive(Debug)]
pub(crate) struct MappedFile {
    // `None` for empty files, which cannot be mapped.
    map: Option<Mmap>,
}

impl MappedFile {
    /// Maps `file`, which the caller has already checked is a regular file of `len`
    /// bytes (from its `fstat`, so that no second `stat` is needed).
    pub(crate) fn map(file: &File, len: u64) -> io::Result<Self> {
        if len == 0 {
            return Ok(MappedFile { map: None });
        }
        // SAFETY: see the module documentation: the mapping is private to this module
        // and only read through `copy` and `hash`, which tolerate changing bytes.
        let map_len = usize::try_from(len).map_err(|_| io::Error::other("file too large to map"))?;
        let map = unsafe { MmapOptions::new().len(map_len).map(file)? };
        Ok(MappedFile { map: Some(map) })
    }

    fn slice(&self, range: Range<u64>) -> Option<&[u8]> {
        let start = usize::try_from(range.start).ok()?;
        let end = usize::try_from(range.end).ok()?;
        match &self.map {
            Some(map) => map.get(start..end),
            None if start == 0 && end == 0 => Some(&[]),
            None => None,
        }
    }

    /// An owned copy of `range`, or `None` if it lies outside the file.
    pub(crate) fn copy(&self, range: Range<u64>) -> Option<Vec<u8>> {
        self.slice(range).map(<[u8]>::to_vec)
    }

    /// BLAKE3 of `range`, or `None` if it lies outside the file.
    pub(crate) fn hash(&self, range: Range<u64>) -> Option<Digest> {
        self.slice(range).map(Digest::of_parallel)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn boundaries() {
        for len in [0usize, 1, 1023, 1024, 1025, (1 << 20) - 1, 1 << 20, (1 << 20) + 1] {
            let mut f = tempfile::tempfile().unwrap();
            let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            f.write_all(&data).unwrap();
            let m = MappedFile::map(&f, len as u64).unwrap();
            assert_eq!(m.hash(0..len as u64), Some(Digest::of(&data)));
            assert_eq!(m.copy(0..len as u64).as_deref(), Some(&data[..]));
            assert_eq!(m.hash(0..len as u64 + 1), None);
        }
    }
}
