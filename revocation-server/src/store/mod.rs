//! Storage behind one trait, with two backends that pass the same tests: SQLite (one file,
//! the default) and PostgreSQL (several replicas sharing one store).
//!
//! Tables: `entries(idx, leaf_hash UNIQUE, body, received_at)` holds the log leaves in order
//! (idx = 0, 1, 2, … with no gaps); `lineage(digest PRIMARY KEY, body)` holds the lineage
//! documents `lineage` entries name, written in the same transaction as those entries; `snapshots(version, size, root, issued, expires,
//! checkpoint, body)` holds every signed checkpoint + snapshot pair, the latest row being the
//! current publication. Every write goes through [`Store::commit`], which runs one transaction
//! serialized with every other writer of the store (SQLite: `BEGIN IMMEDIATE`; PostgreSQL:
//! `pg_advisory_xact_lock`): it checks for replays, appends the entries of one submission at
//! indexes count, count + 1, …, gives the caller the leaves (and bodies) it has not seen yet
//! plus the next snapshot version, and stores the checkpoint and snapshot the caller signs
//! over them; the caller may refuse inside the transaction (the revoked-key rule), which rolls
//! everything back. An entry is therefore never acknowledged without a signed checkpoint
//! covering it, a batch is appended all or nothing under one snapshot version, snapshot
//! versions and sizes only grow, and replicas interleave into one log.

pub mod pg_tls;
mod postgres;
mod sqlite;

use std::fmt;
use std::sync::Arc;

pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

use crate::config::DatabaseUrl;
use weightseal_verifier::revocation::policy::PolicyViolation;

/// A 32-byte hash.
pub type Hash = [u8; 32];

/// Why a store operation failed. Internal: never shown to clients.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database failed (connection, I/O, SQL).
    #[error("database: {0}")]
    Backend(String),
    /// The stored data is inconsistent (gaps, wrong lengths, a log smaller than this replica's).
    #[error("stored log is inconsistent: {0}")]
    Corrupt(String),
    /// The caller's sealing step failed; the transaction was rolled back.
    #[error("cannot seal: {0}")]
    Seal(String),
    /// The connection string's TLS settings cannot be used (nothing was connected).
    #[error("PostgreSQL TLS settings of {url}: {problem}")]
    Tls {
        /// The connection string, password redacted.
        url: String,
        /// What is wrong with them.
        problem: pg_tls::PgTlsError,
    },
}

impl StoreError {
    pub(crate) fn backend(e: impl fmt::Display) -> Self {
        Self::Backend(e.to_string())
    }
}

/// A new log leaf.
#[derive(Debug, Clone)]
pub struct NewEntry {
    /// RFC 6962 leaf hash of `body`.
    pub leaf_hash: Hash,
    /// The exact signed-entry bytes.
    pub body: Vec<u8>,
    /// When the server received it (unix seconds).
    pub received_at: i64,
}

/// A stored checkpoint + snapshot pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotRecord {
    /// Snapshot version (global, strictly increasing).
    pub version: u64,
    /// Tree size both notes commit to.
    pub size: u64,
    /// Tree root at `size`.
    pub root: Hash,
    /// Issue time (unix seconds).
    pub issued: u64,
    /// Expiry (unix seconds).
    pub expires: u64,
    /// The signed checkpoint note.
    pub checkpoint: String,
    /// The signed snapshot note.
    pub snapshot: String,
}

/// What [`Store::commit`] hands to the sealing step, inside the transaction.
#[derive(Debug, Clone)]
pub struct SealInput {
    /// The caller's known size (the first index of `leaves`).
    pub start: u64,
    /// Leaf hashes at `start..start + leaves.len()`: the entries other writers appended since,
    /// then the new entries, if any. `start + leaves.len()` is the new tree size.
    pub leaves: Vec<Hash>,
    /// The signed-entry bytes of the entries other writers appended since `start` (the first
    /// `others.len()` of `leaves`), for rules that depend on what the log holds.
    pub others: Vec<Vec<u8>>,
    /// The version the new snapshot must carry.
    pub version: u64,
}

/// Why the sealing step did not seal.
#[derive(Debug, Clone)]
pub enum SealError {
    /// A new entry breaks a rule that depends on the log (a revoked issuer key): the
    /// submission is refused and nothing is written.
    Refused(PolicyViolation),
    /// Signing or the caller's state failed.
    Failed(String),
}

/// The sealing step: checks the new entries against the log, updates the caller's tree and
/// signs the checkpoint and snapshot for the new size. Called at most once, inside the
/// transaction; an error rolls it back.
pub type SealFn = Box<dyn FnOnce(SealInput) -> Result<SnapshotRecord, SealError> + Send>;

