//! Tampering: every change to a signed model, its signature file or its trust setup
//! makes `weightseal verify` exit 1, and stderr names what is wrong.
#![allow(clippy::unwrap_used, reason = "a test fails by panicking")]

use std::io::Write as _;
use std::path::{Path, PathBuf};

use weightseal_e2e::*;
use weightseal_verifier::scan::{scan_file, ScanOptions};
use weightseal_verifier::SignatureFile;

const SHARD1: &str = "model-00001-of-00002.safetensors";
const SHARD2: &str = "model-00002-of-00002.safetensors";

/// A signed copy of a fixture in a temporary folder.
struct Signed {
    _dir: tempfile::TempDir,
    dir: PathBuf,
    model: PathBuf,
    sig: PathBuf,
    key: Key,
}

fn signed(rel: &str) -> Signed {
    let dir = tempfile::tempdir().unwrap();
    let key = keygen(dir.path(), "lab.key");
    let model = copy_fixture(rel, dir.path());
    sign(&model, &key, &[]);
    let sig = default_sig(&model);
    verify(&model, &key, &[]).ok();
    Signed {
        dir: dir.path().to_path_buf(),
        _dir: dir,
        model,
        sig,
        key,
    }
}

impl Signed {
    #[track_caller]
    fn refused(&self, mentions: &[&str]) -> Run {
        let run = verify(&self.model, &self.key, &[]);
        run.code(1).stderr_has("error:");
        for m in mentions {
            run.stderr_has(m);
        }
        run
    }
}

#[test]
fn flipped_bit_in_a_safetensors_header() {
    let s = signed("safetensors/base-model");
    let header = chunk(&s.sig, SHARD1, None);
    // Inside the JSON text of the header.
    flip_bit(&s.model.join(SHARD1), header.offset + header.len / 2, 0);
    s.refused(&[SHARD1, "header", "expected BLAKE3"]);
}

#[test]
fn flipped_bit_in_a_safetensors_tensor() {
    let s = signed("safetensors/base-model");
    let name = "model.layers.1.mlp.down_proj.weight";
    let c = chunk(&s.sig, SHARD2, Some(name));
    flip_bit(&s.model.join(SHARD2), c.offset + c.len / 2, 7);
    s.refused(&[SHARD2, name, "expected BLAKE3", "found"]);
}

#[test]
fn flipped_bit_in_a_gguf_header() {
    let s = signed("gguf/tiny-llama.gguf");
    let header = chunk(&s.sig, "tiny-llama.gguf", None);
    flip_bit(&s.model, header.offset + header.len / 2, 3);
    s.refused(&["tiny-llama.gguf", "header"]);
}

#[test]
fn flipped_bit_in_a_gguf_tensor() {
    let s = signed("gguf/tiny-llama-align64.gguf");
    let (_, manifest) = read_sig(&s.sig);
    let entry = manifest.file("tiny-llama-align64.gguf").unwrap();
    let c = entry.tensors().last().unwrap().clone();
    let name = c.tensor_name().unwrap().to_string();
    flip_bit(&s.model, c.offset, 0);
    s.refused(&["tiny-llama-align64.gguf", &format!("tensor {name}")]);
}

#[test]
fn flipped_bit_in_a_raw_file() {
    let s = signed("safetensors/base-model");
    flip_bit(&s.model.join("config.json"), 3, 1);
    s.refused(&["config.json", "bytes 0.."]);
}

#[test]
fn truncated_file() {
    let s = signed("safetensors/base-model");
    let shard = s.model.join(SHARD2);
    let len = std::fs::metadata(&shard).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&shard)
        .unwrap()
        .set_len(len - 1)
        .unwrap();
    s.refused(&[SHARD2, "truncated"]);
}

#[test]
fn bytes_appended() {
    let s = signed("safetensors/base-model");
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(s.model.join(SHARD1))
        .unwrap();
    f.write_all(b"\0").unwrap();
    s.refused(&[SHARD1, "appended"]);
}

#[test]
fn bytes_appended_to_a_single_file_model() {
    let s = signed("safetensors/edge-cases.safetensors");
    let mut f = std::fs::OpenOptions::new().append(true).open(&s.model).unwrap();
    f.write_all(b"x").unwrap();
    s.refused(&["edge-cases.safetensors", "appended"]);
}

#[test]
fn file_added() {
    let s = signed("safetensors/base-model");
    std::fs::write(s.model.join("modeling_custom.py"), "import os\n").unwrap();
    s.refused(&["modeling_custom.py", "not signed"]).stderr_has("hint:");
    // The unsafe switch lets it through, loudly.
    verify(&s.model, &s.key, &["--allow-unsigned-files-unsafe"])
        .ok()
        .stderr_has("warning:")
        .stdout_has("UNSAFE");
}

