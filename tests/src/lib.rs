//! Shared helpers for the end-to-end tests: the `weightseal` binary, fixtures, running
//! commands, and tampering with files.
//!
//! The CLI tests run the real binary. `CARGO_BIN_EXE_weightseal` only exists inside the
//! package that owns the binary, so [`weightseal_bin`] finds it beside the test
//! executable (same target folder and profile) after asking cargo to bring it up to
//! date: a stale binary is never tested, and a plain `cargo test -p weightseal-e2e` from
//! a clean clone works too. `WEIGHTSEAL_BIN=/path/to/weightseal` overrides all of this.
//!
//! These helpers panic on anything unexpected: they only serve tests.
#![allow(
    clippy::unwrap_used,
    clippy::missing_panics_doc,
    reason = "test-support helpers: they panic on anything unexpected and only serve tests"
)]

use std::ffi::OsStr;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use weightseal_verifier::{Chunk, Manifest, SignatureFile, Verifier};

/// The fixtures folder (`tests/fixtures`): real files written by the reference writers.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// The fixture model folders.
pub const FIXTURE_FOLDERS: [&str; 3] = [
    "safetensors/base-model",
    "safetensors/derived-model",
    "safetensors/base-model-resharded",
];

/// The fixture single weight files.
pub const FIXTURE_FILES: [&str; 4] = [
    "safetensors/edge-cases.safetensors",
    "safetensors/no-tensors.safetensors",
    "gguf/tiny-llama.gguf",
    "gguf/tiny-llama-align64.gguf",
];

/// The five tensors `derived-model` changes relative to `base-model` (sorted).
pub const DERIVED_CHANGED: [&str; 5] = [
    "lm_head.weight",
    "model.layers.1.self_attn.k_proj.weight",
    "model.layers.1.self_attn.o_proj.weight",
    "model.layers.1.self_attn.q_proj.weight",
    "model.layers.1.self_attn.v_proj.weight",
];

/// Copies a file or folder (recursively) to `dest`.
pub fn copy_tree(src: &Path, dest: &Path) {
    let meta = std::fs::symlink_metadata(src).unwrap();
    if meta.is_dir() {
        std::fs::create_dir_all(dest).unwrap();
        for entry in std::fs::read_dir(src).unwrap() {
            let entry = entry.unwrap();
            copy_tree(&entry.path(), &dest.join(entry.file_name()));
        }
    } else {
        std::fs::copy(src, dest).unwrap();
    }
}

/// Copies fixture `rel` (file or folder) into `dir`, keeping its file name; returns the copy.
pub fn copy_fixture(rel: &str, dir: &Path) -> PathBuf {
    let src = fixtures().join(rel);
    let dest = dir.join(src.file_name().unwrap());
    copy_tree(&src, &dest);
    dest
}

fn profile_for(dir_name: &str) -> &str {
    match dir_name {
        "debug" => "test",
        other => other,
    }
}

fn locate_or_build() -> PathBuf {
    locate_or_build_bin("weightseal", "WEIGHTSEAL_BIN")
}

