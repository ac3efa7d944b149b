//! Where a file's bytes come from while it is hashed or parsed: a memory map for large
//! files, `pread` for small ones and for callers that cannot use maps at all.
//!
//! Mapping pays off on large tensors (no copy, parallel hashing straight from the page
//! cache) but costs an `mmap`, page faults and an `munmap` per file, which dominates on
//! folders of many small files. And a file truncated under a mapping raises SIGBUS,
//! which a runtime on a network filesystem (where another client can truncate) cannot
//! accept: [`ReadMode::NoMmap`] reads every byte with `pread`, so a truncated file is a
//! short read and an error, never a signal.

use std::cell::RefCell;
use std::fs::File;
use std::io;
use std::ops::Range;
use std::os::unix::fs::FileExt;

use crate::digest::Digest;
use crate::mapped::MappedFile;

/// Files smaller than this are read with `pread` even when maps are allowed.
pub(crate) const PREAD_BELOW_BYTES: u64 = 1 << 20;

/// Pieces in which `pread` reads a range, into a buffer each thread keeps.
const PIECE_BYTES: usize = 4 << 20;

/// How file bytes are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ReadMode {
    /// Map files of 1 MiB and more; `pread` smaller ones.
    #[default]
    Auto,
    /// Never map: `pread` everything. For network filesystems, where a file truncated
    /// while mapped would raise SIGBUS in the reading process. Slower on large tensors
    /// (one copy, and hashing of one range on fewer threads).
    NoMmap,
}

/// One open file, readable by range.
#[derive(Debug)]
pub(crate) struct FileSource {
    backing: Backing,
    len: u64,
}

#[derive(Debug)]
enum Backing {
    Mapped(MappedFile),
    Pread(File),
}

thread_local! {
    /// Reused across files and chunks on each thread, so small files cost no allocation.
    static PIECE: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

impl FileSource {
    /// Opens `file` (already checked to be a regular file of `len` bytes).
    pub(crate) fn new(file: File, len: u64, mode: ReadMode) -> io::Result<Self> {
        let backing = if mode == ReadMode::NoMmap || len < PREAD_BELOW_BYTES {
            Backing::Pread(file)
        } else {
            Backing::Mapped(MappedFile::map(&file, len)?)
        };
        Ok(FileSource { backing, len })
    }

    /// The file's length when it was opened.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// An owned copy of `range`, or `None` if it lies outside the file (or the file
    /// shrank, or reading failed: the caller reports the file as changed).
    pub(crate) fn copy(&self, range: Range<u64>) -> Option<Vec<u8>> {
        match &self.backing {
            Backing::Mapped(map) => map.copy(range),
            Backing::Pread(file) => {
                if range.start > range.end || range.end > self.len {
                    return None;
                }
                let mut out = vec![0u8; usize::try_from(range.end - range.start).ok()?];
                file.read_exact_at(&mut out, range.start).ok()?;
                Some(out)
            }
        }
    }

    /// BLAKE3 of `range`, or `None` as for [`Self::copy`].
    pub(crate) fn hash(&self, range: Range<u64>) -> Option<Digest> {
        match &self.backing {
            Backing::Mapped(map) => map.hash(range),
            Backing::Pread(file) => {
                if range.start > range.end || range.end > self.len {
                    return None;
                }
                PIECE.with(|piece| {
                    let mut piece = piece.borrow_mut();
                    let total = range.end - range.start;
                    let first = usize::try_from(total).unwrap_or(PIECE_BYTES).min(PIECE_BYTES);
                    if piece.len() < first {
                        piece.resize(first, 0);
                    }
                    if total as usize == first {
                        // One piece: the common case for small files and tensors.
                        file.read_exact_at(&mut piece[..first], range.start).ok()?;
                        return Some(Digest::of(&piece[..first]));
                    }
                    let mut hasher = blake3::Hasher::new();
                    let mut at = range.start;
                    while at < range.end {
                        let n = usize::try_from(range.end - at).unwrap_or(PIECE_BYTES).min(PIECE_BYTES);
                        file.read_exact_at(&mut piece[..n], at).ok()?;
                        hasher.update_rayon(&piece[..n]);
                        at += n as u64;
                    }
                    Some(Digest::from_bytes(*hasher.finalize().as_bytes()))
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// Both backings agree on every boundary around the threshold and the piece size.
    #[test]
    fn pread_and_map_agree() {
        let sizes = [
            0usize,
            1,
            PREAD_BELOW_BYTES as usize - 1,
            PREAD_BELOW_BYTES as usize,
            PIECE_BYTES - 1,
            PIECE_BYTES,
            PIECE_BYTES + 1,
            2 * PIECE_BYTES + 7,
        ];
        for len in sizes {
            let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let mut f = tempfile::tempfile().unwrap();
            f.write_all(&data).unwrap();
            for mode in [ReadMode::Auto, ReadMode::NoMmap] {
                let source = FileSource::new(f.try_clone().unwrap(), len as u64, mode).unwrap();
                assert_eq!(source.hash(0..len as u64), Some(Digest::of(&data)), "{len} {mode:?}");
                let mid = len as u64 / 3;
                assert_eq!(source.copy(mid..len as u64).as_deref(), Some(&data[mid as usize..]));
                assert_eq!(source.hash(0..len as u64 + 1), None);
                assert_eq!(source.copy(0..len as u64 + 1), None);
            }
        }
    }

    /// A file truncated after it was opened is a short read (`None`), never a signal.
    #[test]
    fn truncated_under_pread_is_an_error_not_sigbus() {
        let data = vec![7u8; 3 * PIECE_BYTES];
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(&data).unwrap();
        let source = FileSource::new(f.try_clone().unwrap(), data.len() as u64, ReadMode::NoMmap).unwrap();
        f.set_len(10).unwrap();
        assert_eq!(source.hash(0..data.len() as u64), None);
        assert_eq!(source.copy(PIECE_BYTES as u64..2 * PIECE_BYTES as u64), None);
    }
}
