//! The load decision: may this model be loaded, under this policy?
//!
//! Every rule lives here, so that the `weightseal` CLI, the Python package and the C
//! library decide alike and none of them has to rebuild it: the signature file and its
//! location, trust (k of n keys), what to do with an unsigned model, revocation status
//! (sync from the configured source, log keys pinned on first use, a locked state folder,
//! freshness with a clock that fails closed), and the mode.
//!
//! * [`Mode::Enforce`] (the default): any finding refuses the model ([`DecisionError`]).
//! * [`Mode::Warn`]: the same findings are returned as warnings and the load proceeds; the
//!   caller must surface them ([`LoadDecision::warnings`]). Errors of the caller's own
//!   making (a bad policy, an unknown tensor name) are errors in both modes.
//!
//! A [`Policy`] is built in code ([`Policy::builder`]) or read from a TOML policy file
//! ([`Policy::from_file`], spec/policy.md); [`POLICY_ENV`] names the file bindings use when
//! none is given.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::keys::{KeyError, KeyId, PublicKey};
use crate::manifest::FileEntry;
use crate::revocation::cosignature::{CosignatureError, WitnessKey, WitnessPolicy};
use crate::revocation::local::{
    default_state_dir, parse_log_keys, Established, LocalState, LocalStateError, RevocationSource, StatusUnknown,
};
use crate::revocation::note::NoteVerifierKey;
use crate::revocation::state::{Hit, Matched, SyncReport};
use crate::scan::{scan_model, ProgressFn, ScanError, ScanOptions};
use crate::source::ReadMode;
use crate::verify::{default_signature_path, PolicyError, SignedModel, Verified, Verifier, VerifyError};
use crate::walk::{IgnoreRules, DEFAULT_SIGNATURE_NAME};

/// The environment variable naming the policy file used when a binding is given none.
pub const POLICY_ENV: &str = "WEIGHTSEAL_POLICY";

/// A clock: Unix seconds now, or why it cannot be read. The default is the system clock
/// ([`crate::clock::now_unix`]); a runtime with a better time source, or a test, may pass
/// its own.
pub type Clock = fn() -> Result<u64, crate::clock::ClockError>;

/// The largest policy file read.
const MAX_POLICY_FILE_BYTES: u64 = 1 << 20;

/// What a finding does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Mode {
    /// Refuse the model.
    #[default]
    Enforce,
    /// Report the finding as a warning and let the load proceed.
    Warn,
}

impl Mode {
    /// `enforce` or `warn`.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::Warn => "warn",
        }
    }
}

impl std::str::FromStr for Mode {
    type Err = SettingError;
    fn from_str(s: &str) -> Result<Mode, SettingError> {
        match s {
            "enforce" => Ok(Mode::Enforce),
            "warn" => Ok(Mode::Warn),
            other => Err(SettingError {
                key: "mode",
                found: other.to_string(),
                expected: "\"enforce\" or \"warn\"",
            }),
        }
    }
}

/// A setting's text is not one of its values (the names of the policy file, spec/policy.md).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key} {found:?}: expected {expected}")]
pub struct SettingError {
    /// The setting.
    pub key: &'static str,
    /// The text given.
    pub found: String,
    /// The values it takes.
    pub expected: &'static str,
}

/// What to do with a model that has no signature file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum UnsignedModels {
    /// Refuse it (untrusted).
    #[default]
    Refuse,
    /// Hash its content and refuse it only if a file or tensor digest is revoked. Needs
    /// revocations configured. Nothing vouches for such a model: it is only "not known
    /// to be bad".
    CheckRevocations,
}

impl std::str::FromStr for UnsignedModels {
    type Err = SettingError;
    fn from_str(s: &str) -> Result<UnsignedModels, SettingError> {
        match s {
            "refuse" => Ok(UnsignedModels::Refuse),
            "check-revocations" => Ok(UnsignedModels::CheckRevocations),
            other => Err(SettingError {
                key: "unsigned_models",
                found: other.to_string(),
                expected: "\"refuse\" or \"check-revocations\"",
            }),
        }
    }
}

/// Where revocation data comes from and where it is kept.
#[derive(Debug, Clone)]
pub struct RevocationConfig {
    source: Option<RevocationSource>,
    log_keys: Vec<NoteVerifierKey>,
    state_dir: PathBuf,
    witnesses: WitnessPolicy,
}

impl RevocationConfig {
    /// Syncs from `source` into the state folder `state_dir` on every decision.
    pub fn new(source: RevocationSource, state_dir: PathBuf) -> Self {
        RevocationConfig {
            source: Some(source),
            log_keys: Vec::new(),
            state_dir,
            witnesses: WitnessPolicy::none(),
        }
    }

    /// Uses only what `state_dir` already holds (synced by another process, or a bundle
    /// imported earlier); no sync.
    pub fn held_only(state_dir: PathBuf) -> Self {
        RevocationConfig {
            source: None,
            log_keys: Vec::new(),
            state_dir,
            witnesses: WitnessPolicy::none(),
        }
    }

    /// Pins a log key (`<origin>+<key id>+<base64>`, printed by `weightseal-server pubkey`).
    /// Needed on the state folder's first use; later it must match the pinned key.
    pub fn log_key(mut self, text: &str) -> Result<Self, DecisionError> {
        self.log_keys
            .extend(parse_log_keys(&[text]).map_err(|e| DecisionError::State(Box::new(e)))?);
        Ok(self)
    }

    /// Pins log keys already parsed.
    pub fn log_keys(mut self, keys: Vec<NoteVerifierKey>) -> Self {
        self.log_keys.extend(keys);
        self
    }

