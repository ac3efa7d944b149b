//! # weightseal-log
//!
//! Everything only a revocation log operator (or a witness) runs, kept out of
//! `weightseal-verifier` so that the crate an inference runtime links carries only what
//! verification needs (issue 8, "keep the runtime crate lean"):
//!
//! * [`note`]: the log's signer key and note signing (C2SP signed notes);
//! * [`snapshot`]: signing checkpoints and snapshots;
//! * [`cosignature`]: a witness's cosigning key;
//! * [`rotation`]: signing a log key rotation statement;
//! * [`policy`]: the issuer admission policy (which issuers the log accepts, the time
//!   window, replay);
//! * [`tile`]: writing proof documents and listing the hash tiles of an export;
//! * [`testing`]: a minimal in-process log that writes a static export, for tests and
//!   benchmarks.
//!
//! The formats, and every rule a client applies to what the log publishes, stay in
//! `weightseal_verifier::revocation`: this crate writes what that one reads, and its tests
//! open what it signs with the verifier's own parsers.
#![warn(missing_docs)]

pub mod cosignature;
pub mod note;
pub mod policy;
pub mod rotation;
pub mod snapshot;
pub mod testing;
pub mod tile;
