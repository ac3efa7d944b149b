//! `lineage` entries on the client (spec/revocation.md §2.3, §7.2 step 7a, §8): a sync keeps
//! the document each entry names, checked against the entry's digest, and fails closed when
//! the source does not serve it or serves another one; a bundle carries the documents; the
//! state folder gives them back after a reopen; the decision flags descendants of the fork
//! and passes a sibling fine-tune.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs;
use std::path::Path;

use ed25519_dalek::SigningKey;
use tempfile::TempDir;
use weightseal_verifier::decision::lineage_hits;
use weightseal_verifier::fingerprint::lineage::ForkDelta;
use weightseal_verifier::fingerprint::{plan, Fingerprint, TensorPrint};
use weightseal_verifier::revocation::bundle::Bundle;
use weightseal_verifier::revocation::entry::{Action, Entry, Reason, Subject};
use weightseal_verifier::revocation::lineage::{lineage_path, LineageDoc, LineageDocError};
use weightseal_verifier::revocation::note::NoteSignerKey;
use weightseal_verifier::revocation::snapshot::DEFAULT_ORIGIN;
use weightseal_verifier::revocation::state::{DirSource, Matched, RevocationError, RevocationState, LINEAGE_DIR};
use weightseal_verifier::revocation::testing::{public, Publisher};

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
        matches!(
            &err,
            RevocationError::BadLineage {
                source: LineageDocError::DigestMismatch { .. },
                ..
            }
        ),
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
    fs::write(dir.join("model.safetensors"), safetensors::serialize(views, None).unwrap()).unwrap();
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
