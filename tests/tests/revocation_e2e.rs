//! End to end: `weightseal-server` as a separate process on a 127.0.0.1 port, the real
//! `weightseal` CLI as the lab, the hub and the runtime; the static export behind
//! `python3 -m http.server`; bundles; fail-closed behaviour.
#![allow(clippy::unwrap_used, reason = "a test fails by panicking")]

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::time::Duration;

use safetensors::tensor::TensorView;
use safetensors::SafeTensors;
use weightseal_e2e::revocation::{http_get, Lie, LogSetup, LyingServer, ServerProcess, StaticServer};
use weightseal_e2e::{copy_fixture, default_sig, keygen, sign, weightseal, Key, Run, DERIVED_CHANGED};

const EVIDENCE: &str = "https://hub.example/reports/42";

fn os(args: &[&dyn AsRef<OsStr>]) -> Vec<OsString> {
    args.iter().map(|a| a.as_ref().to_os_string()).collect()
}

/// The models and keys of one scenario.
struct World {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    lab: Key,
    fork: Key,
    base: PathBuf,
    derived: PathBuf,
    log: LogSetup,
}

impl World {
    fn new() -> World {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        let lab = keygen(&dir, "lab.key");
        let fork = keygen(&dir, "fork.key");
        let base = copy_fixture("safetensors/base-model", &dir);
        let derived = copy_fixture("safetensors/derived-model", &dir);
        sign(&base, &lab, &["--name", "lab/base"]);
        sign(&derived, &fork, &["--name", "someone/derived"]);
        let log = LogSetup::new(&dir.join("log"), &[&lab]);
        World {
            _tmp: tmp,
            dir,
            lab,
            fork,
            base,
            derived,
            log,
        }
    }

    fn state(&self, name: &str) -> PathBuf {
        self.dir.join("states").join(name)
    }

    /// `weightseal verify MODEL` trusting the lab and fork keys, against `src`.
    fn verify(&self, model: &Path, src: &str, state: &str, extra: &[&str]) -> Run {
        let mut args = os(&[
            &"verify",
            &model,
            &"--trusted-key",
            &self.lab.public,
            &"--trusted-key",
            &self.fork.public,
            &"--revocations",
            &src,
            &"--state",
            &self.state(state),
            &"--revocation-key",
            &self.log.note_key,
        ]);
        args.extend(extra.iter().map(OsString::from));
        weightseal(args)
    }

    fn check(&self, model: &Path, src: &str, state: &str) -> Run {
        weightseal(os(&[
            &"check",
            &model,
            &"--revocations",
            &src,
            &"--state",
            &self.state(state),
            &"--revocation-key",
            &self.log.note_key,
        ]))
    }

    fn revoke(&self, server: &str, issuer: &Key, subject: &[&dyn AsRef<OsStr>], extra: &[&str]) -> Run {
        let mut args = os(&[
            &"revoke",
            &"--server",
            &server,
            &"--key",
            &issuer.private,
            &"--revocation-key",
            &self.log.note_key,
        ]);
        args.extend(os(subject));
        args.extend(extra.iter().map(OsString::from));
        weightseal(args)
    }
}

/// Writes the tensors of the safetensors files in `src` into 3 new shard files in `dest`
/// (other names, other order, other offsets), unsigned.
fn reshard(src: &Path, dest: &Path) {
    std::fs::create_dir_all(dest).unwrap();
    let mut files: Vec<PathBuf> = std::fs::read_dir(src)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "safetensors"))
        .collect();
    files.sort();
    let buffers: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(f).unwrap()).collect();
    let mut tensors: Vec<(String, TensorView<'_>)> = Vec::new();
    for b in &buffers {
        let st = SafeTensors::deserialize(b).unwrap();
        for (name, view) in st.tensors() {
            let owned = TensorView::new(view.dtype(), view.shape().to_vec(), view.data()).unwrap();
            tensors.push((name, owned));
        }
    }
    // Reverse order, so no shard resembles an original one.
    tensors.sort_by(|a, b| b.0.cmp(&a.0));
    let per = tensors.len().div_ceil(3);
    for (i, group) in tensors.chunks(per).enumerate() {
        let bytes = safetensors::serialize(group.iter().map(|(n, v)| (n.clone(), v.clone())), None).unwrap();
        std::fs::write(dest.join(format!("weights-part{}-of-3.safetensors", i + 1)), bytes).unwrap();
    }
    std::fs::copy(src.join("config.json"), dest.join("config.json")).unwrap();
}

