//! Witness cosignatures and the client's quorum (spec/revocation.md §5.1): checkpoints
//! cosigned by the witness signer of `weightseal-log` and counted by this crate's
//! `WitnessPolicy`, so the two halves are checked against each other.
#![allow(clippy::unwrap_used, reason = "test")]

use ed25519_dalek::SigningKey;
use weightseal_log::cosignature::WitnessSigner;
use weightseal_log::note::NoteSignerKey;
use weightseal_log::snapshot::sign_checkpoint;
use weightseal_verifier::revocation::cosignature::{CosignatureError, WitnessKey, WitnessPolicy};
use weightseal_verifier::revocation::note::{Checkpoint, NoteVerifierKey};
use weightseal_verifier::revocation::snapshot::open_checkpoint;

fn witness(seed: u8, name: &str) -> WitnessSigner {
    WitnessSigner::new(name, SigningKey::from_bytes(&[seed; 32])).unwrap()
}

fn checkpoint() -> (String, String, NoteVerifierKey) {
    let log = NoteSignerKey::new("example.com/log", SigningKey::from_bytes(&[1; 32])).unwrap();
    let c = Checkpoint {
        origin: "example.com/log".into(),
        size: 5,
        root: [9; 32],
        extensions: vec![],
    };
    (c.to_body(), sign_checkpoint(&c, &log).unwrap(), log.verifier_key())
}

#[test]
fn key_strings_round_trip_and_refuse_log_keys() {
    let w = witness(2, "witness.example/w1");
    let text = w.public().to_string();
    assert_eq!(text.parse::<WitnessKey>().unwrap(), *w.public());
    // A log (0x01) key string is not a witness key.
    let log = NoteSignerKey::new("witness.example/w1", SigningKey::from_bytes(&[2; 32])).unwrap();
    let err = log.verifier_key().to_string().parse::<WitnessKey>().unwrap_err();
    assert!(err.to_string().contains("0x01"), "{err}");
    // A wrong key ID.
    let mut bad = text.clone();
    bad.replace_range(19..27, "00000000");
    assert!(bad.parse::<WitnessKey>().is_err());
    assert!("nothing".parse::<WitnessKey>().is_err());
}

#[test]
fn quorum_counts_distinct_valid_trusted_cosignatures() {
    let (body, note, log_key) = checkpoint();
    let (w1, w2, w3) = (
        witness(2, "w1.example"),
        witness(3, "w2.example"),
        witness(4, "w3.example"),
    );
    let policy = WitnessPolicy::new(vec![w1.public().clone(), w2.public().clone(), w3.public().clone()], 2).unwrap();
    // The log's signature alone: refused, naming nobody.
    let err = policy.check(&note).unwrap_err();
    assert_eq!(
        err,
        CosignatureError::QuorumNotMet {
            needed: 2,
            found: 0,
            witnesses: vec![]
        }
    );
    let one = format!("{note}{}", w1.cosign(&body, 100).unwrap());
    // The same witness twice still counts once.
    let twice = format!("{one}{}", w1.cosign(&body, 101).unwrap());
    assert!(matches!(
        policy.check(&twice),
        Err(CosignatureError::QuorumNotMet { found: 1, .. })
    ));
    let two = format!("{one}{}", w3.cosign(&body, 102).unwrap());
    let ok = policy.check(&two).unwrap();
    assert_eq!(ok, vec![("w1.example".to_owned(), 100), ("w3.example".to_owned(), 102)]);
    // The log signature still verifies with the cosignatures on the note.
    assert_eq!(open_checkpoint(two.as_bytes(), &[log_key]).unwrap().size, 5);
    // A cosignature for another checkpoint body does not count.
    let other = body.replace("\n5\n", "\n6\n");
    let moved = format!("{one}{}", w2.cosign(&other, 103).unwrap());
    assert!(matches!(
        policy.check(&moved),
        Err(CosignatureError::QuorumNotMet { found: 1, .. })
    ));
    // A cosignature by an untrusted witness under a trusted name does not count.
    let impostor = witness(9, "w2.example");
    let forged = format!("{one}{}", impostor.cosign(&body, 104).unwrap());
    assert!(matches!(
        policy.check(&forged),
        Err(CosignatureError::QuorumNotMet { found: 1, .. })
    ));
    // A changed timestamp breaks the signature.
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let line = w2.cosign(&body, 105).unwrap();
    let (head, blob) = line.trim_end().rsplit_once(' ').unwrap();
    let mut raw = b64.decode(blob).unwrap();
    raw[11] ^= 1;
    let tampered = format!("{one}{head} {}\n", b64.encode(raw));
    assert!(matches!(
        policy.check(&tampered),
        Err(CosignatureError::QuorumNotMet { found: 1, .. })
    ));
    assert!(WitnessPolicy::none().check(&note).unwrap().is_empty());
}

#[test]
fn policies_that_would_trust_the_log_alone_are_refused() {
    let w1 = witness(2, "w1.example");
    assert!(WitnessPolicy::new(vec![], 0).is_err());
    assert!(WitnessPolicy::new(vec![w1.public().clone()], 0).is_err());
    assert!(WitnessPolicy::new(vec![w1.public().clone()], 2).is_err());
    let same_key = WitnessKey::new("other.example", *w1.public().key()).unwrap();
    assert!(WitnessPolicy::new(vec![w1.public().clone(), same_key], 1).is_err());
}
