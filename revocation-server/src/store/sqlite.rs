//! SQLite backend: one file, WAL journal, `synchronous=FULL` (an acknowledged submission
//! survives `kill -9` and power loss). One writer connection and one reader connection; every
//! call runs on the blocking thread pool.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rusqlite::{params, Connection, OpenFlags, OptionalExtension, TransactionBehavior};

use super::{
    check_contiguous, to_hash, to_i64, to_u64, CommitOutcome, Hash, NewEntry, SealError, SealFn, SealInput,
    SnapshotRecord, Store, StoreError,
};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS entries (
    idx INTEGER PRIMARY KEY,
    leaf_hash BLOB NOT NULL UNIQUE,
    body BLOB NOT NULL,
    received_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS lineage (
    digest BLOB PRIMARY KEY,
    body BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS snapshots (
    version INTEGER PRIMARY KEY,
    size INTEGER NOT NULL,
    root BLOB NOT NULL,
    issued INTEGER NOT NULL,
    expires INTEGER NOT NULL,
    checkpoint TEXT NOT NULL,
    body TEXT NOT NULL
);
";

/// The SQLite store.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    path: PathBuf,
    writer: Arc<Mutex<Connection>>,
    reader: Arc<Mutex<Connection>>,
}

fn connect(path: &Path) -> Result<Connection, StoreError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(StoreError::backend)?;
    conn.busy_timeout(std::time::Duration::from_secs(30))
        .map_err(StoreError::backend)?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
        .map_err(StoreError::backend)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Backend(format!(
            "cannot switch to WAL (journal_mode={mode})"
        )));
    }
    conn.execute_batch("PRAGMA synchronous=FULL;")
        .map_err(StoreError::backend)?;
    let synchronous: i64 = conn
        .query_row("PRAGMA synchronous", [], |r| r.get(0))
        .map_err(StoreError::backend)?;
    if synchronous != 2 {
        return Err(StoreError::Backend(format!(
            "cannot set synchronous=FULL (got {synchronous})"
        )));
    }
    Ok(conn)
}

impl SqliteStore {
    /// Opens the database file, creating it and its tables if needed.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        let path = path.to_path_buf();
        let p = path.clone();
        let (writer, reader) = tokio::task::spawn_blocking(move || -> Result<_, StoreError> {
            let writer = connect(&p)?;
            writer.execute_batch(SCHEMA).map_err(StoreError::backend)?;
            let reader = connect(&p)?;
            Ok((writer, reader))
        })
        .await
        .map_err(StoreError::backend)??;
        Ok(Self {
            path,
            writer: Arc::new(Mutex::new(writer)),
            reader: Arc::new(Mutex::new(reader)),
        })
    }

    async fn with<T: Send + 'static>(
        conn: &Arc<Mutex<Connection>>,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let conn = Arc::clone(conn);
        tokio::task::spawn_blocking(move || {
            let mut guard = conn
                .lock()
                .map_err(|_| StoreError::Backend("connection lock poisoned".to_owned()))?;
            f(&mut guard)
        })
        .await
        .map_err(StoreError::backend)?
    }

    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        Self::with(&self.reader, f).await
    }
}

fn count(conn: &Connection) -> Result<u64, StoreError> {
    let n: i64 = conn
        .query_row("SELECT COALESCE(MAX(idx) + 1, 0) FROM entries", [], |r| r.get(0))
        .map_err(StoreError::backend)?;
    to_u64(n, "entry count")
}

/// Reads one byte column of entries `[start, end)`, checking the indexes are contiguous.
/// `sql` is one of the fixed queries below (never built from input).
fn column_range(conn: &Connection, sql: &str, start: u64, end: u64) -> Result<Vec<Vec<u8>>, StoreError> {
    let mut stmt = conn.prepare_cached(sql).map_err(StoreError::backend)?;
    let mut rows = stmt
        .query(params![to_i64(start)?, to_i64(end)?])
        .map_err(StoreError::backend)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(StoreError::backend)? {
        let idx = to_u64(row.get(0).map_err(StoreError::backend)?, "index")?;
        check_contiguous(idx, start + out.len() as u64)?;
        out.push(row.get(1).map_err(StoreError::backend)?);
    }
    Ok(out)
}

