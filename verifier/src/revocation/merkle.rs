//! RFC 6962 / RFC 9162 Merkle tree for the revocation transparency log.
//!
//! * Hashing follows RFC 6962 §2.1: SHA-256, leaf hash `H(0x00 || leaf)`,
//!   interior node hash `H(0x01 || left || right)`, empty tree `H("")`.
//! * [`verify_inclusion`] and [`verify_consistency`] are the client-side
//!   verification algorithms of RFC 9162 §2.1.3.2 and §2.1.4.2. They take
//!   untrusted proofs and never panic.
//! * [`MerkleTree`] is the server-side append-only tree. It stores every level
//!   of the complete, aligned subtrees, so any subtree hash the proof
//!   algorithms need costs O(log n), and proofs and historical roots cost
//!   O(log² n) at most.

use sha2::{Digest, Sha256};
use std::fmt;

/// A SHA-256 hash: a leaf hash, an interior node hash or a tree root.
pub type Hash = [u8; 32];

/// Domain-separation prefix for leaf hashes (RFC 6962 §2.1).
const LEAF_PREFIX: u8 = 0x00;
/// Domain-separation prefix for interior node hashes (RFC 6962 §2.1).
const NODE_PREFIX: u8 = 0x01;

/// The RFC 6962 leaf hash `SHA-256(0x00 || data)`.
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([LEAF_PREFIX]);
    h.update(data);
    h.finalize().into()
}

/// The RFC 6962 interior node hash `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([NODE_PREFIX]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The root of the empty tree, `SHA-256("")`.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// Why a Merkle proof failed to verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProofError {
    /// The leaf index is not inside the tree (`index >= tree_size`).
    #[error("leaf index {index} is out of range for a tree of size {tree_size}")]
    IndexOutOfRange {
        /// The claimed leaf index.
        index: u64,
        /// The claimed tree size.
        tree_size: u64,
    },
    /// The proof does not hold the number of hashes that the sizes (and
    /// index) require.
    #[error("proof has {found} hashes, but the sizes require exactly {expected}")]
    WrongProofLength {
        /// The number of hashes the sizes require.
        expected: usize,
        /// The number of hashes the proof holds.
        found: usize,
    },
    /// The root computed from the proof differs from the expected (new) root.
    #[error("root mismatch: expected {expected}, computed {computed}")]
    RootMismatch {
        /// The expected root, in lowercase hex.
        expected: String,
        /// The root computed from the proof, in lowercase hex.
        computed: String,
    },
    /// The old-tree root reconstructed from a consistency proof differs from
    /// the expected old root.
    #[error("old root mismatch: expected {expected}, computed {computed}")]
    OldRootMismatch {
        /// The expected old root, in lowercase hex.
        expected: String,
        /// The old root computed from the proof, in lowercase hex.
        computed: String,
    },
    /// The new tree is smaller than the old tree.
    #[error("tree size decreased from {old_size} to {new_size}")]
    SizeDecreased {
        /// The old tree size.
        old_size: u64,
        /// The new tree size.
        new_size: u64,
    },
    /// Two trees of the same size have different roots.
    #[error("trees of equal size {size} have different roots: old {old_root}, new {new_root}")]
    DifferentRootsForSameSize {
        /// The common tree size.
        size: u64,
        /// The old root, in lowercase hex.
        old_root: String,
        /// The new root, in lowercase hex.
        new_root: String,
    },
    /// The proof did not walk the tree as the RFC 9162 algorithm requires
    /// (the path ended too early or too late). Unreachable once the proof
    /// length has been checked; kept so the algorithm never trusts that check.
    #[error("malformed proof: {reason}")]
    MalformedProof {
        /// What went wrong.
        reason: &'static str,
    },
}