/// Finds binary `bin_name` of the workspace beside the test executable (same target folder and
/// profile) after asking cargo to bring it up to date; `env` overrides.
fn locate_or_build_bin(bin_name: &str, env: &str) -> PathBuf {
    if let Some(p) = std::env::var_os(env) {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().unwrap();
    let mut profile_dir = exe.parent().unwrap().to_path_buf();
    if profile_dir.ends_with("deps") {
        profile_dir.pop();
    }
    let bin = profile_dir.join(format!("{bin_name}{}", std::env::consts::EXE_SUFFIX));
    let profile = profile_for(profile_dir.file_name().and_then(OsStr::to_str).unwrap_or("debug"));
    // target/<profile>, or target/<triple>/<profile> when cross-compiling.
    let mut target_dir = profile_dir.parent().unwrap().to_path_buf();
    let mut triple = None;
    if !target_dir.join("CACHEDIR.TAG").exists() {
        if let Some(parent) = target_dir.parent().filter(|p| p.join("CACHEDIR.TAG").exists()) {
            triple = target_dir.file_name().map(OsStr::to_os_string);
            target_dir = parent.to_path_buf();
        }
    }
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut build = Command::new(cargo);
    // The same selection as the README's test command (`cargo test --workspace
    // --all-features`), which builds every binary itself before any test runs: with the
    // same packages, features and targets, cargo's feature unification gives the very same
    // build and this is a no-op. Narrower flags (`-p PACKAGE`, no `--tests`) unify features
    // differently, so cargo built the verifier and its dependents once more for each binary
    // (two extra builds, 15 of the test run's 16 minutes on a 2-core machine).
    build
        .args([
            "build",
            "--quiet",
            "--workspace",
            "--all-features",
            "--bins",
            "--tests",
            "--profile",
            profile,
        ])
        .arg("--manifest-path")
        .arg(workspace.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir)
        .stdin(Stdio::null());
    // cargo gives a test process its package's variables (CARGO_MANIFEST_DIR and the like).
    // A build script that watches one (ring's watches CARGO_MANIFEST_DIR) would see it
    // change between this build and the test command's, and rebuild ring, rustls and all
    // above them, twice per run.
    for (name, _) in std::env::vars_os() {
        let set_for_tests = name.to_str().is_some_and(|n| {
            [
                "CARGO_MANIFEST_",
                "CARGO_PKG_",
                "CARGO_CRATE_",
                "CARGO_BIN_",
                "CARGO_PRIMARY_",
                "CARGO_TARGET_TMPDIR",
            ]
            .iter()
            .any(|prefix| n.starts_with(prefix))
        });
        if set_for_tests {
            build.env_remove(name);
        }
    }
    if let Some(t) = triple {
        build.arg("--target").arg(t);
    }
    match build.status() {
        Ok(s) if s.success() => {}
        Ok(s) => eprintln!(
            "note: building {bin_name} failed ({s}); using {} if it exists",
            bin.display()
        ),
        Err(e) => eprintln!("note: cannot run cargo ({e}); using {} if it exists", bin.display()),
    }
    assert!(
        bin.is_file(),
        "the {bin_name} binary is not at {}; build it (cargo build --workspace --all-features --bins) or set {env}",
        bin.display()
    );
    bin
}

/// The `weightseal-server` binary, built (once per test process) if needed.
/// `WEIGHTSEAL_SERVER_BIN` overrides.
pub fn weightseal_server_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| locate_or_build_bin("weightseal-server", "WEIGHTSEAL_SERVER_BIN"))
}

/// The `weightseal` binary, built (once per test process) if needed.
pub fn weightseal_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(locate_or_build)
}

/// What a run of `weightseal` produced.
#[derive(Debug, Clone)]
pub struct Run {
    /// The command line (for messages).
    pub args: Vec<String>,
    /// The exit status (-1 if killed by a signal).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Run {
    fn describe(&self) -> String {
        format!(
            "weightseal {}\n--- exit status {}\n--- stdout:\n{}--- stderr:\n{}",
            self.args.join(" "),
            self.code,
            self.stdout,
            self.stderr
        )
    }

    /// Asserts the exit status.
    #[track_caller]
    pub fn code(&self, expected: i32) -> &Self {
        assert_eq!(self.code, expected, "unexpected exit status:\n{}", self.describe());
        self
    }

    /// Asserts exit status 0.
    #[track_caller]
    pub fn ok(&self) -> &Self {
        self.code(0)
    }

    /// Asserts stderr contains `needle`.
    #[track_caller]
    pub fn stderr_has(&self, needle: &str) -> &Self {
        assert!(
            self.stderr.contains(needle),
            "stderr lacks {needle:?}:\n{}",
            self.describe()
        );
        self
    }

    /// Asserts stderr does not contain `needle`.
    #[track_caller]
    pub fn stderr_lacks(&self, needle: &str) -> &Self {
        assert!(
            !self.stderr.contains(needle),
            "stderr has {needle:?}:\n{}",
            self.describe()
        );
        self
    }

    /// Asserts stdout contains `needle`.
    #[track_caller]
    pub fn stdout_has(&self, needle: &str) -> &Self {
        assert!(
            self.stdout.contains(needle),
            "stdout lacks {needle:?}:\n{}",
            self.describe()
        );
        self
    }

