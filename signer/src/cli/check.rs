//! `weightseal check MODEL --revocations SRC`: is an (unsigned) model revoked? Hashes every
//! file the same way signing does and looks up every file and chunk (tensor) digest.

use std::path::PathBuf;

use anyhow::anyhow;
use clap::Args;
use serde_json::json;
use weightseal_verifier::scan::{scan_file, scan_folder, ScanOptions};
use weightseal_verifier::walk::IgnoreRules;
use weightseal_verifier::FileEntry;

use super::output::{self, plural};
use super::revstate::{self, StateArgs};
use super::{Ctx, Failure, Outcome, Report};

#[derive(Debug, Clone, Args)]
#[command(after_help = "\
Hashes MODEL (a folder: every file but .git/ and the like; or one file) with the same
chunking as `weightseal sign`, syncs the revocation list, and looks up the digest of every
file and every chunk (tensor). This catches revoked weights however they are packaged:
unsigned, renamed, or re-sharded into other files (each tensor keeps its digest).

Exit status: 0 nothing in MODEL is revoked; 1 something is revoked (each tensor or file is
named with the entry, reason, issuer and evidence), or the revocation status cannot be
established (never synced and the source failed, or the snapshot expired: fail closed), or
MODEL cannot be hashed; 2 the command could not run (bad arguments, no or a different
--revocation-key).")]
pub struct CheckArgs {
    /// The model: a folder or a single file.
    pub model: PathBuf,
    /// The revocation list: an http:// URL, a static export folder, or a bundle file.
    #[arg(long, value_name = "URL_OR_DIR_OR_BUNDLE")]
    pub revocations: String,
    #[command(flatten)]
    pub state: StateArgs,
}

/// Hashes a folder or a single file like `weightseal sign` (default ignore rules).
pub fn hash_model(model: &std::path::Path, progress: bool) -> Result<Vec<FileEntry>, Failure> {
    let fail = |e: &dyn std::fmt::Display| Failure::refused(anyhow!("cannot hash {}: {e}", model.display()));
    if model.is_dir() {
        let total = None;
        output::with_progress(progress, "hashing", total, |p| {
            scan_folder(
                model,
                &IgnoreRules::defaults(),
                &[],
                ScanOptions {
                    progress: p,
                    ..ScanOptions::default()
                },
            )
        })
        .map_err(|e| fail(&e))
    } else if model.is_file() {
        let name = model
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "model".into());
        output::with_progress(
            progress,
            "hashing",
            std::fs::metadata(model).ok().map(|m| m.len()),
            |p| {
                scan_file(
                    model,
                    &name,
                    ScanOptions {
                        progress: p,
                        ..ScanOptions::default()
                    },
                )
            },
        )
        .map(|f| vec![f])
        .map_err(|e| fail(&e))
    } else {
        Err(Failure::usage(anyhow!("{}: no such file or folder", model.display())))
    }
}

pub fn run(args: &CheckArgs, ctx: Ctx) -> Outcome {
    if !args.model.exists() {
        return Err(Failure::usage(anyhow!(
            "{}: no such file or folder",
            args.model.display()
        )));
    }
    let est = revstate::establish(&args.revocations, &args.state)?;
    est.warn_if_sync_failed();
    if let Some(unknown) = &est.unknown {
        return Err(est.unknown_failure(unknown, None));
    }
    let files = hash_model(&args.model, ctx.progress)?;
    let chunks: usize = files.iter().map(|f| f.chunks.len()).sum();
    let hits = est.state.check_files(&files);
    let checked = format!(
        "{} and {} checked against {}",
        plural(files.len(), "file", "files"),
        plural(chunks, "chunk", "chunks"),
        est.describe()
    );
    if !hits.is_empty() {
        let mut f = Failure::refused(anyhow!(
            "{} must not be loaded: {}\n{}",
            args.model.display(),
            revstate::hits_summary(&hits),
            revstate::hits_text(&hits).trim_end()
        ));
        f.json = Some(json!({
            "revoked": true,
            "model": args.model.display().to_string(),
            "hits": revstate::hits_json(&hits),
            "files": files.len(),
            "chunks": chunks,
            "revocation": est.json(),
        }));
        return Err(f);
    }
    let human = format!("not revoked: {}\n  {checked}\n", args.model.display());
    let json = json!({
        "revoked": false,
        "model": args.model.display().to_string(),
        "hits": [],
        "files": files.len(),
        "chunks": chunks,
        "revocation": est.json(),
    });
    Ok(Report::new(human, json))
}
