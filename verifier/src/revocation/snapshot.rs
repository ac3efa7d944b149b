//! Signed checkpoints and snapshots (spec/revocation.md §5).
//!
//! Both are C2SP signed notes by the log's key, whose key name is the log origin. The
//! checkpoint is a plain tlog-checkpoint; the snapshot binds the same tree (size and
//! root) to a strictly increasing version, an issue time and an expiry, so that a client
//! can refuse rollback (a lower version) and freezing (an expired snapshot):
//!
//! ```text
//! weightseal-snapshot/v1
//! <origin>
//! version <u64>
//! size <u64>
//! root <std base64 of the 32-byte root>
//! issued <unix seconds>
//! expires <unix seconds>
//! ```

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;

use crate::revocation::merkle::Hash;
use crate::revocation::note::{open_note_bytes, Checkpoint, NoteError, NoteVerifierKey};

/// The first line of every snapshot body.
pub const SNAPSHOT_HEADER: &str = "weightseal-snapshot/v1";
/// The default log origin (and note key name).
pub const DEFAULT_ORIGIN: &str = "weightseal-revocations";
/// The default snapshot lifetime: 24 hours.
pub const DEFAULT_TTL_SECS: u64 = 24 * 3600;
/// The largest checkpoint or snapshot note a client accepts, in bytes (64 KiB).
pub const MAX_LOG_NOTE_BYTES: usize = 64 * 1024;

/// Why a checkpoint or snapshot was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SnapshotError {
    /// The note is over [`MAX_LOG_NOTE_BYTES`].
    #[error("{what} note is {size} bytes, over the limit of {limit}")]
    TooLarge {
        /// `checkpoint` or `snapshot`.
        what: &'static str,
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The signed note was refused (no signature by a pinned key, bad signature, syntax).
    #[error("{what} note: {source}")]
    Note {
        /// `checkpoint` or `snapshot`.
        what: &'static str,
        /// Why.
        source: NoteError,
    },
    /// The body's origin is not the name of the key that signed it.
    #[error("{what} origin {found:?} is not the name of the key that signed it ({signed_by:?})")]
    WrongOrigin {
        /// `checkpoint` or `snapshot`.
        what: &'static str,
        /// The origin in the body.
        found: String,
        /// The names of the keys whose signatures verified.
        signed_by: Vec<String>,
    },
    /// A snapshot line is missing or malformed.
    #[error("snapshot line {line}: {problem}")]
    Line {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        problem: String,
    },
    /// The snapshot expires before (or when) it is issued.
    #[error("snapshot expires at {expires}, not after it was issued ({issued})")]
    BadWindow {
        /// Issue time.
        issued: u64,
        /// Expiry.
        expires: u64,
    },
    /// The snapshot has expired.
    #[error("snapshot version {version} expired at {expires} (now {now})")]
    Expired {
        /// Its version.
        version: u64,
        /// Its expiry.
        expires: u64,
        /// The checker's clock.
        now: u64,
    },
}

/// A snapshot body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// The log origin (the note key name).
    pub origin: String,
    /// Strictly increasing each time the log signs a snapshot.
    pub version: u64,
    /// The tree size it binds.
    pub size: u64,
    /// The tree root at that size.
    pub root: Hash,
    /// When it was signed, Unix seconds.
    pub issued: u64,
    /// When it stops being valid, Unix seconds (it is expired from this second on).
    pub expires: u64,
}

fn parse_u64(line: usize, s: &str) -> Result<u64, SnapshotError> {
    let bad = |problem: &str| SnapshotError::Line {
        line,
        problem: problem.to_string(),
    };
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad("expected an unsigned decimal number"));
    }
    if s.len() > 1 && s.starts_with('0') {
        return Err(bad("leading zero"));
    }
    s.parse().map_err(|_| bad("does not fit in 64 bits"))
}

fn check_origin(origin: &str) -> Result<(), SnapshotError> {
    if origin.is_empty() || origin.chars().any(|c| c.is_control() || c.is_whitespace() || c == '+') {
        return Err(SnapshotError::Line {
            line: 2,
            problem: "origin must be non-empty without white space, '+' or control characters".into(),
        });
    }
    Ok(())
}

