//! A minimal in-process log publisher that writes a static export with the exact paths and
//! formats of spec/revocation.md, so that client tests, fuzz targets and benchmarks need no
//! server. Not a server: no policy, no storage.

use std::fs;
use std::path::Path;

use ed25519_dalek::SigningKey;
use rayon::prelude::*;

use weightseal_verifier::revocation::entry::{Entry, EntryError, SignedEntry};
use weightseal_verifier::revocation::merkle::{self, MerkleTree};
use weightseal_verifier::revocation::note::Checkpoint;
use weightseal_verifier::revocation::snapshot::{SnapshotError, DEFAULT_TTL_SECS};
use weightseal_verifier::revocation::tile::{
    consistency_proof_path, encode_tile, tiles_covering, ConsistencyProofDoc, CHECKPOINT_PATH, SNAPSHOT_PATH,
    TILE_WIDTH,
};
use weightseal_verifier::PublicKey;

use crate::cosignature::WitnessSigner;
use crate::note::NoteSignerKey;
use crate::snapshot::{sign_checkpoint_by, sign_snapshot_by, snapshot_for_checkpoint};
use crate::tile::{hash_tiles, proof_to_hex};

/// An in-memory log that can sign checkpoints and snapshots and write a static export.
#[derive(Debug)]
pub struct Publisher {
    /// The log key (its name is the origin).
    pub key: NoteSignerKey,
    /// The Merkle tree of the leaves.
    pub tree: MerkleTree,
    /// The leaves (signed-entry bytes).
    pub leaves: Vec<Vec<u8>>,
    /// The version of the last snapshot signed.
    pub version: u64,
    /// Snapshot lifetime.
    pub ttl: u64,
    /// Witnesses that cosign every checkpoint note this publisher signs (a test stand-in for
    /// the witness protocol: they cosign whatever they are given).
    pub witnesses: Vec<WitnessSigner>,
    /// Further log keys that sign every note after `key` (a log in a key rotation signs with
    /// the old key too, spec/revocation.md §5.2).
    pub also_signed_by: Vec<NoteSignerKey>,
}

impl Publisher {
    /// An empty log signed by `key`.
    pub fn new(key: NoteSignerKey) -> Self {
        Publisher {
            key,
            tree: MerkleTree::new(),
            leaves: Vec::new(),
            version: 0,
            ttl: DEFAULT_TTL_SECS,
            witnesses: Vec::new(),
            also_signed_by: Vec::new(),
        }
    }

    /// Appends a leaf (no checks at all); returns its index.
    pub fn append_raw(&mut self, leaf: Vec<u8>) -> u64 {
        self.tree.push(merkle::leaf_hash(&leaf));
        self.leaves.push(leaf);
        self.tree.len() - 1
    }

    /// Appends a signed entry; returns its index.
    pub fn append(&mut self, entry: &SignedEntry) -> u64 {
        self.append_raw(entry.as_bytes().to_vec())
    }

    /// Signs many entries in parallel (each with `key`, which must be their issuer) and
    /// appends them in order.
    pub fn append_many(&mut self, entries: &[Entry], key: &SigningKey) -> Result<(), EntryError> {
        let signed: Vec<SignedEntry> = entries.par_iter().map(|e| e.sign(key)).collect::<Result<_, _>>()?;
        for s in signed {
            self.append(&s);
        }
        Ok(())
    }

    /// The checkpoint of the current tree.
    pub fn checkpoint(&self) -> Checkpoint {
        Checkpoint {
            origin: self.key.name().to_string(),
            size: self.tree.len(),
            root: self.tree.root(),
            extensions: vec![],
        }
    }

    /// The signed checkpoint note of the current tree, with a cosignature (timestamp 1) by
    /// each of [`Publisher::witnesses`].
    pub fn checkpoint_note(&self) -> Result<String, SnapshotError> {
        let mut note = sign_checkpoint_by(&self.checkpoint(), &self.signers())?;
        let body = self.checkpoint().to_body();
        for w in &self.witnesses {
            // Cosigning fails only for timestamps over 2^63 - 1.
            if let Ok(line) = w.cosign(&body, 1) {
                note.push_str(&line);
            }
        }
        Ok(note)
    }

    /// Signs a new snapshot (next version) of the current tree issued at `issued`.
    pub fn snapshot_note(&mut self, issued: u64) -> Result<String, SnapshotError> {
        self.version += 1;
        let snapshot = snapshot_for_checkpoint(&self.checkpoint(), self.version, issued, self.ttl);
        sign_snapshot_by(&snapshot, &self.signers())
    }

    fn signers(&self) -> Vec<&NoteSignerKey> {
        std::iter::once(&self.key).chain(&self.also_signed_by).collect()
    }

    /// Writes the whole publication under `dir` like `weightseal-server export`: both
    /// notes (a new snapshot issued at `issued`), every entry bundle and hash tile of the
    /// current size, and the consistency proofs to the current size from every multiple of
    /// 256 and from the last 256 sizes.
    pub fn export(&mut self, dir: &Path, issued: u64) -> std::io::Result<()> {
        let other = |e: &dyn std::fmt::Display| std::io::Error::other(e.to_string());
        let write = |path: &str, bytes: &[u8]| -> std::io::Result<()> {
            let full = dir.join(path);
            if let Some(parent) = full.parent() {
                fs::create_dir_all(parent)?;
            }
            fs::write(full, bytes)
        };
        let size = self.tree.len();
        write(
            CHECKPOINT_PATH,
            self.checkpoint_note().map_err(|e| other(&e))?.as_bytes(),
        )?;
        write(
            SNAPSHOT_PATH,
            self.snapshot_note(issued).map_err(|e| other(&e))?.as_bytes(),
        )?;
        for tile in tiles_covering(0, size) {
            let leaves = &self.leaves[tile.first() as usize..tile.end() as usize];
            write(&tile.path(), &encode_tile(leaves).map_err(|e| other(&e))?)?;
        }
        for tile in hash_tiles(size) {
            let bytes = self
                .tree
                .hash_tile(tile.level, tile.index, tile.width)
                .ok_or_else(|| std::io::Error::other("the tree lacks a hash tile"))?;
            write(&tile.path(), &bytes)?;
        }
        let mut olds: Vec<u64> = (1..size).filter(|o| o % TILE_WIDTH == 0).collect();
        olds.extend(size.saturating_sub(256).max(1)..size);
        for old in olds {
            self.write_proof(dir, old, size)?;
        }
        Ok(())
    }

    /// Writes the consistency proof document `old` → `new` under `dir`.
    pub fn write_proof(&self, dir: &Path, old: u64, new: u64) -> std::io::Result<()> {
        let proof = self
            .tree
            .consistency_proof(old, new)
            .ok_or_else(|| std::io::Error::other("no such proof"))?;
        let doc = ConsistencyProofDoc {
            old,
            new,
            proof: proof_to_hex(&proof),
        };
        let full = dir.join(consistency_proof_path(old, new));
        if let Some(parent) = full.parent() {
            fs::create_dir_all(parent)?;
        }
        fs::write(full, serde_json::to_vec(&doc).map_err(std::io::Error::other)?)
    }
}

/// A public key from a signing key.
pub fn public(key: &SigningKey) -> PublicKey {
    PublicKey::from_verifying_key(key.verifying_key())
}
