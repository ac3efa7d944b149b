//! Revocation (spec/revocation.md): signed revocation entries in an append-only Merkle
//! log, signed checkpoints and snapshots, and the client that syncs them into a local
//! state and answers "is this model revoked?" offline.
//!
//! This is the client's half: every format the log publishes, and every rule a runtime
//! applies to it. What only a log operator or a witness runs (signing notes, checkpoints,
//! snapshots, rotation statements and cosignatures, the issuer admission policy, writing
//! proofs, the test publisher) is the `weightseal-log` crate in `revocation-server/log/`,
//! and the service around it is `weightseal-server`. `tests/tests/verifier_is_lean.rs`
//! refuses that code back here.
//!
//! * [`entry`]: entries and signed entries (the log leaves), submissions.
//! * [`lineage`]: lineage documents, what a `lineage` revocation names.
//! * [`policy`]: the revoked-key rule clients apply, and the refusals of the issuer policy.
//! * [`merkle`], [`note`]: RFC 6962 hashing and proofs; C2SP signed notes and checkpoints.
//! * [`cosignature`]: witness cosignatures (C2SP tlog-cosignature) and the witness quorum.
//! * [`rotation`]: the log's key rotation statement, a leaf in which the old key announces
//!   the new one.
//! * [`snapshot`]: the signed snapshot (version, expiry) and opening checkpoints.
//! * [`tile`]: publication paths, entry tiles, proof and API documents (an offline bundle
//!   serves its entries as tiles, so tile encoding is here too).
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
#[cfg(test)]
mod test_signing;
pub mod tile;
