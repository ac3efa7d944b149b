//! The revocation state folder as a runtime uses it (spec/revocation.md §7.1, §7.4): the log
//! keys pinned on first use, an exclusive lock so that two processes never write one folder
//! at once, sync from a configured source, and the freshness rules that decide whether the
//! revocation status of a model is known.
//!
//! [`RevocationState`] holds the log data; this module adds what every caller needs around
//! it and used to rebuild by hand: where the pins live, when they are recorded (only once the
//! folder holds data verified under them), and that a clock which cannot be read, or reads
//! before the snapshot was signed, leaves the status unknown (fail closed).

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use crate::clock::ClockError;
use crate::revocation::bundle::{Bundle, BundleError};
use crate::revocation::note::NoteVerifierKey;
use crate::revocation::state::{write_atomic, DirSource, RevocationError, RevocationState, Source, SyncReport};

/// The file in a state folder that records the log key(s) pinned on first use.
pub const PINNED_KEYS_FILE: &str = "pinned-keys.txt";
/// The lock file taken (exclusively) while a process holds the state folder.
pub const LOCK_FILE: &str = "lock";

/// Where revocation data comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RevocationSource {
    /// A live `weightseal-server`, or a static export on any web server (`http://`, `https://`).
    Http(String),
    /// A folder written by `weightseal-server export`.
    ExportDir(PathBuf),
    /// A bundle file written by `weightseal revocations bundle`.
    Bundle(PathBuf),
}

impl RevocationSource {
    /// `http://…`/`https://…` → HTTP; an existing folder → static export; an existing
    /// file → bundle. Anything else is an error naming the text.
    pub fn parse(text: &str) -> Result<RevocationSource, LocalStateError> {
        Self::parse_relative(text, None)
    }

    /// Like [`Self::parse`], with relative paths taken from `base` (a policy file's folder).
    pub fn parse_relative(text: &str, base: Option<&Path>) -> Result<RevocationSource, LocalStateError> {
        if text.starts_with("http://") || text.starts_with("https://") {
            return Ok(RevocationSource::Http(text.to_string()));
        }
        let path = match base {
            Some(b) if Path::new(text).is_relative() => b.join(text),
            _ => PathBuf::from(text),
        };
        if path.is_dir() {
            Ok(RevocationSource::ExportDir(path))
        } else if path.is_file() {
            Ok(RevocationSource::Bundle(path))
        } else {
            Err(LocalStateError::BadSource { text: text.to_string() })
        }
    }

    /// A name for messages: the URL, `static export DIR` or `bundle FILE`.
    pub fn describe(&self) -> String {
        match self {
            RevocationSource::Http(url) => url.clone(),
            RevocationSource::ExportDir(d) => format!("static export {}", d.display()),
            RevocationSource::Bundle(f) => format!("bundle {}", f.display()),
        }
    }

    /// Opens the source for a sync. A bundle that cannot be read is a source that failed
    /// (like a server that is down), reported as [`SourceOpenError`].
    fn open(&self) -> Result<OpenSource, SourceOpenError> {
        match self {
            #[cfg(feature = "client")]
            RevocationSource::Http(url) => crate::revocation::client::HttpSource::new(url)
                .map(|s| OpenSource::Http(Box::new(s)))
                .map_err(|e| SourceOpenError::Http(e.to_string())),
            #[cfg(not(feature = "client"))]
            RevocationSource::Http(_) => Err(SourceOpenError::NoHttpClient),
            RevocationSource::ExportDir(d) => Ok(OpenSource::Dir(DirSource::new(d))),
            RevocationSource::Bundle(f) => Bundle::read(f)
                .map(|b| OpenSource::Bundle(Box::new(b)))
                .map_err(|source| SourceOpenError::Bundle {
                    path: f.clone(),
                    source,
                }),
        }
    }
}

enum OpenSource {
    #[cfg(feature = "client")]
    Http(Box<crate::revocation::client::HttpSource>),
    Dir(DirSource),
    Bundle(Box<Bundle>),
}

impl OpenSource {
    fn as_source(&self) -> &dyn Source {
        match self {
            #[cfg(feature = "client")]
            OpenSource::Http(s) => s.as_ref(),
            OpenSource::Dir(s) => s,
            OpenSource::Bundle(b) => b.as_ref(),
        }
    }
}

