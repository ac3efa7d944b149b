//! The seam between the server and the verifier's revocation formats. Every format comes from
//! [`weightseal_verifier::revocation`] (entry, policy, snapshot, tile); this module only maps
//! their results onto what the handlers answer.

use std::path::Path;

use weightseal_log::policy::IssuerPolicy;
use weightseal_verifier::revocation::entry::BatchSubmission;
use weightseal_verifier::revocation::lineage::LineageDoc;
use weightseal_verifier::revocation::policy::PolicyViolation;
use weightseal_verifier::Digest;

/// Why a submission was refused (maps to the HTTP status and the metrics reason).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Not a valid submission / signed entry / authority file (400).
    Malformed(String),
    /// The issuer's signature does not verify (400).
    BadSignature(String),
    /// The issuer key is not configured (403).
    UnknownIssuer(String),
    /// The issuer may not do this (403).
    OutOfScope(String),
    /// The entry's time is outside the accepted window (400).
    Stale(String),
    /// The issuer key is revoked in the log (403, `revoked_issuer`).
    RevokedIssuer(String),
    /// A lineage document is malformed, not the one its entry names, or missing (400,
    /// `bad_lineage`).
    BadLineage(String),
    /// The body or a document in it is over its limit (413, `too_large`).
    TooLarge(String),
}

impl Refusal {
    /// The refusal for a policy violation.
    pub fn from_violation(v: PolicyViolation) -> Self {
        let message = v.to_string();
        match v {
            PolicyViolation::UnknownIssuer { .. } => Refusal::UnknownIssuer(message),
            PolicyViolation::MalformedAuthority { .. } => Refusal::Malformed(message),
            PolicyViolation::TooOld { .. } | PolicyViolation::InFuture { .. } => Refusal::Stale(message),
            PolicyViolation::RevokedIssuer { .. } => Refusal::RevokedIssuer(message),
            _ => Refusal::OutOfScope(message),
        }
    }
}

/// A submission that passed decoding, signature and policy: one entry, or a batch.
#[derive(Debug, Clone)]
pub struct AcceptedBatch {
    /// Every entry, in submission order.
    pub entries: Vec<Accepted>,
    /// Whether the `entries` form was used (answered with every leaf hash).
    pub batch_form: bool,
    /// The lineage documents the submission carries (checked, each named by an entry).
    pub lineage: Vec<LineageDoc>,
    /// The documents its `lineage` entries name but it does not carry: the log must hold
    /// each already, or the submission is refused.
    pub lineage_needed: Vec<Digest>,
}

/// One entry of a submission that passed decoding, signature and policy.
#[derive(Debug, Clone)]
pub struct Accepted {
    /// The exact signed-entry bytes (the log leaf).
    pub leaf: Vec<u8>,
    /// The issuer's configured name.
    pub issuer: String,
    /// The subject, for logs.
    pub subject: String,
    /// The action, for logs.
    pub action: String,
}

/// The server's issuer policy (the log crate's [`IssuerPolicy`]).
#[derive(Debug)]
pub struct Policy {
    inner: IssuerPolicy,
}

impl From<IssuerPolicy> for Policy {
    fn from(inner: IssuerPolicy) -> Self {
        Self { inner }
    }
}

impl Policy {
    /// Loads the issuers file (JSON, see spec/revocation.md).
    pub fn load(path: &Path) -> Result<Self, String> {
        IssuerPolicy::from_json_file(path)
            .map(Self::from)
            .map_err(|e| e.to_string())
    }

    /// The verifier's policy.
    pub fn issuer_policy(&self) -> &IssuerPolicy {
        &self.inner
    }

    /// Decodes a `POST /v1/submit` body (one entry or a batch), verifies every entry
    /// signature and applies every stateless policy rule to every entry: one refused entry
    /// refuses the whole submission. Replays and the revoked-key rule are checked by the store
    /// atomically with the append.
    pub fn check_submission(&self, body: &[u8], now: u64) -> Result<AcceptedBatch, Refusal> {
        let (submission, batch_form) = BatchSubmission::from_bytes_with_form(body).map_err(|e| match e.code() {
            "bad_signature" => Refusal::BadSignature(e.to_string()),
            "too_large" => Refusal::TooLarge(e.to_string()),
            "bad_lineage" => Refusal::BadLineage(e.to_string()),
            _ => Refusal::Malformed(e.to_string()),
        })?;
        let lineage_needed = submission.lineage_not_carried();
        let mut entries = Vec::with_capacity(submission.entries.len());
        for signed in submission.entries {
            let issuer = self
                .inner
                .check_submission(&signed, submission.authority.as_deref(), now, |_| false)
                .map_err(Refusal::from_violation)?;
            let entry = signed.entry();
            entries.push(Accepted {
                issuer: issuer.name.clone(),
                subject: entry.subject.to_string(),
                action: entry.action.to_string(),
                leaf: signed.into_bytes(),
            });
        }
        Ok(AcceptedBatch {
            entries,
            batch_form,
            lineage: submission.lineage,
            lineage_needed,
        })
    }
}
