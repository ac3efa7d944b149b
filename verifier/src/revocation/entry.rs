//! Revocation entries (spec/revocation.md §2): what a log leaf says and who signed it.
//!
//! An [`Entry`] names a subject (a manifest digest, a content digest, a signing key
//! id or a lineage document digest), an action (`revoke` or `reinstate`), a reason, the issuer's public key, the
//! issuer's clock and an optional evidence URL. It is encoded in the deterministic CBOR
//! profile of spec/format.md §5 and signed by the issuer; the [`SignedEntry`] bytes are
//! the log leaf. A [`SignedEntry`] value always holds a signature that verified
//! (`verify_strict`) over the exact entry bytes it carries: nothing is re-serialised.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use ciborium::Value;
use ed25519_dalek::{Signature, Signer as _, SigningKey};

use crate::cbor::{self, CborError, Item, Limits, Reader};
use crate::digest::Digest;
use crate::fields::{FieldError, Fields};
use crate::keys::{KeyId, PublicKey};
use crate::revocation::lineage::{LineageDoc, LineageDocError, MAX_LINEAGE_DOC_BYTES};
use crate::revocation::merkle::{self, Hash};

/// The entry format version this crate reads and writes.
pub const ENTRY_VERSION: u64 = 1;

/// The prefix of the message an issuer signs; the exact entry bytes follow it.
pub const ENTRY_SIGNATURE_CONTEXT: &[u8] = b"weightseal v1 revocation entry\0";

/// The largest signed entry (the whole leaf), in bytes.
pub const MAX_SIGNED_ENTRY_BYTES: usize = 8 * 1024;

/// The longest evidence URL, in bytes.
pub const MAX_EVIDENCE_BYTES: usize = 2048;

const SIGNED_ENTRY_LIMITS: Limits = Limits {
    max_bytes: MAX_SIGNED_ENTRY_BYTES,
    max_items: 8,
    max_depth: 2,
};

const ENTRY_LIMITS: Limits = Limits {
    max_bytes: MAX_SIGNED_ENTRY_BYTES,
    max_items: 32,
    max_depth: 3,
};

/// What kind of thing a subject digest names. Later spec versions may add kinds
/// (`lineage` was one), so matches outside this crate need a fallback arm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum SubjectKind {
    /// A weightseal manifest digest: one signed release or derivative.
    Manifest,
    /// A content digest: a file digest or a chunk (tensor) digest.
    Content,
    /// A weightseal signing key id: every signature by that key.
    Key,
    /// The digest of a lineage document ([`crate::revocation::lineage`]): every model that
    /// carries a fork's change from its base.
    Lineage,
}

impl SubjectKind {
    /// Every kind, in spec order.
    pub const ALL: [SubjectKind; 4] = [
        SubjectKind::Manifest,
        SubjectKind::Content,
        SubjectKind::Key,
        SubjectKind::Lineage,
    ];

    /// The name used in entries.
    pub fn as_str(self) -> &'static str {
        match self {
            SubjectKind::Manifest => "manifest",
            SubjectKind::Content => "content",
            SubjectKind::Key => "key",
            SubjectKind::Lineage => "lineage",
        }
    }
}

impl fmt::Display for SubjectKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SubjectKind {
    type Err = EntryError;
    fn from_str(s: &str) -> Result<Self, EntryError> {
        SubjectKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| EntryError::UnknownValue {
                field: "subject.type",
                found: excerpt(s),
            })
    }
}

/// What an entry is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Subject {
    /// What the digest names.
    pub kind: SubjectKind,
    /// The manifest digest, content digest or key id.
    pub digest: Digest,
}

impl Subject {
    /// A manifest digest subject.
    pub fn manifest(digest: Digest) -> Self {
        Subject {
            kind: SubjectKind::Manifest,
            digest,
        }
    }
    /// A content (file or chunk) digest subject.
    pub fn content(digest: Digest) -> Self {
        Subject {
            kind: SubjectKind::Content,
            digest,
        }
    }
    /// A lineage document subject (the document's digest,
    /// [`crate::revocation::lineage::lineage_digest`]).
    pub fn lineage(digest: Digest) -> Self {
        Subject {
            kind: SubjectKind::Lineage,
            digest,
        }
    }
    /// A signing key subject.
    pub fn key(id: KeyId) -> Self {
        Subject {
            kind: SubjectKind::Key,
            digest: id.digest(),
        }
    }
}

impl fmt::Display for Subject {
    /// `manifest:HEX`, `content:HEX`, `key:HEX` or `lineage:HEX`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind, self.digest)
    }
}

/// What an entry does to its subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// From this entry on, the subject is revoked.
    Revoke,
    /// From this entry on, the subject is no longer revoked.
    Reinstate,
}

impl Action {
    /// The name used in entries.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Revoke => "revoke",
            Action::Reinstate => "reinstate",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Action {
    type Err = EntryError;
    fn from_str(s: &str) -> Result<Self, EntryError> {
        match s {
            "revoke" => Ok(Action::Revoke),
            "reinstate" => Ok(Action::Reinstate),
            _ => Err(EntryError::UnknownValue {
                field: "action",
                found: excerpt(s),
            }),
        }
    }
}

/// Why an entry was issued. Later spec versions may add reasons.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Reason {
    /// Safety fine-tuning or guardrails were stripped.
    GuardrailsRemoved,
    /// The signing key was compromised.
    KeyCompromise,
    /// The weights carry a malicious payload.
    MaliciousPayload,
    /// Replaced by a newer release.
    Superseded,
    /// Legal reasons.
    Legal,
    /// Anything else (say what in the evidence).
    Other,
}

impl Reason {
    /// Every reason, in spec order.
    pub const ALL: [Reason; 6] = [
        Reason::GuardrailsRemoved,
        Reason::KeyCompromise,
        Reason::MaliciousPayload,
        Reason::Superseded,
        Reason::Legal,
        Reason::Other,
    ];

    /// The name used in entries.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::GuardrailsRemoved => "guardrails-removed",
            Reason::KeyCompromise => "key-compromise",
            Reason::MaliciousPayload => "malicious-payload",
            Reason::Superseded => "superseded",
            Reason::Legal => "legal",
            Reason::Other => "other",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Reason {
    type Err = EntryError;
    fn from_str(s: &str) -> Result<Self, EntryError> {
        Reason::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| EntryError::UnknownValue {
                field: "reason",
                found: excerpt(s),
            })
    }
}

/// One revocation or reinstatement, before signing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// What the entry is about.
    pub subject: Subject,
    /// Revoke or reinstate.
    pub action: Action,
    /// Why.
    pub reason: Reason,
    /// The issuer's public key (the key that signs the entry).
    pub issuer: PublicKey,
    /// Unix seconds, set by the issuer.
    pub time: u64,
    /// Optional `https://` or `http://` URL, at most [`MAX_EVIDENCE_BYTES`] bytes.
    pub evidence: Option<String>,
}

