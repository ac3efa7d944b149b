//! Hashing a model into a manifest and signing it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ed25519_dalek::Signer as _;
use weightseal_verifier::scan::{scan_model, ProgressFn, ScanError, ScanOptions};
use weightseal_verifier::walk::IgnoreRules;
use weightseal_verifier::{
    signed_message, Digest, Manifest, ManifestError, Parent, ReadMode, SignatureEntry, SignatureFile,
    SignatureFileError, Verifier, VerifyError,
};

use crate::keys::{public_key_of, SigningKey};

/// What goes into a manifest besides the files.
#[derive(Clone, Default)]
pub struct ManifestOptions<'a> {
    /// Model name.
    pub name: Option<String>,
    /// Lineage.
    pub parents: Vec<Parent>,
    /// Ignore rules; `None` means the defaults.
    pub ignore: Option<Vec<String>>,
    /// Annotations.
    pub annotations: BTreeMap<String, String>,
    /// Raw-file chunk size; `None` means the default.
    pub raw_chunk_size: Option<u64>,
    /// Creation time to record; `None` means now.
    pub created: Option<u64>,
    /// Progress callback (bytes hashed).
    pub progress: Option<ProgressFn<'a>>,
    /// Whether model files may be memory-mapped while hashing.
    pub read_mode: ReadMode,
}

impl std::fmt::Debug for ManifestOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManifestOptions")
            .field("name", &self.name)
            .field("parents", &self.parents)
            .field("ignore", &self.ignore)
            .finish_non_exhaustive()
    }
}

/// Why signing failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SignError {
    /// Hashing the model failed.
    #[error(transparent)]
    Scan(#[from] ScanError),
    /// An ignore rule is invalid.
    #[error("invalid ignore rule: {0}")]
    IgnoreRule(String),
    /// The manifest could not be encoded (a limit or path rule).
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// The signature file could not be encoded.
    #[error(transparent)]
    SignatureFile(#[from] SignatureFileError),
    /// Co-signing: the model does not match the existing signature file.
    #[error("the model does not match the existing signature file")]
    Verify(#[from] VerifyError),
    /// Co-signing: an existing signature does not verify.
    #[error("existing signature by {key_id} does not verify; refusing to co-sign an altered signature file")]
    ExistingSignatureInvalid {
        /// The key.
        key_id: String,
    },
    /// A parent is neither a digest nor a readable signature file.
    #[error("--parent {given:?} is neither a 64-digit manifest digest nor a readable signature file: {reason}")]
    BadParent {
        /// What was given.
        given: String,
        /// Why it was refused.
        reason: String,
    },
    /// The clock cannot be read for the manifest's creation time.
    #[error(transparent)]
    Clock(#[from] weightseal_verifier::clock::ClockError),
    /// Writing the signature file failed.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

/// Hashes `model` (a folder or one file) into a manifest. `signature_path` is left out
/// of a folder's manifest wherever it lies.
pub fn build_manifest(
    model: &Path,
    signature_path: &Path,
    options: &ManifestOptions<'_>,
) -> Result<Manifest, SignError> {
    let scan_options = ScanOptions {
        raw_chunk_size: options
            .raw_chunk_size
            .unwrap_or(weightseal_verifier::format::DEFAULT_RAW_CHUNK_SIZE),
        progress: options.progress,
        read_mode: options.read_mode,
    };
    let meta = std::fs::symlink_metadata(model).map_err(|source| ScanError::Io {
        path: model.into(),
        source,
    })?;
    // A folder's ignore rules are recorded in its manifest; a single file has none.
    let (ignore, recorded) = if meta.is_dir() {
        let ignore = match &options.ignore {
            Some(rules) => IgnoreRules::new(rules).map_err(SignError::IgnoreRule)?,
            None => IgnoreRules::defaults(),
        };
        let recorded = ignore.texts().to_vec();
        (ignore, recorded)
    } else {
        (IgnoreRules::defaults(), vec![])
    };
    let files = scan_model(model, &ignore, &[signature_path.to_path_buf()], scan_options)?;
    let ignore = recorded;
    Ok(Manifest {
        name: options.name.clone(),
        files,
        parents: options.parents.clone(),
        ignore,
        annotations: options.annotations.clone(),
        created: Some(match options.created {
            Some(t) => t,
            None => weightseal_verifier::clock::now_unix()?,
        }),
    })
}

/// Signs exact manifest bytes.
pub fn sign_manifest_bytes(manifest_bytes: &[u8], key: &SigningKey) -> SignatureEntry {
    let digest = Manifest::digest_of_bytes(manifest_bytes);
    SignatureEntry {
        public_key: public_key_of(key),
        signature: key.sign(&signed_message(&digest)).to_bytes(),
    }
}

/// A parent given as a digest, or as a signature file whose manifest digest is taken.
pub fn resolve_parent(given: &str) -> Result<Digest, SignError> {
    if let Ok(digest) = given.parse::<Digest>() {
        return Ok(digest);
    }
    let sig = Verifier::read_signature_file(Path::new(given)).map_err(|e| SignError::BadParent {
        given: given.to_string(),
        reason: e.to_string(),
    })?;
    Ok(sig.manifest_digest())
}

/// Verifies `model` against the signature file at `signature_path` (every existing
/// signature must be valid and every byte must match) and returns it with `key`'s
/// signature added.
pub fn cosign(
    model: &Path,
    signature_path: &Path,
    key: &SigningKey,
    progress: Option<ProgressFn<'_>>,
) -> Result<SignatureFile, SignError> {
    let mut sig = Verifier::read_signature_file(signature_path)?;
    let digest = sig.manifest_digest();
    let mut builder = Verifier::builder();
    for entry in sig.signatures() {
        if !entry.is_valid_for(&digest) {
            return Err(SignError::ExistingSignatureInvalid {
                key_id: entry.public_key.id().to_hex(),
            });
        }
        builder = builder.trust(entry.public_key);
    }
    let count = sig.signatures().len();
    let verifier = builder.threshold(count).build().map_err(|e| SignError::BadParent {
        given: signature_path.display().to_string(),
        reason: e.to_string(),
    })?;
    verifier.open(model, signature_path)?.verify_all(progress)?;
    let entry = sign_manifest_bytes(sig.manifest_bytes(), key);
    sig.add_signature(entry);
    Ok(sig)
}

/// Writes a signature file atomically ([`weightseal_verifier::atomic::write_file`]): a
/// crash leaves either the old file or the new one, never half of one. The file is
/// readable by everyone (0644): a signature file holds no secret, and the runtime or web
/// server that checks it often runs as another user.
pub fn write_signature_file(path: &Path, sig: &SignatureFile) -> Result<(), SignError> {
    let bytes = sig.to_bytes()?;
    weightseal_verifier::atomic::write_file(path, &bytes).map_err(|source| SignError::Write {
        path: path.into(),
        source,
    })
}
