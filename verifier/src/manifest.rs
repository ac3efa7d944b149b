//! The signed manifest (spec/format.md §3): what a signature covers.
//!
//! A [`Manifest`] lists every file of a model with its size, kind, chunks and file
//! digest, plus lineage, the ignore rules used at signing, annotations and an
//! informational creation time. [`Manifest::to_bytes`] writes the one deterministic
//! CBOR encoding; [`Manifest::from_bytes`] accepts only that encoding and checks every
//! structural rule (sorted safe paths, chunks that tile each file, digests that match
//! their chunk tables), so a decoded manifest is internally consistent.

use std::collections::BTreeMap;
use std::fmt;

use crate::cbor::{CborError, Limits, Writer};
use crate::digest::{Digest, FILE_DIGEST_CONTEXT, MANIFEST_DIGEST_CONTEXT};

/// The manifest format version this crate reads and writes.
pub const FORMAT_VERSION: u64 = 1;

/// Decoding limits for manifests (spec/format.md §5.3).
pub(crate) const MANIFEST_LIMITS: Limits = Limits {
    max_bytes: 64 << 20,
    max_items: 8_000_000,
    max_depth: 8,
};
const MAX_PATH_BYTES: usize = 4096;
const MAX_NAME_BYTES: usize = 4096;
const MAX_PARENTS: usize = 64;
const MAX_IGNORE_RULES: usize = 256;
const MAX_IGNORE_RULE_BYTES: usize = 1024;
const MAX_ANNOTATIONS: usize = 64;
const MAX_ANNOTATION_KEY_BYTES: usize = 128;
const MAX_ANNOTATION_VALUE_BYTES: usize = 4096;

/// How a file is split into chunks. New formats add kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum FileKind {
    /// A safetensors file: header chunk, then one chunk per tensor.
    Safetensors,
    /// A GGUF file: header chunk (with padding), then one chunk per tensor (with padding).
    Gguf,
    /// Any other file: fixed-size chunks.
    Raw,
}

impl FileKind {
    /// The name used in the manifest.
    pub fn as_str(self) -> &'static str {
        match self {
            FileKind::Safetensors => "safetensors",
            FileKind::Gguf => "gguf",
            FileKind::Raw => "raw",
        }
    }
    fn code(self) -> u8 {
        match self {
            FileKind::Safetensors => 1,
            FileKind::Gguf => 2,
            FileKind::Raw => 3,
        }
    }
    fn parse(s: &str) -> Option<Self> {
        match s {
            "safetensors" => Some(FileKind::Safetensors),
            "gguf" => Some(FileKind::Gguf),
            "raw" => Some(FileKind::Raw),
            _ => None,
        }
    }
}

impl fmt::Display for FileKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What part of a file a chunk is.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ChunkRole {
    /// The header of a safetensors or GGUF file.
    Header,
    /// One tensor's bytes (GGUF: with the padding after it).
    Tensor(String),
    /// A fixed-size piece of a raw file.
    Data,
}

/// One chunk of a file: a byte range and its BLAKE3 digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// What the chunk is.
    pub role: ChunkRole,
    /// Offset of its first byte in the file (derived: the sum of earlier lengths).
    pub offset: u64,
    /// Length in bytes.
    pub len: u64,
    /// BLAKE3 of the bytes.
    pub digest: Digest,
}

impl Chunk {
    /// The tensor name, for tensor chunks.
    pub fn tensor_name(&self) -> Option<&str> {
        match &self.role {
            ChunkRole::Tensor(name) => Some(name),
            _ => None,
        }
    }

    /// A short human label: `header`, `tensor NAME`, `bytes A..B`.
    pub fn label(&self) -> String {
        match &self.role {
            ChunkRole::Header => "header".to_string(),
            ChunkRole::Tensor(name) => format!("tensor {name}"),
            ChunkRole::Data => format!("bytes {}..{}", self.offset, self.offset + self.len),
        }
    }
}

/// One file of the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEntry {
    /// Relative `/`-separated path.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// How it was chunked.
    pub kind: FileKind,
    /// For raw files: the fixed chunk size.
    pub chunk_size: Option<u64>,
    /// The chunks, tiling the file in order.
    pub chunks: Vec<Chunk>,
    /// The file digest over the chunk table (spec/format.md §4.2).
    pub digest: Digest,
}

impl FileEntry {
    /// Builds an entry, computing offsets and the file digest.
    pub(crate) fn new(
        path: String,
        kind: FileKind,
        chunk_size: Option<u64>,
        chunks: Vec<(ChunkRole, u64, Digest)>,
    ) -> Self {
        let mut offset = 0u64;
        let chunks: Vec<Chunk> = chunks
            .into_iter()
            .map(|(role, len, digest)| {
                let chunk = Chunk {
                    role,
                    offset,
                    len,
                    digest,
                };
                offset += len;
                chunk
            })
            .collect();
        let digest = file_digest(kind, offset, chunk_size, &chunks);
        FileEntry {
            path,
            size: offset,
            kind,
            chunk_size,
            chunks,
            digest,
        }
    }

    /// The tensor chunks of this file.
    pub fn tensors(&self) -> impl Iterator<Item = &Chunk> {
        self.chunks.iter().filter(|c| c.tensor_name().is_some())
    }
}

