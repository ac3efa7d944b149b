//! The issuer rules a client applies to the entries it holds (spec/revocation.md §3): the
//! revoked-key rule ([`KeyLiveness`], §3.1), and [`PolicyViolation`], the refusals a log
//! reports for a submission and a client records for a void entry.
//!
//! The log's admission policy (which issuers it accepts, what each may revoke, the time
//! window, replay: `IssuerPolicy`) is run only by a log, and lives in `weightseal-log`
//! (`revocation-server/log/`). Its refusals are the variants of [`PolicyViolation`] that
//! only a log produces; they are defined here because a client reads them back from the
//! log's API errors and the server's store records them.

use std::collections::HashMap;
use std::fmt;

use crate::keys::KeyId;
use crate::revocation::entry::{Action, Subject, SubjectKind};
use crate::revocation::merkle::Hash;

/// How far in the past an entry's time may be when it is submitted (24 h).
pub const MAX_ENTRY_AGE_SECS: u64 = 24 * 3600;
/// How far in the future an entry's time may be when it is submitted (5 min).
pub const MAX_ENTRY_FUTURE_SECS: u64 = 300;

pub use crate::clock::UtcTime;

/// What an issuer is allowed to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// A model hub: may revoke manifests and content, not keys.
    Hub,
    /// A lab: may revoke its own keys and manifests its keys signed.
    Lab,
}

impl Role {
    /// The name used in the configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Hub => "hub",
            Role::Lab => "lab",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why an entry was refused by the policy. Nothing refused is ever recorded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyViolation {
    /// The issuer key is not configured.
    #[error("unknown issuer: key {key_id} is not a configured issuer")]
    UnknownIssuer {
        /// The issuer's key id.
        key_id: KeyId,
    },
    /// The issuer's role does not allow this subject type.
    #[error("issuer {issuer} ({role}) may not issue entries about {kind} subjects")]
    SubjectNotAllowed {
        /// The issuer's name.
        issuer: String,
        /// Its role.
        role: Role,
        /// The subject type.
        kind: SubjectKind,
    },
    /// A lab named a signing key it does not own.
    #[error("issuer {issuer} (lab) does not own signing key {key_id}")]
    KeyNotOwned {
        /// The issuer's name.
        issuer: String,
        /// The key id named.
        key_id: KeyId,
    },
    /// A lab named a manifest without a signature file proving it signed it.
    #[error("issuer {issuer} (lab) named manifest {subject} without an authority signature file")]
    MissingAuthority {
        /// The issuer's name.
        issuer: String,
        /// The subject.
        subject: Subject,
    },
    /// The authority signature file could not be decoded.
    #[error("the authority signature file is malformed: {reason}")]
    MalformedAuthority {
        /// What the decoder said.
        reason: String,
    },
    /// The authority signature file is for another manifest.
    #[error("the authority signature file is for manifest {found}, but the entry names {expected}")]
    AuthorityMismatch {
        /// The entry's subject digest.
        expected: crate::Digest,
        /// The authority's manifest digest.
        found: crate::Digest,
    },
    /// The authority holds no valid signature by one of the lab's signing keys.
    #[error("the authority signature file holds no valid signature by a signing key of {issuer}")]
    AuthorityNotByIssuer {
        /// The issuer's name.
        issuer: String,
    },
    /// The entry's time is older than the window allows.
    #[error("entry time {} is more than {MAX_ENTRY_AGE_SECS} s before now ({})", UtcTime(*time), UtcTime(*now))]
    TooOld {
        /// The entry's time.
        time: u64,
        /// The checker's clock.
        now: u64,
    },
    /// The entry's time is further in the future than the window allows.
    #[error("entry time {} is more than {MAX_ENTRY_FUTURE_SECS} s after now ({})", UtcTime(*time), UtcTime(*now))]
    InFuture {
        /// The entry's time.
        time: u64,
        /// The checker's clock.
        now: u64,
    },
    /// The same signed entry is already in the log.
    #[error("replay: the entry with leaf hash {} is already in the log", hex::encode(leaf_hash))]
    Replay {
        /// Its leaf hash.
        leaf_hash: Hash,
    },
    /// The issuer key is itself revoked in the log (§3.1): a revoked key signs nothing more.
    #[error("issuer key {key_id} is revoked (log entry {revoked_by}): the log accepts nothing more it signs")]
    RevokedIssuer {
        /// The issuer's key id.
        key_id: KeyId,
        /// The log index of the entry that revoked it.
        revoked_by: u64,
    },
    /// A key entry reinstating the very key that signs it (§3.1): reinstatement needs another
    /// authority.
    #[error("key {key_id} may not reinstate itself: another signing key of the lab must issue the reinstatement")]
    SelfReinstatement {
        /// The key id.
        key_id: KeyId,
    },
}

impl PolicyViolation {
    /// The API error code for this refusal (spec/revocation.md §6).
    pub fn code(&self) -> &'static str {
        match self {
            PolicyViolation::UnknownIssuer { .. } => "unknown_issuer",
            PolicyViolation::SubjectNotAllowed { .. }
            | PolicyViolation::SelfReinstatement { .. }
            | PolicyViolation::KeyNotOwned { .. }
            | PolicyViolation::MissingAuthority { .. }
            | PolicyViolation::AuthorityMismatch { .. }
            | PolicyViolation::AuthorityNotByIssuer { .. } => "out_of_scope",
            PolicyViolation::MalformedAuthority { .. } => "malformed",
            PolicyViolation::TooOld { .. } | PolicyViolation::InFuture { .. } => "bad_time",
            PolicyViolation::Replay { .. } => "replay",
            PolicyViolation::RevokedIssuer { .. } => "revoked_issuer",
        }
    }
}

