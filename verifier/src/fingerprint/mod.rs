//! Weight fingerprints (spec/fingerprint.md): a bounded, deterministic sample of each
//! tensor's values, dequantized to f32, and the lineage tests built on them.
//!
//! Where a tensor is sampled depends only on its logical shape and a fixed seed, never on
//! its content, so two models of the same shapes are sampled at the same places whatever
//! their names, files or encodings. Only the sampled bytes are read (positioned reads, no
//! mapping of the model), which keeps fingerprinting a small fraction of hashing.

pub mod dequant;
mod file;
pub mod lineage;

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

pub use dequant::ElementType;
pub use file::{FingerprintFileError, MAX_FILE_BYTES};

use crate::format::gguf::{self, GgufError};
use crate::format::kind_for_path;
use crate::format::safetensors::{self as st, SafetensorsError};
use crate::manifest::FileKind;
use crate::walk::{walk_folder, IgnoreRules, WalkError};

/// Version of the sampling rule and file encoding (spec/fingerprint.md §1).
pub const FINGERPRINT_VERSION: u64 = 1;
/// The fixed seed of the sampling rule.
pub const SEED: u64 = 0x7765_6967_6874_7331; // "weights1"
/// Tensors of at most this many values are sampled whole.
pub const FULL_LIMIT: u64 = 16384;
/// Larger tensors: at most this many rows are sampled…
pub const MAX_ROWS: usize = 16;
/// …and about this many values in all.
pub const VALUE_BUDGET: u64 = 1024;
/// Rows at multiples of this (and the row before each) are the candidates: they are fixed
/// points of llama.cpp's Q/K row permutation for every head size dividing it.
pub const ROW_PERIOD: u64 = 128;

/// Where a tensor of logical shape `rows × cols` is sampled: the same column window of
/// each listed row. Values are laid out row by row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SamplePlan {
    /// Sampled rows, increasing.
    pub rows: Vec<u64>,
    /// First sampled column.
    pub col_start: u64,
    /// Sampled columns per row.
    pub width: u64,
}

impl SamplePlan {
    /// Number of sampled values.
    pub fn len(&self) -> usize {
        self.rows.len() * self.width as usize
    }
    /// Whether the plan samples nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Whether every value of the tensor is sampled.
    pub fn is_whole(&self, rows: u64) -> bool {
        self.rows.len() as u64 == rows
    }
}

/// SplitMix64's output function: the project's one seeded mixer for sampling.
fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The sampling rule of spec/fingerprint.md §2.
pub fn plan(rows: u64, cols: u64) -> SamplePlan {
    let Some(n) = rows.checked_mul(cols).filter(|&n| n > 0) else {
        return SamplePlan {
            rows: Vec::new(),
            col_start: 0,
            width: 0,
        };
    };
    if n <= FULL_LIMIT {
        return SamplePlan {
            rows: (0..rows).collect(),
            col_start: 0,
            width: cols,
        };
    }
    let h = splitmix64(SEED ^ splitmix64(rows) ^ splitmix64(cols.rotate_left(32)));
    let chosen: Vec<u64> = if rows as usize <= MAX_ROWS {
        (0..rows).collect()
    } else {
        let mut cand = vec![0];
        let mut m = ROW_PERIOD;
        while m < rows {
            cand.push(m - 1);
            cand.push(m);
            m += ROW_PERIOD;
        }
        if cand.last() != Some(&(rows - 1)) {
            cand.push(rows - 1);
        }
        cand.dedup();
        if cand.len() <= MAX_ROWS {
            cand
        } else {
            let k = cand.len() as u64;
            let off = h % MAX_ROWS as u64;
            (0..MAX_ROWS as u64)
                .map(|i| cand[((i * k + off) / MAX_ROWS as u64) as usize])
                .collect()
        }
    };
    let width = cols.min((VALUE_BUDGET / chosen.len() as u64).max(64));
    let span = cols - width + 1;
    let col_start = (splitmix64(h) % span) / 32 * 32;
    SamplePlan {
        rows: chosen,
        col_start,
        width,
    }
}

