//! Log key rotation (spec/revocation.md §5.2): the **rotation statement**, a leaf of the log in
//! which the log's old key announces its new key.
//!
//! The statement is a C2SP signed note whose leaf bytes are the exact note:
//!
//! ```text
//! weightseal-log-rotation/v1
//! <origin>
//! old <old note verifier key>
//! new <new note verifier key>
//!
//! — <origin> <signature by the old key>
//! — <origin> <signature by the new key>
//! ```
//!
//! Being a leaf, it is part of the append-only history: it is covered by every later
//! checkpoint, cosigned by the witnesses with them, and cannot be shown to one client and
//! hidden from another without a split view. The old key's signature is the authority (a
//! client pinned to the old key follows only what that key signed); the new key's signature
//! proves that the log holds the new private key before any client switches to it, so a
//! mistyped key cannot strand every client.
//!
//! A signed entry (spec/revocation.md §2.2) is a CBOR map and starts with byte `0xa2`; a
//! rotation statement starts with the ASCII text `weightseal-log-rotation/v1\n`, so one leaf
//! can never be read as both.

use std::fmt;

use ed25519_dalek::Signature;

use crate::revocation::note::{check_name, hex4, split_note, NoteError, NoteVerifierKey};

/// The first line of every rotation statement.
pub const ROTATION_HEADER: &str = "weightseal-log-rotation/v1";
/// The largest rotation statement accepted, in bytes: the leaf limit of spec/revocation.md §2.2.
pub const MAX_ROTATION_BYTES: usize = crate::revocation::entry::MAX_SIGNED_ENTRY_BYTES;

/// Whether a leaf is a rotation statement (rather than a signed entry). Decides only which
/// decoder reads it: [`RotationStatement::from_leaf`] still checks all of it.
pub fn is_rotation_leaf(leaf: &[u8]) -> bool {
    leaf.strip_prefix(ROTATION_HEADER.as_bytes())
        .is_some_and(|rest| rest.first() == Some(&b'\n'))
}

/// A note key as clients name it: key name and 4-byte key ID (`<name>+<8 hex digits>`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LogKeyRef {
    /// The key name (the log origin).
    pub name: String,
    /// The note key ID.
    pub key_id: [u8; 4],
}

impl LogKeyRef {
    /// The reference of a verifier key.
    pub fn of(key: &NoteVerifierKey) -> Self {
        LogKeyRef {
            name: key.name().to_owned(),
            key_id: key.key_id(),
        }
    }
}

impl fmt::Display for LogKeyRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}+{}", self.name, hex4(&self.key_id))
    }
}

/// Which of the statement's two keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The key being retired, whose signature authorizes the rotation.
    Old,
    /// The key being announced.
    New,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Old => "old",
            Role::New => "new",
        })
    }
}

