//! The library calls the module makes, and the translation of their errors into plain
//! values (kind, message, file, tensor, revocation entries) that `lib.rs` turns into
//! Python objects. Holds no policy: every decision is the library's.

use std::path::{Path, PathBuf};

use weightseal_verifier::{PublicKey, SignedModel, Verifier, VerifyError};

/// What kind of refusal (the Python exception class it becomes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(dead_code)] // reason: Revoked/StatusUnknown come with the library's load decision
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

/// One revocation entry that matched.
#[derive(Debug, Clone)]
pub struct HitInfo {
    pub reason: String,
    pub issuer: String,
    pub evidence: Option<String>,
    pub index: u64,
    pub matched: String,
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

impl From<VerifyError> for Failure {
    fn from(e: VerifyError) -> Failure {
        let (kind, file, tensor) = match &e {
            VerifyError::ChunkMismatch { path, chunk, .. } => (
                Kind::Tampered,
                Some(path.clone()),
                chunk.strip_prefix("tensor ").map(str::to_string),
            ),
            VerifyError::SizeMismatch { path, .. } => (Kind::Tampered, Some(path.clone()), None),
            VerifyError::FileSetMismatch { missing, unsigned } => {
                (Kind::Tampered, unsigned.first().or(missing.first()).cloned(), None)
            }
            VerifyError::UnknownTensor { .. }
            | VerifyError::AmbiguousTensor { .. }
            | VerifyError::BufferSize { .. }
            | VerifyError::FileNotInManifest { .. } => (Kind::Usage, None, None),
            VerifyError::Read(_) | VerifyError::Walk(_) => (Kind::Tampered, None, None),
            _ => (Kind::Untrusted, None, None),
        };
        Failure {
            kind,
            message: e.to_string(),
            file,
            tensor,
            hits: vec![],
        }
    }
}

/// The revocation status a decision carries.
#[derive(Debug, Clone)]
#[allow(dead_code)] // reason: all but NotConfigured come with the library's load decision
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

/// How refusals are handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Enforce,
    Warn,
}

impl Mode {
    pub fn parse(text: &str) -> Result<Mode, Failure> {
        match text {
            "enforce" => Ok(Mode::Enforce),
            "warn" => Ok(Mode::Warn),
            other => Err(Failure::usage(format!(
                "mode {other:?} is not one of \"enforce\", \"warn\""
            ))),
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::Warn => "warn",
        }
    }
}

/// The arguments of `weightseal.Policy(...)`.
#[derive(Debug, Clone)]
#[allow(dead_code)] // reason: the revocation fields are read by the library's load decision
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

/// A policy.
#[derive(Debug, Clone)]
pub struct Engine {
    verifier: Verifier,
    mode: Mode,
}

impl Engine {
    pub fn from_file(path: &Path) -> Result<Engine, Failure> {
        Err(Failure::usage(format!(
            "{}: policy files need the library's load decision, which this build lacks",
            path.display()
        )))
    }

    pub fn from_env() -> Result<Engine, Failure> {
        match std::env::var_os("WEIGHTSEAL_POLICY") {
            Some(p) => Engine::from_file(Path::new(&p)),
            None => Err(Failure::usage(
                "no policy given and WEIGHTSEAL_POLICY is not set (pass policy=weightseal.Policy(...))",
            )),
        }
    }

    pub fn build(args: PolicyArgs) -> Result<Engine, Failure> {
        if args.revocations.is_some() {
            return Err(Failure::usage(
                "revocation sources need the library's load decision, which this build lacks",
            ));
        }
        let mode = Mode::parse(&args.mode)?;
        let mut b = Verifier::builder().threshold(args.threshold);
        for k in &args.trusted_keys {
            let key =
                PublicKey::from_pem_file(k).map_err(|e| Failure::usage(format!("trusted key {}: {e}", k.display())))?;
            b = b.trust(key);
        }
        if args.allow_unsigned_files_unsafe {
            b = b.allow_unsigned_files_unsafe();
        }
        let verifier = b.build().map_err(|e| Failure::usage(e.to_string()))?;
        Ok(Engine { verifier, mode })
    }

