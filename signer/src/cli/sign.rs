//! `weightseal sign MODEL --key KEY ...`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::anyhow;
use clap::{Args, ValueEnum};
use serde_json::json;
use weightseal_signer::keys::public_key_of;
use weightseal_signer::{
    build_manifest, resolve_parent, sign_manifest_bytes, write_signature_file, ManifestOptions, SignError,
};
use weightseal_verifier::{Manifest, Parent, ReadMode, Relation, SignatureFile, Verifier};

use super::common::{load_signing_key, signature_path};
use super::output::{self, bytes, plural};
use super::{Ctx, Failure, Outcome, Report};

/// How a model relates to a parent release.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RelationArg {
    /// Further training of the parent's weights.
    Finetune,
    /// A lower-precision copy of the parent.
    Quantized,
    /// Weights combined from several parents.
    Merge,
    /// An adapter (LoRA and the like) applied to the parent.
    Adapter,
    /// Anything else.
    Other,
}

impl From<RelationArg> for Relation {
    fn from(r: RelationArg) -> Relation {
        match r {
            RelationArg::Finetune => Relation::Finetune,
            RelationArg::Quantized => Relation::Quantized,
            RelationArg::Merge => Relation::Merge,
            RelationArg::Adapter => Relation::Adapter,
            RelationArg::Other => Relation::Other,
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct SignArgs {
    /// The model: a folder (every file in it, minus ignored ones) or a single weight file.
    pub model: PathBuf,
    /// The private key (written by `weightseal keygen --out KEY`; must be mode 0600).
    #[arg(long, value_name = "KEY")]
    pub key: PathBuf,
    /// Where to write the signature file [default: MODEL/weightseal.sig for a folder,
    /// MODEL.weightseal.sig for a single file]. An existing file there is replaced.
    #[arg(long, value_name = "SIG")]
    pub signature: Option<PathBuf>,
    /// A human name for the model, recorded in the manifest.
    #[arg(long, value_name = "N")]
    pub name: Option<String>,
    /// A parent release: its signature file, or its 64-hex-digit manifest digest.
    /// Pairs in order with --relation; repeat both for several parents.
    #[arg(long, value_name = "SIG_OR_DIGEST", requires = "relation")]
    pub parent: Vec<String>,
    /// How this model relates to the --parent given at the same position.
    #[arg(long, value_enum, value_name = "R", requires = "parent")]
    pub relation: Vec<RelationArg>,
    /// A path pattern (`*`, `?`, `**`; a trailing `/` matches folders only) of files to
    /// leave out of a folder's manifest. Repeatable. Giving any --ignore REPLACES the
    /// default rules (.git/ .hg/ .svn/ .cache/ __pycache__/ .DS_Store): repeat those you
    /// still want. The rules are signed, so verifiers skip exactly the same files.
    #[arg(long = "ignore", value_name = "GLOB")]
    pub ignore: Vec<String>,
    /// A free-form annotation recorded in the manifest (KEY=VALUE). Repeatable.
    #[arg(long = "annotation", value_name = "K=V", value_parser = parse_annotation)]
    pub annotations: Vec<(String, String)>,
    /// Chunk size for raw (non-weight) files, in bytes; K, M, G suffixes are powers of
    /// 1024 [default: 8M].
    #[arg(long, value_name = "BYTES", value_parser = parse_size)]
    pub raw_chunk_size: Option<u64>,
    /// Read files with pread only, never memory-mapped (for network filesystems, where a
    /// file truncated while mapped kills the reader with SIGBUS). Slower on large files.
    #[arg(long)]
    pub no_mmap: bool,
}

fn parse_annotation(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("{s:?} is not KEY=VALUE")),
    }
}

/// `4096`, `64K`, `8M`, `1G` (powers of 1024). Zero is refused.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let (digits, shift) = match t.char_indices().last() {
        Some((i, 'k' | 'K')) => (&t[..i], 10),
        Some((i, 'm' | 'M')) => (&t[..i], 20),
        Some((i, 'g' | 'G')) => (&t[..i], 30),
        _ => (t, 0),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{s:?} is not a size in bytes (e.g. 4096, 64K, 8M)"))?;
    let value = n
        .checked_mul(1u64 << shift)
        .ok_or_else(|| format!("{s:?} is too large"))?;
    if value == 0 {
        return Err("the chunk size must be above zero".into());
    }
    Ok(value)
}

/// Counts for reports: files, tensors, bytes.
pub fn manifest_counts(m: &Manifest) -> (usize, usize, u64) {
    let tensors = m.files.iter().map(|f| f.tensors().count()).sum();
    (m.files.len(), tensors, m.total_size())
}