/// Why an entry, a signed entry or a submission was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EntryError {
    /// The bytes are over the size limit.
    #[error("{what} is {size} bytes, over the limit of {limit}")]
    TooLarge {
        /// What was measured.
        what: &'static str,
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The CBOR itself was refused.
    #[error("entry encoding: {0}")]
    Cbor(#[from] CborError),
    /// A field is missing, of the wrong type, or unknown.
    #[error("entry field {field}: {problem}")]
    Field {
        /// Dotted location, e.g. `entry.subject.digest`.
        field: String,
        /// What is wrong with it.
        problem: String,
    },
    /// An entry format version this crate does not read.
    #[error("entry version {found} is not supported (this build reads version {ENTRY_VERSION})")]
    UnsupportedVersion {
        /// The version found.
        found: u64,
    },
    /// A text field holds a value the spec does not define.
    #[error("entry field {field}: unknown value {found:?}")]
    UnknownValue {
        /// Which field.
        field: &'static str,
        /// The value found (cut to 64 characters).
        found: String,
    },
    /// The issuer key is not a valid (or is a weak) ed25519 key.
    #[error("entry issuer is not a valid ed25519 public key: {reason}")]
    BadIssuerKey {
        /// What the decoder said.
        reason: String,
    },
    /// The evidence URL breaks the rules.
    #[error("entry evidence URL: {reason}")]
    BadEvidence {
        /// Which rule.
        reason: String,
    },
    /// The issuer's signature does not verify over the entry bytes.
    #[error("the signature by issuer {issuer} does not verify over the entry bytes")]
    BadSignature {
        /// The issuer's key id.
        issuer: KeyId,
    },
    /// A lineage document carried by a submission was refused.
    #[error("{field}: {source}")]
    Lineage {
        /// Where (`submission.lineage[0]`).
        field: String,
        /// Why (boxed: entry errors travel by value inside larger ones).
        source: Box<LineageDocError>,
    },
    /// Signing was asked with a key that is not the entry's issuer key.
    #[error("the entry names issuer {expected} but the signing key is {found}")]
    WrongSigningKey {
        /// The issuer key id in the entry.
        expected: KeyId,
        /// The signing key's id.
        found: KeyId,
    },
}

impl EntryError {
    /// The API error code for this refusal: `bad_signature`, `too_large`, `bad_lineage` or
    /// `malformed` (spec/revocation.md §6).
    pub fn code(&self) -> &'static str {
        match self {
            EntryError::BadSignature { .. } | EntryError::WrongSigningKey { .. } => "bad_signature",
            EntryError::TooLarge { .. } => "too_large",
            EntryError::Lineage { source, .. } if matches!(**source, LineageDocError::TooLarge { .. }) => "too_large",
            EntryError::Lineage { .. } => "bad_lineage",
            _ => "malformed",
        }
    }
}

impl From<FieldError> for EntryError {
    fn from(e: FieldError) -> Self {
        match e {
            FieldError::Field { field, problem } => EntryError::Field { field, problem },
            limit @ FieldError::Limit { .. } => EntryError::Field {
                field: String::new(),
                problem: limit.to_string(),
            },
        }
    }
}

/// At most 64 characters of untrusted text, for errors.
pub(crate) fn excerpt(s: &str) -> String {
    let mut out: String = s.chars().take(64).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out
}

/// Checks an evidence URL: length, scheme, no control characters or white space.
pub fn check_evidence(url: &str) -> Result<(), EntryError> {
    let bad = |reason: String| Err(EntryError::BadEvidence { reason });
    if url.len() > MAX_EVIDENCE_BYTES {
        return bad(format!("{} bytes, over the limit of {MAX_EVIDENCE_BYTES}", url.len()));
    }
    let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://"));
    match rest {
        None => bad(format!("{:?} does not start with https:// or http://", excerpt(url))),
        Some("") => bad("no host after the scheme".into()),
        Some(_) if url.chars().any(|c| c.is_control() || c.is_whitespace()) => {
            bad("contains white space or a control character".into())
        }
        Some(_) => Ok(()),
    }
}

fn text(s: &str) -> Value {
    Value::Text(s.to_string())
}

impl Entry {
    /// The one deterministic CBOR encoding of this entry (the bytes an issuer signs).
    pub fn to_bytes(&self) -> Result<Vec<u8>, EntryError> {
        let mut m = vec![
            (text("v"), Value::Integer(ENTRY_VERSION.into())),
            (
                text("subject"),
                Value::Map(vec![
                    (text("type"), text(self.subject.kind.as_str())),
                    (text("digest"), Value::Bytes(self.subject.digest.as_bytes().to_vec())),
                ]),
            ),
            (text("action"), text(self.action.as_str())),
            (text("reason"), text(self.reason.as_str())),
            (text("issuer"), Value::Bytes(self.issuer.to_raw().to_vec())),
            (text("time"), Value::Integer(self.time.into())),
        ];
        if let Some(url) = &self.evidence {
            check_evidence(url)?;
            m.push((text("evidence"), text(url)));
        }
        let bytes = cbor::encode(&Value::Map(m))?;
        // The signed entry adds at most 80 bytes of framing.
        let limit = MAX_SIGNED_ENTRY_BYTES - 80;
        if bytes.len() > limit {
            return Err(EntryError::TooLarge {
                what: "entry",
                size: bytes.len(),
                limit,
            });
        }
        Ok(bytes)
    }

    /// Decodes entry bytes (strict: deterministic CBOR, no unknown fields).
    pub fn from_bytes(input: &[u8]) -> Result<Entry, EntryError> {
        Self::decode_with(input, &mut IssuerKeys::default())
    }

    /// [`Entry::from_bytes`], taking the issuer key from `keys` when it was decoded before.
    fn decode_with(input: &[u8], keys: &mut IssuerKeys) -> Result<Entry, EntryError> {
        match Self::decode_fast(input, keys) {
            Some(entry) => Ok(entry),
            None => Self::decode_strict(input, keys),
        }
    }

    /// The strict decoder: a value tree, then typed fields.
    fn decode_strict(input: &[u8], keys: &mut IssuerKeys) -> Result<Entry, EntryError> {
        let value = cbor::decode(input, ENTRY_LIMITS)?;
        let mut top = Fields::new(value, "entry")?;
        let version = top.required("v")?.uint()?;
        if version != ENTRY_VERSION {
            return Err(EntryError::UnsupportedVersion { found: version });
        }
        let mut sf = Fields::new_at(top.required("subject")?)?;
        let kind: SubjectKind = sf.required("type")?.text_max(64)?.parse()?;
        let digest = sf.required("digest")?.digest()?;
        sf.finish()?;
        let action: Action = top.required("action")?.text_max(64)?.parse()?;
        let reason: Reason = top.required("reason")?.text_max(64)?.parse()?;
        let issuer_raw = top.required("issuer")?.fixed::<32>()?;
        let issuer = keys.get(&issuer_raw)?;
        let time = top.required("time")?.uint()?;
        let evidence = top
            .optional("evidence")
            .map(|v| v.text_max(MAX_EVIDENCE_BYTES))
            .transpose()?;
        top.finish()?;
        if let Some(url) = &evidence {
            check_evidence(url)?;
        }
        Ok(Entry {
            subject: Subject { kind, digest },
            action,
            reason,
            issuer,
            time,
            evidence,
        })
    }

