//! `weightseal verify --policy FILE`, `$WEIGHTSEAL_POLICY`, and warn mode through the CLI.
#![allow(clippy::unwrap_used, reason = "tests fail loudly on any unexpected error")]

use std::path::Path;
use std::process::{Command, Stdio};

use weightseal_e2e::*;

const SHARD2: &str = "model-00002-of-00002.safetensors";

fn write_policy(dir: &Path, body: &str) -> std::path::PathBuf {
    let path = dir.join("policy.toml");
    std::fs::write(&path, body).unwrap();
    path
}

/// `weightseal verify ARGS` with `WEIGHTSEAL_POLICY` set (the suite's `weightseal()` helper
/// runs with the test's own environment only).
fn verify_with_env(policy: &Path, model: &Path) -> (i32, String) {
    let out = Command::new(weightseal_bin())
        .arg("verify")
        .arg(model)
        .env("WEIGHTSEAL_POLICY", policy)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_environment_names_the_policy_when_no_key_is_given() {
    let dir = tempfile::tempdir().unwrap();
    let lab = keygen(dir.path(), "lab.key");
    let other = keygen(dir.path(), "other.key");
    let model = copy_fixture("safetensors/base-model", dir.path());
    sign(&model, &lab, &[]);
    let trusting_lab = write_policy(dir.path(), "trusted_keys = [\"lab.key.pub\"]\n");
    assert_eq!(verify_with_env(&trusting_lab, &model).0, 0);
    let trusting_other = write_policy(dir.path(), "trusted_keys = [\"other.key.pub\"]\n");
    let (code, stderr) = verify_with_env(&trusting_other, &model);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains(&other.id), "{stderr}");
}

#[test]
fn warn_mode_prints_the_findings_and_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let lab = keygen(dir.path(), "lab.key");
    let model = copy_fixture("safetensors/base-model", dir.path());
    sign(&model, &lab, &[]);
    let name = "model.layers.1.mlp.down_proj.weight";
    let c = chunk(&default_sig(&model), SHARD2, Some(name));
    flip_bit(&model.join(SHARD2), c.offset + 1, 2);
    let enforce = write_policy(dir.path(), "mode = \"enforce\"\ntrusted_keys = [\"lab.key.pub\"]\n");
    weightseal([
        "verify".as_ref(),
        model.as_os_str(),
        "--policy".as_ref(),
        enforce.as_os_str(),
    ])
    .code(1)
    .stderr_has(name);
    let warn = write_policy(dir.path(), "mode = \"warn\"\ntrusted_keys = [\"lab.key.pub\"]\n");
    let run = weightseal([
        "verify".as_ref(),
        model.as_os_str(),
        "--policy".as_ref(),
        warn.as_os_str(),
        "--json".as_ref(),
    ]);
    run.ok().stderr_has("warn mode: would refuse").stderr_has(name);
    let json = run.json();
    assert_eq!(json["mode"], "warn");
    assert!(json["warnings"][0].as_str().unwrap().contains(name), "{json}");
}

#[test]
fn a_policy_file_and_trust_flags_cannot_be_mixed() {
    let dir = tempfile::tempdir().unwrap();
    let lab = keygen(dir.path(), "lab.key");
    let model = copy_fixture("safetensors/base-model", dir.path());
    sign(&model, &lab, &[]);
    let policy = write_policy(dir.path(), "trusted_keys = [\"lab.key.pub\"]\n");
    weightseal([
        "verify".as_ref(),
        model.as_os_str(),
        "--policy".as_ref(),
        policy.as_os_str(),
        "--trusted-key".as_ref(),
        lab.public.as_os_str(),
    ])
    .code(2);
    // A misspelt key in the policy file is refused, not ignored.
    let typo = write_policy(dir.path(), "trusted_keys = [\"lab.key.pub\"]\nthreshhold = 2\n");
    weightseal([
        "verify".as_ref(),
        model.as_os_str(),
        "--policy".as_ref(),
        typo.as_os_str(),
    ])
    .code(2)
    .stderr_has("threshhold");
}
