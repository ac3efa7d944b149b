//! Checks spec/vectors/revocation/vectors.json: fixed keys (hex seeds), the exact bytes
//! of example entries, their leaf hashes, the tree root, a signed checkpoint and
//! snapshot, a tile, a consistency proof, and negative vectors that name the error they
//! must produce. `WEIGHTSEAL_REGEN_VECTORS=1` rewrites the file (signatures are
//! deterministic, so regenerating an unchanged format gives the same file).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test fails by panicking"
)]

use std::path::PathBuf;

use ed25519_dalek::SigningKey;
use serde_json::{json, Value};
use weightseal_log::cosignature::WitnessSigner;
use weightseal_log::note::NoteSignerKey;
use weightseal_log::snapshot::{sign_checkpoint, sign_snapshot, snapshot_for_checkpoint};
use weightseal_log::testing::public;
use weightseal_verifier::revocation::cosignature::{cosigned_message, WitnessKey, WitnessPolicy};
use weightseal_verifier::revocation::entry::{
    select_content, Action, BatchSubmission, Entry, Reason, SignedEntry, Subject,
};
use weightseal_verifier::revocation::merkle::{self, MerkleTree};
use weightseal_verifier::revocation::note::NoteVerifierKey;
use weightseal_verifier::revocation::policy::KeyLiveness;
use weightseal_verifier::revocation::snapshot::{open_checkpoint, Snapshot, DEFAULT_ORIGIN};
use weightseal_verifier::revocation::tile::{decode_tile, encode_tile, HashTileRef, TileRef};
use weightseal_verifier::Digest;
use weightseal_verifier::{Chunk, ChunkRole, FileEntry, FileKind};

const HUB_SEED: [u8; 32] = [0x01; 32];
const LAB_SEED: [u8; 32] = [0x02; 32];
const LAB_SIGNING_SEED: [u8; 32] = [0x03; 32];
const LOG_SEED: [u8; 32] = [0x0f; 32];
const WITNESS_SEEDS: [[u8; 32]; 3] = [[0x21; 32], [0x22; 32], [0x23; 32]];
const WITNESS_NAMES: [&str; 3] = ["witness.example/w1", "witness.example/w2", "witness.example/w3"];
const TIME: u64 = 1_750_000_000;

fn path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../spec/vectors/revocation/vectors.json")
}

fn error_name(debug: &str) -> String {
    debug
        .split(|c: char| !c.is_alphanumeric() && c != '_')
        .next()
        .unwrap_or_default()
        .to_string()
}

