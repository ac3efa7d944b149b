//! HTTP access to a revocation log (feature `client`): a [`Source`] over a live server
//! or any static host serving an export, and [`submit`] for issuers.
//!
//! Blocking `reqwest` with rustls; no proxy or cookie support. Every request has a
//! connect timeout and a total timeout, and every answer is read up to
//! [`max_response_bytes`] of its path (64 KiB for notes and proofs, one tile's limit
//! for tiles): a longer body is refused, whatever `Content-Length` says. The client
//! never relies on `Content-Type` or on live-only paths.

use std::io::Read as _;
use std::time::Duration;

use crate::envelope::SignatureFile;
use crate::revocation::entry::{BatchSubmission, SignedEntry, Submission};
use crate::revocation::merkle::{self, Hash, ProofError};
use crate::revocation::note::{Checkpoint, NoteVerifierKey};
use crate::revocation::snapshot::{open_checkpoint, SnapshotError};
use crate::revocation::state::{is_safe_path, max_response_bytes, Source, SourceError};
use crate::revocation::tile::{
    inclusion_proof_path, ApiError, InclusionProofDoc, SubmitReceipt, TileError, CHECKPOINT_PATH, SUBMIT_PATH,
};

/// Default connect timeout.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default total timeout per request.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// The largest answer to a submission, in bytes.
pub const MAX_SUBMIT_RESPONSE_BYTES: usize = 64 * 1024;

fn build_client(timeout: Duration) -> Result<reqwest::blocking::Client, String> {
    build_client_with_roots(timeout, Vec::new())
}

/// The TLS settings of every request: rustls on the `ring` provider, TLS 1.2 and 1.3,
/// server certificates checked by the platform verifier (the system's roots, plus `extra`
/// — tests only). The config is handed to reqwest rather than installed as the process's
/// default provider, so a runtime that links us keeps its own choice.
fn tls_config(extra: Vec<rustls::pki_types::CertificateDer<'static>>) -> Result<rustls::ClientConfig, rustls::Error> {
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let verifier = if extra.is_empty() {
        rustls_platform_verifier::Verifier::new(provider.clone())?
    } else {
        rustls_platform_verifier::Verifier::new_with_extra_roots(extra, provider.clone())?
    };
    // `dangerous()` is rustls's door for any verifier other than its built-in webpki one;
    // the platform verifier checks the chain and the host name like the built-in one.
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(std::sync::Arc::new(verifier))
        .with_no_client_auth())
}

fn build_client_with_roots(
    timeout: Duration,
    extra: Vec<rustls::pki_types::CertificateDer<'static>>,
) -> Result<reqwest::blocking::Client, String> {
    let tls = tls_config(extra).map_err(|e| format!("TLS setup: {e}"))?;
    reqwest::blocking::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT.min(timeout))
        .timeout(timeout)
        .user_agent(concat!("weightseal-verifier/", env!("CARGO_PKG_VERSION")))
        .tls_backend_preconfigured(tls)
        .build()
        .map_err(|e| e.to_string())
}

fn join(base: &str, path: &str) -> String {
    format!("{}/{}", base.trim_end_matches('/'), path)
}

/// Reads at most `limit` bytes of a body; `None` when it is longer.
fn read_limited(resp: reqwest::blocking::Response, limit: usize) -> Result<Option<Vec<u8>>, String> {
    if resp.content_length().is_some_and(|n| n > limit as u64) {
        return Ok(None);
    }
    let mut buf = Vec::new();
    resp.take(limit as u64 + 1)
        .read_to_end(&mut buf)
        .map_err(|e| e.to_string())?;
    Ok((buf.len() <= limit).then_some(buf))
}

/// A revocation log over HTTP(S): `base` is the URL under which `v1/…` lives.
#[derive(Debug, Clone)]
pub struct HttpSource {
    base: String,
    client: reqwest::blocking::Client,
}

impl HttpSource {
    /// A source for `base` (e.g. `https://revocations.example` or a CDN prefix) with
    /// the default timeouts.
    pub fn new(base: &str) -> Result<Self, SourceError> {
        Self::with_timeout(base, REQUEST_TIMEOUT)
    }

