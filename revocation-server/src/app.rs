//! The HTTP service. GET paths are exactly the static export's file paths (see [`crate::export`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{DefaultBodyLimit, MatchedPath, Path, Request, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE, ETAG, IF_NONE_MATCH};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};

use crate::error::AppError;
use crate::formats::{Policy, Refusal};
use weightseal_verifier::revocation::lineage::parse_lineage_path;
use weightseal_verifier::revocation::tile::{HashTileRef, TileRef};

use crate::log::{etag, now_unix, Appended, Log, ProofAnswer};
use crate::metrics::Metrics;

/// The largest request body accepted (the verifier's limit for a submission carrying a lineage
/// document: 1 MiB of entries plus 16 MiB); larger gets 413. A submission without a lineage
/// document is still held to 1 MiB, by the decoder.
pub const MAX_BODY_BYTES: usize = weightseal_verifier::revocation::entry::MAX_SUBMISSION_WITH_LINEAGE_BYTES;
/// Cache-Control for documents that change (checkpoint, snapshot).
pub const NO_CACHE: &str = "no-cache";
/// Cache-Control for documents that never change (tiles, proofs between fixed sizes).
pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// Longest a request may take before it is answered 408.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

const TEXT: &str = "text/plain; charset=utf-8";
const CBOR: &str = "application/cbor";
/// tlog-tiles serves hash tiles and entry bundles as raw bytes.
const OCTETS: &str = "application/octet-stream";
const JSON: &str = "application/json";

/// What every handler shares.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The log.
    pub log: Arc<Log>,
    /// Who may submit what.
    pub policy: Arc<Policy>,
    /// Counters.
    pub metrics: Arc<Metrics>,
}

impl AppState {
    /// State over `log` and `policy`, with fresh metrics.
    pub fn new(log: Arc<Log>, policy: Policy) -> Self {
        Self {
            log,
            policy: Arc::new(policy),
            metrics: Arc::new(Metrics::default()),
        }
    }
}

/// The router: every endpoint, the body limit, metrics and logging for every request.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/checkpoint", get(checkpoint))
        .route("/v1/snapshot", get(snapshot))
        .route("/v1/publication", get(publication))
        .route("/tile/{*path}", get(get_tile))
        .route("/v1/proof/consistency/{old}/{new}", get(consistency))
        .route("/v1/proof/inclusion/{size}/{index}", get(inclusion))
        .route("/v1/lineage/{digest}", get(get_lineage))
        .route("/v1/submit", post(submit))
        .route("/v1/health", get(health))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn(declared_too_large))
        .layer(middleware::from_fn_with_state(state.clone(), track))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(panicked))
        .with_state(state)
}

fn panicked(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    AppError::internal("a handler panicked").into_response()
}

async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |m| m.as_str().to_owned());
    let method = req.method().clone();
    let start = Instant::now();
    let response = next.run(req).await;
    let status = response.status().as_u16();
    state.metrics.request(&route, status);
    let elapsed_us = u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX);
    if method == axum::http::Method::GET && status < 400 {
        tracing::debug!(%method, %route, status, elapsed_us, "request");
    } else {
        tracing::info!(%method, %route, status, elapsed_us, "request");
    }
    response
}

/// A request that declares a body over the limit in `Content-Length` is answered 413 at once,
/// before any of the body is read (else the client would wait for the request timeout while
/// the limit is only hit on reading).
async fn declared_too_large(req: Request, next: Next) -> Response {
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        let mut response = AppError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("request body is over the limit of {MAX_BODY_BYTES} bytes"),
        )
        .into_response();
        // The body will not be read: tell the client not to reuse the connection.
        response
            .headers_mut()
            .insert(axum::http::header::CONNECTION, HeaderValue::from_static("close"));
        return response;
    }
    next.run(req).await
}

async fn not_found() -> AppError {
    AppError::not_found("no such path")
}

async fn method_not_allowed() -> AppError {
    AppError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "method not allowed here",
    )
}

