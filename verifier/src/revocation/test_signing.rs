//! Test-only note signing for the unit tests of the revocation modules.
//!
//! The log's signer (in `weightseal-log`, `revocation-server/log/`)
//! cannot serve these tests: a unit test build of this crate is a different crate from the
//! `weightseal-verifier` that `weightseal-log` links, so their types do not unify. These few
//! lines write the c2sp.org/signed-note signature line and nothing else (no input checks:
//! tests pass well-formed bodies). The log crate checks its signer against Go's vectors, and
//! every integration test opens the log crate's notes with this crate's `open_note`, so the
//! two cannot drift apart unnoticed.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use ed25519_dalek::{Signer as _, SigningKey};

use crate::revocation::note::{NoteVerifierKey, SIG_PREFIX};

/// A named Ed25519 key that signs notes in tests.
#[derive(Debug, Clone)]
pub(crate) struct TestSigner {
    name: String,
    key: SigningKey,
}

impl TestSigner {
    /// The key with seed `[seed; 32]` under the key name `name`.
    pub(crate) fn new(name: &str, seed: u8) -> Self {
        TestSigner {
            name: name.to_owned(),
            key: SigningKey::from_bytes(&[seed; 32]),
        }
    }

    /// The matching verifier key.
    #[allow(clippy::expect_used, reason = "test helper: a test names its keys validly")]
    pub(crate) fn verifier_key(&self) -> NoteVerifierKey {
        NoteVerifierKey::new(&self.name, self.key.verifying_key()).expect("a valid test key name")
    }

    /// `— <name> base64(key ID || signature)\n` over `body`.
    pub(crate) fn line(&self, body: &str) -> String {
        let mut blob = self.verifier_key().key_id().to_vec();
        blob.extend_from_slice(&self.key.sign(body.as_bytes()).to_bytes());
        format!("{SIG_PREFIX}{} {}\n", self.name, BASE64.encode(blob))
    }

    /// The note `body`, a blank line and this key's signature line.
    pub(crate) fn sign(&self, body: &str) -> String {
        test_note(body, &[self])
    }
}

/// The note `body`, a blank line and one signature line per key, in order.
pub(crate) fn test_note(body: &str, keys: &[&TestSigner]) -> String {
    let mut note = format!("{body}\n");
    for k in keys {
        note.push_str(&k.line(body));
    }
    note
}
