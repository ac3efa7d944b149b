//! The log as one server replica sees it: the in-memory Merkle tree (caught up from the store),
//! the current publication (signed checkpoint + snapshot with their ETags), appends and
//! re-signing through [`Store::commit`], tiles and proofs.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use crate::store::{CommitOutcome, Hash, NewEntry, SealError, SealFn, SealInput, SnapshotRecord, Store, StoreError};
use crate::witness::{WitnessAnswer, WitnessEndpoint};
use axum::body::Bytes;
use ed25519_dalek::VerifyingKey;
use sha2::{Digest as _, Sha256};
use weightseal_log::note::NoteSignerKey;
use weightseal_log::rotation::sign_rotation;
use weightseal_log::snapshot::{sign_checkpoint_by, sign_snapshot_by, snapshot_for_checkpoint};
use weightseal_log::tile::proof_to_hex;
use weightseal_verifier::revocation::entry::{Action, SignedEntry, Subject};
use weightseal_verifier::revocation::merkle::{self, MerkleTree};
use weightseal_verifier::revocation::note::{Checkpoint, NoteVerifierKey};
use weightseal_verifier::revocation::policy::{KeyLiveness, PolicyViolation};
use weightseal_verifier::revocation::rotation::{is_rotation_leaf, LogKeyRef, RotationError, RotationStatement};
use weightseal_verifier::revocation::snapshot::{open_checkpoint, Snapshot};
use weightseal_verifier::revocation::tile::{
    encode_publication, encode_tile, ConsistencyProofDoc, HashTileRef, InclusionProofDoc,
};
use weightseal_verifier::KeyId;

pub use weightseal_verifier::revocation::tile::TILE_WIDTH;
/// Leaf hashes fetched per query while catching up.
const CATCH_UP_BATCH: u64 = 50_000;
/// Full tiles kept encoded in memory (they never change).
const TILE_CACHE: usize = 4096;

/// Why a log operation failed. Internal: logged, never shown to clients.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LogError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The stored log does not match its signed checkpoint, or another inconsistency.
    #[error("log is inconsistent: {0}")]
    Inconsistent(String),
    /// Signing failed.
    #[error("cannot sign: {0}")]
    Sign(String),
    /// The log rotated away from the key it was asked to sign with (spec/revocation.md §5.2):
    /// clients that followed the rotation would refuse what it signs.
    #[error("the log rotated from the key {key} to {successor}; sign with the current key (and the previous one as --previous-key during a transition)")]
    RetiredKey {
        /// The key given.
        key: LogKeyRef,
        /// The key the log's rotation statements lead to.
        successor: LogKeyRef,
    },
    /// The rotation statement cannot be made or a stored one is invalid.
    #[error("rotation statement: {0}")]
    Rotation(RotationError),
}

/// Settings of a [`Log`].
#[derive(Debug, Clone)]
pub struct LogOptions {
    /// Log origin and note key name.
    pub origin: String,
    /// Snapshot lifetime (expires = issued + ttl).
    pub snapshot_ttl: Duration,
}

/// The current publication: signed checkpoint and snapshot, and what they commit to.
#[derive(Debug, Clone)]
pub struct Published {
    /// Snapshot version.
    pub version: u64,
    /// Tree size.
    pub size: u64,
    /// Root at `size`.
    pub root: Hash,
    /// Snapshot issue time (unix seconds).
    pub issued: u64,
    /// Snapshot expiry (unix seconds).
    pub expires: u64,
    /// The signed checkpoint note.
    pub checkpoint: Bytes,
    /// Its ETag.
    pub checkpoint_etag: String,
    /// The signed snapshot note.
    pub snapshot: Bytes,
    /// Its ETag.
    pub snapshot_etag: String,
    /// Both notes as one `v1/publication` document (spec/revocation.md §6.2).
    pub publication: Bytes,
    /// Its ETag.
    pub publication_etag: String,
    /// The stored record it was made from.
    record: SnapshotRecord,
}

/// A strong ETag for `body`: a quoted SHA-256 prefix.
pub fn etag(body: &[u8]) -> String {
    let digest = Sha256::digest(body);
    format!("\"{}\"", hex::encode(&digest[..16]))
}

impl Published {
    fn from_record(r: &SnapshotRecord) -> Self {
        let checkpoint = Bytes::from(r.checkpoint.clone());
        let snapshot = Bytes::from(r.snapshot.clone());
        // Encoding two texts cannot fail; an empty document would be refused by clients.
        let publication = Bytes::from(encode_publication(&r.checkpoint, &r.snapshot).unwrap_or_default());
        Self {
            publication_etag: etag(&publication),
            publication,
            version: r.version,
            size: r.size,
            root: r.root,
            issued: r.issued,
            expires: r.expires,
            checkpoint_etag: etag(&checkpoint),
            checkpoint,
            snapshot_etag: etag(&snapshot),
            snapshot,
            record: r.clone(),
        }
    }
}

