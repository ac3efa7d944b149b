//! Property tests: chunks tile every file exactly, and any single changed byte anywhere
//! in a signed model is detected by full verification.

#![allow(clippy::unwrap_used, reason = "tests fail loudly on any unexpected error")]

use ed25519_dalek::{Signer, SigningKey};
use proptest::prelude::*;
use weightseal_verifier::scan::{scan_file, scan_folder, ScanOptions};
use weightseal_verifier::walk::IgnoreRules;
use weightseal_verifier::{signed_message, Manifest, PublicKey, SignatureEntry, SignatureFile, Verifier, VerifyError};

/// A valid safetensors file with U8 tensors of the given lengths.
fn safetensors_bytes(lens: &[usize], fill: u8) -> Vec<u8> {
    let mut header = String::from("{");
    let mut offset = 0;
    for (i, len) in lens.iter().enumerate() {
        if i > 0 {
            header.push(',');
        }
        header.push_str(&format!(
            r#""t{i}":{{"dtype":"U8","shape":[{len}],"data_offsets":[{offset},{}]}}"#,
            offset + len
        ));
        offset += len;
    }
    header.push('}');
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(header.as_bytes());
    out.extend((0..offset).map(|i| fill.wrapping_add(i as u8)));
    out
}

fn assert_tiles(entry: &weightseal_verifier::FileEntry, size: u64) {
    let mut next = 0;
    for c in &entry.chunks {
        assert_eq!(c.offset, next);
        next += c.len;
    }
    assert_eq!(next, size);
    assert_eq!(entry.size, size);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn safetensors_chunks_tile_the_file(lens in prop::collection::vec(0usize..300, 0..12), fill in any::<u8>()) {
        let dir = tempfile::tempdir().unwrap();
        let bytes = safetensors_bytes(&lens, fill);
        let path = dir.path().join("m.safetensors");
        std::fs::write(&path, &bytes).unwrap();
        let entry = scan_file(&path, "m.safetensors", ScanOptions::default()).unwrap();
        assert_tiles(&entry, bytes.len() as u64);
        prop_assert_eq!(entry.chunks.len(), lens.len() + 1);
    }

    #[test]
    fn raw_chunks_tile_the_file(size in 0usize..5000, chunk in 1u64..700) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blob.bin");
        std::fs::write(&path, vec![7u8; size]).unwrap();
        let entry = scan_file(&path, "blob.bin", ScanOptions { raw_chunk_size: chunk, ..ScanOptions::default() }).unwrap();
        assert_tiles(&entry, size as u64);
        prop_assert_eq!(entry.chunks.len() as u64, (size as u64).div_ceil(chunk));
    }

    #[test]
    fn any_single_changed_byte_is_detected(
        lens in prop::collection::vec(1usize..200, 1..6),
        raw_len in 1usize..600,
        which in any::<prop::sample::Index>(),
        flip in 1u8..=255,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let files = [
            ("model.safetensors", safetensors_bytes(&lens, 3)),
            ("config.json", vec![b'x'; raw_len]),
        ];
        for (name, bytes) in &files {
            std::fs::write(dir.path().join(name), bytes).unwrap();
        }
        let options = ScanOptions { raw_chunk_size: 64, ..ScanOptions::default() };
        let manifest = Manifest {
            files: scan_folder(dir.path(), &IgnoreRules::defaults(), &[], options).unwrap(),
            ..Manifest::default()
        };
        let bytes = manifest.to_bytes().unwrap();
        let key = SigningKey::from_bytes(&[5; 32]);
        let mut sig = SignatureFile::unsigned(bytes.clone());
        sig.add_signature(SignatureEntry {
            public_key: PublicKey::from_verifying_key(key.verifying_key()),
            signature: key.sign(&signed_message(&Manifest::digest_of_bytes(&bytes))).to_bytes(),
        });
        let sig_path = dir.path().join("weightseal.sig");
        std::fs::write(&sig_path, sig.to_bytes().unwrap()).unwrap();
        let verifier = Verifier::builder().trust(PublicKey::from_verifying_key(key.verifying_key())).build().unwrap();
        verifier.open(dir.path(), &sig_path).unwrap().verify_all(None).unwrap();

        // Change one byte anywhere in either file.
        let total: usize = files.iter().map(|(_, b)| b.len()).sum();
        let mut at = which.index(total);
        let (name, original) = files.iter().find(|(_, b)| if at < b.len() { true } else { at -= b.len(); false }).unwrap();
        let mut changed = original.clone();
        changed[at] ^= flip;
        std::fs::write(dir.path().join(name), &changed).unwrap();
        let err = verifier.open(dir.path(), &sig_path).unwrap().verify_all(None).unwrap_err();
        let is_chunk_mismatch = matches!(&err, VerifyError::ChunkMismatch { path, .. } if path == name);
        prop_assert!(is_chunk_mismatch, "{}", err);
    }
}