    /// Requires `quorum` of the witnesses with these keys (`<name>+<key id>+<base64>`, C2SP
    /// cosignature/v1 vkeys) to have cosigned every checkpoint a sync accepts
    /// (spec/revocation.md §5.1). Without this, the log's signature alone is accepted.
    pub fn witnesses<S: AsRef<str>>(mut self, keys: &[S], quorum: usize) -> Result<Self, DecisionError> {
        let keys = keys
            .iter()
            .map(|k| k.as_ref().parse::<WitnessKey>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(DecisionError::Witnesses)?;
        self.witnesses = WitnessPolicy::new(keys, quorum).map_err(DecisionError::Witnesses)?;
        Ok(self)
    }

    /// The witness policy syncs apply.
    pub fn witness_policy(&self) -> &WitnessPolicy {
        &self.witnesses
    }

    /// The source, if any.
    pub fn source(&self) -> Option<&RevocationSource> {
        self.source.as_ref()
    }

    /// The state folder.
    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }
}

/// A load policy: trust, unsigned models, revocations, mode. Cheap to clone and share
/// across threads; every decision reads the state folder afresh.
#[derive(Debug, Clone)]
pub struct Policy {
    verifier: Verifier,
    mode: Mode,
    unsigned: UnsignedModels,
    revocations: Option<RevocationConfig>,
    max_staleness: Option<u64>,
    unsafe_ignore_revocation_status: bool,
    clock: Clock,
    issuer_names: IssuerNames,
    read_mode: ReadMode,
}

/// Builds a [`Policy`]. Safe by default: enforce, refuse unsigned models, refuse unknown
/// revocation status, refuse unsigned files beside the signed ones.
#[derive(Debug, Default)]
pub struct PolicyBuilder {
    trust: crate::verify::VerifierBuilder,
    trusted_any: bool,
    mode: Mode,
    unsigned: UnsignedModels,
    revocations: Option<RevocationConfig>,
    max_staleness: Option<u64>,
    unsafe_ignore_revocation_status: bool,
    clock: Option<Clock>,
    issuer_names: IssuerNames,
    read_mode: ReadMode,
}

impl PolicyBuilder {
    /// Names an issuer key in refusals ("hub.example (ab12…)" rather than a bare key id).
    pub fn issuer_name(mut self, key: KeyId, name: impl Into<String>) -> Self {
        self.issuer_names.insert(key, name.into());
        self
    }

    /// Reads time from `clock` instead of the system clock.
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Trusts a public key.
    pub fn trust(mut self, key: PublicKey) -> Self {
        self.trust = self.trust.trust(key);
        self.trusted_any = true;
        self
    }

    /// Trusts the public key in `path` (SPKI PEM, the `KEY.pub` of `weightseal keygen`).
    pub fn trust_key_file(self, path: &Path) -> Result<Self, DecisionError> {
        let key = PublicKey::from_pem_file(path).map_err(|source| DecisionError::KeyFile {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(self.trust(key))
    }

    /// Requires `k` distinct trusted keys to have signed (default 1).
    pub fn threshold(mut self, k: usize) -> Self {
        self.trust = self.trust.threshold(k);
        self
    }

    /// Enforce (default) or warn.
    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    /// What to do with a model without a signature file (default: refuse).
    pub fn unsigned_models(mut self, unsigned: UnsignedModels) -> Self {
        self.unsigned = unsigned;
        self
    }

    /// Checks models against a revocation log.
    pub fn revocations(mut self, config: RevocationConfig) -> Self {
        self.revocations = Some(config);
        self
    }

    /// Refuses a held snapshot signed more than `secs` seconds ago, even if it has not
    /// expired yet (default: the snapshot's own expiry decides).
    pub fn max_staleness(mut self, secs: u64) -> Self {
        self.max_staleness = Some(secs);
        self
    }

    /// How model files are read (see [`ReadMode`]): [`ReadMode::NoMmap`] for runtimes on
    /// network filesystems, where a file truncated under a mapping raises SIGBUS.
    pub fn read_mode(mut self, mode: ReadMode) -> Self {
        self.trust = self.trust.read_mode(mode);
        self.read_mode = mode;
        self
    }

    /// UNSAFE: accept files in the folder that the signature does not cover.
    pub fn allow_unsigned_files_unsafe(mut self) -> Self {
        self.trust = self.trust.allow_unsigned_files_unsafe();
        self
    }

    /// UNSAFE: load a model whose revocation status cannot be established (no state,
    /// stale or expired snapshot, unreadable clock). A revocation already held is still
    /// enforced. The unknown status is reported among the warnings.
    pub fn unsafe_ignore_revocation_status(mut self) -> Self {
        self.unsafe_ignore_revocation_status = true;
        self
    }

    /// Checks the policy and builds it.
    pub fn build(self) -> Result<Policy, DecisionError> {
        if self.unsigned == UnsignedModels::CheckRevocations && self.revocations.is_none() {
            return Err(DecisionError::UnsignedNeedsRevocations);
        }
        if self.unsafe_ignore_revocation_status && self.revocations.is_none() {
            return Err(DecisionError::IgnoreStatusWithoutRevocations);
        }
        if !self.trusted_any && self.unsigned == UnsignedModels::Refuse {
            return Err(DecisionError::Trust(PolicyError::NoTrustedKeys));
        }
        // A policy that only checks unsigned content may trust no key: every signed model
        // then fails the threshold and is refused (or warned about).
        let verifier = if self.trusted_any {
            self.trust.build().map_err(DecisionError::Trust)?
        } else {
            Verifier::trusting_nobody()
        };
        Ok(Policy {
            verifier,
            mode: self.mode,
            unsigned: self.unsigned,
            revocations: self.revocations,
            max_staleness: self.max_staleness,
            unsafe_ignore_revocation_status: self.unsafe_ignore_revocation_status,
            clock: self.clock.unwrap_or(crate::clock::now_unix),
            issuer_names: self.issuer_names,
            read_mode: self.read_mode,
        })
    }
}

/// The revocation status a decision established.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum RevocationStatus {
    /// The policy checks no revocations.
    NotConfigured,
    /// A fresh state was consulted and nothing about this model is revoked.
    NotRevoked {
        /// Entries in the log.
        size: u64,
        /// The snapshot consulted.
        snapshot_version: u64,
        /// Until when that snapshot is fresh (Unix seconds).
        fresh_until: u64,
    },
    /// Revoked (only in a decision that let it through: warn mode).
    Revoked {
        /// What matched, with the deciding entries.
        hits: Vec<Hit>,
    },
    /// Unknown (only in warn mode, or with the unsafe opt-out).
    Unknown {
        /// Why, as a message.
        reason: String,
    },
}

/// How revocation status was established, for reports.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RevocationReport {
    /// The source synced from, as a name (URL, `static export DIR`, `bundle FILE`).
    pub source: Option<String>,
    /// The state folder.
    pub state_dir: PathBuf,
    /// The sync report, if the sync succeeded.
    pub synced: Option<SyncReport>,
    /// Why the sync failed, if it did.
    pub sync_error: Option<String>,
    /// Entries held after the sync.
    pub size: u64,
    /// The held snapshot's version, issue time and expiry.
    pub snapshot: Option<(u64, u64, u64)>,
}