/// Builds every vector from the fixed seeds.
fn generate() -> Value {
    let hub = SigningKey::from_bytes(&HUB_SEED);
    let lab = SigningKey::from_bytes(&LAB_SEED);
    let lab_signing = SigningKey::from_bytes(&LAB_SIGNING_SEED);
    let log = NoteSignerKey::new(DEFAULT_ORIGIN, SigningKey::from_bytes(&LOG_SEED)).unwrap();
    let examples: Vec<(&str, &SigningKey, Entry)> = vec![
        (
            "hub revokes a derivative manifest",
            &hub,
            Entry {
                subject: Subject::manifest(Digest::of(b"example derivative manifest")),
                action: Action::Revoke,
                reason: Reason::GuardrailsRemoved,
                issuer: public(&hub),
                time: TIME,
                evidence: Some("https://hub.example/reports/42".into()),
            },
        ),
        (
            "hub revokes a tensor (content) digest",
            &hub,
            Entry {
                subject: Subject::content(Digest::of(b"example tensor bytes")),
                action: Action::Revoke,
                reason: Reason::MaliciousPayload,
                issuer: public(&hub),
                time: TIME + 1,
                evidence: None,
            },
        ),
        (
            "lab revokes its compromised signing key",
            &lab,
            Entry {
                subject: Subject::key(public(&lab_signing).id()),
                action: Action::Revoke,
                reason: Reason::KeyCompromise,
                issuer: public(&lab),
                time: TIME + 2,
                evidence: None,
            },
        ),
        (
            "hub reinstates the manifest",
            &hub,
            Entry {
                subject: Subject::manifest(Digest::of(b"example derivative manifest")),
                action: Action::Reinstate,
                reason: Reason::Other,
                issuer: public(&hub),
                time: TIME + 3,
                evidence: Some("https://hub.example/reports/42#appeal".into()),
            },
        ),
    ];
    let mut tree = MerkleTree::new();
    let mut entries = Vec::new();
    let mut leaves = Vec::new();
    for (name, key, e) in &examples {
        let s = e.sign(key).unwrap();
        tree.push(s.leaf_hash());
        leaves.push(s.as_bytes().to_vec());
        entries.push(json!({
            "name": name,
            "subject_type": e.subject.kind.as_str(),
            "subject_digest": e.subject.digest.to_hex(),
            "action": e.action.as_str(),
            "reason": e.reason.as_str(),
            "issuer": hex::encode(e.issuer.to_raw()),
            "time": e.time,
            "evidence": e.evidence,
            "entry_hex": hex::encode(s.entry_bytes()),
            "signature_hex": hex::encode(s.signature()),
            "signed_entry_hex": hex::encode(s.as_bytes()),
            "leaf_hash_hex": hex::encode(s.leaf_hash()),
        }));
    }
    let checkpoint = weightseal_verifier::revocation::note::Checkpoint {
        origin: DEFAULT_ORIGIN.into(),
        size: tree.len(),
        root: tree.root(),
        extensions: vec![],
    };
    let checkpoint_note = sign_checkpoint(&checkpoint, &log).unwrap();
    let snapshot = snapshot_for_checkpoint(&checkpoint, 7, TIME + 60, 86_400);
    let snapshot_note = sign_snapshot(&snapshot, &log).unwrap();
    let tile = encode_tile(&leaves).unwrap();
    let proof = tree.consistency_proof(2, 4).unwrap();
    // §5.1: cosignatures by two of three witnesses, at fixed times.
    let witnesses: Vec<WitnessSigner> = WITNESS_SEEDS
        .iter()
        .zip(WITNESS_NAMES)
        .map(|(seed, name)| WitnessSigner::new(name, SigningKey::from_bytes(seed)).unwrap())
        .collect();
    let body = checkpoint.to_body();
    let cosigned_note = format!(
        "{checkpoint_note}{}{}",
        witnesses[0].cosign(&body, TIME + 61).unwrap(),
        witnesses[2].cosign(&body, TIME + 62).unwrap()
    );
    let cosignatures = json!({
        "witnesses": witnesses.iter().zip(WITNESS_SEEDS).map(|(w, seed)| json!({
            "name": w.public().name(),
            "seed": hex::encode(seed),
            "verifier_key": w.public().to_string(),
        })).collect::<Vec<_>>(),
        "signed_message_w1": cosigned_message(&body, TIME + 61),
        "cosigned_checkpoint_note": cosigned_note,
        "quorum_2_of_3": "accepted: witness.example/w1 and witness.example/w3 cosigned",
        "negative": [
            {"name": "log signature only, 1 of 3 required", "quorum": 1, "note": checkpoint_note, "error": "QuorumNotMet"},
            {"name": "two cosignatures, 3 of 3 required", "quorum": 3, "note": cosigned_note, "error": "QuorumNotMet"},
            {"name": "a cosignature moved to a checkpoint of another size", "quorum": 1,
             "note": format!("{}{}", sign_checkpoint(&weightseal_verifier::revocation::note::Checkpoint { size: 3, root: tree.root_at(3).unwrap(), ..checkpoint.clone() }, &log).unwrap(),
                 witnesses[0].cosign(&body, TIME + 61).unwrap()),
             "error": "QuorumNotMet"},
        ],
    });
    let hash_tile = HashTileRef {
        level: 0,
        index: 0,
        width: 4,
    };

    // Negative vectors.
    let good = SignedEntry::from_bytes(&leaves[0]).unwrap();
    let mut bad_sig = leaves[0].clone();
    let n = bad_sig.len();
    bad_sig[n - 1] ^= 0x01;
    let unknown_reason = {
        let text = hex::encode(good.entry_bytes());
        // "guardrails-removed" → "guardrails-remove!" (same length)
        let from = hex::encode(b"guardrails-removed");
        let to = hex::encode(b"guardrails-remove!");
        hex::decode(text.replace(&from, &to)).unwrap()
    };
    let other_log = NoteSignerKey::new(DEFAULT_ORIGIN, SigningKey::from_bytes(&[0xee; 32])).unwrap();
    let expired_window = Snapshot {
        expires: snapshot.issued,
        ..snapshot.clone()
    };
    let negatives = json!([
        {"name": "signature bit flipped", "kind": "signed_entry", "hex": hex::encode(&bad_sig), "error": "BadSignature"},
        {"name": "entry with unknown reason (not re-signed)", "kind": "entry", "hex": hex::encode(&unknown_reason), "error": "UnknownValue"},
        {"name": "non-deterministic CBOR (integer 1 as 0x1801)", "kind": "entry",
         "hex": hex::encode(good.entry_bytes()).replacen("617601", "61761801", 1), "error": "Cbor"},
        {"name": "trailing byte after a signed entry", "kind": "signed_entry",
         "hex": format!("{}00", hex::encode(good.as_bytes())), "error": "Cbor"},
        {"name": "signed entry over 8 KiB", "kind": "signed_entry", "hex": hex::encode(vec![0u8; 8193]), "error": "TooLarge"},
        {"name": "checkpoint signed by another log key", "kind": "checkpoint_note",
         "text": sign_checkpoint(&checkpoint, &other_log).unwrap(), "error": "Note"},
        {"name": "snapshot whose expiry is not after its issue time", "kind": "snapshot_body",
         "text": format!("{}", snapshot.to_body().unwrap().replace(&format!("expires {}", snapshot.expires), &format!("expires {}", expired_window.expires))),
         "error": "BadWindow"},
        {"name": "snapshot version with a leading zero", "kind": "snapshot_body",
         "text": snapshot.to_body().unwrap().replace("version 7", "version 07"), "error": "Line"},
        {"name": "entry bundle of 4 entries read as a partial bundle of 5", "kind": "tile", "width": 5,
         "hex": hex::encode(&tile), "error": "WrongWidth"},
        {"name": "entry bundle of 4 entries read as a partial bundle of 3 (bytes left over)", "kind": "tile", "width": 3,
         "hex": hex::encode(&tile), "error": "Shape"},
        {"name": "entry bundle whose last length runs past the end", "kind": "tile", "width": 4,
         "hex": hex::encode(&tile[..tile.len() - 1]), "error": "Shape"},
    ]);
    // §6.1: a batch of the first two example entries.
    let batch = BatchSubmission {
        entries: leaves[..2]
            .iter()
            .map(|l| SignedEntry::from_bytes(l).unwrap())
            .collect(),
        authority: None,
        lineage: Vec::new(),
    }
    .to_bytes()
    .unwrap();
    let unknown_key = hex::encode(&batch).replacen(&hex::encode(b"entries"), &hex::encode(b"entrie!"), 1);
    let batch_negatives = json!([
        {"name": "the same entry twice", "kind": "batch",
         "hex": hex::encode(raw_batch(&[good.as_bytes(), good.as_bytes()])),
         "error": "Field"},
        {"name": "unknown key instead of \"entries\"", "kind": "batch", "hex": unknown_key, "error": "Field"},
        {"name": "an entry with a flipped signature bit", "kind": "batch",
         "hex": hex::encode(raw_batch(&[&leaves[1], &bad_sig])), "error": "BadSignature"},
    ]);
    // §3.1: the revoked-key rule over a sequence of entries.
    let k = Subject::key(public(&lab_signing).id());
    let step = |key: &SigningKey, subject: Subject, action: Action, t: u64| {
        Entry {
            subject,
            action,
            reason: Reason::KeyCompromise,
            issuer: public(key),
            time: TIME + t,
            evidence: None,
        }
        .sign(key)
        .unwrap()
    };
    let sequence = [
        ("the lab revokes its signing key K", step(&lab, k, Action::Revoke, 10)),
        (
            "K reinstates itself: void (K is revoked)",
            step(&lab_signing, k, Action::Reinstate, 11),
        ),
        (
            "K revokes a manifest: void (K is revoked)",
            step(
                &lab_signing,
                Subject::manifest(Digest::of(b"a rival's model")),
                Action::Revoke,
                12,
            ),
        ),
        (
            "the lab (another authority) reinstates K",
            step(&lab, k, Action::Reinstate, 13),
        ),
        (
            "K reinstates itself: void (never allowed)",
            step(&lab_signing, k, Action::Reinstate, 14),
        ),
        (
            "K revokes a manifest: counts (K is live)",
            step(
                &lab_signing,
                Subject::manifest(Digest::of(b"K's own old model")),
                Action::Revoke,
                15,
            ),
        ),
    ];
    let mut live = KeyLiveness::new();
    let key_rule: Vec<Value> = sequence
        .iter()
        .map(|(name, s)| {
            let e = s.entry();
            let void = live.apply(&e.issuer.id(), &e.subject, e.action).err();
            json!({
                "name": name,
                "signed_entry_hex": hex::encode(s.as_bytes()),
                "void": void.map(|v| error_name(&format!("{v:?}"))),
                "key_k_revoked_after": live.check(&public(&lab_signing).id(), &Subject::content(Digest::of(b"probe")), Action::Revoke).is_err(),
            })
        })
        .collect();
    json!({
        "description": "weightseal revocation test vectors (spec/revocation.md). All hex is lower case. Keys are ed25519 seeds.",
        "keys": {
            "hub_issuer_seed": hex::encode(HUB_SEED),
            "lab_issuer_seed": hex::encode(LAB_SEED),
            "lab_signing_key_seed": hex::encode(LAB_SIGNING_SEED),
            "lab_signing_key_id": public(&lab_signing).id().to_hex(),
            "log_key_seed": hex::encode(LOG_SEED),
            "log_origin": DEFAULT_ORIGIN,
            "log_verifier_key": log.verifier_key().to_string(),
        },
        "entries": entries,
        "tree": {
            "size": tree.len(),
            "root_hex": hex::encode(tree.root()),
            "checkpoint_note": checkpoint_note,
            "snapshot": {"version": 7, "issued": TIME + 60, "expires": TIME + 60 + 86_400},
            "snapshot_note": snapshot_note,
            "tile_path": TileRef::new(0, 4).unwrap().path(),
            "tile_hex": hex::encode(&tile),
            "hash_tile_path": hash_tile.path(),
            "hash_tile_hex": hex::encode(tree.hash_tile(0, 0, 4).unwrap()),
            "consistency_2_4_hex": proof.iter().map(hex::encode).collect::<Vec<_>>(),
        },
        "negative": negatives,
        "batch_submission": {
            "entries": [entries[0]["name"], entries[1]["name"]],
            "hex": hex::encode(&batch),
            "negative": batch_negatives,
        },
        "key_rule": key_rule,
        "fork_content": fork_content(),
        "cosignatures": cosignatures,
    })
}

