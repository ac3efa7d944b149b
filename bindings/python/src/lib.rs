//! `weightseal._native`: the thin PyO3 layer under the `weightseal` Python package.
//!
//! It translates arguments, calls the verifier library's load decision, and returns
//! plain values; refusals are raised as `_native.Refusal(kind, message, info)`, which
//! the pure-Python package turns into its exception classes. The GIL is released for
//! every call that reads or hashes model bytes, so threads verify in parallel.
//!
//! Nothing here decides whether a model may be loaded.

mod buffer;
mod engine;

use std::path::PathBuf;
use std::sync::Arc;

use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList};

use crate::buffer::ByteBufferMut;
use crate::engine::{Engine, Failure, HitInfo, Opened, PolicyArgs, Revocation, VerifiedInfo};

pyo3::create_exception!(
    weightseal._native,
    Refusal,
    PyException,
    "A refusal from the library: args are (kind, message, info dict)."
);

/// The `(kind, message, info)` triple of a failure, as Python values.
fn failure_tuple<'py>(py: Python<'py>, f: &Failure) -> PyResult<Bound<'py, PyAny>> {
    let info = PyDict::new(py);
    info.set_item("file", f.file.as_deref())?;
    info.set_item("tensor", f.tensor.as_deref())?;
    info.set_item("hits", hit_list(py, &f.hits)?)?;
    Ok((f.kind.name(), f.message.as_str(), info).into_pyobject(py)?.into_any())
}

fn hit_list<'py>(py: Python<'py>, hits: &[HitInfo]) -> PyResult<Bound<'py, PyList>> {
    let list = PyList::empty(py);
    for h in hits {
        let d = PyDict::new(py);
        d.set_item("reason", &h.reason)?;
        d.set_item("issuer", &h.issuer)?;
        d.set_item("evidence", h.evidence.as_deref())?;
        d.set_item("index", h.index)?;
        d.set_item("matched", &h.matched)?;
        list.append(d)?;
    }
    Ok(list)
}

fn raise(py: Python<'_>, f: Failure) -> PyErr {
    match failure_tuple(py, &f) {
        Ok(args) => PyErr::from_type(py.get_type::<Refusal>(), args.unbind()),
        Err(e) => e,
    }
}

fn verified_dict<'py>(py: Python<'py>, v: &VerifiedInfo) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("manifest_digest", &v.manifest_digest)?;
    d.set_item("signers", v.signers.clone())?;
    d.set_item("bytes_verified", v.bytes_verified)?;
    Ok(d)
}

/// A policy (the library's), as built from a file, the environment or arguments.
#[pyclass(frozen, module = "weightseal._native", name = "Policy")]
struct PyPolicy {
    inner: Arc<Engine>,
}

#[pymethods]
impl PyPolicy {
    /// Reads a policy file (TOML).
    #[staticmethod]
    fn from_file(py: Python<'_>, path: PathBuf) -> PyResult<PyPolicy> {
        let r = py.detach(|| Engine::from_file(&path));
        r.map(|e| PyPolicy { inner: Arc::new(e) }).map_err(|f| raise(py, f))
    }

    /// Reads the policy file named by `$WEIGHTSEAL_POLICY`.
    #[staticmethod]
    fn from_env(py: Python<'_>) -> PyResult<PyPolicy> {
        let r = py.detach(Engine::from_env);
        r.map(|e| PyPolicy { inner: Arc::new(e) }).map_err(|f| raise(py, f))
    }

    /// Builds a policy from arguments (the keys of the policy file).
    #[staticmethod]
    #[pyo3(signature = (trusted_keys, threshold, revocations, log_keys, state, mode,
        max_staleness_secs=None, unsigned_models=None, allow_unsigned_files_unsafe=false,
        unsafe_ignore_revocation_status=false))]
    #[allow(
        clippy::too_many_arguments,
        reason = "mirrors the keyword arguments of weightseal.Policy"
    )]
    fn build(
        py: Python<'_>,
        trusted_keys: Vec<PathBuf>,
        threshold: usize,
        revocations: Option<String>,
        log_keys: Vec<String>,
        state: Option<PathBuf>,
        mode: String,
        max_staleness_secs: Option<u64>,
        unsigned_models: Option<String>,
        allow_unsigned_files_unsafe: bool,
        unsafe_ignore_revocation_status: bool,
    ) -> PyResult<PyPolicy> {
        let args = PolicyArgs {
            trusted_keys,
            threshold,
            revocations,
            log_keys,
            state,
            mode,
            max_staleness_secs,
            unsigned_models,
            allow_unsigned_files_unsafe,
            unsafe_ignore_revocation_status,
        };
        let r = py.detach(move || Engine::build(args));
        r.map(|e| PyPolicy { inner: Arc::new(e) }).map_err(|f| raise(py, f))
    }

    /// "enforce" or "warn".
    #[getter]
    fn mode(&self) -> &'static str {
        self.inner.mode_name()
    }

    /// The load decision for `model` (a folder or a file); reads no tensor bytes. Raises
    /// `Refusal` on a refusal in enforce mode.
    #[pyo3(signature = (model, signature=None))]
    fn open(&self, py: Python<'_>, model: PathBuf, signature: Option<PathBuf>) -> PyResult<PyModel> {
        let engine = Arc::clone(&self.inner);
        let r = py.detach(move || engine.open(&model, signature.as_deref()));
        r.map(|o| PyModel { inner: Arc::new(o) }).map_err(|f| raise(py, f))
    }
}