    /// The one shape every entry has, read in one pass with no value tree (a sync or a
    /// load decodes up to millions): the map `{"v": 1, "time", "action", "issuer", "reason",
    /// "subject": {"type", "digest"}, "evidence" (optional)}`, keys in canonical order. Every
    /// check of the strict decoder below is made on the way. Returns `None` on anything
    /// else, including every input that decoder refuses, and the caller then runs it: so this
    /// path accepts only what the strict decoder accepts, with the same result, and every
    /// refusal and its error come from the strict decoder.
    fn decode_fast(input: &[u8], keys: &mut IssuerKeys) -> Option<Entry> {
        let mut r = Reader::new(input, ENTRY_LIMITS).ok()?;
        let Item::Map(pairs @ (6 | 7)) = r.next().ok()? else {
            return None;
        };
        expect_key(&mut r, "v")?;
        if !matches!(r.next().ok()?, Item::Uint(ENTRY_VERSION)) {
            return None;
        }
        expect_key(&mut r, "time")?;
        let Item::Uint(time) = r.next().ok()? else {
            return None;
        };
        expect_key(&mut r, "action")?;
        let action: Action = short_text(&mut r)?.parse().ok()?;
        expect_key(&mut r, "issuer")?;
        let Item::Bytes(issuer) = r.next().ok()? else {
            return None;
        };
        let issuer = keys.get(issuer.try_into().ok()?).ok()?;
        expect_key(&mut r, "reason")?;
        let reason: Reason = short_text(&mut r)?.parse().ok()?;
        expect_key(&mut r, "subject")?;
        if !matches!(r.next().ok()?, Item::Map(2)) {
            return None;
        }
        expect_key(&mut r, "type")?;
        let kind: SubjectKind = short_text(&mut r)?.parse().ok()?;
        expect_key(&mut r, "digest")?;
        let Item::Bytes(digest) = r.next().ok()? else {
            return None;
        };
        let digest = Digest::from_bytes(digest.try_into().ok()?);
        let evidence = if pairs == 7 {
            expect_key(&mut r, "evidence")?;
            let Item::Text(url) = r.next().ok()? else {
                return None;
            };
            if url.len() > MAX_EVIDENCE_BYTES || check_evidence(url).is_err() {
                return None;
            }
            Some(url.to_owned())
        } else {
            None
        };
        r.finish().ok()?;
        Some(Entry {
            subject: Subject { kind, digest },
            action,
            reason,
            issuer,
            time,
            evidence,
        })
    }

    /// Signs this entry with `key`, which must be the entry's issuer key.
    pub fn sign(&self, key: &SigningKey) -> Result<SignedEntry, EntryError> {
        SignedEntry::sign(self, key)
    }
}

/// The message an issuer signs for the given entry bytes.
pub fn entry_signed_message(entry_bytes: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(ENTRY_SIGNATURE_CONTEXT.len() + entry_bytes.len());
    m.extend_from_slice(ENTRY_SIGNATURE_CONTEXT);
    m.extend_from_slice(entry_bytes);
    m
}

/// An entry with its issuer's signature: one log leaf.
///
/// Every value of this type carries a signature that verified over its exact entry
/// bytes, by the issuer key those bytes name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedEntry {
    bytes: Vec<u8>,
    entry_bytes: Vec<u8>,
    signature: [u8; 64],
    entry: Entry,
}

impl SignedEntry {
    /// Signs `entry` with `key` (the entry's issuer key) and encodes the leaf.
    pub fn sign(entry: &Entry, key: &SigningKey) -> Result<SignedEntry, EntryError> {
        let found = KeyId::of_raw_public_key(key.verifying_key().as_bytes());
        if found != entry.issuer.id() {
            return Err(EntryError::WrongSigningKey {
                expected: entry.issuer.id(),
                found,
            });
        }
        let entry_bytes = entry.to_bytes()?;
        let signature = key.sign(&entry_signed_message(&entry_bytes)).to_bytes();
        let bytes = encode_signed(&entry_bytes, &signature)?;
        Ok(SignedEntry {
            bytes,
            entry_bytes,
            signature,
            entry: entry.clone(),
        })
    }

    /// Assembles a signed entry from entry bytes and a detached signature (for issuers
    /// that sign elsewhere); the signature is verified.
    pub fn from_parts(entry_bytes: Vec<u8>, signature: [u8; 64]) -> Result<SignedEntry, EntryError> {
        let bytes = encode_signed(&entry_bytes, &signature)?;
        Self::from_bytes(&bytes)
    }

    /// Decodes a signed entry (the leaf bytes) and verifies the issuer's signature.
    pub fn from_bytes(input: &[u8]) -> Result<SignedEntry, EntryError> {
        let signed = Self::decode_unverified(input)?;
        signed.verify_strict()?;
        Ok(signed)
    }

    /// The one-at-a-time signature check: `verify_strict` over the signed message.
    fn verify_strict(&self) -> Result<(), EntryError> {
        self.entry
            .issuer
            .verifying_key()
            .verify_strict(
                &entry_signed_message(&self.entry_bytes),
                &Signature::from_bytes(&self.signature),
            )
            .map_err(|_| EntryError::BadSignature {
                issuer: self.entry.issuer.id(),
            })
    }

    /// Decodes without checking the signature: only for bytes this crate verified
    /// before and stored itself (the local state folder).
    ///
    /// Public for holders of leaves they verified before (a log reading back its own store):
    /// never use it on bytes from elsewhere.
    pub fn decode_unverified(input: &[u8]) -> Result<SignedEntry, EntryError> {
        Self::decode_unverified_with(input, &mut IssuerKeys::default())
    }

    /// [`SignedEntry::decode_unverified`] with a cache of decoded issuer keys (one per
    /// thread of a sync or a load). The signature is not checked: pass the result to
    /// [`verify_signatures`] before trusting it.
    pub(crate) fn decode_unverified_with(input: &[u8], keys: &mut IssuerKeys) -> Result<SignedEntry, EntryError> {
        match Self::decode_fast(input, keys) {
            Some(signed) => Ok(signed),
            None => Self::decode_strict(input, keys, Entry::decode_with),
        }
    }

    /// The strict decoder of the leaf, with `entry` as the decoder of the entry bytes.
    fn decode_strict(
        input: &[u8],
        keys: &mut IssuerKeys,
        entry: fn(&[u8], &mut IssuerKeys) -> Result<Entry, EntryError>,
    ) -> Result<SignedEntry, EntryError> {
        if input.len() > MAX_SIGNED_ENTRY_BYTES {
            return Err(EntryError::TooLarge {
                what: "signed entry",
                size: input.len(),
                limit: MAX_SIGNED_ENTRY_BYTES,
            });
        }
        let value = cbor::decode(input, SIGNED_ENTRY_LIMITS)?;
        let mut top = Fields::new(value, "signed entry")?;
        let entry_bytes = top.required("entry")?.byte_string()?;
        let signature = top.required("sig")?.fixed::<64>()?;
        top.finish()?;
        let entry = entry(&entry_bytes, keys)?;
        Ok(SignedEntry {
            bytes: input.to_vec(),
            entry_bytes,
            signature,
            entry,
        })
    }

