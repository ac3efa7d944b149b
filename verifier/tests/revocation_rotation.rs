//! Checks spec/vectors/revocation/rotation.json (spec/revocation.md §5.2): the rotation
//! statement of two fixed log keys (Ed25519 seeds), its exact leaf bytes and leaf hash, the
//! checkpoint of the one-leaf tree holding it signed by both keys (what a transition period
//! publishes), and statements that MUST be refused, each naming its `RotationError` variant.
//! Signatures are deterministic: `WEIGHTSEAL_REGEN_VECTORS=1 cargo test -p weightseal-verifier
//! --test revocation_rotation` rewrites the identical file unless the format changed.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test fails by panicking"
)]

use std::path::PathBuf;

use ed25519_dalek::SigningKey;
use serde_json::{json, Value};
use weightseal_log::note::{sign_note_by, NoteSignerKey};
use weightseal_log::rotation::sign_rotation;
use weightseal_log::snapshot::sign_checkpoint_by;
use weightseal_verifier::revocation::merkle;
use weightseal_verifier::revocation::note::Checkpoint;
use weightseal_verifier::revocation::rotation::{RotationStatement, ROTATION_HEADER};
use weightseal_verifier::revocation::snapshot::{open_checkpoint, DEFAULT_ORIGIN};

const OLD_SEED: [u8; 32] = [0x71; 32];
const NEW_SEED: [u8; 32] = [0x72; 32];
const OTHER_SEED: [u8; 32] = [0x73; 32];

fn path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../spec/vectors/revocation/rotation.json")
}

fn signer(seed: &[u8; 32]) -> NoteSignerKey {
    NoteSignerKey::new(DEFAULT_ORIGIN, SigningKey::from_bytes(seed)).unwrap()
}

fn generate() -> Value {
    let (old, new, other) = (signer(&OLD_SEED), signer(&NEW_SEED), signer(&OTHER_SEED));
    let (statement, leaf) = sign_rotation(&old, &new).unwrap();
    let text = String::from_utf8(leaf.clone()).unwrap();
    let body = statement.body();
    let sigs: Vec<&str> = text[body.len() + 1..].lines().collect();
    let leaf_hash = merkle::leaf_hash(&leaf);
    let checkpoint = Checkpoint {
        origin: DEFAULT_ORIGIN.to_owned(),
        size: 1,
        root: leaf_hash,
        extensions: vec![],
    };
    let transition = sign_checkpoint_by(&checkpoint, &[&new, &old]).unwrap();
    let (_, to_other) = sign_rotation(&old, &other).unwrap();
    let to_other = String::from_utf8(to_other).unwrap();
    let negative = |name: &str, leaf: String, error: &str| json!({"name": name, "leaf": leaf, "error": error});
    json!({
        "comment": "spec/revocation.md §5.2. Keys are Ed25519 seeds (hex); leaves are the exact UTF-8 leaf bytes. Regenerate: WEIGHTSEAL_REGEN_VECTORS=1 cargo test -p weightseal-verifier --test revocation_rotation",
        "origin": DEFAULT_ORIGIN,
        "old_seed": hex::encode(OLD_SEED),
        "new_seed": hex::encode(NEW_SEED),
        "old_vkey": old.verifier_key().to_string(),
        "new_vkey": new.verifier_key().to_string(),
        "body": body,
        "leaf": text,
        "leaf_hash": hex::encode(leaf_hash),
        "transition_checkpoint": transition,
        "negative": [
            negative("only the old key's signature", format!("{body}\n{}\n", sigs[0]), "SignatureCount"),
            negative("only the new key's signature", format!("{body}\n{}\n", sigs[1]), "SignatureCount"),
            negative("the signatures swapped", format!("{body}\n{}\n{}\n", sigs[1], sigs[0]), "SignatureOrder"),
            negative("a third signature", format!("{text}{}\n", sigs[0]), "SignatureCount"),
            negative(
                "another key's signature in place of the new key's",
                sign_note_by(&body, &[&old, &other]).unwrap(),
                "SignatureOrder"
            ),
            negative(
                "the new key substituted into a statement announcing another key",
                to_other.replace(&other.verifier_key().to_string(), &new.verifier_key().to_string()),
                "BadSignature"
            ),
            negative(
                "another header",
                text.replace(ROTATION_HEADER, "weightseal-log-rotation/v2"),
                "Header"
            ),
            negative("an extra body line", text.replacen(&body, &format!("{body}time 1\n"), 1), "LineCount"),
            negative("old and new swapped in the body", text.replacen("\nold ", "\nnew ", 1), "KeyLine"),
            negative(
                "the same key twice",
                sign_note_by(&body.replace(&new.verifier_key().to_string(), &old.verifier_key().to_string()), &[&old, &old]).unwrap(),
                "SameKey"
            ),
        ],
    })
}