/// §6.3: a fork sharing two of its three tensors with its parent; its config.json is a
/// plain file. The revocation holds the fork's weight file and its one changed tensor.
fn fork_content() -> Value {
    let d = |s: &str| Digest::of(s.as_bytes()).to_hex();
    let file = |path: &str, kind: &str, digest: &str, chunks: Value| json!({"path": path, "kind": kind, "digest": d(digest), "chunks": chunks});
    let tensor = |name: &str, digest: &str| json!({"kind": "tensor", "name": name, "len": 64, "digest": d(digest)});
    let header = |digest: &str| json!({"kind": "header", "len": 32, "digest": d(digest)});
    let parent = json!([file(
        "model.safetensors",
        "safetensors",
        "parent file",
        json!([
            header("parent header"),
            tensor("a", "tensor a"),
            tensor("b", "tensor b"),
            tensor("c", "tensor c")
        ])
    )]);
    let fork = json!([
        file(
            "config.json",
            "raw",
            "config file",
            json!([{"kind": "data", "len": 10, "digest": d("config bytes")}])
        ),
        file(
            "model.safetensors",
            "safetensors",
            "fork file",
            json!([
                header("fork header"),
                tensor("a", "tensor a"),
                tensor("b", "tensor b"),
                tensor("c", "tensor c, fine-tuned")
            ])
        ),
    ]);
    let selection = select_content(&files_of(&fork), &[digests_of(&files_of(&parent))], false);
    json!({
        "parent": parent,
        "fork": fork,
        "revoke": selection.revoke.iter().map(|(d, w)| json!({"digest": d.to_hex(), "what": w})).collect::<Vec<_>>(),
        "shared": selection.shared.iter().map(|(d, w, _)| json!({"digest": d.to_hex(), "what": w})).collect::<Vec<_>>(),
    })
}