/// The file digest: BLAKE3 derive-key over the chunk table (spec/format.md §4.2).
///
/// The table is streamed into the hasher through a small staging buffer rather than
/// built whole: for 200,000 tensors it would be a 15 MB allocation made only to be hashed.
pub(crate) fn file_digest(kind: FileKind, size: u64, chunk_size: Option<u64>, chunks: &[Chunk]) -> Digest {
    const STAGING_BYTES: usize = 64 * 1024;
    let mut hasher = blake3::Hasher::new_derive_key(FILE_DIGEST_CONTEXT);
    let mut table = Vec::with_capacity(STAGING_BYTES + 64 + MAX_NAME_BYTES);
    table.extend_from_slice(&size.to_le_bytes());
    table.push(kind.code());
    table.extend_from_slice(&chunk_size.unwrap_or(0).to_le_bytes());
    for chunk in chunks {
        let (code, name): (u8, &[u8]) = match &chunk.role {
            ChunkRole::Header => (1, b""),
            ChunkRole::Tensor(n) => (2, n.as_bytes()),
            ChunkRole::Data => (3, b""),
        };
        table.push(code);
        // Names are capped at MAX_NAME_BYTES, so the length always fits.
        table.extend_from_slice(&(name.len() as u32).to_le_bytes());
        table.extend_from_slice(name);
        table.extend_from_slice(&chunk.len.to_le_bytes());
        table.extend_from_slice(chunk.digest.as_bytes());
        if table.len() >= STAGING_BYTES {
            hasher.update(&table);
            table.clear();
        }
    }
    hasher.update(&table);
    Digest::from_bytes(*hasher.finalize().as_bytes())
}

/// How a derivative relates to its parent release. Later spec versions may add relations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Relation {
    /// Further training of the parent's weights.
    Finetune,
    /// A lower-precision copy of the parent.
    Quantized,
    /// Weights combined from several parents.
    Merge,
    /// An adapter (LoRA and the like) meant to be applied to the parent.
    Adapter,
    /// Anything else.
    Other,
}

impl Relation {
    /// Every relation, in spec order.
    pub const ALL: [Relation; 5] = [
        Relation::Finetune,
        Relation::Quantized,
        Relation::Merge,
        Relation::Adapter,
        Relation::Other,
    ];
    /// The name used in the manifest.
    pub fn as_str(self) -> &'static str {
        match self {
            Relation::Finetune => "finetune",
            Relation::Quantized => "quantized",
            Relation::Merge => "merge",
            Relation::Adapter => "adapter",
            Relation::Other => "other",
        }
    }
}

impl std::str::FromStr for Relation {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Relation::ALL.into_iter().find(|r| r.as_str() == s).ok_or_else(|| {
            format!("unknown relation {s:?}: expected one of finetune, quantized, merge, adapter, other")
        })
    }
}

impl fmt::Display for Relation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A parent release this model derives from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parent {
    /// The parent's manifest digest.
    pub digest: Digest,
    /// How this model relates to it.
    pub relation: Relation,
}

/// The signed description of a model.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Manifest {
    /// Optional human name of the model.
    pub name: Option<String>,
    /// Every file, sorted by path.
    pub files: Vec<FileEntry>,
    /// Lineage.
    pub parents: Vec<Parent>,
    /// The ignore rules used when the folder was signed (spec/format.md §7).
    pub ignore: Vec<String>,
    /// Small free-form annotations.
    pub annotations: BTreeMap<String, String>,
    /// Creation time, seconds since the Unix epoch. Informational only: never trusted.
    pub created: Option<u64>,
}

/// Why manifest bytes were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ManifestError {
    /// The CBOR itself was refused.
    #[error("manifest encoding: {0}")]
    Cbor(#[from] CborError),
    /// A version this crate does not know.
    #[error("manifest format version {found} is not supported (this build reads version {FORMAT_VERSION})")]
    UnsupportedVersion {
        /// The version found.
        found: u64,
    },
    /// A field is missing, has the wrong type, or is unknown.
    #[error("manifest field {field}: {problem}")]
    Field {
        /// Dotted location, e.g. `files[3].chunks[0].len`.
        field: String,
        /// What is wrong with it.
        problem: String,
    },
    /// A file path breaks the path rules.
    #[error("manifest path {path:?} is not allowed: {reason}")]
    BadPath {
        /// The path.
        path: String,
        /// Which rule it breaks.
        reason: &'static str,
    },
    /// Paths are not strictly sorted (or repeat).
    #[error("manifest paths are not strictly sorted: {previous:?} then {path:?}")]
    PathsNotSorted {
        /// The earlier path.
        previous: String,
        /// The path out of order.
        path: String,
    },
    /// A file's chunks do not fit its kind or size.
    #[error("manifest entry {path:?}: {problem}")]
    BadChunks {
        /// The file.
        path: String,
        /// What is wrong.
        problem: String,
    },
    /// The stored file digest does not match the chunk table.
    #[error("manifest entry {path:?}: stored file digest {stored} does not match its chunk table ({computed})")]
    FileDigestMismatch {
        /// The file.
        path: String,
        /// As stored.
        stored: Digest,
        /// As computed.
        computed: Digest,
    },
    /// A count or length limit was exceeded.
    #[error("manifest {what}: {found} is over the limit of {limit}")]
    Limit {
        /// What was counted.
        what: &'static str,
        /// The value found.
        found: usize,
        /// The limit.
        limit: usize,
    },
}