impl Snapshot {
    /// The note body (seven lines, each ending in a newline).
    pub fn to_body(&self) -> Result<String, SnapshotError> {
        check_origin(&self.origin)?;
        if self.expires <= self.issued {
            return Err(SnapshotError::BadWindow {
                issued: self.issued,
                expires: self.expires,
            });
        }
        Ok(format!(
            "{SNAPSHOT_HEADER}\n{}\nversion {}\nsize {}\nroot {}\nissued {}\nexpires {}\n",
            self.origin,
            self.version,
            self.size,
            BASE64.encode(self.root),
            self.issued,
            self.expires
        ))
    }

    /// Parses a snapshot body (exactly the seven lines; nothing else is accepted).
    pub fn parse_body(body: &str) -> Result<Snapshot, SnapshotError> {
        let text = body.strip_suffix('\n').ok_or(SnapshotError::Line {
            line: 1,
            problem: "body does not end with a newline".into(),
        })?;
        let lines: Vec<&str> = text.split('\n').collect();
        if lines.len() != 7 {
            return Err(SnapshotError::Line {
                line: lines.len().min(7) + 1,
                problem: format!("expected exactly 7 lines, found {}", lines.len()),
            });
        }
        if lines[0] != SNAPSHOT_HEADER {
            return Err(SnapshotError::Line {
                line: 1,
                problem: format!("expected {SNAPSHOT_HEADER:?}"),
            });
        }
        let origin = lines[1];
        check_origin(origin)?;
        let field = |n: usize, key: &str| -> Result<&str, SnapshotError> {
            lines[n]
                .strip_prefix(key)
                .and_then(|rest| rest.strip_prefix(' '))
                .ok_or_else(|| SnapshotError::Line {
                    line: n + 1,
                    problem: format!("expected \"{key} <value>\""),
                })
        };
        let version = parse_u64(3, field(2, "version")?)?;
        let size = parse_u64(4, field(3, "size")?)?;
        let root_b64 = field(4, "root")?;
        let root_raw = BASE64.decode(root_b64).map_err(|e| SnapshotError::Line {
            line: 5,
            problem: format!("root is not standard base64: {e}"),
        })?;
        let root: Hash = root_raw.as_slice().try_into().map_err(|_| SnapshotError::Line {
            line: 5,
            problem: format!("root decodes to {} bytes, expected 32", root_raw.len()),
        })?;
        let issued = parse_u64(6, field(5, "issued")?)?;
        let expires = parse_u64(7, field(6, "expires")?)?;
        let snapshot = Snapshot {
            origin: origin.to_string(),
            version,
            size,
            root,
            issued,
            expires,
        };
        // Only one encoding per snapshot (e.g. no non-canonical base64).
        if snapshot.to_body()? != body {
            return Err(SnapshotError::Line {
                line: 5,
                problem: "not in canonical form".into(),
            });
        }
        Ok(snapshot)
    }

    /// Opens a signed snapshot note with the pinned log keys and parses it. Does not
    /// check expiry (see [`Snapshot::check_fresh`]).
    pub fn open(note: &[u8], keys: &[NoteVerifierKey]) -> Result<Snapshot, SnapshotError> {
        let (body, signed_by) = open_log_note("snapshot", note, keys)?;
        let snapshot = Snapshot::parse_body(&body)?;
        if !signed_by.contains(&snapshot.origin) {
            return Err(SnapshotError::WrongOrigin {
                what: "snapshot",
                found: snapshot.origin,
                signed_by,
            });
        }
        Ok(snapshot)
    }

    /// Whether the snapshot has expired at `now` (Unix seconds): `now >= expires`.
    pub fn is_expired(&self, now: u64) -> bool {
        now >= self.expires
    }

    /// Refuses an expired snapshot.
    pub fn check_fresh(&self, now: u64) -> Result<(), SnapshotError> {
        if self.is_expired(now) {
            return Err(SnapshotError::Expired {
                version: self.version,
                expires: self.expires,
                now,
            });
        }
        Ok(())
    }

    /// Whether the snapshot binds the same tree as `checkpoint` (origin, size, root).
    pub fn matches(&self, checkpoint: &Checkpoint) -> bool {
        self.origin == checkpoint.origin && self.size == checkpoint.size && self.root == checkpoint.root
    }
}

fn open_log_note(
    what: &'static str,
    note: &[u8],
    keys: &[NoteVerifierKey],
) -> Result<(String, Vec<String>), SnapshotError> {
    if note.len() > MAX_LOG_NOTE_BYTES {
        return Err(SnapshotError::TooLarge {
            what,
            size: note.len(),
            limit: MAX_LOG_NOTE_BYTES,
        });
    }
    let opened = open_note_bytes(note, keys).map_err(|source| SnapshotError::Note { what, source })?;
    Ok((opened.body, opened.verified_by))
}