fn files_of(v: &Value) -> Vec<FileEntry> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let mut offset = 0;
            let chunks: Vec<Chunk> = f["chunks"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| {
                    let len = c["len"].as_u64().unwrap();
                    let role = match c["kind"].as_str().unwrap() {
                        "header" => ChunkRole::Header,
                        "tensor" => ChunkRole::Tensor(c["name"].as_str().unwrap().into()),
                        _ => ChunkRole::Data,
                    };
                    let chunk = Chunk {
                        role,
                        offset,
                        len,
                        digest: c["digest"].as_str().unwrap().parse().unwrap(),
                    };
                    offset += len;
                    chunk
                })
                .collect();
            FileEntry {
                path: f["path"].as_str().unwrap().into(),
                size: offset,
                kind: match f["kind"].as_str().unwrap() {
                    "safetensors" => FileKind::Safetensors,
                    "gguf" => FileKind::Gguf,
                    _ => FileKind::Raw,
                },
                chunk_size: None,
                chunks,
                digest: f["digest"].as_str().unwrap().parse().unwrap(),
            }
        })
        .collect()
}

fn digests_of(files: &[FileEntry]) -> std::collections::BTreeSet<Digest> {
    files
        .iter()
        .flat_map(|f| std::iter::once(f.digest).chain(f.chunks.iter().map(|c| c.digest)))
        .collect()
}

