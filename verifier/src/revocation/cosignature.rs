//! Witness cosignatures on checkpoints (C2SP `tlog-cosignature`, Ed25519 `cosignature/v1`)
//! and the client's witness policy: which witnesses it trusts and how many of them must have
//! cosigned a checkpoint before it is accepted (spec/revocation.md §5.1).
//!
//! A cosignature is one more signature line on the checkpoint note,
//! `— <witness name> base64(key ID || timestamp || signature)`, where the key ID is the first
//! 4 bytes of `SHA-256(name || 0x0A || 0x04 || public key)`, the timestamp is 8 bytes
//! big-endian (Unix seconds) and the Ed25519 signature covers
//! `"cosignature/v1\ntime <timestamp>\n" || checkpoint body`. A witness cosigns only a
//! checkpoint consistent with every one it cosigned before for that log, so a log that
//! shows two different trees to two clients cannot collect a quorum for both from honest
//! witnesses.

use std::fmt;
use std::str::FromStr;

use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest as _, Sha256};

use crate::revocation::note::{
    check_name, decode_key_of_type, encode_key_of_type, hex4, split_note, KeyBlobError, NoteError, SIG_PREFIX,
};

/// The signature type byte of an Ed25519 `cosignature/v1` key.
const ALG_COSIGNATURE_V1: u8 = 0x04;
/// The first line of every signed cosignature message.
pub const COSIGNATURE_HEADER: &str = "cosignature/v1";
/// Key ID, timestamp and Ed25519 signature.
const COSIGNATURE_BYTES: usize = 4 + 8 + 64;

/// Why a witness key, a witness policy or a cosignature check was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CosignatureError {
    /// A witness key string (`<name>+<key ID>+<base64(0x04 || key)>`) is malformed.
    #[error("invalid witness key {key:?}: {reason}")]
    InvalidKey {
        /// The start of the key string.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The witness policy itself is unusable.
    #[error("witness policy: {problem}")]
    BadPolicy {
        /// What is wrong.
        problem: String,
    },
    /// The checkpoint note could not be read.
    #[error("checkpoint note: {0}")]
    Note(#[from] NoteError),
    /// A cosignature was asked for with a timestamp over 2^63 - 1.
    #[error("timestamp {0} is over 2^63 - 1")]
    Timestamp(u64),
    /// Fewer of the trusted witnesses cosigned the checkpoint than the policy requires.
    #[error(
        "the checkpoint carries valid cosignatures from {found} of the trusted witnesses ({}), {needed} are required",
        if witnesses.is_empty() { "none".to_owned() } else { witnesses.join(", ") }
    )]
    QuorumNotMet {
        /// The quorum.
        needed: usize,
        /// Trusted witnesses whose cosignature verified.
        found: usize,
        /// Their names.
        witnesses: Vec<String>,
    },
}

fn key_id(name: &str, key: &VerifyingKey) -> [u8; 4] {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update([b'\n', ALG_COSIGNATURE_V1]);
    h.update(key.as_bytes());
    let [a, b, c, d, ..] = <[u8; 32]>::from(h.finalize());
    [a, b, c, d]
}

/// The message a `cosignature/v1` signature covers.
pub fn cosigned_message(checkpoint_body: &str, timestamp: u64) -> String {
    format!("{COSIGNATURE_HEADER}\ntime {timestamp}\n{checkpoint_body}")
}

/// A witness's public key as a client or log trusts it: its name and Ed25519 key.
///
/// String form (a C2SP vkey): `<name>+<8 hex digit key ID>+<base64(0x04 || key)>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WitnessKey {
    name: String,
    key_id: [u8; 4],
    key: VerifyingKey,
}

impl WitnessKey {
    /// The witness key for `name`, computing the key ID.
    pub fn new(name: &str, key: VerifyingKey) -> Result<Self, CosignatureError> {
        check_name(name).map_err(|e| CosignatureError::InvalidKey {
            key: name.chars().take(64).collect(),
            reason: e.to_string(),
        })?;
        Ok(WitnessKey {
            name: name.to_owned(),
            key_id: key_id(name, &key),
            key,
        })
    }

