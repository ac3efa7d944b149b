//! Comparing two models by tensor content (what a hub runs on an upload).
//!
//! Tensors are matched by name and compared by digest wherever they are stored, so a
//! re-sharded copy shows no change. Raw files have no tensors and are compared by path.
//! Header chunks are containers (offsets, shard layout) and are not compared.

use std::collections::BTreeMap;

use crate::digest::Digest;
use crate::manifest::{FileEntry, FileKind};

/// Differences between two sets of tensors or files.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DiffLists {
    /// Same name, same digest.
    pub unchanged: Vec<String>,
    /// Same name, different digest.
    pub changed: Vec<String>,
    /// Only in B.
    pub added: Vec<String>,
    /// Only in A.
    pub removed: Vec<String>,
    /// Bytes (in B) of unchanged entries.
    pub unchanged_bytes: u64,
    /// Bytes (in B) of changed entries.
    pub changed_bytes: u64,
    /// Bytes of added entries.
    pub added_bytes: u64,
    /// Bytes (in A) of removed entries.
    pub removed_bytes: u64,
}

/// A tensor diff plus a raw-file diff.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ModelDiff {
    /// Tensors, by name.
    pub tensors: DiffLists,
    /// Raw files, by path.
    pub raw_files: DiffLists,
}

impl ModelDiff {
    /// Whether nothing differs.
    pub fn is_identical(&self) -> bool {
        let same = |d: &DiffLists| d.changed.is_empty() && d.added.is_empty() && d.removed.is_empty();
        same(&self.tensors) && same(&self.raw_files)
    }
}

/// name → (digests of every chunk with that name, total bytes). Several entries under
/// one name (a tensor repeated across files) are compared as a list.
type Index = BTreeMap<String, (Vec<Digest>, u64)>;

fn index(files: &[FileEntry]) -> (Index, Index) {
    let mut tensors: Index = BTreeMap::new();
    let mut raw: Index = BTreeMap::new();
    for f in files {
        if f.kind == FileKind::Raw {
            raw.insert(f.path.clone(), (vec![f.digest], f.size));
            continue;
        }
        for c in f.tensors() {
            let e = tensors
                .entry(c.tensor_name().unwrap_or_default().to_string())
                .or_default();
            e.0.push(c.digest);
            e.1 += c.len;
        }
    }
    for v in tensors.values_mut() {
        v.0.sort();
    }
    (tensors, raw)
}

fn compare(a: &Index, b: &Index) -> DiffLists {
    let mut d = DiffLists::default();
    for (name, (da, la)) in a {
        match b.get(name) {
            None => {
                d.removed.push(name.clone());
                d.removed_bytes += la;
            }
            Some((db, lb)) if db == da => {
                d.unchanged.push(name.clone());
                d.unchanged_bytes += lb;
            }
            Some((_, lb)) => {
                d.changed.push(name.clone());
                d.changed_bytes += lb;
            }
        }
    }
    for (name, (_, lb)) in b {
        if !a.contains_key(name) {
            d.added.push(name.clone());
            d.added_bytes += lb;
        }
    }
    d
}

/// Compares the files of model A with those of model B.
pub fn diff_files(a: &[FileEntry], b: &[FileEntry]) -> ModelDiff {
    let (ta, ra) = index(a);
    let (tb, rb) = index(b);
    ModelDiff {
        tensors: compare(&ta, &tb),
        raw_files: compare(&ra, &rb),
    }
}