/// One tensor's sample.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorPrint {
    /// Where it came from (`file/tensor`); for reports only, never for matching.
    pub name: String,
    /// Its element encoding, as read.
    pub dtype: String,
    /// Logical rows: the slowest dimension in row-major order.
    pub rows: u64,
    /// Logical columns: the product of the other dimensions.
    pub cols: u64,
    /// The values at [`plan`]`(rows, cols)`, dequantized to f32 (NaN canonical).
    pub values: Vec<f32>,
}

/// A model's fingerprint.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Fingerprint {
    /// Sampled tensors, in the order read.
    pub tensors: Vec<TensorPrint>,
}

/// Why a model could not be fingerprinted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FingerprintError {
    /// Listing the folder failed.
    #[error(transparent)]
    Walk(#[from] WalkError),
    /// Reading a file failed.
    #[error("reading {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A safetensors file was refused.
    #[error("{path}: {source}")]
    Safetensors {
        /// The file.
        path: PathBuf,
        /// Why.
        source: SafetensorsError,
    },
    /// A GGUF file was refused.
    #[error("{path}: {source}")]
    Gguf {
        /// The file.
        path: PathBuf,
        /// Why.
        source: GgufError,
    },
    /// A block-quantized tensor's rows do not hold whole blocks.
    #[error("{path}: tensor {tensor:?} has rows of {cols} values, not a multiple of its {block}-value blocks")]
    RaggedBlocks {
        /// The file.
        path: PathBuf,
        /// The tensor.
        tensor: String,
        /// Row length.
        cols: u64,
        /// Block length.
        block: u64,
    },
    /// The model holds no tensor the fingerprint can read.
    #[error("{path}: no tensor of a readable type (safetensors or GGUF) was found")]
    NoTensors {
        /// The model.
        path: PathBuf,
    },
    /// A fingerprint file was refused.
    #[error("{path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        source: FingerprintFileError,
    },
}

/// One tensor to sample: where its bytes lie and how to read them.
struct Source {
    name: String,
    ty: ElementType,
    /// Logical shape, slowest first.
    shape: Vec<u64>,
    /// Absolute offset of the first element.
    offset: u64,
}

/// Fingerprints a model: a folder (every safetensors and GGUF file in it, in path order)
/// or one file.
pub fn fingerprint_model(path: &Path) -> Result<Fingerprint, FingerprintError> {
    let files: Vec<(String, PathBuf)> = if path.is_dir() {
        walk_folder(path, &IgnoreRules::defaults(), &[])?
            .into_iter()
            .map(|f| (f.rel, f.path))
            .collect()
    } else {
        let rel = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        vec![(rel, path.to_path_buf())]
    };
    let mut out = Fingerprint::default();
    for (rel, file_path) in files {
        let kind = kind_for_path(&rel);
        if kind == FileKind::Raw {
            continue;
        }
        let file = File::open(&file_path).map_err(|source| FingerprintError::Io {
            path: file_path.clone(),
            source,
        })?;
        let sources = match kind {
            FileKind::Safetensors => safetensors_sources(&file, &file_path)?,
            _ => gguf_sources(&file, &file_path)?,
        };
        for s in sources {
            if let Some(t) = sample(&file, &file_path, &rel, s)? {
                out.tensors.push(t);
            }
        }
    }
    if out.tensors.is_empty() {
        return Err(FingerprintError::NoTensors {
            path: path.to_path_buf(),
        });
    }
    Ok(out)
}

/// A model or a fingerprint file: a file whose first bytes are not a model's is read as a
/// fingerprint file.
pub fn load(path: &Path) -> Result<Fingerprint, FingerprintError> {
    if path.is_dir() || kind_for_path(&path.to_string_lossy()) != FileKind::Raw {
        return fingerprint_model(path);
    }
    let bytes = read_limited(path, MAX_FILE_BYTES as u64)?;
    Fingerprint::from_bytes(&bytes).map_err(|source| FingerprintError::File {
        path: path.to_path_buf(),
        source,
    })
}