    /// A source with a total per-request timeout.
    pub fn with_timeout(base: &str, timeout: Duration) -> Result<Self, SourceError> {
        if !(base.starts_with("https://") || base.starts_with("http://")) {
            return Err(SourceError::Transport {
                url: base.into(),
                reason: "the URL must start with https:// or http://".into(),
            });
        }
        let client = build_client(timeout).map_err(|reason| SourceError::Transport {
            url: base.into(),
            reason,
        })?;
        Ok(HttpSource {
            base: base.to_string(),
            client,
        })
    }

    /// The base URL.
    pub fn base(&self) -> &str {
        &self.base
    }
}

impl Source for HttpSource {
    fn get(&self, path: &str) -> Result<Option<Vec<u8>>, SourceError> {
        if !is_safe_path(path) {
            return Err(SourceError::BadPath { path: path.into() });
        }
        let url = join(&self.base, path);
        let transport = |reason: String| SourceError::Transport {
            url: url.clone(),
            reason,
        };
        let resp = self.client.get(&url).send().map_err(|e| transport(e.to_string()))?;
        let status = resp.status().as_u16();
        if status == 404 {
            return Ok(None);
        }
        if status != 200 {
            return Err(SourceError::Status { url, status });
        }
        let limit = max_response_bytes(path);
        match read_limited(resp, limit).map_err(transport)? {
            Some(body) => Ok(Some(body)),
            None => Err(SourceError::TooLarge {
                path: path.into(),
                limit,
            }),
        }
    }
}

/// POSTs `body` to `url` and returns the HTTP status and at most `limit` bytes of the answer
/// (a longer answer is a [`SourceError::TooLarge`]). Used by a log to reach its witnesses
/// (C2SP tlog-witness `add-checkpoint`), with the same TLS settings and timeouts as every
/// request here.
pub fn post(
    url: &str,
    content_type: &str,
    body: Vec<u8>,
    timeout: Duration,
    limit: usize,
) -> Result<(u16, Vec<u8>), SourceError> {
    let transport = |reason: String| SourceError::Transport {
        url: url.to_owned(),
        reason,
    };
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        return Err(transport("the URL must start with https:// or http://".into()));
    }
    let client = build_client(timeout).map_err(transport)?;
    let resp = client
        .post(url)
        .header("content-type", content_type)
        .body(body)
        .send()
        .map_err(|e| transport(e.to_string()))?;
    let status = resp.status().as_u16();
    match read_limited(resp, limit).map_err(transport)? {
        Some(bytes) => Ok((status, bytes)),
        None => Err(SourceError::TooLarge {
            path: url.to_owned(),
            limit,
        }),
    }
}

/// Why a submission failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SubmitError {
    /// The submission could not be encoded.
    #[error("cannot encode the submission: {0}")]
    Encode(String),
    /// The request did not complete.
    #[error("{url}: {reason}")]
    Transport {
        /// The URL.
        url: String,
        /// What failed.
        reason: String,
    },
    /// The server refused the entry.
    #[error("the server refused the entry (HTTP {status}, {code}): {message}")]
    Refused {
        /// The HTTP status.
        status: u16,
        /// The server's error code (e.g. `unknown_issuer`, `out_of_scope`, `replay`).
        code: String,
        /// The server's message.
        message: String,
    },
    /// The server answered something this client does not understand.
    #[error("{url}: unexpected answer (HTTP {status}): {problem}")]
    BadAnswer {
        /// The URL.
        url: String,
        /// The HTTP status.
        status: u16,
        /// What is wrong.
        problem: String,
    },
    /// The receipt names another leaf hash than the one this client computed for its entry.
    #[error("the receipt does not match entry {position}: it says leaf hash {claimed}, the entry's is {ours}")]
    ReceiptMismatch {
        /// Position of the entry in the submission.
        position: usize,
        /// The leaf hash the receipt claims (hex), or a description of what is missing.
        claimed: String,
        /// The entry's own leaf hash (hex).
        ours: String,
    },
    /// The log's checkpoint could not be fetched or does not verify under a pinned key.
    #[error("cannot check the receipt: the checkpoint from {url}: {reason}")]
    CheckpointUnverified {
        /// The URL.
        url: String,
        /// What failed.
        reason: CheckpointProblem,
    },
    /// No signed checkpoint covering the receipt appeared in time.
    #[error(
        "the receipt claims entries up to index {needed_size} - 1, but the log's signed checkpoint holds only {size}"
    )]
    NotCovered {
        /// The signed checkpoint's size.
        size: u64,
        /// The size the receipt needs.
        needed_size: u64,
    },
    /// The inclusion proof of an entry could not be fetched or parsed.
    #[error("cannot check the receipt: inclusion proof {url}: {reason}")]
    ProofUnavailable {
        /// The URL.
        url: String,
        /// What failed.
        reason: String,
    },
    /// The entry is not in the tree the signed checkpoint commits to: the receipt is false.
    #[error(
        "entry {position} (leaf hash {leaf_hash}) is not at index {index} of the signed tree of size {size}: {source}"
    )]
    NotIncluded {
        /// Position of the entry in the submission.
        position: usize,
        /// The index the receipt gave.
        index: u64,
        /// The entry's leaf hash (hex).
        leaf_hash: String,
        /// The checkpoint's size.
        size: u64,
        /// Why the proof failed.
        source: ProofError,
    },
}

