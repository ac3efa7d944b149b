//! PostgreSQL backend, for several replicas sharing one store. Writers serialize on a
//! transaction-scoped advisory lock keyed by the schema, so appends from every replica
//! interleave into one gap-free log; reads go straight to the pool.

use std::str::FromStr;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::{GenericClient, Row};

use super::pg_tls::split_tls_settings;
use super::{
    check_contiguous, to_hash, to_i64, to_u64, CommitOutcome, Hash, NewEntry, SealError, SealFn, SealInput,
    SnapshotRecord, Store, StoreError,
};
use crate::config::redact;

/// Every writer takes this lock (per schema) for the length of its transaction.
const LOCK: &str =
    "SELECT pg_advisory_xact_lock(hashtext('weightseal-revocations:' || COALESCE(current_schema(), '')))";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS entries (
    idx BIGINT PRIMARY KEY,
    leaf_hash BYTEA NOT NULL UNIQUE,
    body BYTEA NOT NULL,
    received_at BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS lineage (
    digest BYTEA PRIMARY KEY,
    body BYTEA NOT NULL
);
CREATE TABLE IF NOT EXISTS snapshots (
    version BIGINT PRIMARY KEY,
    size BIGINT NOT NULL,
    root BYTEA NOT NULL,
    issued BIGINT NOT NULL,
    expires BIGINT NOT NULL,
    checkpoint TEXT NOT NULL,
    body TEXT NOT NULL
);
";

/// The PostgreSQL store.
#[derive(Clone)]
pub struct PostgresStore {
    pool: Pool,
    described: String,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore").field("url", &self.described).finish()
    }
}

fn col<'a, T: tokio_postgres::types::FromSql<'a>>(row: &'a Row, i: usize) -> Result<T, StoreError> {
    row.try_get(i).map_err(StoreError::backend)
}

impl PostgresStore {
    /// Connects (failing fast when the server is unreachable) and creates the tables if needed.
    ///
    /// TLS follows the string's `sslmode` and `sslrootcert` (see [`super::pg_tls`]).
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let described = redact(url);
        let (rest, tls) = split_tls_settings(url).map_err(|problem| StoreError::Tls {
            url: described.clone(),
            problem,
        })?;
        let connector = tls.connector().map_err(|problem| StoreError::Tls {
            url: described.clone(),
            problem,
        })?;
        let mut config = tokio_postgres::Config::from_str(&rest)
            .map_err(|e| StoreError::Backend(format!("bad connection string {described}: {e}")))?;
        config.ssl_mode(tls.tokio_mode());
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(5));
        }
        let manager = Manager::from_config(
            config,
            connector,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(16)
            .build()
            .map_err(StoreError::backend)?;
        let store = Self { pool, described };
        let mut client = store.client().await?;
        let tx = client.transaction().await.map_err(StoreError::backend)?;
        tx.execute(LOCK, &[]).await.map_err(StoreError::backend)?;
        tx.batch_execute(SCHEMA).await.map_err(StoreError::backend)?;
        tx.commit().await.map_err(StoreError::backend)?;
        Ok(store)
    }

    /// The TLS version of a pooled connection as the server reports it (`pg_stat_ssl`);
    /// `None` when the connection is not encrypted.
    pub async fn tls_version(&self) -> Result<Option<String>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_one("SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()", &[])
            .await
            .map_err(StoreError::backend)?;
        let ssl: bool = col(&row, 0)?;
        let version: Option<String> = col(&row, 1)?;
        Ok(ssl.then(|| version.unwrap_or_else(|| "unknown".to_owned())))
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.pool
            .get()
            .await
            .map_err(|e| StoreError::Backend(format!("cannot connect to {}: {}", self.described, with_causes(&e))))
    }
}

/// An error and its causes, `: `-separated (a refused TLS handshake says why only in a
/// cause: an unknown CA, a certificate for another host, no TLS offered).
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cause = c.source();
    }
    out
}

async fn count(c: &impl GenericClient) -> Result<u64, StoreError> {
    let row = c
        .query_one("SELECT COALESCE(MAX(idx) + 1, 0)::BIGINT FROM entries", &[])
        .await
        .map_err(StoreError::backend)?;
    to_u64(col(&row, 0)?, "entry count")
}

/// Reads one byte column of entries `[start, end)`, checking the indexes are contiguous.
/// `sql` is one of the fixed queries below (never built from input).
async fn column_range(c: &impl GenericClient, sql: &str, start: u64, end: u64) -> Result<Vec<Vec<u8>>, StoreError> {
    let rows = c
        .query(sql, &[&to_i64(start)?, &to_i64(end)?])
        .await
        .map_err(StoreError::backend)?;
    let mut out = Vec::with_capacity(rows.len());
    for row in &rows {
        let idx = to_u64(col(row, 0)?, "index")?;
        check_contiguous(idx, start + out.len() as u64)?;
        out.push(col(row, 1)?);
    }
    Ok(out)
}

const LEAF_HASHES_SQL: &str = "SELECT idx, leaf_hash FROM entries WHERE idx >= $1 AND idx < $2 ORDER BY idx";
const BODIES_SQL: &str = "SELECT idx, body FROM entries WHERE idx >= $1 AND idx < $2 ORDER BY idx";

async fn leaf_hashes(c: &impl GenericClient, start: u64, end: u64) -> Result<Vec<Hash>, StoreError> {
    column_range(c, LEAF_HASHES_SQL, start, end)
        .await?
        .iter()
        .zip(start..)
        .map(|(bytes, idx)| to_hash(bytes, idx))
        .collect()
}

