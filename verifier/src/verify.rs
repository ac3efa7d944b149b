//! Verification: signatures and trust first, then bytes.
//!
//! A [`Verifier`] holds the trust policy (trusted keys, a k-of-n threshold). Opening a
//! model checks the signature file and yields a [`SignedModel`] whose manifest is
//! trusted; its methods then check bytes against that manifest — all of them, a chosen
//! set of tensors, or one tensor read straight into the caller's buffer. Success is a
//! [`Verified`] proof that only this module can construct.
//!
//! Nothing on this path parses the model's headers: a trusted manifest already says
//! where every chunk lies, so verification hashes exactly those ranges. A hostile file
//! therefore meets no parser at all until its bytes are known to be the signed ones.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::decision::RevocationStatus;
use crate::digest::Digest;
use crate::envelope::{SignatureFile, SignatureFileError};
use crate::keys::{KeyId, PublicKey};
use crate::manifest::{Chunk, ChunkRole, FileEntry, Manifest, ManifestError};
use crate::scan::{open_regular, open_source, ProgressFn, ScanError};
use crate::source::ReadMode;
use crate::walk::{walk_folder, IgnoreRules, WalkError, DEFAULT_SIGNATURE_NAME};

/// Pieces of a large read-into: the next piece is read while the current one is hashed.
const READ_PIECE: usize = 4 << 20;

/// Reads exactly `buf.len()` bytes at `offset` into `buf` and returns their BLAKE3 digest,
/// overlapping the copy and the hash: while one piece is hashed (hot in cache, just
/// copied) the next is read on another thread. The digest is of exactly the bytes left in
/// `buf`: each piece is hashed after it was read and is not written again.
fn read_and_hash(file: &std::fs::File, offset: u64, buf: &mut [u8]) -> std::io::Result<Digest> {
    if buf.len() < 2 * READ_PIECE {
        file.read_exact_at(buf, offset)?;
        return Ok(Digest::of_parallel(buf));
    }
    let mut hasher = blake3::Hasher::new();
    let (first, mut rest) = buf.split_at_mut(READ_PIECE);
    file.read_exact_at(first, offset)?;
    let mut current: &[u8] = first;
    let mut pos = offset + READ_PIECE as u64;
    loop {
        let taken = std::mem::take(&mut rest);
        let n = taken.len().min(READ_PIECE);
        let (next, tail) = taken.split_at_mut(n);
        let (read, ()) = rayon::join(
            || if n > 0 { file.read_exact_at(next, pos) } else { Ok(()) },
            || {
                hasher.update(current);
            },
        );
        read?;
        if n == 0 {
            break;
        }
        current = next;
        rest = tail;
        pos += n as u64;
    }
    Ok(Digest::from_bytes(*hasher.finalize().as_bytes()))
}

/// Largest signature file read (the manifest limit plus room for signatures).
const MAX_SIGNATURE_FILE_BYTES: u64 = (64 << 20) + (64 << 10);

/// Where the signature file of `model` is looked for when none is given: inside a
/// folder, `weightseal.sig`; beside a single file, `FILE.weightseal.sig`.
pub fn default_signature_path(model: &Path) -> PathBuf {
    if model.is_dir() {
        model.join(DEFAULT_SIGNATURE_NAME)
    } else {
        let mut name = model.file_name().map(|n| n.to_os_string()).unwrap_or_default();
        name.push(".weightseal.sig");
        model.with_file_name(name)
    }
}

/// A trust policy that cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// No trusted key was given.
    #[error("no trusted key: a verifier needs at least one (did you forget --trusted-key?)")]
    NoTrustedKeys,
    /// The threshold is 0 or above the number of trusted keys.
    #[error("threshold {threshold} is impossible with {trusted} trusted key(s): it must be between 1 and {trusted}")]
    BadThreshold {
        /// The threshold asked for.
        threshold: usize,
        /// How many distinct trusted keys there are.
        trusted: usize,
    },
}

