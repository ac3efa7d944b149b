//! # weightseal-verifier
//!
//! The crate an inference runtime links to check weightseal signatures before (or while)
//! loading model weights. It implements format version 1 of `spec/format.md`: chunking
//! of safetensors, GGUF and raw files, BLAKE3 hashing, the deterministic CBOR manifest,
//! ed25519 signature files, and a k-of-n trust policy.
//!
//! ```no_run
//! use std::path::Path;
//! use weightseal_verifier::{PublicKey, Verifier};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let lab_key = PublicKey::from_pem_file(Path::new("lab.pub"))?;
//! let verifier = Verifier::builder().trust(lab_key).build()?;
//! let model = verifier.open(Path::new("model/"), Path::new("model/weightseal.sig"))?;
//! // Check everything…
//! let proof = model.verify_all(None)?;
//! println!("verified {} signed by {:?}", proof.manifest_digest(), proof.signers());
//! // …or read one tensor straight into your memory, checked as it lands.
//! let mut buf = vec![0u8; model.tensor_len("lm_head.weight")? as usize];
//! model.read_tensor_into("lm_head.weight", &mut buf)?;
//! # Ok(()) }
//! ```
//!
//! Default features pull in no async runtime and no command-line parser.
#![warn(missing_docs)]

pub mod atomic;
pub mod bounded;
mod cbor;
pub mod clock;
pub mod decision;
pub mod diff;
mod digest;
pub mod envelope;
mod fields;
pub mod fingerprint;
pub mod format;
// Entry points for the fuzz targets only (see fuzz/README.md).
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod keys;
pub mod manifest;
mod mapped;
pub mod revocation;
pub mod scan;
mod source;
mod verify;
pub mod walk;

pub use cbor::CborError;
pub use decision::{
    DecisionError, LoadDecision, Mode, Policy, PolicyBuilder, RefusalKind, RevocationConfig, RevocationStatus,
    SettingError, UnsignedModels, POLICY_ENV,
};
pub use digest::{Digest, ParseDigestError};
pub use envelope::{signed_message, SignatureEntry, SignatureFile, SignatureFileError};
pub use keys::{KeyError, KeyId, PublicKey};
pub use manifest::{Chunk, ChunkRole, FileEntry, FileKind, Manifest, ManifestError, Parent, Relation};
pub use revocation::local::RevocationSource;
pub use source::ReadMode;
pub use verify::{
    default_signature_path, Coverage, PolicyError, SignedModel, Verified, Verifier, VerifierBuilder, VerifyError,
};
