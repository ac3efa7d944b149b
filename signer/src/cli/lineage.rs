//! `weightseal fingerprint MODEL --out FILE` and `weightseal lineage SUSPECT --base BASE
//! [--fork FORK]` (spec/fingerprint.md). Parsing and printing only: the sampling and the
//! scores are the verifier's.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use serde_json::{json, Value};
use weightseal_verifier::fingerprint::lineage::{
    derived_from, derived_from_fork, ForkDelta, LineageReport, Thresholds,
};
use weightseal_verifier::fingerprint::{self, Fingerprint};

use super::{exit, Ctx, Failure, Outcome, Report};

#[derive(Debug, Clone, Args)]
#[command(after_help = "\
MODEL is a folder (every .safetensors and .gguf file in it) or one weight file. The fingerprint
is a bounded sample of each tensor's values, at places fixed by the tensor's shape; only
those bytes are read. Exit status: 0 written; 2 the model or the output could not be used.")]
pub struct FingerprintArgs {
    /// Model folder or weight file.
    pub model: PathBuf,
    /// Where to write the fingerprint file.
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Debug, Clone, Args)]
#[command(after_help = "\
Each of SUSPECT, BASE and FORK is a model (folder or weight file) or a fingerprint file made
by `weightseal fingerprint`. Without --fork: is SUSPECT derived from BASE? With --fork: does
SUSPECT carry FORK's change from BASE, as opposed to being some other derivative of BASE?
Tensors are matched by content, not by name.

Exit status: 0 derived; 1 not derived; 2 could not run (unreadable or malformed input).")]
pub struct LineageArgs {
    /// The model under test.
    pub suspect: PathBuf,
    /// The base model.
    #[arg(long)]
    pub base: PathBuf,
    /// A fork of BASE: test for descent from it rather than from BASE.
    #[arg(long)]
    pub fork: Option<PathBuf>,
}

fn load(path: &Path, what: &str) -> Result<Fingerprint, Failure> {
    fingerprint::load(path)
        .with_context(|| format!("cannot fingerprint {what} {}", path.display()))
        .map_err(|e| {
            Failure::usage(e)
                .hint("give a model folder, a .safetensors or .gguf file, or a file from `weightseal fingerprint`")
        })
}

pub fn run_fingerprint(args: &FingerprintArgs, _ctx: Ctx) -> Outcome {
    let fp = load(&args.model, "model")?;
    let bytes = fp
        .to_bytes()
        .context("cannot encode the fingerprint")
        .map_err(Failure::usage)?;
    std::fs::write(&args.out, &bytes)
        .with_context(|| format!("cannot write {}", args.out.display()))
        .map_err(Failure::usage)?;
    Ok(Report {
        human: format!(
            "fingerprint of {} tensors written to {} ({} bytes)\n",
            fp.tensors.len(),
            args.out.display(),
            bytes.len()
        ),
        json: json!({"tensors": fp.tensors.len(), "out": args.out.display().to_string(), "bytes": bytes.len()}),
        code: exit::OK,
    })
}

pub fn run_lineage(args: &LineageArgs, _ctx: Ctx) -> Outcome {
    let suspect = load(&args.suspect, "suspect")?;
    let base = load(&args.base, "base")?;
    let t = Thresholds::default();
    let report = match &args.fork {
        None => derived_from(&suspect, &base, t),
        Some(fork) => {
            let fork = load(fork, "fork")?;
            derived_from_fork(&suspect, &ForkDelta::new(&base, &fork), t)
        }
    };
    Ok(Report {
        human: human(&report, args.fork.is_some()),
        json: to_json(&report),
        code: if report.derived { exit::OK } else { exit::REFUSED },
    })
}

fn to_json(r: &LineageReport) -> Value {
    json!({
        "derived": r.derived,
        "score": r.score,
        "threshold": r.threshold,
        "base_score": r.base_score,
        "pooled_values": r.pooled_values,
        "requantized_blocks": r.requantized_blocks,
        "reproduced_blocks": r.reproduced_blocks,
        "tensors": r.tensors.iter().map(|t| json!({
            "tensor": t.tensor,
            "matched": t.matched,
            "similarity": t.similarity,
            "relative_change": t.relative_change,
            "rows_permuted": t.rows_permuted,
            "fork_alignment": t.fork_alignment,
        })).collect::<Vec<_>>(),
    })
}

fn human(r: &LineageReport, fork: bool) -> String {
    let mut out = String::new();
    let what = if fork {
        "derived from the fork"
    } else {
        "derived from the base"
    };
    out.push_str(&format!(
        "{}: score {:.4} (threshold {:.4})",
        if r.derived {
            what.to_string()
        } else {
            format!("not {what}")
        },
        r.score,
        r.threshold
    ));
    if fork {
        out.push_str(&format!(
            "; base score {:.4}; {} sampled values pooled",
            r.base_score, r.pooled_values
        ));
        if r.requantized_blocks > 0 {
            // Only a Q4_0 or Q8_0 suspect is re-quantized (spec/fingerprint.md §5).
            out.push_str(&format!(
                "; {} of {} re-quantized blocks reproduced exactly",
                r.reproduced_blocks, r.requantized_blocks
            ));
        }
    }
    out.push('\n');
    for t in &r.tensors {
        let matched = t.matched.as_deref().unwrap_or("(no match)");
        out.push_str(&format!(
            "  {} -> {}  similarity {:.4}  change {:.4}{}{}\n",
            t.tensor,
            matched,
            t.similarity,
            t.relative_change,
            if t.rows_permuted { "  rows permuted" } else { "" },
            t.fork_alignment
                .map(|a| format!("  fork alignment {a:.4}"))
                .unwrap_or_default()
        ));
    }
    out
}
