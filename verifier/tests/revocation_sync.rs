//! Client sync against a static export written by an in-test publisher: the happy path,
//! status semantics, lookups, bundles, crash safety, and one test per attack of issue 3.
//! Every attack test asserts the specific error AND that the state on disk is unchanged.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test fails by panicking"
)]

use std::fs;
use std::path::{Path, PathBuf};

use ed25519_dalek::{Signer as _, SigningKey};
use tempfile::TempDir;
use weightseal_log::note::NoteSignerKey;
use weightseal_log::policy::IssuerPolicy;
use weightseal_log::testing::{public, Publisher};
use weightseal_verifier::revocation::bundle::Bundle;
use weightseal_verifier::revocation::entry::{Action, Entry, EntryError, Reason, SignedEntry, Subject};
use weightseal_verifier::revocation::policy::PolicyViolation;
use weightseal_verifier::revocation::snapshot::DEFAULT_ORIGIN;
use weightseal_verifier::revocation::state::{
    DirSource, Matched, Misbehaviour, RevocationError, RevocationState, ENTRIES_FILE, EVIDENCE_DIR, MISBEHAVIOUR_MARK,
    STATE_FILE,
};
use weightseal_verifier::revocation::tile::{decode_tile, encode_tile, TileRef};
use weightseal_verifier::scan::{scan_file, ScanOptions};
use weightseal_verifier::{signed_message, Digest, Manifest, SignatureEntry, SignatureFile};

const NOW: u64 = 1_700_000_000;
const DAY: u64 = 24 * 3600;

fn log_key() -> NoteSignerKey {
    NoteSignerKey::new(DEFAULT_ORIGIN, SigningKey::from_bytes(&[0x42; 32])).unwrap()
}
fn hub() -> SigningKey {
    SigningKey::from_bytes(&[0x11; 32])
}
fn lab() -> SigningKey {
    SigningKey::from_bytes(&[0x22; 32])
}
fn lab_signing_key() -> SigningKey {
    SigningKey::from_bytes(&[0x33; 32])
}

fn entry(issuer: &SigningKey, subject: Subject, action: Action, time: u64) -> SignedEntry {
    Entry {
        subject,
        action,
        reason: Reason::GuardrailsRemoved,
        issuer: public(issuer),
        time,
        evidence: Some("https://hub.example/reports/1".into()),
    }
    .sign(issuer)
    .unwrap()
}

fn revoke(subject: Subject) -> SignedEntry {
    entry(&hub(), subject, Action::Revoke, NOW)
}

fn content(n: u32) -> Subject {
    Subject::content(Digest::of(&n.to_be_bytes()))
}

struct Fixture {
    _tmp: TempDir,
    root: PathBuf,
    export: PathBuf,
    state_dir: PathBuf,
    publisher: Publisher,
}

impl Fixture {
    fn new() -> Self {
        let tmp = TempDir::new().unwrap();
        let root = tmp.path().to_path_buf();
        Fixture {
            export: root.join("export"),
            state_dir: root.join("state"),
            root,
            _tmp: tmp,
            publisher: Publisher::new(log_key()),
        }
    }

    fn publish(&mut self, issued: u64) {
        self.publisher.export(&self.export, issued).unwrap();
    }

    fn state(&self) -> RevocationState {
        RevocationState::open(&self.state_dir, vec![log_key().verifier_key()]).unwrap()
    }

    fn source(&self) -> DirSource {
        DirSource::new(&self.export)
    }

    /// A copy of the current export, to replay later.
    fn save_export(&self, name: &str) -> PathBuf {
        let to = self.root.join(name);
        copy_dir(&self.export, &to);
        to
    }
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            fs::copy(e.path(), target).unwrap();
        }
    }
}

/// The trusted bytes on disk: state file and entries file.
fn disk(dir: &Path) -> (Option<Vec<u8>>, Option<Vec<u8>>) {
    (
        fs::read(dir.join(STATE_FILE)).ok(),
        fs::read(dir.join(ENTRIES_FILE)).ok(),
    )
}

/// A fixture already synced with `n` revocations of content subjects 0..n.
fn synced(n: u32) -> (Fixture, RevocationState) {
    let mut f = Fixture::new();
    for i in 0..n {
        f.publisher.append(&revoke(content(i)));
    }
    f.publish(NOW);
    let mut s = f.state();
    s.sync(&f.source(), NOW).unwrap();
    (f, s)
}

#[test]
fn sync_then_lookup_and_reopen() {
    let (f, s) = synced(3);
    assert_eq!(s.size(), 3);
    s.require_fresh(NOW).unwrap();
    let hit = s.revoked(&content(1)).unwrap();
    assert_eq!(hit.index, 1);
    assert_eq!(hit.reason, Reason::GuardrailsRemoved);
    assert_eq!(hit.issuer, public(&hub()).id());
    assert!(s.revoked(&content(99)).is_none());
    let reopened = f.state();
    assert_eq!(reopened.size(), 3);
    assert_eq!(reopened.entries(), s.entries());
    assert_eq!(reopened.snapshot(), s.snapshot());
}

#[test]
fn incremental_sync_across_tile_boundaries() {
    let (mut f, mut s) = synced(250);
    for i in 250..600 {
        f.publisher.append(&revoke(content(i)));
    }
    f.publish(NOW + 10);
    let report = s.sync(&f.source(), NOW + 10).unwrap();
    assert_eq!((report.old_size, report.new_size), (250, 600));
    assert!(report.bytes_fetched > 0);
    assert_eq!(s.revoked(&content(599)).unwrap().index, 599);
    // One more entry: a 1-entry delta asks for the publication document (this export has
    // none: 404), then fetches two notes, one proof and one tile.
    f.publisher.append(&revoke(content(600)));
    f.publish(NOW + 20);
    let report = s.sync(&f.source(), NOW + 20).unwrap();
    assert_eq!(report.new_size, 601);
    assert_eq!(report.requests, 5);
    assert_eq!(f.state().size(), 601);
}

