//! `weightseal verify MODEL --trusted-key PUB ...`: the check a runtime makes before it
//! loads anything.

use std::path::{Path, PathBuf};

use anyhow::anyhow;
use clap::Args;
use serde_json::json;
use weightseal_verifier::{Coverage, Verified, Verifier, VerifyError};

use super::common::{load_trusted_key, signature_path, verify_hint};
use super::output::{self, bytes, plural};
use super::{exit, Ctx, Failure, Outcome, Report};

#[derive(Debug, Clone, Args)]
#[command(after_help = "\
Exit status: 0 verified; 1 the model must NOT be loaded (bytes, file set, signature or trust
failed, or the signature file is missing or malformed); 2 the command could not run (bad
arguments, unreadable or invalid --trusted-key file, unknown tensor name, impossible threshold).")]
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
}

pub fn run(args: &VerifyArgs, ctx: Ctx) -> Outcome {
    let sig_path = signature_path(&args.model, args.signature.as_deref());
    verify(args, ctx, &sig_path).map_err(|mut f| {
        f.json = Some(json!({
            "verified": false,
            "refused": f.code == exit::REFUSED,
            "exit_code": f.code,
            "error": f.message(),
            "model": args.model.display().to_string(),
            "signature": sig_path.display().to_string(),
        }));
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
    Ok(report(args, sig_path, &verifier, &verified))
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