/// Checks one manifest path against spec/format.md §3.2.
pub fn check_path(path: &str) -> Result<(), ManifestError> {
    let bad = |reason| {
        Err(ManifestError::BadPath {
            path: path.to_string(),
            reason,
        })
    };
    if path.is_empty() {
        return bad("empty");
    }
    if path.len() > MAX_PATH_BYTES {
        return bad("longer than 4096 bytes");
    }
    if path.starts_with('/') {
        return bad("absolute");
    }
    if path.chars().any(|c| c == '\\' || c.is_control()) {
        return bad("contains a backslash or a control character");
    }
    for part in path.split('/') {
        match part {
            "" => return bad("empty component (double or trailing slash)"),
            "." | ".." => return bad("contains a '.' or '..' component"),
            _ => {}
        }
    }
    Ok(())
}

impl Manifest {
    /// The one deterministic CBOR encoding of this manifest.
    ///
    /// Refuses a manifest that a verifier would refuse: the structural rules, and the
    /// decoding limits (size and item count) applied to the finished bytes, so that
    /// `sign` can never write what `verify` cannot read.
    pub fn to_bytes(&self) -> Result<Vec<u8>, ManifestError> {
        self.check()?;
        // Keys in each map are written in canonical order (by encoded bytes: shorter first).
        let mut w = Writer::with_capacity(64 + self.files.iter().map(|f| 96 + f.chunks.len() * 80).sum::<usize>());
        let top_len = 2
            + usize::from(self.name.is_some())
            + usize::from(!self.parents.is_empty())
            + usize::from(!self.ignore.is_empty())
            + usize::from(!self.annotations.is_empty())
            + usize::from(self.created.is_some());
        w.map(top_len);
        w.text("v");
        w.uint(FORMAT_VERSION);
        if let Some(name) = &self.name {
            w.text("name");
            w.text(name);
        }
        w.text("files");
        w.array(self.files.len());
        for f in &self.files {
            encode_file(&mut w, f);
        }
        if !self.ignore.is_empty() {
            w.text("ignore");
            w.array(self.ignore.len());
            for rule in &self.ignore {
                w.text(rule);
            }
        }
        if let Some(t) = self.created {
            w.text("created");
            w.uint(t);
        }
        if !self.parents.is_empty() {
            w.text("parents");
            w.array(self.parents.len());
            for p in &self.parents {
                w.map(2);
                w.text("digest");
                w.bytes(p.digest.as_bytes());
                w.text("relation");
                w.text(p.relation.as_str());
            }
        }
        if !self.annotations.is_empty() {
            w.text("annotations");
            w.map(self.annotations.len());
            // Canonical order of text keys is by length, then by bytes.
            let mut keys: Vec<(&String, &String)> = self.annotations.iter().collect();
            keys.sort_by(|a, b| (a.0.len(), a.0.as_bytes()).cmp(&(b.0.len(), b.0.as_bytes())));
            for (k, v) in keys {
                w.text(k);
                w.text(v);
            }
        }
        w.finish(MANIFEST_LIMITS).map_err(|e| match e {
            CborError::TooLarge { size, limit } => ManifestError::Limit {
                what: "encoded size in bytes",
                found: size,
                limit,
            },
            CborError::TooManyItems { limit } => ManifestError::Limit {
                what: "CBOR data item count",
                found: limit as usize + 1,
                limit: limit as usize,
            },
            other => ManifestError::Cbor(other),
        })
    }

    /// The manifest digest of these exact bytes (spec/format.md §4.3).
    pub fn digest_of_bytes(bytes: &[u8]) -> Digest {
        Digest::derive_parallel(MANIFEST_DIGEST_CONTEXT, bytes)
    }

    /// Decodes and validates manifest bytes, in one pass over them: the deterministic
    /// profile is checked item by item as the entries are built (no value tree, no
    /// re-encoding), then the structural rules run over the entries.
    pub fn from_bytes(input: &[u8]) -> Result<Manifest, ManifestError> {
        let manifest = decode::manifest(input)?;
        manifest.check()?;
        Ok(manifest)
    }

    /// Checks the structural rules that do not depend on the encoding.
    fn check(&self) -> Result<(), ManifestError> {
        let mut previous: Option<&str> = None;
        for file in &self.files {
            check_path(&file.path)?;
            if let Some(prev) = previous {
                if prev.as_bytes() >= file.path.as_bytes() {
                    return Err(ManifestError::PathsNotSorted {
                        previous: prev.to_string(),
                        path: file.path.clone(),
                    });
                }
            }
            previous = Some(&file.path);
            check_chunks(file)?;
        }
        if self.parents.len() > MAX_PARENTS {
            return Err(ManifestError::Limit {
                what: "parent count",
                found: self.parents.len(),
                limit: MAX_PARENTS,
            });
        }
        if self.ignore.len() > MAX_IGNORE_RULES {
            return Err(ManifestError::Limit {
                what: "ignore rule count",
                found: self.ignore.len(),
                limit: MAX_IGNORE_RULES,
            });
        }
        for rule in &self.ignore {
            crate::walk::IgnoreRule::parse(rule).map_err(|problem| field("manifest.ignore", &problem))?;
        }
        Ok(())
    }

    /// The file with this exact path.
    pub fn file(&self, path: &str) -> Option<&FileEntry> {
        self.files
            .binary_search_by(|f| f.path.as_bytes().cmp(path.as_bytes()))
            .ok()
            .map(|i| &self.files[i])
    }

    /// Total bytes of all files.
    pub fn total_size(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }
}

