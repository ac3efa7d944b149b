//! `lineage` entries on the client (spec/revocation.md §2.3, §7.2 step 7a, §8): a sync keeps
//! the document each entry names, checked against the entry's digest, and fails closed when
//! the source does not serve it or serves another one; a bundle carries the documents; the
//! state folder gives them back after a reopen; the decision flags descendants of the fork
//! and passes a sibling fine-tune.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test fails by panicking"
)]

use std::fs;
use std::path::Path;

use ed25519_dalek::SigningKey;
use tempfile::TempDir;
use weightseal_log::note::NoteSignerKey;
use weightseal_log::testing::{public, Publisher};
use weightseal_verifier::decision::lineage_hits;
use weightseal_verifier::fingerprint::lineage::ForkDelta;
use weightseal_verifier::fingerprint::{plan, Fingerprint, TensorPrint};
use weightseal_verifier::revocation::bundle::Bundle;
use weightseal_verifier::revocation::entry::{Action, Entry, Reason, Subject};
use weightseal_verifier::revocation::lineage::{lineage_path, LineageDoc, LineageDocError};
use weightseal_verifier::revocation::snapshot::DEFAULT_ORIGIN;
use weightseal_verifier::revocation::state::{DirSource, Matched, RevocationError, RevocationState, LINEAGE_DIR};

const NOW: u64 = 1_700_000_000;

fn log_key() -> NoteSignerKey {
    NoteSignerKey::new(DEFAULT_ORIGIN, SigningKey::from_bytes(&[0x42; 32])).unwrap()
}

fn hub() -> SigningKey {
    SigningKey::from_bytes(&[0x11; 32])
}

/// Deterministic values in [-0.5, 0.5).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> f32 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 40) as f32 / (1u64 << 24) as f32) - 0.5
    }
}

fn model(seed: u64) -> Fingerprint {
    let mut g = Lcg(seed);
    Fingerprint {
        tensors: (0..4)
            .map(|i| TensorPrint {
                name: format!("m.safetensors/t{i}"),
                dtype: "F32".into(),
                rows: 32,
                cols: 32,
                values: (0..plan(32, 32).len()).map(|_| g.next()).collect(),
            })
            .collect(),
    }
}

fn plus(a: &Fingerprint, d: &Fingerprint, k: f32) -> Fingerprint {
    let mut out = a.clone();
    for (t, dt) in out.tensors.iter_mut().zip(&d.tensors) {
        for (v, dv) in t.values.iter_mut().zip(&dt.values) {
            *v += k * dv;
        }
    }
    out
}

fn doc() -> LineageDoc {
    let base = model(1);
    let fork = plus(&base, &model(2), 0.02);
    LineageDoc::new(&ForkDelta::new(&base, &fork)).unwrap()
}

/// A published log holding one `lineage` revocation, exported to `export` with or without
/// its document.
fn publish(export: &Path, doc: &LineageDoc, with_document: Option<&[u8]>) {
    let mut p = Publisher::new(log_key());
    let entry = Entry {
        subject: doc.subject(),
        action: Action::Revoke,
        reason: Reason::GuardrailsRemoved,
        issuer: public(&hub()),
        time: NOW,
        evidence: None,
    }
    .sign(&hub())
    .unwrap();
    p.append(&entry);
    p.export(export, NOW - 60).unwrap();
    if let Some(bytes) = with_document {
        let path = export.join(lineage_path(&doc.digest()));
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, bytes).unwrap();
    }
}

