//! Every input in `fuzz/regressions/<target>/` (inputs that once found a problem under the
//! fuzzer) replayed through the same parser as its fuzz target, on the stable toolchain, so
//! `cargo test` holds each fix. A target folder without a replay here fails the test.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test")]

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use weightseal_verifier::walk::IgnoreRules;

fn regressions() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/regressions")
}

fn inputs(target: &str) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<_> = std::fs::read_dir(regressions().join(target))
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_else(|_| Vec::new())
        .into_iter()
        .map(|p: PathBuf| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

/// Runs `f` on its own thread and fails if it takes longer than the fuzz stage allows one
/// input (10 s), instead of hanging the test run.
fn within_fuzz_timeout(what: String, f: impl FnOnce() + Send + 'static) {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        f();
        let _ = tx.send(());
    });
    match rx.recv_timeout(Duration::from_secs(10)) {
        Ok(()) => {}
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("{what}: still running after 10 s"),
        Err(mpsc::RecvTimeoutError::Disconnected) => panic!("{what}: panicked"),
    }
}

/// The `ignore_rules` harness: rules up to the first empty line, then paths.
fn replay_ignore_rules(name: String, data: Vec<u8>) {
    within_fuzz_timeout(format!("ignore_rules/{name}"), move || {
        let Ok(text) = std::str::from_utf8(&data) else { return };
        let (rules, paths) = text.split_once("\n\n").unwrap_or((text, ""));
        let rules: Vec<&str> = rules.lines().collect();
        let Ok(set) = IgnoreRules::new(&rules[..]) else { return };
        for p in paths.lines() {
            let (p, is_dir) = p.strip_suffix('/').map_or((p, false), |d| (d, true));
            let _ = set.is_ignored(p, is_dir);
        }
    });
}

const REPLAYED: &[&str] = &["ignore_rules"];

#[test]
fn every_regression_folder_has_a_replay() {
    let Ok(dir) = std::fs::read_dir(regressions()) else {
        return;
    };
    for entry in dir {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_dir() {
            let name = entry.file_name().to_string_lossy().into_owned();
            assert!(
                REPLAYED.contains(&name.as_str()),
                "fuzz/regressions/{name} has no replay in this file"
            );
        }
    }
}

// F3 (issue 10): a rule of 12 `**` segments against a path 25 deep took minutes with the
// exponential matcher in walk.rs; found again by the ignore_rules target (timeout). The
// polynomial matcher finishes it at once.
#[test]
fn ignore_rules_regressions_finish_in_time() {
    let all = inputs("ignore_rules");
    assert!(!all.is_empty());
    for (name, data) in all {
        replay_ignore_rules(name, data);
    }
}