#[test]
fn revocation_live_server_end_to_end() {
    let w = World::new();
    let server = ServerProcess::start(&w.log, &[]);
    let url = server.url.as_str();
    let derived_sig = default_sig(&w.derived);

    // Before any revocation both load.
    w.verify(&w.derived, url, "rt", &[]).ok().stdout_has("not revoked");
    w.verify(&w.base, url, "rt", &[]).ok();

    // The hub revokes the derivative (its signed manifest).
    let r = w.revoke(
        url,
        &w.log.hub,
        &[&"--manifest", &derived_sig],
        &["--reason", "guardrails-removed", "--evidence", EVIDENCE, "--json"],
    );
    r.ok();
    assert_eq!(r.json()["entries"][0]["index"], 0);

    // The runtime refuses it, naming the entry, reason, issuer and evidence; the base loads.
    let refused = w.verify(&w.derived, url, "rt", &[]);
    refused
        .code(1)
        .stderr_has("guardrails-removed")
        .stderr_has(EVIDENCE)
        .stderr_has("the manifest")
        .stderr_has(&w.log.hub.id);
    w.verify(&w.base, url, "rt", &[]).ok();

    // A reinstatement (a later entry) lifts it.
    w.revoke(
        url,
        &w.log.hub,
        &[&"--manifest", &derived_sig],
        &["--reason", "other", "--reinstate"],
    )
    .ok();
    w.verify(&w.derived, url, "rt", &[]).ok();

    // The hub revokes the derivative's content (what differs from the base).
    let r = w.revoke(
        url,
        &w.log.hub,
        &[&"--model", &w.derived, &"--except", &w.base],
        &["--reason", "guardrails-removed", "--evidence", EVIDENCE, "--json"],
    );
    r.ok();
    let n = r.json()["entries"].as_array().unwrap().len();
    // The 5 changed tensors and the 2 weight files that hold them.
    assert_eq!(n, DERIVED_CHANGED.len() + 2, "{}", r.stdout);

    // Re-packaged into 3 other shard files, unsigned: `check` refuses it through its tensors.
    let resharded = w.dir.join("derived-resharded");
    reshard(&w.derived, &resharded);
    let r = w.check(&resharded, url, "rt");
    r.code(1).stderr_has("guardrails-removed");
    for t in DERIVED_CHANGED {
        r.stderr_has(&format!("tensor {t}"));
    }
    // The base, and the base re-packaged, are clean.
    w.check(&w.base, url, "rt").ok().stdout_has("not revoked");
    let base_resharded = copy_fixture("safetensors/base-model-resharded", &w.dir);
    w.check(&base_resharded, url, "rt").ok();
    w.verify(&w.derived, url, "rt", &[])
        .code(1)
        .stderr_has("tensor lm_head.weight");
    w.verify(&w.base, url, "rt", &[]).ok();

    // A hub may not revoke keys; a lab may not revoke content: refused, nothing recorded.
    w.revoke(
        url,
        &w.log.hub,
        &[&"--key-id", &w.lab.id],
        &["--reason", "key-compromise"],
    )
    .code(1)
    .stderr_has("out_of_scope");
    w.revoke(url, &w.log.lab, &[&"--digest", &w.lab.id], &["--reason", "other"])
        .code(1)
        .stderr_has("out_of_scope");

    // The lab revokes its own signing key: everything it signed is refused.
    w.revoke(
        url,
        &w.log.lab,
        &[&"--key-id", &w.lab.public],
        &["--reason", "key-compromise"],
    )
    .ok();
    w.verify(&w.base, url, "rt", &[])
        .code(1)
        .stderr_has("key-compromise")
        .stderr_has("a signer's key");

    // Status of the state folder.
    let st = weightseal(os(&[&"revocations", &"status", &"--state", &w.state("rt"), &"--json"]));
    st.ok();
    let j = st.json();
    assert_eq!(j["fresh"], true);
    assert_eq!(j["size"], n as u64 + 3);
    assert_eq!(j["counts"]["revoked_subjects"]["key"], 1);
    assert_eq!(j["counts"]["revoked_subjects"]["manifest"], 0);

    // A different log key for the same state is refused (exit 2).
    let other_log = LogSetup::new(&w.dir.join("other-log"), &[]);
    weightseal(os(&[
        &"revocations",
        &"sync",
        &"--revocations",
        &url,
        &"--state",
        &w.state("rt"),
        &"--revocation-key",
        &other_log.note_key,
    ]))
    .code(2)
    .stderr_has("pinned");
}

