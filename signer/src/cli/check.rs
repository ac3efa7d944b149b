//! `weightseal check MODEL --revocations SRC`: is an (unsigned) model revoked? Hashes every
//! file the same way signing does and looks up every file and chunk (tensor) digest.

use std::path::PathBuf;

use anyhow::anyhow;
use clap::Args;
use serde_json::json;
use weightseal_verifier::decision::check_content;

use super::output::{self, plural};
use super::revstate::{self, StateArgs};
use super::verify::decision_failure;
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

pub fn run(args: &CheckArgs, ctx: Ctx) -> Outcome {
    if !args.model.exists() {
        return Err(Failure::usage(anyhow!(
            "{}: no such file or folder",
            args.model.display()
        )));
    }
    let cfg = args.state.config(Some(&args.revocations))?;
    let total = if args.model.is_file() {
        std::fs::metadata(&args.model).ok().map(|m| m.len())
    } else {
        None
    };
    let checked = output::with_progress(ctx.progress, "hashing", total, |p| {
        check_content(&cfg, &args.model, None, p)
    });
    let checked = match checked {
        Ok(c) => c,
        Err(e) => {
            let mut f = decision_failure(&e, None);
            if let Some(hits) = e.revoked_hits() {
                f.json = Some(json!({
                    "revoked": true,
                    "model": args.model.display().to_string(),
                    "hits": revstate::hits_json(hits),
                }));
            }
            // `check` has no unsafe opt-out: only the sync hint.
            if e.kind() == weightseal_verifier::RefusalKind::StatusUnknown {
                f.hint = revstate::unknown_status_hint(&e, None);
            }
            return Err(f);
        }
    };
    revstate::warn_if_sync_failed(&checked.report, true);
    let files = &checked.files;
    let chunks: usize = files.iter().map(|f| f.chunks.len()).sum();
    let human = format!(
        "not revoked: {}\n  {} and {} checked against {}\n",
        args.model.display(),
        plural(files.len(), "file", "files"),
        plural(chunks, "chunk", "chunks"),
        revstate::describe(&checked.report)
    );
    let json = json!({
        "revoked": false,
        "model": args.model.display().to_string(),
        "hits": [],
        "files": files.len(),
        "chunks": chunks,
        "revocation": revstate::report_json(&checked.report, true),
    });
    Ok(Report::new(human, json))
}

/// Hashes a folder or a single file like `weightseal sign` (default ignore rules).
pub fn hash_model(model: &std::path::Path, progress: bool) -> Result<Vec<weightseal_verifier::FileEntry>, Failure> {
    use weightseal_verifier::scan::{scan_model, ScanOptions};
    if !model.exists() {
        return Err(Failure::usage(anyhow!("{}: no such file or folder", model.display())));
    }
    output::with_progress(progress, "hashing", None, |p| {
        scan_model(
            model,
            &weightseal_verifier::walk::IgnoreRules::defaults(),
            &[],
            ScanOptions {
                progress: p,
                ..ScanOptions::default()
            },
        )
    })
    .map_err(|e| Failure::refused(anyhow!("cannot hash {}: {e}", model.display())))
}
