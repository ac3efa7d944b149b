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

use ed25519_dalek::{Signature, VerifyingKey};
use sha2::{Digest as _, Sha256};

use crate::revocation::note::{
    check_name, decode_key_of_type, encode_key_of_type, hex4, split_note, KeyBlobError, NoteError,
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