fn check_chunks(file: &FileEntry) -> Result<(), ManifestError> {
    let bad = |problem: String| ManifestError::BadChunks {
        path: file.path.clone(),
        problem,
    };
    let mut offset = 0u64;
    // Seeded per process (an unsigned manifest given to `inspect` cannot aim collisions
    // at it), and sized up front: one allocation, no rehashing.
    let mut names: std::collections::HashSet<&str, foldhash::fast::RandomState> =
        std::collections::HashSet::with_capacity_and_hasher(file.chunks.len(), Default::default());
    for (i, chunk) in file.chunks.iter().enumerate() {
        if chunk.offset != offset {
            return Err(bad(format!(
                "chunk {i} starts at {} but the previous chunks end at {offset}",
                chunk.offset
            )));
        }
        offset = offset
            .checked_add(chunk.len)
            .ok_or_else(|| bad("chunk lengths overflow".into()))?;
        let role_ok = match (file.kind, &chunk.role) {
            (FileKind::Raw, ChunkRole::Data) => true,
            (FileKind::Safetensors | FileKind::Gguf, ChunkRole::Header) => i == 0,
            (FileKind::Safetensors | FileKind::Gguf, ChunkRole::Tensor(name)) => {
                if name.len() > MAX_NAME_BYTES {
                    return Err(bad(format!("tensor name of {} bytes is over the limit", name.len())));
                }
                if !names.insert(name.as_str()) {
                    return Err(bad(format!("tensor {name:?} appears twice")));
                }
                i > 0
            }
            _ => false,
        };
        if !role_ok {
            return Err(bad(format!(
                "chunk {i} ({}) is not allowed here in a {} file",
                chunk.label(),
                file.kind
            )));
        }
    }
    if offset != file.size {
        return Err(bad(format!(
            "chunks cover {offset} bytes but the file has {}",
            file.size
        )));
    }
    match file.kind {
        FileKind::Raw => {
            let cs = file
                .chunk_size
                .filter(|cs| *cs > 0)
                .ok_or_else(|| bad("a raw file needs a chunk_size above 0".into()))?;
            let last = file.chunks.len().saturating_sub(1);
            for (i, chunk) in file.chunks.iter().enumerate() {
                let ok = if i == last {
                    chunk.len > 0 && chunk.len <= cs
                } else {
                    chunk.len == cs
                };
                if !ok {
                    return Err(bad(format!(
                        "raw chunk {i} has {} bytes; chunks must be {cs} bytes (the last 1..={cs})",
                        chunk.len
                    )));
                }
            }
        }
        FileKind::Safetensors | FileKind::Gguf => {
            if file.chunk_size.is_some() {
                return Err(bad("chunk_size is only for raw files".into()));
            }
            if file.chunks.is_empty() {
                return Err(bad("a header chunk is required".into()));
            }
        }
    }
    let computed = file_digest(file.kind, file.size, file.chunk_size, &file.chunks);
    if computed != file.digest {
        return Err(ManifestError::FileDigestMismatch {
            path: file.path.clone(),
            stored: file.digest,
            computed,
        });
    }
    Ok(())
}

/// Writes one file entry; keys in canonical order.
fn encode_file(w: &mut Writer, f: &FileEntry) {
    w.map(5 + usize::from(f.chunk_size.is_some()));
    w.text("kind");
    w.text(f.kind.as_str());
    w.text("path");
    w.text(&f.path);
    w.text("size");
    w.uint(f.size);
    w.text("chunks");
    w.array(f.chunks.len());
    for c in &f.chunks {
        let name = c.tensor_name();
        w.map(3 + usize::from(name.is_some()));
        w.text("len");
        w.uint(c.len);
        w.text("kind");
        w.text(match c.role {
            ChunkRole::Header => "header",
            ChunkRole::Data => "data",
            ChunkRole::Tensor(_) => "tensor",
        });
        if let Some(name) = name {
            w.text("name");
            w.text(name);
        }
        w.text("digest");
        w.bytes(c.digest.as_bytes());
    }
    w.text("digest");
    w.bytes(f.digest.as_bytes());
    if let Some(cs) = f.chunk_size {
        w.text("chunk_size");
        w.uint(cs);
    }
}

fn field(at: &str, problem: &str) -> ManifestError {
    ManifestError::Field {
        field: at.to_string(),
        problem: problem.to_string(),
    }
}

#[cfg(test)]
impl From<crate::fields::FieldError> for ManifestError {
    fn from(e: crate::fields::FieldError) -> Self {
        match e {
            crate::fields::FieldError::Field { field, problem } => ManifestError::Field { field, problem },
            crate::fields::FieldError::Limit { what, found, limit } => ManifestError::Limit { what, found, limit },
        }
    }
}

/// The decoder this crate had before the one-pass one: a generic value tree (from
/// `cbor::reference`), then typed fields. Kept only for the tests that check both
/// accept and refuse exactly the same inputs.
#[cfg(test)]
pub(crate) mod reference {
    use super::*;
    use crate::cbor;
    use crate::fields::{At, Fields};
    use ciborium::Value;