#[test]
fn unchanged_log_resigned_snapshot_is_accepted() {
    let (mut f, mut s) = synced(2);
    f.publish(NOW + 3600);
    let r = s.sync(&f.source(), NOW + 3600).unwrap();
    assert_eq!((r.old_size, r.new_size, r.snapshot_version), (2, 2, 2));
    // The same snapshot again is a no-op.
    s.sync(&f.source(), NOW + 3601).unwrap();
}

#[test]
fn status_follows_the_last_entry_revoke_reinstate_revoke() {
    let mut f = Fixture::new();
    let subject = Subject::manifest(Digest::of(b"fork"));
    f.publisher.append(&entry(&hub(), subject, Action::Revoke, NOW));
    f.publish(NOW);
    let mut s = f.state();
    s.sync(&f.source(), NOW).unwrap();
    assert_eq!(s.revoked(&subject).unwrap().index, 0);
    f.publisher.append(&entry(&hub(), subject, Action::Reinstate, NOW + 1));
    f.publish(NOW + 1);
    s.sync(&f.source(), NOW + 1).unwrap();
    assert!(s.revoked(&subject).is_none());
    assert_eq!(s.status_of(&subject).unwrap().action, Action::Reinstate);
    f.publisher.append(&entry(&hub(), subject, Action::Revoke, NOW + 2));
    f.publish(NOW + 2);
    s.sync(&f.source(), NOW + 2).unwrap();
    assert_eq!(s.revoked(&subject).unwrap().index, 2);
    // A subject never named has no status.
    assert!(s.status_of(&Subject::manifest(Digest::of(b"base"))).is_none());
}

fn signed_manifest(files: Vec<weightseal_verifier::FileEntry>, key: &SigningKey) -> (Manifest, SignatureFile) {
    let manifest = Manifest {
        files,
        ..Manifest::default()
    };
    let mut sig = SignatureFile::unsigned(manifest.to_bytes().unwrap());
    let d = sig.manifest_digest();
    sig.add_signature(SignatureEntry {
        public_key: public(key),
        signature: key.sign(&signed_message(&d)).to_bytes(),
    });
    (manifest, sig)
}

/// Writes a safetensors file holding the named U8 tensors.
fn safetensors(path: &Path, tensors: &[(&str, &[u8])]) {
    let mut header = String::from("{");
    let mut offset = 0;
    for (i, (name, data)) in tensors.iter().enumerate() {
        if i > 0 {
            header.push(',');
        }
        header.push_str(&format!(
            r#""{name}":{{"dtype":"U8","shape":[{}],"data_offsets":[{offset},{}]}}"#,
            data.len(),
            offset + data.len()
        ));
        offset += data.len();
    }
    header.push('}');
    while header.len() % 8 != 0 {
        header.push(' ');
    }
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header.as_bytes());
    for (_, data) in tensors {
        bytes.extend_from_slice(data);
    }
    fs::write(path, bytes).unwrap();
}

#[test]
fn key_revocation_hits_everything_signed_by_the_key() {
    let tmp = TempDir::new().unwrap();
    let p = tmp.path().join("m.safetensors");
    safetensors(&p, &[("w", &[1, 2, 3, 4])]);
    let file = scan_file(&p, "m.safetensors", ScanOptions::default()).unwrap();
    let (m1, sig1) = signed_manifest(vec![file.clone()], &lab_signing_key());
    let other = weightseal_verifier::FileEntry {
        path: "other.safetensors".into(),
        ..file
    };
    let (m2, sig2) = signed_manifest(vec![other], &lab_signing_key());

    let mut f = Fixture::new();
    let key_id = public(&lab_signing_key()).id();
    f.publisher
        .append(&entry(&lab(), Subject::key(key_id), Action::Revoke, NOW));
    f.publish(NOW);
    let mut s = f.state();
    s.sync(&f.source(), NOW).unwrap();
    for (m, sig) in [(&m1, &sig1), (&m2, &sig2)] {
        let hits = s.check_manifest(m, &sig.manifest_digest(), &[key_id]);
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].matched, Matched::SignerKey);
        assert_eq!(hits[0].entry.subject, Subject::key(key_id));
    }
    // A manifest signed by another key is untouched.
    let other_key = public(&hub()).id();
    assert!(s.check_manifest(&m1, &sig1.manifest_digest(), &[other_key]).is_empty());
}

#[test]
fn manifest_revocation_hits_the_derivative_not_the_base() {
    let tmp = TempDir::new().unwrap();
    let p = tmp.path().join("m.safetensors");
    safetensors(&p, &[("w", &[9; 16])]);
    let file = scan_file(&p, "m.safetensors", ScanOptions::default()).unwrap();
    let (base, base_sig) = signed_manifest(vec![file.clone()], &lab_signing_key());
    let fork = Manifest {
        name: Some("fork".into()),
        ..base.clone()
    };
    let fork_digest = Manifest::digest_of_bytes(&fork.to_bytes().unwrap());
    let mut f = Fixture::new();
    f.publisher.append(&revoke(Subject::manifest(fork_digest)));
    f.publish(NOW);
    let mut s = f.state();
    s.sync(&f.source(), NOW).unwrap();
    let hits = s.check_manifest(&fork, &fork_digest, &[]);
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].matched, Matched::Manifest);
    assert_eq!(hits[0].entry.evidence.as_deref(), Some("https://hub.example/reports/1"));
    assert!(s.check_manifest(&base, &base_sig.manifest_digest(), &[]).is_empty());
}