#[test]
fn file_added_in_a_subfolder() {
    let s = signed("safetensors/base-model");
    std::fs::create_dir(s.model.join("extra")).unwrap();
    std::fs::write(s.model.join("extra/hook.py"), "x = 1\n").unwrap();
    s.refused(&["extra/hook.py"]);
}

#[test]
fn file_removed() {
    let s = signed("safetensors/base-model");
    std::fs::remove_file(s.model.join("tokenizer_config.json")).unwrap();
    s.refused(&["tokenizer_config.json", "missing"]);
}

#[test]
fn file_renamed() {
    let s = signed("safetensors/base-model");
    std::fs::rename(s.model.join(SHARD2), s.model.join("model-2.safetensors")).unwrap();
    s.refused(&[SHARD2, "missing", "model-2.safetensors", "not signed"]);
}

#[test]
fn symlink_to_an_identical_copy_is_refused() {
    let s = signed("safetensors/base-model");
    let elsewhere = s.dir.join("copy-of-shard");
    std::fs::copy(s.model.join(SHARD1), &elsewhere).unwrap();
    std::fs::remove_file(s.model.join(SHARD1)).unwrap();
    std::os::unix::fs::symlink(&elsewhere, s.model.join(SHARD1)).unwrap();
    s.refused(&[SHARD1, "symbolic link"]);
}

#[test]
fn symlinked_single_file_model_is_refused() {
    let s = signed("gguf/tiny-llama.gguf");
    let link = s.dir.join("link.gguf");
    std::os::unix::fs::symlink(&s.model, &link).unwrap();
    let sig = s.sig.to_str().unwrap();
    verify(&link, &s.key, &["--signature", sig])
        .code(1)
        .stderr_has("symbolic link");
}

/// Flips one bit in the middle of `needle`'s occurrence in the signature file.
fn flip_inside(sig: &Path, needle: &[u8]) {
    let bytes = std::fs::read(sig).unwrap();
    let at = find_bytes(&bytes, needle).unwrap();
    flip_bit(sig, (at + needle.len() / 2) as u64, 0);
}

#[test]
fn signature_bytes_edited() {
    let s = signed("safetensors/base-model");
    let (file, _) = read_sig(&s.sig);
    let signature = file.signatures()[0].signature;
    flip_inside(&s.sig, &signature);
    s.refused(&["signature", &s.key.id]);
}

#[test]
fn manifest_bytes_edited_inside_the_signature_file() {
    let s = signed("safetensors/base-model");
    let (file, _) = read_sig(&s.sig);
    flip_inside(&s.sig, file.manifest_bytes());
    s.refused(&["signature"]);
}

#[test]
fn manifest_re_encoded_without_re_signing() {
    // The attacker tampers with config.json and rewrites the manifest to match it,
    // keeping the lab's signature: the manifest digest changes, so the signature fails.
    let s = signed("safetensors/base-model");
    let (file, mut manifest) = read_sig(&s.sig);
    let config = s.model.join("config.json");
    std::fs::write(&config, "{\"evil\": true}\n").unwrap();
    let forged = scan_file(&config, "config.json", ScanOptions::default()).unwrap();
    let i = manifest.files.iter().position(|f| f.path == "config.json").unwrap();
    assert_ne!(manifest.files[i].digest, forged.digest);
    manifest.files[i] = forged;
    let mut forged_sig = SignatureFile::unsigned(manifest.to_bytes().unwrap());
    for entry in file.signatures() {
        forged_sig.add_signature(entry.clone());
    }
    std::fs::write(&s.sig, forged_sig.to_bytes().unwrap()).unwrap();
    s.refused(&["signature", "altered"]);
}

#[test]
fn wrong_key_lists_signer_and_trusted_ids() {
    let s = signed("safetensors/base-model");
    let other = keygen(&s.dir, "other.key");
    verify(&s.model, &other, &[])
        .code(1)
        .stderr_has(&s.key.id)
        .stderr_has(&other.id)
        .stderr_has("hint:")
        .stderr_has("--trusted-key");
}

