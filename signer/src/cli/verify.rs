//! `weightseal verify MODEL --trusted-key PUB ...`: the check a runtime makes before it
//! loads anything.

use std::path::{Path, PathBuf};

use anyhow::anyhow;
use clap::Args;
use serde_json::json;
use weightseal_verifier::decision::{locate_signature, LoadDecision};
use weightseal_verifier::{
    Coverage, DecisionError, Mode, Policy, ReadMode, RefusalKind, RevocationStatus, Verified, Verifier, POLICY_ENV,
};

use super::common::{load_trusted_key, verify_hint};
use super::output::{self, bytes, plural};
use super::revstate::{self, StateArgs};
use super::{exit, Ctx, Failure, Outcome, Report};

#[derive(Debug, Clone, Args)]
#[command(after_help = "\
Revocation: with --revocations SRC the list is synced into the state folder after the
signature checks, then the manifest digest, every signer's key id and every file and chunk
(tensor) digest are looked up. SRC is an http:// URL (a live weightseal-server or a static
export on any web server), a folder written by `weightseal-server export`, or a bundle file
(`weightseal revocations bundle`). If the sync fails but the held state is still fresh, it is
used (a warning says so). If no fresh status can be established (never synced, snapshot
expired) the model is refused (fail closed) unless --unsafe-ignore-revocation-status.

Policy: --policy FILE (or $WEIGHTSEAL_POLICY when no --trusted-key is given) reads the same
settings from a policy file; in its `warn` mode findings are printed as warnings and the
exit status is 0. This is the pre-load step for model servers (an init container or a
pre-start command): `weightseal verify --policy /etc/weightseal/policy.toml /models/m`.

Exit status: 0 verified (and not revoked); 1 the model must NOT be loaded (bytes, file set,
signature or trust failed, the signature file is missing or malformed, the model is revoked,
or its revocation status cannot be established); 2 the command could not run (bad arguments,
unreadable or invalid --trusted-key file, unknown tensor name, impossible threshold, no or a
different --revocation-key).")]
pub struct VerifyArgs {
    /// The model: a folder, or a single weight file.
    pub model: PathBuf,
    /// A load policy file (TOML, spec/policy.md): trusted keys, threshold, revocations,
    /// mode. Replaces the trust and revocation options. Without it and without
    /// --trusted-key, the file named by $WEIGHTSEAL_POLICY is used.
    #[arg(long, value_name = "FILE", conflicts_with_all = [
        "trusted_keys", "threshold", "allow_unsigned_files_unsafe", "revocations", "unsafe_ignore_revocation_status",
        "no_mmap"
    ])]
    pub policy: Option<PathBuf>,
    /// The signature file [default: MODEL/weightseal.sig for a folder, MODEL.weightseal.sig
    /// for a single file].
    #[arg(long, value_name = "SIG")]
    pub signature: Option<PathBuf>,
    /// A public key you trust (the KEY.pub written by `weightseal keygen`, SPKI PEM).
    /// Repeat the option for several keys.
    #[arg(long = "trusted-key", value_name = "PUB")]
    pub trusted_keys: Vec<PathBuf>,
    /// How many distinct trusted keys must have signed [default: 1].
    #[arg(long, value_name = "K")]
    pub threshold: Option<usize>,
    /// Verify only these tensors (comma-separated or repeated): their bytes, their files'
    /// headers, and the folder's file list and sizes. Nothing else is read.
    #[arg(long, value_name = "NAME[,NAME...]", value_delimiter = ',')]
    pub tensors: Vec<String>,
    /// UNSAFE: accept files in the folder that the signature does not cover (such as a
    /// `modeling_custom.py` dropped beside the weights). Only for loaders that open
    /// nothing but the signed files, by name.
    #[arg(long)]
    pub allow_unsigned_files_unsafe: bool,
    /// Check the model against a revocation list: an http:// URL, a static export folder, or
    /// a bundle file.
    #[arg(long, value_name = "URL_OR_DIR_OR_BUNDLE")]
    pub revocations: Option<String>,
    #[command(flatten)]
    pub state: StateArgs,
    /// UNSAFE: load the model even when its revocation status cannot be established (no
    /// state, expired snapshot, unreachable server). A model known to be revoked is still
    /// refused.
    #[arg(long, requires = "revocations")]
    pub unsafe_ignore_revocation_status: bool,
    /// Read files with pread only, never memory-mapped (for network filesystems, where a
    /// file truncated while mapped kills the reader with SIGBUS). A policy file says
    /// `no_mmap = true` instead.
    #[arg(long)]
    pub no_mmap: bool,
}

pub fn run(args: &VerifyArgs, ctx: Ctx) -> Outcome {
    let sig_path = args.signature.clone().unwrap_or_else(|| locate_signature(&args.model));
    verify(args, ctx, &sig_path).map_err(|mut f| {
        let extra = f.json.take();
        let mut doc = json!({
            "verified": false,
            "refused": f.code == exit::REFUSED,
            "exit_code": f.code,
            "error": f.message(),
            "model": args.model.display().to_string(),
            "signature": sig_path.display().to_string(),
        });
        if let (Some(obj), Some(serde_json::Value::Object(extra))) = (doc.as_object_mut(), extra) {
            obj.extend(extra);
        }
        f.json = Some(doc);
        f
    })
}