/// Why a rotation statement was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RotationError {
    /// Over [`MAX_ROTATION_BYTES`].
    #[error("rotation statement is {size} bytes, over the limit of {max}")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// Not UTF-8 text.
    #[error("rotation statement is not UTF-8 (first bad byte at offset {offset})")]
    InvalidUtf8 {
        /// Byte offset of the first invalid sequence.
        offset: usize,
    },
    /// The signed-note framing is wrong (no blank line, a malformed signature line, …).
    #[error("rotation statement: {0}")]
    Note(NoteError),
    /// The body does not have exactly four lines.
    #[error("rotation statement body has {found} lines, expected 4")]
    LineCount {
        /// Lines found.
        found: usize,
    },
    /// Line 1 is not [`ROTATION_HEADER`].
    #[error("rotation statement line 1 is not {ROTATION_HEADER:?}")]
    Header,
    /// Line 2 is not a valid origin (a note key name).
    #[error("rotation statement line 2: {0}")]
    Origin(NoteError),
    /// Line 3 or 4 is not `old <key>` / `new <key>`.
    #[error("rotation statement: expected the line \"{role} <note verifier key>\"")]
    KeyLine {
        /// Which line.
        role: Role,
    },
    /// The key on a key line is not a valid note verifier key.
    #[error("rotation statement: the {role} key is invalid: {source}")]
    Key {
        /// Which key.
        role: Role,
        /// Why.
        source: NoteError,
    },
    /// The key is valid but not written in its one canonical form.
    #[error("rotation statement: the {role} key is not in canonical form")]
    NotCanonical {
        /// Which key.
        role: Role,
    },
    /// A key's name is not the statement's origin (a log's keys are named by its origin).
    #[error("rotation statement: the {role} key is named {name:?}, not the origin {origin:?}")]
    KeyName {
        /// Which key.
        role: Role,
        /// Its name.
        name: String,
        /// The origin.
        origin: String,
    },
    /// Old and new are the same key.
    #[error("rotation statement announces the key it retires ({key})")]
    SameKey {
        /// The key.
        key: LogKeyRef,
    },
    /// Old and new are different keys with the same note key ID, which clients could not
    /// tell apart.
    #[error("rotation statement: the old and new keys share the key ID {key}")]
    KeyIdCollision {
        /// The shared name and ID.
        key: LogKeyRef,
    },
    /// Not exactly two signature lines.
    #[error("rotation statement has {found} signature lines, expected 2 (old key, then new key)")]
    SignatureCount {
        /// Lines found.
        found: usize,
    },
    /// A signature line is not by the key expected at its place (old first, new second).
    #[error("rotation statement line {line}: expected the signature of the {role} key {expected}")]
    SignatureOrder {
        /// 1-based line number.
        line: usize,
        /// Whose signature belongs there.
        role: Role,
        /// That key.
        expected: LogKeyRef,
    },
    /// A signature does not verify.
    #[error("rotation statement: the signature of the {role} key {key} does not verify")]
    BadSignature {
        /// Whose.
        role: Role,
        /// The key.
        key: LogKeyRef,
    },
    /// The statement is about another log than the one it was found in.
    #[error("rotation statement is for the log {found:?}, found in the log {log:?}")]
    OtherLog {
        /// The statement's origin.
        found: String,
        /// The log's origin.
        log: String,
    },
}

/// A verified rotation statement: the log `origin` retires key `old` for key `new`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotationStatement {
    /// The log origin (both keys' name).
    pub(crate) origin: String,
    /// The key retired; its signature authorizes the rotation.
    pub(crate) old: NoteVerifierKey,
    /// The key announced.
    pub(crate) new: NoteVerifierKey,
}

impl RotationStatement {
    /// The log's origin (the name of both keys).
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The key being retired (the authority for the rotation).
    pub fn old_key(&self) -> &NoteVerifierKey {
        &self.old
    }

    /// The key being announced.
    pub fn new_key(&self) -> &NoteVerifierKey {
        &self.new
    }

    /// The statement that `old` hands over to `new`; both must be named by the same origin
    /// and be different keys.
    pub fn new(old: NoteVerifierKey, new: NoteVerifierKey) -> Result<Self, RotationError> {
        let origin = old.name().to_owned();
        check_name(&origin).map_err(RotationError::Origin)?;
        let statement = RotationStatement { origin, old, new };
        statement.check_keys()?;
        Ok(statement)
    }

    fn check_keys(&self) -> Result<(), RotationError> {
        for (role, key) in [(Role::Old, &self.old), (Role::New, &self.new)] {
            if key.name() != self.origin {
                return Err(RotationError::KeyName {
                    role,
                    name: key.name().to_owned(),
                    origin: self.origin.clone(),
                });
            }
        }
        if self.old.key() == self.new.key() {
            return Err(RotationError::SameKey {
                key: LogKeyRef::of(&self.old),
            });
        }
        if self.old.key_id() == self.new.key_id() {
            return Err(RotationError::KeyIdCollision {
                key: LogKeyRef::of(&self.old),
            });
        }
        Ok(())
    }

    /// The note body (four lines, each ending in a newline).
    pub fn body(&self) -> String {
        format!(
            "{ROTATION_HEADER}\n{}\nold {}\nnew {}\n",
            self.origin, self.old, self.new
        )
    }