/// Which kind of refusal a [`DecisionError`] is: what bindings map to exception classes
/// and result codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RefusalKind {
    /// Bytes, sizes or the file set differ from the signed ones.
    Tampered,
    /// No usable signature: missing, malformed, invalid, threshold not met, not covering
    /// the file, or an unsigned model the policy refuses.
    Untrusted,
    /// A revocation entry matches.
    Revoked,
    /// Revocation status cannot be established.
    StatusUnknown,
    /// The request could not run: a bad policy or argument.
    Usage,
}

impl RefusalKind {
    /// The process exit status for it: 2 could not run, 1 must not be loaded.
    pub fn exit_code(self) -> i32 {
        match self {
            RefusalKind::Usage => 2,
            _ => 1,
        }
    }
}

/// Why a model must not be loaded, or why the decision could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecisionError {
    /// A signature, trust or byte check failed.
    #[error("{source}")]
    Verify {
        /// The model.
        model: PathBuf,
        /// What failed (boxed: it is large, and errors travel by value).
        source: Box<VerifyError>,
    },
    /// The model (or content in it) is revoked.
    #[error("{} must not be loaded: {}\n{}", model.display(), hits_summary_named(hits, issuer_names), hits_text_named(hits, issuer_names).trim_end())]
    Revoked {
        /// The model.
        model: PathBuf,
        /// What matched.
        hits: Vec<Hit>,
        /// The names the policy gives issuers, for the message.
        issuer_names: IssuerNames,
    },
    /// Revocation status cannot be established.
    #[error("revocation status cannot be established: {reason}{}", sync_error.as_ref().map(|e| format!("; the sync failed: {e}")).unwrap_or_default())]
    StatusUnknown {
        /// Why.
        reason: Box<StatusUnknown>,
        /// Why the sync failed, if it did.
        sync_error: Option<String>,
    },
    /// The state folder could not be used.
    #[error(transparent)]
    State(Box<LocalStateError>),
    /// The witness keys or quorum cannot be used.
    #[error("revocation witnesses: {0}")]
    Witnesses(CosignatureError),
    /// The state holds revoked `lineage` entries and the model cannot be fingerprinted to
    /// compare with them: its status cannot be established (fail closed).
    #[error("cannot compare {} with the {entries} lineage revocation(s) held: {source}", model.display())]
    Fingerprint {
        /// The model.
        model: PathBuf,
        /// How many revoked lineage entries are held.
        entries: usize,
        /// Why it could not be fingerprinted (no safetensors or GGUF tensor, unreadable, …).
        source: Box<crate::fingerprint::FingerprintError>,
    },
    /// A held lineage document (of a revoked `lineage` entry) cannot be read back: the status
    /// cannot be established (fail closed).
    #[error("lineage revocation {} cannot be checked: {source}", entry_text(entry))]
    LineageDocument {
        /// The entry.
        entry: Box<crate::revocation::state::LogEntry>,
        /// Why.
        source: Box<crate::revocation::state::RevocationError>,
    },
    /// An unsigned model's content could not be hashed.
    #[error("cannot hash {}: {source}", model.display())]
    Content {
        /// The model.
        model: PathBuf,
        /// Why.
        source: Box<ScanError>,
    },
    /// The trust settings are impossible.
    #[error(transparent)]
    Trust(PolicyError),
    /// A trusted key file cannot be used.
    #[error("trusted key {}: {source}", path.display())]
    KeyFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: KeyError,
    },
    /// The policy file cannot be used.
    #[error("policy file {}: {problem}", path.display())]
    PolicyFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        problem: PolicyFileProblem,
    },
    /// No policy given and the environment names none.
    #[error("no policy: none was given and {POLICY_ENV} is not set")]
    NoPolicy,
    /// `unsigned_models = check-revocations` without revocations.
    #[error(
        "unsigned models can only be checked against revocations: configure revocations, or refuse unsigned models"
    )]
    UnsignedNeedsRevocations,
    /// The unsafe revocation opt-out without revocations.
    #[error("ignoring revocation status needs revocations configured")]
    IgnoreStatusWithoutRevocations,
}

/// What is wrong with a policy file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyFileProblem {
    /// It cannot be read.
    #[error("{0}")]
    Io(std::io::Error),
    /// It is larger than a policy file can be.
    #[error("{size} bytes, over the limit of {MAX_POLICY_FILE_BYTES}")]
    TooLarge {
        /// Its size.
        size: u64,
    },
    /// It is not valid TOML, or a key is unknown or has the wrong type.
    #[error("{0}")]
    Toml(Box<toml::de::Error>),
    /// A value is not one the key takes.
    #[error(transparent)]
    Value(SettingError),
    /// A setting it names cannot be used.
    #[error("{0}")]
    Setting(Box<DecisionError>),
}