/// Why a checkpoint could not be used to check a receipt.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointProblem {
    /// Fetching it failed.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// The server has none.
    #[error("no checkpoint published")]
    Missing,
    /// It does not open under a pinned key.
    #[error(transparent)]
    Note(#[from] SnapshotError),
}

/// How often and how long [`prove_receipt`] waits for a covering checkpoint or a proof (a
/// replica behind a load balancer may not have caught up yet).
const PROOF_ATTEMPTS: u32 = 25;
const PROOF_RETRY: Duration = Duration::from_millis(200);

/// A receipt that was checked: every entry is in the tree of `checkpoint`, which verified
/// under a pinned log key.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProvenReceipt {
    /// The index of the first entry.
    pub first_index: u64,
    /// The entries' leaf hashes, computed by this client.
    pub leaf_hashes: Vec<Hash>,
    /// The signed checkpoint the inclusion proofs verified against.
    pub checkpoint: Checkpoint,
}

/// Checks a submission's receipt (spec/revocation.md §6.1): the receipt must name the
/// entries' own leaf hashes, and each entry's inclusion proof must verify against a
/// checkpoint signed by one of `keys`. Only then is the submission known to be logged; a
/// server that answers "accepted" without logging cannot pass this.
pub fn prove_receipt(
    base: &str,
    keys: &[NoteVerifierKey],
    entries: &[SignedEntry],
    receipt: &SubmitReceipt,
) -> Result<ProvenReceipt, SubmitError> {
    let ours: Vec<Hash> = entries.iter().map(SignedEntry::leaf_hash).collect();
    let claimed: Vec<&str> = if receipt.leaf_hashes.is_empty() {
        vec![receipt.leaf_hash.as_str()]
    } else {
        receipt.leaf_hashes.iter().map(String::as_str).collect()
    };
    for (position, ours) in ours.iter().enumerate() {
        let ours = hex::encode(ours);
        match claimed.get(position) {
            Some(c) if c.eq_ignore_ascii_case(&ours) => {}
            other => {
                return Err(SubmitError::ReceiptMismatch {
                    position,
                    claimed: other.map_or_else(|| "nothing".to_owned(), |c| (*c).to_owned()),
                    ours,
                })
            }
        }
    }
    if claimed.len() != ours.len() {
        return Err(SubmitError::ReceiptMismatch {
            position: ours.len(),
            claimed: format!("{} leaf hashes", claimed.len()),
            ours: format!("{} entries", ours.len()),
        });
    }
    let needed_size = receipt
        .index
        .checked_add(ours.len() as u64)
        .ok_or(SubmitError::NotCovered {
            size: 0,
            needed_size: u64::MAX,
        })?;
    let source = HttpSource::new(base).map_err(|e| SubmitError::CheckpointUnverified {
        url: base.into(),
        reason: e.into(),
    })?;
    let checkpoint_url = join(base, CHECKPOINT_PATH);
    let mut checkpoint = None;
    for attempt in 0..PROOF_ATTEMPTS {
        let unverified = |reason: CheckpointProblem| SubmitError::CheckpointUnverified {
            url: checkpoint_url.clone(),
            reason,
        };
        let note = source
            .get(CHECKPOINT_PATH)
            .map_err(|e| unverified(e.into()))?
            .ok_or_else(|| unverified(CheckpointProblem::Missing))?;
        let c = open_checkpoint(&note, keys).map_err(|e| unverified(e.into()))?;
        if c.size >= needed_size {
            checkpoint = Some(c);
            break;
        }
        if attempt + 1 == PROOF_ATTEMPTS {
            return Err(SubmitError::NotCovered {
                size: c.size,
                needed_size,
            });
        }
        std::thread::sleep(PROOF_RETRY);
    }
    let Some(checkpoint) = checkpoint else {
        return Err(SubmitError::NotCovered { size: 0, needed_size });
    };
    for (position, leaf) in ours.iter().enumerate() {
        let index = receipt.index + position as u64;
        let path = inclusion_proof_path(checkpoint.size, index);
        let url = join(base, &path);
        let unavailable = |reason: String| SubmitError::ProofUnavailable {
            url: url.clone(),
            reason,
        };
        let mut doc = None;
        for _ in 0..PROOF_ATTEMPTS {
            match source.get(&path).map_err(|e| unavailable(e.to_string()))? {
                Some(d) => {
                    doc = Some(d);
                    break;
                }
                // A replica that has not caught up with the checkpoint yet answers 404.
                None => std::thread::sleep(PROOF_RETRY),
            }
        }
        let doc = doc.ok_or_else(|| unavailable("not found".into()))?;
        let proof = InclusionProofDoc::parse(&doc, checkpoint.size, index)
            .map_err(|e: TileError| unavailable(e.to_string()))?;
        merkle::verify_inclusion(leaf, index, checkpoint.size, &proof, &checkpoint.root).map_err(|source| {
            SubmitError::NotIncluded {
                position,
                index,
                leaf_hash: hex::encode(leaf),
                size: checkpoint.size,
                source,
            }
        })?;
    }
    Ok(ProvenReceipt {
        first_index: receipt.index,
        leaf_hashes: ours,
        checkpoint,
    })
}

