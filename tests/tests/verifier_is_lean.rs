//! Issue 8, item 5: `weightseal-verifier` is the crate a runtime links, and carries only what
//! verification needs. Everything only a log operator or a witness runs lives in
//! `weightseal-log` (`revocation-server/log/`). This test reads every source file of the
//! verifier and refuses the names of that operator code, so that it cannot drift back in
//! unnoticed (comments may name them, to say where they went).
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test")]

use std::path::{Path, PathBuf};

/// Names that only operator code defines or calls, each with where it lives now.
const OPERATOR_ONLY: &[(&str, &str)] = &[
    ("NoteSignerKey", "weightseal_log::note"),
    ("sign_note", "weightseal_log::note"),
    ("sign_note_by", "weightseal_log::note"),
    ("to_key_string", "weightseal_log::note (the secret key string)"),
    ("PRIVATE+KEY+", "weightseal_log::note (the secret key string)"),
    ("sign_checkpoint", "weightseal_log::snapshot"),
    ("sign_checkpoint_by", "weightseal_log::snapshot"),
    ("sign_snapshot", "weightseal_log::snapshot"),
    ("sign_snapshot_by", "weightseal_log::snapshot"),
    ("for_checkpoint", "weightseal_log::snapshot::snapshot_for_checkpoint"),
    ("sign_by", "weightseal_log::snapshot::sign_snapshot_by"),
    ("WitnessSigner", "weightseal_log::cosignature"),
    ("sign_rotation", "weightseal_log::rotation"),
    ("IssuerPolicy", "weightseal_log::policy"),
    ("PolicyConfigError", "weightseal_log::policy"),
    ("check_submission", "weightseal_log::policy"),
    ("check_scope", "weightseal_log::policy"),
    ("check_replay", "weightseal_log::policy"),
    ("check_time", "weightseal_log::policy"),
    ("Publisher", "weightseal_log::testing"),
    ("proof_to_hex", "weightseal_log::tile"),
    ("hash_tiles", "weightseal_log::tile"),
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Whether `name` occurs in `line` as a whole word: an end of `name` that is part of an
/// identifier must not continue into a longer one.
fn has_word(line: &str, name: &str) -> bool {
    let ident = |c: char| c.is_alphanumeric() || c == '_';
    let (starts_ident, ends_ident) = (
        name.chars().next().is_some_and(ident),
        name.chars().next_back().is_some_and(ident),
    );
    line.match_indices(name).any(|(at, _)| {
        let before = line[..at].chars().next_back();
        let after = line[at + name.len()..].chars().next();
        let runs_on_before = starts_ident && before.is_some_and(ident);
        let runs_on_after = ends_ident && after.is_some_and(ident);
        !runs_on_before && !runs_on_after
    })
}

#[test]
fn the_verifier_holds_no_operator_code() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../verifier/src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    assert!(
        files.len() > 20,
        "found only {} files under {}",
        files.len(),
        src.display()
    );
    let mut found = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        for (n, line) in text.lines().enumerate() {
            if line.trim_start().starts_with("//") {
                continue;
            }
            for (name, home) in OPERATOR_ONLY {
                if has_word(line, name) {
                    found.push(format!("{}:{}: {name} (belongs in {home})", file.display(), n + 1));
                }
            }
        }
    }
    assert!(found.is_empty(), "operator code in verifier/src:\n{}", found.join("\n"));
}

#[test]
fn the_check_sees_what_it_looks_for() {
    assert!(has_word("pub struct NoteSignerKey {", "NoteSignerKey"));
    assert!(has_word("x.sign_by(&keys)", "sign_by"));
    assert!(!has_word("fn sign_by_hand()", "sign_by"));
    assert!(!has_word("NoteSignerKeys", "NoteSignerKey"));
    assert!(has_word("\"PRIVATE+KEY+name\"", "PRIVATE+KEY+"));
}
