//! Exit status 2 (the command could not run) and `verify --tensors`.
#![allow(clippy::unwrap_used, reason = "a test fails by panicking")]

use std::path::PathBuf;

use weightseal_e2e::*;

struct Setup {
    _dir: tempfile::TempDir,
    dir: PathBuf,
    model: PathBuf,
    sig: PathBuf,
    key: Key,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let key = keygen(dir.path(), "lab.key");
    let model = copy_fixture("safetensors/base-model", dir.path());
    sign(&model, &key, &[]);
    Setup {
        dir: dir.path().to_path_buf(),
        sig: default_sig(&model),
        _dir: dir,
        model,
        key,
    }
}

#[test]
fn unknown_tensor_name_exits_2() {
    let s = setup();
    verify(&s.model, &s.key, &["--tensors", "no.such.tensor"])
        .code(2)
        .stderr_has("no.such.tensor");
    // Even when another part of the model is tampered: the request itself is wrong.
    flip_bit(&s.model.join("config.json"), 0, 0);
    verify(&s.model, &s.key, &["--tensors", "lm_head.weight,no.such.tensor"])
        .code(2)
        .stderr_has("no.such.tensor");
}

#[test]
fn unreadable_trusted_key_exits_2() {
    let s = setup();
    let run = weightseal([
        "verify".as_ref(),
        s.model.as_os_str(),
        "--trusted-key".as_ref(),
        s.dir.join("missing.pub").as_os_str(),
    ]);
    run.code(2).stderr_has("missing.pub");
}

#[test]
fn trusted_key_that_is_not_a_pem_key_exits_2() {
    let s = setup();
    let bogus = s.dir.join("bogus.pub");
    std::fs::write(&bogus, "hello\n").unwrap();
    let run = weightseal([
        "verify".as_ref(),
        s.model.as_os_str(),
        "--trusted-key".as_ref(),
        bogus.as_os_str(),
    ]);
    run.code(2).stderr_has("bogus.pub").stderr_has("hint:");
    // A private key given where a public key belongs: exit 2, with a hint saying so.
    let run = weightseal([
        "verify".as_ref(),
        s.model.as_os_str(),
        "--trusted-key".as_ref(),
        s.key.private.as_os_str(),
    ]);
    run.code(2).stderr_has("PRIVATE key");
}

#[test]
fn impossible_thresholds_exit_2() {
    let s = setup();
    verify(&s.model, &s.key, &["--threshold", "0"])
        .code(2)
        .stderr_has("threshold");
    verify(&s.model, &s.key, &["--threshold", "2"])
        .code(2)
        .stderr_has("threshold 2");
    verify(&s.model, &s.key, &["--threshold", "-1"]).code(2);
    verify(&s.model, &s.key, &["--threshold", "many"]).code(2);
}

#[test]
fn missing_arguments_exit_2() {
    let s = setup();
    weightseal(["verify"]).code(2).stderr_has("MODEL");
    weightseal(["sign", s.model.to_str().unwrap()])
        .code(2)
        .stderr_has("--key");
    weightseal(["keygen"]).code(2).stderr_has("--out");
    weightseal(["inspect"]).code(2);
    weightseal(["diff", s.model.to_str().unwrap()]).code(2);
    weightseal(["frobnicate"]).code(2);
    weightseal::<[&str; 0], &str>([]).code(2);
    // No trusted key at all: exit 2 with the hint.
    weightseal(["verify", s.model.to_str().unwrap()])
        .code(2)
        .stderr_has("hint: did you forget --trusted-key?");
}

#[test]
fn parent_and_relation_must_pair() {
    let s = setup();
    let derived = copy_fixture("safetensors/derived-model", &s.dir);
    let sig = s.sig.to_str().unwrap();
    let key = s.key.private.to_str().unwrap();
    let d = derived.to_str().unwrap();
    weightseal(["sign", d, "--key", key, "--parent", sig]).code(2);
    weightseal(["sign", d, "--key", key, "--relation", "finetune"]).code(2);
    weightseal(["sign", d, "--key", key, "--parent", sig, "--relation", "sideways"])
        .code(2)
        .stderr_has("finetune");
    weightseal([
        "sign",
        d,
        "--key",
        key,
        "--parent",
        sig,
        "--relation",
        "finetune",
        "--parent",
        sig,
    ])
    .code(2)
    .stderr_has("--relation");
    weightseal([
        "sign",
        d,
        "--key",
        key,
        "--parent",
        "not-a-digest-or-file",
        "--relation",
        "merge",
    ])
    .code(2)
    .stderr_has("not-a-digest-or-file");
    assert!(!derived.join("weightseal.sig").exists());
}