/// The policy the arguments describe: a policy file, or the flags turned into the same
/// policy, or $WEIGHTSEAL_POLICY.
fn policy_of(args: &VerifyArgs) -> Result<Policy, Failure> {
    if let Some(path) = &args.policy {
        return Policy::from_file(path).map_err(|e| decision_failure(&e, None));
    }
    if args.trusted_keys.is_empty() {
        if std::env::var_os(POLICY_ENV).is_some_and(|v| !v.is_empty()) {
            return Policy::from_env().map_err(|e| decision_failure(&e, None));
        }
        return Err(Failure::usage(anyhow!(
            "no trusted key given: verify checks the model against keys you trust"
        ))
        .hint(
            "did you forget --trusted-key? pass the signer's public key, e.g. --trusted-key lab.key.pub, or a \
             policy file with --policy FILE",
        ));
    }
    if args.revocations.is_none() && (args.state.state.is_some() || !args.state.revocation_keys.is_empty()) {
        return Err(Failure::usage(anyhow!(
            "--state and --revocation-key need --revocations SRC"
        )));
    }
    let mut builder = Policy::builder();
    for path in &args.trusted_keys {
        builder = builder.trust(load_trusted_key(path)?);
    }
    if let Some(k) = args.threshold {
        builder = builder.threshold(k);
    }
    if args.allow_unsigned_files_unsafe {
        builder = builder.allow_unsigned_files_unsafe();
    }
    if args.no_mmap {
        builder = builder.read_mode(ReadMode::NoMmap);
    }
    if let Some(src) = &args.revocations {
        builder = builder.revocations(args.state.config(Some(src))?);
        if args.unsafe_ignore_revocation_status {
            builder = builder.unsafe_ignore_revocation_status();
        }
    }
    builder.build().map_err(|e| decision_failure(&e, None))
}

/// The exit status and hint for a refusal or an error of the decision.
pub fn decision_failure(e: &DecisionError, sig_path: Option<&Path>) -> Failure {
    let code = match e.kind() {
        RefusalKind::Usage => exit::USAGE,
        _ => exit::REFUSED,
    };
    let hint = match (e, e.verify_error(), sig_path) {
        (_, Some(ve), Some(sig)) => verify_hint(ve, sig),
        (DecisionError::State(se), _, _) => revstate::state_failure(se).hint,
        _ => revstate::unknown_status_hint(e, Some("--unsafe-ignore-revocation-status")),
    };
    let mut f = Failure::with_code(code, anyhow!("{e}")).maybe_hint(hint);
    if let Some(hits) = e.revoked_hits() {
        f.json = Some(json!({"revoked": revstate::hits_json(hits)}));
    }
    f
}

fn verify(args: &VerifyArgs, ctx: Ctx, sig_path: &Path) -> Outcome {
    let policy = policy_of(args)?;
    let decision = policy
        .open(&args.model, Some(sig_path))
        .map_err(|e| decision_failure(&e, Some(sig_path)))?;
    for w in decision.warnings() {
        print_finding(w, policy.mode());
    }
    if let Some(report) = decision.revocation_report() {
        let known = !matches!(decision.revocation(), RevocationStatus::Unknown { .. });
        revstate::warn_if_sync_failed(report, known);
    }
    let names: Vec<&str> = args.tensors.iter().map(String::as_str).collect();
    let (verified, findings) = if decision.model().is_none() {
        Ok((None, Vec::new()))
    } else if names.is_empty() {
        let total = if args.model.is_dir() {
            decision.model().map(|m| m.manifest().total_size())
        } else {
            std::fs::metadata(&args.model).ok().map(|m| m.len())
        };
        output::with_progress(ctx.progress, "verifying", total, |p| decision.verify_all(p))
    } else {
        output::with_progress(ctx.progress, "verifying", None, |p| decision.verify_tensors(&names, p))
    }
    .map_err(|e| decision_failure(&e, Some(sig_path)))?;
    for w in &findings {
        print_finding(w, policy.mode());
    }
    if policy.verifier().allows_unsigned_files_unsafe() {
        output::print_warning(
            "--allow-unsigned-files-unsafe: files beside the model that the signature does not cover were not \
             checked; load only the signed files, by name",
        );
    }
    let mut r = match &verified {
        Some(v) => report(args, sig_path, policy.verifier(), v),
        None => unverified_report(args, &decision),
    };
    if let Some(rev) = revocation_lines(&decision) {
        r.human += &rev.0;
        if let Some(obj) = r.json.as_object_mut() {
            obj.insert("revocation".into(), rev.1);
        }
    }
    let warnings: Vec<String> = decision
        .warnings()
        .iter()
        .chain(&findings)
        .map(ToString::to_string)
        .collect();
    if let Some(obj) = r.json.as_object_mut() {
        obj.insert("mode".into(), json!(policy.mode().as_str()));
        obj.insert("warnings".into(), json!(warnings));
    }
    Ok(r)
}