/// Why a model must not be loaded (or a request could not be served).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The signature file could not be read.
    #[error("cannot read signature file {path}: {source}")]
    SignatureFileUnreadable {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The signature file is too large to be one.
    #[error("signature file {path} is {size} bytes, over the limit of {MAX_SIGNATURE_FILE_BYTES}")]
    SignatureFileTooLarge {
        /// The file.
        path: PathBuf,
        /// Its size.
        size: u64,
    },
    /// The signature file is malformed.
    #[error("signature file {path} is malformed: {source}")]
    SignatureFileMalformed {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        source: SignatureFileError,
    },
    /// A trusted key's signature does not verify: the manifest or signature was altered.
    #[error("the signature by trusted key {key_id} does not match the manifest: the signature file was altered")]
    InvalidSignature {
        /// The key.
        key_id: KeyId,
    },
    /// Fewer valid signatures by trusted keys than the threshold.
    #[error("{valid} valid signature(s) by trusted keys, {threshold} required; the file is signed by [{}]; trusted keys are [{}]",
        join(signed_by), join(trusted))]
    ThresholdNotMet {
        /// Valid trusted signatures found.
        valid: usize,
        /// Required.
        threshold: usize,
        /// Every key that signed the file.
        signed_by: Vec<KeyId>,
        /// The verifier's trusted keys.
        trusted: Vec<KeyId>,
    },
    /// The signed manifest does not decode (a signer bug or an unsupported version).
    #[error("the signed manifest is invalid: {0}")]
    ManifestInvalid(ManifestError),
    /// The folder could not be listed, or holds a symlink or special file.
    #[error(transparent)]
    Walk(#[from] WalkError),
    /// A model file could not be read (or is a symlink / special file).
    #[error(transparent)]
    Read(#[from] ScanError),
    /// Files on disk differ from the signed set.
    #[error("{}", file_set_message(missing, unsigned))]
    FileSetMismatch {
        /// Signed files that are not present.
        missing: Vec<String>,
        /// Present files that are not signed.
        unsigned: Vec<String>,
    },
    /// A file's size differs from the signed size.
    #[error("{path}: size is {found} bytes but {expected} were signed ({})", if found < expected { "truncated" } else { "bytes appended" })]
    SizeMismatch {
        /// The file.
        path: String,
        /// Signed size.
        expected: u64,
        /// Size on disk.
        found: u64,
    },
    /// A chunk's bytes differ from the signed bytes.
    #[error("{path}: {chunk} does not match the signature (expected BLAKE3 {expected}, found {found}){}",
        if *other_mismatches > 0 { format!("; {other_mismatches} other chunk(s) differ too") } else { String::new() })]
    ChunkMismatch {
        /// The file.
        path: String,
        /// Which chunk (`header`, `tensor NAME`, `bytes A..B`).
        chunk: String,
        /// Signed digest.
        expected: Digest,
        /// Digest of the bytes on disk.
        found: Digest,
        /// How many more chunks differ.
        other_mismatches: usize,
    },
    /// A requested tensor is not in the manifest.
    #[error("tensor {name:?} is not in the signed manifest")]
    UnknownTensor {
        /// The name.
        name: String,
    },
    /// A tensor name appears in several files; name the file.
    #[error("tensor {name:?} appears in several files: {}", files.join(", "))]
    AmbiguousTensor {
        /// The name.
        name: String,
        /// The files.
        files: Vec<String>,
    },
    /// The file given is not one of the signed files.
    #[error("{path} is not one of the files in the signed manifest")]
    FileNotInManifest {
        /// The path given.
        path: PathBuf,
    },
    /// The caller's buffer has the wrong size for the tensor.
    #[error("buffer for tensor {name:?} is {found} bytes; the tensor's chunk is {expected}")]
    BufferSize {
        /// The tensor.
        name: String,
        /// Needed.
        expected: u64,
        /// Given.
        found: usize,
    },
}

fn join(ids: &[KeyId]) -> String {
    ids.iter().map(KeyId::to_hex).collect::<Vec<_>>().join(", ")
}

