//! Every input in `fuzz/regressions/<target>/` (inputs that once found a problem under the
//! fuzzer) replayed through the same parser as its fuzz target, on the stable toolchain, so
//! `cargo test` holds each fix. A target folder without a replay here fails the test.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test")]

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use weightseal_log::note::NoteSignerKey;
use weightseal_log::testing::Publisher;
use weightseal_verifier::revocation::bundle::Bundle;
use weightseal_verifier::revocation::entry::{Entry, SignedEntry};
use weightseal_verifier::revocation::state::RevocationState;
use weightseal_verifier::walk::IgnoreRules;
use weightseal_verifier::PublicKey;

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

/// The `bundle` harness (fuzz/fuzz_targets/bundle.rs): first byte even, the rest is a
/// bundle file; odd, the rest is a list of length-prefixed leaves (those that decode as
/// entries are signed by the hub key) that a test log publishes, and the bundle the
/// harness encodes from them must decode again.
fn replay_bundle(name: String, data: Vec<u8>) {
    within_fuzz_timeout(format!("bundle/{name}"), move || {
        let key = |seed: u8| ed25519_dalek::SigningKey::from_bytes(&[seed; 32]);
        let log_key = NoteSignerKey::new("weightseal-revocations", key(0x0f)).unwrap();
        let Some((mode, rest)) = data.split_first() else { return };
        let bundle = if mode % 2 == 0 {
            match Bundle::from_bytes(rest) {
                Ok(b) => b,
                Err(_) => return,
            }
        } else {
            let hub = key(0x01);
            let mut log = Publisher::new(log_key.clone());
            let mut rest = rest;
            for _ in 0..64 {
                let (len, tail) = match rest {
                    [a, b, tail @ ..] => (usize::from(u16::from_le_bytes([*a, *b])), tail),
                    _ => break,
                };
                let (part, tail) = tail.split_at(len.min(tail.len()));
                rest = tail;
                if part.is_empty() {
                    break;
                }
                let leaf = match Entry::from_bytes(part) {
                    Ok(e) => {
                        let e = Entry {
                            issuer: PublicKey::from_verifying_key(hub.verifying_key()),
                            ..e
                        };
                        SignedEntry::sign(&e, &hub).map_or_else(|_| part.to_vec(), SignedEntry::into_bytes)
                    }
                    Err(_) => part.to_vec(),
                };
                log.append_raw(leaf);
            }
            const NOW: u64 = 1_750_000_120;
            let (Ok(snapshot_note), Ok(checkpoint_note)) = (log.snapshot_note(NOW - 60), log.checkpoint_note()) else {
                return;
            };
            let bundle = Bundle {
                snapshot_note,
                checkpoint_note,
                leaves: log.leaves.clone(),
                lineage: Vec::new(),
            };
            let Ok(bytes) = bundle.to_bytes() else { return };
            Bundle::from_bytes(&bytes).expect("a bundle we encode decodes")
        };
        let mut state = RevocationState::in_memory(vec![log_key.verifier_key()]);
        if state.import_bundle(&bundle, 1_750_000_120).is_ok() {
            assert_eq!(state.size(), bundle.leaves.len() as u64);
        }
    });
}

const REPLAYED: &[&str] = &["bundle", "ignore_rules"];

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

// Found by the bundle target in a CI rehearsal (issue 10): a leaf of one byte (not an
// entry) went into a bundle that `to_bytes` wrote and `from_bytes` then refused (leaves
// are 72 bytes to 8 KiB). `to_bytes` now refuses what `from_bytes` refuses.
#[test]
fn bundle_regressions_round_trip() {
    let all = inputs("bundle");
    assert!(!all.is_empty());
    for (name, data) in all {
        replay_bundle(name, data);
    }
}