/// An opened model: the library's load decision.
#[pyclass(frozen, module = "weightseal._native", name = "Model")]
struct PyModel {
    inner: Arc<Opened>,
}

/// A Python value, or None.
type Maybe<'py, T> = Option<Bound<'py, T>>;

fn optional_failure<'py>(py: Python<'py>, f: Option<Failure>) -> PyResult<Option<Bound<'py, PyAny>>> {
    f.map(|f| failure_tuple(py, &f)).transpose()
}

#[pymethods]
impl PyModel {
    #[getter]
    fn mode(&self) -> &'static str {
        self.inner.mode_name()
    }

    /// Warn mode: what enforce mode would have refused, as (kind, message, info).
    fn warnings<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyAny>>> {
        self.inner.warnings().iter().map(|f| failure_tuple(py, f)).collect()
    }

    /// The revocation status: a dict with "state" and its details.
    fn revocation<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        match self.inner.revocation() {
            Revocation::NotConfigured => d.set_item("state", "not-configured")?,
            Revocation::NotRevoked {
                snapshot_version,
                fresh_until,
            } => {
                d.set_item("state", "not-revoked")?;
                d.set_item("snapshot_version", snapshot_version)?;
                d.set_item("fresh_until", fresh_until)?;
            }
            Revocation::Revoked { hits } => {
                d.set_item("state", "revoked")?;
                d.set_item("hits", hit_list(py, &hits)?)?;
            }
            Revocation::Unknown { reason } => {
                d.set_item("state", "unknown")?;
                d.set_item("reason", reason)?;
            }
        }
        Ok(d)
    }

    /// (manifest digest hex, signer key ids hex) of the trusted manifest, or None.
    fn signed(&self) -> Option<(String, Vec<String>)> {
        self.inner.signed()
    }

    /// The manifest path of the signed file at `path`.
    fn file_of(&self, py: Python<'_>, path: PathBuf) -> PyResult<String> {
        self.inner.file_of(&path).map_err(|f| raise(py, f))
    }

    /// The checked header bytes of signed file `rel`, and a warn-mode finding (when the
    /// header did not match, the bytes are None and the finding says why).
    fn header<'py>(&self, py: Python<'py>, rel: String) -> PyResult<(Maybe<'py, PyBytes>, Maybe<'py, PyAny>)> {
        let inner = Arc::clone(&self.inner);
        let r = py.detach(move || inner.header(&rel));
        let (bytes, finding) = r.map_err(|f| raise(py, f))?;
        Ok((bytes.map(|b| PyBytes::new(py, &b)), optional_failure(py, finding)?))
    }

    /// The byte length of tensor `name`.
    fn tensor_len(&self, py: Python<'_>, name: &str) -> PyResult<u64> {
        self.inner.tensor_len(name).map_err(|f| raise(py, f))
    }

    /// Reads tensor `name` into `buf` (a writable, C-contiguous uint8 buffer of exactly
    /// its length that nothing else holds) and checks exactly those bytes, GIL released.
    /// Returns a warn-mode finding, or None.
    fn read_tensor_into<'py>(
        &self,
        py: Python<'py>,
        name: String,
        buf: &Bound<'py, PyAny>,
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
        let mut target = ByteBufferMut::get(buf)?;
        let expected = self.inner.tensor_len(&name).map_err(|f| raise(py, f))?;
        if target.len() as u64 != expected {
            return Err(raise(
                py,
                Failure::usage(format!(
                    "buffer for tensor {name:?} is {} bytes; the tensor is {expected}",
                    target.len()
                )),
            ));
        }
        let inner = Arc::clone(&self.inner);
        let r = target.with_detached(py, move |bytes| inner.read_tensor_into(&name, bytes));
        let finding = r.map_err(|f| raise(py, f))?;
        optional_failure(py, finding)
    }

    /// Checks all bytes in scope, or only the named tensors; returns (verified dict or
    /// None, warn-mode findings).
    #[pyo3(signature = (tensors=None))]
    fn verify<'py>(
        &self,
        py: Python<'py>,
        tensors: Option<Vec<String>>,
    ) -> PyResult<(Maybe<'py, PyDict>, Vec<Bound<'py, PyAny>>)> {
        let inner = Arc::clone(&self.inner);
        let r = py.detach(move || {
            let names: Option<Vec<&str>> = tensors.as_ref().map(|t| t.iter().map(String::as_str).collect());
            inner.verify(names.as_deref())
        });
        let (v, findings) = r.map_err(|f| raise(py, f))?;
        let v = v.map(|v| verified_dict(py, &v)).transpose()?;
        let findings = findings.iter().map(|f| failure_tuple(py, f)).collect::<PyResult<_>>()?;
        Ok((v, findings))
    }
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("Refusal", m.py().get_type::<Refusal>())?;
    m.add("POLICY_ENV", "WEIGHTSEAL_POLICY")?;
    m.add_class::<PyPolicy>()?;
    m.add_class::<PyModel>()?;
    Ok(())
}