#[test]
fn sync_keeps_the_document_and_a_reopened_state_gives_it_back() {
    let tmp = TempDir::new().unwrap();
    let export = tmp.path().join("export");
    let state_dir = tmp.path().join("state");
    let doc = doc();
    publish(&export, &doc, Some(doc.as_bytes()));
    let mut state = RevocationState::open(&state_dir, vec![log_key().verifier_key()]).unwrap();
    state.sync(&DirSource::new(&export), NOW).unwrap();
    assert_eq!(state.revoked_lineage().len(), 1);
    assert_eq!(state.lineage_document(&doc.digest()).unwrap(), doc);
    assert!(state_dir.join(LINEAGE_DIR).join(doc.digest().to_hex()).is_file());
    let reopened = RevocationState::open(&state_dir, vec![log_key().verifier_key()]).unwrap();
    assert_eq!(reopened.lineage_document(&doc.digest()).unwrap(), doc);

    // A bundle of that state carries the document; importing it into a fresh in-memory state
    // (an air-gapped machine) gives the same document back.
    let bundle = Bundle::from_state(&reopened).unwrap();
    assert_eq!(bundle.lineage, vec![doc.as_bytes().to_vec()]);
    let decoded = Bundle::from_bytes(&bundle.to_bytes().unwrap()).unwrap();
    let mut offline = RevocationState::in_memory(vec![log_key().verifier_key()]);
    offline.import_bundle(&decoded, NOW).unwrap();
    assert_eq!(offline.lineage_document(&doc.digest()).unwrap(), doc);

    // A bundle stripped of its document fails the import closed, naming the entry.
    let stripped = Bundle {
        lineage: Vec::new(),
        ..decoded
    };
    let mut offline = RevocationState::in_memory(vec![log_key().verifier_key()]);
    assert!(matches!(
        offline.import_bundle(&stripped, NOW),
        Err(RevocationError::MissingLineage { index: 0, .. })
    ));
    assert_eq!(offline.size(), 0);

    // A document deleted from the folder afterwards: reading it back is an error, not "none".
    fs::remove_file(state_dir.join(LINEAGE_DIR).join(doc.digest().to_hex())).unwrap();
    let reopened = RevocationState::open(&state_dir, vec![log_key().verifier_key()]).unwrap();
    assert!(matches!(
        reopened.lineage_document(&doc.digest()),
        Err(RevocationError::Corrupt { .. })
    ));
}

#[test]
fn a_missing_or_wrong_document_fails_the_sync_closed() {
    let tmp = TempDir::new().unwrap();
    let doc = doc();
    // Not served at all.
    let export = tmp.path().join("missing");
    publish(&export, &doc, None);
    let state_dir = tmp.path().join("state-missing");
    let mut state = RevocationState::open(&state_dir, vec![log_key().verifier_key()]).unwrap();
    let err = state.sync(&DirSource::new(&export), NOW).unwrap_err();
    assert!(
        matches!(err, RevocationError::MissingLineage { index: 0, digest } if digest == doc.digest()),
        "{err}"
    );
    assert_eq!(state.size(), 0);
    assert!(state.snapshot().is_none(), "nothing was committed");

    // Another (valid) document served under this digest.
    let other = {
        let base = model(7);
        LineageDoc::new(&ForkDelta::new(&base, &plus(&base, &model(8), 0.02))).unwrap()
    };
    let export = tmp.path().join("other");
    publish(&export, &doc, Some(other.as_bytes()));
    let mut state = RevocationState::in_memory(vec![log_key().verifier_key()]);
    let err = state.sync(&DirSource::new(&export), NOW).unwrap_err();
    assert!(
        matches!(&err, RevocationError::BadLineage { source, .. } if matches!(**source, LineageDocError::DigestMismatch { .. })),
        "{err}"
    );
    assert_eq!(state.size(), 0);

    // Over the size limit: refused by the source before it is read whole.
    let export = tmp.path().join("huge");
    publish(&export, &doc, None);
    let path = export.join(lineage_path(&doc.digest()));
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::File::create(&path)
        .unwrap()
        .set_len(weightseal_verifier::revocation::lineage::MAX_LINEAGE_DOC_BYTES as u64 + 1)
        .unwrap();
    let mut state = RevocationState::in_memory(vec![log_key().verifier_key()]);
    let err = state.sync(&DirSource::new(&export), NOW).unwrap_err();
    assert!(matches!(err, RevocationError::Source(_)), "{err}");
}