/// Reads a whole small file, refusing one over `limit` bytes ([`crate::bounded`]).
pub(crate) fn read_limited(path: &Path, limit: u64) -> Result<Vec<u8>, FingerprintError> {
    crate::bounded::read_file_within(path, limit).map_err(|e| match e {
        crate::bounded::ReadWithinError::TooLarge { size } => FingerprintError::File {
            path: path.to_path_buf(),
            source: FingerprintFileError::TooLarge { size, limit },
        },
        crate::bounded::ReadWithinError::Io(source) => FingerprintError::Io {
            path: path.to_path_buf(),
            source,
        },
    })
}

fn read_exact_at(file: &File, path: &Path, offset: u64, len: usize) -> Result<Vec<u8>, FingerprintError> {
    let mut buf = vec![0u8; len];
    file.read_exact_at(&mut buf, offset)
        .map_err(|source| FingerprintError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    Ok(buf)
}

fn safetensors_sources(file: &File, path: &Path) -> Result<Vec<Source>, FingerprintError> {
    let refuse = |source| FingerprintError::Safetensors {
        path: path.to_path_buf(),
        source,
    };
    let size = file
        .metadata()
        .map_err(|source| FingerprintError::Io {
            path: path.to_path_buf(),
            source,
        })?
        .len();
    if size < 8 {
        return Err(refuse(SafetensorsError::TooSmall { size }));
    }
    let mut len_bytes = [0u8; 8];
    len_bytes.copy_from_slice(&read_exact_at(file, path, 0, 8)?);
    let len = u64::from_le_bytes(len_bytes);
    if len > st::MAX_HEADER_BYTES {
        return Err(refuse(SafetensorsError::HeaderTooLarge { len }));
    }
    if 8 + len > size {
        return Err(refuse(SafetensorsError::HeaderPastEnd { len, size }));
    }
    let json = read_exact_at(file, path, 8, len as usize)?;
    let (descs, data_len) = st::tensor_descs(&json).map_err(refuse)?;
    let expected_end = 8 + len + data_len;
    if expected_end > size {
        return Err(refuse(SafetensorsError::Truncated { expected_end, size }));
    }
    Ok(descs
        .into_iter()
        .filter_map(|d| {
            let ty = ElementType::from_safetensors(d.dtype)?;
            Some(Source {
                name: d.name,
                ty,
                shape: d.shape.iter().map(|&x| x as u64).collect(),
                offset: 8 + len + d.range.start,
            })
        })
        .collect())
}

fn gguf_sources(file: &File, path: &Path) -> Result<Vec<Source>, FingerprintError> {
    let size = file
        .metadata()
        .map_err(|source| FingerprintError::Io {
            path: path.to_path_buf(),
            source,
        })?
        .len();
    let (layout, _) = gguf::parse_growing(size, |want| {
        read_exact_at(file, path, 0, want as usize).map_err(GgufReadError::Other)
    })
    .map_err(|e| match e {
        GgufReadError::Gguf(source) => FingerprintError::Gguf {
            path: path.to_path_buf(),
            source,
        },
        GgufReadError::Other(e) => e,
    })?;
    Ok(layout
        .tensors
        .into_iter()
        .filter_map(|t| {
            let ty = ElementType::from_ggml(t.ggml_type)?;
            // GGUF lists the fastest dimension first; the logical shape is the reverse,
            // which is why a converted model's tensors keep their rows and columns.
            let mut shape = t.dims.clone();
            shape.reverse();
            Some(Source {
                name: t.name,
                ty,
                shape,
                offset: t.offset,
            })
        })
        .collect())
}

/// Lets [`gguf::parse_growing`] carry both its own errors and our read errors.
enum GgufReadError {
    Gguf(GgufError),
    Other(FingerprintError),
}

impl From<GgufError> for GgufReadError {
    fn from(e: GgufError) -> Self {
        GgufReadError::Gguf(e)
    }
}

impl From<FingerprintError> for GgufReadError {
    fn from(e: FingerprintError) -> Self {
        GgufReadError::Other(e)
    }
}

/// Reads and decodes the planned values of one tensor; `None` for one with no values.
fn sample(file: &File, path: &Path, rel: &str, s: Source) -> Result<Option<TensorPrint>, FingerprintError> {
    let Some((&rows, rest)) = s.shape.split_first() else {
        return Ok(None); // a scalar: nothing to match on
    };
    let (rows, cols) = if rest.is_empty() {
        (1, rows)
    } else {
        (rows, rest.iter().try_fold(1u64, |a, &d| a.checked_mul(d)).unwrap_or(0))
    };
    let p = plan(rows, cols);
    if p.is_empty() {
        return Ok(None);
    }
    let (block, block_bytes) = s.ty.block();
    let (block, block_bytes) = (block as u64, block_bytes as u64);
    if cols % block != 0 {
        return Err(FingerprintError::RaggedBlocks {
            path: path.to_path_buf(),
            tensor: s.name,
            cols,
            block,
        });
    }
    let mut values = Vec::with_capacity(p.len());
    let mut decoded = Vec::new();
    for &r in &p.rows {
        // Whole blocks covering [col_start, col_start + width) of row r; rows hold whole
        // blocks, so block boundaries are the same in every row. The header parsers have
        // checked that every tensor lies inside its file, so the arithmetic fits.
        let first = r * cols + p.col_start;
        let first_block = first / block;
        let last_block = (first + p.width).div_ceil(block);
        let bytes = read_exact_at(
            file,
            path,
            s.offset + first_block * block_bytes,
            ((last_block - first_block) * block_bytes) as usize,
        )?;
        decoded.clear();
        dequant::decode(s.ty, &bytes, &mut decoded);
        let skip = (first - first_block * block) as usize;
        values.extend(
            decoded[skip..skip + p.width as usize]
                .iter()
                .map(|v| if v.is_nan() { f32::NAN } else { *v }),
        );
    }
    Ok(Some(TensorPrint {
        name: format!("{rel}/{}", s.name),
        dtype: s.ty.name().to_string(),
        rows,
        cols,
        values,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_tensors_are_sampled_whole() {
        let p = plan(64, 256);
        assert_eq!(p.rows.len(), 64);
        assert_eq!((p.col_start, p.width), (0, 256));
        assert!(plan(0, 5).is_empty());
    }

    #[test]
    fn large_tensors_sample_fixed_points_within_budget() {
        for (rows, cols) in [
            (4096u64, 4096u64),
            (32000, 4096),
            (256, 1024),
            (11008, 4096),
            (20, 5000),
        ] {
            let p = plan(rows, cols);
            assert!(p.rows.len() <= MAX_ROWS && !p.rows.is_empty());
            assert!(p.len() as u64 <= VALUE_BUDGET.max(64 * MAX_ROWS as u64));
            assert!(p.col_start + p.width <= cols);
            assert!(p.rows.windows(2).all(|w| w[0] < w[1]), "{rows}x{cols}: {:?}", p.rows);
            if rows > MAX_ROWS as u64 {
                assert!(p
                    .rows
                    .iter()
                    .all(|&r| r == 0 || r == rows - 1 || r % ROW_PERIOD == 0 || (r + 1) % ROW_PERIOD == 0));
            }
        }
        // Deterministic, and different shapes are sampled at different columns.
        assert_eq!(plan(4096, 4096), plan(4096, 4096));
    }

    /// llama.cpp's permutation of Q/K rows for `n_head` heads, as convert_hf_to_gguf does it:
    /// reshape(n_head, 2, hd/2, cols).swapaxes(1, 2).
    fn llama_permute_row(r: u64, rows: u64, n_head: u64) -> u64 {
        let hd = rows / n_head;
        let (h, i) = (r / hd, r % hd);
        let (j, p) = (i / (hd / 2), i % (hd / 2));
        h * hd + 2 * p + j
    }

    #[test]
    fn sampled_rows_are_fixed_by_the_qk_permutation() {
        for (rows, heads) in [(4096u64, 32u64), (4096, 64), (2048, 64), (1024, 8), (5120, 40)] {
            let p = plan(rows, 4096);
            for &r in &p.rows {
                assert_eq!(
                    llama_permute_row(r, rows, heads),
                    r,
                    "rows {rows} heads {heads} row {r}"
                );
            }
        }
    }
}
