//! Signing a log key rotation statement (spec/revocation.md §5.2). The statement, its leaf
//! format and how a client follows it are `weightseal_verifier::revocation::rotation`.

use weightseal_verifier::revocation::rotation::{RotationError, RotationStatement};

use crate::note::{sign_note_by, NoteSignerKey};

/// Signs the statement that `old` hands over to `new` with both keys (old first) and
/// returns it with its leaf bytes (the whole signed note). Ed25519 is deterministic, so the
/// same two keys always give the same leaf: a log appends it once.
pub fn sign_rotation(old: &NoteSignerKey, new: &NoteSignerKey) -> Result<(RotationStatement, Vec<u8>), RotationError> {
    let statement = RotationStatement::new(old.verifier_key(), new.verifier_key())?;
    let note = sign_note_by(&statement.body(), &[old, new]).map_err(RotationError::Note)?;
    Ok((statement, note.into_bytes()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "test")]
mod tests {
    use super::*;
    use ed25519_dalek::SigningKey;
    use weightseal_verifier::revocation::rotation::{is_rotation_leaf, Role};

    fn signer(name: &str, seed: u8) -> NoteSignerKey {
        NoteSignerKey::new(name, SigningKey::from_bytes(&[seed; 32])).unwrap()
    }

    #[test]
    fn signed_rotations_are_leaves_a_client_reads_back() {
        let (old, new) = (signer("example.test/log", 1), signer("example.test/log", 2));
        let (statement, leaf) = sign_rotation(&old, &new).unwrap();
        assert!(is_rotation_leaf(&leaf));
        assert_eq!(RotationStatement::from_leaf(&leaf).unwrap(), statement);
        assert_eq!(sign_rotation(&old, &new).unwrap().1, leaf);
        assert!(matches!(sign_rotation(&old, &old), Err(RotationError::SameKey { .. })));
        assert!(matches!(
            sign_rotation(&old, &signer("other.test/log", 2)),
            Err(RotationError::KeyName { role: Role::New, .. })
        ));
    }
}