    pub fn mode_name(&self) -> &'static str {
        self.mode.name()
    }

    pub fn open(&self, model: &Path, signature: Option<&Path>) -> Result<Opened, Failure> {
        let sig = match signature {
            Some(s) => s.to_path_buf(),
            None => find_signature(model),
        };
        match self.verifier.open(model, &sig) {
            Ok(m) => Ok(Opened {
                model: Some(m),
                warnings: vec![],
                mode: self.mode,
            }),
            Err(e) if self.mode == Mode::Warn => Ok(Opened {
                model: None,
                warnings: vec![e.into()],
                mode: self.mode,
            }),
            Err(e) => Err(e.into()),
        }
    }
}

/// Until the library's load decision finds it: the file's own signature, else the first
/// `weightseal.sig` of a folder above it.
fn find_signature(model: &Path) -> PathBuf {
    let own = weightseal_verifier::default_signature_path(model);
    if model.is_dir() || own.exists() {
        return own;
    }
    model
        .ancestors()
        .skip(1)
        .map(weightseal_verifier::default_signature_path)
        .find(|p| p.exists())
        .unwrap_or(own)
}

/// An opened model: the decision and, when there is one, the trusted manifest.
#[derive(Debug)]
pub struct Opened {
    model: Option<SignedModel>,
    warnings: Vec<Failure>,
    mode: Mode,
}

/// In warn mode a byte mismatch is a finding; in enforce mode, the error.
fn by_mode<T>(
    mode: Mode,
    r: Result<T, VerifyError>,
    on_warn: impl FnOnce() -> T,
) -> Result<(T, Option<Failure>), Failure> {
    match r {
        Ok(v) => Ok((v, None)),
        Err(e) => {
            let f = Failure::from(e);
            if mode == Mode::Warn && f.kind != Kind::Usage {
                Ok((on_warn(), Some(f)))
            } else {
                Err(f)
            }
        }
    }
}

impl Opened {
    pub fn mode_name(&self) -> &'static str {
        self.mode.name()
    }
    pub fn warnings(&self) -> Vec<Failure> {
        self.warnings.clone()
    }
    pub fn revocation(&self) -> Revocation {
        Revocation::NotConfigured
    }
    pub fn signed(&self) -> Option<(String, Vec<String>)> {
        self.model.as_ref().map(|m| {
            (
                m.manifest_digest().to_hex(),
                m.signers().iter().map(|k| k.to_hex()).collect(),
            )
        })
    }

    fn model(&self) -> Result<&SignedModel, Failure> {
        self.model
            .as_ref()
            .ok_or_else(|| Failure::usage("no trusted manifest (warn mode): the bytes cannot be checked"))
    }

    /// The manifest path of the signed file `path` (the longest manifest path it ends with).
    pub fn file_of(&self, path: &Path) -> Result<String, Failure> {
        let m = self.model()?;
        m.manifest()
            .files
            .iter()
            .filter(|f| path.ends_with(&f.path))
            .max_by_key(|f| f.path.len())
            .map(|f| f.path.clone())
            .ok_or_else(|| Failure::usage(format!("{} is not one of the signed files", path.display())))
    }

    /// The header of signed file `rel`, checked. Warn mode: a mismatch is a finding and
    /// `None` comes back (the caller reads the header unchecked).
    pub fn header(&self, rel: &str) -> Result<(Option<Vec<u8>>, Option<Failure>), Failure> {
        let m = self.model()?;
        by_mode(self.mode, m.read_header(rel).map(Some), || None)
    }

    pub fn tensor_len(&self, name: &str) -> Result<u64, Failure> {
        Ok(self.model()?.tensor_len(name)?)
    }

    pub fn read_tensor_into(&self, name: &str, buf: &mut [u8]) -> Result<Option<Failure>, Failure> {
        let m = self.model()?;
        let r = m.read_tensor_into(name, buf).map(|_| ());
        Ok(by_mode(self.mode, r, || ())?.1)
    }

    pub fn verify(&self, names: Option<&[&str]>) -> Result<(Option<VerifiedInfo>, Vec<Failure>), Failure> {
        let Some(m) = self.model.as_ref() else {
            return Ok((None, vec![]));
        };
        let r = match names {
            Some(n) => m.verify_tensors(n, None),
            None => m.verify_all(None),
        };
        let (v, w) = by_mode(self.mode, r.map(Some), || None)?;
        let info = v.map(|v| VerifiedInfo {
            manifest_digest: v.manifest_digest().to_hex(),
            signers: v.signers().iter().map(|k| k.to_hex()).collect(),
            bytes_verified: v.bytes_verified(),
        });
        Ok((info, w.into_iter().collect()))
    }
}