/// A finding the decision let through: loud for the unsafe opt-out, plain in warn mode.
fn print_finding(e: &DecisionError, mode: Mode) {
    if e.kind() == RefusalKind::StatusUnknown && mode == Mode::Enforce {
        output::print_warning(&format!(
            "!!! --unsafe-ignore-revocation-status: the revocation status of this model is UNKNOWN ({e}); it is \
             being loaded without knowing whether it was revoked !!!"
        ));
    } else {
        output::print_warning(&format!("warn mode: would refuse: {e}"));
    }
}

/// The revocation lines of the report, when revocations are configured.
fn revocation_lines(decision: &LoadDecision) -> Option<(String, serde_json::Value)> {
    let report = decision.revocation_report()?;
    let (status, known, revoked) = match decision.revocation() {
        RevocationStatus::Unknown { .. } => ("UNKNOWN (unsafe: not established)".to_string(), false, false),
        RevocationStatus::Revoked { hits } => (
            format!(
                "REVOKED (warn mode): {}",
                weightseal_verifier::decision::hits_summary(hits)
            ),
            true,
            true,
        ),
        _ => (format!("not revoked ({})", revstate::describe(report)), true, false),
    };
    let mut json = revstate::report_json(report, known);
    if let Some(obj) = json.as_object_mut() {
        obj.insert("revoked".into(), json!(revoked));
    }
    Some((format!("  revocation:      {status}\n"), json))
}

/// The report of a warn-mode load that had no trusted manifest to check bytes against.
fn unverified_report(args: &VerifyArgs, decision: &LoadDecision) -> Report {
    let human = format!(
        "NOT verified {} (warn mode let it through: {})\n",
        args.model.display(),
        plural(decision.warnings().len(), "finding", "findings")
    );
    let json = json!({
        "verified": false,
        "model": args.model.display().to_string(),
        "signature": decision.signature_path().display().to_string(),
    });
    Report::new(human, json)
}

fn report(args: &VerifyArgs, sig_path: &Path, verifier: &Verifier, v: &Verified) -> Report {
    let unsigned_allowed = verifier.allows_unsigned_files_unsafe();
    let unsafe_note = if unsigned_allowed {
        " (UNSAFE: unsigned files beside them were allowed and not checked)"
    } else {
        ", and no unsigned file beside them"
    };
    let (covered, coverage_json) = match v.coverage() {
        Coverage::Everything => (
            format!("everything: every signed file{unsafe_note}"),
            json!({"kind": "everything", "unsigned_files_allowed": unsigned_allowed}),
        ),
        Coverage::Files(files) => (
            format!(
                "only the file{} {}",
                if files.len() == 1 { "" } else { "s" },
                files.join(", ")
            ),
            json!({"kind": "files", "files": files}),
        ),
        Coverage::Tensors(tensors) => (
            format!(
                "only {} (plus their files' headers and the folder's file list): {}",
                plural(tensors.len(), "tensor", "tensors"),
                tensors
                    .iter()
                    .map(|(file, tensor)| format!("{tensor} (in {file})"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            json!({
                "kind": "tensors",
                "tensors": tensors.iter().map(|(f, t)| json!({"file": f, "tensor": t})).collect::<Vec<_>>(),
            }),
        ),
        other => (format!("{other:?}"), json!({"kind": format!("{other:?}")})),
    };
    let signers: Vec<String> = v.signers().iter().map(|k| k.to_hex()).collect();
    let mut human = format!("verified {}\n", args.model.display());
    if let Some(name) = v.name() {
        human += &format!("  name:            {name}\n");
    }
    human += &format!("  covered:         {covered}\n");
    human += &format!(
        "  signed by:       {}, threshold {} of {}\n",
        plural(signers.len(), "trusted key", "trusted keys"),
        verifier.threshold(),
        verifier.trusted_key_ids().len()
    );
    for s in &signers {
        human += &format!("                   {s}\n");
    }
    human += &format!("  manifest digest: {}\n", v.manifest_digest());
    human += &format!("  bytes verified:  {}\n", bytes(v.bytes_verified()));
    human += &format!("  signature:       {}\n", sig_path.display());
    let json = json!({
        "verified": true,
        "model": args.model.display().to_string(),
        "signature": sig_path.display().to_string(),
        "name": v.name(),
        "coverage": coverage_json,
        "signers": signers,
        "threshold": verifier.threshold(),
        "trusted_keys": verifier.trusted_key_ids().iter().map(|k| k.to_hex()).collect::<Vec<_>>(),
        "manifest_digest": v.manifest_digest().to_hex(),
        "bytes_verified": v.bytes_verified(),
    });
    Report::new(human, json)
}
