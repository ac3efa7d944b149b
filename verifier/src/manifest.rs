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

use ciborium::Value;

use crate::cbor::{self, CborError, Limits};
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

/// How a file is split into chunks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
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
pub(crate) fn file_digest(kind: FileKind, size: u64, chunk_size: Option<u64>, chunks: &[Chunk]) -> Digest {
    let mut table = Vec::with_capacity(17 + chunks.len() * 45);
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
    }
    Digest::derive(FILE_DIGEST_CONTEXT, &table)
}

/// How a derivative relates to its parent release.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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

fn text(s: &str) -> Value {
    Value::Text(s.to_string())
}
fn uint(n: u64) -> Value {
    Value::Integer(n.into())
}
fn bytes(d: &Digest) -> Value {
    Value::Bytes(d.as_bytes().to_vec())
}

impl Manifest {
    /// The one deterministic CBOR encoding of this manifest.
    pub fn to_bytes(&self) -> Result<Vec<u8>, ManifestError> {
        self.check()?;
        let files = self
            .files
            .iter()
            .map(|f| {
                let chunks = f
                    .chunks
                    .iter()
                    .map(|c| {
                        let mut m = vec![(text("len"), uint(c.len)), (text("digest"), bytes(&c.digest))];
                        let kind = match &c.role {
                            ChunkRole::Header => "header",
                            ChunkRole::Data => "data",
                            ChunkRole::Tensor(name) => {
                                m.push((text("name"), text(name)));
                                "tensor"
                            }
                        };
                        m.push((text("kind"), text(kind)));
                        Value::Map(m)
                    })
                    .collect();
                let mut m = vec![
                    (text("path"), text(&f.path)),
                    (text("size"), uint(f.size)),
                    (text("kind"), text(f.kind.as_str())),
                    (text("chunks"), Value::Array(chunks)),
                    (text("digest"), bytes(&f.digest)),
                ];
                if let Some(cs) = f.chunk_size {
                    m.push((text("chunk_size"), uint(cs)));
                }
                Value::Map(m)
            })
            .collect();
        let mut top = vec![(text("v"), uint(FORMAT_VERSION)), (text("files"), Value::Array(files))];
        if let Some(name) = &self.name {
            top.push((text("name"), text(name)));
        }
        if !self.parents.is_empty() {
            let parents = self
                .parents
                .iter()
                .map(|p| {
                    Value::Map(vec![
                        (text("digest"), bytes(&p.digest)),
                        (text("relation"), text(p.relation.as_str())),
                    ])
                })
                .collect();
            top.push((text("parents"), Value::Array(parents)));
        }
        if !self.ignore.is_empty() {
            top.push((
                text("ignore"),
                Value::Array(self.ignore.iter().map(|s| text(s)).collect()),
            ));
        }
        if !self.annotations.is_empty() {
            let m = self.annotations.iter().map(|(k, v)| (text(k), text(v))).collect();
            top.push((text("annotations"), Value::Map(m)));
        }
        if let Some(t) = self.created {
            top.push((text("created"), uint(t)));
        }
        Ok(cbor::encode(&Value::Map(top))?)
    }

    /// The manifest digest of these exact bytes (spec/format.md §4.3).
    pub fn digest_of_bytes(bytes: &[u8]) -> Digest {
        Digest::derive(MANIFEST_DIGEST_CONTEXT, bytes)
    }