const LEAF_HASHES_SQL: &str = "SELECT idx, leaf_hash FROM entries WHERE idx >= ?1 AND idx < ?2 ORDER BY idx";
const BODIES_SQL: &str = "SELECT idx, body FROM entries WHERE idx >= ?1 AND idx < ?2 ORDER BY idx";

fn leaf_hashes(conn: &Connection, start: u64, end: u64) -> Result<Vec<Hash>, StoreError> {
    column_range(conn, LEAF_HASHES_SQL, start, end)?
        .iter()
        .zip(start..)
        .map(|(bytes, idx)| to_hash(bytes, idx))
        .collect()
}

fn find_leaf(conn: &Connection, leaf_hash: &Hash) -> Result<Option<u64>, StoreError> {
    let idx: Option<i64> = conn
        .query_row(
            "SELECT idx FROM entries WHERE leaf_hash = ?1",
            params![&leaf_hash[..]],
            |r| r.get(0),
        )
        .optional()
        .map_err(StoreError::backend)?;
    idx.map(|i| to_u64(i, "index")).transpose()
}

fn latest_snapshot(conn: &Connection) -> Result<Option<SnapshotRecord>, StoreError> {
    type Row = (i64, i64, Vec<u8>, i64, i64, String, String);
    let row: Option<Row> = conn
        .query_row(
            "SELECT version, size, root, issued, expires, checkpoint, body FROM snapshots
             ORDER BY version DESC LIMIT 1",
            [],
            |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                ))
            },
        )
        .optional()
        .map_err(StoreError::backend)?;
    let Some((version, size, root, issued, expires, checkpoint, snapshot)) = row else {
        return Ok(None);
    };
    Ok(Some(SnapshotRecord {
        version: to_u64(version, "version")?,
        size: to_u64(size, "size")?,
        root: Hash::try_from(root.as_slice())
            .map_err(|_| StoreError::Corrupt(format!("snapshot {version}: root is {} bytes", root.len())))?,
        issued: to_u64(issued, "issued")?,
        expires: to_u64(expires, "expires")?,
        checkpoint,
        snapshot,
    }))
}

fn commit(
    conn: &mut Connection,
    entries: Vec<NewEntry>,
    lineage: Vec<(Hash, Vec<u8>)>,
    known: u64,
    seal: SealFn,
) -> Result<CommitOutcome, StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(StoreError::backend)?;
    for e in &entries {
        if let Some(index) = find_leaf(&tx, &e.leaf_hash)? {
            return Ok(CommitOutcome::Duplicate { index });
        }
    }
    let count = count(&tx)?;
    if count < known {
        return Err(StoreError::Corrupt(format!(
            "the store holds {count} entries but this server already holds {known}"
        )));
    }
    let mut leaves = leaf_hashes(&tx, known, count)?;
    if leaves.len() as u64 != count - known {
        return Err(StoreError::Corrupt(format!("entries {known}..{count} have gaps")));
    }
    let others = column_range(&tx, BODIES_SQL, known, count)?;
    let index = (!entries.is_empty()).then_some(count);
    for (i, e) in entries.into_iter().enumerate() {
        tx.execute(
            "INSERT INTO entries (idx, leaf_hash, body, received_at) VALUES (?1, ?2, ?3, ?4)",
            params![to_i64(count + i as u64)?, &e.leaf_hash[..], &e.body, e.received_at],
        )
        .map_err(StoreError::backend)?;
        leaves.push(e.leaf_hash);
    }
    for (digest, body) in &lineage {
        tx.execute(
            "INSERT OR IGNORE INTO lineage (digest, body) VALUES (?1, ?2)",
            params![&digest[..], body],
        )
        .map_err(StoreError::backend)?;
    }
    let last: i64 = tx
        .query_row("SELECT COALESCE(MAX(version), 0) FROM snapshots", [], |r| r.get(0))
        .map_err(StoreError::backend)?;
    let version = to_u64(last, "version")? + 1;
    // A refusal drops `tx` uncommitted: the inserts above are rolled back.
    let record = match seal(SealInput {
        start: known,
        leaves,
        others,
        version,
    }) {
        Ok(r) => r,
        Err(SealError::Refused(why)) => return Ok(CommitOutcome::Refused(why)),
        Err(SealError::Failed(m)) => return Err(StoreError::Seal(m)),
    };
    tx.execute(
        "INSERT INTO snapshots (version, size, root, issued, expires, checkpoint, body)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            to_i64(version)?,
            to_i64(record.size)?,
            &record.root[..],
            to_i64(record.issued)?,
            to_i64(record.expires)?,
            &record.checkpoint,
            &record.snapshot
        ],
    )
    .map_err(StoreError::backend)?;
    tx.commit().map_err(StoreError::backend)?;
    Ok(CommitOutcome::Sealed { index, record })
}