/// Whether an entry reinstates the key that issues it (never allowed, §3.1).
pub fn is_self_reinstatement(issuer: &KeyId, subject: &Subject, action: Action) -> bool {
    action == Action::Reinstate && subject.kind == SubjectKind::Key && subject.digest == issuer.digest()
}

/// The revoked-key rule (spec/revocation.md §3.1), applied in log order by the log to every
/// submission and by clients to every entry they hold, so that a log that accepted a
/// forbidden entry anyway does not revive a key.
///
/// Once a `key` subject is revoked, no later entry whose issuer is that key counts (whatever
/// it says, including a reinstatement of itself or of anything else); an entry of a key
/// reinstating itself never counts. Another issuer that may name the key (a lab listing it in
/// `signing_keys`) can reinstate it; after that the key's entries count again.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyLiveness {
    /// Key subject digest → log index of the entry that revoked it.
    revoked: HashMap<crate::Digest, u64>,
    /// How many log entries were applied (the next index).
    applied: u64,
}

impl KeyLiveness {
    /// Nothing applied yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many entries were applied (the index the next one gets).
    pub fn applied(&self) -> u64 {
        self.applied
    }

    /// Whether an entry by `issuer` about `subject` would count now; the error says why not.
    pub fn check(&self, issuer: &KeyId, subject: &Subject, action: Action) -> Result<(), PolicyViolation> {
        if let Some(&revoked_by) = self.revoked.get(&issuer.digest()) {
            return Err(PolicyViolation::RevokedIssuer {
                key_id: *issuer,
                revoked_by,
            });
        }
        if is_self_reinstatement(issuer, subject, action) {
            return Err(PolicyViolation::SelfReinstatement { key_id: *issuer });
        }
        Ok(())
    }

    /// Passes over the next log leaf, which is not an entry (a rotation statement,
    /// spec/revocation.md §5.2): it takes an index and changes no key's status.
    pub fn skip(&mut self) {
        self.applied += 1;
    }

    /// Applies the next log entry: `Ok` when it counts (a key entry then changes the key's
    /// status), the violation when it is void. Either way it takes the next index.
    pub fn apply(&mut self, issuer: &KeyId, subject: &Subject, action: Action) -> Result<(), PolicyViolation> {
        let index = self.applied;
        self.applied += 1;
        self.check(issuer, subject, action)?;
        if subject.kind == SubjectKind::Key {
            match action {
                Action::Revoke => {
                    self.revoked.insert(subject.digest, index);
                }
                Action::Reinstate => {
                    self.revoked.remove(&subject.digest);
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_times() {
        const NOW: u64 = 1_700_000_000;
        assert_eq!(UtcTime(0).to_string(), "1970-01-01 00:00:00 UTC");
        assert_eq!(UtcTime(NOW).to_string(), "2023-11-14 22:13:20 UTC");
        // Leap day and the day after.
        assert_eq!(UtcTime(951_782_400).to_string(), "2000-02-29 00:00:00 UTC");
        assert_eq!(UtcTime(951_868_799).to_string(), "2000-02-29 23:59:59 UTC");
        assert_eq!(UtcTime(951_868_800).to_string(), "2000-03-01 00:00:00 UTC");
        assert!(UtcTime(u64::MAX).to_string().ends_with(" UTC"));
    }
}
