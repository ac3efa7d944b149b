//! Hashing files into manifest entries: used to sign, to `check` unsigned models, and to
//! `diff` folders. (Verifying a signed model does not parse anything: it hashes the
//! byte ranges the trusted manifest names; see `verify.rs`.)

use std::fs::File;
use std::ops::Range;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::digest::Digest;
use crate::format::gguf::{self, GgufError};
use crate::format::safetensors::{self as st, SafetensorsError};
use crate::format::{kind_for_path, raw_layout, Layout, DEFAULT_RAW_CHUNK_SIZE};
use crate::manifest::{ChunkRole, FileEntry, FileKind};
use crate::source::{FileSource, ReadMode};
use crate::walk::{walk_folder, FoundFile, IgnoreRules, WalkError};

/// Receives the number of bytes hashed as work proceeds (for progress bars). Must be
/// cheap and thread-safe: it is called from the hashing threads.
pub type ProgressFn<'a> = &'a (dyn Fn(u64) + Sync);

/// Options for hashing files.
#[derive(Clone, Copy)]
pub struct ScanOptions<'a> {
    /// Chunk size for raw files.
    pub raw_chunk_size: u64,
    /// Progress callback.
    pub progress: Option<ProgressFn<'a>>,
    /// Whether files may be memory-mapped.
    pub read_mode: ReadMode,
}

impl std::fmt::Debug for ScanOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScanOptions")
            .field("raw_chunk_size", &self.raw_chunk_size)
            .field("read_mode", &self.read_mode)
            .finish_non_exhaustive()
    }
}

impl Default for ScanOptions<'_> {
    fn default() -> Self {
        ScanOptions {
            raw_chunk_size: DEFAULT_RAW_CHUNK_SIZE,
            progress: None,
            read_mode: ReadMode::Auto,
        }
    }
}

/// Why a file or folder could not be hashed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScanError {
    /// Listing the folder failed or found something refused.
    #[error(transparent)]
    Walk(#[from] WalkError),
    /// Reading a file failed.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A symlink was given where a file was expected.
    #[error("{path} is a symbolic link; weightseal refuses symlinks")]
    Symlink {
        /// The path.
        path: PathBuf,
    },
    /// Not a regular file.
    #[error("{path} is not a regular file")]
    NotRegularFile {
        /// The path.
        path: PathBuf,
    },
    /// A `.safetensors` file that is not valid safetensors.
    #[error("{path}: not a valid safetensors file: {source}")]
    Safetensors {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        source: SafetensorsError,
    },
    /// A `.gguf` file that is not valid GGUF.
    #[error("{path}: not a valid GGUF file: {source}")]
    Gguf {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        source: GgufError,
    },
    /// The file changed size while it was being read.
    #[error("{path} changed while being read")]
    Changed {
        /// The file.
        path: PathBuf,
    },
    /// The raw chunk size is zero.
    #[error("the raw chunk size must be above zero")]
    ZeroChunkSize,
}

/// Opens a path for reading without following a final symlink and without blocking on
/// a FIFO, and checks it is a regular file.
pub(crate) fn open_regular(path: &Path) -> Result<File, ScanError> {
    open_regular_sized(path).map(|(file, _)| file)
}

/// [`open_regular`], also returning the length its `fstat` saw (so callers need no
/// second `stat`).
pub(crate) fn open_regular_sized(path: &Path) -> Result<(File, u64), ScanError> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(|source| {
            if source.raw_os_error() == Some(libc::ELOOP) {
                ScanError::Symlink {
                    path: path.to_path_buf(),
                }
            } else {
                ScanError::Io {
                    path: path.to_path_buf(),
                    source,
                }
            }
        })?;
    let meta = file.metadata().map_err(|source| ScanError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    if !meta.is_file() {
        return Err(ScanError::NotRegularFile {
            path: path.to_path_buf(),
        });
    }
    Ok((file, meta.len()))
}