#[async_trait::async_trait]
impl Store for SqliteStore {
    fn describe(&self) -> String {
        format!("sqlite:{}", self.path.display())
    }

    async fn count(&self) -> Result<u64, StoreError> {
        self.read(|c| count(c)).await
    }

    async fn leaf_hashes(&self, start: u64, end: u64) -> Result<Vec<Hash>, StoreError> {
        self.read(move |c| leaf_hashes(c, start, end)).await
    }

    async fn bodies(&self, start: u64, end: u64) -> Result<Vec<Vec<u8>>, StoreError> {
        self.read(move |c| column_range(c, BODIES_SQL, start, end)).await
    }

    async fn find_leaf(&self, leaf_hash: &Hash) -> Result<Option<u64>, StoreError> {
        let leaf_hash = *leaf_hash;
        self.read(move |c| find_leaf(c, &leaf_hash)).await
    }

    async fn latest_snapshot(&self) -> Result<Option<SnapshotRecord>, StoreError> {
        self.read(|c| latest_snapshot(c)).await
    }

    async fn set_checkpoint(&self, version: u64, checkpoint: String) -> Result<(), StoreError> {
        let v = to_i64(version)?;
        let changed = Self::with(&self.writer, move |c| {
            c.execute(
                "UPDATE snapshots SET checkpoint = ?1 WHERE version = ?2",
                params![checkpoint, v],
            )
            .map_err(StoreError::backend)
        })
        .await?;
        if changed != 1 {
            return Err(StoreError::Corrupt(format!(
                "no snapshot {version} to add cosignatures to"
            )));
        }
        Ok(())
    }

    async fn commit_with_lineage(
        &self,
        entries: Vec<NewEntry>,
        lineage: Vec<(Hash, Vec<u8>)>,
        known: u64,
        seal: SealFn,
    ) -> Result<CommitOutcome, StoreError> {
        Self::with(&self.writer, move |c| commit(c, entries, lineage, known, seal)).await
    }

    async fn lineage(&self, digest: &Hash) -> Result<Option<Vec<u8>>, StoreError> {
        let digest = *digest;
        self.read(move |c| {
            c.query_row(
                "SELECT body FROM lineage WHERE digest = ?1",
                params![&digest[..]],
                |r| r.get(0),
            )
            .optional()
            .map_err(StoreError::backend)
        })
        .await
    }

    async fn lineage_digests(&self) -> Result<Vec<Hash>, StoreError> {
        self.read(|c| {
            let mut stmt = c
                .prepare_cached("SELECT digest FROM lineage ORDER BY digest")
                .map_err(StoreError::backend)?;
            let mut rows = stmt.query([]).map_err(StoreError::backend)?;
            let mut out = Vec::new();
            while let Some(row) = rows.next().map_err(StoreError::backend)? {
                let bytes: Vec<u8> = row.get(0).map_err(StoreError::backend)?;
                out.push(
                    Hash::try_from(bytes.as_slice())
                        .map_err(|_| StoreError::Corrupt(format!("a lineage digest is {} bytes", bytes.len())))?,
                );
            }
            Ok(out)
        })
        .await
    }
}