/// Submits several signed entries as one batch (spec/revocation.md §6.1): the log appends
/// all of them at consecutive indexes under one checkpoint, or none. Returns the receipt
/// (check it with [`prove_receipt`]).
pub fn submit_batch(
    base: &str,
    entries: &[SignedEntry],
    authority: Option<&SignatureFile>,
) -> Result<SubmitReceipt, SubmitError> {
    submit_with_lineage(base, entries, authority, &[])
}

/// [`submit_batch`], carrying the lineage documents its `lineage` entries name (the log
/// refuses a `lineage` entry whose document it neither receives nor holds).
pub fn submit_with_lineage(
    base: &str,
    entries: &[SignedEntry],
    authority: Option<&SignatureFile>,
    lineage: &[crate::revocation::lineage::LineageDoc],
) -> Result<SubmitReceipt, SubmitError> {
    let authority = authority_bytes(authority)?;
    let body = BatchSubmission {
        entries: entries.to_vec(),
        authority,
        lineage: lineage.to_vec(),
    }
    .to_bytes()
    .map_err(|e| SubmitError::Encode(e.to_string()))?;
    post_submission(base, body)
}

/// Submits a signed entry (and, for a lab revoking a manifest, the signature file proving
/// its authority) to the server at `base`. Returns the server's receipt (HTTP 201).
pub fn submit(
    base: &str,
    entry: &SignedEntry,
    authority: Option<&SignatureFile>,
) -> Result<SubmitReceipt, SubmitError> {
    let authority = authority_bytes(authority)?;
    let body = Submission {
        entry: entry.clone(),
        authority,
    }
    .to_bytes()
    .map_err(|e| SubmitError::Encode(e.to_string()))?;
    post_submission(base, body)
}

/// The exact bytes of the signature file offered as authority, if any.
fn authority_bytes(authority: Option<&SignatureFile>) -> Result<Option<Vec<u8>>, SubmitError> {
    authority
        .map(SignatureFile::to_bytes)
        .transpose()
        .map_err(|e| SubmitError::Encode(e.to_string()))
}

