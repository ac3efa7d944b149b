//! `weightseal cosign MODEL --key KEY [--signature SIG]`.

use std::path::PathBuf;

use clap::Args;
use serde_json::json;
use weightseal_signer::keys::public_key_of;
use weightseal_signer::{cosign, write_signature_file, SignError};
use weightseal_verifier::Verifier;

use super::common::{load_signing_key, signature_path, verify_hint};
use super::output::{self, plural};
use super::{exit, Ctx, Failure, Outcome, Report};

#[derive(Debug, Clone, Args)]
pub struct CosignArgs {
    /// The model the signature file describes (folder or single file).
    pub model: PathBuf,
    /// The existing signature file to add to [default: MODEL/weightseal.sig for a folder,
    /// MODEL.weightseal.sig for a single file].
    #[arg(long, value_name = "SIG")]
    pub signature: Option<PathBuf>,
    /// Your private key.
    #[arg(long, value_name = "KEY")]
    pub key: PathBuf,
}

pub fn run(args: &CosignArgs, ctx: Ctx) -> Outcome {
    let key = load_signing_key(&args.key)?;
    let sig_path = signature_path(&args.model, args.signature.as_deref());
    let total = Verifier::read_signature_file(&sig_path)
        .ok()
        .and_then(|s| s.manifest().ok())
        .map(|m| m.total_size());
    let key_id = public_key_of(&key).id();
    let sig = output::with_progress(ctx.progress, "verifying", total, |progress| {
        cosign(&args.model, &sig_path, &key, progress)
    })
    .map_err(|e| {
        let hint = match &e {
            SignError::Verify(v) => verify_hint(v, &sig_path),
            _ => None,
        };
        Failure::with_code(exit::REFUSED, anyhow::Error::new(e).context("refusing to co-sign")).maybe_hint(hint)
    })?;
    write_signature_file(&sig_path, &sig)
        .map_err(|e| Failure::refused(anyhow::Error::new(e).context("cannot write the signature file")))?;
    let signers: Vec<String> = sig.signatures().iter().map(|s| s.public_key.id().to_hex()).collect();
    let mut human = format!(
        "co-signed {} (checked every byte against the existing signatures first)\n  manifest digest: {}\n  added:           {}\n  signature:       {}\n  signers ({}):\n",
        args.model.display(),
        sig.manifest_digest(),
        key_id,
        sig_path.display(),
        plural(signers.len(), "signature", "signatures"),
    );
    for s in &signers {
        human += &format!("    {s}\n");
    }
    let json = json!({
        "model": args.model.display().to_string(),
        "signature": sig_path.display().to_string(),
        "manifest_digest": sig.manifest_digest().to_hex(),
        "key_id": key_id.to_hex(),
        "signers": signers,
    });
    Ok(Report::new(human, json))
}
