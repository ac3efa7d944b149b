//! `weightseal inspect SIG`: what a signature file says. Signatures are checked
//! cryptographically; whether their keys are trusted is not evaluated.

use std::path::PathBuf;

use anyhow::anyhow;
use clap::Args;
use serde_json::json;
use weightseal_verifier::manifest::FORMAT_VERSION;
use weightseal_verifier::Verifier;

use super::output::{bytes, plural, utc_time};
use super::{exit, Ctx, Failure, Outcome, Report};

#[derive(Debug, Clone, Args)]
#[command(after_help = "\
Exit status: 0 the file is well formed and every signature in it is valid for its manifest;
1 the file is unreadable or malformed, or a signature in it is not valid; 2 bad arguments.
Trust is NOT evaluated: use `weightseal verify --trusted-key` before loading a model.")]
pub struct InspectArgs {
    /// The signature file.
    #[arg(value_name = "SIG")]
    pub signature: PathBuf,
}

pub fn run(args: &InspectArgs, _ctx: Ctx) -> Outcome {
    let sig = Verifier::read_signature_file(&args.signature).map_err(Failure::refused)?;
    let manifest = sig.manifest().map_err(|e| {
        Failure::refused(anyhow!(
            "signature file {} holds an invalid manifest: {e}",
            args.signature.display()
        ))
    })?;
    let digest = sig.manifest_digest();
    let signers: Vec<(String, bool)> = sig
        .signatures()
        .iter()
        .map(|s| (s.public_key.id().to_hex(), s.is_valid_for(&digest)))
        .collect();

    let mut h = format!("signature file {}\n", args.signature.display());
    h += "manifest\n";
    h += &format!("  name:            {}\n", manifest.name.as_deref().unwrap_or("(none)"));
    h += &format!("  format version:  {FORMAT_VERSION}\n");
    if let Some(t) = manifest.created {
        h += &format!("  created:         {} (as claimed by the signer)\n", utc_time(t));
    }
    h += &format!("  digest:          {digest}\n");
    let tensors: usize = manifest.files.iter().map(|f| f.tensors().count()).sum();
    h += &format!(
        "  files:           {} ({}), {}\n",
        manifest.files.len(),
        plural(tensors, "tensor", "tensors"),
        bytes(manifest.total_size())
    );
    let width = manifest.files.iter().map(|f| f.path.len()).max().unwrap_or(0);
    for f in &manifest.files {
        h += &format!(
            "    {:width$}  {:<11}  {:>14} bytes  {}\n",
            f.path,
            f.kind.as_str(),
            f.size,
            plural(f.tensors().count(), "tensor", "tensors"),
        );
    }
    h += "signers (signatures checked cryptographically; trust was NOT evaluated, use `weightseal verify --trusted-key`)\n";
    for (id, valid) in &signers {
        h += &format!(
            "  {id}  {}\n",
            if *valid { "valid signature" } else { "INVALID signature" }
        );
    }
    h += "lineage\n";
    if manifest.parents.is_empty() {
        h += "  (no parents)\n";
    }
    for p in &manifest.parents {
        h += &format!("  {} of {}\n", p.relation, p.digest);
    }
    h += "ignore rules\n";
    if manifest.ignore.is_empty() {
        h += "  (none)\n";
    }
    for rule in &manifest.ignore {
        h += &format!("  {rule}\n");
    }
    if !manifest.annotations.is_empty() {
        h += "annotations\n";
        for (k, v) in &manifest.annotations {
            h += &format!("  {k} = {v}\n");
        }
    }

    let json = json!({
        "signature_file": args.signature.display().to_string(),
        "manifest": {
            "name": manifest.name,
            "version": FORMAT_VERSION,
            "created": manifest.created,
            "digest": digest.to_hex(),
            "total_bytes": manifest.total_size(),
            "tensors": tensors,
            "files": manifest.files.iter().map(|f| json!({
                "path": f.path,
                "kind": f.kind.as_str(),
                "size": f.size,
                "tensors": f.tensors().count(),
                "chunks": f.chunks.len(),
                "digest": f.digest.to_hex(),
            })).collect::<Vec<_>>(),
        },
        "signers": signers.iter().map(|(id, valid)| json!({"key_id": id, "signature_valid": valid})).collect::<Vec<_>>(),
        "trust_evaluated": false,
        "parents": manifest.parents.iter().map(|p| json!({
            "digest": p.digest.to_hex(),
            "relation": p.relation.as_str(),
        })).collect::<Vec<_>>(),
        "ignore": manifest.ignore,
        "annotations": manifest.annotations,
    });
    let invalid: Vec<&str> = signers.iter().filter(|(_, v)| !v).map(|(id, _)| id.as_str()).collect();
    let mut report = Report::new(h, json);
    if !invalid.is_empty() {
        // Still print the report, but exit 1 so scripts notice.
        crate::cli::output::print_error(
            &format!(
                "the signature by {} does not match the manifest: the signature file was altered",
                invalid.join(", ")
            ),
            None,
        );
        report.code = exit::REFUSED;
    }
    Ok(report)
}