    /// The entry of a leaf this crate verified and stored before (the local state folder),
    /// without copying the leaf: what a load needs. Unverified, as
    /// [`SignedEntry::decode_unverified`].
    pub(crate) fn decode_entry_unverified(input: &[u8], keys: &mut IssuerKeys) -> Result<Entry, EntryError> {
        match Self::split_fast(input).and_then(|(_, entry_bytes)| Entry::decode_fast(entry_bytes, keys)) {
            Some(entry) => Ok(entry),
            None => Self::decode_strict(input, keys, Entry::decode_with).map(|s| s.entry),
        }
    }

    /// The signature and the entry bytes of `{"sig": bstr(64), "entry": bstr}` (canonical
    /// key order), read in one pass; `None` on anything else.
    fn split_fast(input: &[u8]) -> Option<([u8; 64], &[u8])> {
        let mut r = Reader::new(input, SIGNED_ENTRY_LIMITS).ok()?;
        if !matches!(r.next().ok()?, Item::Map(2)) {
            return None;
        }
        expect_key(&mut r, "sig")?;
        let Item::Bytes(signature) = r.next().ok()? else {
            return None;
        };
        let signature: [u8; 64] = signature.try_into().ok()?;
        expect_key(&mut r, "entry")?;
        let Item::Bytes(entry_bytes) = r.next().ok()? else {
            return None;
        };
        r.finish().ok()?;
        Some((signature, entry_bytes))
    }

    /// `{"sig": bstr(64), "entry": bstr}` (canonical key order) read in one pass, then the
    /// entry by [`Entry::decode_fast`]; `None` on anything else, as there.
    fn decode_fast(input: &[u8], keys: &mut IssuerKeys) -> Option<SignedEntry> {
        let (signature, entry_bytes) = Self::split_fast(input)?;
        let entry = Entry::decode_fast(entry_bytes, keys)?;
        Some(SignedEntry {
            bytes: input.to_vec(),
            entry_bytes: entry_bytes.to_vec(),
            signature,
            entry,
        })
    }

    /// The decoded entry.
    pub fn entry(&self) -> &Entry {
        &self.entry
    }

    /// Consumes the value, returning the decoded entry.
    pub(crate) fn into_entry(self) -> Entry {
        self.entry
    }

    /// The exact signed-entry bytes: the log leaf.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Consumes the value, returning the leaf bytes.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    /// The exact entry bytes the issuer signed.
    pub fn entry_bytes(&self) -> &[u8] {
        &self.entry_bytes
    }

    /// The issuer's ed25519 signature.
    pub fn signature(&self) -> &[u8; 64] {
        &self.signature
    }

    /// The RFC 6962 leaf hash of the leaf bytes (what the log and replay checks use).
    pub fn leaf_hash(&self) -> Hash {
        merkle::leaf_hash(&self.bytes)
    }
}

/// Reads the next item and requires it to be the text `name` (a map key).
fn expect_key(r: &mut Reader<'_>, name: &str) -> Option<()> {
    matches!(r.next().ok()?, Item::Text(t) if t == name).then_some(())
}

/// Reads the next item and requires it to be text of at most 64 bytes (the limit the
/// strict decoder puts on names: action, reason, subject type).
fn short_text<'a>(r: &mut Reader<'a>) -> Option<&'a str> {
    match r.next().ok()? {
        Item::Text(t) if t.len() <= 64 => Some(t),
        _ => None,
    }
}

/// Issuer keys decoded before, by their raw bytes. A log has few issuers and a sync or a
/// load decodes up to millions of entries: decoding a key (a point decompression and the
/// small-order check of [`PublicKey::from_raw`]) once per issuer instead of once per entry
/// saves about a third of the work of checking an entry. Bounded, so that a log of entries
/// by a million different keys costs no more than decoding each.
#[derive(Debug, Default)]
pub(crate) struct IssuerKeys(HashMap<[u8; 32], PublicKey, foldhash::fast::FixedState>);

impl IssuerKeys {
    /// The most keys held.
    const MAX: usize = 1024;

    fn get(&mut self, raw: &[u8; 32]) -> Result<PublicKey, EntryError> {
        if let Some(key) = self.0.get(raw) {
            return Ok(*key);
        }
        let key = PublicKey::from_raw(raw).map_err(|e| EntryError::BadIssuerKey { reason: e.to_string() })?;
        if self.0.len() < Self::MAX {
            self.0.insert(*raw, key);
        }
        Ok(key)
    }
}

/// Entries per signature batch. Larger batches cost less per signature (one multiscalar
/// multiplication for the batch, its fixed cost shared) but more to search when one is bad.
pub(crate) const SIGNATURE_BATCH: usize = 1024;

/// Checks the issuer signature of every entry (decoded with
/// [`SignedEntry::decode_unverified_with`]), in batches of [`SIGNATURE_BATCH`] on every
/// core. Returns the position in `entries` of the first entry, in order, whose signature
/// does not verify, and why.
///
/// A batch is one randomised check of all its signatures together ([`batch_holds`]). When
/// it fails, each entry of the batch is checked alone with the strict rule of
/// [`SignedEntry::from_bytes`], so the entry named is the one that rule refuses. Every
/// signature the strict rule accepts passes its batch; what a batch can accept that the
/// strict rule refuses is said at [`batch_holds`].
pub(crate) fn verify_signatures(entries: &[SignedEntry]) -> Result<(), (usize, EntryError)> {
    use rayon::prelude::*;
    match entries
        .par_chunks(SIGNATURE_BATCH)
        .enumerate()
        .find_map_first(|(n, batch)| verify_batch(batch).err().map(|(i, e)| (n * SIGNATURE_BATCH + i, e)))
    {
        Some(bad) => Err(bad),
        None => Ok(()),
    }
}

fn verify_batch(batch: &[SignedEntry]) -> Result<(), (usize, EntryError)> {
    if batch_holds(batch) {
        return Ok(());
    }
    // Some signature in the batch is bad (or the check could not run): find the first one by
    // the strict rule.
    for (i, s) in batch.iter().enumerate() {
        s.verify_strict().map_err(|e| (i, e))?;
    }
    Ok(())
}

