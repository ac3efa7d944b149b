//! BLAKE3-256 digests and the domain-separation contexts of format version 1.
//!
//! Chunk digests are plain BLAKE3 of the chunk's bytes, so a tensor's digest is the
//! same wherever the tensor is stored (any shard, any file) and equals `b3sum` of its
//! bytes. Every *derived* digest (file, manifest, key id) uses BLAKE3's `derive_key`
//! mode with a context string of its own, so no two kinds of input can ever be confused
//! for one another (see spec/format.md, "Hashing").

use std::fmt;
use std::str::FromStr;

/// Context for the file digest (spec/format.md §4.2).
pub(crate) const FILE_DIGEST_CONTEXT: &str = "weightseal v1 file digest";
/// Context for the manifest digest (spec/format.md §4.3).
pub(crate) const MANIFEST_DIGEST_CONTEXT: &str = "weightseal v1 manifest digest";
/// Context for ed25519 key ids (spec/format.md §6.2).
pub(crate) const KEY_ID_CONTEXT: &str = "weightseal v1 ed25519 key id";

/// A 32-byte BLAKE3 digest.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest([u8; 32]);

impl Digest {
    /// Wraps raw digest bytes.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Digest(bytes)
    }

    /// The raw digest bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Lower-case hexadecimal, 64 characters.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Plain BLAKE3 of `bytes`: the chunk digest.
    pub fn of(bytes: &[u8]) -> Self {
        Digest(*blake3::hash(bytes).as_bytes())
    }

    /// Plain BLAKE3 of `bytes`, using BLAKE3's multi-threaded update for large inputs.
    /// Same digest as [`Digest::of`]; only the speed differs.
    pub(crate) fn of_parallel(bytes: &[u8]) -> Self {
        if bytes.len() >= PARALLEL_HASH_THRESHOLD {
            let mut hasher = blake3::Hasher::new();
            hasher.update_rayon(bytes);
            Digest(*hasher.finalize().as_bytes())
        } else {
            Self::of(bytes)
        }
    }

    /// BLAKE3 in key-derivation mode: the domain-separated digest of `bytes` under `context`.
    pub(crate) fn derive(context: &str, bytes: &[u8]) -> Self {
        Digest(blake3::derive_key(context, bytes))
    }

    /// [`Digest::derive`], using BLAKE3's multi-threaded update for large inputs (a
    /// manifest of 200,000 tensors is 16 MB). Same digest; only the speed differs.
    pub(crate) fn derive_parallel(context: &str, bytes: &[u8]) -> Self {
        if bytes.len() >= PARALLEL_HASH_THRESHOLD {
            let mut hasher = blake3::Hasher::new_derive_key(context);
            hasher.update_rayon(bytes);
            Digest(*hasher.finalize().as_bytes())
        } else {
            Self::derive(context, bytes)
        }
    }
}

/// Below this many bytes, BLAKE3's fork-join overhead outweighs the gain of hashing on
/// several threads (and the callers of the parallel forms already hash many chunks in
/// parallel).
const PARALLEL_HASH_THRESHOLD: usize = 1 << 20;

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({})", self.to_hex())
    }
}

/// A string that is not a 64-digit hexadecimal digest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a digest: expected 64 hexadecimal digits, found {found:?}")]
pub struct ParseDigestError {
    /// What was given (cut to 80 characters).
    pub found: String,
}

impl FromStr for Digest {
    type Err = ParseDigestError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ParseDigestError {
            found: s.chars().take(80).collect(),
        };
        let mut out = [0u8; 32];
        if s.len() != 64 {
            return Err(err());
        }
        hex::decode_to_slice(s, &mut out).map_err(|_| err())?;
        Ok(Digest(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_rejects_bad_input() {
        let d = Digest::of(b"abc");
        assert_eq!(d.to_hex().parse::<Digest>().unwrap(), d);
        assert!("abc".parse::<Digest>().is_err());
        assert!("zz".repeat(32).parse::<Digest>().is_err());
    }

    #[test]
    fn contexts_separate_domains() {
        let a = Digest::derive(FILE_DIGEST_CONTEXT, b"x");
        let b = Digest::derive(MANIFEST_DIGEST_CONTEXT, b"x");
        assert_ne!(a, b);
        assert_ne!(a, Digest::of(b"x"));
    }

    #[test]
    fn parallel_hash_equals_plain_hash_at_the_threshold() {
        for len in [(1 << 20) - 1, 1 << 20, (1 << 20) + 1] {
            let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            assert_eq!(Digest::of_parallel(&data), Digest::of(&data));
        }
    }
}
