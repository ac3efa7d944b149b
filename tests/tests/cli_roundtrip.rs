//! `weightseal sign` then `verify` on every fixture, and `diff` between fixtures.
#![allow(clippy::unwrap_used, reason = "a test fails by panicking")]

use std::path::Path;

use serde_json::{json, Value};
use weightseal_e2e::*;

/// Signs `model`, verifies it (text and JSON) and checks the JSON against the signature.
fn round_trip(model: &Path, key: &Key) {
    let signed = sign(model, key, &["--name", "fixture"]);
    let sig = default_sig(model);
    assert_eq!(signed["signature"], json!(sig.display().to_string()));
    assert!(sig.is_file(), "no signature at {}", sig.display());
    let (_, manifest) = read_sig(&sig);
    assert_eq!(signed["files"], json!(manifest.files.len()));
    assert_eq!(signed["bytes"], json!(manifest.total_size()));

    verify(model, key, &[])
        .ok()
        .stdout_has("verified")
        .stdout_has(signed["manifest_digest"].as_str().unwrap());

    let run = verify(model, key, &["--json"]);
    run.ok();
    let v = run.json();
    assert_eq!(v["verified"], json!(true));
    assert_eq!(v["manifest_digest"], signed["manifest_digest"]);
    assert_eq!(v["signers"], json!([key.id]));
    assert_eq!(v["coverage"]["kind"], json!("everything"));
    assert_eq!(v["bytes_verified"], json!(manifest.total_size()));
    assert_eq!(v["name"], json!("fixture"));
}

#[test]
fn every_fixture_folder_signs_and_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let key = keygen(dir.path(), "lab.key");
    for rel in FIXTURE_FOLDERS {
        let model = copy_fixture(rel, dir.path());
        round_trip(&model, &key);
        let signed = read_sig(&default_sig(&model)).1;
        // Every file of the folder is covered, the signature itself is not.
        let on_disk = std::fs::read_dir(&model).unwrap().count() - 1;
        assert_eq!(signed.files.len(), on_disk, "{rel}");
        assert!(signed.file("weightseal.sig").is_none());
    }
}

#[test]
fn every_fixture_file_signs_and_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let key = keygen(dir.path(), "lab.key");
    for rel in FIXTURE_FILES {
        let model = copy_fixture(rel, dir.path());
        round_trip(&model, &key);
        // Single files get FILE.weightseal.sig beside them.
        let mut expected = model.clone().into_os_string();
        expected.push(".weightseal.sig");
        assert!(Path::new(&expected).is_file(), "{rel}");
    }
}

#[test]
fn signature_location_is_honoured() {
    let dir = tempfile::tempdir().unwrap();
    let key = keygen(dir.path(), "lab.key");
    let model = copy_fixture("safetensors/base-model", dir.path());
    let sig = dir.path().join("elsewhere.sig");
    sign(&model, &key, &["--signature", sig.to_str().unwrap()]);
    assert!(sig.is_file());
    assert!(!model.join("weightseal.sig").exists());
    verify(&model, &key, &["--signature", sig.to_str().unwrap()]).ok();
    // Without --signature, the default location is looked at, and nothing is there.
    verify(&model, &key, &[]).code(1).stderr_has("weightseal.sig");
}

#[test]
fn one_file_of_a_signed_folder_verifies_alone() {
    let dir = tempfile::tempdir().unwrap();
    let key = keygen(dir.path(), "lab.key");
    let model = copy_fixture("safetensors/base-model", dir.path());
    sign(&model, &key, &[]);
    let sig = model.join("weightseal.sig");
    let shard = model.join("model-00002-of-00002.safetensors");
    let run = verify(&shard, &key, &["--signature", sig.to_str().unwrap(), "--json"]);
    run.ok();
    assert_eq!(
        run.json()["coverage"],
        json!({"kind": "files", "files": ["model-00002-of-00002.safetensors"]})
    );
}

fn diff_json(a: &Path, b: &Path) -> (i32, Value) {
    let run = weightseal(["diff".as_ref(), a.as_os_str(), b.as_os_str(), "--json".as_ref()]);
    (run.code, run.json())
}

#[test]
fn diff_base_and_derived_lists_exactly_the_five_changed_tensors() {
    let base = fixtures().join("safetensors/base-model");
    let derived = fixtures().join("safetensors/derived-model");
    let (code, d) = diff_json(&base, &derived);
    assert_eq!(code, 1, "models that differ exit 1");
    assert_eq!(d["changed"], json!(DERIVED_CHANGED));
    assert_eq!(d["added"], json!([]));
    assert_eq!(d["removed"], json!([]));
    assert_eq!(d["unchanged"].as_array().unwrap().len(), 16);
    assert!(d["changed_bytes"].as_u64().unwrap() > 0);
    // config.json, tokenizer_config.json and the index are byte-identical.
    assert_eq!(d["raw_files"]["changed"], json!([]));
    assert_eq!(d["raw_files"]["unchanged"].as_array().unwrap().len(), 3);
    assert_eq!(d["identical"], json!(false));

    let run = weightseal(["diff".as_ref(), base.as_os_str(), derived.as_os_str()]);
    run.code(1);
    for name in DERIVED_CHANGED {
        run.stdout_has(name);
    }
    run.stdout_has("5 changed");
}