#[test]
fn rotation_vectors() {
    let generated = generate();
    let text = serde_json::to_string_pretty(&generated).unwrap() + "\n";
    if std::env::var("WEIGHTSEAL_REGEN_VECTORS").is_ok_and(|v| v == "1") {
        std::fs::write(path(), &text).unwrap();
    }
    let stored: Value = serde_json::from_str(&std::fs::read_to_string(path()).unwrap()).unwrap();
    assert_eq!(
        stored, generated,
        "spec/vectors/revocation/rotation.json is out of date"
    );

    // The stored statement verifies and announces the stored new key.
    let statement = RotationStatement::from_leaf(stored["leaf"].as_str().unwrap().as_bytes()).unwrap();
    assert_eq!(statement.old_key().to_string(), stored["old_vkey"]);
    assert_eq!(statement.new_key().to_string(), stored["new_vkey"]);
    assert_eq!(
        statement.follow(std::slice::from_ref(statement.old_key())),
        Some(vec![statement.new_key().clone()])
    );
    assert_eq!(
        hex::encode(merkle::leaf_hash(stored["leaf"].as_str().unwrap().as_bytes())),
        stored["leaf_hash"]
    );
    // The transition checkpoint opens under either key alone.
    let note = stored["transition_checkpoint"].as_str().unwrap().as_bytes();
    for key in [statement.old_key(), statement.new_key()] {
        let cp = open_checkpoint(note, std::slice::from_ref(key)).unwrap();
        assert_eq!(hex::encode(cp.root), stored["leaf_hash"]);
    }
    for n in stored["negative"].as_array().unwrap() {
        let err = RotationStatement::from_leaf(n["leaf"].as_str().unwrap().as_bytes())
            .expect_err(n["name"].as_str().unwrap());
        let name = format!("{err:?}");
        assert!(
            name.starts_with(n["error"].as_str().unwrap()),
            "{}: expected {}, got {name}",
            n["name"],
            n["error"]
        );
    }
}

/// A state that followed a rotation keeps the new key across a reopen, and a state file that
/// lost the followed keys disagrees with the rotation statement its leaves commit: the state
/// is refused as corrupt rather than silently pinned back to the old key.
#[test]
fn a_followed_rotation_is_persisted_and_checked_against_the_leaves_on_load() {
    use ciborium::Value as Cbor;
    use weightseal_log::testing::Publisher;
    use weightseal_verifier::revocation::state::{DirSource, RevocationError, RevocationState, STATE_FILE};

    let (old, new) = (signer(&OLD_SEED), signer(&NEW_SEED));
    let mut log = Publisher::new(new.clone());
    log.also_signed_by = vec![old.clone()];
    log.append_raw(sign_rotation(&old, &new).unwrap().1);
    let export = tempfile::tempdir().unwrap();
    log.export(export.path(), 1000).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut state = RevocationState::open(dir.path(), vec![old.verifier_key()]).unwrap();
    state.sync(&DirSource::new(export.path()), 1001).unwrap();
    assert_eq!(state.keys(), &[new.verifier_key()]);
    assert_eq!(state.size(), 1);
    assert!(state.entries().is_empty());
    drop(state);
    let state = RevocationState::open(dir.path(), vec![old.verifier_key()]).unwrap();
    assert_eq!(state.keys(), &[new.verifier_key()]);
    drop(state);
    // Drop the followed keys from the state file, keeping the rest of its deterministic
    // CBOR map as it was.
    let path = dir.path().join(STATE_FILE);
    let Cbor::Map(fields) = ciborium::de::from_reader::<Cbor, _>(std::fs::read(&path).unwrap().as_slice()).unwrap()
    else {
        panic!("the state file is a CBOR map");
    };
    let keys = Cbor::Text("keys".into());
    assert_eq!(
        fields.iter().find(|(k, _)| *k == keys).map(|(_, v)| v.clone()),
        Some(Cbor::Array(vec![Cbor::Text(new.verifier_key().to_string())]))
    );
    let mut bytes = Vec::new();
    ciborium::ser::into_writer(
        &Cbor::Map(fields.into_iter().filter(|(k, _)| *k != keys).collect()),
        &mut bytes,
    )
    .unwrap();
    std::fs::write(&path, bytes).unwrap();
    assert!(matches!(
        RevocationState::open(dir.path(), vec![old.verifier_key()]),
        Err(RevocationError::Corrupt { .. })
    ));
}