fn file_set_message(missing: &[String], unsigned: &[String]) -> String {
    let mut parts = Vec::new();
    if !missing.is_empty() {
        parts.push(format!("signed file(s) missing: {}", missing.join(", ")));
    }
    if !unsigned.is_empty() {
        parts.push(format!("file(s) present but not signed: {}", unsigned.join(", ")));
    }
    parts.join("; ")
}

impl VerifyError {
    /// Whether this error means "do not load" (as opposed to a request the caller got
    /// wrong, such as an unknown tensor name or a buffer of the wrong size).
    pub fn is_rejection(&self) -> bool {
        !matches!(
            self,
            VerifyError::UnknownTensor { .. } | VerifyError::AmbiguousTensor { .. } | VerifyError::BufferSize { .. }
        )
    }
}

/// Builds a [`Verifier`]. Safe by default: every signed file must be present and
/// unmodified, and nothing unsigned may sit beside them.
#[derive(Debug, Default, Clone)]
pub struct VerifierBuilder {
    trusted: Vec<PublicKey>,
    threshold: Option<usize>,
    allow_unsigned_files: bool,
    read_mode: ReadMode,
}

impl VerifierBuilder {
    /// Trusts a public key.
    pub fn trust(mut self, key: PublicKey) -> Self {
        if !self.trusted.iter().any(|k| k.id() == key.id()) {
            self.trusted.push(key);
        }
        self
    }

    /// Requires `k` distinct trusted keys to have signed (default 1).
    pub fn threshold(mut self, k: usize) -> Self {
        self.threshold = Some(k);
        self
    }

    /// UNSAFE: accept files in the folder that the manifest does not list (such as a
    /// `modeling_custom.py` dropped beside the weights). Only for callers that load
    /// nothing but the signed files by name.
    pub fn allow_unsigned_files_unsafe(mut self) -> Self {
        self.allow_unsigned_files = true;
        self
    }

    /// How model files are read: mapped when large (the default), or never mapped
    /// ([`ReadMode::NoMmap`], for network filesystems where a file truncated under a
    /// mapping would raise SIGBUS).
    pub fn read_mode(mut self, mode: ReadMode) -> Self {
        self.read_mode = mode;
        self
    }

    /// Checks the policy and builds the verifier.
    pub fn build(self) -> Result<Verifier, PolicyError> {
        // (A verifier that trusts nobody exists only inside the crate: see
        // `Verifier::trusting_nobody`.)
        if self.trusted.is_empty() {
            return Err(PolicyError::NoTrustedKeys);
        }
        let threshold = self.threshold.unwrap_or(1);
        if threshold == 0 || threshold > self.trusted.len() {
            return Err(PolicyError::BadThreshold {
                threshold,
                trusted: self.trusted.len(),
            });
        }
        Ok(Verifier {
            trusted: self.trusted,
            threshold,
            allow_unsigned_files: self.allow_unsigned_files,
            read_mode: self.read_mode,
        })
    }
}

/// A trust policy: which keys, how many of them.
#[derive(Debug, Clone)]
pub struct Verifier {
    trusted: Vec<PublicKey>,
    threshold: usize,
    allow_unsigned_files: bool,
    read_mode: ReadMode,
}

/// What a [`Verified`] proof covers.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Coverage {
    /// Every signed file, and no unsigned file beside them — unless the verifier was
    /// built with the unsafe opt-out (see [`Verified::unsigned_files_allowed`]).
    Everything,
    /// Only these files (a single file verified on its own).
    Files(Vec<String>),
    /// Only these tensors (path, tensor), plus the headers of their files.
    Tensors(Vec<(String, String)>),
}

/// Proof that a model (or part of it) matched a trusted signature. Only this crate
/// constructs it.
#[derive(Debug, Clone)]
pub struct Verified {
    manifest_digest: Digest,
    signers: Vec<KeyId>,
    coverage: Coverage,
    bytes_verified: u64,
    name: Option<String>,
    unsigned_files_allowed: bool,
    revocation: RevocationStatus,
}

