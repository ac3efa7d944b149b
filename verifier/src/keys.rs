//! Ed25519 public keys and key ids.
//!
//! Keys travel as standard PEM (SPKI for public keys) so `openssl pkey -pubin` reads
//! them. A key id is a domain-separated BLAKE3 digest of the raw 32-byte public key:
//! long enough that revoking "key X" can never hit another key by collision.

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use ed25519_dalek::pkcs8::DecodePublicKey;
use ed25519_dalek::VerifyingKey;

use crate::digest::{Digest, KEY_ID_CONTEXT};

/// Largest key file we read: PEM keys are a few hundred bytes.
const MAX_KEY_FILE_BYTES: u64 = 64 * 1024;

/// The identifier of an ed25519 public key (spec/format.md §6.2).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(Digest);

impl KeyId {
    /// The key id of a raw ed25519 public key.
    pub fn of_raw_public_key(raw: &[u8; 32]) -> Self {
        KeyId(Digest::derive(KEY_ID_CONTEXT, raw))
    }

    /// The id as a digest (what revocation entries name).
    pub fn digest(&self) -> Digest {
        self.0
    }

    /// Lower-case hexadecimal, 64 characters.
    pub fn to_hex(&self) -> String {
        self.0.to_hex()
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.to_hex())
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({})", self.0.to_hex())
    }
}

impl FromStr for KeyId {
    type Err = crate::digest::ParseDigestError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(KeyId(s.parse()?))
    }
}

/// An ed25519 public key trusted (or not) by a verifier.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PublicKey {
    key: VerifyingKey,
    id: KeyId,
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.id)
    }
}

/// Why a public key could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The key file could not be read.
    #[error("cannot read key file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The key file is larger than any PEM key could be.
    #[error("key file {path} is {size} bytes; a PEM key is under {limit} bytes")]
    TooLarge {
        /// The file.
        path: String,
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The text is not an ed25519 public key in SPKI PEM form.
    #[error("{source_name} is not an ed25519 public key in PEM (SPKI) form: {reason}")]
    NotPublicKeyPem {
        /// Where the text came from.
        source_name: String,
        /// What the decoder said.
        reason: String,
    },
    /// The raw key bytes are not a valid ed25519 point.
    #[error("not a valid ed25519 public key: {reason}")]
    InvalidKey {
        /// What the decoder said.
        reason: String,
    },
}

impl PublicKey {
    /// Wraps a verifying key.
    pub fn from_verifying_key(key: VerifyingKey) -> Self {
        PublicKey {
            id: KeyId::of_raw_public_key(key.as_bytes()),
            key,
        }
    }

    /// From the raw 32 bytes of the key. Weak (small-order) keys are refused.
    pub fn from_raw(raw: &[u8; 32]) -> Result<Self, KeyError> {
        let key = VerifyingKey::from_bytes(raw).map_err(|e| KeyError::InvalidKey { reason: e.to_string() })?;
        if key.is_weak() {
            return Err(KeyError::InvalidKey {
                reason: "small-order (weak) public key".into(),
            });
        }
        Ok(Self::from_verifying_key(key))
    }

    /// Parses SPKI PEM text (`-----BEGIN PUBLIC KEY-----`).
    pub fn from_pem(pem: &str, source_name: &str) -> Result<Self, KeyError> {
        let key = VerifyingKey::from_public_key_pem(pem.trim()).map_err(|e| KeyError::NotPublicKeyPem {
            source_name: source_name.to_string(),
            reason: e.to_string(),
        })?;
        Self::from_raw(key.as_bytes())
    }

    /// Reads an SPKI PEM file.
    pub fn from_pem_file(path: &Path) -> Result<Self, KeyError> {
        let shown = path.display().to_string();
        let text = crate::bounded::read_text_file_within(path, MAX_KEY_FILE_BYTES).map_err(|e| match e {
            crate::bounded::ReadWithinError::TooLarge { size } => KeyError::TooLarge {
                path: shown.clone(),
                size,
                limit: MAX_KEY_FILE_BYTES,
            },
            crate::bounded::ReadWithinError::Io(source) => KeyError::Io {
                path: shown.clone(),
                source,
            },
        })?;
        Self::from_pem(&text, &shown)
    }

    /// The key id.
    pub fn id(&self) -> KeyId {
        self.id
    }

    /// The raw 32 bytes.
    pub fn to_raw(&self) -> [u8; 32] {
        self.key.to_bytes()
    }

    /// The underlying dalek key.
    pub fn verifying_key(&self) -> &VerifyingKey {
        &self.key
    }
}