impl DecisionError {
    /// The kind of refusal, for exception classes and exit codes.
    pub fn kind(&self) -> RefusalKind {
        match self {
            DecisionError::Verify { source, .. } => verify_kind(source),
            DecisionError::Revoked { .. } => RefusalKind::Revoked,
            DecisionError::StatusUnknown { .. } => RefusalKind::StatusUnknown,
            DecisionError::State(e) if e.is_usage() => RefusalKind::Usage,
            DecisionError::State(_) => RefusalKind::StatusUnknown,
            DecisionError::Fingerprint { .. } | DecisionError::LineageDocument { .. } => RefusalKind::StatusUnknown,
            DecisionError::Content { .. } => RefusalKind::Tampered,
            DecisionError::Trust(_)
            | DecisionError::KeyFile { .. }
            | DecisionError::PolicyFile { .. }
            | DecisionError::NoPolicy
            | DecisionError::UnsignedNeedsRevocations
            | DecisionError::IgnoreStatusWithoutRevocations
            | DecisionError::Witnesses(_) => RefusalKind::Usage,
        }
    }

    /// The signature/trust/byte check that failed, if that is what this is.
    pub fn verify_error(&self) -> Option<&VerifyError> {
        match self {
            DecisionError::Verify { source, .. } => Some(source),
            _ => None,
        }
    }

    /// For a tampered model: the file, and the tensor when the mismatch is in a tensor.
    pub fn tampered_at(&self) -> Option<(&str, Option<&str>)> {
        match self.verify_error()? {
            VerifyError::ChunkMismatch { path, chunk, .. } => Some((path, chunk.strip_prefix("tensor "))),
            VerifyError::SizeMismatch { path, .. } => Some((path, None)),
            VerifyError::FileSetMismatch { missing, unsigned } => {
                missing.first().or(unsigned.first()).map(|p| (p.as_str(), None))
            }
            _ => None,
        }
    }

    /// For a revoked model: what matched.
    pub fn revoked_hits(&self) -> Option<&[Hit]> {
        match self {
            DecisionError::Revoked { hits, .. } => Some(hits),
            _ => None,
        }
    }
}

fn verify_kind(e: &VerifyError) -> RefusalKind {
    match e {
        VerifyError::UnknownTensor { .. } | VerifyError::AmbiguousTensor { .. } | VerifyError::BufferSize { .. } => {
            RefusalKind::Usage
        }
        VerifyError::SignatureFileUnreadable { .. }
        | VerifyError::SignatureFileTooLarge { .. }
        | VerifyError::SignatureFileMalformed { .. }
        | VerifyError::InvalidSignature { .. }
        | VerifyError::ThresholdNotMet { .. }
        | VerifyError::ManifestInvalid(_)
        | VerifyError::FileNotInManifest { .. } => RefusalKind::Untrusted,
        _ => RefusalKind::Tampered,
    }
}

/// "the manifest", "a signer's key", "file F", "tensor T in F".
pub fn matched_text(m: &Matched) -> String {
    match m {
        Matched::Manifest => "the manifest".to_string(),
        Matched::SignerKey => "a signer's key".to_string(),
        Matched::File { path } => format!("file {path}"),
        Matched::Chunk { path, chunk } => format!("{chunk} in {path}"),
        Matched::Lineage {
            score,
            threshold,
            base_score,
        } => format!(
            "the model's weights (lineage: they carry the revoked fork's change, fork score {score:.3} >= \
             threshold {threshold:.3}, base score {base_score:.3})"
        ),
    }
}

/// Names a policy gives issuer keys (`[issuer_names]` in the policy file), so that
/// refusals say who revoked a model, not only which key.
pub type IssuerNames = std::collections::BTreeMap<KeyId, String>;

/// One entry, for people: index, action, subject, reason, issuer, UTC time, evidence.
pub fn entry_text(e: &crate::revocation::state::LogEntry) -> String {
    entry_text_named(e, &IssuerNames::new())
}

/// [`entry_text`], with the issuer's configured name beside its key id.
pub fn entry_text_named(e: &crate::revocation::state::LogEntry, names: &IssuerNames) -> String {
    let issuer = match names.get(&e.issuer) {
        Some(name) => format!("{name} ({})", e.issuer.to_hex()),
        None => e.issuer.to_hex(),
    };
    let mut s = format!(
        "entry #{} {} {} {} (reason {}, issuer {}, {})",
        e.index,
        e.action,
        e.subject.kind,
        e.subject.digest,
        e.reason,
        issuer,
        crate::clock::utc(e.time)
    );
    if let Some(url) = &e.evidence {
        s += &format!(", evidence {url}");
    }
    s
}

/// One line per hit.
pub fn hits_text(hits: &[Hit]) -> String {
    hits_text_named(hits, &IssuerNames::new())
}

fn hits_text_named(hits: &[Hit], names: &IssuerNames) -> String {
    hits.iter()
        .map(|h| {
            format!(
                "  {}: revoked by {}\n",
                matched_text(&h.matched),
                entry_text_named(&h.entry, names)
            )
        })
        .collect()
}

/// The one-line summary of a refusal: the first hit's reason and what matched.
pub fn hits_summary(hits: &[Hit]) -> String {
    hits_summary_named(hits, &IssuerNames::new())
}

fn hits_summary_named(hits: &[Hit], names: &IssuerNames) -> String {
    let Some(first) = hits.first() else {
        return "not revoked".to_string();
    };
    let mut s = format!(
        "revoked ({}): {} matched {}",
        first.entry.reason,
        matched_text(&first.matched),
        entry_text_named(&first.entry, names)
    );
    if hits.len() > 1 {
        s += &format!(" (and {} more)", hits.len() - 1);
    }
    s
}

