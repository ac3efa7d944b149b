//! The load decision (`weightseal_verifier::decision`): trust, unsigned models, revocation
//! status with pins, lock and a clock that fails closed, warn mode, and the policy file
//! deciding exactly as the same policy built in code. Revocation data comes from an
//! in-test publisher writing a static export (no server needed).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail loudly"
)]

use std::path::{Path, PathBuf};

use ed25519_dalek::{Signer as _, SigningKey};
use tempfile::TempDir;
use weightseal_log::note::NoteSignerKey;
use weightseal_log::testing::{public, Publisher};
use weightseal_verifier::clock::ClockError;
use weightseal_verifier::decision::{DecisionError, LoadDecision, Mode, UnsignedModels};
use weightseal_verifier::revocation::entry::{Action, Entry, Reason, Subject};
use weightseal_verifier::revocation::snapshot::DEFAULT_ORIGIN;
use weightseal_verifier::scan::{scan_folder, ScanOptions};
use weightseal_verifier::walk::IgnoreRules;
use weightseal_verifier::{
    signed_message, Manifest, Policy, RefusalKind, RevocationConfig, RevocationSource, RevocationStatus,
    SignatureEntry, SignatureFile,
};

/// Issue time of the published snapshot; test clocks read relative to it.
const ISSUED: u64 = 1_800_000_000;

fn clock_fresh() -> Result<u64, ClockError> {
    Ok(ISSUED + 60)
}
fn clock_unreadable() -> Result<u64, ClockError> {
    Err(ClockError {
        seconds_before_epoch: 5,
    })
}
fn clock_before_snapshot() -> Result<u64, ClockError> {
    Ok(ISSUED - 3600)
}
fn clock_after_expiry() -> Result<u64, ClockError> {
    Ok(ISSUED + 400 * 24 * 3600)
}

fn lab() -> SigningKey {
    SigningKey::from_bytes(&[0x22; 32])
}
fn other_lab() -> SigningKey {
    SigningKey::from_bytes(&[0x23; 32])
}
fn hub() -> SigningKey {
    SigningKey::from_bytes(&[0x11; 32])
}
fn log_key() -> NoteSignerKey {
    NoteSignerKey::new(DEFAULT_ORIGIN, SigningKey::from_bytes(&[0x42; 32])).unwrap()
}

/// A safetensors file with 4 U8 tensors `t0..t3` of 4096 bytes each.
fn write_model(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let mut header = String::from("{");
    for i in 0..4 {
        if i > 0 {
            header.push(',');
        }
        header.push_str(&format!(
            r#""t{i}":{{"dtype":"U8","shape":[4096],"data_offsets":[{},{}]}}"#,
            i * 4096,
            (i + 1) * 4096
        ));
    }
    header.push('}');
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header.as_bytes());
    bytes.extend((0..4 * 4096).map(|i| (i * 7 % 251) as u8));
    std::fs::write(dir.join("model.safetensors"), bytes).unwrap();
}

/// Signs the folder with each key; returns the manifest.
fn sign(dir: &Path, keys: &[SigningKey]) -> Manifest {
    let ignore = IgnoreRules::defaults();
    let files = scan_folder(dir, &ignore, &[dir.join("weightseal.sig")], ScanOptions::default()).unwrap();
    let manifest = Manifest {
        files,
        ignore: ignore.texts().to_vec(),
        ..Manifest::default()
    };
    let bytes = manifest.to_bytes().unwrap();
    let mut sig = SignatureFile::unsigned(bytes.clone());
    for key in keys {
        sig.add_signature(SignatureEntry {
            public_key: public(key),
            signature: key.sign(&signed_message(&Manifest::digest_of_bytes(&bytes))).to_bytes(),
        });
    }
    std::fs::write(dir.join("weightseal.sig"), sig.to_bytes().unwrap()).unwrap();
    manifest
}

struct World {
    tmp: TempDir,
    model: PathBuf,
    export: PathBuf,
    publisher: Publisher,
}

impl World {
    fn new() -> World {
        let tmp = TempDir::new().unwrap();
        let model = tmp.path().join("model");
        write_model(&model);
        sign(&model, &[lab()]);
        let export = tmp.path().join("export");
        let mut w = World {
            tmp,
            model,
            export,
            publisher: Publisher::new(log_key()),
        };
        w.publish();
        w
    }

