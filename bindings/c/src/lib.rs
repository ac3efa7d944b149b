//! # weightseal-c
//!
//! The C library (`libweightseal.so`, `libweightseal.a`, `include/weightseal.h`) through
//! which C and C++ runtimes ask the verifier's one load decision whether a model may be
//! loaded, and read each tensor checked as it lands in their memory.
//!
//! This crate holds no policy of its own. Every export translates its arguments, calls
//! the decision (`Policy::open`, `LoadDecision`), and maps the decision's typed refusal
//! (`RefusalKind::exit_code`) to a result code: 0 verified, 1 must not be loaded, 2 could
//! not run. Anything a C caller would need to decide belongs in `weightseal-verifier`.
//!
//! The boundary rules, kept in the private `ffi` module: no panic unwinds into C (each
//! export runs inside `catch_unwind` and returns 2 / NULL); NULL pointers and invalid
//! UTF-8 are errors; error text is truncated to the caller's buffer and always
//! NUL-terminated.
// The C ABI cannot be had without `unsafe`: raw pointers from C are dereferenced here.
// Every block sits in this crate's `ffi` helpers or an export, with a SAFETY comment.
#![allow(
    unsafe_code,
    reason = "a C ABI: raw pointers from the caller; each block has a SAFETY comment"
)]

mod ffi;

use std::ffi::{c_char, c_int, c_void, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::Mutex;

use ffi::{arg_path, arg_str, boundary, ErrBuf};
use weightseal_verifier::{DecisionError, LoadDecision, Policy};

/// Verified: every checked byte matches a trusted signature under the policy (or, in warn
/// mode, the load may proceed; the findings are in `err` / the warning list).
pub const WS_OK: c_int = 0;
/// Must not be loaded: tampered, untrusted, revoked, or revocation status unknown.
pub const WS_REFUSED: c_int = 1;
/// Could not run: bad arguments, unreadable or invalid policy, unknown tensor, wrong
/// buffer size, an I/O error, or an internal error.
pub const WS_ERROR: c_int = 2;

/// The result code of a refusal or error: the decision's own exit code.
fn code_of(e: &DecisionError) -> c_int {
    match e.kind().exit_code() {
        1 => WS_REFUSED,
        _ => WS_ERROR,
    }
}

/// A model opened under a policy: its signature passed the policy and its revocation
/// status was established (see `ws_model_open`). Opaque to C.
#[allow(non_camel_case_types, reason = "the C type name")]
pub struct ws_model {
    decision: LoadDecision,
    /// The names `ws_model_tensor_name` hands out (valid until `ws_model_close`).
    names: Vec<CString>,
    /// Warn-mode findings, from the open and from every read since.
    warnings: Mutex<Vec<String>>,
}

// The header promises that one handle may be used from several threads at once (every
// call but ws_model_close takes it shared): that holds only while the handle is Sync.
const _: () = {
    const fn send_and_sync<T: Send + Sync>() {}
    send_and_sync::<ws_model>();
};

impl std::fmt::Debug for ws_model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ws_model")
            .field("tensors", &self.names.len())
            .finish_non_exhaustive()
    }
}

impl ws_model {
    fn warn(&self, w: &DecisionError) {
        // A poisoned lock only means a panic elsewhere; the list itself is still whole.
        self.warnings
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(w.to_string());
    }
}

/// The three path arguments of `ws_verify` and `ws_model_open`: the policy and signature
/// may be NULL (their defaults), the model may not.
///
/// # Safety
/// Each pointer is NULL or a NUL-terminated string that outlives the returned paths.
unsafe fn open_args<'a>(
    policy_path: *const c_char,
    model_path: *const c_char,
    signature_path: *const c_char,
) -> Result<(Option<&'a Path>, &'a Path, Option<&'a Path>), String> {
    // SAFETY: forwarded from this function's contract.
    unsafe {
        let policy = arg_path(policy_path, "policy_path", true)?;
        let model = arg_path(model_path, "model_path", false)?.ok_or("model_path is NULL")?;
        let sig = arg_path(signature_path, "signature_path", true)?;
        Ok((policy, model, sig))
    }
}

fn load_policy(policy_path: Option<&Path>) -> Result<Policy, DecisionError> {
    match policy_path {
        Some(p) => Policy::from_file(p),
        None => Policy::from_env(),
    }
}

fn warning(w: &DecisionError) -> String {
    format!("warning: {w}")
}

fn joined(warnings: &[DecisionError]) -> String {
    warnings.iter().map(warning).collect::<Vec<_>>().join("\n")
}

/// The library version, a static NUL-terminated string (never free it).
#[no_mangle]
pub extern "C" fn ws_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