/// The outcome of a decision that allows the load (possibly with warnings).
#[derive(Debug)]
pub struct LoadDecision {
    model: Option<SignedModel>,
    path: PathBuf,
    signature: PathBuf,
    mode: Mode,
    revocation: RevocationStatus,
    report: Option<RevocationReport>,
    warnings: Vec<DecisionError>,
}

/// Byte checks under warn mode return the findings beside the (optional) proof.
pub type Checked = (Option<Verified>, Vec<DecisionError>);

impl LoadDecision {
    /// The signed model with its trusted manifest. `None` when warn mode let through a
    /// model whose signature could not be trusted, or for an unsigned model allowed by
    /// [`UnsignedModels::CheckRevocations`].
    pub fn model(&self) -> Option<&SignedModel> {
        self.model.as_ref()
    }
    /// Takes the signed model out.
    pub fn into_model(self) -> Option<SignedModel> {
        self.model
    }
    /// The model path the decision was made for.
    pub fn path(&self) -> &Path {
        &self.path
    }
    /// The signature file used (or looked for).
    pub fn signature_path(&self) -> &Path {
        &self.signature
    }
    /// The revocation status.
    pub fn revocation(&self) -> &RevocationStatus {
        &self.revocation
    }
    /// How the revocation status was established (when revocations are configured).
    pub fn revocation_report(&self) -> Option<&RevocationReport> {
        self.report.as_ref()
    }
    /// Findings the caller must surface: in warn mode what enforce would have refused; in
    /// either mode an unknown revocation status let through by the unsafe opt-out.
    pub fn warnings(&self) -> &[DecisionError] {
        &self.warnings
    }
    /// The policy's mode.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    fn signed(&self) -> Result<&SignedModel, DecisionError> {
        self.model.as_ref().ok_or_else(|| DecisionError::Verify {
            model: self.path.clone(),
            source: Box::new(VerifyError::UnknownTensor {
                name: "(no trusted manifest: the model was let through unverified)".into(),
            }),
        })
    }

    fn byte_check(&self, result: Result<Verified, VerifyError>) -> Result<Checked, DecisionError> {
        match result {
            Ok(v) => Ok((Some(v), Vec::new())),
            Err(source) => {
                let e = DecisionError::Verify {
                    model: self.path.clone(),
                    source: Box::new(source),
                };
                if self.mode == Mode::Warn && e.kind() != RefusalKind::Usage {
                    // A finding already reported by the decision (the file set, in warn
                    // mode) is not reported twice.
                    let text = e.to_string();
                    let new = !self.warnings.iter().any(|w| w.to_string() == text);
                    Ok((None, if new { vec![e] } else { Vec::new() }))
                } else {
                    Err(e)
                }
            }
        }
    }

    /// Verifies every byte in scope (see [`SignedModel::verify_all`]).
    pub fn verify_all(&self, progress: Option<ProgressFn<'_>>) -> Result<Checked, DecisionError> {
        let m = self.signed()?;
        self.byte_check(m.verify_all(progress))
    }

    /// Verifies only the named tensors (see [`SignedModel::verify_tensors`]), and the
    /// folder's file set again.
    pub fn verify_tensors(&self, names: &[&str], progress: Option<ProgressFn<'_>>) -> Result<Checked, DecisionError> {
        let m = self.signed()?;
        self.byte_check(m.verify_tensors(names, progress))
    }

    /// The byte length of a tensor's chunk.
    pub fn tensor_len(&self, name: &str) -> Result<u64, DecisionError> {
        self.signed()?.tensor_len(name).map_err(|source| DecisionError::Verify {
            model: self.path.clone(),
            source: Box::new(source),
        })
    }

    /// Reads and checks the header chunk of the signed file `path` (a manifest path, see
    /// [`SignedModel::files_opened`]), so a loader parses dtypes and shapes from signed
    /// bytes. Enforce: a mismatch is an error. Warn: the header as read comes back with
    /// the finding.
    pub fn read_header(&self, path: &str) -> Result<(Vec<u8>, Option<DecisionError>), DecisionError> {
        let m = self.signed()?;
        match m.read_header_into_buf(path, self.mode == Mode::Warn) {
            Ok(bytes) => Ok((bytes, None)),
            Err(failed) => {
                let (source, bytes) = *failed;
                let e = DecisionError::Verify {
                    model: self.path.clone(),
                    source: Box::new(source),
                };
                if self.mode == Mode::Warn && e.kind() != RefusalKind::Usage && !bytes.is_empty() {
                    Ok((bytes, Some(e)))
                } else {
                    Err(e)
                }
            }
        }
    }

    /// Reads a tensor into `buf` and checks exactly those bytes. Enforce: a mismatch is
    /// an error and `buf` is wiped. Warn: a mismatch is returned as `Ok(Some(warning))`
    /// and the bytes read stay in `buf`.
    pub fn read_tensor_into(&self, name: &str, buf: &mut [u8]) -> Result<Option<DecisionError>, DecisionError> {
        let m = self.signed()?;
        let keep = self.mode == Mode::Warn;
        self.byte_check(m.read_tensor_into_keeping(name, buf, keep))
            .map(|(_, mut w)| w.pop())
    }
}

impl Policy {
    /// Starts a builder.
    pub fn builder() -> PolicyBuilder {
        PolicyBuilder::default()
    }

    /// The policy's mode.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The trust part of the policy.
    pub fn verifier(&self) -> &Verifier {
        &self.verifier
    }

    /// The revocation part, if any.
    pub fn revocations(&self) -> Option<&RevocationConfig> {
        self.revocations.as_ref()
    }

    /// Whether the unsafe revocation opt-out is set.
    pub fn ignores_revocation_status_unsafe(&self) -> bool {
        self.unsafe_ignore_revocation_status
    }