/// Whether `If-None-Match` names `etag` (or `*`); weak tags compare equal too.
fn matches_etag(headers: &HeaderMap, etag: &str) -> bool {
    headers.get_all(IF_NONE_MATCH).iter().any(|v| {
        v.to_str().is_ok_and(|s| {
            s.split(',')
                .map(str::trim)
                .any(|t| t == "*" || t.strip_prefix("W/").unwrap_or(t) == etag)
        })
    })
}

fn header(v: &str) -> HeaderValue {
    HeaderValue::from_str(v).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// A cacheable answer: 304 when the client holds `etag`, else 200 with the body.
fn cached(
    headers: &HeaderMap,
    body: Bytes,
    etag: &str,
    cache_control: &'static str,
    content_type: &'static str,
) -> Response {
    let mut response = if matches_etag(headers, etag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mut r = Response::new(Body::from(body));
        r.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        r
    };
    let h = response.headers_mut();
    h.insert(ETAG, header(etag));
    h.insert(CACHE_CONTROL, HeaderValue::from_static(cache_control));
    response
}

/// A path number: plain decimal, no sign, no leading zeros.
fn parse_number(text: &str, what: &str) -> Result<u64, AppError> {
    let canonical = !text.is_empty()
        && text.len() <= 20
        && text.bytes().all(|b| b.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'));
    canonical.then(|| text.parse::<u64>().ok()).flatten().ok_or_else(|| {
        AppError::bad_request(
            "bad_path",
            format!("{what} must be a decimal number without leading zeros"),
        )
    })
}

fn path_error(e: PathRejection) -> AppError {
    AppError::bad_request("bad_path", e.body_text())
}

async fn checkpoint(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let p = state.log.published();
    cached(&headers, p.checkpoint.clone(), &p.checkpoint_etag, NO_CACHE, TEXT)
}

async fn snapshot(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let p = state.log.published();
    cached(&headers, p.snapshot.clone(), &p.snapshot_etag, NO_CACHE, TEXT)
}

/// `GET /v1/publication`: the checkpoint and snapshot of one tree as one document. The
/// replica first catches up with the store, so that whichever replica a reader asks, it gets
/// at least the newest publication committed before its request (readers alternating between
/// replicas never see the log go back), and both notes always describe the same tree.
async fn publication(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Err(e) = state.log.refresh().await {
        tracing::warn!(error = %e, "cannot catch up with the store");
    }
    let p = state.log.published();
    cached(&headers, p.publication.clone(), &p.publication_etag, NO_CACHE, CBOR)
}

/// Called when a request names a size past the published log: catches up with the store so
/// that a client that read a newer publication from another replica (behind a load balancer,
/// every request may go to another replica) is answered instead of getting a 404 for data the
/// log did publish. Not rate-limited: the cost is one indexed single-row query (what every
/// `v1/publication` costs too), and a rate limit here made a lagging replica refuse tiles the
/// reader had every right to ask for. Errors are logged; the request is then answered from
/// what is held.
async fn catch_up(state: &AppState) {
    if let Err(e) = state.log.refresh().await {
        tracing::warn!(error = %e, "cannot catch up with the store");
    }
}

async fn tile_response(state: &AppState, headers: &HeaderMap, k: u64, width: u64) -> Result<Response, AppError> {
    let mut tile = state.log.tile(k, width).await?;
    if tile.is_none() {
        catch_up(state).await;
        tile = state.log.tile(k, width).await?;
    }
    match tile {
        Some(tile) => {
            let tag = etag(&tile);
            Ok(cached(headers, tile, &tag, IMMUTABLE, OCTETS))
        }
        None => Err(AppError::not_found("no such entry bundle in the published log")),
    }
}

async fn hash_tile_response(state: &AppState, headers: &HeaderMap, tile: HashTileRef) -> Result<Response, AppError> {
    let mut bytes = state.log.hash_tile(tile)?;
    if bytes.is_none() {
        catch_up(state).await;
        bytes = state.log.hash_tile(tile)?;
    }
    match bytes {
        Some(bytes) => {
            let tag = etag(&bytes);
            Ok(cached(headers, bytes, &tag, IMMUTABLE, OCTETS))
        }
        None => Err(AppError::not_found("no such hash tile in the published log")),
    }
}

/// `GET /tile/entries/<N>[.p/<w>]` (entry bundles) and `GET /tile/<L>/<N>[.p/<w>]` (hash
/// tiles): the path is parsed by the verifier's [`TileRef::parse_path`] and
/// [`HashTileRef::parse_path`], so the server accepts exactly the tlog-tiles paths.
async fn get_tile(State(state): State<AppState>, headers: HeaderMap, uri: Uri) -> Result<Response, AppError> {
    if let Some(tile) = TileRef::parse_path(uri.path()) {
        return tile_response(&state, &headers, tile.index, tile.width).await;
    }
    if let Some(tile) = HashTileRef::parse_path(uri.path()) {
        return hash_tile_response(&state, &headers, tile).await;
    }
    Err(AppError::bad_request(
        "bad_path",
        "a tile path is /tile/<L>/<N>[.p/<w>] or /tile/entries/<N>[.p/<w>]: N in 3-digit groups (x001/x234/067), 1 <= w <= 255",
    ))
}

/// `GET /v1/lineage/{digest}`: a stored lineage document, by the digest its entries name
/// (64 lowercase hex digits, the verifier's own path rule). Content-addressed, so immutable.
async fn get_lineage(State(state): State<AppState>, headers: HeaderMap, uri: Uri) -> Result<Response, AppError> {
    let path = uri.path().trim_start_matches('/');
    let digest = parse_lineage_path(path).ok_or_else(|| {
        AppError::bad_request(
            "bad_path",
            "a lineage path is /v1/lineage/{digest}: 64 lowercase hex digits",
        )
    })?;
    match state.log.lineage(digest.as_bytes()).await? {
        Some(doc) => {
            let tag = etag(&doc);
            Ok(cached(&headers, Bytes::from(doc), &tag, IMMUTABLE, CBOR))
        }
        None => Err(AppError::not_found("no such lineage document")),
    }
}

fn proof_response(headers: &HeaderMap, answer: ProofAnswer, order: &str) -> Result<Response, AppError> {
    match answer {
        ProofAnswer::Proof(doc) => {
            let tag = etag(&doc);
            Ok(cached(headers, Bytes::from(doc), &tag, IMMUTABLE, JSON))
        }
        ProofAnswer::BadRange => Err(AppError::bad_request("bad_range", order.to_owned())),
        ProofAnswer::PastEnd => Err(AppError::not_found("size is past the published log")),
    }
}

async fn consistency(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<Response, AppError> {
    let Path((old, new)) = path.map_err(path_error)?;
    let old = parse_number(&old, "old size")?;
    let new = parse_number(&new, "new size")?;
    let mut answer = state.log.consistency_proof(old, new)?;
    if answer == ProofAnswer::PastEnd {
        catch_up(&state).await;
        answer = state.log.consistency_proof(old, new)?;
    }
    proof_response(&headers, answer, "old size is larger than new size")
}

async fn inclusion(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<Response, AppError> {
    let Path((size, index)) = path.map_err(path_error)?;
    let size = parse_number(&size, "tree size")?;
    let index = parse_number(&index, "leaf index")?;
    let mut answer = state.log.inclusion_proof(size, index)?;
    if answer == ProofAnswer::PastEnd {
        catch_up(&state).await;
        answer = state.log.inclusion_proof(size, index)?;
    }
    proof_response(&headers, answer, "index must be below size")
}

#[derive(serde::Serialize)]
struct SubmitAnswer {
    index: u64,
    leaf_hash: String,
    size: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    leaf_hashes: Vec<String>,
}

fn is_cbor(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case(CBOR))
}

async fn submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, AppError> {
    let refuse = |reason: &'static str, err: AppError| {
        state.metrics.refused(reason);
        err
    };
    if !is_cbor(&headers) {
        return Err(refuse(
            "unsupported_media_type",
            AppError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "Content-Type must be application/cbor",
            ),
        ));
    }
    let body = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            refuse(
                "too_large",
                AppError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "too_large",
                    format!("request body is over the limit of {MAX_BODY_BYTES} bytes"),
                ),
            )
        } else {
            refuse(
                "malformed",
                AppError::bad_request("malformed", "cannot read the request body"),
            )
        }
    })?;
    let accepted = state.policy.check_submission(&body, now_unix()).map_err(|r| match r {
        Refusal::Malformed(m) => refuse("malformed", AppError::bad_request("malformed", m)),
        Refusal::BadSignature(m) => refuse("bad_signature", AppError::bad_request("bad_signature", m)),
        Refusal::UnknownIssuer(m) => refuse(
            "unknown_issuer",
            AppError::new(StatusCode::FORBIDDEN, "unknown_issuer", m),
        ),
        Refusal::OutOfScope(m) => refuse("out_of_scope", AppError::new(StatusCode::FORBIDDEN, "out_of_scope", m)),
        Refusal::Stale(m) => refuse("bad_time", AppError::bad_request("bad_time", m)),
        Refusal::RevokedIssuer(m) => refuse(
            "revoked_issuer",
            AppError::new(StatusCode::FORBIDDEN, "revoked_issuer", m),
        ),
        Refusal::BadLineage(m) => refuse("bad_lineage", AppError::bad_request("bad_lineage", m)),
        Refusal::TooLarge(m) => refuse(
            "too_large",
            AppError::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", m),
        ),
    })?;
    // A `lineage` entry is enforceable only with its document: one not carried must already
    // be stored (documents are never deleted, so this holds at the append too).
    for digest in &accepted.lineage_needed {
        if state.log.lineage(digest.as_bytes()).await?.is_none() {
            return Err(refuse(
                "bad_lineage",
                AppError::bad_request(
                    "bad_lineage",
                    format!(
                        "a lineage entry names document {digest}, which this log does not hold: submit the \
                         document with the entry"
                    ),
                ),
            ));
        }
    }
    let leaves = accepted.entries.iter().map(|a| a.leaf.clone()).collect();
    let lineage = accepted
        .lineage
        .iter()
        .map(|d| (*d.digest().as_bytes(), d.as_bytes().to_vec()))
        .collect();
    match state.log.append_with_lineage(leaves, lineage).await {
        Ok(Appended::New {
            index,
            leaf_hash,
            leaf_hashes,
            size,
        }) => {
            for (i, a) in accepted.entries.iter().enumerate() {
                state.metrics.accepted();
                tracing::info!(
                    index = index + i as u64,
                    issuer = %a.issuer,
                    subject = %a.subject,
                    action = %a.action,
                    "entry appended"
                );
            }
            let answer = SubmitAnswer {
                index,
                leaf_hash: hex::encode(leaf_hash),
                size,
                leaf_hashes: if accepted.batch_form {
                    leaf_hashes.iter().map(hex::encode).collect()
                } else {
                    Vec::new()
                },
            };
            Ok((StatusCode::CREATED, Json(answer)).into_response())
        }
        Ok(Appended::Duplicate { index }) => Err(refuse(
            "replay",
            AppError::new(
                StatusCode::CONFLICT,
                "replay",
                format!("this entry is already in the log at index {index}"),
            ),
        )),
        Ok(Appended::Refused(why)) => Err(refuse(
            "revoked_issuer",
            AppError::new(StatusCode::FORBIDDEN, why.code(), why.to_string()),
        )),
        Err(e) => Err(refuse("internal", e.into())),
    }
}

#[derive(serde::Serialize)]
struct Health {
    status: &'static str,
    size: u64,
}

async fn health(State(state): State<AppState>) -> Json<Health> {
    Json(Health {
        status: "ok",
        size: state.log.published().size,
    })
}

async fn metrics(State(state): State<AppState>) -> Response {
    let text = state.metrics.render(&state.log.published());
    ([(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text).into_response()
}