async fn find_leaf(c: &impl GenericClient, leaf_hash: &Hash) -> Result<Option<u64>, StoreError> {
    let row = c
        .query_opt("SELECT idx FROM entries WHERE leaf_hash = $1", &[&&leaf_hash[..]])
        .await
        .map_err(StoreError::backend)?;
    row.map(|r| to_u64(col(&r, 0)?, "index")).transpose()
}

#[async_trait::async_trait]
impl Store for PostgresStore {
    fn describe(&self) -> String {
        self.described.clone()
    }

    async fn count(&self) -> Result<u64, StoreError> {
        count(&**self.client().await?).await
    }

    async fn leaf_hashes(&self, start: u64, end: u64) -> Result<Vec<Hash>, StoreError> {
        leaf_hashes(&**self.client().await?, start, end).await
    }

    async fn bodies(&self, start: u64, end: u64) -> Result<Vec<Vec<u8>>, StoreError> {
        column_range(&**self.client().await?, BODIES_SQL, start, end).await
    }

    async fn find_leaf(&self, leaf_hash: &Hash) -> Result<Option<u64>, StoreError> {
        find_leaf(&**self.client().await?, leaf_hash).await
    }

    async fn latest_snapshot(&self) -> Result<Option<SnapshotRecord>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT version, size, root, issued, expires, checkpoint, body FROM snapshots
                 ORDER BY version DESC LIMIT 1",
                &[],
            )
            .await
            .map_err(StoreError::backend)?;
        let Some(row) = row else {
            return Ok(None);
        };
        let version = to_u64(col(&row, 0)?, "version")?;
        let root: &[u8] = col(&row, 2)?;
        Ok(Some(SnapshotRecord {
            version,
            size: to_u64(col(&row, 1)?, "size")?,
            root: Hash::try_from(root)
                .map_err(|_| StoreError::Corrupt(format!("snapshot {version}: root is {} bytes", root.len())))?,
            issued: to_u64(col(&row, 3)?, "issued")?,
            expires: to_u64(col(&row, 4)?, "expires")?,
            checkpoint: col(&row, 5)?,
            snapshot: col(&row, 6)?,
        }))
    }

    async fn set_checkpoint(&self, version: u64, checkpoint: String) -> Result<(), StoreError> {
        let client = self.client().await?;
        let changed = client
            .execute(
                "UPDATE snapshots SET checkpoint = $1 WHERE version = $2",
                &[&checkpoint, &to_i64(version)?],
            )
            .await
            .map_err(StoreError::backend)?;
        if changed != 1 {
            return Err(StoreError::Corrupt(format!(
                "no snapshot {version} to add cosignatures to"
            )));
        }
        Ok(())
    }

    async fn lineage(&self, digest: &Hash) -> Result<Option<Vec<u8>>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt("SELECT body FROM lineage WHERE digest = $1", &[&&digest[..]])
            .await
            .map_err(StoreError::backend)?;
        row.map(|r| col(&r, 0)).transpose()
    }

    async fn lineage_digests(&self) -> Result<Vec<Hash>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query("SELECT digest FROM lineage ORDER BY digest", &[])
            .await
            .map_err(StoreError::backend)?;
        rows.iter()
            .map(|r| {
                let bytes: &[u8] = col(r, 0)?;
                Hash::try_from(bytes)
                    .map_err(|_| StoreError::Corrupt(format!("a lineage digest is {} bytes", bytes.len())))
            })
            .collect()
    }

    async fn commit_with_lineage(
        &self,
        entries: Vec<NewEntry>,
        lineage: Vec<(Hash, Vec<u8>)>,
        known: u64,
        seal: SealFn,
    ) -> Result<CommitOutcome, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(StoreError::backend)?;
        tx.execute(LOCK, &[]).await.map_err(StoreError::backend)?;
        for e in &entries {
            if let Some(index) = find_leaf(&*tx, &e.leaf_hash).await? {
                return Ok(CommitOutcome::Duplicate { index });
            }
        }
        let count = count(&*tx).await?;
        if count < known {
            return Err(StoreError::Corrupt(format!(
                "the store holds {count} entries but this server already holds {known}"
            )));
        }
        let mut leaves = leaf_hashes(&*tx, known, count).await?;
        if leaves.len() as u64 != count - known {
            return Err(StoreError::Corrupt(format!("entries {known}..{count} have gaps")));
        }
        let others = column_range(&*tx, BODIES_SQL, known, count).await?;
        let index = (!entries.is_empty()).then_some(count);
        for (i, e) in entries.into_iter().enumerate() {
            tx.execute(
                "INSERT INTO entries (idx, leaf_hash, body, received_at) VALUES ($1, $2, $3, $4)",
                &[&to_i64(count + i as u64)?, &&e.leaf_hash[..], &e.body, &e.received_at],
            )
            .await
            .map_err(StoreError::backend)?;
            leaves.push(e.leaf_hash);
        }
        for (digest, body) in &lineage {
            tx.execute(
                "INSERT INTO lineage (digest, body) VALUES ($1, $2) ON CONFLICT (digest) DO NOTHING",
                &[&&digest[..], body],
            )
            .await
            .map_err(StoreError::backend)?;
        }
        let row = tx
            .query_one("SELECT COALESCE(MAX(version), 0)::BIGINT FROM snapshots", &[])
            .await
            .map_err(StoreError::backend)?;
        let version = to_u64(col(&row, 0)?, "version")? + 1;
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
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[
                &to_i64(version)?,
                &to_i64(record.size)?,
                &&record.root[..],
                &to_i64(record.issued)?,
                &to_i64(record.expires)?,
                &record.checkpoint,
                &record.snapshot,
            ],
        )
        .await
        .map_err(StoreError::backend)?;
        tx.commit().await.map_err(StoreError::backend)?;
        Ok(CommitOutcome::Sealed { index, record })
    }
}