    /// Reads the policy file named by [`POLICY_ENV`].
    pub fn from_env() -> Result<Policy, DecisionError> {
        match std::env::var_os(POLICY_ENV).filter(|v| !v.is_empty()) {
            Some(p) => Policy::from_file(Path::new(&p)),
            None => Err(DecisionError::NoPolicy),
        }
    }

    /// Reads a policy file (TOML, spec/policy.md). Paths in it are relative to its folder.
    pub fn from_file(path: &Path) -> Result<Policy, DecisionError> {
        let fail = |problem| DecisionError::PolicyFile {
            path: path.to_path_buf(),
            problem,
        };
        let file = std::fs::File::open(path).map_err(|e| fail(PolicyFileProblem::Io(e)))?;
        let size = file.metadata().map_err(|e| fail(PolicyFileProblem::Io(e)))?.len();
        if size > MAX_POLICY_FILE_BYTES {
            return Err(fail(PolicyFileProblem::TooLarge { size }));
        }
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::Read::take(file, MAX_POLICY_FILE_BYTES), &mut text)
            .map_err(|e| fail(PolicyFileProblem::Io(e)))?;
        let base = path.parent().unwrap_or(Path::new("."));
        Policy::from_toml(&text, base, path)
    }

    /// The policy in `text` (read from `path`, whose folder is `base`; errors name `path`).
    pub(crate) fn from_toml(text: &str, base: &Path, path: &Path) -> Result<Policy, DecisionError> {
        let fail = |problem| DecisionError::PolicyFile {
            path: path.to_path_buf(),
            problem,
        };
        let doc: PolicyDoc = toml::from_str(text).map_err(|e| fail(PolicyFileProblem::Toml(Box::new(e))))?;
        doc.build(base).map_err(fail)
    }

    /// THE decision for `model` (a folder, or one file — possibly a shard inside a signed
    /// folder). `signature: None` looks in the default places (see [`locate_signature`]).
    /// Reads no tensor bytes (except, when the revocation state holds revoked `lineage`
    /// entries, the bounded sample a fingerprint takes; see [`lineage_hits`]): byte checks
    /// follow through the returned [`LoadDecision`].
    pub fn open(&self, model: &Path, signature: Option<&Path>) -> Result<LoadDecision, DecisionError> {
        let sig_path = match signature {
            Some(p) => p.to_path_buf(),
            None => locate_signature(model),
        };
        let mut warnings = Vec::new();
        let mut decision = LoadDecision {
            model: None,
            path: model.to_path_buf(),
            signature: sig_path.clone(),
            mode: self.mode,
            revocation: RevocationStatus::NotConfigured,
            report: None,
            warnings: Vec::new(),
        };
        match self.verifier.open(model, &sig_path) {
            Ok(signed) => {
                // The folder's file set (names and sizes, from one directory listing) is
                // part of the decision: a loader that then reads tensor by tensor never
                // looks at the folder again, and a `modeling_custom.py` dropped beside the
                // weights must refuse the load, not only a full verification.
                if let Err(source) = signed.check_file_set() {
                    self.finding(
                        DecisionError::Verify {
                            model: model.to_path_buf(),
                            source: Box::new(source),
                        },
                        &mut warnings,
                    )?;
                }
                if let Some(cfg) = &self.revocations {
                    let (status, report) = self.revocation_status(
                        cfg,
                        &mut warnings,
                        |state| {
                            state.check_manifest(signed.manifest(), &signed.manifest_digest(), signed.valid_signers())
                        },
                        model,
                    )?;
                    decision.revocation = status;
                    decision.report = Some(report);
                }
                let mut signed = signed;
                signed.set_revocation(decision.revocation.clone());
                decision.model = Some(signed);
            }
            Err(e) if is_missing_signature(&e) && self.unsigned == UnsignedModels::CheckRevocations => {
                let Some(cfg) = &self.revocations else {
                    return Err(DecisionError::UnsignedNeedsRevocations);
                };
                let files = scan_model(
                    model,
                    &IgnoreRules::defaults(),
                    std::slice::from_ref(&sig_path),
                    ScanOptions {
                        read_mode: self.read_mode,
                        ..ScanOptions::default()
                    },
                );
                match files {
                    Ok(files) => {
                        let (status, report) =
                            self.revocation_status(cfg, &mut warnings, |state| state.check_files(&files), model)?;
                        decision.revocation = status;
                        decision.report = Some(report);
                    }
                    Err(source) => self.finding(
                        DecisionError::Content {
                            model: model.to_path_buf(),
                            source: Box::new(source),
                        },
                        &mut warnings,
                    )?,
                }
            }
            Err(source) => self.finding(
                DecisionError::Verify {
                    model: model.to_path_buf(),
                    source: Box::new(source),
                },
                &mut warnings,
            )?,
        }
        decision.warnings = warnings;
        Ok(decision)
    }

    /// Enforce: the finding is the answer. Warn: it becomes a warning. Usage errors are
    /// errors in both modes.
    fn finding(&self, e: DecisionError, warnings: &mut Vec<DecisionError>) -> Result<(), DecisionError> {
        if self.mode == Mode::Warn && e.kind() != RefusalKind::Usage {
            warnings.push(e);
            Ok(())
        } else {
            Err(e)
        }
    }

    /// Locks the state folder, syncs, establishes freshness, then looks the model up.
    fn revocation_status(
        &self,
        cfg: &RevocationConfig,
        warnings: &mut Vec<DecisionError>,
        lookup: impl FnOnce(&crate::revocation::state::RevocationState) -> Vec<Hit>,
        model: &Path,
    ) -> Result<(RevocationStatus, RevocationReport), DecisionError> {
        let (local, est) = establish(cfg, self.max_staleness, self.clock)?;
        let report = report_of(cfg, &local, &est);
        let mut status = match local.state().snapshot() {
            Some(s) => RevocationStatus::NotRevoked {
                size: local.state().size(),
                snapshot_version: s.version,
                fresh_until: s.expires,
            },
            None => RevocationStatus::Unknown {
                reason: "never synced".into(),
            },
        };
        if let Some(reason) = est.unknown {
            let text = reason.to_string();
            let e = DecisionError::StatusUnknown {
                reason: Box::new(reason),
                sync_error: est.sync_error,
            };
            if self.unsafe_ignore_revocation_status {
                warnings.push(e);
            } else {
                self.finding(e, warnings)?;
            }
            status = RevocationStatus::Unknown { reason: text };
        }
        // A revocation already held is enforced even when the status is otherwise
        // unknown: stale data can still say "revoked" with authority.
        let mut hits = lookup(local.state());
        let lineage = lineage_hits(local.state(), model);
        // Release the state folder before any byte check starts.
        drop(local);
        match lineage {
            Ok(found) => hits.extend(found),
            // Lineage revocations are held but this model cannot be compared with them: its
            // status is unknown, refused like any unknown status (or let through, with a
            // warning, by the same named opt-out).
            Err(e) if self.unsafe_ignore_revocation_status => warnings.push(e),
            Err(e) => self.finding(e, warnings)?,
        }
        if !hits.is_empty() {
            self.finding(
                DecisionError::Revoked {
                    model: model.to_path_buf(),
                    hits: hits.clone(),
                    issuer_names: self.issuer_names.clone(),
                },
                warnings,
            )?;
            status = RevocationStatus::Revoked { hits };
        }
        Ok((status, report))
    }
}

