//! Issuer policy (spec/revocation.md §3): which issuer keys a log accepts and what each
//! may revoke.
//!
//! The server applies [`IssuerPolicy::check`] to every submission and records nothing it
//! refuses; the type lives here so that clients and tools can apply the same rules.
//!
//! Configuration is JSON:
//!
//! ```json
//! {"issuers": [
//!   {"name": "hub.example", "role": "hub", "public_key": "<SPKI PEM or 64 hex digits>"},
//!   {"name": "lab.example", "role": "lab", "public_key": "...", "signing_keys": ["<KeyId hex>"]}]}
//! ```
//!
//! * a **hub** may revoke or reinstate subjects of type `manifest` and `content`, never `key`;
//! * a **lab** may name a `key` subject only if that key id is in its `signing_keys`, and a
//!   `manifest` subject only with an *authority*: a weightseal signature file whose
//!   manifest digest is the subject and which holds a valid signature by one of its
//!   `signing_keys`; it may not name `content`;
//! * the entry time must lie in `[now − 24 h, now + 5 min]`;
//! * an entry already in the log (same leaf hash) is a replay.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::path::Path;

use serde::Deserialize;

use crate::envelope::SignatureFile;
use crate::keys::{KeyId, PublicKey};
use crate::revocation::entry::{Action, SignedEntry, Subject, SubjectKind};
use crate::revocation::merkle::Hash;

/// How far in the past an entry's time may be when it is submitted (24 h).
pub const MAX_ENTRY_AGE_SECS: u64 = 24 * 3600;
/// How far in the future an entry's time may be when it is submitted (5 min).
pub const MAX_ENTRY_FUTURE_SECS: u64 = 300;
/// The largest policy file, in bytes.
pub const MAX_POLICY_BYTES: u64 = 1 << 20;
/// The most issuers a policy may list.
pub const MAX_ISSUERS: usize = 1024;
/// The most signing keys one lab may list.
pub const MAX_SIGNING_KEYS: usize = 1024;

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

/// One configured issuer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issuer {
    /// A human name, unique in the policy.
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// The key that signs its entries.
    pub public_key: PublicKey,
    /// For a lab: the weightseal signing keys it owns.
    pub signing_keys: BTreeSet<KeyId>,
}

/// The issuers a log accepts.
#[derive(Debug, Clone, Default)]
pub struct IssuerPolicy {
    issuers: Vec<Issuer>,
    by_key: HashMap<[u8; 32], usize>,
}

