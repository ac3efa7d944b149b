//! ed25519 key files.
//!
//! Private keys are PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`), created with mode 0600
//! and never over an existing file; public keys are SPKI PEM (`-----BEGIN PUBLIC KEY-----`).
//!
//! Private keys are written as PKCS#8 *v1* (RFC 5208: the seed only). The v2 form
//! (RFC 5958, seed plus public key) is refused by OpenSSL 3.0's `openssl pkey`, and the
//! public key is derivable anyway. Both forms are read.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey, KeypairBytes};
use weightseal_verifier::PublicKey;

/// An ed25519 signing key (zeroized on drop).
pub use ed25519_dalek::SigningKey;

/// Why a key file could not be written or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyFileError {
    /// The file already exists; keys are never overwritten.
    #[error("{path} already exists; refusing to overwrite a key (move it away or choose another --out)")]
    Exists {
        /// The file.
        path: PathBuf,
    },
    /// I/O failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The file is not an ed25519 private key in PKCS#8 PEM form.
    #[error("{path} is not an ed25519 private key in PEM (PKCS#8) form: {reason}")]
    NotPrivateKey {
        /// The file.
        path: PathBuf,
        /// What the decoder said.
        reason: String,
    },
    /// The private key file can be read by other users.
    #[error("{path} is readable by other users (mode {mode:o}); run `chmod 600 {}`", path.display())]
    InsecurePermissions {
        /// The file.
        path: PathBuf,
        /// Its mode bits.
        mode: u32,
    },
    /// Encoding failed (should not happen).
    #[error("cannot encode key: {0}")]
    Encode(String),
    /// The operating system's random source failed.
    #[error("cannot read the system random source: {0}")]
    Random(String),
}

/// A fresh key from the operating system's random source.
pub fn generate_keypair() -> Result<SigningKey, KeyFileError> {
    let mut seed = zeroize::Zeroizing::new([0u8; 32]);
    getrandom::fill(seed.as_mut()).map_err(|e| KeyFileError::Random(e.to_string()))?;
    Ok(SigningKey::from_bytes(&seed))
}

/// The public key file written beside a private key: `KEY.pub`.
pub fn public_key_path(private: &Path) -> PathBuf {
    let mut name = private.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".pub");
    private.with_file_name(name)
}

fn create_new(path: &Path, mode: u32, contents: &[u8]) -> Result<(), KeyFileError> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|source| {
            if source.kind() == std::io::ErrorKind::AlreadyExists {
                KeyFileError::Exists { path: path.into() }
            } else {
                KeyFileError::Io {
                    path: path.into(),
                    source,
                }
            }
        })?;
    let io = |source| KeyFileError::Io {
        path: path.into(),
        source,
    };
    // `mode` is filtered by the umask on creation; set it exactly.
    let written = file
        .set_permissions(std::fs::Permissions::from_mode(mode))
        .and_then(|()| file.write_all(contents))
        .and_then(|()| file.sync_all());
    written.map_err(|e| {
        // Never leave a partial key file behind.
        let _ = std::fs::remove_file(path);
        io(e)
    })
}

/// Writes `KEY` (private, mode 0600) and `KEY.pub` (public, mode 0644). Refuses to
/// overwrite either, and leaves neither behind if writing the pair fails.
pub fn write_keypair(key: &SigningKey, private_path: &Path) -> Result<PathBuf, KeyFileError> {
    let public_path = public_key_path(private_path);
    for p in [private_path, public_path.as_path()] {
        // symlink_metadata: a dangling symlink also counts as "exists".
        if std::fs::symlink_metadata(p).is_ok() {
            return Err(KeyFileError::Exists { path: p.into() });
        }
    }
    let private_pem = KeypairBytes {
        secret_key: key.to_bytes(),
        public_key: None,
    }
    .to_pkcs8_pem(LineEnding::LF)
    .map_err(|e| KeyFileError::Encode(e.to_string()))?;
    let public_pem = key
        .verifying_key()
        .to_public_key_pem(LineEnding::LF)
        .map_err(|e| KeyFileError::Encode(e.to_string()))?;
    create_new(private_path, 0o600, private_pem.as_bytes())?;
    if let Err(e) = create_new(&public_path, 0o644, public_pem.as_bytes()) {
        let _ = std::fs::remove_file(private_path);
        return Err(e);
    }
    Ok(public_path)
}

/// Reads a PKCS#8 PEM private key. Refuses a file other users can read.
pub fn read_signing_key(path: &Path) -> Result<SigningKey, KeyFileError> {
    let io = |source| KeyFileError::Io {
        path: path.into(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(io)?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(KeyFileError::InsecurePermissions {
            path: path.into(),
            mode,
        });
    }
    if meta.len() > 64 * 1024 {
        return Err(KeyFileError::NotPrivateKey {
            path: path.into(),
            reason: format!("{} bytes is far too large for a PEM key", meta.len()),
        });
    }
    let text = zeroize::Zeroizing::new(std::fs::read_to_string(path).map_err(io)?);
    SigningKey::from_pkcs8_pem(text.trim()).map_err(|e| KeyFileError::NotPrivateKey {
        path: path.into(),
        reason: e.to_string(),
    })
}

/// The verifier-side view of a signing key.
pub fn public_key_of(key: &SigningKey) -> PublicKey {
    PublicKey::from_verifying_key(key.verifying_key())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keygen_round_trip_and_modes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lab.key");
        let key = generate_keypair().unwrap();
        let pub_path = write_keypair(&key, &path).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        let back = read_signing_key(&path).unwrap();
        assert_eq!(back.to_bytes(), key.to_bytes());
        let public = PublicKey::from_pem_file(&pub_path).unwrap();
        assert_eq!(public.id(), public_key_of(&key).id());
        // Never overwritten.
        assert!(matches!(write_keypair(&key, &path), Err(KeyFileError::Exists { .. })));
        // OpenSSL reads both files (where it is installed).
        if std::process::Command::new("openssl").arg("version").output().is_ok() {
            let private_ok = std::process::Command::new("openssl")
                .args(["pkey", "-noout", "-in"])
                .arg(&path)
                .status();
            assert!(private_ok.unwrap().success(), "openssl refused the private key");
            let public_ok = std::process::Command::new("openssl")
                .args(["pkey", "-pubin", "-noout", "-in"])
                .arg(&pub_path)
                .status();
            assert!(public_ok.unwrap().success(), "openssl refused the public key");
        }
        // Group-readable private keys are refused.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        assert!(matches!(
            read_signing_key(&path),
            Err(KeyFileError::InsecurePermissions { .. })
        ));
    }
}