#[test]
fn fork_content_vector_holds() {
    let v: Value = serde_json::from_str(&std::fs::read_to_string(path()).unwrap()).unwrap();
    let fc = &v["fork_content"];
    let parent = digests_of(&files_of(&fc["parent"]));
    let fork = files_of(&fc["fork"]);
    let pairs = |list: &[(Digest, String)]| -> Value {
        json!(list
            .iter()
            .map(|(d, w)| json!({"digest": d.to_hex(), "what": w}))
            .collect::<Vec<_>>())
    };
    let default = select_content(&fork, std::slice::from_ref(&parent), false);
    assert_eq!(pairs(&default.revoke), fc["revoke"]);
    let shared: Vec<(Digest, String)> = default.shared.iter().map(|(d, w, _)| (*d, w.clone())).collect();
    assert_eq!(pairs(&shared), fc["shared"]);
    assert_eq!(fc["revoke"].as_array().unwrap().len(), 2);
    assert_eq!(fc["shared"].as_array().unwrap().len(), 2);
    // The explicit flag adds exactly the shared digests.
    let all = select_content(&fork, &[parent], true);
    assert_eq!(all.revoke.len(), 4);
}

/// `{"entries": [leaf, …]}` with the given leaves, bypassing the encoder's checks.
fn raw_batch(leaves: &[&[u8]]) -> Vec<u8> {
    // Map of one key ("entries", 7 bytes), an array of byte strings: hand-encoded so that
    // invalid contents (a bad signature, a duplicate) can be expressed.
    let mut out = vec![0xa1, 0x67];
    out.extend_from_slice(b"entries");
    assert!(leaves.len() < 24);
    out.push(0x80 | leaves.len() as u8);
    for l in leaves {
        let n = l.len();
        if n < 24 {
            out.push(0x40 | n as u8);
        } else if n < 256 {
            out.extend_from_slice(&[0x58, n as u8]);
        } else {
            out.extend_from_slice(&[0x59, (n >> 8) as u8, n as u8]);
        }
        out.extend_from_slice(l);
    }
    out
}