#[test]
fn revocation_static_export_and_bundle_match_the_live_server() {
    let w = World::new();
    let server = ServerProcess::start(&w.log, &[]);
    let url = server.url.as_str();
    let derived_sig = default_sig(&w.derived);
    w.revoke(
        url,
        &w.log.hub,
        &[&"--manifest", &derived_sig],
        &["--reason", "guardrails-removed", "--evidence", EVIDENCE],
    )
    .ok();
    w.revoke(
        url,
        &w.log.hub,
        &[&"--model", &w.derived, &"--except", &w.base],
        &["--reason", "guardrails-removed"],
    )
    .ok();
    let resharded = w.dir.join("derived-resharded");
    reshard(&w.derived, &resharded);

    let export = w.dir.join("export");
    w.log.export(&export);
    let export_text = export.display().to_string();
    let mut sources = vec![("live", url.to_string()), ("dir", export_text)];
    let statik = StaticServer::start(&export);
    match &statik {
        Some(s) => sources.push(("static", s.url.clone())),
        None => eprintln!("note: python3 not found; the static export is checked from its folder only"),
    }
    for (name, src) in &sources {
        let state = format!("via-{name}");
        w.verify(&w.derived, src, &state, &[])
            .code(1)
            .stderr_has("guardrails-removed")
            .stderr_has(EVIDENCE);
        w.verify(&w.base, src, &state, &[]).ok();
        w.check(&resharded, src, &state)
            .code(1)
            .stderr_has("tensor lm_head.weight");
        w.check(&w.base, src, &state).ok();
        let st = weightseal(os(&[
            &"revocations",
            &"status",
            &"--state",
            &w.state(&state),
            &"--json",
        ]));
        assert_eq!(st.json()["size"], DERIVED_CHANGED.len() as u64 + 3, "{name}");
    }

    // A bundle from one state, carried to an offline machine (no server, fresh state).
    let bundle = w.dir.join("revocations.bundle");
    weightseal(os(&[
        &"revocations",
        &"bundle",
        &"--out",
        &bundle,
        &"--state",
        &w.state("via-live"),
    ]))
    .ok();
    drop(server);
    drop(statik);
    let b = bundle.display().to_string();
    w.verify(&w.derived, &b, "offline", &[])
        .code(1)
        .stderr_has("guardrails-removed");
    w.verify(&w.base, &b, "offline", &[]).ok();
    w.check(&resharded, &b, "offline").code(1);
}

#[test]
fn revocation_fails_closed_without_fresh_status() {
    let w = World::new();
    let dead = format!("http://127.0.0.1:{}", weightseal_e2e::revocation::free_port());

    // Never synced and the server cannot be reached: refused, unless the unsafe flag.
    w.verify(&w.base, &dead, "none", &[])
        .code(1)
        .stderr_has("revocation status cannot be established")
        .stderr_has("--unsafe-ignore-revocation-status");
    w.check(&w.base, &dead, "none").code(1);
    w.verify(&w.base, &dead, "none", &["--unsafe-ignore-revocation-status"])
        .ok()
        .stderr_has("UNKNOWN");

    // A state synced from a log whose snapshots live 20 seconds: long enough that the steps
    // until the offline check below (revoke, sync, stopping the server, a new process) fit
    // inside it on a loaded CI machine; the test then waits out the rest of the lifetime.
    const TTL: Duration = Duration::from_secs(20);
    let mut server = ServerProcess::start(&w.log, &["--snapshot-ttl", "20s", "--resign-interval", "1s"]);
    let url = server.url.clone();
    w.revoke(
        &url,
        &w.log.hub,
        &[&"--manifest", &default_sig(&w.derived)],
        &["--reason", "guardrails-removed"],
    )
    .ok();
    w.verify(&w.base, &url, "short", &[]).ok();
    // The snapshot this sync holds was issued before now, so it expires before now + TTL.
    let synced = std::time::Instant::now();
    assert!(
        server.guard.terminate(Duration::from_secs(10)),
        "the server did not stop cleanly"
    );
    // The server is gone but the held snapshot is fresh: used, with a warning.
    w.verify(&w.base, &url, "short", &[])
        .ok()
        .stderr_has("using the held revocation state");
    w.verify(&w.derived, &url, "short", &[])
        .code(1)
        .stderr_has("guardrails-removed");
    // Past its expiry, with 2 s for the whole seconds the note counts in.
    std::thread::sleep((TTL + Duration::from_secs(2)).saturating_sub(synced.elapsed()));
    // Expired and no server: refused; the unsafe flag loads the base but never a known revocation.
    w.verify(&w.base, &url, "short", &[]).code(1).stderr_has("stale");
    w.check(&w.base, &url, "short").code(1);
    w.verify(&w.base, &url, "short", &["--unsafe-ignore-revocation-status"])
        .ok()
        .stderr_has("UNKNOWN");
    w.verify(&w.derived, &url, "short", &["--unsafe-ignore-revocation-status"])
        .code(1)
        .stderr_has("guardrails-removed");
    let st = weightseal(os(&[
        &"revocations",
        &"status",
        &"--state",
        &w.state("short"),
        &"--json",
    ]));
    st.code(1);
    assert_eq!(st.json()["fresh"], false);

    // No pinned key, none given: the command cannot run.
    weightseal(os(&[
        &"check",
        &w.base,
        &"--revocations",
        &url,
        &"--state",
        &w.state("fresh-folder"),
    ]))
    .code(2)
    .stderr_has("--revocation-key");
}