    impl Manifest {
        /// Decodes and validates manifest bytes.
        pub(crate) fn reference_from_bytes(input: &[u8]) -> Result<Manifest, ManifestError> {
            let value = cbor::reference::decode(input, MANIFEST_LIMITS)?;
            let mut top = Fields::new(value, "manifest")?;
            let version = top.required("v")?.uint()?;
            if version != FORMAT_VERSION {
                return Err(ManifestError::UnsupportedVersion { found: version });
            }
            let name = top.optional("name").map(|v| v.text_max(MAX_NAME_BYTES)).transpose()?;
            let files = top
                .required("files")?
                .array()?
                .into_iter()
                .map(decode_file)
                .collect::<Result<Vec<_>, _>>()?;
            let parents = match top.optional("parents") {
                None => vec![],
                Some(v) => v
                    .array_max(MAX_PARENTS)?
                    .into_iter()
                    .map(|p| {
                        let mut f = Fields::new_at(p)?;
                        let digest = f.required("digest")?.digest()?;
                        let rel = f.required("relation")?;
                        let at = rel.at.clone();
                        let relation = rel
                            .text()?
                            .parse()
                            .map_err(|problem| ManifestError::Field { field: at, problem })?;
                        f.finish()?;
                        Ok(Parent { digest, relation })
                    })
                    .collect::<Result<_, ManifestError>>()?,
            };
            let ignore = match top.optional("ignore") {
                None => vec![],
                Some(v) => v
                    .array_max(MAX_IGNORE_RULES)?
                    .into_iter()
                    .map(|r| r.text_max(MAX_IGNORE_RULE_BYTES))
                    .collect::<Result<_, _>>()?,
            };
            let annotations = match top.optional("annotations") {
                None => BTreeMap::new(),
                Some(v) => {
                    let at = v.at.clone();
                    let Value::Map(entries) = v.value else {
                        return Err(field(&at, "expected a map of text to text"));
                    };
                    if entries.len() > MAX_ANNOTATIONS {
                        return Err(ManifestError::Limit {
                            what: "annotation count",
                            found: entries.len(),
                            limit: MAX_ANNOTATIONS,
                        });
                    }
                    let mut out = BTreeMap::new();
                    for (k, v) in entries {
                        let k = At {
                            value: k,
                            at: format!("{at} key"),
                        }
                        .text_max(MAX_ANNOTATION_KEY_BYTES)?;
                        let v = At {
                            value: v,
                            at: format!("{at}.{k}"),
                        }
                        .text_max(MAX_ANNOTATION_VALUE_BYTES)?;
                        out.insert(k, v);
                    }
                    out
                }
            };
            let created = top.optional("created").map(|v| v.uint()).transpose()?;
            top.finish()?;
            let manifest = Manifest {
                name,
                files,
                parents,
                ignore,
                annotations,
                created,
            };
            manifest.check()?;
            Ok(manifest)
        }
    }

    fn decode_file(value: At) -> Result<FileEntry, ManifestError> {
        let mut f = Fields::new_at(value)?;
        let path_at = f.required("path")?;
        let path = path_at.text_max(MAX_PATH_BYTES)?;
        let size = f.required("size")?.uint()?;
        let kind_at = f.required("kind")?;
        let where_ = kind_at.at.clone();
        let kind_text = kind_at.text()?;
        let kind =
            FileKind::parse(&kind_text).ok_or_else(|| field(&where_, &format!("unknown file kind {kind_text:?}")))?;
        let chunk_size = f.optional("chunk_size").map(|v| v.uint()).transpose()?;
        let digest = f.required("digest")?.digest()?;
        let mut offset = 0u64;
        let chunks = f
            .required("chunks")?
            .array()?
            .into_iter()
            .map(|c| {
                let mut cf = Fields::new_at(c)?;
                let len = cf.required("len")?.uint()?;
                let digest = cf.required("digest")?.digest()?;
                let kind_at = cf.required("kind")?;
                let at = kind_at.at.clone();
                let role = match kind_at.text()?.as_str() {
                    "header" => ChunkRole::Header,
                    "data" => ChunkRole::Data,
                    "tensor" => ChunkRole::Tensor(cf.required("name")?.text_max(MAX_NAME_BYTES)?),
                    other => return Err(field(&at, &format!("unknown chunk kind {other:?}"))),
                };
                cf.finish()?;
                let chunk = Chunk {
                    role,
                    offset,
                    len,
                    digest,
                };
                offset = offset.saturating_add(len);
                Ok(chunk)
            })
            .collect::<Result<Vec<_>, ManifestError>>()?;
        f.finish()?;
        Ok(FileEntry {
            path,
            size,
            kind,
            chunk_size,
            chunks,
            digest,
        })
    }
}

/// The one-pass manifest decoder: a [`Reader`](crate::cbor::Reader) over the bytes, with
/// each map's keys checked for canonical order as they are read and dispatched by name.
/// Errors name the field as the value-tree decoder did (`manifest.files[3].chunks[0].len`);
/// the location strings are only built on the error path.
mod decode {
    use super::*;
    use crate::cbor::{check_key_order, Item, Reader};