/// Writes a one-file F32 safetensors model whose tensors hold `print`'s values (each tensor
/// is small enough to be sampled whole, so the fingerprint reads exactly these values).
fn write_model(dir: &Path, print: &Fingerprint) {
    fs::create_dir_all(dir).unwrap();
    let bytes: Vec<Vec<u8>> = print
        .tensors
        .iter()
        .map(|t| t.values.iter().flat_map(|v| v.to_le_bytes()).collect())
        .collect();
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = print
        .tensors
        .iter()
        .zip(&bytes)
        .map(|(t, b)| {
            let name = t.name.rsplit('/').next().unwrap().to_string();
            let view = safetensors::tensor::TensorView::new(
                safetensors::Dtype::F32,
                vec![t.rows as usize, t.cols as usize],
                b,
            )
            .unwrap();
            (name, view)
        })
        .collect();
    fs::write(
        dir.join("model.safetensors"),
        safetensors::serialize(views, None).unwrap(),
    )
    .unwrap();
}

#[test]
fn the_decision_flags_descendants_and_passes_siblings() {
    let tmp = TempDir::new().unwrap();
    let base = model(1);
    let fork = plus(&base, &model(2), 0.02);
    let doc = LineageDoc::new(&ForkDelta::new(&base, &fork)).unwrap();
    let export = tmp.path().join("export");
    publish(&export, &doc, Some(doc.as_bytes()));
    let mut state = RevocationState::in_memory(vec![log_key().verifier_key()]);
    state.sync(&DirSource::new(&export), NOW).unwrap();

    let descendant = tmp.path().join("descendant");
    write_model(&descendant, &plus(&fork, &model(5), 0.01));
    let hits = lineage_hits(&state, &descendant).unwrap();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].entry.subject, Subject::lineage(doc.digest()));
    let Matched::Lineage { score, threshold, .. } = hits[0].matched else {
        panic!("{:?}", hits[0].matched)
    };
    assert!(score >= threshold && score > 0.5, "score {score}");

    let sibling = tmp.path().join("sibling");
    write_model(&sibling, &plus(&base, &model(4), 0.02));
    assert!(lineage_hits(&state, &sibling).unwrap().is_empty());

    // A model the fingerprint cannot read is refused (status unknown), not passed.
    let opaque = tmp.path().join("opaque");
    fs::create_dir_all(&opaque).unwrap();
    fs::write(opaque.join("pytorch_model.bin"), b"not a format the fingerprint reads").unwrap();
    let err = lineage_hits(&state, &opaque).unwrap_err();
    assert_eq!(err.kind(), weightseal_verifier::RefusalKind::StatusUnknown);
    assert!(err.to_string().contains("lineage revocation"), "{err}");

    // With no lineage entry held, nothing is read: even the opaque model passes this step.
    let empty = RevocationState::in_memory(vec![log_key().verifier_key()]);
    assert!(lineage_hits(&empty, &opaque).unwrap().is_empty());
}

// ---- spec/vectors/revocation/lineage.json (spec/revocation.md §10) ----

fn vectors_path() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../spec/vectors/revocation/lineage.json")
}

/// The reference implementation's variant name for an error (what each negative names).
fn variant(e: &LineageDocError) -> &'static str {
    match e {
        LineageDocError::TooLarge { .. } => "TooLarge",
        LineageDocError::Cbor(_) => "Cbor",
        LineageDocError::Field { .. } => "Field",
        LineageDocError::WrongFormat { .. } => "WrongFormat",
        LineageDocError::UnsupportedVersion { .. } => "UnsupportedVersion",
        LineageDocError::TooManyTensors { .. } => "TooManyTensors",
        LineageDocError::BadShape { .. } => "BadShape",
        LineageDocError::ValueCount { .. } => "ValueCount",
        LineageDocError::NonCanonicalNan { .. } => "NonCanonicalNan",
        LineageDocError::BadDelta { .. } => "BadDelta",
        LineageDocError::NoChange => "NoChange",
        LineageDocError::DigestMismatch { .. } => "DigestMismatch",
        _ => "unknown",
    }
}

