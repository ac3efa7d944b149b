//! `weightseal verify MODEL --trusted-key PUB ...`: the check a runtime makes before it
//! loads anything.

use std::path::{Path, PathBuf};

use anyhow::anyhow;
use clap::Args;
use serde_json::json;
use weightseal_verifier::{Coverage, KeyId, SignedModel, Verified, Verifier, VerifyError};

use super::common::{load_trusted_key, signature_path, verify_hint};
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

Exit status: 0 verified (and not revoked); 1 the model must NOT be loaded (bytes, file set,
signature or trust failed, the signature file is missing or malformed, the model is revoked,
or its revocation status cannot be established); 2 the command could not run (bad arguments,
unreadable or invalid --trusted-key file, unknown tensor name, impossible threshold, no or a
different --revocation-key).")]
pub struct VerifyArgs {
    /// The model: a folder, or a single weight file.
    pub model: PathBuf,
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
}

pub fn run(args: &VerifyArgs, ctx: Ctx) -> Outcome {
    let sig_path = signature_path(&args.model, args.signature.as_deref());
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

fn verify(args: &VerifyArgs, ctx: Ctx, sig_path: &Path) -> Outcome {
    if args.trusted_keys.is_empty() {
        return Err(Failure::usage(anyhow!(
            "no trusted key given: verify checks the model against keys you trust"
        ))
        .hint("did you forget --trusted-key? pass the signer's public key, e.g. --trusted-key lab.key.pub"));
    }
    let mut builder = Verifier::builder();
    for path in &args.trusted_keys {
        builder = builder.trust(load_trusted_key(path)?);
    }
    if let Some(k) = args.threshold {
        builder = builder.threshold(k);
    }
    if args.allow_unsigned_files_unsafe {
        builder = builder.allow_unsigned_files_unsafe();
    }
    let verifier = builder.build().map_err(Failure::usage)?;
    if args.revocations.is_none() && (args.state.state.is_some() || !args.state.revocation_keys.is_empty()) {
        return Err(Failure::usage(anyhow!(
            "--state and --revocation-key need --revocations SRC"
        )));
    }
    let refuse = |e: VerifyError| {
        let hint = verify_hint(&e, sig_path);
        let code = if e.is_rejection() { exit::REFUSED } else { exit::USAGE };
        Failure::with_code(code, e).maybe_hint(hint)
    };
    let model = verifier.open(&args.model, sig_path).map_err(refuse)?;
    let names: Vec<&str> = args.tensors.iter().map(String::as_str).collect();
    let verified = if names.is_empty() {
        let total = if args.model.is_dir() {
            Some(model.manifest().total_size())
        } else {
            std::fs::metadata(&args.model).ok().map(|m| m.len())
        };
        output::with_progress(ctx.progress, "verifying", total, |p| model.verify_all(p))
    } else {
        output::with_progress(ctx.progress, "verifying", None, |p| model.verify_tensors(&names, p))
    }
    .map_err(refuse)?;
    if args.allow_unsigned_files_unsafe {
        output::print_warning(
            "--allow-unsigned-files-unsafe: files beside the model that the signature does not cover were not \
             checked; load only the signed files, by name",
        );
    }
    let revocation = match &args.revocations {
        Some(src) => Some(check_revocations(args, src, sig_path, &model)?),
        None => None,
    };
    let mut r = report(args, sig_path, &verifier, &verified);
    if let Some((human, json)) = revocation {
        r.human += &human;
        if let Some(obj) = r.json.as_object_mut() {
            obj.insert("revocation".into(), json);
        }
    }
    Ok(r)
}

/// Syncs the revocation list and looks the model up (manifest digest, every key with a valid
/// signature in the file, every file and chunk digest). `Err` (exit 1) when revoked or when
/// the status is unknown without the unsafe flag.
fn check_revocations(
    args: &VerifyArgs,
    src: &str,
    sig_path: &Path,
    model: &SignedModel,
) -> Result<(String, serde_json::Value), Failure> {
    let est = revstate::establish(src, &args.state)?;
    est.warn_if_sync_failed();
    if let Some(unknown) = &est.unknown {
        if !args.unsafe_ignore_revocation_status {
            return Err(est.unknown_failure(unknown, Some("--unsafe-ignore-revocation-status")));
        }
        output::print_warning(&format!(
            "!!! --unsafe-ignore-revocation-status: the revocation status of this model is UNKNOWN ({unknown}); \
             it is being loaded without knowing whether it was revoked !!!"
        ));
    }
    let digest = model.manifest_digest();
    let mut signers: Vec<KeyId> = model.signers().to_vec();
    if let Ok(sig) = Verifier::read_signature_file(sig_path) {
        for s in sig.signatures() {
            let id = s.public_key.id();
            if !signers.contains(&id) && s.is_valid_for(&digest) {
                signers.push(id);
            }
        }
    }
    let hits = est.state.check_manifest(model.manifest(), &digest, &signers);
    if !hits.is_empty() {
        let mut f = Failure::refused(anyhow!(
            "{} must not be loaded: {}\n{}",
            args.model.display(),
            revstate::hits_summary(&hits),
            revstate::hits_text(&hits).trim_end()
        ));
        f.json = Some(json!({"revoked": revstate::hits_json(&hits), "revocation": est.json()}));
        return Err(f);
    }
    let status = match &est.unknown {
        Some(_) => "UNKNOWN (unsafe: not established)".to_string(),
        None => format!("not revoked ({})", est.describe()),
    };
    let mut json = est.json();
    if let Some(obj) = json.as_object_mut() {
        obj.insert("revoked".into(), json!(false));
    }
    Ok((format!("  revocation:      {status}\n"), json))
}

fn report(args: &VerifyArgs, sig_path: &Path, verifier: &Verifier, v: &Verified) -> Report {
    let unsafe_note = if args.allow_unsigned_files_unsafe {
        " (UNSAFE: unsigned files beside them were allowed and not checked)"
    } else {
        ", and no unsigned file beside them"
    };
    let (covered, coverage_json) = match v.coverage() {
        Coverage::Everything => (
            format!("everything: every signed file{unsafe_note}"),
            json!({"kind": "everything", "unsigned_files_allowed": args.allow_unsigned_files_unsafe}),
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