/// A source that could not even be opened for a sync.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SourceOpenError {
    /// The HTTP client could not be set up for this URL.
    #[error("{0}")]
    Http(String),
    /// This build has no HTTP client (the `client` feature is off).
    #[error(
        "this build of weightseal-verifier has no HTTP client (feature `client`); use an export folder or a bundle"
    )]
    NoHttpClient,
    /// The bundle file could not be read.
    #[error("revocation bundle {path}: {source}")]
    Bundle {
        /// The file.
        path: PathBuf,
        /// Why.
        source: BundleError,
    },
}

/// Why the state folder could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LocalStateError {
    /// Neither `XDG_STATE_HOME` nor `HOME` is set, and no folder was given.
    #[error("no revocation state folder: neither XDG_STATE_HOME nor HOME is set (pass a state folder)")]
    NoStateDir,
    /// The text is not a URL, and no such folder or file exists.
    #[error("revocation source {text:?}: not an http(s):// URL, and no such folder or file")]
    BadSource {
        /// The text given.
        text: String,
    },
    /// A log key given is not a note verifier key.
    #[error("log key {text:?} is not a note verifier key (`<origin>+<key id>+<base64>`): {problem}")]
    BadLogKey {
        /// The text given.
        text: String,
        /// What is wrong.
        problem: String,
    },
    /// No key was given and none is pinned in the folder.
    #[error("no log key is pinned in the revocation state {}: give the log key on first use", dir.display())]
    NoPinnedKey {
        /// The folder.
        dir: PathBuf,
    },
    /// The folder is pinned to other log keys than the ones given.
    #[error("the revocation state {} is pinned to the log key {}, not {}", dir.display(), pinned.join(", "), given.join(", "))]
    PinMismatch {
        /// The folder.
        dir: PathBuf,
        /// The pinned keys.
        pinned: Vec<String>,
        /// The keys given.
        given: Vec<String>,
    },
    /// The pins file is unreadable or damaged.
    #[error("the pinned log keys {} cannot be used: {problem}", path.display())]
    PinsDamaged {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// Creating, locking or writing in the folder failed.
    #[error("revocation state {}: {source}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The held state could not be opened (damaged, or synced under other keys).
    #[error("cannot open the revocation state {}: {source}", dir.display())]
    Open {
        /// The folder.
        dir: PathBuf,
        /// Why.
        source: RevocationError,
    },
}

impl LocalStateError {
    /// Whether this is the caller's mistake (bad arguments, wrong key) rather than a state
    /// whose revocation status is unknown.
    pub fn is_usage(&self) -> bool {
        !matches!(self, LocalStateError::Io { .. } | LocalStateError::Open { .. })
    }
}

/// The default state folder: `$XDG_STATE_HOME/weightseal/revocations`, else
/// `~/.local/state/weightseal/revocations`.
pub fn default_state_dir() -> Result<PathBuf, LocalStateError> {
    let base = match std::env::var_os("XDG_STATE_HOME").filter(|v| !v.is_empty()) {
        Some(x) => PathBuf::from(x),
        None => match std::env::var_os("HOME").filter(|v| !v.is_empty()) {
            Some(h) => PathBuf::from(h).join(".local").join("state"),
            None => return Err(LocalStateError::NoStateDir),
        },
    };
    Ok(base.join("weightseal").join("revocations"))
}

/// Parses note verifier keys (`<origin>+<key id>+<base64>`).
pub fn parse_log_keys<S: AsRef<str>>(texts: &[S]) -> Result<Vec<NoteVerifierKey>, LocalStateError> {
    texts
        .iter()
        .map(|t| {
            let t = t.as_ref().trim();
            t.parse::<NoteVerifierKey>().map_err(|e| LocalStateError::BadLogKey {
                text: t.to_string(),
                problem: e.to_string(),
            })
        })
        .collect()
}

fn sorted_texts(keys: &[NoteVerifierKey]) -> Vec<String> {
    let mut v: Vec<String> = keys.iter().map(ToString::to_string).collect();
    v.sort();
    v
}

/// A state folder held by this process: locked, with its pinned keys resolved and its
/// state opened. The lock is released when this value is dropped.
#[derive(Debug)]
pub struct LocalState {
    dir: PathBuf,
    state: RevocationState,
    /// The keys were given now and are not yet recorded in the folder.
    first_use: bool,
    _lock: File,
}