fn le(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// A document written field by field (keys in the order given), for negatives that
/// `LineageDoc::new` would never write.
fn raw_doc(version: u64, base: &[(u64, &str, u64, Vec<u8>)], deltas: &[(u64, Vec<u8>)], format: &str) -> Vec<u8> {
    use ciborium::Value;
    let t = |s: &str| Value::Text(s.into());
    let base = base
        .iter()
        .map(|(cols, name, rows, values)| {
            Value::Map(vec![
                (t("cols"), Value::Integer((*cols).into())),
                (t("name"), t(name)),
                (t("rows"), Value::Integer((*rows).into())),
                (t("type"), t("F32")),
                (t("values"), Value::Bytes(values.clone())),
            ])
        })
        .collect();
    let deltas = deltas
        .iter()
        .map(|(tensor, values)| {
            Value::Map(vec![
                (t("tensor"), Value::Integer((*tensor).into())),
                (t("values"), Value::Bytes(values.clone())),
            ])
        })
        .collect();
    let doc = Value::Map(vec![
        (t("v"), Value::Integer(version.into())),
        (t("base"), Value::Array(base)),
        (t("deltas"), Value::Array(deltas)),
        (t("format"), t(format)),
    ]);
    let mut out = Vec::new();
    ciborium::ser::into_writer(&doc, &mut out).unwrap();
    out
}

fn generate_vectors() -> serde_json::Value {
    use serde_json::json;
    // The example: a base of two tensors (2 x 3 and 1 x 4, sampled whole) and a fork that
    // changed the first.
    let b0 = [0.5f32, -0.25, 1.0, 0.0, 2.0, -1.5];
    let b1 = [0.125f32, 0.25, -0.75, 3.0];
    let d0 = [0.01f32, 0.0, -0.02, 0.0, 0.03, 0.0];
    let delta = ForkDelta {
        base: Fingerprint {
            tensors: vec![
                TensorPrint {
                    name: "model.safetensors/w".into(),
                    dtype: "F32".into(),
                    rows: 2,
                    cols: 3,
                    values: b0.to_vec(),
                },
                TensorPrint {
                    name: "model.safetensors/norm".into(),
                    dtype: "F32".into(),
                    rows: 1,
                    cols: 4,
                    values: b1.to_vec(),
                },
            ],
        },
        deltas: vec![(0, d0.to_vec())],
    };
    let doc = LineageDoc::new(&delta).unwrap();
    let good = |v: u64, d: &[(u64, Vec<u8>)], format: &str| {
        raw_doc(
            v,
            &[
                (3, "model.safetensors/w", 2, le(&b0)),
                (4, "model.safetensors/norm", 1, le(&b1)),
            ],
            d,
            format,
        )
    };
    assert_eq!(
        good(1, &[(0, le(&d0))], "weightseal-lineage"),
        doc.as_bytes(),
        "the raw writer agrees"
    );
    let bytes = doc.as_bytes();
    let mut wide_version = bytes[..3].to_vec();
    wide_version.extend_from_slice(&[0x18, 0x01]);
    wide_version.extend_from_slice(&bytes[4..]);
    let mut nan = d0.to_vec();
    nan[1] = f32::from_bits(0x7fc0_0001);
    let unknown_key = {
        let mut b = bytes.to_vec();
        let at = b.windows(6).position(|w| w == b"format").unwrap();
        b[at] = b'F';
        b
    };
    let negatives = json!([
        {"name": "truncated by one byte", "hex": hex::encode(&bytes[..bytes.len() - 1]), "error": "Cbor"},
        {"name": "a byte after the document", "hex": hex::encode([bytes, &[0u8][..]].concat()), "error": "Cbor"},
        {"name": "version 2", "hex": hex::encode(good(2, &[(0, le(&d0))], "weightseal-lineage")), "error": "UnsupportedVersion"},
        {"name": "version written in two bytes (not the shortest form)", "hex": hex::encode(&wide_version), "error": "Cbor"},
        {"name": "another format name", "hex": hex::encode(good(1, &[(0, le(&d0))], "weightseal-fingerprint")), "error": "WrongFormat"},
        {"name": "a key that is not defined (\"Format\")", "hex": hex::encode(&unknown_key), "error": "Field"},
        {"name": "a delta one value short", "hex": hex::encode(good(1, &[(0, le(&d0[..5]))], "weightseal-lineage")), "error": "ValueCount"},
        {"name": "a delta naming base tensor 2 of 2", "hex": hex::encode(good(1, &[(2, le(&d0[..4]))], "weightseal-lineage")), "error": "BadDelta"},
        {"name": "two deltas for one tensor", "hex": hex::encode(good(1, &[(0, le(&d0)), (0, le(&d0))], "weightseal-lineage")), "error": "BadDelta"},
        {"name": "a NaN other than 0x7fc00000", "hex": hex::encode(good(1, &[(0, le(&nan))], "weightseal-lineage")), "error": "NonCanonicalNan"},
        {"name": "no change at any sampled value", "hex": hex::encode(good(1, &[(0, le(&[0.0; 6]))], "weightseal-lineage")), "error": "NoChange"},
        {"name": "over the 16 MiB limit (zero bytes of this size)", "size": weightseal_verifier::revocation::lineage::MAX_LINEAGE_DOC_BYTES + 1, "error": "TooLarge"},
        {"name": "the example under another digest", "hex": hex::encode(bytes), "named": Digest::of(b"not this document").to_hex(), "error": "DigestMismatch"},
    ]);
    json!({
        "comment": "spec/revocation.md §2.3: a lineage document, its digest (BLAKE3 derive_key with context \"weightseal v1 lineage document\") and subject; negatives name the LineageDocError variant they must produce. Regenerate with WEIGHTSEAL_REGEN_VECTORS=1 cargo test -p weightseal-verifier --test revocation_lineage.",
        "document": {
            "hex": hex::encode(bytes),
            "digest": doc.digest().to_hex(),
            "subject": doc.subject().to_string(),
            "path": lineage_path(&doc.digest()),
        },
        "negative": negatives,
    })
}

use weightseal_verifier::Digest;

#[test]
fn lineage_vectors_match_the_spec() {
    let generated = generate_vectors();
    if std::env::var_os("WEIGHTSEAL_REGEN_VECTORS").is_some() {
        fs::write(vectors_path(), serde_json::to_string_pretty(&generated).unwrap() + "\n").unwrap();
    }
    let file: serde_json::Value = serde_json::from_str(&fs::read_to_string(vectors_path()).unwrap()).unwrap();
    assert_eq!(file, generated, "spec/vectors/revocation/lineage.json is out of date");
    let doc_hex = file["document"]["hex"].as_str().unwrap();
    let doc = LineageDoc::from_bytes(&hex::decode(doc_hex).unwrap()).unwrap();
    assert_eq!(doc.digest().to_hex(), file["document"]["digest"].as_str().unwrap());
    for n in file["negative"].as_array().unwrap() {
        let bytes = match n["size"].as_u64() {
            Some(size) => vec![0u8; size as usize],
            None => hex::decode(n["hex"].as_str().unwrap()).unwrap(),
        };
        let result = match n["named"].as_str() {
            Some(d) => LineageDoc::from_bytes_named(&bytes, &d.parse().unwrap()),
            None => LineageDoc::from_bytes(&bytes),
        };
        let err = result.expect_err(n["name"].as_str().unwrap());
        assert_eq!(variant(&err), n["error"], "{}: {err}", n["name"]);
    }
}