/// issue 7 item 2: a fork whose signed lineage names its parent is never revoked in the
/// parent's shared content by default; --dry-run submits nothing.
#[test]
fn issue7_revoking_a_fork_does_not_revoke_its_signed_parent() {
    let w = World::new();
    let lineage = w.dir.join("lineage");
    std::fs::create_dir_all(&lineage).unwrap();
    let child = copy_fixture("safetensors/derived-model", &lineage);
    let base_sig = default_sig(&w.base);
    let parent_arg = base_sig.display().to_string();
    sign(
        &child,
        &w.fork,
        &[
            "--name",
            "someone/derived",
            "--parent",
            &parent_arg,
            "--relation",
            "finetune",
        ],
    );
    let server = ServerProcess::start(&w.log, &[]);
    let url = server.url.as_str();
    let size = || {
        let (status, body) = http_get(&server.addr, "/v1/health");
        assert_eq!(status, 200);
        serde_json::from_slice::<serde_json::Value>(&body).unwrap()["size"].clone()
    };

    // Without the parent's manifest the shared content cannot be told apart: refused.
    w.revoke(
        url,
        &w.log.hub,
        &[&"--model", &child],
        &["--reason", "guardrails-removed"],
    )
    .code(2)
    .stderr_has("parent")
    .stderr_has(&read_manifest_digest(&base_sig));
    assert_eq!(size(), 0);

    // --dry-run prints what would be submitted, and submits nothing.
    let r = w.revoke(
        url,
        &w.log.hub,
        &[&"--model", &child, &"--except", &base_sig],
        &["--reason", "guardrails-removed", "--dry-run", "--json"],
    );
    r.ok();
    let j = r.json();
    assert_eq!(j["dry_run"], true);
    assert_eq!(j["entries"].as_array().unwrap().len(), DERIVED_CHANGED.len() + 2);
    assert!(
        !j["shared"].as_array().unwrap().is_empty(),
        "the shared tensors are reported"
    );
    assert_eq!(size(), 0);

    // For real: the differing content only; the shared tensors are listed as left out.
    let r = w.revoke(
        url,
        &w.log.hub,
        &[&"--model", &child, &"--except", &base_sig],
        &["--reason", "guardrails-removed"],
    );
    r.ok().stdout_has("left out content").stdout_has("proven");
    w.verify(&w.base, url, "lineage", &[]).ok();
    w.verify(&child, url, "lineage", &[]).code(1);

    // Revoking shared content needs the explicit flag, and says what it does.
    w.revoke(
        url,
        &w.log.hub,
        &[&"--model", &child, &"--except", &base_sig],
        &["--reason", "guardrails-removed", "--include-shared", "--dry-run"],
    )
    .ok()
    .stdout_has("that model is revoked too");
}

fn read_manifest_digest(sig: &Path) -> String {
    weightseal_verifier::Verifier::read_signature_file(sig)
        .unwrap()
        .manifest_digest()
        .to_hex()
}

