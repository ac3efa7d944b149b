//! `weightseal inspect`, lineage, and `weightseal demo`.
#![allow(clippy::unwrap_used, reason = "a test fails by panicking")]

use serde_json::json;
use weightseal_e2e::*;

#[test]
fn inspect_shows_parents_after_sign_with_parent() {
    let dir = tempfile::tempdir().unwrap();
    let key = keygen(dir.path(), "lab.key");
    let base = copy_fixture("safetensors/base-model", dir.path());
    let base_signed = sign(&base, &key, &["--name", "acme/base"]);
    let base_digest = base_signed["manifest_digest"].as_str().unwrap().to_string();
    let base_sig = default_sig(&base);

    let derived = copy_fixture("safetensors/derived-model", dir.path());
    let signed = sign(
        &derived,
        &key,
        &[
            "--name",
            "acme/derived",
            "--parent",
            base_sig.to_str().unwrap(),
            "--relation",
            "finetune",
            "--annotation",
            "license=apache-2.0",
        ],
    );
    assert_eq!(
        signed["parents"],
        json!([{"digest": base_digest, "relation": "finetune"}])
    );
    let sig = default_sig(&derived);

    let run = weightseal(["inspect".as_ref(), sig.as_os_str()]);
    run.ok()
        .stdout_has("finetune")
        .stdout_has(&base_digest)
        .stdout_has("acme/derived")
        .stdout_has(&key.id)
        .stdout_has("trust was NOT evaluated")
        .stdout_has("license = apache-2.0")
        .stdout_has("model-00001-of-00002.safetensors");

    let run = weightseal(["inspect".as_ref(), sig.as_os_str(), "--json".as_ref()]);
    run.ok();
    let v = run.json();
    assert_eq!(v["parents"], json!([{"digest": base_digest, "relation": "finetune"}]));
    assert_eq!(v["manifest"]["name"], "acme/derived");
    assert_eq!(v["manifest"]["digest"], signed["manifest_digest"]);
    assert_eq!(v["manifest"]["tensors"], 21);
    assert_eq!(v["manifest"]["files"].as_array().unwrap().len(), 5);
    assert_eq!(v["signers"], json!([{"key_id": key.id, "signature_valid": true}]));
    assert_eq!(v["trust_evaluated"], false);
    assert_eq!(v["annotations"], json!({"license": "apache-2.0"}));
    assert_eq!(v["ignore"].as_array().unwrap().len(), 6);

    // A parent given as a digest, and several parents.
    let other = copy_fixture("safetensors/base-model-resharded", dir.path());
    let signed = sign(
        &other,
        &key,
        &[
            "--parent",
            &base_digest,
            "--relation",
            "other",
            "--parent",
            sig.to_str().unwrap(),
            "--relation",
            "merge",
        ],
    );
    assert_eq!(signed["parents"][0]["relation"], "other");
    assert_eq!(signed["parents"][1]["relation"], "merge");
    assert_eq!(signed["parents"][1]["digest"], v["manifest"]["digest"]);
}

#[test]
fn inspect_of_a_malformed_or_altered_file_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.sig");
    std::fs::write(&garbage, "nope").unwrap();
    weightseal(["inspect".as_ref(), garbage.as_os_str()])
        .code(1)
        .stderr_has("garbage.sig")
        .stderr_has("malformed");
    weightseal(["inspect".as_ref(), dir.path().join("missing.sig").as_os_str()])
        .code(1)
        .stderr_has("missing.sig");

    let key = keygen(dir.path(), "lab.key");
    let model = copy_fixture("gguf/tiny-llama.gguf", dir.path());
    sign(&model, &key, &[]);
    let sig = default_sig(&model);
    let (file, _) = read_sig(&sig);
    let bytes = std::fs::read(&sig).unwrap();
    let at = find_bytes(&bytes, &file.signatures()[0].signature).unwrap();
    flip_bit(&sig, at as u64 + 10, 0);
    let run = weightseal(["inspect".as_ref(), sig.as_os_str(), "--json".as_ref()]);
    run.code(1).stderr_has("altered");
    assert_eq!(run.json()["signers"][0]["signature_valid"], false);
}

#[test]
fn demo_exits_0_and_shows_the_refusals() {
    weightseal_bin(); // built before the clock starts
    let started = std::time::Instant::now();
    let run = weightseal(["demo"]);
    run.ok()
        .stdout_has("refused: ")
        .stdout_has("model.layers.1.mlp.weight")
        .stdout_has("modeling_custom.py")
        .stdout_has("lm_head.weight")
        .stdout_has("model.layers.0.mlp.weight")
        .stdout_has("revoked (guardrails-removed)")
        .stdout_has("all 15 steps behaved as expected");
    // Tampered tensor, unsigned file beside the weights, revoked fork.
    assert_eq!(run.stdout.matches("refused: ").count(), 3);
    assert!(!run.stdout.contains("UNEXPECTED"));
    assert!(
        started.elapsed().as_secs() < 10,
        "the demo took {:?}",
        started.elapsed()
    );

    let run = weightseal(["demo", "--json"]);
    run.ok();
    let v = run.json();
    assert_eq!(v["ok"], true);
    let steps = v["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 15);
    assert!(steps.iter().all(|s| s["ok"] == true));
}