/// What establishing the revocation status found.
#[derive(Debug)]
#[non_exhaustive]
pub struct Established {
    /// The sync report, when the sync succeeded.
    pub synced: Option<SyncReport>,
    /// Why the sync failed, when it did (the held state is then used if still fresh).
    pub sync_error: Option<String>,
    /// Why the status is unknown, when it is. `None` means the held state is fresh and
    /// lookups in it are authoritative.
    pub unknown: Option<StatusUnknown>,
}

/// Why revocation status cannot be established.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StatusUnknown {
    /// Never synced, or the held snapshot expired (or the log was marked as misbehaving).
    #[error("{0}")]
    State(RevocationError),
    /// The clock cannot be read.
    #[error(transparent)]
    Clock(#[from] ClockError),
    /// The clock reads before the held snapshot was signed: it cannot be trusted to judge
    /// expiry (a clock set back would make an expired snapshot look fresh).
    #[error("the clock reads {}, before the held snapshot was signed ({}): revocation freshness cannot be judged", crate::clock::utc(*now), crate::clock::utc(*issued))]
    ClockBeforeSnapshot {
        /// The clock.
        now: u64,
        /// The snapshot's issue time.
        issued: u64,
    },
    /// The held snapshot is older than the policy accepts.
    #[error("the held revocation snapshot was signed at {}, {age} s ago, over the accepted staleness of {max} s", crate::clock::utc(*issued))]
    TooStale {
        /// The snapshot's issue time.
        issued: u64,
        /// Its age in seconds.
        age: u64,
        /// The policy's limit.
        max: u64,
    },
}