    /// The witness name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key ID.
    pub fn key_id(&self) -> [u8; 4] {
        self.key_id
    }

    /// The Ed25519 public key.
    pub fn key(&self) -> &VerifyingKey {
        &self.key
    }

    /// The timestamp of this witness's valid cosignature on the note `checkpoint`, if it has
    /// one. Lines of other keys are ignored; so is a line of this key that does not verify
    /// (it counts for nothing, and whoever could add it could as well have removed a valid one).
    pub fn cosigned(&self, checkpoint: &str) -> Result<Option<u64>, CosignatureError> {
        let (body, lines) = split_note(checkpoint)?;
        for line in lines {
            if line.name != self.name || line.key_id != self.key_id || line.signature.len() != COSIGNATURE_BYTES - 4 {
                continue;
            }
            let (ts, sig) = line.signature.split_at(8);
            let mut ts_bytes = [0u8; 8];
            ts_bytes.copy_from_slice(ts);
            let timestamp = u64::from_be_bytes(ts_bytes);
            let Ok(sig) = <[u8; 64]>::try_from(sig) else { continue };
            let message = cosigned_message(body, timestamp);
            if self
                .key
                .verify_strict(message.as_bytes(), &Signature::from_bytes(&sig))
                .is_ok()
            {
                return Ok(Some(timestamp));
            }
        }
        Ok(None)
    }
}

impl FromStr for WitnessKey {
    type Err = CosignatureError;

    fn from_str(s: &str) -> Result<Self, CosignatureError> {
        let bad = |reason: &str| CosignatureError::InvalidKey {
            key: s.chars().take(64).collect(),
            reason: reason.to_owned(),
        };
        let mut parts = s.splitn(3, '+');
        let (Some(name), Some(id_hex), Some(key_b64)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad("expected <name>+<key ID>+<base64 key>"));
        };
        check_name(name).map_err(|e| bad(&e.to_string()))?;
        let stated = (id_hex.len() == 8)
            .then(|| u32::from_str_radix(id_hex, 16).ok())
            .flatten()
            .ok_or_else(|| bad("key ID is not 8 hex digits"))?
            .to_be_bytes();
        let raw = decode_key_of_type(key_b64, ALG_COSIGNATURE_V1).map_err(|e| match e {
            KeyBlobError::Base64 => bad("key is not valid base64"),
            KeyBlobError::Algorithm(alg) => bad(&format!(
                "signature type 0x{alg:02x} is not an Ed25519 cosignature/v1 key (0x04)"
            )),
            KeyBlobError::Length(n) => bad(&format!("the key is {n} bytes, expected 32")),
        })?;
        let key = VerifyingKey::from_bytes(&raw).map_err(|_| bad("not a valid Ed25519 public key"))?;
        let witness = WitnessKey::new(name, key)?;
        if witness.key_id != stated {
            return Err(bad(&format!(
                "key ID {} does not match the computed {}",
                hex4(&stated),
                hex4(&witness.key_id)
            )));
        }
        Ok(witness)
    }
}

impl fmt::Display for WitnessKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}+{}+{}",
            self.name,
            hex4(&self.key_id),
            encode_key_of_type(self.key.as_bytes(), ALG_COSIGNATURE_V1)
        )
    }
}

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
        use base64::Engine as _;
        if timestamp > i64::MAX as u64 {
            return Err(CosignatureError::Timestamp(timestamp));
        }
        let signature = self.key.sign(cosigned_message(checkpoint_body, timestamp).as_bytes());
        let mut blob = Vec::with_capacity(COSIGNATURE_BYTES);
        blob.extend_from_slice(&self.public.key_id);
        blob.extend_from_slice(&timestamp.to_be_bytes());
        blob.extend_from_slice(&signature.to_bytes());
        Ok(format!(
            "{SIG_PREFIX}{} {}\n",
            self.public.name,
            base64::engine::general_purpose::STANDARD.encode(blob)
        ))
    }
}

