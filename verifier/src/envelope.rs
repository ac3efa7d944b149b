//! The signature file (spec/format.md §6): the exact manifest bytes plus one or more
//! ed25519 signatures over a domain-separated message.
//!
//! The manifest is carried as an opaque byte string, so a verifier checks signatures
//! over the bytes it received and only then decodes them: nothing is re-serialised.

use ciborium::Value;
use ed25519_dalek::Signature;

use crate::cbor::{self, Limits};
use crate::digest::Digest;
use crate::keys::{KeyId, PublicKey};
use crate::manifest::{Fields, Manifest, ManifestError, FORMAT_VERSION, MANIFEST_LIMITS};

/// The prefix of every signed message; 32 bytes of manifest digest follow it.
pub const SIGNATURE_CONTEXT: &[u8] = b"weightseal v1 manifest signature\0";

/// The most signatures a signature file may carry.
pub const MAX_SIGNATURES: usize = 32;

const ENVELOPE_LIMITS: Limits = Limits {
    max_bytes: MANIFEST_LIMITS.max_bytes + 64 * 1024,
    max_items: 1024,
    max_depth: 4,
};

/// The message an ed25519 signature covers for a given manifest digest.
pub fn signed_message(manifest_digest: &Digest) -> Vec<u8> {
    let mut m = Vec::with_capacity(SIGNATURE_CONTEXT.len() + 32);
    m.extend_from_slice(SIGNATURE_CONTEXT);
    m.extend_from_slice(manifest_digest.as_bytes());
    m
}

/// One signature in a signature file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureEntry {
    /// The signer's public key (its id is derived from it).
    pub public_key: PublicKey,
    /// The ed25519 signature over [`signed_message`].
    pub signature: [u8; 64],
}

impl SignatureEntry {
    /// Whether this signature is valid for `manifest_digest` (cryptographically; says
    /// nothing about whether the key is trusted). Uses strict verification, which
    /// refuses non-canonical signatures and small-order components.
    pub fn is_valid_for(&self, manifest_digest: &Digest) -> bool {
        let sig = Signature::from_bytes(&self.signature);
        self.public_key
            .verifying_key()
            .verify_strict(&signed_message(manifest_digest), &sig)
            .is_ok()
    }
}

/// A decoded signature file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureFile {
    manifest_bytes: Vec<u8>,
    signatures: Vec<SignatureEntry>,
}

/// Why a signature file was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureFileError {
    /// The envelope (or the manifest inside) is malformed.
    #[error(transparent)]
    Malformed(#[from] ManifestError),
    /// A signature's public key is not a valid ed25519 key.
    #[error("signature {index}: the public key is not valid: {reason}")]
    BadPublicKey {
        /// Which signature.
        index: usize,
        /// What the decoder said.
        reason: String,
    },
    /// Two signatures by the same key.
    #[error("two signatures by key {key_id}")]
    DuplicateSigner {
        /// The key.
        key_id: KeyId,
    },
    /// No signature at all.
    #[error("the signature file holds no signature")]
    NoSignatures,
    /// Too many signatures.
    #[error("the signature file holds {found} signatures; at most {MAX_SIGNATURES} are allowed")]
    TooManySignatures {
        /// How many.
        found: usize,
    },
}

impl SignatureFile {
    /// A signature file with no signature yet (not writable until one is added).
    pub fn unsigned(manifest_bytes: Vec<u8>) -> Self {
        SignatureFile {
            manifest_bytes,
            signatures: Vec::new(),
        }
    }

    /// Adds a signature, replacing any earlier one by the same key.
    pub fn add_signature(&mut self, entry: SignatureEntry) {
        self.signatures.retain(|s| s.public_key.id() != entry.public_key.id());
        self.signatures.push(entry);
        self.signatures.sort_by_key(|s| s.public_key.to_raw());
    }

    /// The exact manifest bytes that were signed.
    pub fn manifest_bytes(&self) -> &[u8] {
        &self.manifest_bytes
    }

    /// The manifest digest of those bytes.
    pub fn manifest_digest(&self) -> Digest {
        Manifest::digest_of_bytes(&self.manifest_bytes)
    }

    /// Decodes the manifest. Callers that trust nothing yet should check signatures first
    /// (the [`crate::Verifier`] does).
    pub fn manifest(&self) -> Result<Manifest, ManifestError> {
        Manifest::from_bytes(&self.manifest_bytes)
    }

    /// The signatures, sorted by public key.
    pub fn signatures(&self) -> &[SignatureEntry] {
        &self.signatures
    }

    /// The deterministic encoding of the signature file.
    pub fn to_bytes(&self) -> Result<Vec<u8>, SignatureFileError> {
        if self.signatures.is_empty() {
            return Err(SignatureFileError::NoSignatures);
        }
        let sigs = self
            .signatures
            .iter()
            .map(|s| {
                Value::Map(vec![
                    (Value::Text("key".into()), Value::Bytes(s.public_key.to_raw().to_vec())),
                    (Value::Text("sig".into()), Value::Bytes(s.signature.to_vec())),
                ])
            })
            .collect();
        let top = Value::Map(vec![
            (Value::Text("v".into()), Value::Integer(FORMAT_VERSION.into())),
            (
                Value::Text("manifest".into()),
                Value::Bytes(self.manifest_bytes.clone()),
            ),
            (Value::Text("signatures".into()), Value::Array(sigs)),
        ]);
        cbor::encode(&top).map_err(|e| SignatureFileError::Malformed(e.into()))
    }

    /// Decodes a signature file. The manifest inside is *not* decoded here.
    pub fn from_bytes(input: &[u8]) -> Result<Self, SignatureFileError> {
        let value = cbor::decode(input, ENVELOPE_LIMITS).map_err(ManifestError::from)?;
        let mut top = Fields::new(value, "signature file")?;
        let version = top.required("v")?.uint()?;
        if version != FORMAT_VERSION {
            return Err(ManifestError::UnsupportedVersion { found: version }.into());
        }
        let manifest_bytes = top.required("manifest")?.byte_string()?;
        let sig_values = top.required("signatures")?.array()?;
        top.finish()?;
        if sig_values.is_empty() {
            return Err(SignatureFileError::NoSignatures);
        }
        if sig_values.len() > MAX_SIGNATURES {
            return Err(SignatureFileError::TooManySignatures {
                found: sig_values.len(),
            });
        }
        let mut signatures: Vec<SignatureEntry> = Vec::with_capacity(sig_values.len());
        for (index, v) in sig_values.into_iter().enumerate() {
            let mut f = Fields::new_at(v)?;
            let raw_key = f.required("key")?.fixed::<32>()?;
            let signature = f.required("sig")?.fixed::<64>()?;
            f.finish()?;
            let public_key = PublicKey::from_raw(&raw_key).map_err(|e| SignatureFileError::BadPublicKey {
                index,
                reason: e.to_string(),
            })?;
            if signatures.iter().any(|s| s.public_key.id() == public_key.id()) {
                return Err(SignatureFileError::DuplicateSigner {
                    key_id: public_key.id(),
                });
            }
            signatures.push(SignatureEntry { public_key, signature });
        }
        // The deterministic encoding keeps signatures sorted by key; anything else was
        // not written by a conforming signer.
        if signatures
            .windows(2)
            .any(|w| w[0].public_key.to_raw() >= w[1].public_key.to_raw())
        {
            return Err(ManifestError::Field {
                field: "signature file.signatures".into(),
                problem: "not sorted by public key".into(),
            }
            .into());
        }
        Ok(SignatureFile {
            manifest_bytes,
            signatures,
        })
    }
}
