//! Partial verification and the race-free read-into API.

#![allow(clippy::unwrap_used, reason = "tests fail loudly on any unexpected error")]

use std::path::{Path, PathBuf};

use ed25519_dalek::{Signer, SigningKey};
use weightseal_verifier::scan::{scan_folder, ScanOptions};
use weightseal_verifier::walk::IgnoreRules;
use weightseal_verifier::{
    signed_message, Coverage, Manifest, PublicKey, SignatureEntry, SignatureFile, SignedModel, Verifier, VerifyError,
};

/// A safetensors file with 16 U8 tensors `t0..t15` of 4096 bytes each.
fn write_model(dir: &Path) {
    let mut header = String::from("{");
    for i in 0..16 {
        if i > 0 {
            header.push(',');
        }
        header.push_str(&format!(
            r#""t{i}":{{"dtype":"U8","shape":[4096],"data_offsets":[{},{}]}}"#,
            i * 4096,
            (i + 1) * 4096
        ));
    }
    header.push('}');
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header.as_bytes());
    bytes.extend((0..16 * 4096).map(|i| (i * 7 % 251) as u8));
    std::fs::write(dir.join("model.safetensors"), bytes).unwrap();
}

fn open(dir: &Path) -> (Verifier, PathBuf) {
    let ignore = IgnoreRules::defaults();
    let files = scan_folder(dir, &ignore, &[], ScanOptions::default()).unwrap();
    // The rules used at signing are recorded: the verifier walks the folder with them.
    let manifest = Manifest {
        files,
        ignore: ignore.texts().to_vec(),
        ..Manifest::default()
    };
    let bytes = manifest.to_bytes().unwrap();
    let key = SigningKey::from_bytes(&[3; 32]);
    let mut sig = SignatureFile::unsigned(bytes.clone());
    sig.add_signature(SignatureEntry {
        public_key: PublicKey::from_verifying_key(key.verifying_key()),
        signature: key.sign(&signed_message(&Manifest::digest_of_bytes(&bytes))).to_bytes(),
    });
    let sig_path = dir.join("weightseal.sig");
    std::fs::write(&sig_path, sig.to_bytes().unwrap()).unwrap();
    let verifier = Verifier::builder()
        .trust(PublicKey::from_verifying_key(key.verifying_key()))
        .build()
        .unwrap();
    (verifier, sig_path)
}

/// Byte offset of tensor `i` in the file.
fn tensor_offset(model: &SignedModel, i: usize) -> usize {
    let name = format!("tensor t{i}");
    model.manifest().files[0]
        .chunks
        .iter()
        .find(|c| c.label() == name)
        .unwrap()
        .offset as usize
}

fn corrupt(dir: &Path, at: usize) {
    let path = dir.join("model.safetensors");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[at] ^= 0x80;
    std::fs::write(&path, bytes).unwrap();
}

#[test]
fn partial_verification_reads_only_the_requested_chunks() {
    let dir = tempfile::tempdir().unwrap();
    write_model(dir.path());
    let (verifier, sig) = open(dir.path());
    let model = verifier.open(dir.path(), &sig).unwrap();
    let full = model.verify_all(None).unwrap();
    let one = model.verify_tensors(&["t3"], None).unwrap();
    assert_eq!(
        one.coverage(),
        &Coverage::Tensors(vec![("model.safetensors".into(), "t3".into())])
    );
    // Header chunk + one tensor, not the file.
    let header_len = model.manifest().files[0].chunks[0].len;
    assert_eq!(one.bytes_verified(), header_len + 4096);
    assert!(one.bytes_verified() * 10 < full.bytes_verified());

    // Corrupting another tensor does not affect verifying t3 (it is never read)…
    corrupt(dir.path(), tensor_offset(&model, 9));
    model.verify_tensors(&["t3"], None).unwrap();
    // …but is caught by full verification, naming the tensor.
    let err = model.verify_all(None).unwrap_err();
    assert!(err.to_string().contains("tensor t9"), "{err}");
    // Corrupting t3 itself is caught.
    corrupt(dir.path(), tensor_offset(&model, 3) + 100);
    let err = model.verify_tensors(&["t3"], None).unwrap_err();
    assert!(
        matches!(&err, VerifyError::ChunkMismatch { chunk, .. } if chunk == "tensor t3"),
        "{err}"
    );
}