/// Locks and opens the configured state folder, syncs (if a source is configured) and
/// applies the freshness rules. The lock is held until the returned state is dropped.
pub fn establish(
    cfg: &RevocationConfig,
    max_staleness: Option<u64>,
    clock: Clock,
) -> Result<(LocalState, Established), DecisionError> {
    let mut local = LocalState::open(&cfg.state_dir, &cfg.log_keys).map_err(|e| DecisionError::State(Box::new(e)))?;
    local.set_witness_policy(cfg.witnesses.clone());
    let est = local.establish(cfg.source.as_ref(), max_staleness, clock());
    Ok((local, est))
}

fn report_of(cfg: &RevocationConfig, local: &LocalState, est: &Established) -> RevocationReport {
    RevocationReport {
        source: cfg.source.as_ref().map(RevocationSource::describe),
        state_dir: local.dir().to_path_buf(),
        synced: est.synced.clone(),
        sync_error: est.sync_error.clone(),
        size: local.state().size(),
        snapshot: local.state().snapshot().map(|s| (s.version, s.issued, s.expires)),
    }
}

/// What [`check_content`] found: the model's files as hashed, and how status was known.
#[derive(Debug)]
#[non_exhaustive]
pub struct ContentCheck {
    /// The files, hashed like signing does.
    pub files: Vec<FileEntry>,
    /// How revocation status was established.
    pub report: RevocationReport,
}

/// Is anything in an (unsigned) model revoked? Hashes it like signing does and looks up
/// every file and chunk (tensor) digest. Unknown status refuses (no opt-out: this check
/// exists only to say "revoked" or "not revoked").
pub fn check_content(
    cfg: &RevocationConfig,
    model: &Path,
    max_staleness: Option<u64>,
    progress: Option<ProgressFn<'_>>,
) -> Result<ContentCheck, DecisionError> {
    let (local, est) = establish(cfg, max_staleness, crate::clock::now_unix)?;
    let report = report_of(cfg, &local, &est);
    if let Some(reason) = est.unknown {
        return Err(DecisionError::StatusUnknown {
            reason: Box::new(reason),
            sync_error: est.sync_error,
        });
    }
    let files = scan_model(
        model,
        &IgnoreRules::defaults(),
        &[],
        ScanOptions {
            progress,
            ..ScanOptions::default()
        },
    )
    .map_err(|source| DecisionError::Content {
        model: model.to_path_buf(),
        source: Box::new(source),
    })?;
    let mut hits = local.state().check_files(&files);
    hits.extend(lineage_hits(local.state(), model)?);
    if !hits.is_empty() {
        return Err(DecisionError::Revoked {
            model: model.to_path_buf(),
            hits,
            issuer_names: IssuerNames::new(),
        });
    }
    Ok(ContentCheck { files, report })
}