    fn publish(&mut self) {
        self.publisher.export(&self.export, ISSUED).unwrap();
    }

    fn revoke(&mut self, subject: Subject) {
        let entry = Entry {
            subject,
            action: Action::Revoke,
            reason: Reason::GuardrailsRemoved,
            issuer: public(&hub()),
            time: ISSUED - 10,
            evidence: Some("https://hub.example/reports/7".into()),
        }
        .sign(&hub())
        .unwrap();
        self.publisher.append(&entry);
        self.publish();
    }

    fn state(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    fn revocations(&self, state: &str) -> RevocationConfig {
        RevocationConfig::new(RevocationSource::ExportDir(self.export.clone()), self.state(state))
            .log_keys(vec![log_key().verifier_key()])
    }

    fn policy(&self, state: &str) -> weightseal_verifier::PolicyBuilder {
        Policy::builder()
            .trust(public(&lab()))
            .revocations(self.revocations(state))
            .clock(clock_fresh)
    }

    fn manifest_digest(&self) -> weightseal_verifier::Digest {
        let bytes = std::fs::read(self.model.join("weightseal.sig")).unwrap();
        SignatureFile::from_bytes(&bytes).unwrap().manifest_digest()
    }
}

fn refused(result: Result<LoadDecision, DecisionError>) -> DecisionError {
    match result {
        Ok(d) => panic!("expected a refusal, got a decision to load: {d:?}"),
        Err(e) => e,
    }
}

#[test]
fn a_signed_unrevoked_model_loads_with_its_status() {
    let w = World::new();
    let d = w.policy("s").build().unwrap().open(&w.model, None).unwrap();
    assert!(d.warnings().is_empty());
    assert!(matches!(
        d.revocation(),
        RevocationStatus::NotRevoked {
            snapshot_version: 1,
            ..
        }
    ));
    let (proof, findings) = d.verify_all(None).unwrap();
    assert!(findings.is_empty());
    let proof = proof.unwrap();
    assert!(matches!(proof.revocation(), RevocationStatus::NotRevoked { .. }));
}

#[test]
fn a_revoked_manifest_is_refused_naming_the_entry() {
    let mut w = World::new();
    w.revoke(Subject::manifest(w.manifest_digest()));
    let e = refused(w.policy("s").build().unwrap().open(&w.model, None));
    assert_eq!(e.kind(), RefusalKind::Revoked);
    let hits = e.revoked_hits().unwrap();
    assert_eq!(hits[0].entry.evidence.as_deref(), Some("https://hub.example/reports/7"));
    assert!(e.to_string().contains("guardrails-removed"), "{e}");
    // Named by the policy, the issuer appears by name beside its key id.
    let named = w
        .policy("s")
        .issuer_name(public(&hub()).id(), "hub.example")
        .build()
        .unwrap();
    let e = refused(named.open(&w.model, None));
    assert!(
        e.to_string()
            .contains(&format!("issuer hub.example ({})", public(&hub()).id().to_hex())),
        "{e}"
    );
}

#[test]
fn an_unreadable_clock_refuses() {
    let w = World::new();
    let e = refused(
        w.policy("s")
            .clock(clock_unreadable)
            .build()
            .unwrap()
            .open(&w.model, None),
    );
    assert_eq!(e.kind(), RefusalKind::StatusUnknown);
    assert!(e.to_string().contains("clock cannot be read"), "{e}");
}

#[test]
fn a_clock_before_the_snapshot_time_refuses() {
    let w = World::new();
    // Sync once with a good clock so that a snapshot is held...
    w.policy("s").build().unwrap().open(&w.model, None).unwrap();
    // ...then a clock set back (before the snapshot was signed) cannot judge freshness.
    let e = refused(
        w.policy("s")
            .clock(clock_before_snapshot)
            .build()
            .unwrap()
            .open(&w.model, None),
    );
    assert_eq!(e.kind(), RefusalKind::StatusUnknown);
    assert!(e.to_string().contains("before the held snapshot was signed"), "{e}");
}

#[test]
fn an_expired_snapshot_refuses_and_the_unsafe_opt_out_warns() {
    let w = World::new();
    let e = refused(
        w.policy("s")
            .clock(clock_after_expiry)
            .build()
            .unwrap()
            .open(&w.model, None),
    );
    assert_eq!(e.kind(), RefusalKind::StatusUnknown);
    let d = w
        .policy("s")
        .clock(clock_after_expiry)
        .unsafe_ignore_revocation_status()
        .build()
        .unwrap()
        .open(&w.model, None)
        .unwrap();
    assert!(matches!(d.revocation(), RevocationStatus::Unknown { .. }));
    assert_eq!(d.warnings().len(), 1);
    assert_eq!(d.warnings()[0].kind(), RefusalKind::StatusUnknown);
}

#[test]
fn max_staleness_refuses_an_old_but_unexpired_snapshot() {
    let w = World::new();
    fn clock_two_hours_later() -> Result<u64, ClockError> {
        Ok(ISSUED + 7200)
    }
    let policy = w.policy("s").clock(clock_two_hours_later);
    let e = refused(policy.max_staleness(3600).build().unwrap().open(&w.model, None));
    assert!(e.to_string().contains("over the accepted staleness"), "{e}");
    w.policy("s2")
        .clock(clock_two_hours_later)
        .max_staleness(3 * 3600)
        .build()
        .unwrap()
        .open(&w.model, None)
        .unwrap();
}

#[test]
fn the_log_key_is_pinned_by_the_library_and_a_different_one_is_refused() {
    let w = World::new();
    w.policy("s").build().unwrap().open(&w.model, None).unwrap();
    let pins = std::fs::read_to_string(w.state("s").join("pinned-keys.txt")).unwrap();
    assert_eq!(pins.trim(), log_key().verifier_key().to_string());
    // Later, the pinned key alone is enough (no key configured)...
    let held = RevocationConfig::new(RevocationSource::ExportDir(w.export.clone()), w.state("s"));
    Policy::builder()
        .trust(public(&lab()))
        .revocations(held)
        .clock(clock_fresh)
        .build()
        .unwrap()
        .open(&w.model, None)
        .unwrap();
    // ...and a different key is the caller's error (exit 2), not a silent re-pin.
    let other = NoteSignerKey::new(DEFAULT_ORIGIN, SigningKey::from_bytes(&[0x43; 32])).unwrap();
    let wrong = RevocationConfig::new(RevocationSource::ExportDir(w.export.clone()), w.state("s"))
        .log_keys(vec![other.verifier_key()]);
    let e = refused(
        Policy::builder()
            .trust(public(&lab()))
            .revocations(wrong)
            .clock(clock_fresh)
            .build()
            .unwrap()
            .open(&w.model, None),
    );
    assert_eq!(e.kind(), RefusalKind::Usage);
    assert!(e.to_string().contains("is pinned to the log key"), "{e}");
}

#[test]
fn a_failed_first_sync_pins_nothing() {
    let w = World::new();
    let missing = RevocationConfig::new(RevocationSource::ExportDir(w.state("no-export")), w.state("s"))
        .log_keys(vec![log_key().verifier_key()]);
    let e = refused(
        Policy::builder()
            .trust(public(&lab()))
            .revocations(missing)
            .clock(clock_fresh)
            .build()
            .unwrap()
            .open(&w.model, None),
    );
    assert_eq!(e.kind(), RefusalKind::StatusUnknown);
    assert!(!w.state("s").join("pinned-keys.txt").exists());
}

#[test]
fn the_state_folder_lock_serialises_two_holders() {
    use weightseal_verifier::revocation::local::LocalState;
    let w = World::new();
    let dir = w.state("s");
    let keys = vec![log_key().verifier_key()];
    let first = LocalState::open(&dir, &keys).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let dir2 = dir.clone();
    let keys2 = keys.clone();
    let waiter = std::thread::spawn(move || {
        let second = LocalState::open(&dir2, &keys2).unwrap();
        tx.send(()).unwrap();
        drop(second);
    });
    // While the first holder keeps the folder, the second cannot get it.
    assert!(rx.recv_timeout(std::time::Duration::from_millis(300)).is_err());
    drop(first);
    rx.recv_timeout(std::time::Duration::from_secs(10)).unwrap();
    waiter.join().unwrap();
}

#[test]
fn trust_refusals_have_their_kinds() {
    let w = World::new();
    // Wrong key.
    let wrong = Policy::builder().trust(public(&other_lab())).build().unwrap();
    assert_eq!(refused(wrong.open(&w.model, None)).kind(), RefusalKind::Untrusted);
    // Threshold not met.
    let two = Policy::builder()
        .trust(public(&lab()))
        .trust(public(&other_lab()))
        .threshold(2)
        .build()
        .unwrap();
    assert_eq!(refused(two.open(&w.model, None)).kind(), RefusalKind::Untrusted);
    // Unsigned file beside the weights: tampered, refused by the decision itself (a loader
    // reading tensor by tensor never lists the folder again).
    std::fs::write(w.model.join("modeling_custom.py"), b"import os").unwrap();
    let e = refused(
        Policy::builder()
            .trust(public(&lab()))
            .build()
            .unwrap()
            .open(&w.model, None),
    );
    assert_eq!(e.kind(), RefusalKind::Tampered);
    assert_eq!(e.tampered_at(), Some(("modeling_custom.py", None)));
    // In warn mode it is reported once, by the decision, and not again by the byte check.
    let warn = Policy::builder()
        .trust(public(&lab()))
        .mode(Mode::Warn)
        .build()
        .unwrap();
    let d = warn.open(&w.model, None).unwrap();
    assert_eq!(d.warnings().len(), 1);
    let (proof, findings) = d.verify_all(None).unwrap();
    assert!(proof.is_none() && findings.is_empty());
}

#[test]
fn warn_mode_reports_and_proceeds_and_keeps_the_bytes_read() {
    let w = World::new();
    // Flip one bit in t2.
    let path = w.model.join("model.safetensors");
    let mut bytes = std::fs::read(&path).unwrap();
    let t2 = bytes.len() - 2 * 4096 + 5;
    bytes[t2] ^= 1;
    std::fs::write(&path, &bytes).unwrap();
    let enforce = Policy::builder()
        .trust(public(&lab()))
        .build()
        .unwrap()
        .open(&w.model, None)
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let e = enforce.read_tensor_into("t2", &mut buf).unwrap_err();
    assert_eq!(e.tampered_at(), Some(("model.safetensors", Some("t2"))));
    assert!(buf.iter().all(|&b| b == 0), "enforce wipes the buffer");
    assert!(enforce.read_tensor_into("t1", &mut buf).unwrap().is_none());

    let warn = Policy::builder()
        .trust(public(&lab()))
        .mode(Mode::Warn)
        .build()
        .unwrap()
        .open(&w.model, None)
        .unwrap();
    // The header is signed bytes too; flip one of them and both modes see it.
    let mut header_flipped = bytes.clone();
    header_flipped[12] ^= 0x20;
    std::fs::write(&path, &header_flipped).unwrap();
    assert_eq!(
        enforce.read_header("model.safetensors").unwrap_err().kind(),
        RefusalKind::Tampered
    );
    let (header, finding) = warn.read_header("model.safetensors").unwrap();
    assert_eq!(finding.unwrap().kind(), RefusalKind::Tampered);
    assert_eq!(
        header[12], header_flipped[12],
        "warn mode hands over the header as read"
    );
    std::fs::write(&path, &bytes).unwrap();
    let (_, finding) = warn.read_header("model.safetensors").unwrap();
    assert!(finding.is_none());
    let warning = warn.read_tensor_into("t2", &mut buf).unwrap().expect("a warning");
    assert_eq!(warning.kind(), RefusalKind::Tampered);
    assert_eq!(buf[5], bytes[t2], "warn mode hands over the bytes as read");
    // Usage errors stay errors in warn mode.
    assert_eq!(
        warn.read_tensor_into("nope", &mut buf).unwrap_err().kind(),
        RefusalKind::Usage
    );
    // An untrusted model is let through without a manifest, with the finding.
    let untrusted = Policy::builder()
        .trust(public(&other_lab()))
        .mode(Mode::Warn)
        .build()
        .unwrap()
        .open(&w.model, None)
        .unwrap();
    assert!(untrusted.model().is_none());
    assert_eq!(untrusted.warnings()[0].kind(), RefusalKind::Untrusted);
}

#[test]
fn unsigned_models_are_refused_or_checked_by_content() {
    let mut w = World::new();
    let unsigned = w.tmp.path().join("unsigned");
    write_model(&unsigned);
    let strict = w.policy("s").build().unwrap();
    assert_eq!(refused(strict.open(&unsigned, None)).kind(), RefusalKind::Untrusted);
    let lax = w
        .policy("s")
        .unsigned_models(UnsignedModels::CheckRevocations)
        .build()
        .unwrap();
    let d = lax.open(&unsigned, None).unwrap();
    assert!(d.model().is_none());
    assert!(matches!(d.revocation(), RevocationStatus::NotRevoked { .. }));
    // Revoke one tensor's content: the unsigned copy is refused through it.
    let manifest = sign(&w.model, &[lab()]);
    let t1 = manifest.files[0]
        .chunks
        .iter()
        .find(|c| c.tensor_name() == Some("t1"))
        .unwrap()
        .digest;
    w.revoke(Subject::content(t1));
    let e = refused(lax.open(&unsigned, None));
    assert_eq!(e.kind(), RefusalKind::Revoked);
    assert!(e.to_string().contains("tensor t1"), "{e}");
}

#[test]
fn a_shard_inside_a_signed_folder_finds_the_folder_signature() {
    let w = World::new();
    let policy = Policy::builder().trust(public(&lab())).build().unwrap();
    let d = policy.open(&w.model.join("model.safetensors"), None).unwrap();
    assert_eq!(d.signature_path(), w.model.join("weightseal.sig"));
    d.verify_all(None).unwrap();
}

#[test]
fn a_policy_file_decides_as_the_same_policy_built_in_code() {
    let mut w = World::new();
    // These policies read the real clock: publish a snapshot issued now.
    let now = weightseal_verifier::clock::now_unix().unwrap();
    w.publisher.export(&w.export, now).unwrap();
    let dir = w.tmp.path().join("policy");
    std::fs::create_dir_all(&dir).unwrap();
    use ed25519_dalek::pkcs8::EncodePublicKey as _;
    let pem = lab().verifying_key().to_public_key_pem(Default::default()).unwrap();
    std::fs::write(dir.join("lab.pub"), pem).unwrap();
    let text = format!(
        "mode = \"enforce\"\ntrusted_keys = [\"lab.pub\"]\nthreshold = 1\n[issuer_names]\n\"{}\" = \"hub.example\"\n[revocations]\nsource = \"../export\"\nlog_key = \"{}\"\nstate = \"state\"\n",
        public(&hub()).id().to_hex(),
        log_key().verifier_key()
    );
    std::fs::write(dir.join("policy.toml"), &text).unwrap();
    let from_file = Policy::from_file(&dir.join("policy.toml")).unwrap();
    let in_code = Policy::builder()
        .trust(public(&lab()))
        .threshold(1)
        .revocations(
            RevocationConfig::new(RevocationSource::ExportDir(w.export.clone()), w.state("code-state"))
                .log_keys(vec![log_key().verifier_key()]),
        )
        .build()
        .unwrap();
    // Both load the clean model...
    from_file.open(&w.model, None).unwrap();
    in_code.open(&w.model, None).unwrap();
    assert!(
        dir.join("state").join("pinned-keys.txt").exists(),
        "state is relative to the file"
    );
    // ...and both refuse it, for the same reason, once it is revoked. (The real clock is
    // used here: the snapshot is re-issued now.)
    let digest = w.manifest_digest();
    let entry = Entry {
        subject: Subject::manifest(digest),
        action: Action::Revoke,
        reason: Reason::GuardrailsRemoved,
        issuer: public(&hub()),
        time: 1_700_000_000,
        evidence: None,
    }
    .sign(&hub())
    .unwrap();
    w.publisher.append(&entry);
    w.publisher.export(&w.export, now).unwrap();
    let a = refused(from_file.open(&w.model, None));
    let b = refused(in_code.open(&w.model, None));
    assert_eq!((a.kind(), b.kind()), (RefusalKind::Revoked, RefusalKind::Revoked));
    assert_eq!(a.revoked_hits().unwrap()[0].entry, b.revoked_hits().unwrap()[0].entry);
    assert!(a.to_string().contains("issuer hub.example"), "{a}");
}

#[test]
fn bad_policy_files_name_what_is_wrong() {
    let tmp = TempDir::new().unwrap();
    let cases = [
        ("mode = \"audit\"\n", "mode"),
        ("trusted_keys = [\"missing.pub\"]\n", "missing.pub"),
        ("trusted_keys = []\nthreshhold = 1\n", "threshhold"),
        ("not toml at all = = =\n", "policy file"),
        ("unsigned_models = \"check-revocations\"\n", "revocations"),
    ];
    for (text, needle) in cases {
        let path = tmp.path().join("p.toml");
        std::fs::write(&path, text).unwrap();
        let e = Policy::from_file(&path).unwrap_err();
        assert_eq!(e.kind(), RefusalKind::Usage, "{text}");
        let msg = e.to_string();
        assert!(msg.contains(needle) && msg.contains("p.toml"), "{text}: {msg}");
    }
}

fn witness(seed: u8) -> weightseal_log::cosignature::WitnessSigner {
    weightseal_log::cosignature::WitnessSigner::new(
        &format!("witness.example/w{seed}"),
        SigningKey::from_bytes(&[seed; 32]),
    )
    .unwrap()
}

#[test]
fn a_policy_requiring_two_of_three_witnesses_refuses_a_checkpoint_they_did_not_cosign() {
    let mut w = World::new();
    let now = weightseal_verifier::clock::now_unix().unwrap();
    w.publisher.export(&w.export, now).unwrap();
    let dir = w.tmp.path().join("policy");
    std::fs::create_dir_all(&dir).unwrap();
    use ed25519_dalek::pkcs8::EncodePublicKey as _;
    let pem = lab().verifying_key().to_public_key_pem(Default::default()).unwrap();
    std::fs::write(dir.join("lab.pub"), pem).unwrap();
    let keys: Vec<String> = [1u8, 2, 3].iter().map(|s| witness(*s).public().to_string()).collect();
    let text = format!(
        "trusted_keys = [\"lab.pub\"]\n[revocations]\nsource = \"../export\"\nlog_key = \"{}\"\nstate = \"state\"\nwitnesses = [\"{}\", \"{}\", \"{}\"]\nwitness_quorum = 2\n",
        log_key().verifier_key(),
        keys[0],
        keys[1],
        keys[2]
    );
    std::fs::write(dir.join("policy.toml"), &text).unwrap();
    let from_file = Policy::from_file(&dir.join("policy.toml")).unwrap();
    let in_code = Policy::builder()
        .trust(public(&lab()))
        .revocations(
            RevocationConfig::new(RevocationSource::ExportDir(w.export.clone()), w.state("code-state"))
                .log_keys(vec![log_key().verifier_key()])
                .witnesses(&keys, 2)
                .unwrap(),
        )
        .build()
        .unwrap();
    // Signed by the log alone, and then by one witness: status unknown, refused (fail closed).
    for cosigners in [vec![], vec![witness(2)]] {
        w.publisher.witnesses = cosigners;
        w.publisher.export(&w.export, now).unwrap();
        for policy in [&from_file, &in_code] {
            let err = refused(policy.open(&w.model, None));
            assert_eq!(err.kind(), RefusalKind::StatusUnknown, "{err}");
            assert!(err.to_string().contains("2 are required"), "{err}");
        }
    }
    // Two of the three: accepted by both.
    w.publisher.witnesses = vec![witness(1), witness(3)];
    w.publisher.export(&w.export, now).unwrap();
    from_file.open(&w.model, None).unwrap();
    in_code.open(&w.model, None).unwrap();
    // Without witness_quorum every listed witness must cosign.
    let all = text
        .replace("witness_quorum = 2\n", "")
        .replace("state = \"state\"", "state = \"state-all\"");
    std::fs::write(dir.join("all.toml"), all).unwrap();
    let err = refused(Policy::from_file(&dir.join("all.toml")).unwrap().open(&w.model, None));
    assert!(err.to_string().contains("3 are required"), "{err}");
    // Settings that would silently trust the log alone, or cannot be met, are refused.
    for (bad, named) in [
        (
            text.replace(
                &format!("witnesses = [\"{}\", \"{}\", \"{}\"]\n", keys[0], keys[1], keys[2]),
                "",
            ),
            "witness_quorum",
        ),
        (text.replace("witness_quorum = 2", "witness_quorum = 4"), "quorum 4"),
        (text.replace("witness_quorum = 2", "witness_quorum = 0"), "quorum 0"),
        (text.replace(&keys[1], &log_key().verifier_key().to_string()), "0x01"),
    ] {
        std::fs::write(dir.join("bad.toml"), &bad).unwrap();
        let err = Policy::from_file(&dir.join("bad.toml")).unwrap_err().to_string();
        assert!(err.contains(named), "{named}: {err}");
    }
}