    /// Reads typed items from a [`Reader`], turning a wrong type into a field error.
    pub(super) struct Cursor<'a> {
        pub(super) r: Reader<'a>,
    }

    impl<'a> Cursor<'a> {
        fn next(&mut self) -> Result<Item<'a>, ManifestError> {
            Ok(self.r.next()?)
        }
        pub(super) fn uint(&mut self, at: impl Fn() -> String) -> Result<u64, ManifestError> {
            match self.next()? {
                Item::Uint(n) => Ok(n),
                _ => Err(field(&at(), "expected an unsigned integer")),
            }
        }
        pub(super) fn text(&mut self, max: usize, at: impl Fn() -> String) -> Result<&'a str, ManifestError> {
            match self.next()? {
                Item::Text(s) if s.len() <= max => Ok(s),
                Item::Text(s) => Err(field(
                    &at(),
                    &format!("text of {} bytes is over the limit of {max}", s.len()),
                )),
                _ => Err(field(&at(), "expected text")),
            }
        }
        pub(super) fn digest(&mut self, at: impl Fn() -> String) -> Result<Digest, ManifestError> {
            match self.next()? {
                Item::Bytes(b) => match <[u8; 32]>::try_from(b) {
                    Ok(raw) => Ok(Digest::from_bytes(raw)),
                    Err(_) => Err(field(&at(), &format!("expected 32 bytes, found {}", b.len()))),
                },
                _ => Err(field(&at(), "expected a byte string")),
            }
        }
        pub(super) fn array(&mut self, at: impl Fn() -> String) -> Result<u64, ManifestError> {
            match self.next()? {
                Item::Array(n) => Ok(n),
                _ => Err(field(&at(), "expected an array")),
            }
        }
        pub(super) fn map(&mut self, at: impl Fn() -> String) -> Result<u64, ManifestError> {
            match self.next()? {
                Item::Map(n) => Ok(n),
                _ => Err(field(&at(), "expected a map")),
            }
        }
        /// The next key of a map whose previous key (encoded) was `previous`.
        pub(super) fn key(
            &mut self,
            previous: &mut Option<&'a [u8]>,
            at: impl Fn() -> String,
        ) -> Result<&'a str, ManifestError> {
            let start = self.r.offset();
            let Item::Text(key) = self.next()? else {
                return Err(field(&at(), "map keys must be text"));
            };
            let encoded = self.r.input(start..self.r.offset());
            check_key_order(*previous, encoded, start)?;
            *previous = Some(encoded);
            Ok(key)
        }
        /// A conservative capacity for `declared` items of at least `min_bytes` each, so
        /// that a lying count cannot make us reserve memory the input could not fill.
        fn capacity(&self, declared: u64, min_bytes: usize) -> usize {
            usize::try_from(declared)
                .unwrap_or(usize::MAX)
                .min(self.r.remaining() / min_bytes)
        }
    }

    fn unknown(at: &str, key: &str) -> ManifestError {
        field(&format!("{at}.{key}"), "unknown field")
    }
    fn missing(at: &str, key: &str) -> ManifestError {
        field(&format!("{at}.{key}"), "missing")
    }

    pub(super) fn manifest(input: &[u8]) -> Result<Manifest, ManifestError> {
        let mut c = Cursor {
            r: Reader::new(input, MANIFEST_LIMITS)?,
        };
        let pairs = c.map(|| "manifest".into())?;
        let mut previous = None;
        let mut version = None;
        let mut m = Manifest::default();
        let mut files = None;
        for _ in 0..pairs {
            match c.key(&mut previous, || "manifest".into())? {
                "v" => {
                    let v = c.uint(|| "manifest.v".into())?;
                    // Refuse other versions at once: their fields may mean something else.
                    if v != FORMAT_VERSION {
                        return Err(ManifestError::UnsupportedVersion { found: v });
                    }
                    version = Some(v);
                }
                "name" => m.name = Some(c.text(MAX_NAME_BYTES, || "manifest.name".into())?.to_string()),
                "files" => {
                    let n = c.array(|| "manifest.files".into())?;
                    // A file entry takes at least 60 bytes.
                    let mut out = Vec::with_capacity(c.capacity(n, 60));
                    for i in 0..n {
                        out.push(decode_file(&mut c, i)?);
                    }
                    files = Some(out);
                }
                "ignore" => {
                    let n = c.array(|| "manifest.ignore".into())?;
                    if n > MAX_IGNORE_RULES as u64 {
                        return Err(ManifestError::Limit {
                            what: "array length",
                            found: usize::try_from(n).unwrap_or(usize::MAX),
                            limit: MAX_IGNORE_RULES,
                        });
                    }
                    for i in 0..n {
                        let rule = c.text(MAX_IGNORE_RULE_BYTES, || format!("manifest.ignore[{i}]"))?;
                        m.ignore.push(rule.to_string());
                    }
                }
                "created" => m.created = Some(c.uint(|| "manifest.created".into())?),
                "parents" => {
                    let n = c.array(|| "manifest.parents".into())?;
                    if n > MAX_PARENTS as u64 {
                        return Err(ManifestError::Limit {
                            what: "array length",
                            found: usize::try_from(n).unwrap_or(usize::MAX),
                            limit: MAX_PARENTS,
                        });
                    }
                    for i in 0..n {
                        m.parents.push(decode_parent(&mut c, i)?);
                    }
                }
                "annotations" => {
                    let at = "manifest.annotations";
                    let n = c.map(|| at.into())?;
                    if n > MAX_ANNOTATIONS as u64 {
                        return Err(ManifestError::Limit {
                            what: "annotation count",
                            found: usize::try_from(n).unwrap_or(usize::MAX),
                            limit: MAX_ANNOTATIONS,
                        });
                    }
                    let mut previous = None;
                    for _ in 0..n {
                        let start = c.r.offset();
                        let key = match c.r.next()? {
                            Item::Text(k) if k.len() <= MAX_ANNOTATION_KEY_BYTES => k,
                            Item::Text(k) => {
                                return Err(field(
                                    &format!("{at} key"),
                                    &format!(
                                        "text of {} bytes is over the limit of {MAX_ANNOTATION_KEY_BYTES}",
                                        k.len()
                                    ),
                                ))
                            }
                            _ => return Err(field(&format!("{at} key"), "expected text")),
                        };
                        let encoded = c.r.input(start..c.r.offset());
                        check_key_order(previous, encoded, start)?;
                        previous = Some(encoded);
                        let value = c.text(MAX_ANNOTATION_VALUE_BYTES, || format!("{at}.{key}"))?;
                        m.annotations.insert(key.to_string(), value.to_string());
                    }
                }
                other => return Err(unknown("manifest", other)),
            }
        }
        c.r.finish()?;
        if version.is_none() {
            return Err(missing("manifest", "v"));
        }
        m.files = files.ok_or_else(|| missing("manifest", "files"))?;
        Ok(m)
    }

    fn decode_parent(c: &mut Cursor<'_>, i: u64) -> Result<Parent, ManifestError> {
        let at = || format!("manifest.parents[{i}]");
        let pairs = c.map(at)?;
        let mut previous = None;
        let (mut digest, mut relation) = (None, None);
        for _ in 0..pairs {
            match c.key(&mut previous, at)? {
                "digest" => digest = Some(c.digest(|| format!("{}.digest", at()))?),
                "relation" => {
                    let text = c.text(usize::MAX, || format!("{}.relation", at()))?;
                    relation = Some(text.parse().map_err(|problem: String| ManifestError::Field {
                        field: format!("{}.relation", at()),
                        problem,
                    })?);
                }
                other => return Err(unknown(&at(), other)),
            }
        }
        Ok(Parent {
            digest: digest.ok_or_else(|| missing(&at(), "digest"))?,
            relation: relation.ok_or_else(|| missing(&at(), "relation"))?,
        })
    }

    fn decode_file(c: &mut Cursor<'_>, fi: u64) -> Result<FileEntry, ManifestError> {
        let at = || format!("manifest.files[{fi}]");
        let pairs = c.map(at)?;
        let mut previous = None;
        let (mut kind, mut path, mut size, mut chunks, mut digest, mut chunk_size) =
            (None, None, None, None, None, None);
        for _ in 0..pairs {
            match c.key(&mut previous, at)? {
                "kind" => {
                    let text = c.text(usize::MAX, || format!("{}.kind", at()))?;
                    let parsed = FileKind::parse(text)
                        .ok_or_else(|| field(&format!("{}.kind", at()), &format!("unknown file kind {text:?}")))?;
                    kind = Some(parsed);
                }
                "path" => path = Some(c.text(MAX_PATH_BYTES, || format!("{}.path", at()))?.to_string()),
                "size" => size = Some(c.uint(|| format!("{}.size", at()))?),
                "chunks" => {
                    let n = c.array(|| format!("{}.chunks", at()))?;
                    // A chunk entry takes at least 50 bytes.
                    let mut out = Vec::with_capacity(c.capacity(n, 50));
                    let mut offset = 0u64;
                    for ci in 0..n {
                        let chunk = decode_chunk(c, fi, ci, offset)?;
                        offset = offset.saturating_add(chunk.len);
                        out.push(chunk);
                    }
                    chunks = Some(out);
                }
                "digest" => digest = Some(c.digest(|| format!("{}.digest", at()))?),
                "chunk_size" => chunk_size = Some(c.uint(|| format!("{}.chunk_size", at()))?),
                other => return Err(unknown(&at(), other)),
            }
        }
        Ok(FileEntry {
            path: path.ok_or_else(|| missing(&at(), "path"))?,
            size: size.ok_or_else(|| missing(&at(), "size"))?,
            kind: kind.ok_or_else(|| missing(&at(), "kind"))?,
            chunk_size,
            chunks: chunks.ok_or_else(|| missing(&at(), "chunks"))?,
            digest: digest.ok_or_else(|| missing(&at(), "digest"))?,
        })
    }

    fn decode_chunk(c: &mut Cursor<'_>, fi: u64, ci: u64, offset: u64) -> Result<Chunk, ManifestError> {
        let at = || format!("manifest.files[{fi}].chunks[{ci}]");
        let pairs = c.map(at)?;
        let mut previous = None;
        let (mut len, mut kind, mut name, mut digest) = (None, None, None, None);
        for _ in 0..pairs {
            match c.key(&mut previous, at)? {
                "len" => len = Some(c.uint(|| format!("{}.len", at()))?),
                "kind" => kind = Some(c.text(usize::MAX, || format!("{}.kind", at()))?),
                "name" => name = Some(c.text(MAX_NAME_BYTES, || format!("{}.name", at()))?),
                "digest" => digest = Some(c.digest(|| format!("{}.digest", at()))?),
                other => return Err(unknown(&at(), other)),
            }
        }
        let len = len.ok_or_else(|| missing(&at(), "len"))?;
        let digest = digest.ok_or_else(|| missing(&at(), "digest"))?;
        let kind = kind.ok_or_else(|| missing(&at(), "kind"))?;
        let role = match (kind, name) {
            ("header", None) => ChunkRole::Header,
            ("data", None) => ChunkRole::Data,
            ("tensor", Some(name)) => ChunkRole::Tensor(name.to_string()),
            ("tensor", None) => return Err(missing(&at(), "name")),
            ("header" | "data", Some(_)) => return Err(unknown(&at(), "name")),
            (other, _) => {
                return Err(field(
                    &format!("{}.kind", at()),
                    &format!("unknown chunk kind {other:?}"),
                ))
            }
        };
        Ok(Chunk {
            role,
            offset,
            len,
            digest,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn chunk(role: ChunkRole, len: u64, seed: u8) -> (ChunkRole, u64, Digest) {
        (role, len, Digest::of(&[seed]))
    }

    fn sample_manifest(files: usize, tensors: usize, extras: bool) -> Manifest {
        let mut out = Manifest {
            files: (0..files)
                .map(|i| {
                    if i % 2 == 0 {
                        let mut chunks = vec![chunk(ChunkRole::Header, 100, 0)];
                        chunks.extend(
                            (0..tensors)
                                .map(|t| chunk(ChunkRole::Tensor(format!("layer.{t}.w")), t as u64 * 3, t as u8)),
                        );
                        FileEntry::new(format!("f{i:03}.safetensors"), FileKind::Safetensors, None, chunks)
                    } else {
                        let chunks = vec![chunk(ChunkRole::Data, 8, 1), chunk(ChunkRole::Data, 5, 2)];
                        FileEntry::new(format!("f{i:03}.bin"), FileKind::Raw, Some(8), chunks)
                    }
                })
                .collect(),
            ..Manifest::default()
        };
        if extras {
            out.name = Some("model".into());
            out.parents = vec![Parent {
                digest: Digest::of(b"base"),
                relation: Relation::Finetune,
            }];
            out.ignore = vec!["*.tmp".into(), ".git/".into()];
            // Keys whose canonical order (length first) differs from string order.
            out.annotations = [("b", "1"), ("aa", "2"), ("zzz", "3")]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            out.created = Some(1_700_000_000);
        }
        out
    }

    /// The typed writer produces exactly what the value-tree encoder produced.
    #[test]
    fn writer_output_is_the_reference_encoding() {
        for (files, tensors, extras) in [(0, 0, false), (1, 0, false), (3, 4, true), (4, 30, true)] {
            let m = sample_manifest(files, tensors, extras);
            let bytes = m.to_bytes().unwrap();
            let reference = crate::cbor::reference::decode(&bytes, MANIFEST_LIMITS).unwrap();
            assert_eq!(crate::cbor::reference::encode(&reference).unwrap(), bytes);
            assert_eq!(Manifest::from_bytes(&bytes).unwrap(), m);
            assert_eq!(Manifest::reference_from_bytes(&bytes).unwrap(), m);
        }
    }

    /// Regression (issue 10, F4): a manifest over the decoding limits is refused when it
    /// is encoded, so `sign` cannot write a signature file that `verify` refuses.
    #[test]
    fn encoding_refuses_what_decoding_would_refuse() {
        // One file of 1,000,000 tensor chunks: over the 8,000,000-item limit (9 each).
        let chunks: Vec<_> = (0..1_000_000u64)
            .map(|t| (ChunkRole::Tensor(format!("t{t}")), 0, Digest::of(b"")))
            .chain(std::iter::once((ChunkRole::Header, 8, Digest::of(b"h"))))
            .rev()
            .collect();
        let m = Manifest {
            files: vec![FileEntry::new(
                "big.safetensors".into(),
                FileKind::Safetensors,
                None,
                chunks,
            )],
            ..Manifest::default()
        };
        match m.to_bytes() {
            Err(ManifestError::Limit { what, .. }) => assert!(what.contains("item") || what.contains("size"), "{what}"),
            other => panic!("expected a limit error, got {other:?}"),
        }
        // Long names reach the 64 MiB size limit first.
        let name = "n".repeat(4000);
        let chunks: Vec<_> = std::iter::once((ChunkRole::Header, 8, Digest::of(b"h")))
            .chain((0..17_000u64).map(|t| (ChunkRole::Tensor(format!("{name}{t}")), 0, Digest::of(b""))))
            .collect();
        let m = Manifest {
            files: vec![FileEntry::new(
                "long.safetensors".into(),
                FileKind::Safetensors,
                None,
                chunks,
            )],
            ..Manifest::default()
        };
        assert!(matches!(
            m.to_bytes(),
            Err(ManifestError::Limit {
                what: "encoded size in bytes",
                ..
            })
        ));
    }

    /// Valid manifests with their bytes changed in ways that break the profile (or not).
    fn mutated() -> impl Strategy<Value = Vec<u8>> {
        (
            0usize..4,
            0usize..6,
            any::<bool>(),
            prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..5), 1..4),
        )
            .prop_map(|(files, tensors, extras, edits)| {
                let mut bytes = sample_manifest(files, tensors, extras).to_bytes().unwrap();
                for (at, byte, how) in edits {
                    if bytes.is_empty() {
                        break;
                    }
                    let i = at.index(bytes.len());
                    match how {
                        0 => bytes[i] = byte,
                        1 => bytes[i] ^= 1 << (byte % 8),
                        2 => bytes.insert(i, byte),
                        3 => {
                            bytes.remove(i);
                        }
                        // Widen: if bytes[i] is an item header with a small argument,
                        // this is the same value in a longer (non-shortest) form.
                        _ if bytes[i] & 0x1f < 24 => {
                            let small = bytes[i] & 0x1f;
                            bytes[i] = (bytes[i] & 0xe0) | 24;
                            bytes.insert(i + 1, small);
                        }
                        _ => {}
                    }
                }
                bytes
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]

        /// The one-pass decoder and the value-tree decoder it replaced accept exactly the
        /// same manifests (and decode them to the same value) and refuse the same ones.
        #[test]
        fn one_pass_decoder_accepts_and_refuses_as_the_reference(bytes in mutated()) {
            let new = Manifest::from_bytes(&bytes);
            let old = Manifest::reference_from_bytes(&bytes);
            prop_assert_eq!(new.is_ok(), old.is_ok(), "new: {:?}\nold: {:?}", new, old);
            if let (Ok(a), Ok(b)) = (new, old) {
                prop_assert_eq!(a, b);
            }
        }

        /// The same for arbitrary short byte strings (mostly malformed).
        #[test]
        fn one_pass_decoder_refuses_noise_as_the_reference(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
            prop_assert_eq!(Manifest::from_bytes(&bytes).is_ok(), Manifest::reference_from_bytes(&bytes).is_ok());
        }
    }
}