/// The revoked `lineage` entries `model` is derived from, by the fork test
/// ([`derived_from_fork`](crate::fingerprint::lineage::derived_from_fork) at the calibrated
/// thresholds), each with its score.
///
/// Nothing is read when the state holds no revoked lineage entry. Otherwise the model is
/// fingerprinted once (a bounded sample of each tensor: positioned reads, not the model) and
/// compared with every entry's document. Fails closed: a model that cannot be fingerprinted
/// (no safetensors or GGUF tensor, a damaged header) or a held document that cannot be read
/// back is an error, never "not revoked" — a fork re-packaged into a format the fingerprint
/// does not read must not pass for that reason.
pub fn lineage_hits(
    state: &crate::revocation::state::RevocationState,
    model: &Path,
) -> Result<Vec<Hit>, DecisionError> {
    use crate::fingerprint::lineage::{ForkIndex, Thresholds};
    use rayon::prelude::*;
    let revoked = state.revoked_lineage();
    if revoked.is_empty() {
        return Ok(Vec::new());
    }
    let print = crate::fingerprint::fingerprint_model(model).map_err(|source| DecisionError::Fingerprint {
        model: model.to_path_buf(),
        entries: revoked.len(),
        source: Box::new(source),
    })?;
    // Documents are read and decoded in parallel: at 1,000 entries this, not the check,
    // is most of the cost (each holds its base's fingerprint).
    let deltas = revoked
        .par_iter()
        .map(|entry| {
            state
                .lineage_document(&entry.subject.digest)
                .map(|doc| doc.into_fork_delta())
                .map_err(|source| DecisionError::LineageDocument {
                    entry: Box::new((*entry).clone()),
                    source: Box::new(source),
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    // One index over every entry: forks of the same base share one match of the model
    // against that base (spec/fingerprint.md §6); the verdicts are those of
    // `derived_from_fork` entry by entry.
    let index = ForkIndex::new(&deltas);
    Ok(index
        .check(&print, Thresholds::default())
        .into_iter()
        .filter(|v| v.derived)
        .map(|v| Hit {
            matched: Matched::Lineage {
                score: v.score,
                threshold: Thresholds::default().fork,
                base_score: v.base_score,
            },
            entry: revoked[v.entry].clone(),
        })
        .collect())
}

fn is_missing_signature(e: &VerifyError) -> bool {
    matches!(e, VerifyError::SignatureFileUnreadable { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
}

/// Where the signature of `model` is looked for: inside a folder, `weightseal.sig`; beside
/// a file, `FILE.weightseal.sig`; failing that, for a file that is a shard inside a signed
/// folder, the nearest `weightseal.sig` in the folders above it. When none exists the
/// file's own default path is returned, so errors name it.
pub fn locate_signature(model: &Path) -> PathBuf {
    let own = default_signature_path(model);
    if model.is_dir() || own.exists() {
        return own;
    }
    let mut dir = model.parent();
    while let Some(d) = dir {
        let base = if d.as_os_str().is_empty() { Path::new(".") } else { d };
        let candidate = base.join(DEFAULT_SIGNATURE_NAME);
        if candidate.is_file() {
            return candidate;
        }
        dir = d.parent();
    }
    own
}

/// The policy file (spec/policy.md). Unknown keys are refused: a misspelt safety setting
/// must not silently fall back to a default.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyDoc {
    mode: Option<String>,
    #[serde(default)]
    trusted_keys: Vec<String>,
    threshold: Option<usize>,
    unsigned_models: Option<String>,
    #[serde(default)]
    allow_unsigned_files_unsafe: bool,
    #[serde(default)]
    no_mmap: bool,
    revocations: Option<RevocationsDoc>,
    /// Key id (64 hex) → name, for messages.
    #[serde(default)]
    issuer_names: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RevocationsDoc {
    source: Option<String>,
    log_key: Option<String>,
    #[serde(default)]
    log_keys: Vec<String>,
    state: Option<String>,
    max_staleness_secs: Option<u64>,
    #[serde(default)]
    unsafe_ignore_status: bool,
    #[serde(default)]
    witnesses: Vec<String>,
    witness_quorum: Option<usize>,
}

fn setting(e: DecisionError) -> PolicyFileProblem {
    PolicyFileProblem::Setting(Box::new(e))
}

fn relative(base: &Path, p: &str) -> PathBuf {
    let path = Path::new(p);
    if path.is_relative() {
        base.join(path)
    } else {
        path.to_path_buf()
    }
}

impl PolicyDoc {
    fn build(self, base: &Path) -> Result<Policy, PolicyFileProblem> {
        let mut b = Policy::builder();
        if let Some(m) = &self.mode {
            b = b.mode(m.parse().map_err(PolicyFileProblem::Value)?);
        }
        for k in &self.trusted_keys {
            b = b.trust_key_file(&relative(base, k)).map_err(setting)?;
        }
        if let Some(t) = self.threshold {
            b = b.threshold(t);
        }
        if let Some(u) = &self.unsigned_models {
            b = b.unsigned_models(u.parse().map_err(PolicyFileProblem::Value)?);
        }
        if self.allow_unsigned_files_unsafe {
            b = b.allow_unsigned_files_unsafe();
        }
        if self.no_mmap {
            b = b.read_mode(ReadMode::NoMmap);
        }
        for (id, name) in self.issuer_names {
            let key = id.parse::<KeyId>().map_err(|e| {
                PolicyFileProblem::Value(SettingError {
                    key: "issuer_names",
                    found: format!("{id} ({e})"),
                    expected: "a 64-hex key id",
                })
            })?;
            b = b.issuer_name(key, name);
        }
        if let Some(r) = self.revocations {
            let state_dir = match &r.state {
                Some(s) => relative(base, s),
                None => default_state_dir().map_err(|e| setting(DecisionError::State(Box::new(e))))?,
            };
            let mut cfg = match &r.source {
                Some(s) => RevocationConfig::new(
                    RevocationSource::parse_relative(s, Some(base))
                        .map_err(|e| setting(DecisionError::State(Box::new(e))))?,
                    state_dir,
                ),
                None => RevocationConfig::held_only(state_dir),
            };
            let mut keys: Vec<&str> = r.log_key.iter().map(String::as_str).collect();
            keys.extend(r.log_keys.iter().map(String::as_str));
            for k in keys {
                cfg = cfg.log_key(k).map_err(setting)?;
            }
            match (r.witnesses.is_empty(), r.witness_quorum) {
                (true, None) => {}
                // A quorum with nobody to reach it is a mistake, not "no witnesses".
                (true, Some(q)) => {
                    return Err(PolicyFileProblem::Value(SettingError {
                        key: "witness_quorum",
                        found: q.to_string(),
                        expected: "a quorum only together with `witnesses`",
                    }))
                }
                // Without a quorum, every listed witness must cosign.
                (false, q) => {
                    let quorum = q.unwrap_or(r.witnesses.len());
                    cfg = cfg.witnesses(&r.witnesses, quorum).map_err(setting)?;
                }
            }
            b = b.revocations(cfg);
            if let Some(s) = r.max_staleness_secs {
                b = b.max_staleness(s);
            }
            if r.unsafe_ignore_status {
                b = b.unsafe_ignore_revocation_status();
            }
        }
        b.build().map_err(setting)
    }
}