/// What [`Store::commit`] did.
#[derive(Debug, Clone)]
pub enum CommitOutcome {
    /// The transaction committed: the entries (if any) got `index`, `index + 1`, …, and
    /// `record` is the new publication.
    Sealed {
        /// The first new entry's index.
        index: Option<u64>,
        /// The stored checkpoint + snapshot.
        record: SnapshotRecord,
    },
    /// An entry was already in the log at `index`; nothing was written and the seal step was
    /// not called.
    Duplicate {
        /// Where it is.
        index: u64,
    },
    /// The seal step refused an entry; nothing was written.
    Refused(PolicyViolation),
}

/// A log store. Both backends implement exactly these semantics.
#[async_trait::async_trait]
pub trait Store: Send + Sync + fmt::Debug {
    /// Where the store is (no secrets), for logs.
    fn describe(&self) -> String;

    /// The number of entries.
    async fn count(&self) -> Result<u64, StoreError>;

    /// Leaf hashes of entries `start..min(end, count)`, in order.
    async fn leaf_hashes(&self, start: u64, end: u64) -> Result<Vec<Hash>, StoreError>;

    /// Signed-entry bytes of entries `start..min(end, count)`, in order.
    async fn bodies(&self, start: u64, end: u64) -> Result<Vec<Vec<u8>>, StoreError>;

    /// The index of the entry with this leaf hash.
    async fn find_leaf(&self, leaf_hash: &Hash) -> Result<Option<u64>, StoreError>;

    /// The latest checkpoint + snapshot.
    async fn latest_snapshot(&self) -> Result<Option<SnapshotRecord>, StoreError>;

    /// Replaces the checkpoint note of snapshot `version` by `checkpoint`: the same note with
    /// witness cosignatures added. The caller checks that the log's signature and body are
    /// unchanged; the store only refuses a version it does not hold.
    async fn set_checkpoint(&self, version: u64, checkpoint: String) -> Result<(), StoreError>;

    /// One serialized write transaction: replay check of every entry, append `entries` (none,
    /// or one submission) at indexes count, count + 1, …, then `seal` over the leaves from
    /// `known` to the new count with the next snapshot version, store its record, commit. All
    /// or nothing. Fails with [`StoreError::Corrupt`] if the store holds fewer than `known`
    /// entries.
    async fn commit(&self, entries: Vec<NewEntry>, known: u64, seal: SealFn) -> Result<CommitOutcome, StoreError> {
        self.commit_with_lineage(entries, Vec::new(), known, seal).await
    }

    /// [`Store::commit`], also storing `lineage` documents (digest, bytes; already checked)
    /// in the same transaction: a document is stored exactly when an entry naming it is
    /// appended. A document already stored is kept as it is (same digest, same bytes).
    async fn commit_with_lineage(
        &self,
        entries: Vec<NewEntry>,
        lineage: Vec<(Hash, Vec<u8>)>,
        known: u64,
        seal: SealFn,
    ) -> Result<CommitOutcome, StoreError>;

    /// The stored lineage document with this digest.
    async fn lineage(&self, digest: &Hash) -> Result<Option<Vec<u8>>, StoreError>;

    /// Every stored lineage document's digest, in byte order.
    async fn lineage_digests(&self) -> Result<Vec<Hash>, StoreError>;
}

/// Opens (and creates the tables of) the store at `url`.
pub async fn open_store(url: &DatabaseUrl) -> Result<Arc<dyn Store>, StoreError> {
    Ok(match url {
        DatabaseUrl::Sqlite(path) => Arc::new(SqliteStore::open(path).await?),
        DatabaseUrl::Postgres(conn) => Arc::new(PostgresStore::connect(conn).await?),
    })
}

pub(crate) fn to_u64(v: i64, what: &str) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| StoreError::Corrupt(format!("negative {what}: {v}")))
}

pub(crate) fn to_i64(v: u64) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| StoreError::Corrupt(format!("{v} does not fit the database")))
}

pub(crate) fn to_hash(bytes: &[u8], idx: u64) -> Result<Hash, StoreError> {
    Hash::try_from(bytes).map_err(|_| StoreError::Corrupt(format!("entry {idx}: leaf hash is {} bytes", bytes.len())))
}

/// Checks that rows came back as `start, start + 1, …`.
pub(crate) fn check_contiguous(idx: u64, expected: u64) -> Result<(), StoreError> {
    if idx == expected {
        Ok(())
    } else {
        Err(StoreError::Corrupt(format!("expected entry {expected}, found {idx}")))
    }
}
