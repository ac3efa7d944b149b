//! The workspace's one way to replace a file: whole or not at all.
//!
//! The revocation state folder, signature files and the log's static export are all
//! written through [`write_file`]. A reader (another process, or this one after a crash)
//! sees the old bytes or the new ones, never a mix: the bytes go to a temporary file in
//! the same folder, are flushed to the disk, and the temporary file is renamed over the
//! target, which POSIX makes atomic; the folder is then flushed so the rename itself
//! survives a power cut.
//!
//! None of these files is a secret (signatures, public revocation data), and the runtime
//! or web server that reads them often runs as another user, so they are made readable by
//! everyone (0644) before the rename publishes them. Private keys are never written here.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write as _};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

/// Permissions of every file written here: readable by all, writable by the owner.
pub const MODE: u32 = 0o644;

/// Replaces `path` by `bytes` atomically (see the module documentation). The folder must
/// exist. On error the target is unchanged and the temporary file is removed.
pub fn write_file(path: &Path, bytes: &[u8]) -> io::Result<()> {
    // Distinct per process and per call, so concurrent writers (threads of one process, or
    // processes sharing a folder) never share a temporary file; `create_new` refuses one
    // that exists anyway rather than writing through it.
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    let tmp = dir.join(format!(
        ".{name}.{}-{}.tmp",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            options.mode(MODE);
        }
        let mut file = options.open(&tmp)?;
        // `mode` is filtered by the umask; set the permissions the readers need exactly.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            file.set_permissions(fs::Permissions::from_mode(MODE))?;
        }
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&tmp, path)?;
        File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        // Best effort: after a successful rename it is gone already.
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a test fails by panicking")]
mod tests {
    use super::*;

    fn leftovers(dir: &Path) -> Vec<String> {
        fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".tmp"))
            .collect()
    }

    #[test]
    fn a_file_is_replaced_whole_readable_by_all_and_no_temporary_file_is_left() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.cbor");
        write_file(&path, b"old").unwrap();
        write_file(&path, b"new bytes").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"new bytes");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, MODE);
        }
        assert!(leftovers(dir.path()).is_empty(), "{:?}", leftovers(dir.path()));
    }

    #[test]
    fn a_failed_write_leaves_the_old_file_and_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("target");
        write_file(&path, b"old").unwrap();
        // The rename fails: a folder cannot be replaced by a file.
        let folder = dir.path().join("a-folder");
        fs::create_dir(&folder).unwrap();
        fs::write(folder.join("inside"), b"x").unwrap();
        assert!(write_file(&folder, b"new").is_err());
        assert!(folder.is_dir());
        assert_eq!(fs::read(&path).unwrap(), b"old");
        assert!(leftovers(dir.path()).is_empty(), "{:?}", leftovers(dir.path()));
        // A folder that does not exist: an error, nothing created.
        assert!(write_file(&dir.path().join("missing/file"), b"x").is_err());
        assert!(!dir.path().join("missing").exists());
    }

    #[test]
    fn writers_on_many_threads_each_leave_a_whole_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shared");
        std::thread::scope(|s| {
            for i in 0..8u8 {
                let path = &path;
                s.spawn(move || write_file(path, &[i; 4096]).unwrap());
            }
        });
        let bytes = fs::read(&path).unwrap();
        assert_eq!(bytes.len(), 4096);
        assert!(bytes.iter().all(|b| *b == bytes[0]), "a mix of writers");
        assert!(leftovers(dir.path()).is_empty());
    }
}