fn post_submission(base: &str, body: Vec<u8>) -> Result<SubmitReceipt, SubmitError> {
    let url = join(base, SUBMIT_PATH);
    let transport = |reason: String| SubmitError::Transport {
        url: url.clone(),
        reason,
    };
    let client = build_client(REQUEST_TIMEOUT).map_err(transport)?;
    let resp = client
        .post(&url)
        .header("content-type", "application/cbor")
        .body(body)
        .send()
        .map_err(|e| transport(e.to_string()))?;
    let status = resp.status().as_u16();
    let bad = |problem: String| SubmitError::BadAnswer {
        url: url.clone(),
        status,
        problem,
    };
    let bytes = read_limited(resp, MAX_SUBMIT_RESPONSE_BYTES)
        .map_err(transport)?
        .ok_or_else(|| bad("the answer is too large".into()))?;
    if status == 201 || status == 200 {
        return serde_json::from_slice::<SubmitReceipt>(&bytes).map_err(|e| bad(e.to_string()));
    }
    match serde_json::from_slice::<ApiError>(&bytes) {
        Ok(e) => Err(SubmitError::Refused {
            status,
            code: e.error,
            message: e.message,
        }),
        Err(_) => Err(bad(String::from_utf8_lossy(&bytes).chars().take(200).collect())),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "test setup")]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(join("http://h:1/", "v1/snapshot"), "http://h:1/v1/snapshot");
        assert_eq!(
            join("https://cdn/x", "tile/entries/000"),
            "https://cdn/x/tile/entries/000"
        );
        assert!(HttpSource::new("ftp://x").is_err());
    }

    /// A CA and a leaf for `localhost` signed by it (what a private deployment would use).
    fn test_pki() -> (
        rustls::pki_types::CertificateDer<'static>,
        rustls::pki_types::CertificateDer<'static>,
        rustls::pki_types::PrivateKeyDer<'static>,
    ) {
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = rcgen::CertifiedIssuer::self_signed(ca_params, rcgen::KeyPair::generate().unwrap()).unwrap();
        let leaf_key = rcgen::KeyPair::generate().unwrap();
        let leaf = rcgen::CertificateParams::new(vec!["localhost".to_string()])
            .unwrap()
            .signed_by(&leaf_key, &ca)
            .unwrap();
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into());
        (ca.der().clone(), leaf.der().clone(), key)
    }

    /// A one-thread HTTPS server (rustls on ring) answering every request with `hello`.
    fn https_server(
        leaf: rustls::pki_types::CertificateDer<'static>,
        key: rustls::pki_types::PrivateKeyDer<'static>,
    ) -> u16 {
        use std::io::Write as _;
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let config = std::sync::Arc::new(
            rustls::ServerConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(vec![leaf], key)
                .unwrap(),
        );
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for tcp in listener.incoming() {
                let Ok(tcp) = tcp else { return };
                let conn = rustls::ServerConnection::new(config.clone()).unwrap();
                let mut tls = rustls::StreamOwned::new(conn, tcp);
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = tls.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\nconnection: close\r\n\r\nhello");
                let _ = tls.flush();
            }
        });
        port
    }

    #[test]
    fn https_works_on_ring_and_refuses_an_untrusted_certificate() {
        let (ca, leaf, key) = test_pki();
        let port = https_server(leaf, key);
        let url = format!("https://localhost:{port}/v1/checkpoint");
        // The system's roots do not include our CA: the handshake must fail (fail closed).
        let untrusted = build_client(Duration::from_secs(10)).unwrap().get(&url).send();
        let err = untrusted.expect_err("a certificate from an unknown CA was accepted");
        let chain = std::iter::successors(Some(&err as &dyn std::error::Error), |e| e.source())
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join(": ");
        assert!(chain.to_lowercase().contains("certificate"), "{chain}");
        // Trusting the CA, the same request goes through.
        let client = build_client_with_roots(Duration::from_secs(10), vec![ca]).unwrap();
        let body = client.get(&url).send().unwrap().text().unwrap();
        assert_eq!(body, "hello");
    }

    #[test]
    fn unreachable_server_is_a_transport_error() {
        let s = HttpSource::with_timeout("http://127.0.0.1:9", Duration::from_secs(2));
        let Ok(s) = s else { return };
        assert!(matches!(s.get("v1/snapshot"), Err(SourceError::Transport { .. })));
        assert!(matches!(s.get("../x"), Err(SourceError::BadPath { .. })));
    }
}