/// issue 7 item 4: `revoke` succeeds only when its own entries are proven in a checkpoint
/// signed by the pinned log key; a server that answers "accepted" with a made-up receipt is
/// an error (exit 1), whether the receipt names another leaf hash or the right one that was
/// never logged.
#[test]
fn issue7_a_made_up_receipt_is_an_error() {
    let w = World::new();
    let server = ServerProcess::start(&w.log, &[]);
    // One genuine entry, so the log's signed tree is not empty.
    w.revoke(
        &server.url,
        &w.log.hub,
        &[&"--digest", &"11".repeat(32)],
        &["--reason", "other"],
    )
    .ok()
    .stdout_has("proven");
    for lie in [Lie::MadeUpLeafHash, Lie::NotLogged] {
        let liar = LyingServer::start(&server.addr, lie);
        w.revoke(
            &liar.url,
            &w.log.hub,
            &[&"--digest", &"22".repeat(32)],
            &["--reason", "other"],
        )
        .code(1)
        .stderr_has("cannot be proven");
        // A batch too.
        let derived = w.derived.clone();
        w.revoke(
            &liar.url,
            &w.log.hub,
            &[&"--model", &derived, &"--except", &w.base],
            &["--reason", "other"],
        )
        .code(1)
        .stderr_has("cannot be proven");
    }
    // A wrong pinned key fails the same way against the honest server.
    let other_log = LogSetup::new(&w.dir.join("other-log"), &[]);
    weightseal(os(&[
        &"revoke",
        &"--server",
        &server.url,
        &"--key",
        &w.log.hub.private,
        &"--revocation-key",
        &other_log.note_key,
        &"--digest",
        &"33".repeat(32),
        &"--reason",
        &"other",
    ]))
    .code(1)
    .stderr_has("cannot be proven");
}

/// issue 7 item 6 (CLI): a log caught equivocating leaves evidence and marks the state;
/// `verify` refuses until `weightseal revocations clear-evidence`; `list` and `show` read the
/// state.
#[test]
fn issue7_equivocation_blocks_verify_until_evidence_is_cleared() {
    let w = World::new();
    let state = w.state("marked");
    let sync = |url: &str| {
        weightseal(os(&[
            &"revocations",
            &"sync",
            &"--revocations",
            &url,
            &"--state",
            &state,
            &"--revocation-key",
            &w.log.note_key,
        ]))
    };
    let digest = "11".repeat(32);
    {
        let honest = ServerProcess::start(&w.log, &[]);
        w.revoke(&honest.url, &w.log.hub, &[&"--digest", &digest], &["--reason", "other"])
            .ok();
        sync(&honest.url).ok();
    }
    // The same log key, another history of the same size: two signed roots for size 1.
    let forked = LogSetup {
        dir: w.log.dir.clone(),
        log_key: w.log.log_key.clone(),
        hub: w.log.hub.clone(),
        lab: w.log.lab.clone(),
        issuers: w.log.issuers.clone(),
        database: w.log.dir.join("forked.db"),
        note_key: w.log.note_key.clone(),
    };
    let liar = ServerProcess::start(&forked, &[]);
    w.revoke(
        &liar.url,
        &w.log.hub,
        &[&"--digest", &"22".repeat(32)],
        &["--reason", "other"],
    )
    .ok();
    sync(&liar.url).code(1).stderr_has("equivocation");
    let evidence = state.join("evidence");
    assert!(evidence.join("MISBEHAVED").exists());

    // Every verify refuses now, even with no source to sync from.
    w.verify(&w.base, &liar.url, "marked", &[])
        .code(1)
        .stderr_has("misbehaved");
    weightseal(os(&[&"revocations", &"status", &"--state", &state]))
        .code(1)
        .stdout_has("MARKED");

    // What the state holds, and the history of one digest with its inclusion proof.
    let list = weightseal(os(&[&"revocations", &"list", &"--state", &state, &"--json"]));
    list.ok();
    assert_eq!(list.json()["entries"].as_array().unwrap().len(), 1);
    assert_eq!(list.json()["entries"][0]["subject"]["digest"], digest);
    weightseal(os(&[&"revocations", &"show", &digest, &"--state", &state]))
        .ok()
        .stdout_has("inclusion proof")
        .stdout_has("REVOKED");

    // The operator investigated: clear the mark, keep the evidence.
    weightseal(os(&[&"revocations", &"clear-evidence", &"--state", &state]))
        .ok()
        .stdout_has("cleared");
    assert!(!evidence.join("MISBEHAVED").exists());
    assert!(std::fs::read_dir(&evidence).unwrap().count() >= 1);
    weightseal(os(&[&"revocations", &"status", &"--state", &state]))
        .ok()
        .stdout_has("fresh");
}
