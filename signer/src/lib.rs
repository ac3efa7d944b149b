//! # weightseal-signer
//!
//! Key handling and signing for weightseal: generate ed25519 keys (PKCS#8 / SPKI PEM, so
//! `openssl pkey` reads them), hash a model into a manifest, sign it, co-sign it. The
//! `weightseal` command-line tool in this crate is a thin layer over these functions.
#![warn(missing_docs)]

pub mod keys;
pub mod sign;

pub use keys::{generate_keypair, read_signing_key, write_keypair, KeyFileError, SigningKey};
pub use sign::{
    build_manifest, cosign, resolve_parent, sign_manifest_bytes, write_signature_file, ManifestOptions, SignError,
};
