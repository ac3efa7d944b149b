//! Helpers shared by subcommands: reading key files (with hints), locating signature
//! files, describing `VerifyError`s.

use std::path::{Path, PathBuf};

use anyhow::anyhow;
use weightseal_signer::{read_signing_key, KeyFileError, SigningKey};
use weightseal_verifier::{default_signature_path, KeyError, PublicKey, VerifyError};

use super::Failure;

/// The signature file to use: the one given, or the default beside / inside the model.
pub fn signature_path(model: &Path, given: Option<&Path>) -> PathBuf {
    given.map_or_else(|| default_signature_path(model), Path::to_path_buf)
}

/// Whether a small file looks like a PEM private key (for hints only).
fn looks_like(path: &Path, label: &str) -> bool {
    weightseal_verifier::bounded::read_file_within(path, 64 * 1024)
        .map(|b| String::from_utf8_lossy(&b).contains(label))
        .unwrap_or(false)
}

/// Reads a trusted public key. Any failure is exit 2: the command cannot run.
pub fn load_trusted_key(path: &Path) -> Result<PublicKey, Failure> {
    PublicKey::from_pem_file(path).map_err(|e| {
        let hint = match &e {
            KeyError::NotPublicKeyPem { .. } if looks_like(path, "PRIVATE KEY") => Some(
                "that file is a PRIVATE key: pass the public key (KEY.pub written by `weightseal keygen`), \
                 and keep the private key away from machines that only verify"
                    .to_string(),
            ),
            KeyError::NotPublicKeyPem { .. } | KeyError::InvalidKey { .. } | KeyError::TooLarge { .. } => Some(
                "--trusted-key takes an ed25519 public key in SPKI PEM form (`-----BEGIN PUBLIC KEY-----`), \
                 such as the KEY.pub written by `weightseal keygen`"
                    .to_string(),
            ),
            _ => None,
        };
        Failure::usage(anyhow!("trusted key: {e}")).maybe_hint(hint)
    })
}

/// Reads a private signing key. Any failure is exit 2: the command cannot run.
pub fn load_signing_key(path: &Path) -> Result<SigningKey, Failure> {
    if looks_like(path, "-----BEGIN PUBLIC KEY-----") {
        return Err(Failure::usage(anyhow!(
            "signing key: {} is a public key, not a private key",
            path.display()
        ))
        .hint("--key takes the private key (KEY, not KEY.pub) written by `weightseal keygen --out KEY`"));
    }
    read_signing_key(path).map_err(|e| {
        let hint = match &e {
            KeyFileError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                Some("create a key with `weightseal keygen --out KEY`".to_string())
            }
            _ => None,
        };
        Failure::usage(anyhow!("signing key: {e}")).maybe_hint(hint)
    })
}

/// A hint for a verification failure, where one helps.
pub fn verify_hint(e: &VerifyError, signature: &Path) -> Option<String> {
    match e {
        VerifyError::SignatureFileUnreadable { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
            Some(format!(
                "no signature file at {}: sign the model with `weightseal sign`, or point to its signature with \
                 --signature",
                signature.display()
            ))
        }
        VerifyError::ThresholdNotMet { valid: 0, .. } => Some(
            "the model is not signed by any key you trust: did you pass the signer's public key with --trusted-key?"
                .to_string(),
        ),
        VerifyError::ThresholdNotMet { .. } => Some(
            "more trusted signers are needed: another trusted key holder can add theirs with `weightseal cosign`"
                .to_string(),
        ),
        VerifyError::FileSetMismatch { unsigned, .. } if !unsigned.is_empty() => Some(
            "files the signature does not cover could run code or change behaviour when loaded: remove them, or \
             have the release re-signed with them included"
                .to_string(),
        ),
        VerifyError::UnknownTensor { .. } => {
            Some("`weightseal inspect SIG` lists the files; tensor names are as in the weight files".to_string())
        }
        VerifyError::AmbiguousTensor { .. } => Some(
            "verify one file of the model instead (weightseal verify MODEL/FILE --signature MODEL/weightseal.sig \
             --tensors NAME)"
                .to_string(),
        ),
        _ => None,
    }
}
