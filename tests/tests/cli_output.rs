//! Output conventions: a closed stdout pipe is not an error; errors are printed once.
#![allow(clippy::unwrap_used, reason = "a test fails by panicking")]

use std::process::{Command, Stdio};

use weightseal_e2e::*;

#[test]
fn a_closed_stdout_is_not_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let key = keygen(dir.path(), "lab.key");
    let model = copy_fixture("safetensors/base-model", dir.path());
    sign(&model, &key, &[]);
    for args in [
        vec![
            "verify".into(),
            model.clone().into_os_string(),
            "--trusted-key".into(),
            key.public.clone().into_os_string(),
            "--json".into(),
        ],
        vec!["inspect".into(), default_sig(&model).into_os_string()],
        vec!["--help".into()],
    ] {
        let mut child = Command::new(weightseal_bin())
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Close the reading end before the child writes anything.
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert!(!stderr.contains("error"), "{args:?}: {stderr}");
    }
}

#[test]
fn errors_are_printed_once_on_stderr_and_nothing_on_stdout() {
    let dir = tempfile::tempdir().unwrap();
    let key = keygen(dir.path(), "lab.key");
    let model = copy_fixture("safetensors/base-model", dir.path());
    sign(&model, &key, &[]);
    flip_bit(&model.join("config.json"), 0, 0);
    let run = verify(&model, &key, &[]);
    run.code(1);
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    assert_eq!(run.stderr.lines().filter(|l| l.starts_with("error: ")).count(), 1);
    // The message appears once, not repeated by error context.
    let message = run.stderr.lines().next().unwrap();
    assert_eq!(message.matches("does not match").count(), 1, "{message}");
}

#[test]
fn version_and_help() {
    weightseal(["--version"]).ok().stdout_has(env!("CARGO_PKG_VERSION"));
    let help = weightseal(["--help"]);
    help.ok();
    for sub in [
        "keygen",
        "sign",
        "cosign",
        "verify",
        "inspect",
        "diff",
        "demo",
        "Exit status",
    ] {
        help.stdout_has(sub);
    }
    weightseal(["verify", "--help"])
        .ok()
        .stdout_has("--allow-unsigned-files-unsafe")
        .stdout_has("UNSAFE");
    weightseal(["diff", "--help"]).ok().stdout_has("Exit status");
}