#[test]
fn batch_and_key_rule_vectors_hold() {
    let v: Value = serde_json::from_str(&std::fs::read_to_string(path()).unwrap()).unwrap();
    let b = &v["batch_submission"];
    let decoded = BatchSubmission::from_bytes(&h(&b["hex"])).unwrap();
    let names: Vec<&str> = v["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(decoded.entries.len(), 2);
    for (e, name) in decoded.entries.iter().zip(b["entries"].as_array().unwrap()) {
        let i = names.iter().position(|n| Some(*n) == name.as_str()).unwrap();
        assert_eq!(
            hex::encode(e.as_bytes()),
            v["entries"][i]["signed_entry_hex"].as_str().unwrap()
        );
    }
    for n in b["negative"].as_array().unwrap() {
        let err = BatchSubmission::from_bytes(&h(&n["hex"])).unwrap_err();
        assert_eq!(
            error_name(&format!("{err:?}")),
            n["error"].as_str().unwrap(),
            "{}",
            n["name"]
        );
    }
    let mut live = KeyLiveness::new();
    for step in v["key_rule"].as_array().unwrap() {
        let s = SignedEntry::from_bytes(&h(&step["signed_entry_hex"])).unwrap();
        let e = s.entry();
        let void = live.apply(&e.issuer.id(), &e.subject, e.action).err();
        assert_eq!(
            void.map(|v| error_name(&format!("{v:?}"))).as_deref(),
            step["void"].as_str(),
            "{}",
            step["name"]
        );
        let k = SignedEntry::from_bytes(&h(&v["key_rule"][0]["signed_entry_hex"])).unwrap();
        let k_id: weightseal_verifier::KeyId = k.entry().subject.digest.to_hex().parse().unwrap();
        let revoked = live
            .check(&k_id, &Subject::content(Digest::of(b"probe")), Action::Revoke)
            .is_err();
        assert_eq!(Some(revoked), step["key_k_revoked_after"].as_bool(), "{}", step["name"]);
    }
}

#[test]
fn vectors_match_the_spec_file() {
    let generated = generate();
    if std::env::var_os("WEIGHTSEAL_REGEN_VECTORS").is_some() {
        std::fs::create_dir_all(path().parent().unwrap()).unwrap();
        std::fs::write(path(), serde_json::to_string_pretty(&generated).unwrap() + "\n").unwrap();
    }
    let stored: Value = serde_json::from_str(&std::fs::read_to_string(path()).unwrap()).unwrap();
    assert_eq!(stored, generated, "spec/vectors/revocation/vectors.json is out of date");
}

fn h(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().unwrap()).unwrap()
}

#[test]
fn stored_vectors_verify_independently() {
    let v: Value = serde_json::from_str(&std::fs::read_to_string(path()).unwrap()).unwrap();
    let log_key: NoteVerifierKey = v["keys"]["log_verifier_key"].as_str().unwrap().parse().unwrap();
    let mut tree = MerkleTree::new();
    for e in v["entries"].as_array().unwrap() {
        let bytes = h(&e["signed_entry_hex"]);
        let s = SignedEntry::from_bytes(&bytes).unwrap();
        assert_eq!(s.entry_bytes(), h(&e["entry_hex"]).as_slice());
        assert_eq!(s.signature().to_vec(), h(&e["signature_hex"]));
        assert_eq!(merkle::leaf_hash(&bytes).to_vec(), h(&e["leaf_hash_hex"]));
        let entry = s.entry();
        assert_eq!(entry.subject.kind.as_str(), e["subject_type"]);
        assert_eq!(entry.subject.digest.to_hex(), e["subject_digest"]);
        assert_eq!(entry.action.as_str(), e["action"]);
        assert_eq!(entry.reason.as_str(), e["reason"]);
        assert_eq!(entry.time, e["time"].as_u64().unwrap());
        assert_eq!(entry.evidence.as_deref(), e["evidence"].as_str());
        tree.push(merkle::leaf_hash(&bytes));
    }
    let t = &v["tree"];
    assert_eq!(tree.root().to_vec(), h(&t["root_hex"]));
    let cp = open_checkpoint(
        t["checkpoint_note"].as_str().unwrap().as_bytes(),
        std::slice::from_ref(&log_key),
    )
    .unwrap();
    assert_eq!((cp.size, cp.root), (tree.len(), tree.root()));
    let snap = Snapshot::open(t["snapshot_note"].as_str().unwrap().as_bytes(), &[log_key]).unwrap();
    assert!(snap.matches(&cp));
    assert_eq!(snap.version, t["snapshot"]["version"].as_u64().unwrap());
    let tile = TileRef::parse_path(t["tile_path"].as_str().unwrap()).unwrap();
    let leaves = decode_tile(&h(&t["tile_hex"]), tile).unwrap();
    assert_eq!(leaves.len(), 4);
    let proof: Vec<[u8; 32]> = t["consistency_2_4_hex"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| h(x).try_into().unwrap())
        .collect();
    merkle::verify_consistency(2, 4, &tree.root_at(2).unwrap(), &tree.root(), &proof).unwrap();
    // The level-0 hash tile is the four leaf hashes, one after the other.
    assert_eq!(
        HashTileRef::parse_path(t["hash_tile_path"].as_str().unwrap()),
        Some(HashTileRef {
            level: 0,
            index: 0,
            width: 4
        })
    );
    let hashes = h(&t["hash_tile_hex"]);
    for (i, l) in leaves.iter().enumerate() {
        assert_eq!(hashes[i * 32..(i + 1) * 32], merkle::leaf_hash(l));
    }
}