/// The batch equation of Ed25519 over `batch`, with one term per issuer key instead of one
/// per signature.
///
/// Signature `i` (`R_i`, `s_i`) by key `A_i` over message `M_i` is valid when
/// `s_i·B = R_i + k_i·A_i`, `k_i = SHA-512(R_i ‖ A_i ‖ M_i) mod ℓ`. With independent random
/// 128-bit `z_i` (fresh from the OS for every batch, so no signer can aim at them), the
/// batch holds when
///
/// `Σ z_i·R_i + Σ_A (Σ_{i by A} z_i·k_i)·A − (Σ z_i·s_i)·B = 0`,
///
/// one multiscalar multiplication. Grouping the `A` terms by key is exact algebra, and a
/// log has few issuers, so the multiplication has about one point per signature instead of
/// two, most with 128-bit coefficients: a third of the work of checking them one by one.
///
/// If one signature's `s_i·B − R_i − k_i·A_i` is a point outside the small-order subgroup,
/// the sum is zero with probability at most 2^-128. The strict rule also refuses `s_i ≥ ℓ`,
/// a non-canonical or small-order `R_i` and a small-order `A_i` (refused when the key was
/// decoded), and so does this. What it can pass that the strict rule refuses: signatures
/// whose residual is a nonzero small-order point, i.e. whose `R_i` or `A_i` carries a
/// small-order component. Making one takes the issuer's private key, so such an entry is
/// still the issuer's own statement (spec/revocation.md §7.2 step 8).
///
/// `false` when the equation does not hold, when an input is malformed, or when the OS
/// gives no randomness: the caller then checks each signature alone.
fn batch_holds(batch: &[SignedEntry]) -> bool {
    use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
    use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
    use curve25519_dalek::scalar::Scalar;
    use curve25519_dalek::traits::{IsIdentity as _, VartimeMultiscalarMul as _};
    use sha2::{Digest as _, Sha512};

    let mut seed = [0u8; 32];
    if getrandom::fill(&mut seed).is_err() {
        return false;
    }
    let mut coefficients = blake3::Hasher::new_keyed(&seed).finalize_xof();
    let mut scalars: Vec<Scalar> = Vec::with_capacity(batch.len() + 2);
    let mut points: Vec<EdwardsPoint> = Vec::with_capacity(batch.len() + 2);
    let mut per_key: HashMap<[u8; 32], (EdwardsPoint, Scalar), foldhash::fast::FixedState> = HashMap::default();
    let mut b_coefficient = Scalar::ZERO;
    for signed in batch {
        let sig = &signed.signature;
        let mut r_bytes = [0u8; 32];
        r_bytes.copy_from_slice(&sig[..32]);
        let mut s_bytes = [0u8; 32];
        s_bytes.copy_from_slice(&sig[32..]);
        let Some(s) = Option::<Scalar>::from(Scalar::from_canonical_bytes(s_bytes)) else {
            return false;
        };
        if !canonical_y(sig) {
            return false;
        }
        let Some(r) = CompressedEdwardsY(r_bytes).decompress() else {
            return false;
        };
        if r.is_small_order() {
            return false;
        }
        let key = signed.entry.issuer.verifying_key();
        let hram = Sha512::new()
            .chain_update(r_bytes)
            .chain_update(key.as_bytes())
            .chain_update(ENTRY_SIGNATURE_CONTEXT)
            .chain_update(&signed.entry_bytes)
            .finalize();
        let mut wide = [0u8; 64];
        wide.copy_from_slice(&hram);
        let k = Scalar::from_bytes_mod_order_wide(&wide);
        let mut z = [0u8; 16];
        coefficients.fill(&mut z);
        let z = Scalar::from(u128::from_le_bytes(z));
        b_coefficient += z * s;
        // `z`, not `-z`: a 128-bit coefficient takes half the additions of a full one in
        // the multiplication, so the signs go on the other terms.
        scalars.push(z);
        points.push(r);
        let term = per_key
            .entry(*key.as_bytes())
            .or_insert_with(|| (key.to_edwards(), Scalar::ZERO));
        term.1 += z * k;
    }
    scalars.push(-b_coefficient);
    points.push(ED25519_BASEPOINT_POINT);
    for (a, c) in per_key.into_values() {
        scalars.push(c);
        points.push(a);
    }
    EdwardsPoint::vartime_multiscalar_mul(scalars, points).is_identity()
}

/// Whether the `R` half of `signature` encodes its `y` coordinate canonically (`y < p`,
/// p = 2^255 - 19; the top bit is the sign of `x`). `verify_strict` compares `R` with a
/// canonical encoding, so it refuses any other.
fn canonical_y(signature: &[u8; 64]) -> bool {
    let mut y = [0u8; 32];
    y.copy_from_slice(&signature[..32]);
    y[31] &= 0x7f;
    // y ≥ p only for 2^255 - 19 ..= 2^255 - 1: bytes 0xed..=0xff, then 30 × 0xff, then 0x7f.
    !(y[31] == 0x7f && y[1..31].iter().all(|&b| b == 0xff) && y[0] >= 0xed)
}

fn encode_signed(entry_bytes: &[u8], signature: &[u8; 64]) -> Result<Vec<u8>, EntryError> {
    let bytes = cbor::encode(&Value::Map(vec![
        (text("entry"), Value::Bytes(entry_bytes.to_vec())),
        (text("sig"), Value::Bytes(signature.to_vec())),
    ]))?;
    if bytes.len() > MAX_SIGNED_ENTRY_BYTES {
        return Err(EntryError::TooLarge {
            what: "signed entry",
            size: bytes.len(),
            limit: MAX_SIGNED_ENTRY_BYTES,
        });
    }
    Ok(bytes)
}

/// The largest submission body (`POST /v1/submit`), in bytes.
pub const MAX_SUBMISSION_BYTES: usize = 1 << 20;

const SUBMISSION_LIMITS: Limits = Limits {
    max_bytes: MAX_SUBMISSION_BYTES,
    max_items: 8,
    max_depth: 2,
};

/// A submission to the log (`POST /v1/submit`, spec/revocation.md §6): a signed entry
/// and, for a lab revoking a manifest, the signature file that proves its authority.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submission {
    /// The signed entry (signature verified on decode).
    pub entry: SignedEntry,
    /// The exact bytes of a weightseal signature file, if any.
    pub authority: Option<Vec<u8>>,
}

impl Submission {
    /// The CBOR body: `{"entry": bstr, "authority": bstr (optional)}`.
    pub fn to_bytes(&self) -> Result<Vec<u8>, EntryError> {
        encode_submission(
            "entry",
            Value::Bytes(self.entry.as_bytes().to_vec()),
            self.authority.as_deref(),
            &[],
        )
    }

    /// Decodes a submission body and verifies the entry's signature. The authority
    /// bytes are returned undecoded (decode them with [`crate::SignatureFile::from_bytes`]).
    pub fn from_bytes(input: &[u8]) -> Result<Submission, EntryError> {
        if input.len() > MAX_SUBMISSION_BYTES {
            return Err(EntryError::TooLarge {
                what: "submission",
                size: input.len(),
                limit: MAX_SUBMISSION_BYTES,
            });
        }
        let value = cbor::decode(input, SUBMISSION_LIMITS)?;
        let mut top = Fields::new(value, "submission")?;
        let entry_bytes = top.required("entry")?.byte_string()?;
        let authority = top.optional("authority").map(|a| a.byte_string()).transpose()?;
        top.finish()?;
        let entry = SignedEntry::from_bytes(&entry_bytes)?;
        Ok(Submission { entry, authority })
    }
}

/// What a content revocation of a model holds (spec/revocation.md §6.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentSelection {
    /// The digests to revoke, each with what it is (`file P`, `tensor T in P`), in the
    /// model's file and chunk order, each digest once.
    pub revoke: Vec<(Digest, String)>,
    /// The digests another model also has: (digest, what it is, position of that model in
    /// `bases`). Left out of `revoke` unless shared content is included explicitly.
    pub shared: Vec<(Digest, String, usize)>,
}

