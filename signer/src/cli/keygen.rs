//! `weightseal keygen --out KEY`.
//!
//! Writes KEY (PKCS#8 v1 PEM, mode 0600) and KEY.pub (SPKI PEM), never over existing
//! files: see `weightseal_signer::keys`.

use std::path::PathBuf;

use anyhow::anyhow;
use clap::Args;
use serde_json::json;
use weightseal_signer::keys::public_key_of;
use weightseal_signer::{generate_keypair, write_keypair, KeyFileError};

use super::{Ctx, Failure, Outcome, Report};

#[derive(Debug, Clone, Args)]
pub struct KeygenArgs {
    /// Where to write the private key (PKCS#8 PEM, mode 0600). The public key (SPKI PEM)
    /// goes to KEY.pub. Existing files are never overwritten.
    #[arg(long, value_name = "KEY")]
    pub out: PathBuf,
}

pub fn run(args: &KeygenArgs, _ctx: Ctx) -> Outcome {
    let key = generate_keypair().map_err(Failure::refused)?;
    let public_path = write_keypair(&key, &args.out).map_err(|e| match e {
        KeyFileError::Exists { path } => Failure::refused(anyhow!(
            "{} already exists; refusing to overwrite a key",
            path.display()
        ))
        .hint("keys are never overwritten: choose another --out, or move the old key away first"),
        other => Failure::refused(other),
    })?;
    let id = public_key_of(&key).id().to_hex();
    let human = format!(
        "wrote private key {} (mode 0600: keep it secret, it signs models)\n\
         wrote public key  {} (give this to verifiers: weightseal verify --trusted-key {})\n\
         key id: {id}\n",
        args.out.display(),
        public_path.display(),
        public_path.display(),
    );
    let json = json!({
        "private_key": args.out.display().to_string(),
        "public_key": public_path.display().to_string(),
        "key_id": id,
    });
    Ok(Report::new(human, json))
}