impl Verified {
    /// The revocation status established when the model was opened under a load policy
    /// ([`RevocationStatus::NotConfigured`] for a plain [`Verifier`]).
    pub fn revocation(&self) -> &RevocationStatus {
        &self.revocation
    }
    /// True when the verifier ignored unsigned files beside the signed ones
    /// ([`VerifierBuilder::allow_unsigned_files_unsafe`]): the folder may hold files
    /// nobody signed.
    pub fn unsigned_files_allowed(&self) -> bool {
        self.unsigned_files_allowed
    }
    /// The digest of the manifest that was verified.
    pub fn manifest_digest(&self) -> Digest {
        self.manifest_digest
    }
    /// Trusted keys whose valid signatures met the threshold.
    pub fn signers(&self) -> &[KeyId] {
        &self.signers
    }
    /// What was checked.
    pub fn coverage(&self) -> &Coverage {
        &self.coverage
    }
    /// How many bytes were hashed.
    pub fn bytes_verified(&self) -> u64 {
        self.bytes_verified
    }
    /// The model name from the manifest.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
}

impl Verifier {
    /// A verifier that trusts no key: every signed model fails its threshold. For load
    /// policies that only check unsigned content against revocations.
    pub(crate) fn trusting_nobody() -> Verifier {
        Verifier {
            trusted: Vec::new(),
            threshold: 1,
            allow_unsigned_files: false,
            read_mode: ReadMode::Auto,
        }
    }

    /// Starts a builder.
    pub fn builder() -> VerifierBuilder {
        VerifierBuilder::default()
    }

    /// The threshold.
    pub fn threshold(&self) -> usize {
        self.threshold
    }

    /// Whether the unsafe opt-out for unsigned files beside the signed ones is set.
    pub fn allows_unsigned_files_unsafe(&self) -> bool {
        self.allow_unsigned_files
    }

    /// The trusted key ids.
    pub fn trusted_key_ids(&self) -> Vec<KeyId> {
        self.trusted.iter().map(PublicKey::id).collect()
    }

    /// Reads and decodes a signature file (size-limited). No trust decision is made.
    pub fn read_signature_file(path: &Path) -> Result<SignatureFile, VerifyError> {
        let unreadable = |source| VerifyError::SignatureFileUnreadable {
            path: path.to_path_buf(),
            source,
        };
        let file = open_regular(path).map_err(|e| match e {
            ScanError::Io { source, .. } => unreadable(source),
            other => VerifyError::Read(other),
        })?;
        let size = file.metadata().map_err(unreadable)?.len();
        if size > MAX_SIGNATURE_FILE_BYTES {
            return Err(VerifyError::SignatureFileTooLarge {
                path: path.to_path_buf(),
                size,
            });
        }
        let mut bytes = Vec::with_capacity(size as usize);
        std::io::Read::read_to_end(
            &mut std::io::Read::take(&file, MAX_SIGNATURE_FILE_BYTES + 1),
            &mut bytes,
        )
        .map_err(unreadable)?;
        SignatureFile::from_vec(bytes).map_err(|source| VerifyError::SignatureFileMalformed {
            path: path.to_path_buf(),
            source,
        })
    }

    /// Checks signatures against the policy, then decodes the manifest. Returns the
    /// manifest and the trusted signers.
    pub fn check_signatures(&self, sig: &SignatureFile) -> Result<(Manifest, Vec<KeyId>), VerifyError> {
        let digest = sig.manifest_digest();
        let mut valid = Vec::new();
        for entry in sig.signatures() {
            let id = entry.public_key.id();
            if !self.trusted.iter().any(|k| k.id() == id) {
                // Signatures by keys we do not trust neither help nor hurt.
                continue;
            }
            if !entry.is_valid_for(&digest) {
                return Err(VerifyError::InvalidSignature { key_id: id });
            }
            valid.push(id);
        }
        if valid.len() < self.threshold {
            return Err(VerifyError::ThresholdNotMet {
                valid: valid.len(),
                threshold: self.threshold,
                signed_by: sig.signatures().iter().map(|s| s.public_key.id()).collect(),
                trusted: self.trusted_key_ids(),
            });
        }
        let manifest = sig.manifest().map_err(VerifyError::ManifestInvalid)?;
        Ok((manifest, valid))
    }

