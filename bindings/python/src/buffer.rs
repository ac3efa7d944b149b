//! The one place this crate touches memory it does not own: the writable buffer of the
//! array a tensor is read into.
#![allow(
    unsafe_code,
    reason = "a `&mut [u8]` over a Python buffer has no safe constructor; see SAFETY below"
)]

use pyo3::buffer::PyBuffer;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

/// A writable, C-contiguous byte buffer exported by a Python object, held (so the
/// exporter cannot resize or free it) for as long as this value lives.
pub struct ByteBufferMut {
    buffer: PyBuffer<u8>,
}

impl ByteBufferMut {
    /// Acquires `obj`'s buffer; refuses read-only, non-contiguous or non-byte buffers.
    pub fn get(obj: &Bound<'_, PyAny>) -> PyResult<ByteBufferMut> {
        let buffer = PyBuffer::<u8>::get(obj)
            .map_err(|e| PyValueError::new_err(format!("the tensor buffer must be a writable uint8 buffer: {e}")))?;
        if buffer.readonly() {
            return Err(PyValueError::new_err("the tensor buffer is read-only"));
        }
        if !buffer.is_c_contiguous() {
            return Err(PyValueError::new_err("the tensor buffer is not C-contiguous"));
        }
        Ok(ByteBufferMut { buffer })
    }

    /// Its length in bytes.
    pub fn len(&self) -> usize {
        self.buffer.len_bytes()
    }

    /// Runs `f` on the bytes with the GIL released.
    pub fn with_detached<R: Send>(&mut self, py: Python<'_>, f: impl FnOnce(&mut [u8]) -> R + Send) -> R {
        let len = self.buffer.len_bytes();
        let ptr = self.buffer.buf_ptr() as usize;
        py.detach(move || {
            let bytes: &mut [u8] = if len == 0 {
                &mut []
            } else {
                // SAFETY: `ptr`/`len` describe the C-contiguous, writable byte buffer that
                // `self.buffer` holds exported (PEP 3118): while the export lives the
                // exporter may not move, resize or free it, and `self` is borrowed
                // mutably for the whole call, so the export outlives this slice. Nothing
                // else in Rust aliases it. Python code could write to the same memory
                // from another thread while the GIL is released; the callers of this
                // crate's `read_tensor_into` (the `weightseal` package) pass only an array
                // they have just allocated and not yet handed to anyone, which is why
                // the native function is private (`weightseal._native`) and documented
                // as requiring an unshared buffer. Bytes are plain `u8`: any bit pattern
                // is valid, so a torn write could corrupt data but never violate types.
                unsafe { std::slice::from_raw_parts_mut(ptr as *mut u8, len) }
            };
            f(bytes)
        })
    }
}