/// Opens a regular file as a [`FileSource`] (mapped, or read with `pread`).
pub(crate) fn open_source(path: &Path, mode: ReadMode) -> Result<FileSource, ScanError> {
    let (file, len) = open_regular_sized(path)?;
    FileSource::new(file, len, mode).map_err(|source| ScanError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Splits a mapped file into chunks according to `kind`.
pub(crate) fn layout_of(
    map: &FileSource,
    kind: FileKind,
    path: &Path,
    raw_chunk_size: u64,
) -> Result<Layout, ScanError> {
    match kind {
        FileKind::Raw => Ok(raw_layout(map.len(), raw_chunk_size)),
        FileKind::Safetensors => st::layout(map).map_err(|source| ScanError::Safetensors {
            path: path.to_path_buf(),
            source,
        }),
        FileKind::Gguf => gguf_layout(map).map_err(|source| ScanError::Gguf {
            path: path.to_path_buf(),
            source,
        }),
    }
}

fn gguf_layout(map: &FileSource) -> Result<Layout, GgufError> {
    let (parsed, prefix) = gguf::parse_growing(map.len(), |want| {
        map.copy(0..want).ok_or(GgufError::Truncated {
            what: "header (the file shrank while it was read)",
            offset: 0,
        })
    })?;
    let header_len = parsed.data_start;
    let header = header_from_prefix(prefix, map, header_len)?;
    let mut chunks = vec![(ChunkRole::Header, 0..header_len)];
    chunks.extend(
        parsed
            .tensors
            .into_iter()
            .map(|t| (ChunkRole::Tensor(t.name), t.offset..t.offset + t.chunk_len)),
    );
    Ok(Layout {
        chunks,
        header: Some(header),
    })
}

/// The header chunk's bytes, built from the prefix the parser read, so that the bytes
/// hashed are the bytes parsed. Only the alignment padding after the tensor infos may lie
/// beyond the prefix; it is read from the file.
fn header_from_prefix(mut prefix: Vec<u8>, map: &FileSource, header_len: u64) -> Result<Vec<u8>, GgufError> {
    let have = prefix.len() as u64;
    if have >= header_len {
        prefix.truncate(header_len as usize);
    } else {
        let padding = map.copy(have..header_len).ok_or(GgufError::Truncated {
            what: "header padding",
            offset: have,
        })?;
        prefix.extend(padding);
    }
    Ok(prefix)
}

/// Hashes one file (`rel` is its manifest path).
pub fn scan_file(path: &Path, rel: &str, options: ScanOptions<'_>) -> Result<FileEntry, ScanError> {
    if options.raw_chunk_size == 0 {
        return Err(ScanError::ZeroChunkSize);
    }
    let map = open_source(path, options.read_mode)?;
    let kind = kind_for_path(rel);
    let layout = layout_of(&map, kind, path, options.raw_chunk_size)?;
    let digests = hash_chunks(&map, &layout, options.progress).ok_or_else(|| ScanError::Changed {
        path: path.to_path_buf(),
    })?;
    let chunks = layout
        .chunks
        .into_iter()
        .zip(digests)
        .map(|((role, range), digest)| (role, range.end - range.start, digest))
        .collect();
    let chunk_size = (kind == FileKind::Raw).then_some(options.raw_chunk_size);
    Ok(FileEntry::new(rel.to_string(), kind, chunk_size, chunks))
}

/// Hashes every chunk in parallel; the header chunk from its parsed copy.
fn hash_chunks(map: &FileSource, layout: &Layout, progress: Option<ProgressFn<'_>>) -> Option<Vec<Digest>> {
    layout
        .chunks
        .par_iter()
        .enumerate()
        .map(|(i, (_, range)): (usize, &(ChunkRole, Range<u64>))| {
            let digest = match (&layout.header, i) {
                (Some(header), 0) => Some(Digest::of(header)),
                _ => map.hash(range.clone()),
            };
            if let Some(report) = progress {
                report(range.end - range.start);
            }
            digest
        })
        .collect()
}

/// Hashes listed files (in parallel across files and chunks).
pub fn scan_files(files: &[FoundFile], options: ScanOptions<'_>) -> Result<Vec<FileEntry>, ScanError> {
    files.par_iter().map(|f| scan_file(&f.path, &f.rel, options)).collect()
}

/// Hashes a model the way signing does: a folder (every file not ignored or excluded,
/// paths relative to it), or one file (its manifest path is its file name). Symlinks and
/// special files are refused.
pub fn scan_model(
    model: &Path,
    ignore: &IgnoreRules,
    exclude: &[PathBuf],
    options: ScanOptions<'_>,
) -> Result<Vec<FileEntry>, ScanError> {
    let meta = std::fs::symlink_metadata(model).map_err(|source| ScanError::Io {
        path: model.to_path_buf(),
        source,
    })?;
    if meta.is_dir() {
        return scan_folder(model, ignore, exclude, options);
    }
    if meta.file_type().is_symlink() {
        return Err(ScanError::Symlink {
            path: model.to_path_buf(),
        });
    }
    let name = model
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| ScanError::Io {
            path: model.to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "the file name is not valid UTF-8"),
        })?;
    Ok(vec![scan_file(model, name, options)?])
}

/// Walks `root` and hashes every file that is not ignored or excluded.
pub fn scan_folder(
    root: &Path,
    ignore: &IgnoreRules,
    exclude: &[PathBuf],
    options: ScanOptions<'_>,
) -> Result<Vec<FileEntry>, ScanError> {
    let files = walk_folder(root, ignore, exclude)?;
    scan_files(&files, options)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn header_from_prefix_truncates_or_completes_with_the_padding() {
        let data: Vec<u8> = (0..100u8).collect();
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(&data).unwrap();
        let len = f.metadata().unwrap().len();
        let map = FileSource::new(f, len, ReadMode::Auto).unwrap();
        // The prefix covers the header: it is cut to the header's length.
        assert_eq!(header_from_prefix(data[..80].to_vec(), &map, 64).unwrap(), &data[..64]);
        // The padding lies beyond the prefix: it is read from the file.
        assert_eq!(header_from_prefix(data[..40].to_vec(), &map, 64).unwrap(), &data[..64]);
        // A header past the end of the file is an error, never a short header.
        assert!(header_from_prefix(data[..40].to_vec(), &map, 200).is_err());
    }
}