/// Result of [`Log::append`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Appended {
    /// Appended and published (a batch: at `index`, `index + 1`, …).
    New {
        /// The (first) entry's index.
        index: u64,
        /// Its leaf hash.
        leaf_hash: Hash,
        /// Every appended entry's leaf hash, in order.
        leaf_hashes: Vec<Hash>,
        /// The new tree size.
        size: u64,
    },
    /// An entry is already in the log; nothing recorded.
    Duplicate {
        /// Where it is.
        index: u64,
    },
    /// An entry breaks the revoked-key rule given what the log holds; nothing recorded.
    Refused(PolicyViolation),
}

/// Unix seconds now.
pub fn now_unix() -> u64 {
    // The workspace's one clock. A server whose clock reads before 1970 signs snapshots
    // that are already expired and refuses every submission as outside its time window,
    // so 0 here fails closed (clients refuse what it publishes); it never makes stale
    // data look fresh.
    weightseal_verifier::clock::now_unix().unwrap_or(0)
}

/// One replica's view of the log.
#[derive(Debug)]
pub struct Log {
    store: Arc<dyn Store>,
    signer: NoteSignerKey,
    /// The key being rotated away from, during a transition period: every note is signed by
    /// it too, so clients that still pin it keep syncing (spec/revocation.md §5.2).
    previous: Option<NoteSignerKey>,
    /// The rotation statements in the tree, in log order.
    rotations: Mutex<Vec<RotationStatement>>,
    verifier: NoteVerifierKey,
    options: LogOptions,
    tree: Arc<RwLock<MerkleTree>>,
    published: RwLock<Arc<Published>>,
    /// Serializes this replica's writers (the store serializes replicas).
    write: tokio::sync::Mutex<()>,
    tiles: Mutex<HashMap<u64, Bytes>>,
    last_refresh: Mutex<Option<Instant>>,
    /// The revoked-key rule over the entries in `tree` (always applied to exactly as many).
    keys: Arc<Mutex<KeyLiveness>>,
    /// What the seal step computed for `keys`, installed only once its transaction committed.
    pending_keys: Arc<Mutex<Option<KeyLiveness>>>,
    /// The witnesses every new checkpoint is submitted to, each with the size we believe it
    /// holds (0 until it tells us otherwise with a 409).
    witnesses: tokio::sync::Mutex<Vec<(WitnessEndpoint, u64)>>,
}

/// What [`Log::witness_now`] got.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WitnessReport {
    /// The snapshot version whose checkpoint was submitted.
    pub version: u64,
    /// The witnesses whose cosignature was added, by name.
    pub cosigned_by: Vec<String>,
    /// The witnesses that did not cosign, by name, and why.
    pub failed: Vec<(String, String)>,
}