#[test]
fn content_revocation_hits_a_repackaged_unsigned_copy_through_tensor_digests() {
    let tmp = TempDir::new().unwrap();
    let stripped: &[u8] = &[7; 64];
    let original = tmp.path().join("model-00001.safetensors");
    safetensors(&original, &[("layers.0.w", &[1; 32]), ("layers.1.w", stripped)]);
    let scanned = scan_file(&original, "model-00001.safetensors", ScanOptions::default()).unwrap();
    let tensor = scanned
        .tensors()
        .find(|c| c.tensor_name() == Some("layers.1.w"))
        .unwrap();
    let mut f = Fixture::new();
    f.publisher.append(&revoke(Subject::content(tensor.digest)));
    f.publish(NOW);
    let mut s = f.state();
    s.sync(&f.source(), NOW).unwrap();

    // Re-packaged: another shard layout, another tensor name, other neighbours.
    let copy = tmp.path().join("shard-b.safetensors");
    safetensors(&copy, &[("renamed", stripped), ("extra", &[3; 8])]);
    let files = vec![scan_file(&copy, "shard-b.safetensors", ScanOptions::default()).unwrap()];
    let hits = s.check_files(&files);
    assert_eq!(hits.len(), 1);
    assert_eq!(
        hits[0].matched,
        Matched::Chunk {
            path: "shard-b.safetensors".into(),
            chunk: "tensor renamed".into()
        }
    );
    // A clean model has no hit.
    let clean = tmp.path().join("clean.safetensors");
    safetensors(&clean, &[("w", &[5; 64])]);
    assert!(s
        .check_files(&[scan_file(&clean, "clean.safetensors", ScanOptions::default()).unwrap()])
        .is_empty());
}

// ---------------------------------------------------------------- freshness

#[test]
fn no_state_and_stale_state_fail_closed() {
    let f = Fixture::new();
    let s = f.state();
    assert!(matches!(s.require_fresh(NOW), Err(RevocationError::NoState)));
    let (_f, s) = synced(1);
    assert!(s.require_fresh(NOW + DAY - 1).is_ok());
    assert!(matches!(
        s.require_fresh(NOW + DAY),
        Err(RevocationError::Stale { expired_at, .. }) if expired_at == NOW + DAY
    ));
}

// ---------------------------------------------------------------- attacks

#[test]
fn attack_rollback_to_an_older_snapshot_is_refused() {
    let (mut f, mut s) = synced(2);
    let old = f.save_export("old");
    f.publisher.append(&revoke(content(2)));
    f.publish(NOW + 60);
    s.sync(&f.source(), NOW + 60).unwrap();
    let before = disk(&f.state_dir);
    let err = s.sync(&DirSource::new(&old), NOW + 120).unwrap_err();
    assert!(matches!(err, RevocationError::Rollback { held: 2, found: 1 }), "{err}");
    assert_eq!(disk(&f.state_dir), before);
    assert_eq!(s.size(), 3);
}

#[test]
fn attack_older_log_with_newer_snapshot_version_is_refused_as_shrunk() {
    // A smaller tree under a higher version: only a key holder could sign this.
    let (f, mut s) = synced(3);
    let mut small = Publisher::new(log_key());
    small.version = 10;
    for i in 0..2 {
        small.append(&revoke(content(i)));
    }
    let dir = f.root.join("small");
    small.export(&dir, NOW + 5).unwrap();
    let before = disk(&f.state_dir);
    let err = s.sync(&DirSource::new(&dir), NOW + 5).unwrap_err();
    assert!(matches!(err, RevocationError::Shrunk { held: 3, found: 2 }), "{err}");
    assert_eq!(disk(&f.state_dir), before);
}

#[test]
fn attack_expired_snapshot_freeze_is_refused() {
    let mut f = Fixture::new();
    f.publisher.append(&revoke(content(0)));
    f.publish(NOW - 2 * DAY);
    let mut s = f.state();
    let before = disk(&f.state_dir);
    let err = s.sync(&f.source(), NOW).unwrap_err();
    assert!(
        matches!(err, RevocationError::Expired { expires, now: NOW, .. } if expires == NOW - DAY),
        "{err}"
    );
    assert_eq!(disk(&f.state_dir), before);
    assert!(matches!(s.require_fresh(NOW), Err(RevocationError::NoState)));

    // A held state whose server is frozen: the old snapshot keeps being served.
    let (f, mut s) = synced(1);
    let before = disk(&f.state_dir);
    let err = s.sync(&f.source(), NOW + 2 * DAY).unwrap_err();
    assert!(matches!(err, RevocationError::Expired { .. }), "{err}");
    assert_eq!(disk(&f.state_dir), before);
    assert!(matches!(
        s.require_fresh(NOW + 2 * DAY),
        Err(RevocationError::Stale { .. })
    ));
}

/// A fork of the log: same key, other history, `extra` entries longer.
fn fork(f: &Fixture, held: u32, extra: u32, version: u64) -> PathBuf {
    let mut forked = Publisher::new(log_key());
    forked.version = version;
    for i in 0..held + extra {
        forked.append(&revoke(content(1000 + i)));
    }
    let dir = f.root.join(format!("fork-{held}-{extra}"));
    forked.export(&dir, NOW + 30).unwrap();
    dir
}