    /// Parses stdout as JSON.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.describe()))
    }
}

/// Runs `weightseal ARGS` (with `--no-progress`-equivalent: stderr is a pipe). Asserts it
/// did not panic or die by a signal, and printed each error once.
///
/// Every `weightseal verify` given with trust/revocation flags is also run through the
/// equivalent `--policy FILE` (on a copy of its state folder, taken before the flags run)
/// and must decide exactly alike: same exit status, and for a refusal the same error line,
/// for a success the same report.
pub fn weightseal<I, S>(args: I) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let args: Vec<std::ffi::OsString> = args.into_iter().map(|a| a.as_ref().to_os_string()).collect();
    let twin = PolicyTwin::prepare(&args);
    let run = run_weightseal(&args);
    if let Some(twin) = twin {
        twin.check_same_decision(&run);
        POLICY_TWINS_CHECKED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    run
}

/// How many `verify` runs of this test process were also decided through `--policy`.
pub static POLICY_TWINS_CHECKED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// The `--policy` form of a `verify` command line given with flags.
struct PolicyTwin {
    _dir: tempfile::TempDir,
    args: Vec<std::ffi::OsString>,
    /// (the twin's state folder, the original's), to compare messages.
    state: Option<(String, String)>,
}

impl PolicyTwin {
    /// `None` unless `args` is a `verify` whose trust and revocation flags all translate.
    fn prepare(args: &[std::ffi::OsString]) -> Option<PolicyTwin> {
        let text: Vec<String> = args
            .iter()
            .map(|a| a.to_str().map(str::to_string))
            .collect::<Option<_>>()?;
        if text.first().map(String::as_str) != Some("verify") || text.iter().any(|a| a == "--policy") {
            return None;
        }
        let toml_str = |s: &str| serde_json::to_string(s).ok();
        // Paths in a policy file are relative to its folder; on the command line to the
        // working directory.
        let abs = |s: &str| std::path::absolute(s).ok().and_then(|p| p.to_str().map(str::to_string));
        let (mut keys, mut threshold, mut unsigned_files, mut no_mmap) = (Vec::new(), None, false, false);
        let (mut source, mut state, mut log_keys, mut ignore_status) = (None, None, Vec::new(), false);
        let mut rest = vec!["verify".to_string()];
        let mut it = text.iter().skip(1);
        while let Some(a) = it.next() {
            match a.as_str() {
                "--trusted-key" => keys.push(toml_str(&abs(it.next()?)?)?),
                "--threshold" => threshold = Some(it.next()?.parse::<u64>().ok()?),
                "--allow-unsigned-files-unsafe" => unsigned_files = true,
                "--no-mmap" => no_mmap = true,
                "--revocations" => source = Some(it.next()?.clone()),
                "--state" => state = Some(it.next()?.clone()),
                "--revocation-key" => log_keys.push(toml_str(it.next()?)?),
                "--unsafe-ignore-revocation-status" => ignore_status = true,
                "--signature" | "--tensors" => {
                    rest.push(a.clone());
                    rest.push(it.next()?.clone());
                }
                "--json" | "--quiet" | "-q" => rest.push(a.clone()),
                other if other.starts_with('-') => return None,
                other => rest.push(other.to_string()),
            }
        }
        // Without a trusted key the flags run is a usage error about the flags themselves.
        if keys.is_empty() || (source.is_none() && (state.is_some() || !log_keys.is_empty() || ignore_status)) {
            return None;
        }
        let dir = tempfile::tempdir().ok()?;
        let mut doc = format!("trusted_keys = [{}]\n", keys.join(", "));
        if let Some(t) = threshold {
            doc += &format!("threshold = {t}\n");
        }
        if unsigned_files {
            doc += "allow_unsigned_files_unsafe = true\n";
        }
        if no_mmap {
            doc += "no_mmap = true\n";
        }
        let mut state_pair = None;
        if let Some(src) = source {
            let src = if src.starts_with("http://") || src.starts_with("https://") {
                src
            } else {
                abs(&src)?
            };
            doc += &format!("[revocations]\nsource = {}\n", toml_str(&src)?);
            let original = state?;
            let twin_state = dir.path().join("state");
            if Path::new(&original).exists() {
                copy_tree(Path::new(&original), &twin_state);
            }
            doc += &format!("state = {}\n", toml_str(twin_state.to_str()?)?);
            if !log_keys.is_empty() {
                doc += &format!("log_keys = [{}]\n", log_keys.join(", "));
            }
            if ignore_status {
                doc += "unsafe_ignore_status = true\n";
            }
            state_pair = Some((twin_state.to_str()?.to_string(), original));
        }
        let policy = dir.path().join("policy.toml");
        std::fs::write(&policy, doc).ok()?;
        rest.insert(1, "--policy".into());
        rest.insert(2, policy.to_str()?.to_string());
        Some(PolicyTwin {
            _dir: dir,
            args: rest.into_iter().map(Into::into).collect(),
            state: state_pair,
        })
    }