impl LocalState {
    /// Locks and opens the state folder `dir`. `given` are the log keys the caller
    /// configured: on first use they are pinned (recorded once data verified under them
    /// is held); later a different set is refused. With `given` empty the pinned keys are
    /// used. Blocks while another process holds the folder.
    pub fn open(dir: &Path, given: &[NoteVerifierKey]) -> Result<LocalState, LocalStateError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| LocalStateError::Io { path, source }
        };
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let lock_path = dir.join(LOCK_FILE);
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io(&lock_path))?;
        // Exclusive for readers too: a reader that raced a writer's rename would still be
        // consistent (every file is replaced atomically), but pin recording and sync are
        // read-modify-write sequences that must not interleave.
        lock.lock().map_err(io(&lock_path))?;
        let pins_path = dir.join(PINNED_KEYS_FILE);
        let stored = match std::fs::read_to_string(&pins_path) {
            Ok(text) => {
                let lines: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
                let keys = parse_log_keys(&lines).map_err(|e| LocalStateError::PinsDamaged {
                    path: pins_path.clone(),
                    problem: e.to_string(),
                })?;
                if keys.is_empty() {
                    return Err(LocalStateError::PinsDamaged {
                        path: pins_path,
                        problem: "it holds no key".into(),
                    });
                }
                Some(keys)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => {
                return Err(LocalStateError::PinsDamaged {
                    path: pins_path,
                    problem: e.to_string(),
                })
            }
        };
        let open_state = |keys: Vec<NoteVerifierKey>| {
            RevocationState::open(dir, keys).map_err(|source| LocalStateError::Open {
                dir: dir.to_path_buf(),
                source,
            })
        };
        let (state, first_use) = match stored {
            Some(stored) => {
                let state = open_state(stored.clone())?;
                // The pins file keeps the keys of first use (the trust root). After the state
                // followed a log key rotation (spec/revocation.md §7.6), a configuration that
                // names the keys it follows now is the same trust, brought up to date.
                if !given.is_empty()
                    && sorted_texts(given) != sorted_texts(&stored)
                    && sorted_texts(given) != sorted_texts(state.keys())
                {
                    return Err(LocalStateError::PinMismatch {
                        dir: dir.to_path_buf(),
                        pinned: sorted_texts(&stored),
                        given: sorted_texts(given),
                    });
                }
                (state, false)
            }
            None if given.is_empty() => return Err(LocalStateError::NoPinnedKey { dir: dir.to_path_buf() }),
            None => (open_state(given.to_vec())?, true),
        };
        Ok(LocalState {
            dir: dir.to_path_buf(),
            state,
            first_use,
            _lock: lock,
        })
    }

    /// The state folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Requires the witness quorum of `policy` on every checkpoint a sync accepts
    /// (spec/revocation.md §5.1).
    pub fn set_witness_policy(&mut self, policy: crate::revocation::cosignature::WitnessPolicy) {
        self.state.set_witness_policy(policy);
    }

    /// The held state.
    pub fn state(&self) -> &RevocationState {
        &self.state
    }

    /// Clears the misbehaviour mark after an operator investigated it (the evidence is
    /// kept); returns what was marked, if anything (spec/revocation.md §7.5).
    pub fn clear_misbehaviour(&mut self) -> Result<Option<crate::revocation::state::Misbehaviour>, RevocationError> {
        self.state.clear_misbehaviour()
    }

    /// Syncs from `source` at time `now`. On success the pins are recorded if this was the
    /// folder's first use. On failure the held state is unchanged.
    pub fn sync(&mut self, source: &RevocationSource, now: u64) -> Result<SyncReport, SyncFailure> {
        let open = source.open().map_err(SyncFailure::Source)?;
        let report = self.state.sync(open.as_source(), now).map_err(SyncFailure::Refused)?;
        self.record_pins().map_err(SyncFailure::Pins)?;
        Ok(report)
    }

    /// Records the pinned keys once the state holds data verified under them.
    fn record_pins(&mut self) -> Result<(), LocalStateError> {
        if self.first_use && self.state.snapshot().is_some() {
            // The keys of first use, not the ones a rotation led to: the state re-derives
            // those from its rotation statements (spec/revocation.md §7.6).
            let text: String = self.state.configured_keys().iter().map(|k| format!("{k}\n")).collect();
            write_atomic(&self.dir, PINNED_KEYS_FILE, text.as_bytes()).map_err(|e| LocalStateError::Io {
                path: self.dir.join(PINNED_KEYS_FILE),
                source: std::io::Error::other(e.to_string()),
            })?;
            self.first_use = false;
        }
        Ok(())
    }

    /// Syncs from `source` (when given and the clock can be read), then decides whether the
    /// held state is fresh enough to be authoritative: not expired, signed no later than
    /// the clock, and (with `max_staleness`) signed at most that many seconds ago. A sync
    /// failure alone is not fatal: a still-fresh held state is used.
    ///
    /// `now` is the clock reading (see [`crate::clock::now_unix`]); an unreadable clock
    /// leaves the status unknown.
    pub fn establish(
        &mut self,
        source: Option<&RevocationSource>,
        max_staleness: Option<u64>,
        now: Result<u64, ClockError>,
    ) -> Established {
        let now = match now {
            Ok(now) => now,
            Err(e) => {
                return Established {
                    synced: None,
                    sync_error: None,
                    unknown: Some(StatusUnknown::Clock(e)),
                }
            }
        };
        let (synced, sync_error) = match source {
            Some(s) => match self.sync(s, now) {
                Ok(r) => (Some(r), None),
                Err(e) => (None, Some(e.to_string())),
            },
            None => (None, None),
        };
        let unknown = self.freshness(now, max_staleness).err();
        Established {
            synced,
            sync_error,
            unknown,
        }
    }

    /// The freshness rules of §7.4 at time `now`.
    pub fn freshness(&self, now: u64, max_staleness: Option<u64>) -> Result<(), StatusUnknown> {
        let snapshot = self.state.require_fresh(now).map_err(StatusUnknown::State)?;
        if now < snapshot.issued {
            return Err(StatusUnknown::ClockBeforeSnapshot {
                now,
                issued: snapshot.issued,
            });
        }
        if let Some(max) = max_staleness {
            let age = now - snapshot.issued;
            if age > max {
                return Err(StatusUnknown::TooStale {
                    issued: snapshot.issued,
                    age,
                    max,
                });
            }
        }
        Ok(())
    }
}

/// Why a sync did not happen.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SyncFailure {
    /// The source could not be opened.
    #[error("{0}")]
    Source(SourceOpenError),
    /// The source answered and a sync rule refused it (the held state is unchanged).
    #[error("{0}")]
    Refused(RevocationError),
    /// The sync succeeded but the pins could not be recorded.
    #[error("{0}")]
    Pins(LocalStateError),
}
