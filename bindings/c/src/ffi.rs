//! The boundary helpers: C strings and buffers in, error text out, panics stopped.
//!
//! All raw-pointer handling of the crate's arguments lives here; the exports call these
//! with the caller's contract (stated in each export's `# Safety`) as their justification.

use std::ffi::{c_char, c_void, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

/// A caller-supplied error buffer (possibly absent). Writes are always truncated to its
/// length and NUL-terminated.
pub struct ErrBuf {
    ptr: *mut c_char,
    len: usize,
}

impl ErrBuf {
    /// # Safety
    /// `ptr` is NULL or writable for `len` bytes for the life of the value.
    pub unsafe fn new(ptr: *mut c_char, len: usize) -> ErrBuf {
        ErrBuf { ptr, len }
    }

    /// No buffer: every write is dropped.
    pub fn none() -> ErrBuf {
        ErrBuf {
            ptr: std::ptr::null_mut(),
            len: 0,
        }
    }

    /// Writes `msg`, cut at a character boundary to fit `len - 1` bytes, then a NUL. An
    /// interior NUL ends the message early (C would stop reading there anyway).
    pub fn set(&mut self, msg: &str) {
        let (ptr, len) = (self.ptr, self.len);
        if ptr.is_null() || len == 0 {
            return;
        }
        let msg = msg.split('\0').next().unwrap_or_default();
        let mut n = msg.len().min(len - 1);
        while !msg.is_char_boundary(n) {
            n -= 1;
        }
        // SAFETY: `ptr` is writable for `len` bytes (ErrBuf::new's contract) and `n < len`,
        // so the `n` message bytes and the NUL after them stay inside it; `msg` is a Rust
        // string, which cannot overlap a buffer the caller lent us as writable.
        unsafe {
            std::ptr::copy_nonoverlapping(msg.as_ptr(), ptr.cast::<u8>(), n);
            *ptr.add(n) = 0;
        }
    }

    /// Writes `msg` and returns `code`.
    pub fn fail<T>(&mut self, code: T, msg: &str) -> T {
        self.set(msg);
        code
    }
}

/// Runs an export's body, turning a panic into `on_panic` and a message: no unwind may
/// cross into C (that would be undefined behaviour, and an abort at best).
pub fn boundary<T>(err: &mut ErrBuf, on_panic: T, body: impl FnOnce(&mut ErrBuf) -> T) -> T {
    // AssertUnwindSafe: on a panic nothing the body touched is used again except the
    // error buffer, which is plain bytes.
    match catch_unwind(AssertUnwindSafe(|| body(&mut *err))) {
        Ok(v) => v,
        Err(_) => {
            err.set("internal error in libweightseal (a bug: please report it)");
            on_panic
        }
    }
}

/// A required string argument: NULL and invalid UTF-8 are errors naming the argument.
///
/// # Safety
/// `p` is NULL or points to a NUL-terminated string that outlives `'a`.
pub unsafe fn arg_str<'a>(p: *const c_char, what: &str) -> Result<&'a str, String> {
    if p.is_null() {
        return Err(format!("{what} is NULL"));
    }
    // SAFETY: non-NULL and NUL-terminated (the caller's contract).
    let c = unsafe { CStr::from_ptr(p) };
    c.to_str().map_err(|_| format!("{what} is not valid UTF-8"))
}

/// A path argument; NULL is `Ok(None)` where `optional`, else an error by the caller.
///
/// # Safety
/// As for [`arg_str`].
pub unsafe fn arg_path<'a>(p: *const c_char, what: &str, optional: bool) -> Result<Option<&'a Path>, String> {
    if p.is_null() {
        return if optional {
            Ok(None)
        } else {
            Err(format!("{what} is NULL"))
        };
    }
    // SAFETY: the caller's contract.
    let s = unsafe { arg_str(p, what) }?;
    if s.is_empty() {
        return Err(format!("{what} is empty"));
    }
    Ok(Some(Path::new(s)))
}

/// The caller's tensor buffer as a byte slice. NULL is allowed only with `len` 0.
///
/// # Safety
/// `buf` is NULL or valid for writes of `len` bytes, and no one else reads or writes
/// them until the slice is dropped (the end of the export).
pub unsafe fn arg_buf<'a>(buf: *mut c_void, len: usize) -> Result<&'a mut [u8], String> {
    if buf.is_null() {
        return if len == 0 {
            Ok(&mut [])
        } else {
            Err("buf is NULL".into())
        };
    }
    if len > isize::MAX as usize {
        return Err(format!("len {len} is larger than any buffer"));
    }
    // SAFETY: `buf` is valid for writes of `len` bytes with no other access during the
    // call (the caller's contract), and `len <= isize::MAX`. The bytes may be fresh
    // `malloc` memory C never wrote: like rustls-ffi's read functions, we take memory
    // lent across the C ABI as plain bytes. The verifier only writes into the slice
    // (pread) before it reads it back for hashing, so no indeterminate byte is ever
    // read.
    Ok(unsafe { std::slice::from_raw_parts_mut(buf.cast::<u8>(), len) })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    fn written(len: usize, msg: &str) -> Vec<u8> {
        let mut buf = vec![b'x'; len + 1];
        // SAFETY: `buf` has len + 1 writable bytes; ErrBuf is told only `len`.
        let mut e = unsafe { ErrBuf::new(buf.as_mut_ptr().cast(), len) };
        e.set(msg);
        buf
    }

    #[test]
    fn err_text_is_truncated_and_nul_terminated() {
        assert_eq!(written(0, "abc"), b"x");
        assert_eq!(written(1, "abc"), b"\0x");
        assert_eq!(written(3, "abc"), b"ab\0x");
        assert_eq!(written(4, "abc"), b"abc\0x");
        assert_eq!(written(5, "abc"), b"abc\0xx");
        // "é" is two bytes: never cut in the middle of a character.
        assert_eq!(written(3, "aé"), b"a\0xx");
        assert_eq!(written(4, "aé"), "aé\0x".as_bytes());
        // An interior NUL ends the message where C would stop reading anyway.
        assert_eq!(written(8, "ab\0cd"), b"ab\0xxxxxx");
        ErrBuf::none().set("dropped");
    }

    #[test]
    fn a_panic_becomes_the_error_value() {
        let mut buf = [0u8; 64];
        // SAFETY: 64 writable bytes.
        let mut e = unsafe { ErrBuf::new(buf.as_mut_ptr().cast(), buf.len()) };
        let rc = boundary(&mut e, 2, |_| -> i32 { panic!("boom") });
        assert_eq!(rc, 2);
        assert!(buf.starts_with(b"internal error"));
    }

    #[test]
    fn null_and_bad_utf8_are_errors() {
        // SAFETY: NULL, and NUL-terminated literals.
        unsafe {
            assert_eq!(arg_str(std::ptr::null(), "name").unwrap_err(), "name is NULL");
            assert!(arg_str(c"\xff".as_ptr(), "name").unwrap_err().contains("UTF-8"));
            assert_eq!(arg_str(c"ok".as_ptr(), "name").unwrap(), "ok");
            assert_eq!(arg_path(std::ptr::null(), "p", true).unwrap(), None);
            assert!(arg_path(std::ptr::null(), "p", false).is_err());
            assert!(arg_path(c"".as_ptr(), "p", true).is_err());
            assert!(arg_buf(std::ptr::null_mut(), 0).unwrap().is_empty());
            assert!(arg_buf(std::ptr::null_mut(), 1).is_err());
        }
    }
}
