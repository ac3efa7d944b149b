//! Library-level round trips on the reference fixtures (written by Python safetensors
//! and llama.cpp's gguf writer, not by this project).

#![allow(clippy::unwrap_used, reason = "tests fail loudly on any unexpected error")]

use std::path::{Path, PathBuf};

use weightseal_signer::{build_manifest, generate_keypair, sign_manifest_bytes, ManifestOptions};
use weightseal_verifier::diff::diff_files;
use weightseal_verifier::{Coverage, PublicKey, SignatureFile, Verifier, VerifyError};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

fn sign(model: &Path, sig_path: &Path) -> (weightseal_signer::SigningKey, SignatureFile) {
    let key = generate_keypair().unwrap();
    let manifest = build_manifest(model, sig_path, &ManifestOptions::default()).unwrap();
    let bytes = manifest.to_bytes().unwrap();
    let mut sig = SignatureFile::unsigned(bytes.clone());
    sig.add_signature(sign_manifest_bytes(&bytes, &key));
    weightseal_signer::write_signature_file(sig_path, &sig).unwrap();
    (key, sig)
}

#[test]
fn folder_sign_verify_and_tamper() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("base");
    copy_dir(&fixtures().join("safetensors/base-model"), &model);
    let sig_path = model.join("weightseal.sig");
    let (key, _) = sign(&model, &sig_path);
    let verifier = Verifier::builder()
        .trust(PublicKey::from_verifying_key(key.verifying_key()))
        .build()
        .unwrap();
    let opened = verifier.open(&model, &sig_path).unwrap();
    let proof = opened.verify_all(None).unwrap();
    assert_eq!(proof.coverage(), &Coverage::Everything);
    assert_eq!(opened.manifest().files.len(), 5);
    assert_eq!(
        opened
            .manifest()
            .files
            .iter()
            .map(|f| f.tensors().count())
            .sum::<usize>(),
        21
    );

    // One tensor, read into our own memory.
    let len = opened.tensor_len("lm_head.weight").unwrap();
    let mut buf = vec![0u8; len as usize];
    opened.read_tensor_into("lm_head.weight", &mut buf).unwrap();

    // Flip one bit of a tensor in the second shard.
    let shard = model.join("model-00002-of-00002.safetensors");
    let mut bytes = std::fs::read(&shard).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&shard, &bytes).unwrap();
    let err = verifier.open(&model, &sig_path).unwrap().verify_all(None).unwrap_err();
    assert!(
        matches!(err, VerifyError::ChunkMismatch { ref path, .. } if path == "model-00002-of-00002.safetensors"),
        "{err}"
    );
    assert!(err.to_string().contains("tensor "), "{err}");
}

#[test]
fn gguf_files_round_trip() {
    for name in ["tiny-llama.gguf", "tiny-llama-align64.gguf"] {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(name);
        std::fs::copy(fixtures().join("gguf").join(name), &file).unwrap();
        let sig_path = dir.path().join("x.sig");
        let (key, sig) = sign(&file, &sig_path);
        let manifest = sig.manifest().unwrap();
        assert_eq!(manifest.files[0].tensors().count(), 8);
        let verifier = Verifier::builder()
            .trust(PublicKey::from_verifying_key(key.verifying_key()))
            .build()
            .unwrap();
        verifier.open(&file, &sig_path).unwrap().verify_all(None).unwrap();
    }
}

#[test]
fn diff_finds_exactly_the_retrained_tensors() {
    let scan = |name: &str| {
        build_manifest(
            &fixtures().join("safetensors").join(name),
            Path::new("/nonexistent.sig"),
            &ManifestOptions::default(),
        )
        .unwrap()
        .files
    };
    let base = scan("base-model");
    let derived = diff_files(&base, &scan("derived-model"));
    assert_eq!(
        derived.tensors.changed,
        [
            "lm_head.weight",
            "model.layers.1.self_attn.k_proj.weight",
            "model.layers.1.self_attn.o_proj.weight",
            "model.layers.1.self_attn.q_proj.weight",
            "model.layers.1.self_attn.v_proj.weight"
        ]
    );
    assert_eq!(derived.tensors.unchanged.len(), 16);
    let resharded = diff_files(&base, &scan("base-model-resharded"));
    assert!(
        resharded.tensors.changed.is_empty()
            && resharded.tensors.added.is_empty()
            && resharded.tensors.removed.is_empty()
    );
    assert_eq!(resharded.tensors.unchanged.len(), 21);
}