/// Selects the content digests a revocation of the model made of `files` holds: the
/// digest of every safetensors/GGUF file and of every non-empty tensor (plain files such as
/// `config.json` are shared by unrelated models and never selected). A digest any of `bases`
/// (the model's parents, and models the issuer names) also has is listed in `shared` and,
/// unless `include_shared`, left out, so that revoking a derivative never revokes the content
/// it shares with its parent.
pub fn select_content(
    files: &[crate::FileEntry],
    bases: &[std::collections::BTreeSet<Digest>],
    include_shared: bool,
) -> ContentSelection {
    let mut candidates = Vec::new();
    for f in files {
        if f.kind != crate::FileKind::Raw {
            candidates.push((f.digest, format!("file {}", f.path)));
        }
        for c in &f.chunks {
            if matches!(c.role, crate::ChunkRole::Tensor(_)) && c.len > 0 {
                candidates.push((c.digest, format!("{} in {}", c.label(), f.path)));
            }
        }
    }
    let mut seen = std::collections::HashSet::new();
    let mut out = ContentSelection {
        revoke: Vec::new(),
        shared: Vec::new(),
    };
    for (digest, what) in candidates {
        if !seen.insert(digest) {
            continue;
        }
        match bases.iter().position(|b| b.contains(&digest)) {
            Some(base) => {
                out.shared.push((digest, what.clone(), base));
                if include_shared {
                    out.revoke.push((digest, what));
                }
            }
            None => out.revoke.push((digest, what)),
        }
    }
    out
}

/// Both submission forms: `{KEY: entries, "authority"?: bstr}`, within the size limit
/// (the limit is checked on encode as on decode, so a client never sends what a log refuses).
fn encode_submission(
    key: &str,
    entries: Value,
    authority: Option<&[u8]>,
    lineage: &[LineageDoc],
) -> Result<Vec<u8>, EntryError> {
    let mut m = vec![(text(key), entries)];
    if let Some(a) = authority {
        m.push((text("authority"), Value::Bytes(a.to_vec())));
    }
    if !lineage.is_empty() {
        let docs = lineage.iter().map(|d| Value::Bytes(d.as_bytes().to_vec())).collect();
        m.push((text("lineage"), Value::Array(docs)));
    }
    let bytes = cbor::encode(&Value::Map(m))?;
    let limit = submission_limit(!lineage.is_empty());
    if bytes.len() > limit {
        return Err(EntryError::TooLarge {
            what: "submission",
            size: bytes.len(),
            limit,
        });
    }
    Ok(bytes)
}

/// The most bytes a submission may take: [`MAX_SUBMISSION_BYTES`], plus room for its one
/// lineage document when it carries one.
pub fn submission_limit(with_lineage: bool) -> usize {
    if with_lineage {
        MAX_SUBMISSION_WITH_LINEAGE_BYTES
    } else {
        MAX_SUBMISSION_BYTES
    }
}

/// The largest submission body carrying a lineage document: the entries' 1 MiB plus one
/// document and the CBOR around it.
pub const MAX_SUBMISSION_WITH_LINEAGE_BYTES: usize = MAX_SUBMISSION_BYTES + MAX_LINEAGE_DOC_BYTES + 32;

/// The most lineage documents one submission may carry: a document is large and a `lineage`
/// revocation names one fork, so one per submission keeps the body limit simple.
pub const MAX_LINEAGE_DOCS_PER_SUBMISSION: usize = 1;

/// The most entries one batch submission may carry.
pub const MAX_BATCH_ENTRIES: usize = 4096;

const BATCH_LIMITS: Limits = Limits {
    max_bytes: MAX_SUBMISSION_WITH_LINEAGE_BYTES,
    max_items: MAX_BATCH_ENTRIES as u64 + 16,
    max_depth: 2,
};

/// A submission of one or more entries that the log appends all or nothing, at consecutive
/// indexes and under one signed checkpoint (spec/revocation.md §6.1), so that an interruption
/// cannot leave a model half revoked.
///
/// Wire forms: `{"entry": bstr, "authority"?: bstr}` (one entry, the original form) or
/// `{"entries": [bstr, …], "authority"?: bstr}` (1 to [`MAX_BATCH_ENTRIES`] entries, no two
/// alike). The authority, if any, is offered for every entry of the batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchSubmission {
    /// The signed entries, in the order they are to be appended (signatures verified on decode).
    pub entries: Vec<SignedEntry>,
    /// The exact bytes of a weightseal signature file, if any.
    pub authority: Option<Vec<u8>>,
    /// The lineage documents the batch's `lineage` entries name (at most
    /// [`MAX_LINEAGE_DOCS_PER_SUBMISSION`]; each named by an entry of the batch). A
    /// `lineage` entry whose document is not here must name one the log already holds.
    pub lineage: Vec<LineageDoc>,
}

