//! The signature file (spec/format.md §6): the exact manifest bytes plus one or more
//! ed25519 signatures over a domain-separated message.
//!
//! The manifest is carried as an opaque byte string, so a verifier checks signatures
//! over the bytes it received and only then decodes them: nothing is re-serialised.

use ed25519_dalek::Signature;

use crate::cbor::{check_key_order, CborError, Item, Limits, Reader, Writer};
use crate::digest::Digest;
use crate::keys::{KeyId, PublicKey};
use crate::manifest::{Manifest, ManifestError, FORMAT_VERSION, MANIFEST_LIMITS};

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
    /// The digest of `manifest_bytes`, computed once: every signature check and every
    /// report needs it, and a 64 MiB manifest takes milliseconds to hash.
    manifest_digest: Digest,
    signatures: Vec<SignatureEntry>,
}

/// Why a signature file was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureFileError {
    /// The envelope's own CBOR was refused (the manifest inside is decoded separately).
    #[error("signature file encoding: {0}")]
    Cbor(#[from] CborError),
    /// A format version this build does not read.
    #[error("signature file format version {found} is not supported (this build reads version {FORMAT_VERSION})")]
    UnsupportedVersion {
        /// The version found.
        found: u64,
    },
    /// A field is missing, has the wrong type, or is unknown.
    #[error("signature file field {field}: {problem}")]
    Field {
        /// Dotted location, e.g. `signature file.signatures[0].sig`.
        field: String,
        /// What is wrong with it.
        problem: String,
    },
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
            manifest_digest: Manifest::digest_of_bytes(&manifest_bytes),
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
        self.manifest_digest
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

    /// The signature file's bytes. Refuses what a reader would refuse: no signatures,
    /// too many, or a file over the size limit.
    pub fn to_bytes(&self) -> Result<Vec<u8>, SignatureFileError> {
        if self.signatures.is_empty() {
            return Err(SignatureFileError::NoSignatures);
        }
        if self.signatures.len() > MAX_SIGNATURES {
            return Err(SignatureFileError::TooManySignatures {
                found: self.signatures.len(),
            });
        }
        // Keys in canonical order: "v", "manifest", "signatures"; "key" before "sig".
        let mut w = Writer::with_capacity(self.manifest_bytes.len() + 32 + self.signatures.len() * 110);
        w.map(3);
        w.text("v");
        w.uint(FORMAT_VERSION);
        w.text("manifest");
        w.bytes(&self.manifest_bytes);
        w.text("signatures");
        w.array(self.signatures.len());
        for s in &self.signatures {
            w.map(2);
            w.text("key");
            w.bytes(&s.public_key.to_raw());
            w.text("sig");
            w.bytes(&s.signature);
        }
        w.finish(ENVELOPE_LIMITS).map_err(SignatureFileError::Cbor)
    }

    /// Decodes a signature file, in one pass. Signatures are not checked here (see
    /// [`crate::Verifier::check_signatures`]), and the manifest is not decoded: it stays
    /// opaque bytes until a signature over them has been accepted.
    pub fn from_bytes(input: &[u8]) -> Result<Self, SignatureFileError> {
        let (range, signatures) = Self::parse(input)?;
        Ok(SignatureFile::unsigned(input[range].to_vec()).with_signatures(signatures))
    }

    /// [`Self::from_bytes`] on a buffer it takes over: the manifest bytes are moved to
    /// its front in place, so a 64 MiB signature file is not held twice.
    pub fn from_vec(mut input: Vec<u8>) -> Result<Self, SignatureFileError> {
        let (range, signatures) = Self::parse(&input)?;
        let len = range.len();
        input.copy_within(range, 0);
        input.truncate(len);
        input.shrink_to_fit();
        Ok(SignatureFile::unsigned(input).with_signatures(signatures))
    }

    fn with_signatures(mut self, signatures: Vec<SignatureEntry>) -> Self {
        self.signatures = signatures;
        self
    }

    /// The manifest's position in `input`, and the signatures.
    fn parse(input: &[u8]) -> Result<(std::ops::Range<usize>, Vec<SignatureEntry>), SignatureFileError> {
        let mut r = Reader::new(input, ENVELOPE_LIMITS)?;
        let bad = |field: &str, problem: &str| SignatureFileError::Field {
            field: field.to_string(),
            problem: problem.to_string(),
        };
        let Item::Map(pairs) = r.next()? else {
            return Err(bad("signature file", "expected a map"));
        };
        let mut previous: Option<&[u8]> = None;
        let (mut version, mut manifest_bytes, mut signatures) = (None, None, None);
        for _ in 0..pairs {
            let start = r.offset();
            let Item::Text(key) = r.next()? else {
                return Err(bad("signature file", "map keys must be text"));
            };
            let encoded = r.input(start..r.offset());
            check_key_order(previous, encoded, start)?;
            previous = Some(encoded);
            match key {
                "v" => match r.next()? {
                    Item::Uint(FORMAT_VERSION) => version = Some(FORMAT_VERSION),
                    Item::Uint(found) => return Err(SignatureFileError::UnsupportedVersion { found }),
                    _ => return Err(bad("signature file.v", "expected an unsigned integer")),
                },
                "manifest" => match r.next()? {
                    Item::Bytes(b) => manifest_bytes = Some(r.offset() - b.len()..r.offset()),
                    _ => return Err(bad("signature file.manifest", "expected a byte string")),
                },
                "signatures" => signatures = Some(read_signatures(&mut r)?),
                other => return Err(bad(&format!("signature file.{other}"), "unknown field")),
            }
        }
        r.finish()?;
        if version.is_none() {
            return Err(bad("signature file.v", "missing"));
        }
        let manifest_bytes = manifest_bytes.ok_or_else(|| bad("signature file.manifest", "missing"))?;
        let signatures = signatures.ok_or_else(|| bad("signature file.signatures", "missing"))?;
        Ok((manifest_bytes, signatures))
    }
}

