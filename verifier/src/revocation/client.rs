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
use crate::revocation::entry::{SignedEntry, Submission};
use crate::revocation::state::{is_safe_path, max_response_bytes, Source, SourceError};
use crate::revocation::tile::{ApiError, SubmitReceipt, SUBMIT_PATH};

/// Default connect timeout.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default total timeout per request.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// The largest answer to a submission, in bytes.
pub const MAX_SUBMIT_RESPONSE_BYTES: usize = 64 * 1024;

fn build_client(timeout: Duration) -> Result<reqwest::blocking::Client, String> {
    reqwest::blocking::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT.min(timeout))
        .timeout(timeout)
        .user_agent(concat!("weightseal-verifier/", env!("CARGO_PKG_VERSION")))
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
}

/// Submits a signed entry (and, for a lab revoking a manifest, the signature file proving
/// its authority) to the server at `base`. Returns the server's receipt (HTTP 201).
pub fn submit(
    base: &str,
    entry: &SignedEntry,
    authority: Option<&SignatureFile>,
) -> Result<SubmitReceipt, SubmitError> {
    let authority = authority
        .map(SignatureFile::to_bytes)
        .transpose()
        .map_err(|e| SubmitError::Encode(e.to_string()))?;
    let body = Submission {
        entry: entry.clone(),
        authority,
    }
    .to_bytes()
    .map_err(|e| SubmitError::Encode(e.to_string()))?;
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
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(join("http://h:1/", "v1/snapshot"), "http://h:1/v1/snapshot");
        assert_eq!(join("https://cdn/x", "v1/entries/0"), "https://cdn/x/v1/entries/0");
        assert!(HttpSource::new("ftp://x").is_err());
    }

    #[test]
    fn unreachable_server_is_a_transport_error() {
        let s = HttpSource::with_timeout("http://127.0.0.1:9", Duration::from_secs(2));
        let Ok(s) = s else { return };
        assert!(matches!(s.get("v1/snapshot"), Err(SourceError::Transport { .. })));
        assert!(matches!(s.get("../x"), Err(SourceError::BadPath { .. })));
    }
}