impl BatchSubmission {
    /// The subject digests of the batch's `lineage` entries whose document the batch does
    /// not carry (the log must already hold each, or the submission is refused).
    pub fn lineage_not_carried(&self) -> Vec<Digest> {
        let mut out: Vec<Digest> = self
            .entries
            .iter()
            .map(|e| e.entry().subject)
            .filter(|s| s.kind == SubjectKind::Lineage && !self.lineage.iter().any(|d| d.digest() == s.digest))
            .map(|s| s.digest)
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// The CBOR body: the `entries` form, whatever the count.
    pub fn to_bytes(&self) -> Result<Vec<u8>, EntryError> {
        check_batch(&self.entries)?;
        let entries = self
            .entries
            .iter()
            .map(|e| Value::Bytes(e.as_bytes().to_vec()))
            .collect();
        encode_submission(
            "entries",
            Value::Array(entries),
            self.authority.as_deref(),
            &self.lineage,
        )
    }

    /// Decodes either wire form and verifies every entry's signature.
    pub fn from_bytes(input: &[u8]) -> Result<BatchSubmission, EntryError> {
        Self::from_bytes_with_form(input).map(|(b, _)| b)
    }

    /// [`BatchSubmission::from_bytes`], also saying whether the `entries` form was used (the
    /// log answers that form with every leaf hash, and the one-entry form as before).
    pub fn from_bytes_with_form(input: &[u8]) -> Result<(BatchSubmission, bool), EntryError> {
        if input.len() > MAX_SUBMISSION_WITH_LINEAGE_BYTES {
            return Err(EntryError::TooLarge {
                what: "submission",
                size: input.len(),
                limit: MAX_SUBMISSION_WITH_LINEAGE_BYTES,
            });
        }
        let value = cbor::decode(input, BATCH_LIMITS)?;
        let mut top = Fields::new(value, "submission")?;
        let single = top.optional("entry").map(|e| e.byte_string()).transpose()?;
        let many = top
            .optional("entries")
            .map(|a| {
                a.array_max(MAX_BATCH_ENTRIES)?
                    .into_iter()
                    .map(|e| e.byte_string())
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?;
        let authority = top.optional("authority").map(|a| a.byte_string()).transpose()?;
        let docs = top
            .optional("lineage")
            .map(|a| {
                a.array_max(MAX_LINEAGE_DOCS_PER_SUBMISSION)?
                    .into_iter()
                    .map(|d| d.byte_string())
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?
            .unwrap_or_default();
        // Only a submission that carries a document may use the larger limit (checked before
        // anything else is looked at, so an oversized body is answered as one).
        let limit = submission_limit(!docs.is_empty());
        if input.len() > limit {
            return Err(EntryError::TooLarge {
                what: "submission",
                size: input.len(),
                limit,
            });
        }
        top.finish()?;
        let (raw, batch_form) = match (single, many) {
            (Some(one), None) => (vec![one], false),
            (None, Some(many)) => (many, true),
            _ => {
                return Err(EntryError::Field {
                    field: "submission".into(),
                    problem: "exactly one of \"entry\" and \"entries\" is required".into(),
                })
            }
        };
        let entries = raw
            .iter()
            .map(|b| SignedEntry::from_bytes(b))
            .collect::<Result<Vec<_>, _>>()?;
        check_batch(&entries)?;
        let mut lineage = Vec::with_capacity(docs.len());
        for (i, bytes) in docs.iter().enumerate() {
            let doc = LineageDoc::from_bytes(bytes).map_err(|source| EntryError::Lineage {
                field: format!("submission.lineage[{i}]"),
                source: Box::new(source),
            })?;
            let named = entries.iter().any(|e| e.entry().subject == doc.subject());
            if !named {
                return Err(EntryError::Field {
                    field: format!("submission.lineage[{i}]"),
                    problem: format!(
                        "document {} is named by no lineage entry of the submission",
                        doc.digest()
                    ),
                });
            }
            lineage.push(doc);
        }
        Ok((
            BatchSubmission {
                entries,
                authority,
                lineage,
            },
            batch_form,
        ))
    }
}

/// A batch holds 1 to [`MAX_BATCH_ENTRIES`] entries, no two with the same leaf hash (one
/// would be a replay of the other).
fn check_batch(entries: &[SignedEntry]) -> Result<(), EntryError> {
    if entries.is_empty() || entries.len() > MAX_BATCH_ENTRIES {
        return Err(EntryError::Field {
            field: "submission.entries".into(),
            problem: format!("{} entries: a batch holds 1 to {MAX_BATCH_ENTRIES}", entries.len()),
        });
    }
    let mut seen = std::collections::HashSet::with_capacity(entries.len());
    for (i, e) in entries.iter().enumerate() {
        if !seen.insert(e.leaf_hash()) {
            return Err(EntryError::Field {
                field: format!("submission.entries[{i}]"),
                problem: "the same signed entry twice".into(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a test fails by panicking")]
mod tests {
    use super::*;

    pub(crate) fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    fn entry(k: &SigningKey) -> Entry {
        Entry {
            subject: Subject::manifest(Digest::of(b"model")),
            action: Action::Revoke,
            reason: Reason::GuardrailsRemoved,
            issuer: PublicKey::from_verifying_key(k.verifying_key()),
            time: 1_700_000_000,
            evidence: Some("https://hub.example/r/1".into()),
        }
    }

    #[test]
    fn round_trip_and_verify() {
        let k = key(1);
        let e = entry(&k);
        let s = e.sign(&k).unwrap();
        let back = SignedEntry::from_bytes(s.as_bytes()).unwrap();
        assert_eq!(back, s);
        assert_eq!(back.entry(), &e);
        assert_eq!(Entry::from_bytes(s.entry_bytes()).unwrap(), e);
        assert_eq!(s.leaf_hash(), merkle::leaf_hash(s.as_bytes()));
        let no_evidence = Entry { evidence: None, ..e };
        let s2 = no_evidence.sign(&k).unwrap();
        assert_eq!(SignedEntry::from_bytes(s2.as_bytes()).unwrap().entry().evidence, None);
    }

    #[test]
    fn wrong_key_and_tampering_are_refused() {
        let k = key(1);
        let e = entry(&k);
        assert!(matches!(e.sign(&key(2)), Err(EntryError::WrongSigningKey { .. })));
        let s = e.sign(&k).unwrap();
        let mut sig = *s.signature();
        sig[0] ^= 1;
        assert!(matches!(
            SignedEntry::from_parts(s.entry_bytes().to_vec(), sig),
            Err(EntryError::BadSignature { .. })
        ));
        // Flip the reason inside the signed bytes: same length, different text.
        let mut bytes = s.as_bytes().to_vec();
        let pos = bytes.windows(6).position(|w| w == b"revoke").unwrap();
        bytes[pos] = b'R';
        assert!(SignedEntry::from_bytes(&bytes).is_err());
    }

    /// `n` good entries by two issuers, in log order.
    fn many(n: usize) -> Vec<SignedEntry> {
        (0..n)
            .map(|i| {
                let k = key(1 + (i % 2) as u8);
                Entry {
                    subject: Subject::content(Digest::of(&i.to_be_bytes())),
                    ..entry(&k)
                }
                .sign(&k)
                .unwrap()
            })
            .collect()
    }

    /// `s` with one bit of its signature flipped: it still decodes, and does not verify.
    fn bad_signature(s: &SignedEntry) -> SignedEntry {
        let mut sig = *s.signature();
        sig[40] ^= 1;
        SignedEntry::decode_unverified(&encode_signed(s.entry_bytes(), &sig).unwrap()).unwrap()
    }

    #[test]
    fn the_batch_equation_holds_for_good_signatures_only() {
        let good = many(300);
        // Directly: a wrong equation would pass every test below by falling back to the
        // strict rule, only slowly.
        assert!(batch_holds(&good));
        assert!(batch_holds(&good[..1]));
        assert!(batch_holds(&[]));
        for at in [0, 137, 299] {
            let mut bad = good.clone();
            bad[at] = bad_signature(&bad[at]);
            assert!(!batch_holds(&bad), "{at}");
        }
        // A valid signature on another entry, an entry by another issuer.
        let mut moved = good.clone();
        moved[10] =
            SignedEntry::decode_unverified(&encode_signed(good[10].entry_bytes(), good[12].signature()).unwrap())
                .unwrap();
        assert!(!batch_holds(&moved));
        // `s` not below the group order: refused like the strict rule does.
        let mut big_s = good.clone();
        let mut sig = *good[5].signature();
        sig[63] |= 0xf0;
        big_s[5] = SignedEntry::decode_unverified(&encode_signed(good[5].entry_bytes(), &sig).unwrap()).unwrap();
        assert!(!batch_holds(&big_s));
        // An identity (small-order) nonce point.
        let mut small_r = good.clone();
        let mut sig = *good[7].signature();
        sig[..32].copy_from_slice(&{
            let mut one = [0u8; 32];
            one[0] = 1;
            one
        });
        small_r[7] = SignedEntry::decode_unverified(&encode_signed(good[7].entry_bytes(), &sig).unwrap()).unwrap();
        assert!(!batch_holds(&small_r));
    }

    #[test]
    fn batch_verification_names_the_first_bad_entry_among_many_good_ones() {
        let mut entries = many(3 * SIGNATURE_BATCH + 7);
        verify_signatures(&entries).unwrap();
        // One bad signature in the middle of the second batch.
        let at = SIGNATURE_BATCH + 100;
        entries[at] = bad_signature(&entries[at]);
        let (i, e) = verify_signatures(&entries).unwrap_err();
        assert_eq!(i, at);
        assert!(matches!(e, EntryError::BadSignature { .. }), "{e}");
        // Another in the last (partial) batch: still the first is named.
        let last = entries.len() - 1;
        entries[last] = bad_signature(&entries[last]);
        assert_eq!(verify_signatures(&entries).unwrap_err().0, at);
        // And one earlier in the same batch takes its place.
        entries[at - 50] = bad_signature(&entries[at - 50]);
        assert_eq!(verify_signatures(&entries).unwrap_err().0, at - 50);
        // Two valid signatures swapped between entries: each is bad where it now is.
        let mut swapped = many(SIGNATURE_BATCH);
        let (a, b) = (swapped[3].signature().to_owned(), swapped[4].signature().to_owned());
        swapped[3] = SignedEntry::decode_unverified(&encode_signed(swapped[3].entry_bytes(), &b).unwrap()).unwrap();
        swapped[4] = SignedEntry::decode_unverified(&encode_signed(swapped[4].entry_bytes(), &a).unwrap()).unwrap();
        assert_eq!(verify_signatures(&swapped).unwrap_err().0, 3);
        assert!(verify_signatures(&[]).is_ok());
    }

    /// A leaf with evidence or without, and its entry bytes.
    fn leaf(evidence: bool) -> SignedEntry {
        let k = key(3);
        let e = Entry {
            evidence: evidence.then(|| "https://hub.example/r/1".into()),
            ..entry(&k)
        };
        e.sign(&k).unwrap()
    }

    #[test]
    fn the_one_pass_decoder_reads_every_entry_this_crate_writes() {
        for evidence in [false, true] {
            for action in [Action::Revoke, Action::Reinstate] {
                for subject in [
                    Subject::manifest(Digest::of(b"m")),
                    Subject::content(Digest::of(b"c")),
                    Subject::lineage(Digest::of(b"l")),
                    Subject::key(KeyId::of_raw_public_key(&[9; 32])),
                ] {
                    let k = key(4);
                    let s = Entry {
                        subject,
                        action,
                        evidence: evidence.then(|| "https://hub.example/r/2".into()),
                        ..entry(&k)
                    }
                    .sign(&k)
                    .unwrap();
                    let fast = SignedEntry::decode_fast(s.as_bytes(), &mut IssuerKeys::default());
                    assert_eq!(fast.as_ref(), Some(&s), "{subject} {action} {evidence}");
                }
            }
        }
    }

    /// `bytes` with one byte replaced, or cut there.
    fn mutated(bytes: &[u8], at: proptest::sample::Index, byte: u8, cut: bool) -> Vec<u8> {
        let mut bytes = bytes.to_vec();
        let i = at.index(bytes.len());
        if cut {
            bytes.truncate(i);
        } else {
            bytes[i] = byte;
        }
        bytes
    }

    proptest::proptest! {
        /// Whatever the one-pass decoder accepts, the strict decoder accepts with the same
        /// result (and anything else goes to the strict decoder): one changed byte, or a cut.
        #[test]
        fn the_one_pass_decoder_accepts_only_what_the_strict_one_does(
            evidence: bool, at: proptest::sample::Index, byte: u8, cut: bool,
        ) {
            let bytes = mutated(leaf(evidence).as_bytes(), at, byte, cut);
            let strict = SignedEntry::decode_strict(&bytes, &mut IssuerKeys::default(), Entry::decode_strict).ok();
            if let Some(fast) = SignedEntry::decode_fast(&bytes, &mut IssuerKeys::default()) {
                proptest::prop_assert_eq!(Some(fast), strict);
            }
        }

        /// The same for the entry bytes alone.
        #[test]
        fn the_one_pass_entry_decoder_accepts_only_what_the_strict_one_does(
            evidence: bool, at: proptest::sample::Index, byte: u8, cut: bool,
        ) {
            let bytes = mutated(leaf(evidence).entry_bytes(), at, byte, cut);
            let strict = Entry::decode_strict(&bytes, &mut IssuerKeys::default()).ok();
            if let Some(fast) = Entry::decode_fast(&bytes, &mut IssuerKeys::default()) {
                proptest::prop_assert_eq!(Some(fast), strict);
            }
        }
    }

    #[test]
    fn nonce_encodings_with_y_at_or_over_p_are_not_canonical() {
        let with_r = |r: [u8; 32]| {
            let mut sig = [0u8; 64];
            sig[..32].copy_from_slice(&r);
            sig
        };
        // p = 2^255 - 19, little-endian.
        let mut p = [0xff; 32];
        p[0] = 0xed;
        p[31] = 0x7f;
        let mut p_minus_1 = p;
        p_minus_1[0] = 0xec;
        let mut p_plus_1 = p;
        p_plus_1[0] = 0xee;
        let mut top = [0xff; 32];
        top[31] = 0x7f;
        let mut low_byte_30 = p;
        low_byte_30[30] = 0xfe;
        for sign in [0u8, 0x80] {
            let signed = |mut r: [u8; 32]| {
                r[31] |= sign;
                with_r(r)
            };
            assert!(canonical_y(&signed([0; 32])));
            assert!(canonical_y(&signed(p_minus_1)));
            assert!(canonical_y(&signed(low_byte_30)));
            assert!(!canonical_y(&signed(p)));
            assert!(!canonical_y(&signed(p_plus_1)));
            assert!(!canonical_y(&signed(top)));
        }
        // A real signature's R is canonical.
        assert!(canonical_y(many(1)[0].signature()));
    }

    #[test]
    fn field_rules() {
        let k = key(1);
        let mut e = entry(&k);
        for bad in ["ftp://x", "https://", "https://a b", "hub.example"] {
            e.evidence = Some(bad.into());
            assert!(matches!(e.to_bytes(), Err(EntryError::BadEvidence { .. })), "{bad}");
        }
        e.evidence = Some(format!("https://{}", "a".repeat(MAX_EVIDENCE_BYTES)));
        assert!(matches!(e.to_bytes(), Err(EntryError::BadEvidence { .. })));
        assert!("nope".parse::<Reason>().is_err());
        for r in Reason::ALL {
            assert_eq!(r.as_str().parse::<Reason>().unwrap(), r);
        }
        assert!(SignedEntry::from_bytes(&vec![0u8; MAX_SIGNED_ENTRY_BYTES + 1]).is_err());
    }

    #[test]
    fn submission_round_trip() {
        let k = key(1);
        let s = entry(&k).sign(&k).unwrap();
        let sub = Submission {
            entry: s,
            authority: Some(vec![1, 2, 3]),
        };
        assert_eq!(Submission::from_bytes(&sub.to_bytes().unwrap()).unwrap(), sub);
    }
}