/// The `signatures` array: 1..=MAX_SIGNATURES entries `{"key": bstr 32, "sig": bstr 64}`,
/// sorted by public key, no key twice.
fn read_signatures(r: &mut Reader<'_>) -> Result<Vec<SignatureEntry>, SignatureFileError> {
    let bad = |field: String, problem: &str| SignatureFileError::Field {
        field,
        problem: problem.to_string(),
    };
    let Item::Array(count) = r.next()? else {
        return Err(bad("signature file.signatures".into(), "expected an array"));
    };
    if count == 0 {
        return Err(SignatureFileError::NoSignatures);
    }
    if count > MAX_SIGNATURES as u64 {
        return Err(SignatureFileError::TooManySignatures {
            found: usize::try_from(count).unwrap_or(usize::MAX),
        });
    }
    let mut signatures: Vec<SignatureEntry> = Vec::with_capacity(count as usize);
    for index in 0..count as usize {
        let at = |key: &str| format!("signature file.signatures[{index}]{key}");
        let Item::Map(pairs) = r.next()? else {
            return Err(bad(at(""), "expected a map"));
        };
        let mut previous: Option<&[u8]> = None;
        let (mut raw_key, mut signature) = (None, None);
        for _ in 0..pairs {
            let start = r.offset();
            let Item::Text(key) = r.next()? else {
                return Err(bad(at(""), "map keys must be text"));
            };
            let encoded = r.input(start..r.offset());
            check_key_order(previous, encoded, start)?;
            previous = Some(encoded);
            let wrong_len = |n: usize, found: usize| format!("expected {n} bytes, found {found}");
            match (key, r.next()?) {
                ("key", Item::Bytes(b)) => {
                    raw_key = Some(<[u8; 32]>::try_from(b).map_err(|_| bad(at(".key"), &wrong_len(32, b.len())))?)
                }
                ("sig", Item::Bytes(b)) => {
                    signature = Some(<[u8; 64]>::try_from(b).map_err(|_| bad(at(".sig"), &wrong_len(64, b.len())))?)
                }
                ("key" | "sig", _) => return Err(bad(at(&format!(".{key}")), "expected a byte string")),
                (other, _) => return Err(bad(at(&format!(".{other}")), "unknown field")),
            }
        }
        let raw_key = raw_key.ok_or_else(|| bad(at(".key"), "missing"))?;
        let signature = signature.ok_or_else(|| bad(at(".sig"), "missing"))?;
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
    // The deterministic encoding keeps signatures sorted by key; anything else was not
    // written by a conforming signer.
    if signatures
        .windows(2)
        .any(|w| w[0].public_key.to_raw() >= w[1].public_key.to_raw())
    {
        return Err(bad("signature file.signatures".into(), "not sorted by public key"));
    }
    Ok(signatures)
}