pub fn run(args: &SignArgs, ctx: Ctx) -> Outcome {
    if args.parent.len() != args.relation.len() {
        return Err(Failure::usage(anyhow!(
            "--parent and --relation pair up in order, but {} --parent and {} --relation were given",
            args.parent.len(),
            args.relation.len()
        ))
        .hint("give one --relation (finetune, quantized, merge, adapter, other) per --parent"));
    }
    let is_dir = std::fs::symlink_metadata(&args.model)
        .map(|m| m.is_dir())
        .unwrap_or(false);
    if !args.ignore.is_empty() && !is_dir {
        return Err(Failure::usage(anyhow!(
            "--ignore applies to folders, and {} is not a folder",
            args.model.display()
        )));
    }
    let key = load_signing_key(&args.key)?;
    let mut parents = Vec::new();
    for (given, relation) in args.parent.iter().zip(&args.relation) {
        let digest = resolve_parent(given).map_err(Failure::usage)?;
        parents.push(Parent {
            digest,
            relation: (*relation).into(),
        });
    }
    let mut annotations = BTreeMap::new();
    for (k, v) in &args.annotations {
        if annotations.insert(k.clone(), v.clone()).is_some() {
            return Err(Failure::usage(anyhow!("--annotation {k} is given twice")));
        }
    }
    let sig_path = signature_path(&args.model, args.signature.as_deref());

    let manifest = output::with_progress(ctx.progress, "hashing", None, |progress| {
        build_manifest(
            &args.model,
            &sig_path,
            &ManifestOptions {
                name: args.name.clone(),
                parents: parents.clone(),
                ignore: (!args.ignore.is_empty()).then(|| args.ignore.clone()),
                annotations,
                raw_chunk_size: args.raw_chunk_size,
                created: None,
                progress,
                read_mode: if args.no_mmap { ReadMode::NoMmap } else { ReadMode::Auto },
            },
        )
    })
    .map_err(sign_failure)?;
    let manifest_bytes = manifest.to_bytes().map_err(|e| sign_failure(e.into()))?;
    let mut sig = SignatureFile::unsigned(manifest_bytes);
    sig.add_signature(sign_manifest_bytes(sig.manifest_bytes(), &key));
    note_replaced(&sig_path);
    write_signature_file(&sig_path, &sig).map_err(sign_failure)?;

    let digest = sig.manifest_digest().to_hex();
    let key_id = public_key_of(&key).id().to_hex();
    let (files, tensors, total) = manifest_counts(&manifest);
    let mut human = format!("signed {}\n", args.model.display());
    if let Some(name) = &manifest.name {
        human += &format!("  name:            {name}\n");
    }
    human += &format!("  manifest digest: {digest}\n");
    human += &format!(
        "  files:           {} ({}), {}\n",
        files,
        plural(tensors, "tensor", "tensors"),
        bytes(total)
    );
    human += &format!("  signed by:       {key_id}\n");
    for p in &manifest.parents {
        human += &format!("  parent:          {} ({})\n", p.digest, p.relation);
    }
    human += &format!("  signature:       {}\n", sig_path.display());
    let json = json!({
        "model": args.model.display().to_string(),
        "signature": sig_path.display().to_string(),
        "name": manifest.name,
        "manifest_digest": digest,
        "key_id": key_id,
        "files": files,
        "tensors": tensors,
        "bytes": total,
        "parents": manifest.parents.iter().map(|p| json!({
            "digest": p.digest.to_hex(),
            "relation": p.relation.as_str(),
        })).collect::<Vec<_>>(),
    });
    Ok(Report::new(human, json))
}

fn sign_failure(e: SignError) -> Failure {
    let hint = match &e {
        SignError::IgnoreRule(_) => Some("ignore rules support only * ? and **, and a trailing / for folders".into()),
        _ => None,
    };
    let code = match &e {
        SignError::IgnoreRule(_) | SignError::BadParent { .. } => super::exit::USAGE,
        _ => super::exit::REFUSED,
    };
    Failure::with_code(code, anyhow::Error::new(e).context("cannot sign")).maybe_hint(hint)
}

/// Says so on stderr when signing replaces an existing signature file.
fn note_replaced(sig_path: &Path) {
    if std::fs::symlink_metadata(sig_path).is_err() {
        return;
    }
    match Verifier::read_signature_file(sig_path) {
        Ok(old) => output::print_note(&format!(
            "replacing {} (it held {}; use `weightseal cosign` to add a signature instead)",
            sig_path.display(),
            plural(old.signatures().len(), "signature", "signatures")
        )),
        Err(_) => output::print_note(&format!("replacing {}", sig_path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("64K"), Ok(64 << 10));
        assert_eq!(parse_size("8m"), Ok(8 << 20));
        assert!(parse_size("0").is_err());
        assert!(parse_size("x").is_err());
        assert!(parse_size("99999999999999G").is_err());
    }

    #[test]
    fn annotations() {
        assert_eq!(parse_annotation("a=b=c"), Ok(("a".into(), "b=c".into())));
        assert!(parse_annotation("=b").is_err());
        assert!(parse_annotation("ab").is_err());
    }
}
