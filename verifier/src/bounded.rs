//! Whole small files read under a size limit that holds while reading.
//!
//! Looking at a file's size and then reading it all is not bounded: a FIFO, a device such
//! as `/dev/zero` or a file that grows meanwhile reports a size that says nothing about
//! what a read returns. Public keys, bundles, fingerprint files, the log's issuer policy
//! and the CLI's private-key hint read through [`read_file_within`].

use std::fs::File;
use std::io::Read as _;
use std::path::Path;

/// Why a file could not be read within its limit.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadWithinError {
    /// Opening or reading failed (for [`read_text_file_within`], also text that is not
    /// UTF-8, as `InvalidData`).
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The file is over the limit. `size` is its size, or for a file whose size says
    /// nothing (a stream), the bytes read before stopping: the limit plus one.
    #[error("{size} bytes")]
    TooLarge {
        /// Its size, or the bytes read before stopping.
        size: u64,
    },
}

/// Reads all of `path`, refusing it once it is over `limit` bytes: before reading when
/// its size says so, and while reading otherwise. Memory never exceeds `limit + 1` bytes.
pub fn read_file_within(path: &Path, limit: u64) -> Result<Vec<u8>, ReadWithinError> {
    let file = File::open(path)?;
    let size = file.metadata()?.len();
    if size > limit {
        return Err(ReadWithinError::TooLarge { size });
    }
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    file.take(limit.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(ReadWithinError::TooLarge {
            size: bytes.len() as u64,
        });
    }
    Ok(bytes)
}

/// [`read_file_within`] for a text file.
pub fn read_text_file_within(path: &Path, limit: u64) -> Result<String, ReadWithinError> {
    let bytes = read_file_within(path, limit)?;
    String::from_utf8(bytes)
        .map_err(|e| ReadWithinError::Io(std::io::Error::new(std::io::ErrorKind::InvalidData, e.utf8_error())))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a test fails by panicking")]
mod tests {
    use super::*;

    #[test]
    fn a_file_at_the_limit_is_read_and_one_byte_over_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, [7u8; 100]).unwrap();
        assert_eq!(read_file_within(&path, 100).unwrap(), vec![7u8; 100]);
        assert!(matches!(
            read_file_within(&path, 99),
            Err(ReadWithinError::TooLarge { size: 100 })
        ));
    }

    /// `/dev/zero` reports size 0 and never ends: a size check alone would read it until
    /// memory runs out.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_stream_whose_size_says_nothing_is_stopped_at_the_limit() {
        assert!(matches!(
            read_file_within(Path::new("/dev/zero"), 4096),
            Err(ReadWithinError::TooLarge { size: 4097 })
        ));
    }

    #[test]
    fn text_that_is_not_utf8_is_invalid_data() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t");
        std::fs::write(&path, [0xff, 0xfe]).unwrap();
        match read_text_file_within(&path, 10) {
            Err(ReadWithinError::Io(e)) => assert_eq!(e.kind(), std::io::ErrorKind::InvalidData),
            other => panic!("{other:?}"),
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
#[allow(clippy::unwrap_used, reason = "a test fails by panicking")]
mod callers {
    //! A reader of a small file is bounded by construction: given `/dev/zero` (size 0,
    //! endless) it stops at its limit instead of reading until memory runs out. (A bundle
    //! reads the same way, but its limit is 4 GiB: too much to read in a test.)
    use std::path::Path;

    #[test]
    fn a_key_file_that_never_ends_is_refused_as_too_large() {
        let e = crate::PublicKey::from_pem_file(Path::new("/dev/zero")).unwrap_err();
        assert!(matches!(e, crate::KeyError::TooLarge { .. }), "{e}");
    }
}