#[test]
fn diff_of_a_resharded_copy_shows_no_change() {
    let base = fixtures().join("safetensors/base-model");
    let resharded = fixtures().join("safetensors/base-model-resharded");
    let (code, d) = diff_json(&base, &resharded);
    assert_eq!(d["changed"], json!([]));
    assert_eq!(d["added"], json!([]));
    assert_eq!(d["removed"], json!([]));
    assert_eq!(d["unchanged"].as_array().unwrap().len(), 21);
    // The tensors are identical; only the raw index file differs (it maps tensors to shards).
    assert_eq!(d["raw_files"]["changed"], json!(["model.safetensors.index.json"]));
    assert_eq!(code, 1);
    // A model compared with itself is identical: exit 0.
    let (code, d) = diff_json(&base, &base);
    assert_eq!(code, 0);
    assert_eq!(d["identical"], json!(true));
}

#[test]
fn diff_of_signature_files_equals_diff_of_folders() {
    let dir = tempfile::tempdir().unwrap();
    let key = keygen(dir.path(), "lab.key");
    let mut folders = Vec::new();
    for rel in FIXTURE_FOLDERS {
        let model = copy_fixture(rel, dir.path());
        sign(&model, &key, &[]);
        folders.push(model);
    }
    for (a, b) in [(0, 1), (0, 2), (1, 2), (1, 0)] {
        let (fa, fb) = (&folders[a], &folders[b]);
        let (code_folders, by_folder) = diff_json(fa, fb);
        let (code_sigs, by_sig) = diff_json(&default_sig(fa), &default_sig(fb));
        assert_eq!(by_folder, by_sig, "{} vs {}", fa.display(), fb.display());
        assert_eq!(code_folders, code_sigs);
        // A signature file against a folder works too.
        let (_, mixed) = diff_json(&default_sig(fa), fb);
        assert_eq!(mixed, by_folder);
    }
}

#[test]
fn diff_of_single_weight_files() {
    let a = fixtures().join("gguf/tiny-llama.gguf");
    let b = fixtures().join("gguf/tiny-llama-align64.gguf");
    // Same tensors and values; only the alignment (so the header and padding) differs.
    let (_, d) = diff_json(&a, &b);
    assert_eq!(d["removed"], json!([]));
    assert_eq!(d["added"], json!([]));
    assert_eq!(
        d["unchanged"].as_array().unwrap().len() + d["changed"].as_array().unwrap().len(),
        8
    );
}

#[test]
fn diff_of_an_unreadable_side_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    let run = weightseal([
        "diff".as_ref(),
        missing.as_os_str(),
        fixtures().join("gguf").as_os_str(),
    ]);
    run.code(2).stderr_has("nope");
    let garbage = dir.path().join("garbage.sig");
    std::fs::write(&garbage, b"not a signature").unwrap();
    let run = weightseal([
        "diff".as_ref(),
        garbage.as_os_str(),
        fixtures().join("gguf").as_os_str(),
    ]);
    run.code(2).stderr_has("garbage.sig");
}

#[test]
fn raw_chunk_size_is_used_for_raw_files() {
    let dir = tempfile::tempdir().unwrap();
    let key = keygen(dir.path(), "lab.key");
    let model = copy_fixture("safetensors/base-model", dir.path());
    sign(&model, &key, &["--raw-chunk-size", "64"]);
    let (_, manifest) = read_sig(&default_sig(&model));
    let config = manifest.file("config.json").unwrap();
    assert_eq!(config.chunk_size, Some(64));
    assert_eq!(config.chunks.len(), config.size.div_ceil(64) as usize);
    verify(&model, &key, &[]).ok();
    // A change in the second chunk is reported with its byte range.
    flip_bit(&model.join("config.json"), 70, 0);
    verify(&model, &key, &[])
        .code(1)
        .stderr_has("config.json: bytes 64..119");
    weightseal([
        "sign".as_ref(),
        model.as_os_str(),
        "--key".as_ref(),
        key.private.as_os_str(),
        "--raw-chunk-size".as_ref(),
        "0".as_ref(),
    ])
    .code(2);
}

#[test]
fn sign_reports_what_it_signed() {
    let dir = tempfile::tempdir().unwrap();
    let key = keygen(dir.path(), "lab.key");
    let model = copy_fixture("safetensors/base-model", dir.path());
    let run = weightseal([
        "sign".as_ref(),
        model.as_os_str(),
        "--key".as_ref(),
        key.private.as_os_str(),
    ]);
    run.ok()
        .stdout_has("manifest digest:")
        .stdout_has("5 (21 tensors)")
        .stdout_has("234,704 bytes")
        .stdout_has(&key.id)
        .stdout_has("weightseal.sig");
    // Signing a model that cannot be read exits 1 and names it.
    weightseal([
        "sign".as_ref(),
        dir.path().join("absent").as_os_str(),
        "--key".as_ref(),
        key.private.as_os_str(),
    ])
    .code(1)
    .stderr_has("absent");
}
