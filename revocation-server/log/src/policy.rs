//! The log's issuer admission policy (spec/revocation.md §3): which issuer keys a log
//! accepts and what each may revoke, the time window and replay. The server applies
//! [`IssuerPolicy::check_submission`] to every submission and records nothing it refuses.
//! The revoked-key rule, which clients apply too, and the refusals themselves
//! ([`PolicyViolation`]) are `weightseal_verifier::revocation::policy`.
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
use std::path::Path;

use serde::Deserialize;
use weightseal_verifier::revocation::entry::{SignedEntry, SubjectKind};
use weightseal_verifier::revocation::merkle::Hash;
use weightseal_verifier::revocation::policy::{
    is_self_reinstatement, PolicyViolation, Role, MAX_ENTRY_AGE_SECS, MAX_ENTRY_FUTURE_SECS,
};
use weightseal_verifier::{KeyId, ParseDigestError, PublicKey, SignatureFile};

/// The largest policy file, in bytes.
pub const MAX_POLICY_BYTES: u64 = 1 << 20;
/// The most issuers a policy may list.
pub const MAX_ISSUERS: usize = 1024;
/// The most signing keys one lab may list.
pub const MAX_SIGNING_KEYS: usize = 1024;

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
                    .map_err(|e: ParseDigestError| bad(format!("signing_keys: {e}")))?;
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
        use weightseal_verifier::bounded::{read_text_file_within, ReadWithinError};
        let shown = path.display().to_string();
        let text = read_text_file_within(path, MAX_POLICY_BYTES).map_err(|e| match e {
            ReadWithinError::TooLarge { size } => PolicyConfigError::TooLarge {
                path: shown.clone(),
                size,
                limit: MAX_POLICY_BYTES,
            },
            ReadWithinError::Io(source) => PolicyConfigError::Io {
                path: shown.clone(),
                source,
            },
            // `ReadWithinError` may grow; a new reason is still a failure to read the file.
            other => PolicyConfigError::Io {
                path: shown.clone(),
                source: std::io::Error::other(other.to_string()),
            },
        })?;
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
            // A subject kind added by a later spec version: no role may issue it until this
            // policy says who may (fail closed).
            (_, _) => Err(not_allowed()),
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
#[allow(clippy::unwrap_used, reason = "test")]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer as _, SigningKey};
    use weightseal_verifier::revocation::entry::{Action, Entry, Reason, Subject};
    use weightseal_verifier::{signed_message, Digest, SignatureEntry};

    const NOW: u64 = 1_700_000_000;

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
