//! # weightseal-server
//!
//! The weightseal revocation service (spec/revocation.md): issuers submit signed revocation
//! entries, the server checks them against its issuer policy, appends them to an RFC 6962 Merkle
//! log, and publishes signed checkpoints and snapshots, entry tiles and proofs that runtimes sync.
//!
//! Every wire format comes from [`weightseal_verifier::revocation`]; this crate only stores,
//! signs and serves. [`app()`] builds the HTTP router, [`store`] holds the two storage backends
//! (SQLite and PostgreSQL) behind one trait, [`log`] keeps the in-memory Merkle tree and the
//! current publication, [`export`] writes the publication as static files, and [`witness`] is
//! a C2SP tlog-witness witness and the log's client for it.

pub mod app;
pub mod config;
pub mod error;
pub mod export;
pub mod formats;
pub mod keys;
pub mod log;
pub mod metrics;
pub mod store;
pub mod witness;

pub use app::{app, AppState};
pub use log::{Log, LogOptions, Published};
pub use store::{open_store, Store};
