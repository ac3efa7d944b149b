//! The library calls the module makes — `Policy::open` and the `LoadDecision` byte
//! checks — and the translation of their errors into plain values (kind, message, file,
//! tensor, revocation entries) that `lib.rs` turns into Python objects. Holds no policy:
//! every decision, warn mode included, is the library's.

use std::path::{Path, PathBuf};

use weightseal_verifier::decision::matched_text;
use weightseal_verifier::revocation::local::default_state_dir;
use weightseal_verifier::revocation::state::Hit;
use weightseal_verifier::{
    DecisionError, LoadDecision, Mode, Policy, RefusalKind, RevocationConfig, RevocationSource, RevocationStatus,
    SignedModel, UnsignedModels, Verified,
};

/// What kind of refusal (the Python exception class it becomes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Tampered,
    Untrusted,
    Revoked,
    StatusUnknown,
    Usage,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Tampered => "tampered",
            Kind::Untrusted => "untrusted",
            Kind::Revoked => "revoked",
            Kind::StatusUnknown => "status-unknown",
            Kind::Usage => "usage",
        }
    }
}

impl From<RefusalKind> for Kind {
    fn from(k: RefusalKind) -> Kind {
        match k {
            RefusalKind::Tampered => Kind::Tampered,
            RefusalKind::Untrusted => Kind::Untrusted,
            RefusalKind::Revoked => Kind::Revoked,
            RefusalKind::StatusUnknown => Kind::StatusUnknown,
            // Usage, and any kind a newer library adds: the check could not run.
            _ => Kind::Usage,
        }
    }
}

/// One revocation entry that matched.
#[derive(Debug, Clone)]
pub struct HitInfo {
    pub reason: String,
    pub issuer: String,
    pub evidence: Option<String>,
    pub index: u64,
    pub matched: String,
}

fn hit_info(h: &Hit) -> HitInfo {
    HitInfo {
        reason: h.entry.reason.to_string(),
        issuer: h.entry.issuer.to_hex(),
        evidence: h.entry.evidence.clone(),
        index: h.entry.index,
        matched: matched_text(&h.matched),
    }
}

/// A refusal (or, in warn mode, a finding) with the context the exceptions carry.
#[derive(Debug, Clone)]
pub struct Failure {
    pub kind: Kind,
    pub message: String,
    pub file: Option<String>,
    pub tensor: Option<String>,
    pub hits: Vec<HitInfo>,
}

impl Failure {
    pub fn usage(message: impl Into<String>) -> Failure {
        Failure {
            kind: Kind::Usage,
            message: message.into(),
            file: None,
            tensor: None,
            hits: vec![],
        }
    }
}

impl From<&DecisionError> for Failure {
    fn from(e: &DecisionError) -> Failure {
        let at = e.tampered_at();
        Failure {
            kind: e.kind().into(),
            message: e.to_string(),
            file: at.map(|(f, _)| f.to_string()),
            tensor: at.and_then(|(_, t)| t.map(str::to_string)),
            hits: e.revoked_hits().unwrap_or_default().iter().map(hit_info).collect(),
        }
    }
}

impl From<DecisionError> for Failure {
    fn from(e: DecisionError) -> Failure {
        Failure::from(&e)
    }
}

/// The revocation status a decision carries.
#[derive(Debug, Clone)]
pub enum Revocation {
    NotConfigured,
    NotRevoked { snapshot_version: u64, fresh_until: u64 },
    Revoked { hits: Vec<HitInfo> },
    Unknown { reason: String },
}

/// What a successful check proves.
#[derive(Debug, Clone)]
pub struct VerifiedInfo {
    pub manifest_digest: String,
    pub signers: Vec<String>,
    pub bytes_verified: u64,
}

fn verified_info(v: &Verified) -> VerifiedInfo {
    VerifiedInfo {
        manifest_digest: v.manifest_digest().to_hex(),
        signers: v.signers().iter().map(|k| k.to_hex()).collect(),
        bytes_verified: v.bytes_verified(),
    }
}

/// The arguments of `weightseal.Policy(...)`: the keys of the policy file.
#[derive(Debug, Clone)]
pub struct PolicyArgs {
    pub trusted_keys: Vec<PathBuf>,
    pub threshold: usize,
    pub revocations: Option<String>,
    pub log_keys: Vec<String>,
    pub state: Option<PathBuf>,
    pub mode: String,
    pub max_staleness_secs: Option<u64>,
    pub unsigned_models: Option<String>,
    pub allow_unsigned_files_unsafe: bool,
    pub unsafe_ignore_revocation_status: bool,
}

fn mode_name(m: Mode) -> &'static str {
    m.as_str()
}

/// A policy: the library's.
#[derive(Debug, Clone)]
pub struct Engine {
    policy: Policy,
}

impl Engine {
    pub fn from_file(path: &Path) -> Result<Engine, Failure> {
        Ok(Engine {
            policy: Policy::from_file(path)?,
        })
    }

    pub fn from_env() -> Result<Engine, Failure> {
        Ok(Engine {
            policy: Policy::from_env()?,
        })
    }

