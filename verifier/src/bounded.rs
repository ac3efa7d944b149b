//! Whole small files read under a size limit that holds while reading.
//!
//! Looking at a file's size and then reading it all is not bounded: a FIFO, a device such
//! as `/dev/zero` or a file that grows meanwhile reports a size that says nothing about
//! what a read returns, and merely opening a FIFO that nobody writes to waits forever.
//! Public keys, bundles, fingerprint files, the log's issuer policy and the CLI's
//! private-key hint read through [`read_file_within`], which opens without blocking,
//! accepts only regular files (symbolic links to them are fine: mounted secrets are often
//! links), and stops reading one byte past the limit.

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
    let file = open_regular_nonblocking(path)?;
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

/// Opens `path` for reading without waiting (a FIFO with no writer would block `open`) and
/// refuses anything but a regular file, as `InvalidInput`. `O_NONBLOCK` changes nothing
/// for reads of a regular file.
fn open_regular_nonblocking(path: &Path) -> std::io::Result<File> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC);
    }
    let file = options.open(path)?;
    let kind = file.metadata()?.file_type();
    if !kind.is_file() {
        let what = if kind.is_dir() {
            "a folder"
        } else {
            "not a regular file (a FIFO, socket or device)"
        };
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("it is {what}; only a regular file is read"),
        ));
    }
    Ok(file)
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
    /// memory runs out. It is refused before any byte is read.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_device_whose_size_says_nothing_is_refused_unread() {
        match read_file_within(Path::new("/dev/zero"), 4096) {
            Err(ReadWithinError::Io(e)) => {
                assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
                assert!(e.to_string().contains("not a regular file"), "{e}");
            }
            other => panic!("{other:?}"),
        }
    }

    /// Opening a FIFO that nobody writes to blocks forever with a plain `open`; here it is
    /// refused at once. (Run on a thread with a deadline, so a regression fails instead of
    /// hanging the suite.)
    #[cfg(unix)]
    #[test]
    fn a_fifo_nobody_writes_to_is_refused_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("key.pem");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status().unwrap();
        assert!(made.success());
        let (tx, rx) = std::sync::mpsc::channel();
        let path = fifo.clone();
        std::thread::spawn(move || tx.send(read_file_within(&path, 4096).map(|b| b.len())));
        match rx.recv_timeout(std::time::Duration::from_secs(10)) {
            Ok(Err(ReadWithinError::Io(e))) => assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput, "{e}"),
            Ok(other) => panic!("{other:?}"),
            Err(_) => panic!("reading a FIFO with no writer blocked"),
        }
    }

    #[test]
    fn a_folder_is_refused_by_name_and_a_link_to_a_file_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let e = read_file_within(dir.path(), 4096).unwrap_err();
        assert!(e.to_string().contains("a folder"), "{e}");
        let target = dir.path().join("real.pem");
        std::fs::write(&target, b"key").unwrap();
        let link = dir.path().join("link.pem");
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(&target, &link).unwrap();
            assert_eq!(read_file_within(&link, 4096).unwrap(), b"key");
        }
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
    //! Every reader of a small file goes through `read_file_within`: given `/dev/zero`
    //! (size 0, endless) it refuses it unread instead of reading until memory runs out.
    use std::path::Path;

    #[test]
    fn a_key_file_that_never_ends_is_refused_unread() {
        let e = crate::PublicKey::from_pem_file(Path::new("/dev/zero")).unwrap_err();
        assert!(matches!(e, crate::KeyError::Io { .. }), "{e}");
        assert!(e.to_string().contains("not a regular file"), "{e}");
    }

    #[test]
    fn a_bundle_that_is_a_device_is_refused_unread() {
        let e = crate::revocation::bundle::Bundle::read(Path::new("/dev/zero")).unwrap_err();
        assert!(e.to_string().contains("not a regular file"), "{e}");
    }
}