#[test]
fn read_tensor_into_checks_exactly_the_bytes_it_returns() {
    let dir = tempfile::tempdir().unwrap();
    write_model(dir.path());
    let (verifier, sig) = open(dir.path());
    let model = verifier.open(dir.path(), &sig).unwrap();
    let len = model.tensor_len("t5").unwrap() as usize;
    assert_eq!(len, 4096);
    let mut buf = vec![0xAA; len];
    model.read_tensor_into("t5", &mut buf).unwrap();
    let start = tensor_offset(&model, 5);
    assert_eq!(
        buf,
        std::fs::read(dir.path().join("model.safetensors")).unwrap()[start..start + len]
    );
    let header = model.read_header("model.safetensors").unwrap();
    assert_eq!(header.len() as u64, model.manifest().files[0].chunks[0].len);

    // A wrong-size buffer and an unknown name are caller errors, not rejections.
    let err = model.read_tensor_into("t5", &mut [0u8; 10]).unwrap_err();
    assert!(matches!(
        err,
        VerifyError::BufferSize {
            expected: 4096,
            found: 10,
            ..
        }
    ));
    assert!(!err.is_rejection());
    let err = model.read_tensor_into("nope", &mut buf).unwrap_err();
    assert!(matches!(err, VerifyError::UnknownTensor { .. }) && !err.is_rejection());

    // Tampered bytes are refused and never left in the caller's buffer.
    corrupt(dir.path(), start + 7);
    let err = model.read_tensor_into("t5", &mut buf).unwrap_err();
    assert!(matches!(&err, VerifyError::ChunkMismatch { chunk, .. } if chunk == "tensor t5"));
    assert!(err.is_rejection());
    assert!(buf.iter().all(|b| *b == 0), "the buffer must be wiped on a mismatch");
}

#[test]
fn unsigned_extra_file_fails_unless_the_unsafe_opt_out_is_chosen() {
    let dir = tempfile::tempdir().unwrap();
    write_model(dir.path());
    let (verifier, sig) = open(dir.path());
    std::fs::write(dir.path().join("modeling_custom.py"), "import os").unwrap();
    let err = verifier.open(dir.path(), &sig).unwrap().verify_all(None).unwrap_err();
    assert!(
        matches!(&err, VerifyError::FileSetMismatch { unsigned, .. } if unsigned == &["modeling_custom.py"]),
        "{err}"
    );
    // Ignored paths (here .git/) are not part of the file set.
    std::fs::remove_file(dir.path().join("modeling_custom.py")).unwrap();
    std::fs::create_dir(dir.path().join(".git")).unwrap();
    std::fs::write(dir.path().join(".git/HEAD"), "ref").unwrap();
    verifier.open(dir.path(), &sig).unwrap().verify_all(None).unwrap();
    // The opt-out is explicit and named unsafe.
    std::fs::write(dir.path().join("extra.txt"), "x").unwrap();
    let lenient = Verifier::builder()
        .trust(PublicKey::from_verifying_key(
            SigningKey::from_bytes(&[3; 32]).verifying_key(),
        ))
        .allow_unsigned_files_unsafe()
        .build()
        .unwrap();
    let proof = lenient.open(dir.path(), &sig).unwrap().verify_all(None).unwrap();
    assert!(
        proof.unsigned_files_allowed(),
        "the proof must say the unsafe opt-out was used"
    );
}

/// A safetensors file with one U8 tensor `big` of `len` bytes.
fn write_big_model(dir: &Path, len: usize) -> Vec<u8> {
    let header = format!(r#"{{"big":{{"dtype":"U8","shape":[{len}],"data_offsets":[0,{len}]}}}}"#);
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header.as_bytes());
    let data: Vec<u8> = (0..len).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    bytes.extend_from_slice(&data);
    std::fs::write(dir.join("model.safetensors"), bytes).unwrap();
    data
}

#[test]
fn read_tensor_into_of_a_large_tensor_reads_and_hashes_in_overlapped_pieces() {
    // Several 4 MiB pieces and a ragged last one: the pipelined read must hash exactly
    // the bytes it leaves in the buffer, in order, and catch a change in any piece.
    let len = 4 * (4 << 20) + 12_345;
    let dir = tempfile::tempdir().unwrap();
    let data = write_big_model(dir.path(), len);
    let (verifier, sig) = open(dir.path());
    let model = verifier.open(dir.path(), &sig).unwrap();
    let mut buf = vec![0u8; model.tensor_len("big").unwrap() as usize];
    model.read_tensor_into("big", &mut buf).unwrap();
    assert!(buf == data, "the buffer holds the tensor's bytes");
    let start = model.manifest().files[0].chunks[1].offset as usize;
    for at in [0, (4 << 20) - 1, 4 << 20, 3 * (4 << 20) + 7, len - 1] {
        corrupt(dir.path(), start + at);
        let mut buf = vec![0xAAu8; len];
        let err = model.read_tensor_into("big", &mut buf).unwrap_err();
        assert!(matches!(err, VerifyError::ChunkMismatch { .. }), "byte {at}: {err}");
        assert!(buf.iter().all(|&b| b == 0), "byte {at}: the buffer is wiped");
        corrupt(dir.path(), start + at); // restore
        model.read_tensor_into("big", &mut buf).unwrap();
    }
}