#[test]
fn cosignature_vectors_hold() {
    let v: Value = serde_json::from_str(&std::fs::read_to_string(path()).unwrap()).unwrap();
    let c = &v["cosignatures"];
    let keys: Vec<WitnessKey> = c["witnesses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            let key: WitnessKey = w["verifier_key"].as_str().unwrap().parse().unwrap();
            let seed: [u8; 32] = h(&w["seed"]).try_into().unwrap();
            assert_eq!(*key.key(), SigningKey::from_bytes(&seed).verifying_key());
            assert_eq!(key.name(), w["name"].as_str().unwrap());
            key
        })
        .collect();
    let note = c["cosigned_checkpoint_note"].as_str().unwrap();
    let log_key: NoteVerifierKey = v["keys"]["log_verifier_key"].as_str().unwrap().parse().unwrap();
    open_checkpoint(note.as_bytes(), &[log_key]).unwrap();
    let ok = WitnessPolicy::new(keys.clone(), 2).unwrap().check(note).unwrap();
    let names: Vec<&str> = ok.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["witness.example/w1", "witness.example/w3"]);
    assert_eq!(ok[0].1, TIME + 61);
    assert!(c["signed_message_w1"]
        .as_str()
        .unwrap()
        .starts_with("cosignature/v1\ntime 1750000061\n"));
    for n in c["negative"].as_array().unwrap() {
        let policy = WitnessPolicy::new(keys.clone(), n["quorum"].as_u64().unwrap() as usize).unwrap();
        let err = policy.check(n["note"].as_str().unwrap()).unwrap_err();
        assert_eq!(
            error_name(&format!("{err:?}")),
            n["error"].as_str().unwrap(),
            "{}",
            n["name"]
        );
    }
}

#[test]
fn negative_vectors_produce_their_named_errors() {
    let v: Value = serde_json::from_str(&std::fs::read_to_string(path()).unwrap()).unwrap();
    let log_key: NoteVerifierKey = v["keys"]["log_verifier_key"].as_str().unwrap().parse().unwrap();
    for n in v["negative"].as_array().unwrap() {
        let name = n["name"].as_str().unwrap();
        let debug = match n["kind"].as_str().unwrap() {
            "signed_entry" => format!("{:?}", SignedEntry::from_bytes(&h(&n["hex"])).unwrap_err()),
            "entry" => format!("{:?}", Entry::from_bytes(&h(&n["hex"])).unwrap_err()),
            "checkpoint_note" => format!(
                "{:?}",
                open_checkpoint(n["text"].as_str().unwrap().as_bytes(), std::slice::from_ref(&log_key)).unwrap_err()
            ),
            "snapshot_body" => format!("{:?}", Snapshot::parse_body(n["text"].as_str().unwrap()).unwrap_err()),
            "tile" => {
                let tile = TileRef::new(0, n["width"].as_u64().unwrap()).unwrap();
                format!("{:?}", decode_tile(&h(&n["hex"]), tile).unwrap_err())
            }
            other => panic!("unknown kind {other}"),
        };
        assert_eq!(error_name(&debug), n["error"].as_str().unwrap(), "{name}: {debug}");
    }
}