/// The log-signed part of a checkpoint note: its body and the signature lines of the log's own
/// key name, without any cosignatures (those are collected afresh for every checkpoint).
fn log_signed_part(note: &str, origin: &str) -> String {
    let Some((body, sigs)) = note.rsplit_once("\n\n") else {
        return note.to_owned();
    };
    let prefix = format!("\u{2014} {origin} ");
    let mut out = format!("{body}\n\n");
    for line in sigs.lines().filter(|l| l.starts_with(&prefix)) {
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// What the revoked-key rule needs of a stored leaf (already verified when it was
/// appended): the issuer, subject and action of an entry, `None` for a rotation statement.
type KeyFacts = Option<(KeyId, Subject, Action)>;

fn key_facts(body: &[u8]) -> Result<KeyFacts, String> {
    if is_rotation_leaf(body) {
        return Ok(None);
    }
    let signed = SignedEntry::decode_unverified(body).map_err(|e| e.to_string())?;
    let e = signed.entry();
    Ok(Some((e.issuer.id(), e.subject, e.action)))
}

/// Applies one leaf's facts to the revoked-key rule (a void entry is held but changes nothing).
fn apply_facts(keys: &mut KeyLiveness, facts: &KeyFacts) {
    match facts {
        Some((issuer, subject, action)) => {
            let _ = keys.apply(issuer, subject, *action);
        }
        None => keys.skip(),
    }
}

/// Where a chain of rotation statements leads: from the first statement's old key, each
/// statement whose old key is current replaces it by its new key.
fn current_keys(rotations: &[RotationStatement]) -> Vec<NoteVerifierKey> {
    let Some(first) = rotations.first() else {
        return Vec::new();
    };
    let mut keys = vec![first.old_key().clone()];
    for r in rotations {
        if let Some(next) = r.follow(&keys) {
            keys = next;
        }
    }
    keys
}

fn lock_err<T>(_: T) -> LogError {
    LogError::Inconsistent("a lock was poisoned".to_owned())
}

impl Log {
    /// Loads the tree from the store and checks it against the latest stored checkpoint.
    /// With `resign`, signs a fresh checkpoint + snapshot over everything (as `serve` does at
    /// start); without, signs one only when none exists, the stored one does not cover every
    /// entry, has expired, or is not signed by this key.
    pub async fn open(
        store: Arc<dyn Store>,
        signer: NoteSignerKey,
        options: LogOptions,
        resign: bool,
    ) -> Result<Self, LogError> {
        Self::open_rotating(store, signer, None, options, resign).await
    }

    /// [`Log::open`] for a log in a key rotation (spec/revocation.md §5.2): `signer` is the
    /// new key and `previous` the key being retired. Unless the log already holds it, the
    /// rotation statement (`previous` announcing `signer`, signed by both) is appended first,
    /// which requires `previous` to be the key the log's rotations lead to. Every note is then
    /// signed by both keys until the log is opened without `previous`. A `signer` that the
    /// log's rotation statements retired is refused.
    pub async fn open_rotating(
        store: Arc<dyn Store>,
        signer: NoteSignerKey,
        previous: Option<NoteSignerKey>,
        options: LogOptions,
        resign: bool,
    ) -> Result<Self, LogError> {
        for key in std::iter::once(&signer).chain(&previous) {
            if key.name() != options.origin {
                return Err(LogError::Sign(format!(
                    "note key name {:?} is not the origin {:?}",
                    key.name(),
                    options.origin
                )));
            }
        }
        let verifier = signer.verifier_key();
        let log = Self {
            store,
            signer,
            previous,
            rotations: Mutex::new(Vec::new()),
            verifier,
            options,
            tree: Arc::new(RwLock::new(MerkleTree::new())),
            published: RwLock::new(Arc::new(Published::from_record(&SnapshotRecord {
                version: 0,
                size: 0,
                root: merkle::empty_root(),
                issued: 0,
                expires: 0,
                checkpoint: String::new(),
                snapshot: String::new(),
            }))),
            write: tokio::sync::Mutex::new(()),
            tiles: Mutex::new(HashMap::new()),
            last_refresh: Mutex::new(None),
            keys: Arc::new(Mutex::new(KeyLiveness::new())),
            pending_keys: Arc::new(Mutex::new(None)),
            witnesses: tokio::sync::Mutex::new(Vec::new()),
        };
        // Nobody else holds `log` yet: no need for the write lock.
        let mut count = log.store.count().await?;
        log.catch_up(count).await?;
        if let Some(previous) = log.previous.clone() {
            let (statement, leaf) = sign_rotation(&previous, &log.signer).map_err(LogError::Rotation)?;
            let leaf_hash = merkle::leaf_hash(&leaf);
            if log.store.find_leaf(&leaf_hash).await?.is_none() {
                log.check_current(&previous.verifier_key())?;
                let entry = NewEntry {
                    leaf_hash,
                    body: leaf,
                    received_at: i64::try_from(now_unix()).unwrap_or(i64::MAX),
                };
                match log.seal_locked(vec![entry], Vec::new()).await? {
                    CommitOutcome::Sealed { .. } => {
                        tracing::info!(old = %statement.old_key(), new = %statement.new_key(), "rotation statement appended");
                        log.rotations.lock().map_err(lock_err)?.push(statement);
                    }
                    other => {
                        return Err(LogError::Inconsistent(format!(
                            "the rotation statement was not appended: {other:?}"
                        )))
                    }
                }
                count = log.store.count().await?;
            }
        }
        log.check_current(&log.verifier)?;
        let latest = log.store.latest_snapshot().await?;
        let usable = match &latest {
            Some(r) => {
                log.check_record(r)?;
                r.size == count && r.expires > now_unix() && log.signed_by_us(r)
            }
            None => false,
        };
        match latest {
            Some(r) if usable && !resign => log.set_published(&r)?,
            _ => {
                log.seal_locked(Vec::new(), Vec::new()).await?;
            }
        }
        Ok(log)
    }

    /// The log's note verifier key (what clients pin).
    pub fn verifier_key(&self) -> &NoteVerifierKey {
        &self.verifier
    }

    /// The key being retired, during a transition period.
    pub fn previous_key(&self) -> Option<NoteVerifierKey> {
        self.previous.as_ref().map(NoteSignerKey::verifier_key)
    }

    /// Every key this replica signs notes with: the current one, then the previous one.
    fn signers(&self) -> Vec<&NoteSignerKey> {
        std::iter::once(&self.signer).chain(&self.previous).collect()
    }

    /// Refuses `key` unless it is a key the log's rotation statements lead to (any key when
    /// there is none).
    fn check_current(&self, key: &NoteVerifierKey) -> Result<(), LogError> {
        let rotations = self.rotations.lock().map_err(lock_err)?;
        let current = current_keys(&rotations);
        match current.first() {
            Some(successor) if !current.contains(key) => Err(LogError::RetiredKey {
                key: LogKeyRef::of(key),
                successor: LogKeyRef::of(successor),
            }),
            _ => Ok(()),
        }
    }

    /// The log's public key.
    pub fn public_key(&self) -> VerifyingKey {
        self.signer.signing_key().verifying_key()
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The origin.
    pub fn origin(&self) -> &str {
        &self.options.origin
    }

    /// The current publication.
    pub fn published(&self) -> Arc<Published> {
        match self.published.read() {
            Ok(p) => Arc::clone(&p),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    fn set_published(&self, record: &SnapshotRecord) -> Result<(), LogError> {
        let mut guard = self.published.write().map_err(lock_err)?;
        // The same version again when cosignatures were added to its checkpoint.
        if record.version > guard.version || (record.version == guard.version && record != &guard.record) {
            *guard = Arc::new(Published::from_record(record));
        }
        Ok(())
    }

    /// The witnesses every new checkpoint goes to (spec/revocation.md §6.4). Call
    /// [`Log::witness_now`] afterwards to have the current checkpoint cosigned.
    pub async fn set_witnesses(&self, witnesses: Vec<WitnessEndpoint>) {
        *self.witnesses.lock().await = witnesses.into_iter().map(|w| (w, 0)).collect();
    }

    /// [`Log::witness_now`] after an append or a re-signing: the entries are committed
    /// whatever the witnesses (or storing their cosignatures) do, so a failure here is logged,
    /// never reported as a failed append.
    async fn witness_logged(&self) {
        if let Err(e) = self.witness_locked().await {
            tracing::error!(error = %e, "cannot add the witnesses' cosignatures to the checkpoint");
        }
    }

    /// Submits the published checkpoint to every configured witness (C2SP tlog-witness, all
    /// at once, each with the consistency proof from the size it holds), and publishes and
    /// stores the checkpoint with the cosignatures that verify. A witness that fails is
    /// logged and left out; the checkpoint is published either way (clients decide whether
    /// the cosignatures it has are enough).
    pub async fn witness_now(&self) -> Result<WitnessReport, LogError> {
        let _guard = self.write.lock().await;
        self.witness_locked().await
    }

    /// [`Log::witness_now`] for a caller holding the write lock, which every store write
    /// and publication happens under.
    async fn witness_locked(&self) -> Result<WitnessReport, LogError> {
        let mut witnesses = self.witnesses.lock().await;
        let published = self.published();
        let mut report = WitnessReport {
            version: published.version,
            ..WitnessReport::default()
        };
        if witnesses.is_empty() || published.checkpoint.is_empty() {
            return Ok(report);
        }
        let note = log_signed_part(&published.record.checkpoint, &self.options.origin);
        let size = published.size;
        let mut tasks = tokio::task::JoinSet::new();
        for (i, (endpoint, known)) in witnesses.iter().enumerate() {
            let (endpoint, known, note, tree) = (endpoint.clone(), *known, note.clone(), Arc::clone(&self.tree));
            tasks.spawn_blocking(move || {
                let proof_from = |old: u64| -> Option<Vec<Hash>> { tree.read().ok()?.consistency_proof(old, size) };
                let mut old = known;
                // At most one retry: after a 409 we know the size the witness holds.
                for _ in 0..2 {
                    let Some(proof) = proof_from(old) else {
                        return (
                            i,
                            old,
                            WitnessAnswer::Failed(format!("it holds size {old}, past ours ({size})")),
                        );
                    };
                    match crate::witness::submit(&endpoint, old, &proof, &note) {
                        WitnessAnswer::Holds(n) if n != old => old = n,
                        WitnessAnswer::Cosigned(line) => return (i, size, WitnessAnswer::Cosigned(line)),
                        other => return (i, old, other),
                    }
                }
                (i, old, WitnessAnswer::Failed("it keeps answering 409".into()))
            });
        }
        let mut lines = vec![String::new(); witnesses.len()];
        while let Some(done) = tasks.join_next().await {
            let (i, known, answer) = done.map_err(|e| LogError::Inconsistent(format!("a witness task failed: {e}")))?;
            let Some((endpoint, held)) = witnesses.get_mut(i) else {
                continue;
            };
            *held = known;
            let name = endpoint.key.name().to_owned();
            match answer {
                WitnessAnswer::Cosigned(line) => {
                    report.cosigned_by.push(name);
                    if let Some(slot) = lines.get_mut(i) {
                        *slot = line;
                    }
                }
                WitnessAnswer::Holds(n) => report.failed.push((name, format!("it holds size {n}"))),
                WitnessAnswer::Failed(why) => {
                    tracing::warn!(witness = %name, url = %endpoint.url, error = %why, "witness did not cosign");
                    report.failed.push((name, why));
                }
            }
        }
        report.cosigned_by.sort();
        if !report.cosigned_by.is_empty() {
            let mut record = published.record.clone();
            record.checkpoint = format!("{note}{}", lines.concat());
            self.store
                .set_checkpoint(record.version, record.checkpoint.clone())
                .await?;
            self.set_published(&record)?;
        }
        Ok(report)
    }

    /// Whether both stored notes verify under each of this server's keys (during a
    /// transition, the previous one too) and say what the record says.
    fn signed_by_us(&self, r: &SnapshotRecord) -> bool {
        let mut opened = None;
        for key in self.signers() {
            let keys = [key.verifier_key()];
            let (Ok(checkpoint), Ok(snapshot)) = (
                open_checkpoint(r.checkpoint.as_bytes(), &keys),
                Snapshot::open(r.snapshot.as_bytes(), &keys),
            ) else {
                return false;
            };
            opened = Some((checkpoint, snapshot));
        }
        let Some((checkpoint, snapshot)) = opened else {
            return false;
        };
        snapshot.matches(&checkpoint)
            && checkpoint.origin == self.options.origin
            && (
                snapshot.version,
                snapshot.size,
                snapshot.root,
                snapshot.issued,
                snapshot.expires,
            ) == (r.version, r.size, r.root, r.issued, r.expires)
    }

    /// Checks a stored record against the tree: its root must be the tree's root at its size.
    fn check_record(&self, r: &SnapshotRecord) -> Result<(), LogError> {
        let tree = self.tree.read().map_err(lock_err)?;
        match tree.root_at(r.size) {
            Some(root) if root == r.root => Ok(()),
            Some(_) => Err(LogError::Inconsistent(format!(
                "snapshot {} says the root at size {} is {}, but the stored entries give another root",
                r.version,
                r.size,
                hex::encode(r.root)
            ))),
            None => Err(LogError::Inconsistent(format!(
                "snapshot {} covers {} entries but the store holds only {}",
                r.version,
                r.size,
                tree.len()
            ))),
        }
    }

    /// Reads leaf hashes from the store until the tree holds `target` leaves.
    async fn catch_up(&self, target: u64) -> Result<(), LogError> {
        loop {
            let have = self.tree.read().map_err(lock_err)?.len();
            if have >= target {
                return Ok(());
            }
            let end = target.min(have.saturating_add(CATCH_UP_BATCH));
            let leaves = self.store.leaf_hashes(have, end).await?;
            if leaves.is_empty() {
                return Err(LogError::Inconsistent(format!(
                    "the store has no entry {have} but should hold {target}"
                )));
            }
            // The bodies too: the revoked-key rule depends on what the entries say.
            let bodies = self.store.bodies(have, have + leaves.len() as u64).await?;
            if bodies.len() != leaves.len() {
                return Err(LogError::Inconsistent(format!(
                    "the store returned {} bodies for {} leaves from {have}",
                    bodies.len(),
                    leaves.len()
                )));
            }
            let mut tree = self.tree.write().map_err(lock_err)?;
            let mut keys = self.keys.lock().map_err(lock_err)?;
            if tree.len() != have || keys.applied() != have {
                return Err(LogError::Inconsistent("tree changed while catching up".to_owned()));
            }
            for (i, (leaf, body)) in leaves.into_iter().zip(&bodies).enumerate() {
                if merkle::leaf_hash(body) != leaf {
                    return Err(LogError::Inconsistent(format!(
                        "stored entry {} does not match its leaf hash",
                        have + i as u64
                    )));
                }
                let index = have + i as u64;
                let facts =
                    key_facts(body).map_err(|e| LogError::Inconsistent(format!("stored entry {index}: {e}")))?;
                if facts.is_none() {
                    let statement = RotationStatement::from_leaf(body)
                        .map_err(|e| LogError::Inconsistent(format!("stored entry {index}: {e}")))?;
                    self.rotations.lock().map_err(lock_err)?.push(statement);
                }
                apply_facts(&mut keys, &facts);
                tree.push(leaf);
            }
        }
    }

    /// The seal step for a commit of entries with these (issuer, subject, action) facts:
    /// brings the revoked-key rule up to date with what other writers appended, refuses the
    /// whole submission if any new entry breaks it (inside the store's serialized transaction,
    /// so two replicas cannot both accept an entry by a key one of them just revoked), then
    /// extends the tree and signs.
    fn sealer(&self, new: Vec<KeyFacts>) -> SealFn {
        let tree = Arc::clone(&self.tree);
        let keys = Arc::clone(&self.keys);
        let pending = Arc::clone(&self.pending_keys);
        let signers: Vec<NoteSignerKey> = self.signers().into_iter().cloned().collect();
        let origin = self.options.origin.clone();
        let ttl = self.options.snapshot_ttl.as_secs();
        Box::new(move |input: SealInput| {
            let failed = |m: String| SealError::Failed(m);
            let mut live = keys.lock().map_err(|_| failed("key lock poisoned".to_owned()))?.clone();
            if live.applied() != input.start {
                return Err(failed(format!(
                    "key rule holds {} entries, expected {}",
                    live.applied(),
                    input.start
                )));
            }
            for body in &input.others {
                apply_facts(&mut live, &key_facts(body).map_err(&failed)?);
            }
            for facts in &new {
                if let Some((issuer, subject, action)) = facts {
                    live.check(issuer, subject, *action).map_err(SealError::Refused)?;
                }
                apply_facts(&mut live, facts);
            }
            let mut tree = tree.write().map_err(|_| failed("tree lock poisoned".to_owned()))?;
            if tree.len() != input.start {
                return Err(failed(format!(
                    "tree holds {} leaves, expected {}",
                    tree.len(),
                    input.start
                )));
            }
            for leaf in input.leaves {
                tree.push(leaf);
            }
            let size = tree.len();
            let root = tree.root();
            drop(tree);
            let checkpoint = Checkpoint {
                origin: origin.clone(),
                size,
                root,
                extensions: Vec::new(),
            };
            let snapshot = snapshot_for_checkpoint(&checkpoint, input.version, now_unix(), ttl);
            let (issued, expires) = (snapshot.issued, snapshot.expires);
            let signers: Vec<&NoteSignerKey> = signers.iter().collect();
            let checkpoint = sign_checkpoint_by(&checkpoint, &signers).map_err(|e| failed(e.to_string()))?;
            let snapshot = sign_snapshot_by(&snapshot, &signers).map_err(|e| failed(e.to_string()))?;
            *pending.lock().map_err(|_| failed("key lock poisoned".to_owned()))? = Some(live);
            Ok(SnapshotRecord {
                version: input.version,
                size,
                root,
                issued,
                expires,
                checkpoint,
                snapshot,
            })
        })
    }

    /// Runs one store commit with the write lock held; on failure, drops any leaves the seal
    /// step pushed so the tree again matches the store.
    async fn seal_locked(
        &self,
        entries: Vec<NewEntry>,
        lineage: Vec<(Hash, Vec<u8>)>,
    ) -> Result<CommitOutcome, LogError> {
        let known = self.tree.read().map_err(lock_err)?.len();
        let facts = entries
            .iter()
            .map(|e| key_facts(&e.body))
            .collect::<Result<Vec<_>, _>>()
            .map_err(LogError::Inconsistent)?;
        let result = self
            .store
            .commit_with_lineage(entries, lineage, known, self.sealer(facts))
            .await;
        let pending = self.pending_keys.lock().map_err(lock_err)?.take();
        match result {
            Ok(outcome) => {
                if let CommitOutcome::Sealed { record, .. } = &outcome {
                    if let Some(live) = pending {
                        *self.keys.lock().map_err(lock_err)? = live;
                    }
                    self.set_published(record)?;
                }
                Ok(outcome)
            }
            Err(e) => {
                self.truncate(known)?;
                Err(e.into())
            }
        }
    }

    fn truncate(&self, size: u64) -> Result<(), LogError> {
        let mut tree = self.tree.write().map_err(lock_err)?;
        if tree.len() > size {
            let mut fresh = MerkleTree::new();
            for i in 0..size {
                let leaf = tree
                    .leaf(i)
                    .ok_or_else(|| LogError::Inconsistent(format!("tree lost leaf {i}")))?;
                fresh.push(leaf);
            }
            *tree = fresh;
        }
        Ok(())
    }

    /// Appends a signed entry (already verified and allowed by policy) and publishes a new
    /// checkpoint + snapshot covering it. A replay appends nothing.
    pub async fn append(&self, leaf_bytes: Vec<u8>) -> Result<Appended, LogError> {
        self.append_batch(vec![leaf_bytes]).await
    }

    /// Appends the signed entries of one submission (each already verified and allowed by
    /// policy) at consecutive indexes, all or nothing, under one new checkpoint + snapshot. A
    /// replay of any of them, or an entry by a key the log holds revoked, appends nothing.
    pub async fn append_batch(&self, leaves: Vec<Vec<u8>>) -> Result<Appended, LogError> {
        self.append_with_lineage(leaves, Vec::new()).await
    }

    /// [`Log::append_batch`], storing the lineage documents (digest, checked bytes) the
    /// entries name in the same transaction.
    pub async fn append_with_lineage(
        &self,
        leaves: Vec<Vec<u8>>,
        lineage: Vec<(Hash, Vec<u8>)>,
    ) -> Result<Appended, LogError> {
        let mut entries = Vec::with_capacity(leaves.len());
        let received_at = i64::try_from(now_unix()).unwrap_or(i64::MAX);
        for body in leaves {
            let leaf_hash = merkle::leaf_hash(&body);
            if let Some(index) = self.store.find_leaf(&leaf_hash).await? {
                return Ok(Appended::Duplicate { index });
            }
            entries.push(NewEntry {
                leaf_hash,
                body,
                received_at,
            });
        }
        let Some(first) = entries.first().map(|e| e.leaf_hash) else {
            return Err(LogError::Inconsistent("an empty submission".to_owned()));
        };
        let leaf_hashes: Vec<Hash> = entries.iter().map(|e| e.leaf_hash).collect();
        let _guard = self.write.lock().await;
        let outcome = self.seal_locked(entries, lineage).await?;
        if matches!(outcome, CommitOutcome::Sealed { .. }) {
            // Still under the write lock, so no newer checkpoint can be published meanwhile.
            self.witness_logged().await;
        }
        match outcome {
            CommitOutcome::Duplicate { index } => Ok(Appended::Duplicate { index }),
            CommitOutcome::Refused(why) => Ok(Appended::Refused(why)),
            CommitOutcome::Sealed {
                index: Some(index),
                record,
            } => Ok(Appended::New {
                index,
                leaf_hash: first,
                leaf_hashes,
                size: record.size,
            }),
            CommitOutcome::Sealed { index: None, .. } => Err(LogError::Inconsistent(
                "the store did not append the entries".to_owned(),
            )),
        }
    }

    /// The stored lineage document with this digest.
    pub async fn lineage(&self, digest: &Hash) -> Result<Option<Vec<u8>>, LogError> {
        Ok(self.store.lineage(digest).await?)
    }

    /// Signs a new checkpoint + snapshot (new version, fresh expiry) even if nothing changed.
    pub async fn resign(&self) -> Result<Arc<Published>, LogError> {
        let _guard = self.write.lock().await;
        self.seal_locked(Vec::new(), Vec::new()).await?;
        self.witness_logged().await;
        Ok(self.published())
    }

    /// [`Log::refresh`], unless one ran less than `min_interval` ago: for requests that ask
    /// past the published size (another replica may have published more), without letting
    /// such requests hammer the store.
    pub async fn refresh_if_stale(&self, min_interval: Duration) -> Result<(), LogError> {
        {
            let mut last = self.last_refresh.lock().map_err(lock_err)?;
            if last.is_some_and(|t| t.elapsed() < min_interval) {
                return Ok(());
            }
            *last = Some(Instant::now());
        }
        self.refresh().await
    }

    /// Catches up with what other replicas published: if the store's latest snapshot is newer
    /// than ours, reads the new leaves, checks the root and signature, and publishes it.
    pub async fn refresh(&self) -> Result<(), LogError> {
        // Read the store under the write lock: a record read before an append of ours
        // finished (sealed, but not yet cosigned) would otherwise replace the cosigned
        // checkpoint that append publishes, and the log would serve it without its witnesses.
        let _guard = self.write.lock().await;
        let Some(latest) = self.store.latest_snapshot().await? else {
            return Ok(());
        };
        let current = self.published();
        if latest.version < current.version || latest == current.record {
            return Ok(());
        }
        if latest.size < current.size {
            return Err(LogError::Inconsistent(format!(
                "stored snapshot {} has size {} below the published size {}",
                latest.version, latest.size, current.size
            )));
        }
        self.catch_up(latest.size).await?;
        self.check_record(&latest)?;
        if !self.signed_by_us(&latest) {
            return Err(LogError::Inconsistent(format!(
                "stored snapshot {} is not signed by this server's key {}",
                latest.version, self.verifier
            )));
        }
        self.set_published(&latest)
    }

    /// Entries `[256k, 256k + width)` as a tile, if the published log holds them all.
    /// `None` when the range is past the published size.
    pub async fn tile(&self, k: u64, width: u64) -> Result<Option<Bytes>, LogError> {
        let (Some(start), true) = (k.checked_mul(TILE_WIDTH), (1..=TILE_WIDTH).contains(&width)) else {
            return Ok(None);
        };
        let Some(end) = start.checked_add(width) else {
            return Ok(None);
        };
        if end > self.published().size {
            return Ok(None);
        }
        let full = width == TILE_WIDTH;
        if full {
            if let Some(tile) = self.tiles.lock().map_err(lock_err)?.get(&k) {
                return Ok(Some(tile.clone()));
            }
        }
        let bodies = self.store.bodies(start, end).await?;
        if bodies.len() as u64 != width {
            return Err(LogError::Inconsistent(format!(
                "the store returned {} entries for {start}..{end}",
                bodies.len()
            )));
        }
        {
            let tree = self.tree.read().map_err(lock_err)?;
            for (i, body) in (start..end).zip(&bodies) {
                if tree.leaf(i) != Some(merkle::leaf_hash(body)) {
                    return Err(LogError::Inconsistent(format!(
                        "stored entry {i} does not match its leaf hash"
                    )));
                }
            }
        }
        let tile = Bytes::from(encode_tile(&bodies).map_err(|e| LogError::Inconsistent(e.to_string()))?);
        if full {
            let mut cache = self.tiles.lock().map_err(lock_err)?;
            if cache.len() >= TILE_CACHE {
                cache.clear();
            }
            cache.insert(k, tile.clone());
        }
        Ok(Some(tile))
    }

    /// A tlog-tiles hash tile, if the published tree holds every hash in it (a partial tile
    /// of an older size included). `None` past the published size.
    pub fn hash_tile(&self, tile: HashTileRef) -> Result<Option<Bytes>, LogError> {
        match tile.needed_size() {
            Some(needed) if needed <= self.published().size => {}
            _ => return Ok(None),
        }
        let tree = self.tree.read().map_err(lock_err)?;
        Ok(tree.hash_tile(tile.level, tile.index, tile.width).map(Bytes::from))
    }

    /// The consistency proof document for `old` → `new`, both at most the published size.
    pub fn consistency_proof(&self, old: u64, new: u64) -> Result<ProofAnswer, LogError> {
        if old > new {
            return Ok(ProofAnswer::BadRange);
        }
        if new > self.published().size {
            return Ok(ProofAnswer::PastEnd);
        }
        let proof = self.tree.read().map_err(lock_err)?.consistency_proof(old, new);
        match proof {
            Some(p) => Ok(ProofAnswer::Proof(consistency_json(old, new, &p))),
            None => Err(LogError::Inconsistent(format!("no consistency proof {old}..{new}"))),
        }
    }

    /// The inclusion proof document for leaf `index` in the tree of `size` leaves.
    pub fn inclusion_proof(&self, size: u64, index: u64) -> Result<ProofAnswer, LogError> {
        if index >= size {
            return Ok(ProofAnswer::BadRange);
        }
        if size > self.published().size {
            return Ok(ProofAnswer::PastEnd);
        }
        let proof = self.tree.read().map_err(lock_err)?.inclusion_proof(index, size);
        match proof {
            Some(p) => Ok(ProofAnswer::Proof(inclusion_json(size, index, &p))),
            None => Err(LogError::Inconsistent(format!("no inclusion proof {index} in {size}"))),
        }
    }

    /// The leaf hashes of the first `size` leaves (for export and tests).
    pub fn leaf_hashes(&self, size: u64) -> Result<Vec<Hash>, LogError> {
        let tree = self.tree.read().map_err(lock_err)?;
        (0..size)
            .map(|i| {
                tree.leaf(i)
                    .ok_or_else(|| LogError::Inconsistent(format!("no leaf {i}")))
            })
            .collect()
    }
}

/// A proof lookup's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProofAnswer {
    /// The JSON document.
    Proof(Vec<u8>),
    /// The sizes are out of order (`old > new`, `index >= size`).
    BadRange,
    /// A size past the published size.
    PastEnd,
}

/// `{"old":n,"new":n,"proof":["hex",…]}`, byte-for-byte what live and export serve.
pub fn consistency_json(old: u64, new: u64, proof: &[Hash]) -> Vec<u8> {
    let doc = ConsistencyProofDoc {
        old,
        new,
        proof: proof_to_hex(proof),
    };
    serde_json::to_vec(&doc).unwrap_or_default()
}

/// `{"size":n,"index":n,"proof":["hex",…]}`.
pub fn inclusion_json(size: u64, index: u64, proof: &[Hash]) -> Vec<u8> {
    let doc = InclusionProofDoc {
        size,
        index,
        proof: proof_to_hex(proof),
    };
    serde_json::to_vec(&doc).unwrap_or_default()
}
