//! What the fuzz targets share: fixed test keys (so a target can sign inside the harness
//! and reach the code behind a signature check), a scratch folder, and small readers of
//! the fuzz input.
#![allow(
    clippy::expect_used,
    reason = "harness setup with constant inputs; a failure is a harness bug"
)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ed25519_dalek::SigningKey;
use weightseal_log::note::NoteSignerKey;
use weightseal_verifier::revocation::note::NoteVerifierKey;
use weightseal_verifier::PublicKey;

/// The log origin (and note key name) the harnesses sign under: the one of the revocation
/// vectors, so that the vectors' notes (seeds of the corpora) verify in the harnesses.
pub const ORIGIN: &str = "weightseal-revocations";

/// The harnesses' clock: one minute after the vectors' snapshot was issued (2025-06-15), so
/// that it is fresh.
pub const NOW: u64 = 1_750_000_120;

/// A fixed ed25519 key from a one-byte seed (test keys only, never secret).
pub fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

/// The log's note key (the vectors' `log_key_seed`).
pub fn log_key() -> NoteSignerKey {
    NoteSignerKey::new(ORIGIN, key(0x0f)).expect("the origin is a valid key name")
}

/// The hub issuer (the vectors' `hub_issuer_seed`).
pub fn hub() -> SigningKey {
    key(0x01)
}

/// The log's note verifier key.
pub fn log_verifier() -> NoteVerifierKey {
    log_key().verifier_key()
}

/// The model-signing key of the format vectors (seed 00 01 … 1f).
pub fn model_key() -> SigningKey {
    let mut seed = [0u8; 32];
    for (i, b) in seed.iter_mut().enumerate() {
        *b = i as u8;
    }
    SigningKey::from_bytes(&seed)
}

/// A public key of `key`.
pub fn public(key: &SigningKey) -> PublicKey {
    PublicKey::from_verifying_key(key.verifying_key())
}

/// A folder for this process's scratch files: under `$WEIGHTSEAL_FUZZ_SCRATCH` when set
/// (fuzz/ci.sh sets it and removes it afterwards: libFuzzer exits without running any
/// destructor), else on tmpfs when there is one.
pub fn scratch() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let shm = Path::new("/dev/shm");
        let parent = match std::env::var_os("WEIGHTSEAL_FUZZ_SCRATCH") {
            Some(p) => PathBuf::from(p),
            None if shm.is_dir() => shm.to_path_buf(),
            None => std::env::temp_dir(),
        };
        let builder = tempfile::Builder::new().prefix("weightseal-fuzz-").tempdir_in(parent);
        builder.expect("a scratch folder")
    })
    .path()
}

/// An empty folder `name` under [`scratch`] (emptied if it exists).
pub fn fresh_dir(name: &str) -> PathBuf {
    let dir = scratch().join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a scratch sub-folder");
    dir
}

/// Reads the fuzz input front to back.
#[derive(Debug)]
pub struct Input<'a> {
    rest: &'a [u8],
}

impl<'a> Input<'a> {
    /// A reader over `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Input { rest: data }
    }

    /// The next byte, or 0 when the input is used up.
    pub fn byte(&mut self) -> u8 {
        match self.rest.split_first() {
            Some((b, rest)) => {
                self.rest = rest;
                *b
            }
            None => 0,
        }
    }

    /// The next 8 bytes as a little-endian integer (missing bytes are zero).
    pub fn u64(&mut self) -> u64 {
        let mut out = [0u8; 8];
        for b in &mut out {
            *b = self.byte();
        }
        u64::from_le_bytes(out)
    }

    /// The next part: a 2-byte little-endian length, then that many bytes (or what is left).
    pub fn part(&mut self) -> &'a [u8] {
        let len = usize::from(u16::from_le_bytes([self.byte(), self.byte()]));
        let (part, rest) = self.rest.split_at(len.min(self.rest.len()));
        self.rest = rest;
        part
    }

    /// Everything not read yet.
    pub fn rest(self) -> &'a [u8] {
        self.rest
    }
}