/// Why a policy configuration was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyConfigError {
    /// The file could not be read.
    #[error("cannot read policy file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file is over [`MAX_POLICY_BYTES`].
    #[error("policy file {path} is {size} bytes, over the limit of {limit}")]
    TooLarge {
        /// The file.
        path: String,
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// Not valid JSON of the expected shape.
    #[error("policy JSON: {reason}")]
    Json {
        /// What the parser said.
        reason: String,
    },
    /// One issuer's settings are invalid.
    #[error("policy issuer {index} ({name:?}): {problem}")]
    Issuer {
        /// Position in the `issuers` array.
        index: usize,
        /// Its name.
        name: String,
        /// What is wrong.
        problem: String,
    },
    /// Too many issuers.
    #[error("policy lists {found} issuers, over the limit of {limit}")]
    TooManyIssuers {
        /// How many.
        found: usize,
        /// The limit.
        limit: usize,
    },
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

    /// The HTTP status for this refusal: 400, 403 or 409.
    pub fn http_status(&self) -> u16 {
        match self.code() {
            "unknown_issuer" | "out_of_scope" | "revoked_issuer" => 403,
            "replay" => 409,
            _ => 400,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    issuers: Vec<RawIssuer>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIssuer {
    name: String,
    role: String,
    public_key: String,
    #[serde(default)]
    signing_keys: Vec<String>,
}

/// Parses `public_key` of the configuration: SPKI PEM text or 64 hex digits.
fn parse_key(text: &str, source: &str) -> Result<PublicKey, String> {
    let t = text.trim();
    if t.starts_with("-----BEGIN") {
        return PublicKey::from_pem(t, source).map_err(|e| e.to_string());
    }
    let mut raw = [0u8; 32];
    if t.len() != 64 || hex::decode_to_slice(t, &mut raw).is_err() {
        return Err("public_key is neither SPKI PEM nor 64 hexadecimal digits".into());
    }
    PublicKey::from_raw(&raw).map_err(|e| e.to_string())
}

impl IssuerPolicy {
    /// A policy from issuers; names and keys must be unique.
    pub fn new(issuers: Vec<Issuer>) -> Result<Self, PolicyConfigError> {
        if issuers.len() > MAX_ISSUERS {
            return Err(PolicyConfigError::TooManyIssuers {
                found: issuers.len(),
                limit: MAX_ISSUERS,
            });
        }
        let mut by_key = HashMap::new();
        for (index, issuer) in issuers.iter().enumerate() {
            let bad = |problem: String| PolicyConfigError::Issuer {
                index,
                name: issuer.name.clone(),
                problem,
            };
            if issuer.name.is_empty() || issuer.name.len() > 256 || issuer.name.chars().any(char::is_control) {
                return Err(bad("name must be 1 to 256 bytes without control characters".into()));
            }
            if issuers[..index].iter().any(|o| o.name == issuer.name) {
                return Err(bad("name used twice".into()));
            }
            if by_key.insert(issuer.public_key.to_raw(), index).is_some() {
                return Err(bad(format!("public key {} used twice", issuer.public_key.id())));
            }
            if issuer.role == Role::Hub && !issuer.signing_keys.is_empty() {
                return Err(bad("a hub has no signing_keys".into()));
            }
            if issuer.signing_keys.len() > MAX_SIGNING_KEYS {
                return Err(bad(format!(
                    "{} signing keys, over the limit of {MAX_SIGNING_KEYS}",
                    issuer.signing_keys.len()
                )));
            }
        }
        Ok(IssuerPolicy { issuers, by_key })
    }

    /// Parses the JSON configuration.
    pub fn from_json(text: &str) -> Result<Self, PolicyConfigError> {
        let raw: RawPolicy =
            serde_json::from_str(text).map_err(|e| PolicyConfigError::Json { reason: e.to_string() })?;
        if raw.issuers.len() > MAX_ISSUERS {
            return Err(PolicyConfigError::TooManyIssuers {
                found: raw.issuers.len(),
                limit: MAX_ISSUERS,
            });
        }
        let mut issuers = Vec::with_capacity(raw.issuers.len());
        for (index, r) in raw.issuers.into_iter().enumerate() {
            let bad = |problem: String| PolicyConfigError::Issuer {
                index,
                name: r.name.clone(),
                problem,
            };
            let role = match r.role.as_str() {
                "hub" => Role::Hub,
                "lab" => Role::Lab,
                other => return Err(bad(format!("unknown role {other:?}: expected \"hub\" or \"lab\""))),
            };
            let public_key = parse_key(&r.public_key, &format!("issuer {}", r.name)).map_err(&bad)?;
            let mut signing_keys = BTreeSet::new();
            for k in &r.signing_keys {
                let id: KeyId = k
                    .trim()
                    .parse()
                    .map_err(|e: crate::ParseDigestError| bad(format!("signing_keys: {e}")))?;
                signing_keys.insert(id);
            }
            issuers.push(Issuer {
                name: r.name,
                role,
                public_key,
                signing_keys,
            });
        }
        Self::new(issuers)
    }

    /// Reads and parses a JSON configuration file (at most [`MAX_POLICY_BYTES`]).
    pub fn from_json_file(path: &Path) -> Result<Self, PolicyConfigError> {
        let shown = path.display().to_string();
        let io = |source| PolicyConfigError::Io {
            path: shown.clone(),
            source,
        };
        let size = std::fs::metadata(path).map_err(io)?.len();
        if size > MAX_POLICY_BYTES {
            return Err(PolicyConfigError::TooLarge {
                path: shown,
                size,
                limit: MAX_POLICY_BYTES,
            });
        }
        let text = std::fs::read_to_string(path).map_err(io)?;
        Self::from_json(&text)
    }

    /// Every configured issuer.
    pub fn issuers(&self) -> &[Issuer] {
        &self.issuers
    }

    /// The issuer with this key, if configured.
    pub fn issuer(&self, key: &PublicKey) -> Option<&Issuer> {
        self.by_key.get(&key.to_raw()).and_then(|&i| self.issuers.get(i))
    }

    /// The scope rules without the time window: issuer known, subject allowed for its
    /// role, authority valid where needed. The entry's signature was verified when the
    /// [`SignedEntry`] was decoded.
    pub fn check_scope(
        &self,
        signed: &SignedEntry,
        authority: Option<&SignatureFile>,
    ) -> Result<&Issuer, PolicyViolation> {
        let entry = signed.entry();
        let issuer = self.issuer(&entry.issuer).ok_or(PolicyViolation::UnknownIssuer {
            key_id: entry.issuer.id(),
        })?;
        if is_self_reinstatement(&entry.issuer.id(), &entry.subject, entry.action) {
            return Err(PolicyViolation::SelfReinstatement {
                key_id: entry.issuer.id(),
            });
        }
        let not_allowed = || PolicyViolation::SubjectNotAllowed {
            issuer: issuer.name.clone(),
            role: issuer.role,
            kind: entry.subject.kind,
        };
        match (issuer.role, entry.subject.kind) {
            // A lineage document names no signed release, only weights: like content, it is
            // a hub's to revoke.
            (Role::Hub, SubjectKind::Manifest | SubjectKind::Content | SubjectKind::Lineage) => Ok(issuer),
            (Role::Hub, SubjectKind::Key) | (Role::Lab, SubjectKind::Content | SubjectKind::Lineage) => {
                Err(not_allowed())
            }
            (Role::Lab, SubjectKind::Key) => {
                let key_id: KeyId = entry.subject.digest.to_hex().parse().map_err(|_| not_allowed())?;
                if issuer.signing_keys.contains(&key_id) {
                    Ok(issuer)
                } else {
                    Err(PolicyViolation::KeyNotOwned {
                        issuer: issuer.name.clone(),
                        key_id,
                    })
                }
            }
            (Role::Lab, SubjectKind::Manifest) => {
                let auth = authority.ok_or_else(|| PolicyViolation::MissingAuthority {
                    issuer: issuer.name.clone(),
                    subject: entry.subject,
                })?;
                let found = auth.manifest_digest();
                if found != entry.subject.digest {
                    return Err(PolicyViolation::AuthorityMismatch {
                        expected: entry.subject.digest,
                        found,
                    });
                }
                let signed_by_lab = auth
                    .signatures()
                    .iter()
                    .any(|s| issuer.signing_keys.contains(&s.public_key.id()) && s.is_valid_for(&found));
                if signed_by_lab {
                    Ok(issuer)
                } else {
                    Err(PolicyViolation::AuthorityNotByIssuer {
                        issuer: issuer.name.clone(),
                    })
                }
            }
        }
    }

    /// Every submission rule except replay: [`IssuerPolicy::check_scope`] and the time
    /// window `[now − 24 h, now + 5 min]` (`now` in Unix seconds, the checker's clock).
    pub fn check(
        &self,
        signed: &SignedEntry,
        authority: Option<&SignatureFile>,
        now: u64,
    ) -> Result<&Issuer, PolicyViolation> {
        let issuer = self.check_scope(signed, authority)?;
        check_time(signed.entry().time, now)?;
        Ok(issuer)
    }

    /// Decodes the raw authority bytes of a submission (if any) and applies
    /// [`IssuerPolicy::check`]; then refuses a replay when `already_logged` says the
    /// entry's leaf hash is in the log. This is the whole submission check a server runs
    /// before appending.
    pub fn check_submission(
        &self,
        signed: &SignedEntry,
        authority: Option<&[u8]>,
        now: u64,
        already_logged: impl FnOnce(&Hash) -> bool,
    ) -> Result<&Issuer, PolicyViolation> {
        let auth = authority
            .map(SignatureFile::from_bytes)
            .transpose()
            .map_err(|e| PolicyViolation::MalformedAuthority { reason: e.to_string() })?;
        let issuer = self.check(signed, auth.as_ref(), now)?;
        check_replay(signed, already_logged)?;
        Ok(issuer)
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

/// The time window rule alone.
pub fn check_time(time: u64, now: u64) -> Result<(), PolicyViolation> {
    if time < now.saturating_sub(MAX_ENTRY_AGE_SECS) {
        return Err(PolicyViolation::TooOld { time, now });
    }
    if time > now.saturating_add(MAX_ENTRY_FUTURE_SECS) {
        return Err(PolicyViolation::InFuture { time, now });
    }
    Ok(())
}

/// The replay rule alone: refuses the entry when `already_logged(leaf hash)` is true.
pub fn check_replay(signed: &SignedEntry, already_logged: impl FnOnce(&Hash) -> bool) -> Result<(), PolicyViolation> {
    let leaf_hash = signed.leaf_hash();
    if already_logged(&leaf_hash) {
        return Err(PolicyViolation::Replay { leaf_hash });
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::envelope::SignatureEntry;
    use crate::revocation::entry::{Action, Entry, Reason};
    use crate::{signed_message, Digest};
    use ed25519_dalek::{Signer as _, SigningKey};

    const NOW: u64 = 1_700_000_000;

    #[test]
    fn utc_times() {
        assert_eq!(UtcTime(0).to_string(), "1970-01-01 00:00:00 UTC");
        assert_eq!(UtcTime(NOW).to_string(), "2023-11-14 22:13:20 UTC");
        // Leap day and the day after.
        assert_eq!(UtcTime(951_782_400).to_string(), "2000-02-29 00:00:00 UTC");
        assert_eq!(UtcTime(951_868_799).to_string(), "2000-02-29 23:59:59 UTC");
        assert_eq!(UtcTime(951_868_800).to_string(), "2000-03-01 00:00:00 UTC");
        assert!(UtcTime(u64::MAX).to_string().ends_with(" UTC"));
    }

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }
    fn pk(k: &SigningKey) -> PublicKey {
        PublicKey::from_verifying_key(k.verifying_key())
    }

    fn policy() -> IssuerPolicy {
        let json = format!(
            r#"{{"issuers":[
                {{"name":"hub.example","role":"hub","public_key":"{}"}},
                {{"name":"lab.example","role":"lab","public_key":"{}","signing_keys":["{}"]}}]}}"#,
            hex::encode(key(1).verifying_key().as_bytes()),
            hex::encode(key(2).verifying_key().as_bytes()),
            pk(&key(3)).id()
        );
        IssuerPolicy::from_json(&json).unwrap()
    }

    fn signed(issuer: &SigningKey, subject: Subject, time: u64) -> SignedEntry {
        Entry {
            subject,
            action: Action::Revoke,
            reason: Reason::Other,
            issuer: pk(issuer),
            time,
            evidence: None,
        }
        .sign(issuer)
        .unwrap()
    }

    fn authority(manifest_bytes: &[u8], signer: &SigningKey) -> SignatureFile {
        let mut f = SignatureFile::unsigned(manifest_bytes.to_vec());
        let d = f.manifest_digest();
        f.add_signature(SignatureEntry {
            public_key: pk(signer),
            signature: signer.sign(&signed_message(&d)).to_bytes(),
        });
        f
    }

    #[test]
    fn hub_scope() {
        let p = policy();
        let hub = key(1);
        assert!(p
            .check(&signed(&hub, Subject::content(Digest::of(b"t")), NOW), None, NOW)
            .is_ok());
        assert!(p
            .check(&signed(&hub, Subject::manifest(Digest::of(b"m")), NOW), None, NOW)
            .is_ok());
        assert!(matches!(
            p.check(&signed(&hub, Subject::key(pk(&key(3)).id()), NOW), None, NOW),
            Err(PolicyViolation::SubjectNotAllowed { role: Role::Hub, .. })
        ));
    }

    #[test]
    fn lab_scope() {
        let p = policy();
        let lab = key(2);
        assert!(p
            .check(&signed(&lab, Subject::key(pk(&key(3)).id()), NOW), None, NOW)
            .is_ok());
        assert!(matches!(
            p.check(&signed(&lab, Subject::key(pk(&key(4)).id()), NOW), None, NOW),
            Err(PolicyViolation::KeyNotOwned { .. })
        ));
        assert!(matches!(
            p.check(&signed(&lab, Subject::content(Digest::of(b"t")), NOW), None, NOW),
            Err(PolicyViolation::SubjectNotAllowed { role: Role::Lab, .. })
        ));
        let good = authority(b"manifest bytes", &key(3));
        let subject = Subject::manifest(good.manifest_digest());
        let e = signed(&lab, subject, NOW);
        assert!(matches!(
            p.check(&e, None, NOW),
            Err(PolicyViolation::MissingAuthority { .. })
        ));
        assert!(p.check(&e, Some(&good), NOW).is_ok());
        let by_other = authority(b"manifest bytes", &key(4));
        assert!(matches!(
            p.check(&e, Some(&by_other), NOW),
            Err(PolicyViolation::AuthorityNotByIssuer { .. })
        ));
        let other_manifest = authority(b"other", &key(3));
        assert!(matches!(
            p.check(&e, Some(&other_manifest), NOW),
            Err(PolicyViolation::AuthorityMismatch { .. })
        ));
        let bytes = good.to_bytes().unwrap();
        assert!(p.check_submission(&e, Some(&bytes), NOW, |_| false).is_ok());
        assert!(matches!(
            p.check_submission(&e, Some(b"junk"), NOW, |_| false),
            Err(PolicyViolation::MalformedAuthority { .. })
        ));
    }

    #[test]
    fn unknown_issuer_time_window_and_replay() {
        let p = policy();
        let stranger = key(9);
        assert!(matches!(
            p.check(&signed(&stranger, Subject::content(Digest::of(b"t")), NOW), None, NOW),
            Err(PolicyViolation::UnknownIssuer { .. })
        ));
        let hub = key(1);
        let s = Subject::content(Digest::of(b"t"));
        assert!(p.check(&signed(&hub, s, NOW - MAX_ENTRY_AGE_SECS), None, NOW).is_ok());
        assert!(matches!(
            p.check(&signed(&hub, s, NOW - MAX_ENTRY_AGE_SECS - 1), None, NOW),
            Err(PolicyViolation::TooOld { .. })
        ));
        assert!(p
            .check(&signed(&hub, s, NOW + MAX_ENTRY_FUTURE_SECS), None, NOW)
            .is_ok());
        assert!(matches!(
            p.check(&signed(&hub, s, NOW + MAX_ENTRY_FUTURE_SECS + 1), None, NOW),
            Err(PolicyViolation::InFuture { .. })
        ));
        let e = signed(&hub, s, NOW);
        let lh = e.leaf_hash();
        assert!(matches!(
            p.check_submission(&e, None, NOW, |h| *h == lh),
            Err(PolicyViolation::Replay { leaf_hash }) if leaf_hash == lh
        ));
    }

    #[test]
    fn config_errors() {
        let k = hex::encode(key(1).verifying_key().as_bytes());
        for bad in [
            "{}".to_string(),
            r#"{"issuers":[{"name":"a","role":"admin","public_key":"00"}]}"#.to_string(),
            format!(
                r#"{{"issuers":[{{"name":"a","role":"hub","public_key":"{k}"}},{{"name":"b","role":"hub","public_key":"{k}"}}]}}"#
            ),
            format!(r#"{{"issuers":[{{"name":"a","role":"hub","public_key":"{k}","extra":1}}]}}"#),
            format!(r#"{{"issuers":[{{"name":"a","role":"lab","public_key":"{k}","signing_keys":["xyz"]}}]}}"#),
        ] {
            assert!(IssuerPolicy::from_json(&bad).is_err(), "{bad}");
        }
    }
}