    /// Decodes and validates manifest bytes.
    pub fn from_bytes(input: &[u8]) -> Result<Manifest, ManifestError> {
        let value = cbor::decode(input, MANIFEST_LIMITS)?;
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
    let mut names = std::collections::HashSet::new();
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

fn field(at: &str, problem: &str) -> ManifestError {
    ManifestError::Field {
        field: at.to_string(),
        problem: problem.to_string(),
    }
}

/// A decoded value and where it sits, for error messages.
pub(crate) struct At {
    pub(crate) value: Value,
    pub(crate) at: String,
}

impl At {
    pub(crate) fn uint(self) -> Result<u64, ManifestError> {
        match self.value {
            Value::Integer(i) => {
                u64::try_from(i).map_err(|_| field(&self.at, "expected an unsigned integer that fits 64 bits"))
            }
            _ => Err(field(&self.at, "expected an unsigned integer")),
        }
    }
    pub(crate) fn text(self) -> Result<String, ManifestError> {
        match self.value {
            Value::Text(s) => Ok(s),
            _ => Err(field(&self.at, "expected text")),
        }
    }
    pub(crate) fn text_max(self, max: usize) -> Result<String, ManifestError> {
        let at = self.at.clone();
        let s = self.text()?;
        if s.len() > max {
            return Err(field(
                &at,
                &format!("text of {} bytes is over the limit of {max}", s.len()),
            ));
        }
        Ok(s)
    }
    pub(crate) fn byte_string(self) -> Result<Vec<u8>, ManifestError> {
        match self.value {
            Value::Bytes(b) => Ok(b),
            _ => Err(field(&self.at, "expected a byte string")),
        }
    }
    pub(crate) fn fixed<const N: usize>(self) -> Result<[u8; N], ManifestError> {
        let at = self.at.clone();
        let b = self.byte_string()?;
        let len = b.len();
        b.try_into()
            .map_err(|_| field(&at, &format!("expected {N} bytes, found {len}")))
    }
    pub(crate) fn digest(self) -> Result<Digest, ManifestError> {
        Ok(Digest::from_bytes(self.fixed::<32>()?))
    }
    pub(crate) fn array(self) -> Result<Vec<At>, ManifestError> {
        match self.value {
            Value::Array(items) => Ok(items
                .into_iter()
                .enumerate()
                .map(|(i, value)| At {
                    value,
                    at: format!("{}[{i}]", self.at),
                })
                .collect()),
            _ => Err(field(&self.at, "expected an array")),
        }
    }
    pub(crate) fn array_max(self, max: usize) -> Result<Vec<At>, ManifestError> {
        let items = self.array()?;
        if items.len() > max {
            return Err(ManifestError::Limit {
                what: "array length",
                found: items.len(),
                limit: max,
            });
        }
        Ok(items)
    }
}

/// The fields of a CBOR map with text keys; `finish` refuses any left unread.
pub(crate) struct Fields {
    entries: Vec<(String, Value)>,
    at: String,
}

impl Fields {
    pub(crate) fn new(value: Value, at: &str) -> Result<Self, ManifestError> {
        Self::new_at(At {
            value,
            at: at.to_string(),
        })
    }
    pub(crate) fn new_at(value: At) -> Result<Self, ManifestError> {
        let Value::Map(entries) = value.value else {
            return Err(field(&value.at, "expected a map"));
        };
        let entries = entries
            .into_iter()
            .map(|(k, v)| match k {
                Value::Text(k) => Ok((k, v)),
                _ => Err(field(&value.at, "map keys must be text")),
            })
            .collect::<Result<_, _>>()?;
        Ok(Fields { entries, at: value.at })
    }
    pub(crate) fn optional(&mut self, key: &str) -> Option<At> {
        let i = self.entries.iter().position(|(k, _)| k == key)?;
        let (_, value) = self.entries.swap_remove(i);
        Some(At {
            value,
            at: format!("{}.{key}", self.at),
        })
    }
    pub(crate) fn required(&mut self, key: &str) -> Result<At, ManifestError> {
        let at = format!("{}.{key}", self.at);
        self.optional(key).ok_or_else(|| field(&at, "missing"))
    }
    pub(crate) fn finish(self) -> Result<(), ManifestError> {
        match self.entries.first() {
            None => Ok(()),
            Some((k, _)) => Err(field(&format!("{}.{k}", self.at), "unknown field")),
        }
    }
}
