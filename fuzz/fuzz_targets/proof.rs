//! Inclusion and consistency proofs: the JSON documents, then the proof checks with the
//! hashes they hold against a real tree (sizes and index from the input).
#![no_main]

use libfuzzer_sys::fuzz_target;
use weightseal_verifier::revocation::merkle::{self, MerkleTree};
use weightseal_verifier::revocation::tile::{ConsistencyProofDoc, InclusionProofDoc};

fuzz_target!(|data: &[u8]| {
    let mut input = weightseal_fuzz::Input::new(data);
    let a = input.u64();
    let b = input.u64();
    let doc = input.rest();
    let mut tree = MerkleTree::new();
    for i in 0..20u32 {
        tree.push(merkle::leaf_hash(&i.to_be_bytes()));
    }
    // Small sizes check against the tree; large ones exercise the arithmetic.
    let (old, new) = if a & 1 == 0 { (a % 21, b % 21) } else { (a, b) };
    if let Ok(proof) = ConsistencyProofDoc::parse(doc, old, new) {
        let old_root = tree.root_at(old).unwrap_or_else(merkle::empty_root);
        let new_root = tree.root_at(new).unwrap_or_else(merkle::empty_root);
        let _ = merkle::verify_consistency(old, new, &old_root, &new_root, &proof);
    }
    let (size, index) = (new, old);
    if let Ok(proof) = InclusionProofDoc::parse(doc, size, index) {
        let leaf = tree.leaf(index).unwrap_or_else(merkle::empty_root);
        let root = tree.root_at(size).unwrap_or_else(merkle::empty_root);
        let _ = merkle::verify_inclusion(&leaf, index, size, &proof, &root);
        let _ = merkle::root_from_inclusion_proof(&leaf, index, size, &proof);
    }
});