    /// Translates the keyword arguments into the library's builder, key by key as the
    /// policy file's keys are (the library checks what they combine to).
    pub fn build(args: PolicyArgs) -> Result<Engine, Failure> {
        let mut b = Policy::builder().threshold(args.threshold);
        // The policy file's names, parsed by the library.
        b = b.mode(args.mode.parse::<Mode>().map_err(|e| Failure::usage(e.to_string()))?);
        for k in &args.trusted_keys {
            b = b.trust_key_file(k)?;
        }
        if let Some(u) = &args.unsigned_models {
            b = b.unsigned_models(u.parse::<UnsignedModels>().map_err(|e| Failure::usage(e.to_string()))?);
        }
        if args.allow_unsigned_files_unsafe {
            b = b.allow_unsigned_files_unsafe();
        }
        if let Some(source) = &args.revocations {
            let source =
                RevocationSource::parse(source).map_err(|e| Failure::from(DecisionError::State(Box::new(e))))?;
            let state = match args.state {
                Some(s) => s,
                None => default_state_dir().map_err(|e| Failure::from(DecisionError::State(Box::new(e))))?,
            };
            let mut cfg = RevocationConfig::new(source, state);
            for k in &args.log_keys {
                cfg = cfg.log_key(k)?;
            }
            b = b.revocations(cfg);
        } else if !args.log_keys.is_empty() || args.state.is_some() {
            return Err(Failure::usage(
                "log_key and state belong to revocations: give revocations=URL, export folder or bundle",
            ));
        }
        if let Some(s) = args.max_staleness_secs {
            b = b.max_staleness(s);
        }
        if args.unsafe_ignore_revocation_status {
            b = b.unsafe_ignore_revocation_status();
        }
        Ok(Engine { policy: b.build()? })
    }

    pub fn mode_name(&self) -> &'static str {
        mode_name(self.policy.mode())
    }

    pub fn open(&self, model: &Path, signature: Option<&Path>) -> Result<Opened, Failure> {
        let decision = self.policy.open(model, signature)?;
        Ok(Opened { decision })
    }
}

/// An opened model: the library's load decision.
#[derive(Debug)]
pub struct Opened {
    decision: LoadDecision,
}

impl Opened {
    pub fn mode_name(&self) -> &'static str {
        mode_name(self.decision.mode())
    }

    pub fn warnings(&self) -> Vec<Failure> {
        self.decision.warnings().iter().map(Failure::from).collect()
    }

    pub fn revocation(&self) -> Revocation {
        match self.decision.revocation() {
            RevocationStatus::NotConfigured => Revocation::NotConfigured,
            RevocationStatus::NotRevoked {
                snapshot_version,
                fresh_until,
                ..
            } => Revocation::NotRevoked {
                snapshot_version: *snapshot_version,
                fresh_until: *fresh_until,
            },
            RevocationStatus::Revoked { hits } => Revocation::Revoked {
                hits: hits.iter().map(hit_info).collect(),
            },
            RevocationStatus::Unknown { reason } => Revocation::Unknown { reason: reason.clone() },
            // A status a newer library adds: say so rather than guess.
            other => Revocation::Unknown {
                reason: format!("{other:?}"),
            },
        }
    }

    pub fn signed(&self) -> Option<(String, Vec<String>)> {
        self.decision.model().map(|m| {
            (
                m.manifest_digest().to_hex(),
                m.signers().iter().map(|k| k.to_hex()).collect(),
            )
        })
    }

    fn model(&self) -> Result<&SignedModel, Failure> {
        self.decision
            .model()
            .ok_or_else(|| Failure::usage("no trusted manifest (warn mode let the model through unverified)"))
    }

    /// The manifest path of the signed file `path` was opened as (the library matched it
    /// to its manifest entry when it opened the model).
    pub fn file_of(&self, path: &Path) -> Result<String, Failure> {
        match self.model()?.files_opened().as_slice() {
            [one] => Ok(one.to_string()),
            _ => Err(Failure::usage(format!(
                "{} is a folder: open one of its weight files",
                path.display()
            ))),
        }
    }

    /// The checked header of signed file `rel`. A mismatch is a refusal in enforce mode;
    /// in warn mode the library hands back the header as read, with the finding.
    pub fn header(&self, rel: &str) -> Result<(Option<Vec<u8>>, Option<Failure>), Failure> {
        let (bytes, finding) = self.decision.read_header(rel)?;
        Ok((Some(bytes), finding.map(Failure::from)))
    }

    pub fn tensor_len(&self, name: &str) -> Result<u64, Failure> {
        Ok(self.decision.tensor_len(name)?)
    }

    pub fn read_tensor_into(&self, name: &str, buf: &mut [u8]) -> Result<Option<Failure>, Failure> {
        Ok(self.decision.read_tensor_into(name, buf)?.map(Failure::from))
    }

    pub fn verify(&self, names: Option<&[&str]>) -> Result<(Option<VerifiedInfo>, Vec<Failure>), Failure> {
        if self.decision.model().is_none() {
            // Warn mode let an unverifiable model through: the findings are the warnings.
            return Ok((None, vec![]));
        }
        let (v, findings) = match names {
            Some(n) => self.decision.verify_tensors(n, None)?,
            None => self.decision.verify_all(None)?,
        };
        Ok((
            v.as_ref().map(verified_info),
            findings.iter().map(Failure::from).collect(),
        ))
    }
}