#[test]
fn sign_with_a_public_key_exits_2() {
    let s = setup();
    let derived = copy_fixture("safetensors/derived-model", &s.dir);
    weightseal([
        "sign".as_ref(),
        derived.as_os_str(),
        "--key".as_ref(),
        s.key.public.as_os_str(),
    ])
    .code(2)
    .stderr_has("is a public key");
}

#[test]
fn tensors_reads_only_the_requested_chunks() {
    let s = setup();
    // Two tensors in the same shard: corrupt one, verify the other.
    let corrupted = "model.layers.0.mlp.down_proj.weight";
    let requested = "model.layers.0.mlp.up_proj.weight";
    let shard = "model-00001-of-00002.safetensors";
    let c = chunk(&s.sig, shard, Some(corrupted));
    flip_bit(&s.model.join(shard), c.offset + 1, 2);

    let run = verify(&s.model, &s.key, &["--tensors", requested, "--json"]);
    run.ok();
    let v = run.json();
    assert_eq!(v["coverage"]["kind"], "tensors");
    assert_eq!(v["coverage"]["tensors"][0]["tensor"], requested);
    assert_eq!(v["coverage"]["tensors"][0]["file"], shard);
    // Only the header and the one tensor were hashed.
    let expected = chunk(&s.sig, shard, Some(requested)).len + chunk(&s.sig, shard, None).len;
    assert_eq!(v["bytes_verified"], expected);
    verify(&s.model, &s.key, &["--tensors", requested])
        .ok()
        .stdout_has(requested);

    // The corrupted one is refused, by name; so is the whole model.
    verify(&s.model, &s.key, &["--tensors", corrupted])
        .code(1)
        .stderr_has(corrupted)
        .stderr_has(shard);
    verify(&s.model, &s.key, &["--tensors", &format!("{requested},{corrupted}")])
        .code(1)
        .stderr_has(corrupted);
    verify(&s.model, &s.key, &[]).code(1).stderr_has(corrupted);
}

#[test]
fn tensors_still_checks_the_file_set() {
    let s = setup();
    std::fs::write(s.model.join("modeling_custom.py"), "x\n").unwrap();
    verify(&s.model, &s.key, &["--tensors", "lm_head.weight"])
        .code(1)
        .stderr_has("modeling_custom.py");
}

#[test]
fn ignore_replaces_the_default_rules() {
    let s = setup();
    let model = copy_fixture("safetensors/derived-model", &s.dir);
    std::fs::create_dir(model.join(".git")).unwrap();
    std::fs::write(model.join(".git/HEAD"), "ref: refs/heads/main\n").unwrap();
    std::fs::write(model.join("notes.txt"), "scratch\n").unwrap();
    // Defaults: .git/ is left out, notes.txt is signed.
    let key = s.key.private.to_str().unwrap();
    let m = model.to_str().unwrap();
    weightseal(["sign", m, "--key", key]).ok();
    let (_, manifest) = read_sig(&default_sig(&model));
    assert!(manifest.file(".git/HEAD").is_none());
    assert!(manifest.file("notes.txt").is_some());
    // --ignore replaces them: now .git/HEAD is signed and notes.txt is not.
    weightseal(["sign", m, "--key", key, "--ignore", "*.txt"])
        .ok()
        .stderr_has("note: replacing");
    let (_, manifest) = read_sig(&default_sig(&model));
    assert!(manifest.file(".git/HEAD").is_some());
    assert!(manifest.file("notes.txt").is_none());
    assert_eq!(manifest.ignore, vec!["*.txt".to_string()]);
    verify(&model, &s.key, &[]).ok();
    // The help says so.
    let help = weightseal(["sign", "--help"]);
    help.ok();
    for rule in weightseal_verifier::walk::DEFAULT_IGNORE_RULES {
        help.stdout_has(rule);
    }
    help.stdout_has("REPLACES");
    // Reserved syntax is a usage error.
    weightseal(["sign", m, "--key", key, "--ignore", "[ab]"]).code(2);
}
