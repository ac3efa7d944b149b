//! `weightseal diff A B`: compare two models by tensor content.

use std::path::{Path, PathBuf};

use anyhow::anyhow;
use clap::Args;
use serde_json::{json, Value};
use weightseal_verifier::diff::{diff_files, DiffLists, ModelDiff};
use weightseal_verifier::format::kind_for_path;
use weightseal_verifier::scan::{scan_file, scan_folder, ScanOptions};
use weightseal_verifier::walk::{IgnoreRules, DEFAULT_SIGNATURE_NAME};
use weightseal_verifier::{FileEntry, FileKind, Verifier};

use super::output::{self, bytes, plural};
use super::{exit, Ctx, Failure, Outcome, Report};

#[derive(Debug, Clone, Args)]
#[command(after_help = "\
Each side is a signature file (its manifest is used as it is: no hashing, and its signatures
are NOT checked), a model folder (hashed with the default ignore rules, leaving out its
weightseal.sig) or a single weight file. Tensors are matched by name and compared by content
wherever they are stored, so a re-sharded copy shows no change; other files are compared by
path.

Exit status: 0 identical; 1 the models differ; 2 error (a side cannot be read, bad arguments).")]
pub struct DiffArgs {
    /// Model A: signature file, folder or weight file.
    pub a: PathBuf,
    /// Model B: signature file, folder or weight file.
    pub b: PathBuf,
}

/// What a side turned out to be.
#[derive(Debug, Clone, Copy)]
enum SideKind {
    SignatureFile,
    Folder,
    File,
}

impl SideKind {
    fn as_str(self) -> &'static str {
        match self {
            SideKind::SignatureFile => "signature file",
            SideKind::Folder => "folder",
            SideKind::File => "file",
        }
    }
}

fn is_signature_name(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n == DEFAULT_SIGNATURE_NAME || n.ends_with(".sig"))
}

/// Reads one side into manifest entries.
fn load(path: &Path, ctx: Ctx) -> Result<(SideKind, Vec<FileEntry>), Failure> {
    let cannot = |e: anyhow::Error| Failure::usage(e.context(format!("cannot read {}", path.display())));
    let meta = std::fs::symlink_metadata(path).map_err(|e| cannot(e.into()))?;
    if meta.is_dir() {
        let exclude = [path.join(DEFAULT_SIGNATURE_NAME)];
        let files = output::with_progress(ctx.progress, "hashing", None, |p| {
            scan_folder(
                path,
                &IgnoreRules::defaults(),
                &exclude,
                ScanOptions {
                    progress: p,
                    ..ScanOptions::default()
                },
            )
        })
        .map_err(|e| cannot(e.into()))?;
        return Ok((SideKind::Folder, files));
    }
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| cannot(anyhow!("the file name is not valid UTF-8")))?;
    let weight_file = matches!(kind_for_path(name), FileKind::Safetensors | FileKind::Gguf);
    if !weight_file {
        match Verifier::read_signature_file(path) {
            Ok(sig) => {
                let manifest = sig.manifest().map_err(|e| cannot(e.into()))?;
                return Ok((SideKind::SignatureFile, manifest.files));
            }
            // A name that says "signature" must be one.
            Err(e) if is_signature_name(path) => return Err(cannot(e.into())),
            Err(_) => {}
        }
    }
    let file = output::with_progress(ctx.progress, "hashing", Some(meta.len()), |p| {
        scan_file(
            path,
            name,
            ScanOptions {
                progress: p,
                ..ScanOptions::default()
            },
        )
    })
    .map_err(|e| cannot(e.into()))?;
    Ok((SideKind::File, vec![file]))
}

fn lists_json(d: &DiffLists) -> Value {
    json!({
        "unchanged": d.unchanged,
        "changed": d.changed,
        "added": d.added,
        "removed": d.removed,
        "unchanged_bytes": d.unchanged_bytes,
        "changed_bytes": d.changed_bytes,
        "added_bytes": d.added_bytes,
        "removed_bytes": d.removed_bytes,
    })
}

/// The stable JSON shape: tensor lists at the top, raw files under `raw_files`.
pub fn diff_json(d: &ModelDiff) -> Value {
    let mut v = lists_json(&d.tensors);
    if let Some(obj) = v.as_object_mut() {
        obj.insert("raw_files".into(), lists_json(&d.raw_files));
        obj.insert("identical".into(), Value::Bool(d.is_identical()));
    }
    v
}

fn lists_human(what: &str, d: &DiffLists) -> String {
    let mut h = format!(
        "{what}: {} unchanged, {} changed, {} added, {} removed\n",
        d.unchanged.len(),
        d.changed.len(),
        d.added.len(),
        d.removed.len()
    );
    for (label, names, size) in [
        ("changed", &d.changed, d.changed_bytes),
        ("added", &d.added, d.added_bytes),
        ("removed", &d.removed, d.removed_bytes),
    ] {
        if names.is_empty() {
            continue;
        }
        h += &format!("  {label}, {}:\n", bytes(size));
        for n in names {
            h += &format!("    {n}\n");
        }
    }
    h
}

/// The human report for a diff.
pub fn diff_human(d: &ModelDiff) -> String {
    let mut h = lists_human("tensors", &d.tensors);
    h += &lists_human("other files", &d.raw_files);
    h += if d.is_identical() {
        "identical: same tensors, same other files\n"
    } else {
        "the models differ\n"
    };
    h
}

pub fn run(args: &DiffArgs, ctx: Ctx) -> Outcome {
    let (kind_a, a) = load(&args.a, ctx)?;
    let (kind_b, b) = load(&args.b, ctx)?;
    let d = diff_files(&a, &b);
    let describe = |label: &str, path: &Path, kind: SideKind, files: &[FileEntry]| {
        let tensors: usize = files.iter().map(|f| f.tensors().count()).sum();
        format!(
            "{label}: {} ({}: {}, {})\n",
            path.display(),
            kind.as_str(),
            plural(files.len(), "file", "files"),
            plural(tensors, "tensor", "tensors")
        )
    };
    let mut human = describe("A", &args.a, kind_a, &a);
    human += &describe("B", &args.b, kind_b, &b);
    human += &diff_human(&d);
    if matches!(kind_a, SideKind::SignatureFile) || matches!(kind_b, SideKind::SignatureFile) {
        human += "(signature files were read as they are: their signatures were not checked)\n";
    }
    let mut report = Report::new(human, diff_json(&d));
    if !d.is_identical() {
        report.code = exit::REFUSED;
    }
    Ok(report)
}