    #[track_caller]
    fn check_same_decision(&self, flags: &Run) {
        let twin = run_weightseal(&self.args);
        let normalise = |s: &str| match &self.state {
            Some((twin_dir, original)) => s.replace(twin_dir, original),
            None => s.to_string(),
        };
        let error_line = |r: &Run| r.stderr.lines().find(|l| l.starts_with("error:")).map(normalise);
        // Exit 2 is the caller's mistake, worded for the form it was made in (a flag, or a
        // key in the policy file): only the status must agree there.
        let same = twin.code == flags.code
            && (flags.code == 2 || error_line(&twin) == error_line(flags))
            && (flags.code != 0 || normalise(&twin.stdout) == flags.stdout || self.args.iter().any(|a| a == "--json"));
        assert!(
            same,
            "`verify --policy` decided differently from the same flags:\n{}\n=== with --policy:\n{}",
            flags.describe(),
            twin.describe()
        );
    }
}

fn run_weightseal(args: &[std::ffi::OsString]) -> Run {
    let out = Command::new(weightseal_bin())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let run = Run {
        args: args.iter().map(|a| a.to_string_lossy().into_owned()).collect(),
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    assert!(run.code >= 0, "killed by a signal:\n{}", run.describe());
    assert!(!run.stderr.contains("panicked"), "panicked:\n{}", run.describe());
    assert!(
        run.stderr.lines().filter(|l| l.starts_with("error:")).count() <= 1,
        "more than one error printed:\n{}",
        run.describe()
    );
    run
}

/// What a measured run of the CLI used.
#[derive(Debug, Clone, Copy)]
pub struct Usage {
    /// Peak resident memory of the process, KiB: the largest `VmHWM` (anonymous and
    /// mapped file pages it touched) read from /proc while it ran. (`ru_maxrss` would
    /// not do: it survives `execve`, so a child forked from a test process that holds a
    /// large buffer reports that buffer.)
    pub peak_rss_kib: u64,
    /// Wall time.
    pub wall: std::time::Duration,
}

/// Runs `weightseal ARGS` (no policy twin) and reports its peak memory and wall time.
/// The high-water mark is sampled every millisecond until the process exits, so growth
/// in its last millisecond could be missed; the bounds checked with it are far above
/// what the commands need.
pub fn weightseal_measured<I, S>(args: I) -> (Run, Usage)
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    use std::io::Read as _;
    let args: Vec<std::ffi::OsString> = args.into_iter().map(|a| a.as_ref().to_os_string()).collect();
    let started = std::time::Instant::now();
    let mut child = Command::new(weightseal_bin())
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out_pipe = child.stdout.take().unwrap();
    let mut err_pipe = child.stderr.take().unwrap();
    let out_reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = out_pipe.read_to_end(&mut s);
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = err_pipe.read_to_end(&mut s);
        s
    });
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak_kib = 0u64;
    let status = loop {
        if let Some(kib) = std::fs::read_to_string(&status_file).ok().and_then(|text| {
            text.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        }) {
            peak_kib = peak_kib.max(kib);
        }
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    };
    let wall = started.elapsed();
    let code = status.code().unwrap_or(-1);
    let run = Run {
        args: args.iter().map(|a| a.to_string_lossy().into_owned()).collect(),
        code,
        stdout: String::from_utf8_lossy(&out_reader.join().unwrap()).into_owned(),
        stderr: String::from_utf8_lossy(&err_reader.join().unwrap()).into_owned(),
    };
    assert!(run.code >= 0, "killed by a signal:\n{}", run.describe());
    assert!(!run.stderr.contains("panicked"), "panicked:\n{}", run.describe());
    (
        run,
        Usage {
            peak_rss_kib: peak_kib,
            wall,
        },
    )
}