/// Decides whether the model at `model_path` (a folder, or one signed file) may be loaded
/// under the policy, checking every byte in scope.
///
/// Returns 0 verified, 1 must not be loaded, 2 could not run. `policy_path` NULL: the file
/// named by `$WEIGHTSEAL_POLICY` (2 if unset). `signature_path` NULL: the default location
/// (`FOLDER/weightseal.sig`, `FILE.weightseal.sig`). `err` (may be NULL) receives a
/// NUL-terminated message, truncated to `err_len` bytes: the reason on 1 or 2, the
/// warn-mode findings (one per line, or "") on 0.
///
/// Thread safety: may be called from any number of threads at once.
///
/// # Safety
/// Each non-NULL `const char *` must point to a NUL-terminated string; `err`, if not
/// NULL, must be writable for `err_len` bytes.
#[no_mangle]
pub unsafe extern "C" fn ws_verify(
    policy_path: *const c_char,
    model_path: *const c_char,
    signature_path: *const c_char,
    err: *mut c_char,
    err_len: usize,
) -> c_int {
    // SAFETY: the caller's contract above: `err` is NULL or writable for `err_len` bytes.
    let mut err = unsafe { ErrBuf::new(err, err_len) };
    boundary(&mut err, WS_ERROR, |err| {
        // SAFETY: each pointer is NULL or a NUL-terminated string (caller's contract).
        let (policy, model, sig) = match unsafe { open_args(policy_path, model_path, signature_path) } {
            Ok(args) => args,
            Err(e) => return err.fail(WS_ERROR, &e),
        };
        let outcome = load_policy(policy).and_then(|p| p.open(model, sig)).and_then(|d| {
            let mut found: Vec<String> = d.warnings().iter().map(warning).collect();
            // No trusted manifest, yet the load is allowed: warn mode (the findings say why) or an
            // unsigned model the policy checks against revocations only. Nothing to
            // hash against; the decision has spoken.
            if d.model().is_some() {
                let (_, later) = d.verify_all(None)?;
                found.extend(later.iter().map(warning));
            }
            Ok(found)
        });
        match outcome {
            Ok(found) => {
                err.set(&found.join("\n"));
                WS_OK
            }
            Err(e) => err.fail(code_of(&e), &e.to_string()),
        }
    })
}

/// Opens the model at `model_path` under the policy (arguments as for `ws_verify`): the
/// signature file, trust, revocation status and the folder's file set (nothing unsigned
/// beside the weights) are decided here; no tensor byte is read.
/// Tensors are then read, each checked, with `ws_model_read_tensor`.
///
/// Returns NULL when the model must not be loaded or the call could not run; `err` says
/// why. In warn mode the handle is returned despite findings (see
/// `ws_model_warning_count`), except when no trusted manifest could be obtained at all:
/// then NULL, and `err` holds the findings (a warn-mode caller may then load unchecked).
/// Likewise NULL for an unsigned model the policy lets load after a revocation check
/// (`unsigned_models = "check-revocations"`): there is no manifest to read against.
/// `ws_model_open_ex` tells these cases from a refusal by its result code.
///
/// Thread safety: the returned handle may be used from several threads at once for every
/// function except `ws_model_close`, which must not race with any other call on it.
///
/// # Safety
/// As for `ws_verify`.
#[no_mangle]
pub unsafe extern "C" fn ws_model_open(
    policy_path: *const c_char,
    model_path: *const c_char,
    signature_path: *const c_char,
    err: *mut c_char,
    err_len: usize,
) -> *mut ws_model {
    // SAFETY: the caller's contract above.
    let mut err = unsafe { ErrBuf::new(err, err_len) };
    boundary(&mut err, std::ptr::null_mut(), |err| {
        // SAFETY: the caller's contract above.
        unsafe { open_model(policy_path, model_path, signature_path, err) }.1
    })
}

/// `ws_model_open` with the decision's result code, for a loader that must tell "refused"
/// from "allowed, but there is nothing to read through": returns 0 with `*out` set (read
/// the tensors through it); 0 with `*out` NULL when the policy lets the model load without
/// a signed manifest to check against (warn mode without a trusted signature, or an
/// unsigned model under `unsigned_models = "check-revocations"`; `err` says which), so the
/// caller loads it as it did before; 1 must not be loaded; 2 could not run (also when
/// `out` is NULL). `*out` is NULL unless 0 is returned with a handle.
///
/// # Safety
/// As for `ws_verify`; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ws_model_open_ex(
    policy_path: *const c_char,
    model_path: *const c_char,
    signature_path: *const c_char,
    out: *mut *mut ws_model,
    err: *mut c_char,
    err_len: usize,
) -> c_int {
    // SAFETY: the caller's contract above.
    let mut err = unsafe { ErrBuf::new(err, err_len) };
    if out.is_null() {
        return err.fail(WS_ERROR, "out is NULL");
    }
    // SAFETY: `out` is non-NULL and writable (the caller's contract).
    unsafe { out.write(std::ptr::null_mut()) };
    boundary(&mut err, WS_ERROR, |err| {
        // SAFETY: the caller's contract above.
        let (code, m) = unsafe { open_model(policy_path, model_path, signature_path, err) };
        // SAFETY: `out` is non-NULL and writable (the caller's contract).
        unsafe { out.write(m) };
        code
    })
}