/// Lowercase hex of a hash, for error messages.
fn hex(h: &Hash) -> String {
    use fmt::Write as _;
    let mut s = String::with_capacity(64);
    for b in h {
        // Writing to a String cannot fail.
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Number of bits needed to represent `x` (0 for 0).
fn bit_len(x: u64) -> u32 {
    u64::BITS - x.leading_zeros()
}

/// The number of hashes in an inclusion proof for leaf `index` in a tree of
/// `tree_size` leaves, or `None` when `index >= tree_size`.
pub fn inclusion_proof_len(index: u64, tree_size: u64) -> Option<usize> {
    if index >= tree_size {
        return None;
    }
    // Levels where the path to the leaf and the path to the last leaf have
    // split, plus the left-hand siblings above that point.
    let inner = bit_len(index ^ (tree_size - 1));
    let border = index.checked_shr(inner).unwrap_or(0).count_ones();
    usize::try_from(inner + border).ok()
}

/// The number of hashes in a consistency proof from `old_size` to
/// `new_size`, or `None` when `old_size > new_size`. Zero when
/// `old_size == 0` or `old_size == new_size`.
pub fn consistency_proof_len(old_size: u64, new_size: u64) -> Option<usize> {
    if old_size > new_size {
        return None;
    }
    if old_size == 0 || old_size == new_size {
        return Some(0);
    }
    // The old tree's last leaf, seen from the new tree, with the complete
    // subtree of 2^shift leaves at the old tree's right edge collapsed into
    // one node (the proof's seed).
    let shift = old_size.trailing_zeros();
    let inner = bit_len((old_size - 1) ^ (new_size - 1));
    let border = (old_size - 1).checked_shr(inner).unwrap_or(0).count_ones();
    // `inner > shift` because old_size < new_size and the low `shift` bits of
    // old_size - 1 are all set.
    let seed = u32::from(!old_size.is_power_of_two());
    usize::try_from(inner.checked_sub(shift)? + border + seed).ok()
}

/// Computes the root implied by an inclusion proof for `leaf` at `index` in a
/// tree of `tree_size` leaves (RFC 9162 §2.1.3.2, without the final root
/// comparison).
pub fn root_from_inclusion_proof(leaf: &Hash, index: u64, tree_size: u64, proof: &[Hash]) -> Result<Hash, ProofError> {
    // Step 1: the index must be inside the tree.
    let Some(expected) = inclusion_proof_len(index, tree_size) else {
        return Err(ProofError::IndexOutOfRange { index, tree_size });
    };
    if proof.len() != expected {
        return Err(ProofError::WrongProofLength {
            expected,
            found: proof.len(),
        });
    }
    // Steps 2-3.
    let mut fn_ = index;
    let mut sn = tree_size - 1;
    let mut r = *leaf;
    // Step 4.
    for p in proof {
        if sn == 0 {
            return Err(ProofError::MalformedProof {
                reason: "inclusion path is longer than the tree is high",
            });
        }
        if fn_ & 1 == 1 || fn_ == sn {
            r = node_hash(p, &r);
            if fn_ & 1 == 0 {
                while fn_ & 1 == 0 && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    // Step 5 (structural half).
    if sn != 0 {
        return Err(ProofError::MalformedProof {
            reason: "inclusion path is shorter than the tree is high",
        });
    }
    Ok(r)
}

/// Verifies that `leaf` (a leaf hash) is at `index` in the tree of
/// `tree_size` leaves whose root is `root`, following RFC 9162 §2.1.3.2.
pub fn verify_inclusion(
    leaf: &Hash,
    index: u64,
    tree_size: u64,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    let computed = root_from_inclusion_proof(leaf, index, tree_size, proof)?;
    if computed != *root {
        return Err(ProofError::RootMismatch {
            expected: hex(root),
            computed: hex(&computed),
        });
    }
    Ok(())
}

/// Verifies that the tree of `old_size` leaves with root `old_root` is a
/// prefix of the tree of `new_size` leaves with root `new_root`, following
/// RFC 9162 §2.1.4.2.
///
/// Equal sizes need an empty proof and equal roots; `old_size == 0` is
/// consistent with any tree given an empty proof.
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    let Some(expected) = consistency_proof_len(old_size, new_size) else {
        return Err(ProofError::SizeDecreased { old_size, new_size });
    };
    if proof.len() != expected {
        return Err(ProofError::WrongProofLength {
            expected,
            found: proof.len(),
        });
    }
    if old_size == new_size {
        if old_root != new_root {
            return Err(ProofError::DifferentRootsForSameSize {
                size: old_size,
                old_root: hex(old_root),
                new_root: hex(new_root),
            });
        }
        return Ok(());
    }
    if old_size == 0 {
        return Ok(());
    }

    // Steps 1-2: a non-empty path; when the old tree is a complete subtree
    // its root is the path's implicit first element.
    let (seed, rest) = if old_size.is_power_of_two() {
        (old_root, proof)
    } else {
        match proof.split_first() {
            Some((first, rest)) => (first, rest),
            None => {
                return Err(ProofError::WrongProofLength { expected, found: 0 });
            }
        }
    };
    // Step 3.
    let mut fn_ = old_size - 1;
    let mut sn = new_size - 1;
    // Step 4.
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    // Step 5.
    let mut fr = *seed;
    let mut sr = *seed;
    // Step 6.
    for c in rest {
        if sn == 0 {
            return Err(ProofError::MalformedProof {
                reason: "consistency path is longer than the tree is high",
            });
        }
        if fn_ & 1 == 1 || fn_ == sn {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if fn_ & 1 == 0 {
                while fn_ & 1 == 0 && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    // Step 7.
    if sn != 0 {
        return Err(ProofError::MalformedProof {
            reason: "consistency path is shorter than the tree is high",
        });
    }
    if fr != *old_root {
        return Err(ProofError::OldRootMismatch {
            expected: hex(old_root),
            computed: hex(&fr),
        });
    }
    if sr != *new_root {
        return Err(ProofError::RootMismatch {
            expected: hex(new_root),
            computed: hex(&sr),
        });
    }
    Ok(())
}

/// The largest power of two strictly below `n`; `n` must be at least 2.
fn split_point(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1u64 << (bit_len(n - 1).saturating_sub(1))
}

/// An append-only in-memory RFC 6962 Merkle tree.
///
/// `levels[0]` holds the leaf hashes; `levels[k][i]` is the hash of the
/// complete subtree of leaves `[i * 2^k, (i + 1) * 2^k)`, appended as soon as
/// that subtree is complete. This takes about `2 * 32` bytes per leaf and
/// gives every aligned complete subtree in O(1), every right-edge subtree in
/// O(log n), and proofs and historical roots in O(log² n).
#[derive(Clone, Default)]
pub struct MerkleTree {
    levels: Vec<Vec<Hash>>,
}

impl fmt::Debug for MerkleTree {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MerkleTree")
            .field("len", &self.len())
            .field("levels", &self.levels.len())
            .finish()
    }
}

impl MerkleTree {
    /// An empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a leaf hash (see [`leaf_hash`]) and returns its index.
    pub fn push(&mut self, leaf_hash: Hash) -> u64 {
        let index = self.len();
        let mut hash = leaf_hash;
        let mut level = 0;
        loop {
            if self.levels.len() == level {
                self.levels.push(Vec::new());
            }
            let Some(row) = self.levels.get_mut(level) else {
                break;
            };
            row.push(hash);
            let n = row.len();
            if n % 2 == 1 {
                break;
            }
            // A new complete subtree one level up.
            match (row.get(n - 2), row.get(n - 1)) {
                (Some(l), Some(r)) => hash = node_hash(l, r),
                _ => break,
            }
            level += 1;
        }
        index
    }

    /// The number of leaves.
    pub fn len(&self) -> u64 {
        self.levels.first().map_or(0, |l| l.len() as u64)
    }

    /// Whether the tree has no leaves.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The leaf hash at `index`.
    pub fn leaf(&self, index: u64) -> Option<Hash> {
        let i = usize::try_from(index).ok()?;
        self.levels.first()?.get(i).copied()
    }

    /// The root of the whole tree ([`empty_root`] when empty).
    pub fn root(&self) -> Hash {
        self.root_at(self.len()).unwrap_or_else(empty_root)
    }

    /// The root of the tree made of the first `size` leaves, for any
    /// `size <= len()`.
    pub fn root_at(&self, size: u64) -> Option<Hash> {
        if size > self.len() {
            return None;
        }
        if size == 0 {
            return Some(empty_root());
        }
        self.subtree(0, size)
    }

    /// The RFC 9162 §2.1.3.1 inclusion proof for leaf `index` in the tree of
    /// the first `size` leaves; `None` unless `index < size <= len()`.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Option<Vec<Hash>> {
        if index >= size || size > self.len() {
            return None;
        }
        // PATH(m, D[start:start+n]), unrolled; siblings are found top-down
        // and the proof lists them bottom-up.
        let mut proof = Vec::with_capacity(inclusion_proof_len(index, size)?);
        let (mut m, mut start, mut n) = (index, 0u64, size);
        while n > 1 {
            let k = split_point(n);
            if m < k {
                proof.push(self.subtree(start + k, n - k)?);
                n = k;
            } else {
                proof.push(self.subtree(start, k)?);
                m -= k;
                start += k;
                n -= k;
            }
        }
        proof.reverse();
        Some(proof)
    }

    /// The RFC 9162 §2.1.4.1 consistency proof from the tree of the first
    /// `old_size` leaves to the tree of the first `new_size` leaves; `None`
    /// unless `old_size <= new_size <= len()`. Empty when `old_size == 0` or
    /// `old_size == new_size`.
    pub fn consistency_proof(&self, old_size: u64, new_size: u64) -> Option<Vec<Hash>> {
        if old_size > new_size || new_size > self.len() {
            return None;
        }
        if old_size == 0 || old_size == new_size {
            return Some(Vec::new());
        }
        // SUBPROOF(m, D[start:start+n], b), unrolled.
        let mut proof = Vec::with_capacity(consistency_proof_len(old_size, new_size)?);
        let (mut m, mut start, mut n, mut whole_old_tree) = (old_size, 0u64, new_size, true);
        while m != n {
            let k = split_point(n);
            if m <= k {
                proof.push(self.subtree(start + k, n - k)?);
                n = k;
            } else {
                proof.push(self.subtree(start, k)?);
                m -= k;
                start += k;
                n -= k;
                whole_old_tree = false;
            }
        }
        if !whole_old_tree {
            proof.push(self.subtree(start, n)?);
        }
        proof.reverse();
        Some(proof)
    }

    /// The bytes of a tlog-tiles hash tile (spec/revocation.md §6): `width` hashes of the
    /// tile at `level`, `index`, each the root of a complete subtree of `256^level` leaves,
    /// concatenated. `None` unless `1 <= width <= 256` and the tree holds every hash.
    pub fn hash_tile(&self, level: u8, index: u64, width: u64) -> Option<Vec<u8>> {
        if !(1..=256).contains(&width) || level > 63 {
            return None;
        }
        let row = self.levels.get(usize::from(level).checked_mul(8)?)?;
        let first = usize::try_from(index.checked_mul(256)?).ok()?;
        let hashes = row.get(first..first.checked_add(usize::try_from(width).ok()?)?)?;
        Some(hashes.concat())
    }

    /// MTH(D[start:start+size]) for `size >= 1`. O(1) for an aligned complete
    /// subtree, O(log n) for the aligned right-edge ranges the proof
    /// algorithms use; `None` if the range is not fully stored.
    fn subtree(&self, start: u64, size: u64) -> Option<Hash> {
        if size == 0 {
            return None;
        }
        if size.is_power_of_two() && start.is_multiple_of(size) {
            let level = usize::try_from(size.trailing_zeros()).ok()?;
            let i = usize::try_from(start >> size.trailing_zeros()).ok()?;
            return self.levels.get(level)?.get(i).copied();
        }
        let k = split_point(size);
        let left = self.subtree(start, k)?;
        let right = self.subtree(start.checked_add(k)?, size - k)?;
        Some(node_hash(&left, &right))
    }
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test fails by panicking"
)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::sync::OnceLock;

    fn h(s: &str) -> Hash {
        assert_eq!(s.len(), 64);
        let mut out = [0u8; 32];
        for (i, o) in out.iter_mut().enumerate() {
            *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap();
        }
        out
    }

    fn bytes(s: &str) -> Vec<u8> {
        (0..s.len() / 2)
            .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
            .collect()
    }

    // RFC 6962 test leaves and hashes, as published in
    // transparency-dev/merkle testonly/constants.go and proof/verify_test.go
    // (the same data as certificate-transparency-go's merkle tests).
    const LEAVES: [&str; 8] = [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ];
    const LEAF_HASHES: [&str; 8] = [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
        "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
        "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
        "46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1",
    ];
    /// Roots for tree sizes 0..=8.
    const ROOTS: [&str; 9] = [
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ];

    /// (leaf index, tree size, proof) from transparency-dev/merkle
    /// proof/verify_test.go (there given with 1-based leaf numbers).
    fn inclusion_vectors() -> Vec<(u64, u64, Vec<Hash>)> {
        vec![
            (0, 1, vec![]),
            (
                0,
                8,
                vec![
                    h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
                    h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
                    h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
                ],
            ),
            (
                5,
                8,
                vec![
                    h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
                    h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
                    h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
                ],
            ),
            (
                2,
                3,
                vec![h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125")],
            ),
            (
                1,
                5,
                vec![
                    h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
                    h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
                    h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
                ],
            ),
        ]
    }

    /// (old size, new size, proof) from transparency-dev/merkle
    /// proof/verify_test.go.
    fn consistency_vectors() -> Vec<(u64, u64, Vec<Hash>)> {
        vec![
            (1, 1, vec![]),
            (
                1,
                8,
                vec![
                    h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
                    h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
                    h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
                ],
            ),
            (
                6,
                8,
                vec![
                    h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
                    h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
                    h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
                ],
            ),
            (
                2,
                5,
                vec![
                    h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
                    h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
                ],
            ),
            (
                6,
                7,
                vec![
                    h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
                    h("b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f"),
                    h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
                ],
            ),
        ]
    }

    fn test_tree() -> MerkleTree {
        let mut t = MerkleTree::new();
        for l in LEAVES {
            t.push(leaf_hash(&bytes(l)));
        }
        t
    }

    /// Deterministic leaf hash for synthetic trees.
    fn synth_leaf(i: u64) -> Hash {
        leaf_hash(&i.to_be_bytes())
    }

    fn tree_of(n: u64) -> MerkleTree {
        let mut t = MerkleTree::new();
        for i in 0..n {
            t.push(synth_leaf(i));
        }
        t
    }

    /// One shared 600-leaf tree; smaller trees are its prefixes.
    fn big() -> &'static MerkleTree {
        static T: OnceLock<MerkleTree> = OnceLock::new();
        T.get_or_init(|| tree_of(600))
    }

    /// Straight recursive MTH from RFC 6962 §2.1, as an independent oracle.
    fn reference_root(leaves: &[Hash]) -> Hash {
        match leaves.len() {
            0 => empty_root(),
            1 => leaves[0],
            n => {
                let k = split_point(n as u64) as usize;
                node_hash(&reference_root(&leaves[..k]), &reference_root(&leaves[k..]))
            }
        }
    }

    #[test]
    fn hash_tiles_hold_aligned_subtree_roots() {
        let mut tree = MerkleTree::new();
        for i in 0..(256u32 * 3 + 7) {
            tree.push(leaf_hash(&i.to_be_bytes()));
        }
        let level0 = tree.hash_tile(0, 3, 7).unwrap();
        assert_eq!(level0.len(), 7 * 32);
        assert_eq!(level0[..32], tree.leaf(768).unwrap());
        assert_eq!(tree.hash_tile(0, 3, 8), None, "past the end");
        let level1 = tree.hash_tile(1, 0, 3).unwrap();
        for k in 0..3u64 {
            let mut sub = MerkleTree::new();
            for i in 0..256 {
                sub.push(tree.leaf(k * 256 + i).unwrap());
            }
            assert_eq!(level1[(k as usize) * 32..(k as usize + 1) * 32], sub.root());
        }
        assert_eq!(tree.hash_tile(1, 0, 4), None);
        assert_eq!(tree.hash_tile(0, 0, 0), None);
        assert_eq!(tree.hash_tile(0, 0, 257), None);
    }

    #[test]
    fn empty_root_is_sha256_of_nothing() {
        assert_eq!(empty_root(), h(ROOTS[0]));
        let t = MerkleTree::new();
        assert!(t.is_empty());
        assert_eq!(t.len(), 0);
        assert_eq!(t.root(), h(ROOTS[0]));
        assert_eq!(t.root_at(0), Some(h(ROOTS[0])));
        assert_eq!(t.root_at(1), None);
        assert_eq!(t.leaf(0), None);
        assert_eq!(t.inclusion_proof(0, 0), None);
        assert_eq!(t.consistency_proof(0, 0), Some(vec![]));
    }

    #[test]
    fn known_leaf_hashes_and_roots() {
        let mut t = MerkleTree::new();
        for (i, l) in LEAVES.iter().enumerate() {
            let lh = leaf_hash(&bytes(l));
            assert_eq!(lh, h(LEAF_HASHES[i]), "leaf {i}");
            assert_eq!(t.push(lh), i as u64);
            assert_eq!(t.root(), h(ROOTS[i + 1]), "root of size {}", i + 1);
        }
        for (size, root) in ROOTS.iter().enumerate() {
            assert_eq!(t.root_at(size as u64), Some(h(root)), "root_at({size})");
        }
        assert_eq!(t.root_at(9), None);
        for (i, lh) in LEAF_HASHES.iter().enumerate() {
            assert_eq!(t.leaf(i as u64), Some(h(lh)));
        }
        assert_eq!(t.leaf(8), None);
        // Known interior nodes (testonly NodeHashes).
        assert_eq!(
            node_hash(&h(LEAF_HASHES[4]), &h(LEAF_HASHES[5])),
            h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a")
        );
        assert_eq!(
            t.subtree(4, 4),
            Some(h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"))
        );
    }

    #[test]
    fn known_inclusion_proofs() {
        let t = test_tree();
        for (index, size, proof) in inclusion_vectors() {
            let leaf = h(LEAF_HASHES[index as usize]);
            let root = h(ROOTS[size as usize]);
            assert_eq!(t.inclusion_proof(index, size), Some(proof.clone()), "{index}/{size}");
            verify_inclusion(&leaf, index, size, &proof, &root).unwrap();
            // Corruptions in the style of the published probes.
            let some = h("abacaba000000000000000000000000000000000000000000060061e00123456");
            assert!(verify_inclusion(&leaf, index.wrapping_sub(1), size, &proof, &root).is_err());
            assert!(verify_inclusion(&leaf, index + 1, size, &proof, &root).is_err());
            assert!(verify_inclusion(&leaf, index ^ 2, size, &proof, &root).is_err());
            assert!(verify_inclusion(&leaf, index, size * 2, &proof, &root).is_err());
            assert!(verify_inclusion(&leaf, index, size / 2, &proof, &root).is_err());
            assert!(verify_inclusion(&some, index, size, &proof, &root).is_err());
            assert!(verify_inclusion(&leaf, index, size, &proof, &empty_root()).is_err());
            assert!(verify_inclusion(&leaf, index, size, &proof, &some).is_err());
            let mut longer = proof.clone();
            longer.push(root);
            assert!(verify_inclusion(&leaf, index, size, &longer, &root).is_err());
            let mut longer = vec![root];
            longer.extend_from_slice(&proof);
            assert!(verify_inclusion(&leaf, index, size, &longer, &root).is_err());
            for i in 0..proof.len() {
                let mut bad = proof.clone();
                bad[i][0] ^= 8;
                assert!(verify_inclusion(&leaf, index, size, &bad, &root).is_err());
            }
            if !proof.is_empty() {
                let short = &proof[..proof.len() - 1];
                assert!(verify_inclusion(&leaf, index, size, short, &root).is_err());
            }
        }
    }

    #[test]
    fn known_consistency_proofs() {
        let t = test_tree();
        for (old, new, proof) in consistency_vectors() {
            let r1 = h(ROOTS[old as usize]);
            let r2 = h(ROOTS[new as usize]);
            assert_eq!(t.consistency_proof(old, new), Some(proof.clone()), "{old}->{new}");
            verify_consistency(old, new, &r1, &r2, &proof).unwrap();
            if proof.is_empty() {
                continue;
            }
            assert!(verify_consistency(old - 1, new, &r1, &r2, &proof).is_err());
            assert!(verify_consistency(old + 1, new, &r1, &r2, &proof).is_err());
            assert!(verify_consistency(old ^ 2, new, &r1, &r2, &proof).is_err());
            assert!(verify_consistency(old, new * 2, &r1, &r2, &proof).is_err());
            assert!(verify_consistency(old, new / 2, &r1, &r2, &proof).is_err());
            assert!(verify_consistency(old, new, &r2, &r1, &proof).is_err());
            assert!(verify_consistency(old, new, &r1, &r2, &[]).is_err());
            for extra in [r1, r2, proof[0]] {
                let mut longer = proof.clone();
                longer.push(extra);
                assert!(verify_consistency(old, new, &r1, &r2, &longer).is_err());
                let mut longer = vec![extra];
                longer.extend_from_slice(&proof);
                assert!(verify_consistency(old, new, &r1, &r2, &longer).is_err());
            }
            assert!(verify_consistency(old, new, &r1, &r2, &proof[..proof.len() - 1]).is_err());
            for i in 0..proof.len() {
                let mut bad = proof.clone();
                bad[i][0] ^= 16;
                assert!(verify_consistency(old, new, &r1, &r2, &bad).is_err());
            }
        }
    }

    #[test]
    fn consistency_edge_cases() {
        let r1 = [1u8; 32];
        let r2 = [2u8; 32];
        let e = empty_root();
        // Equal sizes: empty proof and identical roots.
        assert!(matches!(
            verify_consistency(0, 0, &r1, &r2, &[]),
            Err(ProofError::DifferentRootsForSameSize { size: 0, .. })
        ));
        assert!(verify_consistency(1, 1, &r1, &r2, &[]).is_err());
        assert_eq!(verify_consistency(0, 0, &r1, &r1, &[]), Ok(()));
        assert_eq!(verify_consistency(1, 1, &r2, &r2, &[]), Ok(()));
        assert_eq!(verify_consistency(7, 7, &r2, &r2, &[]), Ok(()));
        // The empty tree is a prefix of everything.
        assert_eq!(verify_consistency(0, 1, &r1, &r2, &[]), Ok(()));
        assert_eq!(verify_consistency(0, 1000, &e, &r2, &[]), Ok(()));
        // Time travel.
        assert_eq!(
            verify_consistency(1, 0, &r1, &r2, &[]),
            Err(ProofError::SizeDecreased {
                old_size: 1,
                new_size: 0
            })
        );
        assert!(matches!(
            verify_consistency(2, 1, &r1, &r2, &[]),
            Err(ProofError::SizeDecreased { .. })
        ));
        // Empty proof for a real extension.
        assert_eq!(
            verify_consistency(1, 2, &r1, &r2, &[]),
            Err(ProofError::WrongProofLength { expected: 1, found: 0 })
        );
        // Non-empty proof where none is needed.
        for (a, b) in [(0, 0), (0, 1), (1, 1)] {
            assert_eq!(
                verify_consistency(a, b, &e, &e, &[e]),
                Err(ProofError::WrongProofLength { expected: 0, found: 1 })
            );
        }
        // Huge sizes do not panic.
        let p = vec![r1; 64];
        assert!(verify_consistency(u64::MAX - 1, u64::MAX, &r1, &r2, &p).is_err());
        assert!(verify_consistency(1, u64::MAX, &r1, &r2, &p).is_err());
        assert!(verify_consistency(u64::MAX, u64::MAX, &r1, &r1, &[]).is_ok());
    }

    #[test]
    fn inclusion_edge_cases() {
        let s = [7u8; 32];
        let e = empty_root();
        for (index, size) in [(0, 0), (1, 0), (2, 1), (u64::MAX, u64::MAX)] {
            assert_eq!(
                verify_inclusion(&s, index, size, &[], &e),
                Err(ProofError::IndexOutOfRange { index, tree_size: size })
            );
        }
        // A one-leaf tree: the root is the leaf hash, the proof is empty.
        let lh = leaf_hash(b"data");
        assert_eq!(verify_inclusion(&lh, 0, 1, &[], &lh), Ok(()));
        assert!(matches!(
            verify_inclusion(&lh, 0, 1, &[], &e),
            Err(ProofError::RootMismatch { .. })
        ));
        assert!(verify_inclusion(&lh, 0, 1, &[lh], &lh).is_err());
        // Huge sizes do not panic.
        let p = vec![s; 64];
        assert!(verify_inclusion(&s, 0, u64::MAX, &p, &e).is_err());
        assert!(verify_inclusion(&s, u64::MAX - 1, u64::MAX, &p, &e).is_err());
        assert_eq!(inclusion_proof_len(0, u64::MAX), Some(64));
        assert_eq!(inclusion_proof_len(1 << 63, u64::MAX), Some(64));
        assert_eq!(inclusion_proof_len(u64::MAX - 1, u64::MAX), Some(63));
    }

    #[test]
    fn error_messages_carry_context() {
        let e = empty_root();
        let err = verify_inclusion(&[0u8; 32], 0, 1, &[], &e).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
        assert!(msg.contains(&"00".repeat(32)));
        let err = verify_inclusion(&e, 5, 3, &[], &e).unwrap_err();
        assert_eq!(err.to_string(), "leaf index 5 is out of range for a tree of size 3");
    }

    #[test]
    fn server_rejects_invalid_sizes() {
        let t = test_tree();
        assert_eq!(t.inclusion_proof(8, 8), None);
        assert_eq!(t.inclusion_proof(0, 9), None);
        assert_eq!(t.inclusion_proof(3, 2), None);
        assert_eq!(t.consistency_proof(5, 4), None);
        assert_eq!(t.consistency_proof(3, 9), None);
        assert_eq!(t.consistency_proof(0, 8), Some(vec![]));
        assert_eq!(t.consistency_proof(8, 8), Some(vec![]));
    }

    #[test]
    fn root_at_matches_fresh_trees_and_reference() {
        let t = big();
        let leaves: Vec<Hash> = (0..300).map(|i| t.leaf(i).unwrap()).collect();
        let mut fresh = MerkleTree::new();
        assert_eq!(t.root_at(0), Some(fresh.root()));
        for k in 1..=300u64 {
            fresh.push(leaves[k as usize - 1]);
            assert_eq!(t.root_at(k), Some(fresh.root()), "size {k}");
            assert_eq!(fresh.root(), reference_root(&leaves[..k as usize]), "size {k}");
        }
        assert_eq!(t.root(), t.root_at(600).unwrap());
        assert_eq!(t.root_at(601), None);
    }

    #[test]
    fn every_proof_of_small_trees_verifies() {
        let t = big();
        for size in 1..=40u64 {
            let root = t.root_at(size).unwrap();
            for index in 0..size {
                let p = t.inclusion_proof(index, size).unwrap();
                assert_eq!(Some(p.len()), inclusion_proof_len(index, size));
                verify_inclusion(&t.leaf(index).unwrap(), index, size, &p, &root).unwrap();
            }
            for old in 0..=size {
                let p = t.consistency_proof(old, size).unwrap();
                assert_eq!(Some(p.len()), consistency_proof_len(old, size));
                verify_consistency(old, size, &t.root_at(old).unwrap(), &root, &p).unwrap();
            }
        }
    }

    #[test]
    fn large_tree_proofs() {
        // 2^20 + a ragged edge; proofs and historical roots must stay cheap.
        let n: u64 = (1 << 20) + 12_345;
        let mut t = MerkleTree::new();
        for i in 0..n {
            t.push(synth_leaf(i));
        }
        assert_eq!(t.len(), n);
        let root = t.root();
        for &(index, size) in &[(0, n), (n - 1, n), (777_777, n), (5, 1 << 20), (1 << 19, 999_999)] {
            let r = t.root_at(size).unwrap();
            let p = t.inclusion_proof(index, size).unwrap();
            verify_inclusion(&synth_leaf(index), index, size, &p, &r).unwrap();
        }
        for &(old, new) in &[(1, n), (n - 1, n), (1 << 20, n), (999_999, 1_000_001), (3, 1 << 20)] {
            let p = t.consistency_proof(old, new).unwrap();
            let (r1, r2) = (t.root_at(old).unwrap(), t.root_at(new).unwrap());
            verify_consistency(old, new, &r1, &r2, &p).unwrap();
        }
        let p = t.consistency_proof(999_999, n).unwrap();
        verify_consistency(999_999, n, &t.root_at(999_999).unwrap(), &root, &p).unwrap();
    }

    /// Checks a generated inclusion proof, then corruptions of it. For
    /// claims about other (index, size) pairs, checked against the true root
    /// of the claimed size, the RFC algorithm must accept exactly the
    /// canonical proof of that claim (distinct leaves, no hash collisions).
    fn assert_inclusion_rejects_corruption(index: u64, size: u64, bit: usize) {
        let t = big();
        let root = t.root_at(size).unwrap();
        let leaf = t.leaf(index).unwrap();
        let proof = t.inclusion_proof(index, size).unwrap();
        verify_inclusion(&leaf, index, size, &proof, &root).unwrap();
        let (byte, mask) = (bit / 8 % 32, 1u8 << (bit % 8));
        // Any single flipped bit in any element.
        for i in 0..proof.len() {
            let mut bad = proof.clone();
            bad[i][byte] ^= mask;
            assert!(verify_inclusion(&leaf, index, size, &bad, &root).is_err());
        }
        // The leaf or root flipped.
        let mut bad_leaf = leaf;
        bad_leaf[byte] ^= mask;
        assert!(verify_inclusion(&bad_leaf, index, size, &proof, &root).is_err());
        let mut bad_root = root;
        bad_root[byte] ^= mask;
        assert!(verify_inclusion(&leaf, index, size, &proof, &bad_root).is_err());
        // Wrong index, same size and root: always a false claim.
        for other in [
            index.wrapping_sub(1),
            index + 1,
            index ^ 1,
            index ^ 2,
            size,
            0,
            u64::MAX,
        ] {
            if other != index {
                assert!(verify_inclusion(&leaf, other, size, &proof, &root).is_err());
            }
        }
        // Wrong sizes (and indices), each against the real root of that size.
        let sizes = [size - 1, size + 1, size * 2, size / 2, size ^ 1, size ^ 4];
        let indices = [index, index.wrapping_sub(1), index + 1, index ^ 1];
        for &s in &sizes {
            let Some(r) = t.root_at(s) else { continue };
            for &i in &indices {
                let ok = verify_inclusion(&leaf, i, s, &proof, &r).is_ok();
                let canonical = i == index && t.inclusion_proof(i, s).as_ref() == Some(&proof);
                assert_eq!(ok, canonical, "claim ({i}, {s}) with the proof for ({index}, {size})");
            }
        }
        assert!(verify_inclusion(&leaf, index, u64::MAX, &proof, &root).is_err());
        // Truncated and extended proofs.
        if !proof.is_empty() {
            assert!(verify_inclusion(&leaf, index, size, &proof[..proof.len() - 1], &root).is_err());
            assert!(verify_inclusion(&leaf, index, size, &proof[1..], &root).is_err());
        }
        let mut longer = proof.clone();
        longer.push(root);
        assert!(verify_inclusion(&leaf, index, size, &longer, &root).is_err());
        let mut longer = vec![leaf];
        longer.extend_from_slice(&proof);
        assert!(verify_inclusion(&leaf, index, size, &longer, &root).is_err());
    }

    /// As above for consistency proofs: for claimed sizes (o, n) with their
    /// true roots, the proof for (old, new) verifies exactly when it is the
    /// canonical proof for (o, n).
    fn assert_consistency_rejects_corruption(old: u64, new: u64, bit: usize) {
        let t = big();
        let (r1, r2) = (t.root_at(old).unwrap(), t.root_at(new).unwrap());
        let proof = t.consistency_proof(old, new).unwrap();
        verify_consistency(old, new, &r1, &r2, &proof).unwrap();
        let (byte, mask) = (bit / 8 % 32, 1u8 << (bit % 8));
        for i in 0..proof.len() {
            let mut bad = proof.clone();
            bad[i][byte] ^= mask;
            assert!(verify_consistency(old, new, &r1, &r2, &bad).is_err());
        }
        if old > 0 {
            // (Nothing binds a tree to the empty tree.)
            let mut bad_r2 = r2;
            bad_r2[byte] ^= mask;
            assert!(verify_consistency(old, new, &r1, &bad_r2, &proof).is_err());
            let mut bad_r1 = r1;
            bad_r1[byte] ^= mask;
            assert!(verify_consistency(old, new, &bad_r1, &r2, &proof).is_err());
            if r1 != r2 {
                assert!(verify_consistency(old, new, &r2, &r1, &proof).is_err());
            }
        }
        let olds = [old, old.wrapping_sub(1), old + 1, old ^ 1, old ^ 2, old * 2, 0];
        let news = [new, new - 1, new + 1, new * 2, new / 2, new ^ 1];
        for &o in &olds {
            for &n in &news {
                let (Some(a), Some(b)) = (t.root_at(o), t.root_at(n)) else {
                    continue;
                };
                let ok = verify_consistency(o, n, &a, &b, &proof).is_ok();
                let canonical = t.consistency_proof(o, n).as_ref() == Some(&proof);
                assert_eq!(ok, canonical, "claim {o}->{n} with the proof for {old}->{new}");
            }
        }
        if old > 0 {
            assert!(verify_consistency(old, u64::MAX, &r1, &r2, &proof).is_err());
        }
        if !proof.is_empty() {
            assert!(verify_consistency(old, new, &r1, &r2, &proof[..proof.len() - 1]).is_err());
            assert!(verify_consistency(old, new, &r1, &r2, &proof[1..]).is_err());
        }
        let mut longer = proof.clone();
        longer.push(r2);
        assert!(verify_consistency(old, new, &r1, &r2, &longer).is_err());
        let mut longer = vec![r1];
        longer.extend_from_slice(&proof);
        assert!(verify_consistency(old, new, &r1, &r2, &longer).is_err());
    }

    #[test]
    fn same_root_wrong_size_is_indistinguishable() {
        // RFC 9162 verification binds the proof to the (index, size) shape,
        // not to the size itself: the proof for leaf 0 of a 3-leaf tree
        // computes the same hashes as one for leaf 0 of a 4-leaf tree. Roots
        // must therefore come with their size from a signed checkpoint.
        let t = test_tree();
        let root3 = t.root_at(3).unwrap();
        let p = t.inclusion_proof(0, 3).unwrap();
        let leaf = t.leaf(0).unwrap();
        verify_inclusion(&leaf, 0, 3, &p, &root3).unwrap();
        assert!(verify_inclusion(&leaf, 0, 4, &p, &root3).is_ok());
        // Against the real root of size 4 the claim fails.
        assert!(verify_inclusion(&leaf, 0, 4, &p, &t.root_at(4).unwrap()).is_err());
    }

    proptest! {
        // Keep failures out of the source tree; a failing case is printed.
        #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn prop_inclusion(size in 1u64..300, index_seed in any::<u64>(), bit in 0usize..256) {
            assert_inclusion_rejects_corruption(index_seed % size, size, bit);
        }

        #[test]
        fn prop_consistency(new in 1u64..300, old_seed in any::<u64>(), bit in 0usize..256) {
            assert_consistency_rejects_corruption(old_seed % (new + 1), new, bit);
        }

        #[test]
        fn prop_root_at_matches_fresh_tree(k in 0u64..300) {
            let fresh = tree_of(k);
            prop_assert_eq!(big().root_at(k), Some(fresh.root()));
        }
    }
}
