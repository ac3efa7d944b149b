//! `weightseal keygen`.
#![allow(clippy::unwrap_used, reason = "a test fails by panicking")]

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use weightseal_e2e::*;

#[test]
fn keygen_writes_a_private_key_0600_and_a_public_key() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("lab.key");
    let run = weightseal(["keygen".as_ref(), "--out".as_ref(), out.as_os_str()]);
    run.ok().stdout_has("key id:");
    let mode = std::fs::metadata(&out).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "private key mode is {mode:o}");
    let public = dir.path().join("lab.key.pub");
    let private_pem = std::fs::read_to_string(&out).unwrap();
    let public_pem = std::fs::read_to_string(&public).unwrap();
    assert!(private_pem.starts_with("-----BEGIN PRIVATE KEY-----"));
    assert!(public_pem.starts_with("-----BEGIN PUBLIC KEY-----"));
    // The printed key id is the public key's id.
    let id = weightseal_verifier::PublicKey::from_pem_file(&public)
        .unwrap()
        .id()
        .to_hex();
    run.stdout_has(&id);
}

#[test]
fn keygen_never_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    let key = keygen(dir.path(), "lab.key");
    let before = std::fs::read(&key.private).unwrap();
    let before_pub = std::fs::read(&key.public).unwrap();
    weightseal(["keygen".as_ref(), "--out".as_ref(), key.private.as_os_str()])
        .code(1)
        .stderr_has("already exists")
        .stderr_has("hint:");
    assert_eq!(std::fs::read(&key.private).unwrap(), before);
    assert_eq!(std::fs::read(&key.public).unwrap(), before_pub);
    // Only KEY.pub existing is refused too, and KEY is not created.
    let lone = dir.path().join("lone.key");
    std::fs::write(dir.path().join("lone.key.pub"), "x").unwrap();
    weightseal(["keygen".as_ref(), "--out".as_ref(), lone.as_os_str()])
        .code(1)
        .stderr_has("lone.key.pub");
    assert!(!lone.exists());
}

#[test]
fn a_group_readable_private_key_is_refused_for_signing() {
    let dir = tempfile::tempdir().unwrap();
    let key = keygen(dir.path(), "lab.key");
    std::fs::set_permissions(&key.private, std::fs::Permissions::from_mode(0o644)).unwrap();
    let model = copy_fixture("gguf/tiny-llama.gguf", dir.path());
    weightseal([
        "sign".as_ref(),
        model.as_os_str(),
        "--key".as_ref(),
        key.private.as_os_str(),
    ])
    .code(2)
    .stderr_has("chmod 600");
}

#[test]
fn openssl_reads_the_keys() {
    if !have_program("openssl") {
        println!("note: openssl is not installed; skipping the openssl check");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let key = keygen(dir.path(), "lab.key");
    let private = Command::new("openssl")
        .args(["pkey", "-noout", "-in"])
        .arg(&key.private)
        .output()
        .unwrap();
    assert!(
        private.status.success(),
        "openssl refused the private key: {}",
        String::from_utf8_lossy(&private.stderr)
    );
    let public = Command::new("openssl")
        .args(["pkey", "-pubin", "-noout", "-in"])
        .arg(&key.public)
        .output()
        .unwrap();
    assert!(
        public.status.success(),
        "openssl refused the public key: {}",
        String::from_utf8_lossy(&public.stderr)
    );
    // openssl derives the same public key from the private one.
    let derived = Command::new("openssl")
        .args(["pkey", "-pubout", "-in"])
        .arg(&key.private)
        .output()
        .unwrap();
    assert!(derived.status.success());
    assert_eq!(
        String::from_utf8_lossy(&derived.stdout).trim(),
        std::fs::read_to_string(&key.public).unwrap().trim()
    );
}

/// Issue 10 item 4: a signature file holds no secret and is read by runtimes and web
/// servers running as other users, so it is written 0644 (also when co-signed); the
/// private key beside it stays 0600.
#[test]
fn a_signature_file_is_readable_by_others_and_a_private_key_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let model = copy_fixture("safetensors/base-model", dir.path());
    let lab = keygen(dir.path(), "lab.key");
    let hub = keygen(dir.path(), "hub.key");
    sign(&model, &lab, &[]);
    let sig = default_sig(&model);
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&sig), 0o644, "signature file mode is {:o}", mode(&sig));
    assert_eq!(
        mode(&lab.private),
        0o600,
        "private key mode is {:o}",
        mode(&lab.private)
    );
    assert_eq!(mode(&lab.public) & 0o004, 0o004, "public key is not world-readable");
    let run = weightseal([
        "cosign".as_ref(),
        model.as_os_str(),
        "--key".as_ref(),
        hub.private.as_os_str(),
    ]);
    run.ok();
    assert_eq!(mode(&sig), 0o644, "co-signed signature file mode is {:o}", mode(&sig));
}