/// The body of both opens: the result code, and the handle (NULL unless the code is 0,
/// and NULL with 0 when the decision allows a load with no manifest to read against).
///
/// # Safety
/// As for `ws_verify`.
unsafe fn open_model(
    policy_path: *const c_char,
    model_path: *const c_char,
    signature_path: *const c_char,
    err: &mut ErrBuf,
) -> (c_int, *mut ws_model) {
    let none = std::ptr::null_mut();
    // SAFETY: each pointer is NULL or a NUL-terminated string (caller's contract).
    let (policy, model, sig) = match unsafe { open_args(policy_path, model_path, signature_path) } {
        Ok(args) => args,
        Err(e) => return (err.fail(WS_ERROR, &e), none),
    };
    let decision = match load_policy(policy).and_then(|p| p.open(model, sig)) {
        Ok(d) => d,
        Err(e) => return (err.fail(code_of(&e), &e.to_string()), none),
    };
    let Some(signed) = decision.model() else {
        let why = match decision.warnings() {
            [] => "no signed manifest to read tensors against: the policy lets this unsigned model \
                   load (unsigned_models = \"check-revocations\"); read it without libweightseal"
                .to_string(),
            found => joined(found),
        };
        return (err.fail(WS_OK, &why), none);
    };
    // The folder's file set (nothing unsigned beside the weights, such as a
    // modeling_custom.py) was checked by the decision itself when it opened the model.
    // Every tensor the decision can read by name, in manifest order. A name that resolves
    // to no tensor in scope (another file of the folder when a single file was opened) or
    // to several is left out: it could not be read by name.
    let mut names = Vec::new();
    for file in &signed.manifest().files {
        for name in file.chunks.iter().filter_map(|c| c.tensor_name()) {
            if decision.tensor_len(name).is_ok() {
                if let Ok(c) = CString::new(name) {
                    names.push(c);
                }
            }
        }
    }
    let found: Vec<&DecisionError> = decision.warnings().iter().collect();
    err.set(&found.iter().map(|w| warning(w)).collect::<Vec<_>>().join("\n"));
    let warnings = Mutex::new(found.iter().map(ToString::to_string).collect());
    let m = Box::into_raw(Box::new(ws_model {
        decision,
        names,
        warnings,
    }));
    (WS_OK, m)
}

/// Borrows the handle, or None for NULL.
///
/// # Safety
/// `m` is NULL or a live handle from `ws_model_open`.
unsafe fn model<'a>(m: *const ws_model) -> Option<&'a ws_model> {
    // SAFETY: the caller's contract: NULL or a pointer from Box::into_raw not yet closed.
    unsafe { m.as_ref() }
}

/// The number of tensors that can be read by name (0 for NULL).
///
/// # Safety
/// `m` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn ws_model_tensor_count(m: *const ws_model) -> usize {
    let mut none = ErrBuf::none();
    // SAFETY: the caller's contract.
    boundary(&mut none, 0, |_| unsafe { model(m) }.map_or(0, |m| m.names.len()))
}

/// The name of tensor `i` (0-based, manifest order), NUL-terminated, owned by the handle
/// and valid until `ws_model_close`; NULL if `m` is NULL or `i` is out of range.
///
/// # Safety
/// `m` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn ws_model_tensor_name(m: *const ws_model, i: usize) -> *const c_char {
    let mut none = ErrBuf::none();
    boundary(&mut none, std::ptr::null(), |_| {
        // SAFETY: the caller's contract.
        unsafe { model(m) }
            .and_then(|m| m.names.get(i))
            .map_or(std::ptr::null(), |c| c.as_ptr())
    })
}

/// The byte length `ws_model_read_tensor` needs for tensor `name` (for GGUF it includes
/// the alignment padding after the tensor); -1 if there is no such tensor, or on NULL /
/// invalid UTF-8.
///
/// # Safety
/// `m` is NULL or a live handle; `name` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn ws_model_tensor_len(m: *const ws_model, name: *const c_char) -> i64 {
    let mut none = ErrBuf::none();
    boundary(&mut none, -1, |_| {
        // SAFETY: the caller's contract.
        let (Some(m), Ok(name)) = (unsafe { model(m) }, unsafe { arg_str(name, "name") }) else {
            return -1;
        };
        m.decision
            .tensor_len(name)
            .ok()
            .and_then(|n| i64::try_from(n).ok())
            .unwrap_or(-1)
    })
}