/// A key pair made with `weightseal keygen`.
#[derive(Debug, Clone)]
pub struct Key {
    /// The private key file.
    pub private: PathBuf,
    /// The public key file (`KEY.pub`).
    pub public: PathBuf,
    /// The key id (hex), as `keygen --json` printed it.
    pub id: String,
}

/// `weightseal keygen --out DIR/NAME --json`.
pub fn keygen(dir: &Path, name: &str) -> Key {
    let private = dir.join(name);
    let run = weightseal([
        OsStr::new("keygen"),
        OsStr::new("--out"),
        private.as_os_str(),
        OsStr::new("--json"),
    ]);
    run.ok();
    let json = run.json();
    let mut public = private.clone().into_os_string();
    public.push(".pub");
    Key {
        private,
        public: PathBuf::from(public),
        id: json["key_id"].as_str().unwrap().to_string(),
    }
}

/// `weightseal sign MODEL --key KEY EXTRA...`, asserting success; returns its JSON.
pub fn sign(model: &Path, key: &Key, extra: &[&str]) -> serde_json::Value {
    let mut args = vec![
        "sign".into(),
        model.as_os_str().to_os_string(),
        "--key".into(),
        key.private.as_os_str().to_os_string(),
        "--json".into(),
    ];
    args.extend(extra.iter().map(|s| s.into()));
    let run = weightseal(&args);
    run.ok();
    run.json()
}

/// `weightseal verify MODEL --trusted-key KEY.pub EXTRA...`.
pub fn verify(model: &Path, key: &Key, extra: &[&str]) -> Run {
    let mut args = vec![
        "verify".into(),
        model.as_os_str().to_os_string(),
        "--trusted-key".into(),
        key.public.as_os_str().to_os_string(),
    ];
    args.extend(extra.iter().map(|s| s.into()));
    weightseal(&args)
}

/// The default signature file of a model (as the CLI picks it).
pub fn default_sig(model: &Path) -> PathBuf {
    weightseal_verifier::default_signature_path(model)
}

/// Decodes a signature file and its manifest (no trust decision).
pub fn read_sig(path: &Path) -> (SignatureFile, Manifest) {
    let sig = Verifier::read_signature_file(path).unwrap();
    let manifest = sig.manifest().unwrap();
    (sig, manifest)
}

/// The chunk of `file` in the signed manifest: a tensor by name, or the header (`None`).
pub fn chunk(sig: &Path, file: &str, tensor: Option<&str>) -> Chunk {
    let (_, manifest) = read_sig(sig);
    let entry = manifest
        .file(file)
        .unwrap_or_else(|| panic!("{file} is not in the manifest"));
    entry
        .chunks
        .iter()
        .find(|c| match tensor {
            Some(name) => c.tensor_name() == Some(name),
            None => c.role == weightseal_verifier::ChunkRole::Header,
        })
        .unwrap_or_else(|| panic!("no chunk {tensor:?} in {file}"))
        .clone()
}

/// Flips bit `bit` of the byte at `offset`, in place.
pub fn flip_bit(path: &Path, offset: u64, bit: u8) {
    let file = std::fs::OpenOptions::new().read(true).write(true).open(path).unwrap();
    let mut b = [0u8; 1];
    file.read_exact_at(&mut b, offset).unwrap();
    b[0] ^= 1 << bit;
    file.write_all_at(&b, offset).unwrap();
}

/// The position of `needle` in `haystack`.
pub fn find_bytes(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Whether `program` can be run (for optional checks such as `openssl`).
pub fn have_program(program: &str) -> bool {
    Command::new(program)
        .arg("version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

pub mod revocation;