    /// Decodes and verifies a rotation leaf: the exact four-line body, exactly two signature
    /// lines, the old key's then the new key's, each verifying (strict Ed25519).
    pub fn from_leaf(leaf: &[u8]) -> Result<Self, RotationError> {
        if leaf.len() > MAX_ROTATION_BYTES {
            return Err(RotationError::TooLarge {
                size: leaf.len(),
                max: MAX_ROTATION_BYTES,
            });
        }
        let text = std::str::from_utf8(leaf).map_err(|e| RotationError::InvalidUtf8 {
            offset: e.valid_up_to(),
        })?;
        let (body, lines) = split_note(text).map_err(RotationError::Note)?;
        let statement = Self::parse_body(body)?;
        if lines.len() != 2 {
            return Err(RotationError::SignatureCount { found: lines.len() });
        }
        for (line, (role, key)) in lines
            .iter()
            .zip([(Role::Old, &statement.old), (Role::New, &statement.new)])
        {
            if line.name != key.name() || line.key_id != key.key_id() {
                return Err(RotationError::SignatureOrder {
                    line: line.line,
                    role,
                    expected: LogKeyRef::of(key),
                });
            }
            let bad = || RotationError::BadSignature {
                role,
                key: LogKeyRef::of(key),
            };
            let sig = <[u8; Signature::BYTE_SIZE]>::try_from(line.signature.as_slice()).map_err(|_| bad())?;
            key.key()
                .verify_strict(body.as_bytes(), &Signature::from_bytes(&sig))
                .map_err(|_| bad())?;
        }
        Ok(statement)
    }

    fn parse_body(body: &str) -> Result<Self, RotationError> {
        let lines: Vec<&str> = body.strip_suffix('\n').unwrap_or(body).split('\n').collect();
        let [header, origin, old, new] = lines.as_slice() else {
            return Err(RotationError::LineCount { found: lines.len() });
        };
        if *header != ROTATION_HEADER {
            return Err(RotationError::Header);
        }
        check_name(origin).map_err(RotationError::Origin)?;
        let key = |role: Role, line: &str| -> Result<NoteVerifierKey, RotationError> {
            let text = line
                .strip_prefix(match role {
                    Role::Old => "old ",
                    Role::New => "new ",
                })
                .ok_or(RotationError::KeyLine { role })?;
            let key: NoteVerifierKey = text.parse().map_err(|source| RotationError::Key { role, source })?;
            // One spelling per statement, so one leaf (and one leaf hash) per rotation.
            if key.to_string() != text {
                return Err(RotationError::NotCanonical { role });
            }
            Ok(key)
        };
        let statement = RotationStatement {
            origin: (*origin).to_owned(),
            old: key(Role::Old, old)?,
            new: key(Role::New, new)?,
        };
        statement.check_keys()?;
        Ok(statement)
    }