/// Opens a signed checkpoint note with the pinned log keys and parses it; its origin
/// must be the name of a key whose signature verified.
pub fn open_checkpoint(note: &[u8], keys: &[NoteVerifierKey]) -> Result<Checkpoint, SnapshotError> {
    let (body, signed_by) = open_log_note("checkpoint", note, keys)?;
    let checkpoint = Checkpoint::parse_body(&body).map_err(|source| SnapshotError::Note {
        what: "checkpoint",
        source,
    })?;
    if !signed_by.contains(&checkpoint.origin) {
        return Err(SnapshotError::WrongOrigin {
            what: "checkpoint",
            found: checkpoint.origin,
            signed_by,
        });
    }
    Ok(checkpoint)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a test fails by panicking")]
mod tests {
    use super::*;
    use crate::revocation::test_signing::TestSigner;

    fn signer(name: &str, seed: u8) -> TestSigner {
        TestSigner::new(name, seed)
    }

    fn snap() -> Snapshot {
        Snapshot {
            origin: DEFAULT_ORIGIN.into(),
            version: 7,
            size: 300,
            root: [5; 32],
            issued: 1000,
            expires: 1000 + DEFAULT_TTL_SECS,
        }
    }

    #[test]
    fn body_round_trip_and_opening() {
        let s = snap();
        let body = s.to_body().unwrap();
        assert!(body.starts_with("weightseal-snapshot/v1\nweightseal-revocations\nversion 7\nsize 300\nroot "));
        assert_eq!(Snapshot::parse_body(&body).unwrap(), s);
        let k = signer(DEFAULT_ORIGIN, 1);
        let note = k.sign(&body);
        assert_eq!(Snapshot::open(note.as_bytes(), &[k.verifier_key()]).unwrap(), s);
        let other = signer(DEFAULT_ORIGIN, 2);
        assert!(matches!(
            Snapshot::open(note.as_bytes(), &[other.verifier_key()]),
            Err(SnapshotError::Note { .. })
        ));
        // Signed, but not by a key named as the snapshot's origin.
        let stranger = signer("other", 1);
        assert!(matches!(
            Snapshot::open(stranger.sign(&body).as_bytes(), &[stranger.verifier_key()]),
            Err(SnapshotError::WrongOrigin { .. })
        ));
    }

    #[test]
    fn expiry() {
        let s = snap();
        assert!(s.check_fresh(s.expires - 1).is_ok());
        assert!(matches!(s.check_fresh(s.expires), Err(SnapshotError::Expired { .. })));
    }

    #[test]
    fn malformed_bodies() {
        let good = snap().to_body().unwrap();
        for bad in [
            good.replace("version 7", "version 07"),
            good.replace("version 7", "version  7"),
            good.replace("size 300", "size -1"),
            good.replace("weightseal-snapshot/v1", "weightseal-snapshot/v2"),
            good.replace("expires", "expiry"),
            format!("{good}extra\n"),
            good.trim_end().to_string(),
            Snapshot {
                expires: 1000,
                ..snap()
            }
            .to_body()
            .unwrap_or_default(),
        ] {
            assert!(Snapshot::parse_body(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn checkpoints() {
        let k = signer(DEFAULT_ORIGIN, 1);
        let cp = Checkpoint {
            origin: DEFAULT_ORIGIN.into(),
            size: 3,
            root: [1; 32],
            extensions: vec![],
        };
        let note = k.sign(&cp.to_body());
        assert_eq!(open_checkpoint(note.as_bytes(), &[k.verifier_key()]).unwrap(), cp);
        assert!(snap().matches(&Checkpoint {
            size: 300,
            root: [5; 32],
            ..cp.clone()
        }));
        // Signed by the pinned key but under another origin.
        let stranger = signer("elsewhere", 1);
        let foreign = stranger.sign(
            &Checkpoint {
                origin: "other-log".into(),
                ..cp
            }
            .to_body(),
        );
        assert!(matches!(
            open_checkpoint(foreign.as_bytes(), &[stranger.verifier_key()]),
            Err(SnapshotError::WrongOrigin { .. })
        ));
        assert!(matches!(
            open_checkpoint(&vec![b'a'; MAX_LOG_NOTE_BYTES + 1], &[k.verifier_key()]),
            Err(SnapshotError::TooLarge { .. })
        ));
    }
}