#[test]
fn attack_checkpoint_that_does_not_extend_the_held_one_is_refused() {
    let (f, mut s) = synced(3);
    let dir = fork(&f, 3, 2, 5);
    let before = disk(&f.state_dir);
    let err = s.sync(&DirSource::new(&dir), NOW + 30).unwrap_err();
    assert!(
        matches!(
            err,
            RevocationError::NotAnExtension {
                held_size: 3,
                new_size: 5,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(disk(&f.state_dir), before);
    // Without a proof to check, the recomputed root gives it away.
    fs::remove_dir_all(dir.join("v1/proof")).unwrap();
    let err = s.sync(&DirSource::new(&dir), NOW + 30).unwrap_err();
    assert!(matches!(err, RevocationError::DeltaMismatch { .. }), "{err}");
    assert_eq!(disk(&f.state_dir), before);
    assert_eq!(s.size(), 3);
}

#[test]
fn attack_two_checkpoints_of_one_size_with_different_roots_are_kept_as_evidence() {
    let (f, mut s) = synced(3);
    let dir = fork(&f, 3, 0, 5);
    let before = disk(&f.state_dir);
    let err = s.sync(&DirSource::new(&dir), NOW + 30).unwrap_err();
    let RevocationError::Equivocation {
        what, size, evidence, ..
    } = err
    else {
        panic!("{err}")
    };
    assert_eq!((what, size), ("checkpoint", 3));
    let evidence = evidence.unwrap();
    assert!(evidence.starts_with(f.state_dir.join(EVIDENCE_DIR)));
    let text = fs::read_to_string(&evidence).unwrap();
    let held_note = fs::read_to_string(f.export.join("checkpoint")).unwrap();
    let other_note = fs::read_to_string(dir.join("checkpoint")).unwrap();
    assert!(text.contains(&held_note) && text.contains(&other_note));
    assert_eq!(disk(&f.state_dir), before);
}

#[test]
fn attack_same_snapshot_version_with_other_content_is_equivocation() {
    let (f, mut s) = synced(3);
    let dir = fork(&f, 3, 1, 0); // version 1, like the held one
    let before = disk(&f.state_dir);
    let err = s.sync(&DirSource::new(&dir), NOW + 30).unwrap_err();
    assert!(
        matches!(err, RevocationError::Equivocation { what: "snapshot", .. }),
        "{err}"
    );
    assert_eq!(disk(&f.state_dir), before);
}

/// Rewrites the tile holding entry `index` of the export with `edit` applied to it.
fn edit_leaf(export: &Path, size: u64, index: u64, edit: impl FnOnce(&mut Vec<u8>)) {
    let tile = weightseal_verifier::revocation::tile::tiles_covering(index, size)[0];
    let path = export.join(tile.path());
    let mut leaves = decode_tile(&fs::read(&path).unwrap(), tile).unwrap();
    edit(&mut leaves[(index - tile.first()) as usize]);
    fs::write(&path, encode_tile(&leaves).unwrap()).unwrap();
}

#[test]
fn attack_tampered_entry_is_refused() {
    let (mut f, mut s) = synced(2);
    for i in 2..5 {
        f.publisher.append(&revoke(content(i)));
    }
    f.publish(NOW + 1);
    // Flip one byte of entry 3's signature.
    edit_leaf(&f.export, 5, 3, |leaf| {
        let n = leaf.len();
        leaf[n - 1] ^= 1;
    });
    let before = disk(&f.state_dir);
    let err = s.sync(&f.source(), NOW + 1).unwrap_err();
    assert!(matches!(err, RevocationError::TamperedEntry { index: 3, .. }), "{err}");
    assert_eq!(disk(&f.state_dir), before);
    assert_eq!(s.size(), 2);
    assert!(s.revoked(&content(3)).is_none());
}

#[test]
fn attack_delta_that_does_not_match_its_proof_is_refused() {
    let (mut f, mut s) = synced(2);
    for i in 2..5 {
        f.publisher.append(&revoke(content(i)));
    }
    f.publish(NOW + 1);
    // Swap in another validly signed entry: signatures pass, the root does not.
    let substitute = revoke(content(777));
    edit_leaf(&f.export, 5, 4, |leaf| *leaf = substitute.as_bytes().to_vec());
    assert!(f.export.join("v1/proof/consistency/2/5").exists());
    let before = disk(&f.state_dir);
    let err = s.sync(&f.source(), NOW + 1).unwrap_err();
    assert!(
        matches!(
            err,
            RevocationError::DeltaMismatch {
                held_size: 2,
                new_size: 5,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(disk(&f.state_dir), before);
    assert!(s.revoked(&content(777)).is_none());
}

#[test]
fn attack_garbage_consistency_proof_is_refused() {
    let (mut f, mut s) = synced(2);
    f.publisher.append(&revoke(content(2)));
    f.publish(NOW + 1);
    fs::write(
        f.export.join("v1/proof/consistency/2/3"),
        br#"{"old":2,"new":3,"proof":["00"]}"#,
    )
    .unwrap();
    let before = disk(&f.state_dir);
    let err = s.sync(&f.source(), NOW + 1).unwrap_err();
    assert!(matches!(err, RevocationError::BadDocument(_)), "{err}");
    assert_eq!(disk(&f.state_dir), before);
}

#[test]
fn attack_wrong_server_key_is_refused() {
    let mut f = Fixture::new();
    f.publisher.key = NoteSignerKey::new(DEFAULT_ORIGIN, SigningKey::from_bytes(&[0x66; 32])).unwrap();
    f.publisher.append(&revoke(content(0)));
    f.publish(NOW);
    let mut s = f.state();
    let err = s.sync(&f.source(), NOW).unwrap_err();
    // Named since key rotation (spec/revocation.md §7.6): a key no pinned key announced.
    assert!(matches!(err, RevocationError::UnannouncedLogKey { .. }), "{err}");
    assert_eq!(disk(&f.state_dir), (None, None));
    assert!(matches!(s.require_fresh(NOW), Err(RevocationError::NoState)));
    // A folder synced under one key does not open under another.
    let (f, _) = synced(1);
    let other = NoteSignerKey::new(DEFAULT_ORIGIN, SigningKey::from_bytes(&[0x66; 32])).unwrap();
    assert!(matches!(
        RevocationState::open(&f.state_dir, vec![other.verifier_key()]),
        Err(RevocationError::WrongServerKey { .. })
    ));
}

/// A server in miniature: the policy check, then append.
fn submit(
    policy: &IssuerPolicy,
    publisher: &mut Publisher,
    e: &SignedEntry,
    authority: Option<&[u8]>,
) -> Result<u64, PolicyViolation> {
    let logged: Vec<[u8; 32]> = (0..publisher.tree.len())
        .filter_map(|i| publisher.tree.leaf(i))
        .collect();
    policy.check_submission(e, authority, NOW, |h| logged.contains(h))?;
    Ok(publisher.append(e))
}

fn policy() -> IssuerPolicy {
    IssuerPolicy::from_json(&format!(
        r#"{{"issuers":[{{"name":"hub","role":"hub","public_key":"{}"}},
            {{"name":"lab","role":"lab","public_key":"{}","signing_keys":["{}"]}}]}}"#,
        hex::encode(public(&hub()).to_raw()),
        hex::encode(public(&lab()).to_raw()),
        public(&lab_signing_key()).id()
    ))
    .unwrap()
}

/// Submits `e`, expects `check` to accept the refusal, and checks that neither the log
/// nor the synced client state changed.
fn assert_refused(e: SignedEntry, authority: Option<&[u8]>, check: impl Fn(&PolicyViolation) -> bool) {
    let (mut f, mut s) = synced(1);
    let before = disk(&f.state_dir);
    let err = submit(&policy(), &mut f.publisher, &e, authority).unwrap_err();
    assert!(check(&err), "{err}");
    assert_eq!(f.publisher.tree.len(), 1);
    let r = s.sync(&f.source(), NOW).unwrap();
    assert_eq!(r.new_size, 1);
    assert_eq!(disk(&f.state_dir), before);
    assert!(s.status_of(&e.entry().subject).is_none());
}

#[test]
fn attack_entry_signed_by_an_unknown_issuer_is_refused() {
    let stranger = SigningKey::from_bytes(&[0x99; 32]);
    let e = entry(&stranger, content(5), Action::Revoke, NOW);
    assert_refused(e, None, |v| matches!(v, PolicyViolation::UnknownIssuer { .. }));
}

#[test]
fn attack_issuer_acting_outside_its_scope_is_refused() {
    // A hub may not revoke a key.
    let e = entry(
        &hub(),
        Subject::key(public(&lab_signing_key()).id()),
        Action::Revoke,
        NOW,
    );
    assert_refused(e, None, |v| v.code() == "out_of_scope");
    // A lab may not revoke content, nor another lab's key, nor a manifest it did not sign.
    assert_refused(entry(&lab(), content(5), Action::Revoke, NOW), None, |v| {
        v.code() == "out_of_scope"
    });
    let foreign_key = Subject::key(public(&hub()).id());
    assert_refused(entry(&lab(), foreign_key, Action::Revoke, NOW), None, |v| {
        matches!(v, PolicyViolation::KeyNotOwned { .. })
    });
    let (_, foreign) = signed_manifest(vec![], &hub());
    let subject = Subject::manifest(foreign.manifest_digest());
    let auth = foreign.to_bytes().unwrap();
    assert_refused(entry(&lab(), subject, Action::Revoke, NOW), Some(&auth), |v| {
        matches!(v, PolicyViolation::AuthorityNotByIssuer { .. })
    });
    // …but with its own signature file it may.
    let (_, own) = signed_manifest(vec![], &lab_signing_key());
    let e = entry(&lab(), Subject::manifest(own.manifest_digest()), Action::Revoke, NOW);
    let mut p = Publisher::new(log_key());
    submit(&policy(), &mut p, &e, Some(&own.to_bytes().unwrap())).unwrap();
}

#[test]
fn attack_replayed_submission_is_refused() {
    let (mut f, mut s) = synced(0);
    let e = revoke(content(1));
    submit(&policy(), &mut f.publisher, &e, None).unwrap();
    f.publish(NOW + 1);
    s.sync(&f.source(), NOW + 1).unwrap();
    let before = disk(&f.state_dir);
    let err = submit(&policy(), &mut f.publisher, &e, None).unwrap_err();
    assert!(matches!(err, PolicyViolation::Replay { leaf_hash } if leaf_hash == e.leaf_hash()));
    assert_eq!(err.code(), "replay");
    assert_eq!(f.publisher.tree.len(), 1);
    assert_eq!(disk(&f.state_dir), before);
    // A stale entry (older than 24 h) cannot be replayed later either.
    let old = entry(&hub(), content(2), Action::Revoke, NOW - 2 * DAY);
    assert!(matches!(
        submit(&policy(), &mut f.publisher, &old, None),
        Err(PolicyViolation::TooOld { .. })
    ));
}

// ---------------------------------------------------------------- bundles, crashes

#[test]
fn bundle_round_trip_on_an_air_gapped_machine() {
    let (f, s) = synced(300);
    let path = f.root.join("revocations.bundle");
    s.export_bundle(&path).unwrap();
    let offline_dir = f.root.join("offline");
    let mut offline = RevocationState::open(&offline_dir, vec![log_key().verifier_key()]).unwrap();
    let bundle = Bundle::read(&path).unwrap();
    let r = offline.import_bundle(&bundle, NOW + 5).unwrap();
    assert_eq!(r.new_size, 300);
    assert_eq!(offline.entries(), s.entries());
    assert_eq!(offline.snapshot(), s.snapshot());
    // Importing it again is a no-op; an expired bundle is refused like a frozen log.
    offline.import_bundle(&bundle, NOW + 6).unwrap();
    let before = disk(&offline_dir);
    assert!(matches!(
        offline.import_bundle(&bundle, NOW + 2 * DAY),
        Err(RevocationError::Expired { .. })
    ));
    assert_eq!(disk(&offline_dir), before);
}

#[test]
fn tampered_bundle_is_refused_by_the_same_rules() {
    let (f, s) = synced(3);
    let mut bundle = Bundle::from_state(&s).unwrap();
    let n = bundle.leaves[1].len();
    bundle.leaves[1][n - 1] ^= 1;
    let dir = f.root.join("offline");
    let mut offline = RevocationState::open(&dir, vec![log_key().verifier_key()]).unwrap();
    let err = offline.import_bundle(&bundle, NOW).unwrap_err();
    assert!(matches!(err, RevocationError::TamperedEntry { index: 1, .. }), "{err}");
    assert_eq!(disk(&dir), (None, None));
    // A bundle missing its last entry cannot reach the signed root.
    let mut short = Bundle::from_state(&s).unwrap();
    short.leaves.pop();
    assert!(matches!(
        offline.import_bundle(&short, NOW),
        Err(RevocationError::Missing { .. })
    ));
}

#[test]
fn torn_append_after_the_committed_length_is_ignored() {
    let (mut f, s) = synced(3);
    let entries_path = f.state_dir.join(ENTRIES_FILE);
    let committed = fs::read(&entries_path).unwrap();
    // A crash mid-append: half a record past the committed length.
    let mut torn = committed.clone();
    torn.extend_from_slice(&[0, 0, 1, 0, 0xa2, 0x65]);
    fs::write(&entries_path, &torn).unwrap();
    let mut reopened = f.state();
    assert_eq!(reopened.entries(), s.entries());
    // The next sync cuts the garbage off and appends cleanly.
    f.publisher.append(&revoke(content(3)));
    f.publish(NOW + 1);
    reopened.sync(&f.source(), NOW + 1).unwrap();
    let again = f.state();
    assert_eq!(again.size(), 4);
    assert!(again.revoked(&content(3)).is_some());
    assert!(fs::read(&entries_path).unwrap().starts_with(&committed));
}

#[test]
fn damaged_committed_entries_are_detected_on_open() {
    let (f, _) = synced(3);
    let entries_path = f.state_dir.join(ENTRIES_FILE);
    let mut bytes = fs::read(&entries_path).unwrap();
    let n = bytes.len();
    bytes[n - 1] ^= 1; // inside the last record: the root no longer matches
    fs::write(&entries_path, &bytes).unwrap();
    assert!(matches!(
        RevocationState::open(&f.state_dir, vec![log_key().verifier_key()]),
        Err(RevocationError::Corrupt { .. })
    ));
    fs::write(&entries_path, &bytes[..n - 10]).unwrap();
    assert!(matches!(
        RevocationState::open(&f.state_dir, vec![log_key().verifier_key()]),
        Err(RevocationError::Corrupt { .. })
    ));
}

/// The state file is not a manifest: its errors say which field of the state file is wrong,
/// and nothing about manifests (they once came out as "manifest field state.…").
#[test]
fn a_state_file_missing_a_field_is_corrupt_and_named_as_a_state_file() {
    let (f, _) = synced(3);
    // {"v": 1}: valid CBOR, but no snapshot, checkpoint, size or entry length.
    fs::write(f.state_dir.join(STATE_FILE), [0xa1, 0x61, b'v', 0x01]).unwrap();
    let err = RevocationState::open(&f.state_dir, vec![log_key().verifier_key()]).unwrap_err();
    assert!(matches!(err, RevocationError::Corrupt { .. }), "{err}");
    let text = err.to_string();
    assert!(text.contains("field state.snapshot: missing"), "{text}");
    assert!(!text.contains("manifest"), "{text}");
}

#[test]
fn tile_paths_are_the_export_layout() {
    let (f, _) = synced(300);
    assert!(f.export.join("tile/entries/000").is_file());
    assert!(f.export.join("tile/entries/001.p/44").is_file());
    assert!(f.export.join(TileRef { index: 1, width: 44 }.path()).is_file());
    assert!(f.export.join("v1/proof/consistency/256/300").is_file());
    assert!(f.export.join("v1/proof/consistency/299/300").is_file());
}

/// issue 7 item 1: a key revoked for key-compromise stays revoked even when the log holds a
/// reinstatement it signed itself, and what it signs afterwards decides nothing. Another
/// authority can reinstate it; then its entries count again.
#[test]
fn issue7_revoked_key_cannot_revive_itself_even_if_the_log_accepted_it() {
    let mut f = Fixture::new();
    let thief = lab();
    let kid = public(&thief).id();
    let key = Subject::key(kid);
    f.publisher.append(&entry(&thief, key, Action::Revoke, NOW)); // 0: the lab revokes its key
    f.publisher.append(&entry(&thief, key, Action::Reinstate, NOW + 1)); // 1: the thief undoes it
    f.publisher.append(&entry(&thief, content(7), Action::Revoke, NOW + 2)); // 2: and acts with it
    f.publisher.append(&entry(
        &thief,
        Subject::key(public(&hub()).id()),
        Action::Revoke,
        NOW + 3,
    )); // 3
    f.publish(NOW + 10);
    let mut s = f.state();
    s.sync(&f.source(), NOW + 10).unwrap();
    for s in [&s, &f.state()] {
        assert_eq!(s.revoked(&key).map(|e| e.index), Some(0));
        assert!(s.revoked(&content(7)).is_none());
        assert!(s.revoked(&Subject::key(public(&hub()).id())).is_none());
        assert!(matches!(
            s.voided(1),
            Some(PolicyViolation::RevokedIssuer { revoked_by: 0, .. })
        ));
        assert!(matches!(s.voided(2), Some(PolicyViolation::RevokedIssuer { .. })));
        assert!(s.voided(0).is_none());
        assert_eq!(s.size(), 4);
    }
    // Another of the lab's keys reinstates it: from then on the key's entries count again.
    f.publisher
        .append(&entry(&lab_signing_key(), key, Action::Reinstate, NOW + 20)); // 4
    f.publisher.append(&entry(&thief, content(8), Action::Revoke, NOW + 21)); // 5
    f.publish(NOW + 30);
    s.sync(&f.source(), NOW + 30).unwrap();
    assert!(s.revoked(&key).is_none());
    assert_eq!(s.revoked(&content(8)).map(|e| e.index), Some(5));
    assert!(s.revoked(&content(7)).is_none(), "a void entry stays void");
}

/// issue 7 item 1: the log refuses a key reinstating itself (it is void whatever the key's
/// status, so the rule needs no log state).
#[test]
fn issue7_self_reinstatement_is_refused_by_policy() {
    let lab_key = lab();
    let kid = public(&lab_key).id();
    let e = entry(&lab_key, Subject::key(kid), Action::Reinstate, NOW);
    assert_refused(e, None, |v| matches!(v, PolicyViolation::SelfReinstatement { .. }));
}

/// issue 7 item 6: equivocation is kept as evidence and marks the state; every status check
/// then refuses, across reopen and later good syncs, until the mark is cleared.
#[test]
fn issue7_equivocation_marks_the_state_until_an_operator_clears_it() {
    let (f, mut s) = synced(3);
    let dir = fork(&f, 3, 0, 5);
    let err = s.sync(&DirSource::new(&dir), NOW + 30).unwrap_err();
    assert!(matches!(err, RevocationError::Equivocation { .. }), "{err}");
    let err = s.require_fresh(NOW + 30).unwrap_err();
    let RevocationError::LogMisbehaved {
        kind: Misbehaviour::Equivocation,
        evidence: Some(evidence),
    } = err
    else {
        panic!("{err}")
    };
    assert!(evidence.starts_with(f.state_dir.join(EVIDENCE_DIR)) && evidence.exists());
    assert!(f.state_dir.join(EVIDENCE_DIR).join(MISBEHAVIOUR_MARK).exists());
    // Persisted: a new process refuses too, even after a sync that succeeds.
    let mut reopened = f.state();
    assert!(matches!(
        reopened.require_fresh(NOW + 30),
        Err(RevocationError::LogMisbehaved { .. })
    ));
    reopened.sync(&f.source(), NOW + 30).unwrap();
    let err = reopened.require_fresh(NOW + 30).unwrap_err();
    assert!(err.to_string().contains("operator"), "{err}");
    // The operator clears it; the evidence stays.
    assert_eq!(reopened.clear_misbehaviour().unwrap(), Some(Misbehaviour::Equivocation));
    reopened.require_fresh(NOW + 30).unwrap();
    assert!(evidence.exists());
    f.state().require_fresh(NOW + 30).unwrap();
    assert_eq!(f.state().clear_misbehaviour().unwrap(), None);
}

/// issue 7 item 6: a larger tree that does not extend the held one is kept as evidence (both
/// checkpoints) and marks the state.
#[test]
fn issue7_tree_that_does_not_extend_the_held_one_marks_the_state() {
    let (f, mut s) = synced(3);
    let dir = fork(&f, 3, 2, 5);
    let err = s.sync(&DirSource::new(&dir), NOW + 30).unwrap_err();
    assert!(matches!(err, RevocationError::NotAnExtension { .. }), "{err}");
    let Err(RevocationError::LogMisbehaved {
        kind: Misbehaviour::NotAnExtension,
        evidence: Some(evidence),
    }) = f.state().require_fresh(NOW + 30)
    else {
        panic!("not marked")
    };
    let text = fs::read_to_string(evidence).unwrap();
    let held_note = fs::read_to_string(f.export.join("checkpoint")).unwrap();
    let other_note = fs::read_to_string(dir.join("checkpoint")).unwrap();
    assert!(text.contains(&held_note) && text.contains(&other_note), "{text}");
}

/// issue 7 (also): expiry errors name UTC times, not Unix seconds.
#[test]
fn issue7_expiry_errors_print_utc_times() {
    let (_f, s) = synced(1);
    let text = s.require_fresh(NOW + 2 * DAY).unwrap_err().to_string();
    assert!(
        text.contains("expired at 2023-11-15 22:13:20 UTC (now 2023-11-16 22:13:20 UTC)"),
        "{text}"
    );
    assert!(!text.contains(&(NOW + DAY).to_string()), "{text}");
}

/// What a reader sees of a log in the middle of a write when it fetches the checkpoint
/// before the append and the snapshot after it (issue 7 item 5: "the snapshot (size 231)
/// and the checkpoint (size 230) describe different trees"), with, where the log publishes
/// it, the one-document publication of a single tree.
struct TornSource {
    before: DirSource,
    after: DirSource,
    publication: Option<Vec<u8>>,
}

impl weightseal_verifier::revocation::state::Source for TornSource {
    fn get(&self, path: &str) -> Result<Option<Vec<u8>>, weightseal_verifier::revocation::state::SourceError> {
        use weightseal_verifier::revocation::tile::{CHECKPOINT_PATH, PUBLICATION_PATH};
        match path {
            CHECKPOINT_PATH => self.before.get(path),
            PUBLICATION_PATH => Ok(self.publication.clone()),
            _ => self.after.get(path),
        }
    }
}

#[test]
fn issue7_a_write_between_the_two_notes_cannot_tear_what_a_reader_gets() {
    use weightseal_verifier::revocation::state::Source as _;
    use weightseal_verifier::revocation::tile::{encode_publication, CHECKPOINT_PATH, SNAPSHOT_PATH};
    let mut f = Fixture::new();
    for i in 0..3 {
        f.publisher.append(&revoke(content(i)));
    }
    f.publish(NOW);
    let before = f.save_export("before");
    f.publisher.append(&revoke(content(3)));
    f.publish(NOW + 1);
    let note = |p: &str| String::from_utf8(f.source().get(p).unwrap().unwrap()).unwrap();
    let publication = encode_publication(&note(CHECKPOINT_PATH), &note(SNAPSHOT_PATH)).unwrap();

    // Fetched as two documents, the notes describe two trees: refused (never accepted as
    // a tree it is not).
    let torn = TornSource {
        before: DirSource::new(&before),
        after: f.source(),
        publication: None,
    };
    let mut s = f.state();
    let err = s.sync(&torn, NOW + 2).unwrap_err();
    assert!(matches!(err, RevocationError::SnapshotMismatch { .. }), "{err}");
    // With the publication document, the reader gets both notes of one tree, whatever
    // the separate files say at that moment.
    let paired = TornSource {
        publication: Some(publication),
        ..torn
    };
    let report = s.sync(&paired, NOW + 2).unwrap();
    assert_eq!(report.new_size, 4);
    assert!(s.revoked(&content(3)).is_some());
}

/// `n` revocations of content subjects `from..from + n`, signed in parallel.
fn append_revocations(f: &mut Fixture, from: u32, n: u32) {
    let entries: Vec<Entry> = (from..from + n)
        .map(|i| Entry {
            subject: content(i),
            action: Action::Revoke,
            reason: Reason::Other,
            issuer: public(&hub()),
            time: NOW,
            evidence: None,
        })
        .collect();
    f.publisher.append_many(&entries, &hub()).unwrap();
}

/// Flips one bit of entry `index`'s signature in the export (it still decodes).
fn break_signature(f: &Fixture, index: u64) {
    // The leaf is `{"sig": bstr(64), "entry": bstr}`: the signature's `s` half starts at byte 39.
    edit_leaf(&f.export, f.publisher.tree.len(), index, |leaf| {
        assert_eq!(&leaf[1..7], b"\x63sig\x58\x40");
        leaf[47] ^= 1;
    });
}

// A sync checks signatures in batches and bundles in groups of 64 (16,384 entries): a bad
// signature among many good ones, in the first group or a later one, is named by its index,
// and nothing is kept.
#[test]
fn cold_start_names_the_one_bad_signature_among_many_good_ones() {
    let mut f = Fixture::new();
    append_revocations(&mut f, 0, 16_384 + 600);
    f.publish(NOW);
    for bad in [1_000u64, 16_384 + 300] {
        let good = f.save_export("good");
        break_signature(&f, bad);
        let mut s = f.state();
        let err = s.sync(&f.source(), NOW).unwrap_err();
        assert!(
            matches!(&err, RevocationError::TamperedEntry { index, source: EntryError::BadSignature { .. } } if *index == bad),
            "{err}"
        );
        assert_eq!(disk(&f.state_dir), (None, None));
        assert_eq!(s.size(), 0);
        fs::remove_dir_all(&f.export).unwrap();
        fs::rename(&good, &f.export).unwrap();
    }
    let mut s = f.state();
    assert_eq!(s.sync(&f.source(), NOW).unwrap().new_size, 16_984);
}

// The records of the groups checked before a failure were already appended past the
// committed length: the failed sync cuts them off again, so the state on disk is unchanged.
#[test]
fn a_sync_that_fails_in_a_later_group_leaves_the_entries_file_as_committed() {
    let (mut f, mut s) = synced(300);
    append_revocations(&mut f, 300, 16_384 + 500);
    f.publish(NOW + 1);
    break_signature(&f, 300 + 16_384 + 100);
    let before = disk(&f.state_dir);
    let err = s.sync(&f.source(), NOW + 1).unwrap_err();
    assert!(
        matches!(err, RevocationError::TamperedEntry { index, .. } if index == 300 + 16_384 + 100),
        "{err}"
    );
    assert_eq!(disk(&f.state_dir), before);
    assert_eq!(f.state().size(), 300);
}

// Everything a lookup reads is the same in the state that synced and in the state opened
// from its folder afterwards: entries, statuses (revoke, reinstate, a revoked key's void
// entries) and hits.
#[test]
fn the_state_reopened_after_a_sync_gives_identical_lookups() {
    let mut f = Fixture::new();
    append_revocations(&mut f, 0, 700);
    f.publisher.append(&entry(&hub(), content(5), Action::Reinstate, NOW));
    f.publisher
        .append(&entry(&hub(), Subject::key(public(&lab()).id()), Action::Revoke, NOW));
    // By a revoked key: held, void.
    f.publisher.append(&entry(&lab(), content(9_000), Action::Revoke, NOW));
    f.publish(NOW);
    let mut s = f.state();
    s.sync(&f.source(), NOW).unwrap();
    let reopened = f.state();
    assert_eq!(reopened.entries(), s.entries());
    assert_eq!(reopened.size(), 703);
    for i in 0..703 {
        assert_eq!(reopened.voided(i), s.voided(i), "entry {i}");
    }
    assert!(s.voided(702).is_some());
    let subjects: Vec<Subject> = (0..710)
        .map(content)
        .chain([content(9_000), Subject::key(public(&lab()).id())])
        .collect();
    for subject in &subjects {
        assert_eq!(reopened.status_of(subject), s.status_of(subject), "{subject}");
    }
    assert!(s.revoked(&content(5)).is_none());
    assert!(s.revoked(&content(6)).is_some());
    assert!(s.revoked(&content(9_000)).is_none());
    let files = vec![weightseal_verifier::FileEntry {
        path: "m.bin".into(),
        size: 8,
        kind: weightseal_verifier::FileKind::Raw,
        chunk_size: None,
        chunks: (0..8)
            .map(|i| weightseal_verifier::Chunk {
                role: weightseal_verifier::ChunkRole::Data,
                offset: i,
                len: 1,
                digest: content(i as u32 * 100).digest,
            })
            .collect(),
        digest: content(6).digest,
    }];
    let hits = s.check_files(&files);
    assert_eq!(hits.len(), 8, "{hits:?}");
    assert_eq!(reopened.check_files(&files), hits);
}