    /// The pins after following this statement: when `pins` holds the old key, it is
    /// replaced by the new one (the old key is retired, spec/revocation.md §7.6); otherwise
    /// the statement is history about keys this client does not follow and changes nothing
    /// (`None`).
    pub fn follow(&self, pins: &[NoteVerifierKey]) -> Option<Vec<NoteVerifierKey>> {
        if !pins.contains(&self.old) {
            return None;
        }
        let mut out: Vec<NoteVerifierKey> = pins.iter().filter(|k| **k != self.old).cloned().collect();
        if !out.contains(&self.new) {
            out.push(self.new.clone());
        }
        Some(out)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a test fails by panicking")]
mod tests {
    use super::*;
    use crate::revocation::test_signing::{test_note, TestSigner};

    const ORIGIN: &str = "example.test/log";

    fn signer(seed: u8) -> TestSigner {
        TestSigner::new(ORIGIN, seed)
    }

    /// What the log's `sign_rotation` (weightseal-log) writes: the statement signed by the old
    /// key, then the new.
    fn sign(old: &TestSigner, new: &TestSigner) -> Result<(RotationStatement, Vec<u8>), RotationError> {
        let statement = RotationStatement::new(old.verifier_key(), new.verifier_key())?;
        let note = test_note(&statement.body(), &[old, new]);
        Ok((statement, note.into_bytes()))
    }

    fn text(leaf: &[u8]) -> String {
        String::from_utf8(leaf.to_vec()).unwrap()
    }

    #[test]
    fn signed_statement_round_trips_and_is_told_apart_from_entries() {
        let (old, new) = (signer(1), signer(2));
        let (statement, leaf) = sign(&old, &new).unwrap();
        assert!(is_rotation_leaf(&leaf));
        assert!(!is_rotation_leaf(b"weightseal-log-rotation/v10\n"));
        assert!(!is_rotation_leaf(&[0xa2, 0x63]));
        assert_eq!(RotationStatement::from_leaf(&leaf).unwrap(), statement);
        assert_eq!(statement.old, old.verifier_key());
        assert_eq!(statement.new, new.verifier_key());
        // Deterministic: the same rotation is the same leaf.
        assert_eq!(sign(&old, &new).unwrap().1, leaf);
    }

    #[test]
    fn follow_replaces_only_a_pinned_old_key() {
        let (old, new, other) = (signer(1), signer(2), signer(3));
        let (s, _) = sign(&old, &new).unwrap();
        assert_eq!(s.follow(&[old.verifier_key()]), Some(vec![new.verifier_key()]));
        assert_eq!(
            s.follow(&[old.verifier_key(), new.verifier_key()]),
            Some(vec![new.verifier_key()])
        );
        assert_eq!(s.follow(&[other.verifier_key()]), None);
        assert_eq!(s.follow(&[new.verifier_key()]), None);
    }

    #[test]
    fn statements_that_must_be_refused() {
        let (old, new, other) = (signer(1), signer(2), signer(3));
        let (s, leaf) = sign(&old, &new).unwrap();
        let good = text(&leaf);
        let body = s.body();
        let sigs: Vec<&str> = good[body.len() + 1..].lines().collect();
        let both = |a: &str, b: &str| format!("{body}\n{a}\n{b}\n");
        // Only one of the two signatures: neither key alone can rotate.
        let only_old = format!("{body}\n{}\n", sigs[0]);
        assert_eq!(
            RotationStatement::from_leaf(only_old.as_bytes()),
            Err(RotationError::SignatureCount { found: 1 })
        );
        // Swapped order.
        assert!(matches!(
            RotationStatement::from_leaf(both(sigs[1], sigs[0]).as_bytes()),
            Err(RotationError::SignatureOrder { role: Role::Old, .. })
        ));
        // A third key's signature in place of the new key's.
        let third = test_note(&body, &[&old, &other]);
        assert!(matches!(
            RotationStatement::from_leaf(third.as_bytes()),
            Err(RotationError::SignatureOrder { role: Role::New, .. })
        ));
        // The new key's signature over another body (a forged announcement).
        let (_, other_leaf) = sign(&old, &other).unwrap();
        let forged = text(&other_leaf).replace(&other.verifier_key().to_string(), &new.verifier_key().to_string());
        assert!(matches!(
            RotationStatement::from_leaf(forged.as_bytes()),
            Err(RotationError::SignatureOrder { .. } | RotationError::BadSignature { .. })
        ));
        // The body changed under valid-looking signatures.
        let tampered = good.replace(ROTATION_HEADER, "weightseal-log-rotation/v2");
        assert_eq!(
            RotationStatement::from_leaf(tampered.as_bytes()),
            Err(RotationError::Header)
        );
        let extra = good.replacen(&body, &format!("{body}extra\n"), 1);
        assert_eq!(
            RotationStatement::from_leaf(extra.as_bytes()),
            Err(RotationError::LineCount { found: 5 })
        );
        assert!(matches!(
            RotationStatement::from_leaf(good.replace("\nold ", "\nolder ").as_bytes()),
            Err(RotationError::KeyLine { role: Role::Old })
        ));
        assert!(matches!(sign(&old, &old), Err(RotationError::SameKey { .. })));
        let elsewhere = TestSigner::new("other.test/log", 2);
        assert!(matches!(
            sign(&old, &elsewhere),
            Err(RotationError::KeyName { role: Role::New, .. })
        ));
        assert!(matches!(
            RotationStatement::from_leaf(&[b'a'; MAX_ROTATION_BYTES + 1]),
            Err(RotationError::TooLarge { .. })
        ));
        assert!(matches!(
            RotationStatement::from_leaf(b"weightseal-log-rotation/v1\n\xff\n"),
            Err(RotationError::InvalidUtf8 { .. })
        ));
        // A flipped signature bit.
        let mut flipped = leaf.clone();
        let at = flipped.len() - 4;
        flipped[at] = if flipped[at] == b'A' { b'B' } else { b'A' };
        assert!(matches!(
            RotationStatement::from_leaf(&flipped),
            Err(RotationError::BadSignature { role: Role::New, .. } | RotationError::Note(_))
        ));
    }
}