/// Which witnesses a client trusts and how many of them must have cosigned a checkpoint.
///
/// [`WitnessPolicy::none`] (no witnesses, quorum 0) is what a client without configured
/// witnesses uses: checkpoints are then accepted on the log's signature alone, and split
/// views are caught only when this client sees both trees itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WitnessPolicy {
    witnesses: Vec<WitnessKey>,
    quorum: usize,
}

impl WitnessPolicy {
    /// No witnesses: the log's signature alone (today's behaviour, spec/revocation.md §5.1).
    pub fn none() -> Self {
        WitnessPolicy::default()
    }

    /// `quorum` of `witnesses` must cosign. The quorum must be 1 to the number of witnesses
    /// (a quorum of 0 with witnesses named would silently trust the log alone), and no two
    /// witnesses may share a name or a key (one witness must not count twice).
    pub fn new(witnesses: Vec<WitnessKey>, quorum: usize) -> Result<Self, CosignatureError> {
        if witnesses.is_empty() {
            return Err(CosignatureError::BadPolicy {
                problem: "a quorum needs at least one witness key".into(),
            });
        }
        if quorum == 0 || quorum > witnesses.len() {
            return Err(CosignatureError::BadPolicy {
                problem: format!("quorum {quorum} is not between 1 and the {} witnesses", witnesses.len()),
            });
        }
        for (i, w) in witnesses.iter().enumerate() {
            if witnesses[..i].iter().any(|o| o.name == w.name || o.key == w.key) {
                return Err(CosignatureError::BadPolicy {
                    problem: format!("witness {} is listed twice (same name or same key)", w.name),
                });
            }
        }
        Ok(WitnessPolicy { witnesses, quorum })
    }

    /// The trusted witnesses.
    pub fn witnesses(&self) -> &[WitnessKey] {
        &self.witnesses
    }

    /// How many must cosign; 0 when no witnesses are configured.
    pub fn quorum(&self) -> usize {
        self.quorum
    }

    /// Checks the quorum on the checkpoint note `checkpoint` (whose log signature the caller
    /// verifies): `Ok` with the names and timestamps of the trusted witnesses whose
    /// cosignature verified, or [`CosignatureError::QuorumNotMet`].
    pub fn check(&self, checkpoint: &str) -> Result<Vec<(String, u64)>, CosignatureError> {
        if self.quorum == 0 {
            return Ok(Vec::new());
        }
        let mut valid = Vec::new();
        for w in &self.witnesses {
            if let Some(ts) = w.cosigned(checkpoint)? {
                valid.push((w.name.clone(), ts));
            }
        }
        if valid.len() < self.quorum {
            return Err(CosignatureError::QuorumNotMet {
                needed: self.quorum,
                found: valid.len(),
                witnesses: valid.into_iter().map(|(n, _)| n).collect(),
            });
        }
        Ok(valid)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "test setup")]
mod tests {
    use super::*;
    use crate::revocation::note::{Checkpoint, NoteSignerKey, NoteVerifierKey};
    use crate::revocation::snapshot::{open_checkpoint, sign_checkpoint};

    fn witness(seed: u8, name: &str) -> WitnessSigner {
        WitnessSigner::new(name, SigningKey::from_bytes(&[seed; 32])).unwrap()
    }

    fn checkpoint() -> (String, String, NoteVerifierKey) {
        let log = NoteSignerKey::new("example.com/log", SigningKey::from_bytes(&[1; 32])).unwrap();
        let c = Checkpoint {
            origin: "example.com/log".into(),
            size: 5,
            root: [9; 32],
            extensions: vec![],
        };
        (c.to_body(), sign_checkpoint(&c, &log).unwrap(), log.verifier_key())
    }

