//! A witness's cosigning key (C2SP `tlog-cosignature`, Ed25519 `cosignature/v1`,
//! spec/revocation.md §5.1). What a cosignature is and how a client counts a quorum is
//! `weightseal_verifier::revocation::cosignature`; this is the signing side a witness runs.

use std::fmt;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use ed25519_dalek::{Signer as _, SigningKey};
use weightseal_verifier::revocation::cosignature::{cosigned_message, CosignatureError, WitnessKey};
use weightseal_verifier::revocation::note::SIG_PREFIX;

/// A witness's signing key. `Debug` does not print the secret.
#[derive(Clone)]
pub struct WitnessSigner {
    public: WitnessKey,
    key: SigningKey,
}

impl fmt::Debug for WitnessSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WitnessSigner")
            .field("public", &self.public.to_string())
            .finish_non_exhaustive()
    }
}

impl WitnessSigner {
    /// A witness named `name` signing with `key`.
    pub fn new(name: &str, key: SigningKey) -> Result<Self, CosignatureError> {
        Ok(WitnessSigner {
            public: WitnessKey::new(name, key.verifying_key())?,
            key,
        })
    }

    /// Its public key (what clients and logs configure).
    pub fn public(&self) -> &WitnessKey {
        &self.public
    }

    /// The cosignature line `— <name> <base64>\n` on the checkpoint note body
    /// `checkpoint_body` (with its final newline, without signature lines) at `timestamp`.
    pub fn cosign(&self, checkpoint_body: &str, timestamp: u64) -> Result<String, CosignatureError> {
        // The timestamp is a signed 64-bit number in the C2SP format.
        if i64::try_from(timestamp).is_err() {
            return Err(CosignatureError::Timestamp(timestamp));
        }
        let signature = self.key.sign(cosigned_message(checkpoint_body, timestamp).as_bytes());
        let mut blob = Vec::with_capacity(4 + 8 + 64);
        blob.extend_from_slice(&self.public.key_id());
        blob.extend_from_slice(&timestamp.to_be_bytes());
        blob.extend_from_slice(&signature.to_bytes());
        Ok(format!("{SIG_PREFIX}{} {}\n", self.public.name(), BASE64.encode(blob)))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "test")]
mod tests {
    use super::*;

    #[test]
    fn timestamps_past_the_signed_range_are_refused() {
        let w = WitnessSigner::new("w1.example", SigningKey::from_bytes(&[2; 32])).unwrap();
        assert!(w.cosign("x\n", i64::MAX as u64).is_ok());
        assert_eq!(w.cosign("x\n", u64::MAX), Err(CosignatureError::Timestamp(u64::MAX)));
        assert!(!format!("{w:?}").contains(&hex::encode(w.key.to_bytes())));
    }
}
