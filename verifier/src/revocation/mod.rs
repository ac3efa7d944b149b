//! Revocation (spec/revocation.md): signed revocation entries in an append-only Merkle
//! log, signed checkpoints and snapshots, and the client that syncs them into a local
//! state and answers "is this model revoked?" offline.
//!
//! * [`entry`]: entries and signed entries (the log leaves), submissions.
//! * [`lineage`]: lineage documents, what a `lineage` revocation names.
//! * [`policy`]: which issuers a log accepts and what each may revoke.
//! * [`merkle`], [`note`]: RFC 6962 hashing and proofs; C2SP signed notes and checkpoints.
//! * [`cosignature`]: witness cosignatures (C2SP tlog-cosignature) and the witness quorum.
//! * [`rotation`]: the log's key rotation statement, a leaf in which the old key announces
//!   the new one.
//! * [`snapshot`]: the signed snapshot (version, expiry) and checkpoint helpers.
//! * [`tile`]: publication paths, entry tiles, proof and API documents.
//! * [`state`]: the client state folder, sync rules and lookups.
//! * [`local`]: the state folder as a runtime uses it: pinned log keys, a lock, sync
//!   from a configured source, freshness.
//! * [`bundle`]: offline bundles for air-gapped machines.
//! * `client` (feature `client`): HTTP source and submission.

pub mod bundle;
#[cfg(feature = "client")]
pub mod client;
pub mod cosignature;
pub mod entry;
pub mod lineage;
pub mod local;
pub mod merkle;
pub mod note;
pub mod policy;
pub mod rotation;
pub mod snapshot;
pub mod state;
#[doc(hidden)]
pub mod testing;
pub mod tile;
