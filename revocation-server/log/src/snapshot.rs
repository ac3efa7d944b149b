//! Signing the log's checkpoints and snapshots (spec/revocation.md §5). Their bodies and
//! the rules a client opens them by are `weightseal_verifier::revocation::snapshot` and
//! `::note`; every key that signs must be named as the log's origin, so that what is signed
//! here is what a client pinned to that key accepts.

use weightseal_verifier::revocation::note::Checkpoint;
use weightseal_verifier::revocation::snapshot::{Snapshot, SnapshotError};

use crate::note::{sign_note_by, NoteSignerKey};

/// A snapshot of `checkpoint`'s tree (origin, size, root) at `version`, issued at `issued`
/// (Unix seconds) and valid for `ttl_secs`.
pub fn snapshot_for_checkpoint(checkpoint: &Checkpoint, version: u64, issued: u64, ttl_secs: u64) -> Snapshot {
    Snapshot {
        origin: checkpoint.origin.clone(),
        version,
        size: checkpoint.size,
        root: checkpoint.root,
        issued,
        expires: issued.saturating_add(ttl_secs),
    }
}

/// Refuses a signer whose key name is not the origin of what it would sign: a client finds
/// the log's key by that name, and would refuse the note anyway.
fn check_origin(what: &'static str, origin: &str, keys: &[&NoteSignerKey]) -> Result<(), SnapshotError> {
    match keys.iter().find(|k| k.name() != origin) {
        Some(k) => Err(SnapshotError::WrongOrigin {
            what,
            found: origin.to_owned(),
            signed_by: vec![k.name().to_owned()],
        }),
        None => Ok(()),
    }
}

/// Signs `snapshot` with the log key; the key name must be the origin.
pub fn sign_snapshot(snapshot: &Snapshot, key: &NoteSignerKey) -> Result<String, SnapshotError> {
    sign_snapshot_by(snapshot, &[key])
}

/// Signs `snapshot` with each of `keys` (one signature line each), as a log does during a
/// key rotation (spec/revocation.md §5.2); every key name must be the origin.
pub fn sign_snapshot_by(snapshot: &Snapshot, keys: &[&NoteSignerKey]) -> Result<String, SnapshotError> {
    check_origin("snapshot", &snapshot.origin, keys)?;
    sign_note_by(&snapshot.to_body()?, keys).map_err(|source| SnapshotError::Note {
        what: "snapshot",
        source,
    })
}

/// Signs a checkpoint with the log key; the key name must be the origin.
pub fn sign_checkpoint(checkpoint: &Checkpoint, key: &NoteSignerKey) -> Result<String, SnapshotError> {
    sign_checkpoint_by(checkpoint, &[key])
}

/// Signs a checkpoint with each of `keys` (one signature line each), as a log does during a
/// key rotation (spec/revocation.md §5.2); every key name must be the origin.
pub fn sign_checkpoint_by(checkpoint: &Checkpoint, keys: &[&NoteSignerKey]) -> Result<String, SnapshotError> {
    let note = |source| SnapshotError::Note {
        what: "checkpoint",
        source,
    };
    checkpoint.validate().map_err(note)?;
    check_origin("checkpoint", &checkpoint.origin, keys)?;
    sign_note_by(&checkpoint.to_body(), keys).map_err(note)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "test")]
mod tests {
    use super::*;
    use ed25519_dalek::SigningKey;
    use weightseal_verifier::revocation::snapshot::{open_checkpoint, DEFAULT_ORIGIN, DEFAULT_TTL_SECS};

    fn signer(name: &str, seed: u8) -> NoteSignerKey {
        NoteSignerKey::new(name, SigningKey::from_bytes(&[seed; 32])).unwrap()
    }

    fn checkpoint() -> Checkpoint {
        Checkpoint {
            origin: DEFAULT_ORIGIN.into(),
            size: 300,
            root: [5; 32],
            extensions: vec![],
        }
    }

    #[test]
    fn signed_snapshots_open_with_the_log_key_only() {
        let s = snapshot_for_checkpoint(&checkpoint(), 7, 1000, DEFAULT_TTL_SECS);
        assert_eq!(s.expires, 1000 + DEFAULT_TTL_SECS);
        assert!(s.matches(&checkpoint()));
        let k = signer(DEFAULT_ORIGIN, 1);
        let note = sign_snapshot(&s, &k).unwrap();
        assert_eq!(Snapshot::open(note.as_bytes(), &[k.verifier_key()]).unwrap(), s);
        let other = signer(DEFAULT_ORIGIN, 2);
        assert!(matches!(
            Snapshot::open(note.as_bytes(), &[other.verifier_key()]),
            Err(SnapshotError::Note { .. })
        ));
        let both = sign_snapshot_by(&s, &[&k, &other]).unwrap();
        assert_eq!(Snapshot::open(both.as_bytes(), &[other.verifier_key()]).unwrap(), s);
        assert!(matches!(
            sign_snapshot(&s, &signer("other", 1)),
            Err(SnapshotError::WrongOrigin { .. })
        ));
        // A window that ends before it starts is not signed.
        let bad = Snapshot { expires: 1000, ..s };
        assert!(matches!(sign_snapshot(&bad, &k), Err(SnapshotError::BadWindow { .. })));
    }

    #[test]
    fn signed_checkpoints_open_and_bad_ones_are_not_signed() {
        let k = signer(DEFAULT_ORIGIN, 1);
        let cp = checkpoint();
        let note = sign_checkpoint(&cp, &k).unwrap();
        assert_eq!(open_checkpoint(note.as_bytes(), &[k.verifier_key()]).unwrap(), cp);
        assert!(matches!(
            sign_checkpoint(&cp, &signer("elsewhere", 1)),
            Err(SnapshotError::WrongOrigin { .. })
        ));
        let empty = Checkpoint {
            origin: String::new(),
            ..cp
        };
        assert!(matches!(sign_checkpoint(&empty, &k), Err(SnapshotError::Note { .. })));
    }
}