    #[test]
    fn key_strings_round_trip_and_refuse_log_keys() {
        let w = witness(2, "witness.example/w1");
        let text = w.public().to_string();
        assert_eq!(text.parse::<WitnessKey>().unwrap(), *w.public());
        // A log (0x01) key string is not a witness key.
        let log = NoteSignerKey::new("witness.example/w1", SigningKey::from_bytes(&[2; 32])).unwrap();
        let err = log.verifier_key().to_string().parse::<WitnessKey>().unwrap_err();
        assert!(err.to_string().contains("0x01"), "{err}");
        // A wrong key ID.
        let mut bad = text.clone();
        bad.replace_range(19..27, "00000000");
        assert!(bad.parse::<WitnessKey>().is_err());
        assert!("nothing".parse::<WitnessKey>().is_err());
    }

    #[test]
    fn quorum_counts_distinct_valid_trusted_cosignatures() {
        let (body, note, log_key) = checkpoint();
        let (w1, w2, w3) = (
            witness(2, "w1.example"),
            witness(3, "w2.example"),
            witness(4, "w3.example"),
        );
        let policy =
            WitnessPolicy::new(vec![w1.public().clone(), w2.public().clone(), w3.public().clone()], 2).unwrap();
        // The log's signature alone: refused, naming nobody.
        let err = policy.check(&note).unwrap_err();
        assert_eq!(
            err,
            CosignatureError::QuorumNotMet {
                needed: 2,
                found: 0,
                witnesses: vec![]
            }
        );
        let one = format!("{note}{}", w1.cosign(&body, 100).unwrap());
        // The same witness twice still counts once.
        let twice = format!("{one}{}", w1.cosign(&body, 101).unwrap());
        assert!(matches!(
            policy.check(&twice),
            Err(CosignatureError::QuorumNotMet { found: 1, .. })
        ));
        let two = format!("{one}{}", w3.cosign(&body, 102).unwrap());
        let ok = policy.check(&two).unwrap();
        assert_eq!(ok, vec![("w1.example".to_owned(), 100), ("w3.example".to_owned(), 102)]);
        // The log signature still verifies with the cosignatures on the note.
        assert_eq!(open_checkpoint(two.as_bytes(), &[log_key]).unwrap().size, 5);
        // A cosignature for another checkpoint body does not count.
        let other = body.replace("\n5\n", "\n6\n");
        let moved = format!("{one}{}", w2.cosign(&other, 103).unwrap());
        assert!(matches!(
            policy.check(&moved),
            Err(CosignatureError::QuorumNotMet { found: 1, .. })
        ));
        // A cosignature by an untrusted witness under a trusted name does not count.
        let impostor = witness(9, "w2.example");
        let forged = format!("{one}{}", impostor.cosign(&body, 104).unwrap());
        assert!(matches!(
            policy.check(&forged),
            Err(CosignatureError::QuorumNotMet { found: 1, .. })
        ));
        // A changed timestamp breaks the signature.
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD;
        let line = w2.cosign(&body, 105).unwrap();
        let (head, blob) = line.trim_end().rsplit_once(' ').unwrap();
        let mut raw = b64.decode(blob).unwrap();
        raw[11] ^= 1;
        let tampered = format!("{one}{head} {}\n", b64.encode(raw));
        assert!(matches!(
            policy.check(&tampered),
            Err(CosignatureError::QuorumNotMet { found: 1, .. })
        ));
        assert!(WitnessPolicy::none().check(&note).unwrap().is_empty());
    }

    #[test]
    fn policies_that_would_trust_the_log_alone_are_refused() {
        let w1 = witness(2, "w1.example");
        assert!(WitnessPolicy::new(vec![], 0).is_err());
        assert!(WitnessPolicy::new(vec![w1.public().clone()], 0).is_err());
        assert!(WitnessPolicy::new(vec![w1.public().clone()], 2).is_err());
        let same_key = WitnessKey::new("other.example", *w1.public().key()).unwrap();
        assert!(WitnessPolicy::new(vec![w1.public().clone(), same_key], 1).is_err());
        assert!(w1.cosign("x\n", u64::MAX).is_err());
    }
}