    /// Opens a model (a folder, or one signed file) against a signature file. Checks the
    /// signatures only; no model bytes are read yet.
    pub fn open(&self, model: &Path, signature_path: &Path) -> Result<SignedModel, VerifyError> {
        let sig = Self::read_signature_file(signature_path)?;
        let (manifest, signers) = self.check_signatures(&sig)?;
        let meta = std::fs::symlink_metadata(model).map_err(|source| {
            VerifyError::Read(ScanError::Io {
                path: model.to_path_buf(),
                source,
            })
        })?;
        let scope = if meta.is_dir() {
            Scope::Folder
        } else if meta.file_type().is_symlink() {
            return Err(VerifyError::Read(ScanError::Symlink {
                path: model.to_path_buf(),
            }));
        } else {
            // The manifest entry whose path is the longest suffix of the given path.
            let index = manifest
                .files
                .iter()
                .enumerate()
                .filter(|(_, f)| model.ends_with(&f.path))
                .max_by_key(|(_, f)| f.path.len())
                .map(|(i, _)| i)
                .ok_or_else(|| VerifyError::FileNotInManifest {
                    path: model.to_path_buf(),
                })?;
            Scope::SingleFile(index)
        };
        let root = match scope {
            Scope::Folder => model.to_path_buf(),
            Scope::SingleFile(i) => {
                // Strip the manifest path's components from the end to find the root.
                let depth = manifest.files[i].path.split('/').count();
                let mut root = model.to_path_buf();
                for _ in 0..depth {
                    root.pop();
                }
                root
            }
        };
        let digest = sig.manifest_digest();
        let mut valid_signers = signers.clone();
        for s in sig.signatures() {
            let id = s.public_key.id();
            if !valid_signers.contains(&id) && s.is_valid_for(&digest) {
                valid_signers.push(id);
            }
        }
        Ok(SignedModel {
            root,
            scope,
            signature_path: signature_path.to_path_buf(),
            manifest_digest: digest,
            manifest,
            signers,
            valid_signers,
            allow_unsigned_files: self.allow_unsigned_files,
            read_mode: self.read_mode,
            revocation: RevocationStatus::NotConfigured,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    Folder,
    SingleFile(usize),
}

/// A model whose signature file passed the trust policy; its bytes are not checked yet.
#[derive(Debug)]
pub struct SignedModel {
    root: PathBuf,
    scope: Scope,
    signature_path: PathBuf,
    manifest: Manifest,
    manifest_digest: Digest,
    signers: Vec<KeyId>,
    /// Every key with a valid signature in the file, trusted or not (revocation lookups
    /// must see a revoked co-signer too).
    valid_signers: Vec<KeyId>,
    allow_unsigned_files: bool,
    read_mode: ReadMode,
    revocation: RevocationStatus,
}

/// One chunk to hash: which file, which chunk of it.
type ChunkRef = (usize, usize);
/// A hashed chunk: file index, chunk index, digest of the bytes on disk.
type HashedChunk = (usize, usize, Digest);

impl SignedModel {
    /// The trusted manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }
    /// Its digest.
    pub fn manifest_digest(&self) -> Digest {
        self.manifest_digest
    }
    /// Trusted keys that signed it.
    pub fn signers(&self) -> &[KeyId] {
        &self.signers
    }
    /// Every key whose signature in the file is valid, trusted or not.
    pub fn valid_signers(&self) -> &[KeyId] {
        &self.valid_signers
    }
    /// The revocation status established by the load policy that opened it.
    pub fn revocation(&self) -> &RevocationStatus {
        &self.revocation
    }
    pub(crate) fn set_revocation(&mut self, status: RevocationStatus) {
        self.revocation = status;
    }

    fn proof(&self, coverage: Coverage, bytes_verified: u64) -> Verified {
        Verified {
            manifest_digest: self.manifest_digest,
            signers: self.signers.clone(),
            coverage,
            bytes_verified,
            name: self.manifest.name.clone(),
            unsigned_files_allowed: self.allow_unsigned_files,
            revocation: self.revocation.clone(),
        }
    }

    fn path_of(&self, file: &FileEntry) -> PathBuf {
        self.root.join(&file.path)
    }

    /// Compares the files present with the signed set (folder scope only): every
    /// signed file present with its signed size, nothing unsigned beside them.
    pub(crate) fn check_file_set(&self) -> Result<(), VerifyError> {
        let Scope::Folder = self.scope else { return Ok(()) };
        let ignore = IgnoreRules::new(&self.manifest.ignore).map_err(|problem| {
            VerifyError::ManifestInvalid(ManifestError::Field {
                field: "manifest.ignore".into(),
                problem,
            })
        })?;
        let found = walk_folder(&self.root, &ignore, std::slice::from_ref(&self.signature_path))?;
        let on_disk: BTreeMap<&str, u64> = found.iter().map(|f| (f.rel.as_str(), f.size)).collect();
        let signed: BTreeSet<&str> = self.manifest.files.iter().map(|f| f.path.as_str()).collect();
        let missing: Vec<String> = signed
            .iter()
            .filter(|p| !on_disk.contains_key(*p))
            .map(|p| p.to_string())
            .collect();
        let unsigned: Vec<String> = if self.allow_unsigned_files {
            vec![]
        } else {
            on_disk
                .keys()
                .filter(|p| !signed.contains(*p))
                .map(|p| p.to_string())
                .collect()
        };
        if !missing.is_empty() || !unsigned.is_empty() {
            return Err(VerifyError::FileSetMismatch { missing, unsigned });
        }
        for file in &self.manifest.files {
            let found = on_disk[file.path.as_str()];
            if found != file.size {
                return Err(VerifyError::SizeMismatch {
                    path: file.path.clone(),
                    expected: file.size,
                    found,
                });
            }
        }
        Ok(())
    }

    /// Hashes the listed chunks (grouped by file) and compares them with the manifest.
    fn hash_and_compare(&self, wanted: &[ChunkRef], progress: Option<ProgressFn<'_>>) -> Result<u64, VerifyError> {
        let mut by_file: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for &(f, c) in wanted {
            by_file.entry(f).or_default().push(c);
        }
        let results: Vec<Result<Vec<HashedChunk>, VerifyError>> = by_file
            .into_par_iter()
            .map(|(fi, chunks)| {
                let entry = &self.manifest.files[fi];
                let path = self.path_of(entry);
                let map = open_source(&path, self.read_mode)?;
                if map.len() != entry.size {
                    return Err(VerifyError::SizeMismatch {
                        path: entry.path.clone(),
                        expected: entry.size,
                        found: map.len(),
                    });
                }
                chunks
                    .into_par_iter()
                    .map(|ci| {
                        let chunk = &entry.chunks[ci];
                        let digest = map
                            .hash(chunk.offset..chunk.offset + chunk.len)
                            .ok_or_else(|| VerifyError::Read(ScanError::Changed { path: path.clone() }))?;
                        if let Some(report) = progress {
                            report(chunk.len);
                        }
                        Ok((fi, ci, digest))
                    })
                    .collect()
            })
            .collect();
        let mut mismatches = Vec::new();
        let mut bytes = 0;
        for result in results {
            for (fi, ci, found) in result? {
                let chunk = &self.manifest.files[fi].chunks[ci];
                bytes += chunk.len;
                if chunk.digest != found {
                    mismatches.push((fi, ci, found));
                }
            }
        }
        mismatches.sort_by_key(|&(f, c, _)| (f, c));
        if let Some(&(fi, ci, found)) = mismatches.first() {
            let entry = &self.manifest.files[fi];
            return Err(VerifyError::ChunkMismatch {
                path: entry.path.clone(),
                chunk: entry.chunks[ci].label(),
                expected: entry.chunks[ci].digest,
                found,
                other_mismatches: mismatches.len() - 1,
            });
        }
        Ok(bytes)
    }

    fn files_in_scope(&self) -> Vec<usize> {
        match self.scope {
            Scope::Folder => (0..self.manifest.files.len()).collect(),
            Scope::SingleFile(i) => vec![i],
        }
    }

    /// Verifies every byte in scope: the whole folder (and its file set), or the one file.
    pub fn verify_all(&self, progress: Option<ProgressFn<'_>>) -> Result<Verified, VerifyError> {
        self.check_file_set()?;
        let wanted: Vec<ChunkRef> = self
            .files_in_scope()
            .into_iter()
            .flat_map(|fi| (0..self.manifest.files[fi].chunks.len()).map(move |ci| (fi, ci)))
            .collect();
        let bytes = self.hash_and_compare(&wanted, progress)?;
        let coverage = match self.scope {
            Scope::SingleFile(i) if self.manifest.files.len() > 1 => {
                Coverage::Files(vec![self.manifest.files[i].path.clone()])
            }
            _ => Coverage::Everything,
        };
        Ok(self.proof(coverage, bytes))
    }

    /// Where a tensor lies: (file index, chunk index). Searches the files in scope.
    fn locate(&self, name: &str) -> Result<ChunkRef, VerifyError> {
        let hits: Vec<ChunkRef> = self
            .files_in_scope()
            .into_iter()
            .flat_map(|fi| {
                self.manifest.files[fi]
                    .chunks
                    .iter()
                    .position(|c| c.tensor_name() == Some(name))
                    .map(|ci| (fi, ci))
            })
            .collect();
        match hits.as_slice() {
            [] => Err(VerifyError::UnknownTensor { name: name.to_string() }),
            [one] => Ok(*one),
            many => Err(VerifyError::AmbiguousTensor {
                name: name.to_string(),
                files: many.iter().map(|(f, _)| self.manifest.files[*f].path.clone()).collect(),
            }),
        }
    }

    /// Verifies only the named tensors, plus the header chunks of their files and the
    /// folder's file set (names and sizes, from the directory listing). Cost is
    /// proportional to the bytes of those chunks.
    pub fn verify_tensors(&self, names: &[&str], progress: Option<ProgressFn<'_>>) -> Result<Verified, VerifyError> {
        let located = names.iter().map(|n| self.locate(n)).collect::<Result<Vec<_>, _>>()?;
        self.check_file_set()?;
        let mut wanted: BTreeSet<ChunkRef> = located.iter().copied().collect();
        for &(fi, _) in &located {
            wanted.insert((fi, 0)); // the header chunk
        }
        let wanted: Vec<ChunkRef> = wanted.into_iter().collect();
        let bytes = self.hash_and_compare(&wanted, progress)?;
        let mut covered: Vec<(String, String)> = located
            .iter()
            .map(|&(fi, ci)| {
                let f = &self.manifest.files[fi];
                (
                    f.path.clone(),
                    f.chunks[ci].tensor_name().unwrap_or_default().to_string(),
                )
            })
            .collect();
        covered.sort();
        covered.dedup();
        Ok(self.proof(Coverage::Tensors(covered), bytes))
    }

    /// The length of a tensor's chunk (what [`Self::read_tensor_into`] needs). For GGUF
    /// it includes the alignment padding that follows the tensor.
    pub fn tensor_len(&self, name: &str) -> Result<u64, VerifyError> {
        let (fi, ci) = self.locate(name)?;
        Ok(self.manifest.files[fi].chunks[ci].len)
    }

    /// Reads a chunk with `pread` into `buf` and checks the hash of exactly those bytes,
    /// closing the verify-then-load race: what the caller holds is what was checked.
    /// On a mismatch the buffer is zeroed so tampered bytes cannot be used by mistake.
    fn read_chunk_into(&self, fi: usize, chunk: &Chunk, buf: &mut [u8], keep: bool) -> Result<(), VerifyError> {
        let entry = &self.manifest.files[fi];
        let path = self.path_of(entry);
        let file = open_regular(&path)?;
        let found = read_and_hash(&file, chunk.offset, buf).map_err(|source| {
            if source.kind() == std::io::ErrorKind::UnexpectedEof {
                VerifyError::SizeMismatch {
                    path: entry.path.clone(),
                    expected: entry.size,
                    found: file.metadata().map(|m| m.len()).unwrap_or(0),
                }
            } else {
                VerifyError::Read(ScanError::Io { path, source })
            }
        })?;
        if found != chunk.digest {
            if !keep {
                buf.fill(0);
            }
            return Err(VerifyError::ChunkMismatch {
                path: entry.path.clone(),
                chunk: chunk.label(),
                expected: chunk.digest,
                found,
                other_mismatches: 0,
            });
        }
        Ok(())
    }

    /// Reads tensor `name` into `buf` (which must be exactly [`Self::tensor_len`] bytes)
    /// and verifies those bytes.
    pub fn read_tensor_into(&self, name: &str, buf: &mut [u8]) -> Result<Verified, VerifyError> {
        self.read_tensor_into_keeping(name, buf, false)
    }

    /// [`Self::read_tensor_into`]; with `keep` the bytes read stay in `buf` on a mismatch
    /// (a warn-mode load policy proceeds with them, having reported the mismatch).
    pub(crate) fn read_tensor_into_keeping(
        &self,
        name: &str,
        buf: &mut [u8],
        keep: bool,
    ) -> Result<Verified, VerifyError> {
        let (fi, ci) = self.locate(name)?;
        let entry = &self.manifest.files[fi];
        let chunk = &entry.chunks[ci];
        if buf.len() as u64 != chunk.len {
            return Err(VerifyError::BufferSize {
                name: name.to_string(),
                expected: chunk.len,
                found: buf.len(),
            });
        }
        self.read_chunk_into(fi, chunk, buf, keep)?;
        Ok(self.proof(
            Coverage::Tensors(vec![(entry.path.clone(), name.to_string())]),
            chunk.len,
        ))
    }

    /// Reads and verifies the header chunk of the signed file `path`, so a runtime can
    /// parse dtypes and shapes from bytes known to be signed.
    pub fn read_header(&self, path: &str) -> Result<Vec<u8>, VerifyError> {
        self.read_header_into_buf(path, false).map_err(|failed| failed.0)
    }

    /// The manifest paths of the files this model was opened for: every signed file of a
    /// folder, or the one file given.
    pub fn files_opened(&self) -> Vec<&str> {
        self.files_in_scope()
            .into_iter()
            .map(|fi| self.manifest.files[fi].path.as_str())
            .collect()
    }

    /// Reads the header chunk of `path`; on a mismatch returns the error together with the
    /// bytes as read when `keep` (otherwise wiped).
    pub(crate) fn read_header_into_buf(&self, path: &str, keep: bool) -> Result<Vec<u8>, Box<(VerifyError, Vec<u8>)>> {
        let fi = self
            .files_in_scope()
            .into_iter()
            .find(|&fi| self.manifest.files[fi].path == path)
            .ok_or_else(|| {
                Box::new((
                    VerifyError::FileNotInManifest {
                        path: PathBuf::from(path),
                    },
                    Vec::new(),
                ))
            })?;
        let chunk = &self.manifest.files[fi].chunks[0];
        if chunk.role != ChunkRole::Header {
            return Err(Box::new((
                VerifyError::UnknownTensor {
                    name: format!("{path} header"),
                },
                Vec::new(),
            )));
        }
        let mut buf = vec![0u8; chunk.len as usize];
        match self.read_chunk_into(fi, chunk, &mut buf, keep) {
            Ok(()) => Ok(buf),
            Err(e) => Err(Box::new((e, buf))),
        }
    }
}
