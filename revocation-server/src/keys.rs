//! The log key: an ed25519 PKCS#8 PEM private key, as `weightseal keygen` writes it.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use ed25519_dalek::pkcs8::DecodePrivateKey;
use ed25519_dalek::SigningKey;
use weightseal_log::note::NoteSignerKey;
use weightseal_verifier::revocation::note::NoteError;

/// Why the log key could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// Reading the file failed.
    #[error("{path}: {source}")]
    Io {
        /// The key file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// Group or other users may read the file.
    #[error("{path} is readable by other users (mode {mode:o}); run `chmod 600 {path}`")]
    InsecurePermissions {
        /// The key file.
        path: String,
        /// Its permission bits.
        mode: u32,
    },
    /// The file is not an ed25519 PKCS#8 PEM private key.
    #[error("{path} is not an ed25519 private key in PEM (PKCS#8) form: {reason}")]
    NotPrivateKey {
        /// The key file.
        path: PathBuf,
        /// What the decoder said.
        reason: String,
    },
    /// The origin cannot be a note key name.
    #[error("origin {origin:?} cannot be used as a note key name: {source}")]
    BadOrigin {
        /// The origin.
        origin: String,
        /// Why.
        source: NoteError,
    },
}

/// Reads the log's ed25519 private key (PKCS#8 PEM). Refuses a file that group or other users
/// can read.
pub fn read_log_key(path: &Path) -> Result<SigningKey, KeyError> {
    let io = |source| KeyError::Io {
        path: path.into(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(io)?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(KeyError::InsecurePermissions {
            path: path.display().to_string(),
            mode,
        });
    }
    if meta.len() > 64 * 1024 {
        return Err(KeyError::NotPrivateKey {
            path: path.into(),
            reason: format!("{} bytes is far too large for a PEM key", meta.len()),
        });
    }
    let text = zeroize::Zeroizing::new(std::fs::read_to_string(path).map_err(io)?);
    SigningKey::from_pkcs8_pem(text.trim()).map_err(|e| KeyError::NotPrivateKey {
        path: path.into(),
        reason: e.to_string(),
    })
}

/// The note signer for `origin` (the key name is the log origin).
pub fn note_signer(origin: &str, key: SigningKey) -> Result<NoteSignerKey, KeyError> {
    NoteSignerKey::new(origin, key).map_err(|source| KeyError::BadOrigin {
        origin: origin.to_owned(),
        source,
    })
}

/// Reads the key file and makes the note signer for `origin`.
pub fn load_note_signer(path: &Path, origin: &str) -> Result<NoteSignerKey, KeyError> {
    note_signer(origin, read_log_key(path)?)
}
