//! TEMPORARY stand-in for `weightseal_verifier::decision` (see `/work/notes/decision_api.md`)
//! until the library's load decision lands on main. It offers the subset of that contract
//! the binding calls, built on today's `Verifier`, so the C side (header, tests, example,
//! valgrind, benchmark) can be built and run now. It knows trusted keys, the threshold and
//! the mode; it refuses policy files with a `[revocations]` table instead of guessing.
//! Deleted by the merge that switches to the real decision: the binding must hold no
//! policy of its own.

use std::fmt;
use std::path::{Path, PathBuf};

use weightseal_verifier::{default_signature_path, PublicKey, SignedModel, Verified, Verifier, VerifyError};

pub const POLICY_ENV: &str = "WEIGHTSEAL_POLICY";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Enforce,
    Warn,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalKind {
    Tampered,
    Untrusted,
    Usage,
}

impl RefusalKind {
    pub fn exit_code(self) -> i32 {
        match self {
            RefusalKind::Usage => 2,
            _ => 1,
        }
    }
}

#[derive(Debug)]
pub struct DecisionError {
    kind: RefusalKind,
    message: String,
}

impl fmt::Display for DecisionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl DecisionError {
    pub fn kind(&self) -> RefusalKind {
        self.kind
    }
    fn usage(message: String) -> Self {
        DecisionError {
            kind: RefusalKind::Usage,
            message,
        }
    }
}

impl From<VerifyError> for DecisionError {
    fn from(e: VerifyError) -> Self {
        let kind = match &e {
            VerifyError::ChunkMismatch { .. }
            | VerifyError::SizeMismatch { .. }
            | VerifyError::FileSetMismatch { .. } => RefusalKind::Tampered,
            VerifyError::Read(_) | VerifyError::Walk(_) | VerifyError::FileNotInManifest { .. } => RefusalKind::Usage,
            e if !e.is_rejection() => RefusalKind::Usage,
            _ => RefusalKind::Untrusted,
        };
        DecisionError {
            kind,
            message: e.to_string(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Policy {
    verifier: Verifier,
    mode: Mode,
}

fn unquote(v: &str) -> Option<&str> {
    v.trim().strip_prefix('"')?.strip_suffix('"')
}

impl Policy {
    pub fn from_env() -> Result<Policy, DecisionError> {
        match std::env::var_os(POLICY_ENV) {
            Some(p) if !p.is_empty() => Policy::from_file(Path::new(&p)),
            _ => Err(DecisionError::usage(format!(
                "no policy given and ${POLICY_ENV} is not set"
            ))),
        }
    }

    /// The three keys of the minimal policy file, one per line.
    pub fn from_file(path: &Path) -> Result<Policy, DecisionError> {
        let bad = |what: String| DecisionError::usage(format!("policy file {}: {what}", path.display()));
        let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        let mut builder = Verifier::builder();
        let mut mode = Mode::Enforce;
        for line in text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
        {
            if line.starts_with('[') {
                return Err(bad(format!(
                    "{line} needs the library's load decision (interim binding)"
                )));
            }
            let (key, value) = line
                .split_once('=')
                .ok_or_else(|| bad(format!("cannot parse {line:?}")))?;
            match key.trim() {
                "mode" => {
                    mode = match unquote(value) {
                        Some("enforce") => Mode::Enforce,
                        Some("warn") => Mode::Warn,
                        _ => return Err(bad(format!("bad mode {value}"))),
                    }
                }
                "threshold" => {
                    builder = builder.threshold(
                        value
                            .trim()
                            .parse()
                            .map_err(|_| bad(format!("bad threshold {value}")))?,
                    )
                }
                "trusted_keys" => {
                    let list = value.trim().trim_start_matches('[').trim_end_matches(']');
                    for item in list.split(',').filter(|s| !s.trim().is_empty()) {
                        let rel = unquote(item).ok_or_else(|| bad(format!("bad key path {item}")))?;
                        let key = PublicKey::from_pem_file(&base.join(rel)).map_err(|e| bad(e.to_string()))?;
                        builder = builder.trust(key);
                    }
                }
                other => return Err(bad(format!("unknown key {other}"))),
            }
        }
        let verifier = builder.build().map_err(|e| bad(e.to_string()))?;
        Ok(Policy { verifier, mode })
    }

    pub fn open(&self, model: &Path, signature: Option<&Path>) -> Result<LoadDecision, DecisionError> {
        let sig: PathBuf = signature.map_or_else(|| default_signature_path(model), Path::to_path_buf);
        let opened = self.verifier.open(model, &sig).map_err(DecisionError::from);
        match (opened, self.mode) {
            (Ok(m), mode) => Ok(LoadDecision {
                model: Some(m),
                warnings: vec![],
                mode,
            }),
            (Err(e), Mode::Warn) if e.kind() != RefusalKind::Usage => Ok(LoadDecision {
                model: None,
                warnings: vec![e],
                mode: Mode::Warn,
            }),
            (Err(e), _) => Err(e),
        }
    }
}

#[derive(Debug)]
pub struct LoadDecision {
    model: Option<SignedModel>,
    warnings: Vec<DecisionError>,
    mode: Mode,
}

type Checked = Result<(Option<Verified>, Vec<DecisionError>), DecisionError>;

impl LoadDecision {
    pub fn model(&self) -> Option<&SignedModel> {
        self.model.as_ref()
    }
    pub fn warnings(&self) -> &[DecisionError] {
        &self.warnings
    }
    fn signed(&self) -> Result<&SignedModel, DecisionError> {
        self.model
            .as_ref()
            .ok_or_else(|| DecisionError::usage("no trusted manifest to check against".into()))
    }
    fn under_mode(&self, r: Result<Verified, VerifyError>) -> Checked {
        match r.map_err(DecisionError::from) {
            Ok(v) => Ok((Some(v), vec![])),
            Err(e) if self.mode == Mode::Warn && e.kind() != RefusalKind::Usage => Ok((None, vec![e])),
            Err(e) => Err(e),
        }
    }
    pub fn verify_all(&self, _progress: Option<()>) -> Checked {
        self.under_mode(self.signed()?.verify_all(None))
    }
    pub fn verify_tensors(&self, names: &[&str], _progress: Option<()>) -> Checked {
        self.under_mode(self.signed()?.verify_tensors(names, None))
    }
    pub fn tensor_len(&self, name: &str) -> Result<u64, DecisionError> {
        Ok(self.signed()?.tensor_len(name)?)
    }
    pub fn read_tensor_into(&self, name: &str, buf: &mut [u8]) -> Result<Option<DecisionError>, DecisionError> {
        let (_, mut warnings) = self.under_mode(self.signed()?.read_tensor_into(name, buf))?;
        Ok(warnings.pop())
    }
}
