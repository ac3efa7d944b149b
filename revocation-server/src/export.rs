//! `weightseal-server export DIR`: the whole publication as static files with the live
//! server's GET paths, so any static host or CDN can serve it.
//!
//! Written, in the C2SP tlog-tiles layout: `tile/entries/<N>` for every full entry bundle and
//! `tile/entries/<N>.p/<w>` for the partial last one, every hash tile `tile/<L>/<N>[.p/<w>]`
//! of the current size, `v1/lineage/{digest}` for every stored lineage document,
//! `v1/proof/consistency/{old}/{size}` for every `old` below the size that
//! is a multiple of 256 and for the 256 sizes just below it, then `checkpoint` (with the
//! witnesses' cosignatures), `v1/snapshot` and last `v1/publication`.
//! Every file is written to a temporary name, synced and renamed, so a host serving the folder
//! while it is re-exported never shows a half-written file, and the snapshot (what clients
//! read first) is replaced only once everything it points to is there.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use weightseal_log::tile::hash_tiles;
use weightseal_verifier::revocation::tile::{
    consistency_proof_path, tiles_covering, CHECKPOINT_PATH, PUBLICATION_PATH, SNAPSHOT_PATH,
};

use crate::log::{Log, LogError, ProofAnswer, TILE_WIDTH};
use weightseal_verifier::revocation::lineage::lineage_path;
use weightseal_verifier::Digest;

/// Why the export failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExportError {
    /// Writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// Reading the log failed.
    #[error(transparent)]
    Log(#[from] LogError),
}

/// What was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportSummary {
    /// Tree size of the exported publication.
    pub size: u64,
    /// Snapshot version.
    pub version: u64,
    /// Every file written, as the URL path without the leading `/` (e.g. `checkpoint`).
    pub paths: Vec<String>,
}

/// The `old` sizes a consistency proof to `size` is exported for.
pub fn consistency_sizes(size: u64) -> BTreeSet<u64> {
    let mut olds: BTreeSet<u64> = (0..size).step_by(TILE_WIDTH as usize).collect();
    olds.extend(size.saturating_sub(TILE_WIDTH)..size);
    olds
}

fn write_atomic(root: &Path, rel: &str, bytes: &[u8]) -> Result<(), ExportError> {
    let path = root.join(rel);
    let io = |source| ExportError::Io {
        path: path.clone(),
        source,
    };
    std::fs::create_dir_all(path.parent().unwrap_or(root)).map_err(io)?;
    weightseal_verifier::atomic::write_file(&path, bytes).map_err(io)
}

/// Writes the log's current publication into `dir`.
pub async fn export(log: &Log, dir: &Path) -> Result<ExportSummary, ExportError> {
    let published = log.published();
    let size = published.size;
    let mut paths = Vec::new();
    let mut put = |rel: String, bytes: &[u8]| -> Result<(), ExportError> {
        write_atomic(dir, &rel, bytes)?;
        paths.push(rel);
        Ok(())
    };
    for tile in tiles_covering(0, size) {
        let bytes = log
            .tile(tile.index, tile.width)
            .await?
            .ok_or_else(|| LogError::Inconsistent(format!("tile {} is missing", tile.path())))?;
        put(tile.path(), &bytes)?;
    }
    for tile in hash_tiles(size) {
        let bytes = log
            .hash_tile(tile)?
            .ok_or_else(|| LogError::Inconsistent(format!("hash tile {} is missing", tile.path())))?;
        put(tile.path(), &bytes)?;
    }
    // Lineage documents before the notes that publish the entries naming them: a reader that
    // sees a new publication finds every document it needs.
    for digest in log.store().lineage_digests().await.map_err(LogError::from)? {
        let doc = log
            .store()
            .lineage(&digest)
            .await
            .map_err(LogError::from)?
            .ok_or_else(|| LogError::Inconsistent(format!("lineage document {} vanished", hex::encode(digest))))?;
        put(lineage_path(&Digest::from_bytes(digest)), &doc)?;
    }
    for old in consistency_sizes(size) {
        match log.consistency_proof(old, size)? {
            ProofAnswer::Proof(doc) => put(consistency_proof_path(old, size), &doc)?,
            other => {
                return Err(LogError::Inconsistent(format!("no consistency proof {old}..{size}: {other:?}")).into());
            }
        }
    }
    put(CHECKPOINT_PATH.to_owned(), &published.checkpoint)?;
    put(SNAPSHOT_PATH.to_owned(), &published.snapshot)?;
    // Last: the one document readers use first, replaced atomically like every file here, so a
    // reader of a re-export in progress gets either the old pair or the new pair.
    put(PUBLICATION_PATH.to_owned(), &published.publication)?;
    Ok(ExportSummary {
        size,
        version: published.version,
        paths,
    })
}