#[test]
fn threshold_not_met_until_cosigned() {
    let s = signed("safetensors/base-model");
    let second = keygen(&s.dir, "second.key");
    let both = |extra: &[&str]| {
        let mut args = vec![
            "verify".to_string(),
            s.model.display().to_string(),
            "--trusted-key".into(),
            s.key.public.display().to_string(),
            "--trusted-key".into(),
            second.public.display().to_string(),
            "--threshold".into(),
            "2".into(),
        ];
        args.extend(extra.iter().map(|e| e.to_string()));
        weightseal(&args)
    };
    both(&[])
        .code(1)
        .stderr_has("1 valid signature(s)")
        .stderr_has("2 required");
    // `cosign` checks the model, then adds the second signature.
    let run = weightseal([
        "cosign".as_ref(),
        s.model.as_os_str(),
        "--key".as_ref(),
        second.private.as_os_str(),
        "--json".as_ref(),
    ]);
    run.ok();
    let signers = run.json()["signers"].as_array().unwrap().len();
    assert_eq!(signers, 2);
    let run = both(&["--json"]);
    run.ok();
    let mut got: Vec<String> = serde_json::from_value(run.json()["signers"].clone()).unwrap();
    got.sort();
    let mut want = vec![s.key.id.clone(), second.id.clone()];
    want.sort();
    assert_eq!(got, want);
}

#[test]
fn cosign_refuses_a_tampered_model() {
    let s = signed("safetensors/base-model");
    let second = keygen(&s.dir, "second.key");
    flip_bit(&s.model.join("config.json"), 0, 0);
    let before = std::fs::read(&s.sig).unwrap();
    weightseal([
        "cosign".as_ref(),
        s.model.as_os_str(),
        "--key".as_ref(),
        second.private.as_os_str(),
    ])
    .code(1)
    .stderr_has("config.json");
    assert_eq!(std::fs::read(&s.sig).unwrap(), before, "the signature file was changed");
}

#[test]
fn missing_signature_file() {
    let s = signed("safetensors/base-model");
    std::fs::remove_file(&s.sig).unwrap();
    s.refused(&["weightseal.sig"]).stderr_has("hint:");
    let run = verify(&s.model, &s.key, &["--json"]);
    run.code(1);
    assert_eq!(run.json()["verified"], serde_json::json!(false));
}

#[test]
fn garbage_signature_file() {
    let s = signed("safetensors/base-model");
    std::fs::write(&s.sig, b"this is not a signature file\n").unwrap();
    s.refused(&["weightseal.sig", "malformed"]);
    std::fs::write(&s.sig, b"").unwrap();
    s.refused(&["malformed"]);
}

#[test]
fn verify_runs_are_also_decided_through_an_equivalent_policy_file() {
    use std::sync::atomic::Ordering;
    let before = POLICY_TWINS_CHECKED.load(Ordering::Relaxed);
    let s = signed("safetensors/base-model");
    let c = chunk(&s.sig, SHARD1, None);
    flip_bit(&s.model.join(SHARD1), c.offset + 3, 1);
    s.refused(&[SHARD1]);
    // `signed` verifies once, `refused` once: both were also run with --policy.
    assert!(POLICY_TWINS_CHECKED.load(Ordering::Relaxed) >= before + 2);
}

/// Issue 10 item 3: `--no-mmap` (pread only, for network filesystems) hashes exactly as
/// the mapped path does, and still refuses a changed byte in a file large enough to be
/// mapped otherwise.
#[test]
fn no_mmap_hashes_the_same_and_refuses_tampering() {
    let dir = tempfile::tempdir().unwrap();
    let key = keygen(dir.path(), "lab.key");
    let model = copy_fixture("safetensors/base-model", dir.path());
    let big: Vec<u8> = (0..(3u32 << 20) + 17)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    std::fs::write(model.join("extra.bin"), &big).unwrap();
    let mapped_sig = dir.path().join("mapped.sig");
    let pread_sig = dir.path().join("pread.sig");
    sign(&model, &key, &["--signature", mapped_sig.to_str().unwrap()]);
    sign(&model, &key, &["--signature", pread_sig.to_str().unwrap(), "--no-mmap"]);
    let (_, mapped) = read_sig(&mapped_sig);
    let (_, pread) = read_sig(&pread_sig);
    assert_eq!(mapped.files, pread.files);
    verify(&model, &key, &["--signature", pread_sig.to_str().unwrap(), "--no-mmap"]).ok();
    let c = pread.file("extra.bin").unwrap().chunks[0].clone();
    flip_bit(&model.join("extra.bin"), c.offset + 5, 3);
    let run = verify(&model, &key, &["--signature", pread_sig.to_str().unwrap(), "--no-mmap"]);
    run.code(1).stderr_has("extra.bin").stderr_has("expected BLAKE3");
}