/// Reads tensor `name` into `buf` (exactly `ws_model_tensor_len` bytes) and checks exactly
/// those bytes against the signed digest: what the caller holds is what was checked.
///
/// Returns 0 ok, 1 mismatch, 2 error (unknown tensor, wrong `len`, NULL, I/O); on 1 and 2
/// the buffer is wiped to zeros, so no unchecked byte is left in it. In warn mode a mismatch returns 0, leaves the bytes read, writes
/// the finding to `err` and adds it to the warning list.
///
/// Thread safety: several threads may read (distinct buffers) through one handle at once.
///
/// # Safety
/// `m` is NULL or a live handle; `name` is NULL or a NUL-terminated string; `buf` is
/// NULL or writable for `len` bytes, and nothing else reads or writes them during the
/// call; `err` is NULL or writable for `err_len` bytes.
#[no_mangle]
pub unsafe extern "C" fn ws_model_read_tensor(
    m: *mut ws_model,
    name: *const c_char,
    buf: *mut c_void,
    len: usize,
    err: *mut c_char,
    err_len: usize,
) -> c_int {
    // SAFETY: the caller's contract above.
    let mut err = unsafe { ErrBuf::new(err, err_len) };
    boundary(&mut err, WS_ERROR, |err| {
        // SAFETY: the caller's contract: `m` is NULL or live.
        let Some(m) = (unsafe { model(m) }) else {
            return err.fail(WS_ERROR, "model is NULL");
        };
        // SAFETY: the caller's contract: `name` is NULL or NUL-terminated.
        let name = match unsafe { arg_str(name, "name") } {
            Ok(n) => n,
            Err(e) => return err.fail(WS_ERROR, &e),
        };
        // SAFETY: the caller's contract: `buf` is NULL or writable for `len` bytes that no
        // one else touches during the call.
        let buf = match unsafe { ffi::arg_buf(buf, len) } {
            Ok(b) => b,
            Err(e) => return err.fail(WS_ERROR, &e),
        };
        // On any failure the buffer is wiped, not only on a mismatch (which the decision
        // wipes itself): an I/O error or a panic half-way leaves unchecked bytes behind.
        let read = catch_unwind(AssertUnwindSafe(|| m.decision.read_tensor_into(name, &mut *buf)));
        let Ok(read) = read else {
            buf.fill(0);
            return err.fail(WS_ERROR, "internal error in libweightseal (a bug: please report it)");
        };
        match read {
            Ok(None) => {
                err.set("");
                WS_OK
            }
            Ok(Some(w)) => {
                m.warn(&w);
                err.set(&format!("warning: {w}"));
                WS_OK
            }
            Err(e) => {
                buf.fill(0);
                err.fail(code_of(&e), &e.to_string())
            }
        }
    })
}

/// The number of warn-mode findings so far (from the open and every read since); 0 in
/// enforce mode and for NULL.
///
/// # Safety
/// `m` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn ws_model_warning_count(m: *const ws_model) -> usize {
    let mut none = ErrBuf::none();
    boundary(&mut none, 0, |_| {
        // SAFETY: the caller's contract.
        unsafe { model(m) }.map_or(0, |m| m.warnings.lock().unwrap_or_else(|p| p.into_inner()).len())
    })
}

/// Copies warn-mode finding `i` into `buf` (NUL-terminated, truncated to `len`). Returns
/// 0 if it exists, 2 if `m` is NULL or `i` is out of range (then `buf` gets "").
///
/// # Safety
/// `m` is NULL or a live handle; `buf` is NULL or writable for `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn ws_model_warning(m: *const ws_model, i: usize, buf: *mut c_char, len: usize) -> c_int {
    // SAFETY: the caller's contract.
    let mut out = unsafe { ErrBuf::new(buf, len) };
    boundary(&mut out, WS_ERROR, |out| {
        // SAFETY: the caller's contract.
        let Some(m) = (unsafe { model(m) }) else {
            return out.fail(WS_ERROR, "");
        };
        let warnings = m.warnings.lock().unwrap_or_else(|p| p.into_inner());
        match warnings.get(i) {
            Some(w) => {
                out.set(w);
                WS_OK
            }
            None => out.fail(WS_ERROR, ""),
        }
    })
}

/// Frees the handle and every name it handed out. NULL is a no-op.
///
/// # Safety
/// `m` is NULL or a live handle, closed once, with no other call on it running or
/// following.
#[no_mangle]
pub unsafe extern "C" fn ws_model_close(m: *mut ws_model) {
    let mut none = ErrBuf::none();
    boundary(&mut none, (), |_| {
        if !m.is_null() {
            // SAFETY: the caller's contract: `m` came from Box::into_raw in ws_model_open
            // and is closed exactly once, with no other call on it.
            drop(unsafe { Box::from_raw(m) });
        }
    })
}
