//! Log key rotation (spec/revocation.md §5.2, §7.6): the log appends a rotation statement in
//! which its old key announces the new one and signs with both during a transition; clients
//! pinned to the old key follow it (persisted, rollback protection kept), clients pinned to
//! either key sync during the transition, a rotated client refuses notes signed only by the
//! retired key, a key nobody announced is refused by name, a client that missed the transition
//! still follows the statement in the log, and the log refuses to sign with a retired key.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test fails by panicking"
)]

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use ed25519_dalek::SigningKey;
use weightseal_log::note::{sign_note_by, NoteSignerKey};
use weightseal_log::snapshot::sign_snapshot_by;
use weightseal_server::export::export;
use weightseal_server::log::LogError;
use weightseal_server::{open_store, Log, LogOptions};
use weightseal_verifier::revocation::entry::Submission;
use weightseal_verifier::revocation::local::{LocalState, LocalStateError, RevocationSource};
use weightseal_verifier::revocation::note::NoteVerifierKey;
use weightseal_verifier::revocation::rotation::LogKeyRef;
use weightseal_verifier::revocation::snapshot::{open_checkpoint, Snapshot};
use weightseal_verifier::revocation::state::{DirSource, RevocationError, RevocationState};
use weightseal_verifier::revocation::tile::{encode_publication, CHECKPOINT_PATH, PUBLICATION_PATH, SNAPSHOT_PATH};

fn signer(key: &SigningKey) -> NoteSignerKey {
    weightseal_server::keys::note_signer(ORIGIN, key.clone()).unwrap()
}

fn vkey(key: &SigningKey) -> NoteVerifierKey {
    signer(key).verifier_key()
}

/// Opens the log in `backend` signing with `key`, and with `previous` during a transition.
async fn open(backend: &Backend, key: &SigningKey, previous: Option<&SigningKey>) -> Result<Arc<Log>, LogError> {
    let store = open_store(&backend.url).await.unwrap();
    let options = LogOptions {
        origin: ORIGIN.to_owned(),
        snapshot_ttl: Duration::from_secs(86_400),
    };
    Log::open_rotating(store, signer(key), previous.map(signer), options, true)
        .await
        .map(Arc::new)
}

async fn append(log: &Log, w: &World, range: std::ops::Range<u64>) {
    for n in range {
        let sub = Submission::from_bytes(&hub_submission(w, n)).unwrap();
        log.append(sub.entry.as_bytes().to_vec()).await.unwrap();
    }
}

/// A static export of the log as it is now (kept: older exports are what rollbacks replay).
async fn exported(log: &Log) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    export(log, dir.path()).await.unwrap();
    dir
}

fn sync(state: &mut RevocationState, dir: &Path) -> Result<u64, RevocationError> {
    state.sync(&DirSource::new(dir), now()).map(|r| r.new_size)
}

fn read(dir: &Path, path: &str) -> Vec<u8> {
    std::fs::read(dir.join(path)).unwrap()
}

/// A copy of the export `from` whose notes are re-signed by `keys` alone, with the snapshot
/// version raised by `bump`: what a holder of those keys could publish for the same tree.
fn resigned(from: &Path, keys: &[&NoteSignerKey], bump: u64) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(from, dir.path());
    // The body of a note: everything before the blank line, with its final newline.
    let body = |note: &[u8]| {
        format!(
            "{}\n",
            std::str::from_utf8(note).unwrap().rsplit_once("\n\n").unwrap().0
        )
    };
    let checkpoint = sign_note_by(&body(&read(from, CHECKPOINT_PATH)), keys).unwrap();
    let mut snapshot = Snapshot::parse_body(&body(&read(from, SNAPSHOT_PATH))).unwrap();
    snapshot.version += bump;
    let snapshot = sign_snapshot_by(&snapshot, keys).unwrap();
    std::fs::write(dir.path().join(CHECKPOINT_PATH), &checkpoint).unwrap();
    std::fs::write(dir.path().join(SNAPSHOT_PATH), &snapshot).unwrap();
    std::fs::write(
        dir.path().join(PUBLICATION_PATH),
        encode_publication(&checkpoint, &snapshot).unwrap(),
    )
    .unwrap();
    dir
}

fn copy_dir(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_old_pinned_client_follows_an_announced_rotation_and_keeps_refusing_rollbacks() {
    let w = World::new();
    let backend = sqlite();
    let (old, new) = (w.log_key.clone(), key(21));
    let state_dir = tempfile::tempdir().unwrap();

    let log = open(&backend, &old, None).await.unwrap();
    append(&log, &w, 0..3).await;
    let before = exported(&log).await;
    drop(log);
    let mut client = RevocationState::open(state_dir.path(), vec![vkey(&old)]).unwrap();
    assert_eq!(sync(&mut client, before.path()).unwrap(), 3);

    // The transition: the statement is leaf 3, and both keys sign every note.
    let log = open(&backend, &new, Some(&old)).await.unwrap();
    append(&log, &w, 3..5).await;
    let transition = exported(&log).await;
    for k in [&old, &new] {
        open_checkpoint(&read(transition.path(), CHECKPOINT_PATH), &[vkey(k)]).unwrap();
        Snapshot::open(&read(transition.path(), SNAPSHOT_PATH), &[vkey(k)]).unwrap();
    }
    assert_eq!(sync(&mut client, transition.path()).unwrap(), 6);
    assert_eq!(client.keys(), &[vkey(&new)]);
    assert_eq!(client.rotations().len(), 1);
    assert_eq!(client.rotations()[0].0, 3);
    // The statement is a leaf, not an entry: five entries, six leaves.
    assert_eq!(client.entries().len(), 5);
    append(&log, &w, 5..6).await;
    let later_transition = exported(&log).await;
    assert_eq!(sync(&mut client, later_transition.path()).unwrap(), 7);
    drop(log);

    // After the transition: the new key alone.
    let log = open(&backend, &new, None).await.unwrap();
    append(&log, &w, 6..8).await;
    let after = exported(&log).await;
    assert!(open_checkpoint(&read(after.path(), CHECKPOINT_PATH), &[vkey(&old)]).is_err());
    assert_eq!(sync(&mut client, after.path()).unwrap(), 9);

    // Rollback protection survived the change of key: older publications, validly signed by
    // the new key, are refused by snapshot version.
    for older in [&transition, &later_transition] {
        assert!(
            matches!(sync(&mut client, older.path()), Err(RevocationError::Rollback { .. })),
            "an older publication was accepted"
        );
    }
    // A smaller tree under a higher version (the new key's holder rolling the log back).
    let shrunk = resigned(later_transition.path(), &[&signer(&new)], 100);
    assert!(matches!(
        sync(&mut client, shrunk.path()),
        Err(RevocationError::Shrunk { held: 9, found: 7 })
    ));
    drop(client);

    // The followed key is persisted: the folder, opened again with the configured (old) key,
    // follows the new key, still refuses the rollbacks, and still syncs.
    let state_file = std::fs::read(state_dir.path().join("state.cbor")).unwrap();
    assert!(
        state_file
            .windows(vkey(&new).to_string().len())
            .any(|w| w == vkey(&new).to_string().as_bytes()),
        "state.cbor does not pin the new key"
    );
    let mut client = RevocationState::open(state_dir.path(), vec![vkey(&old)]).unwrap();
    assert_eq!(client.keys(), &[vkey(&new)]);
    assert_eq!(client.size(), 9);
    assert!(matches!(
        sync(&mut client, transition.path()),
        Err(RevocationError::Rollback { .. })
    ));
    append(&log, &w, 8..9).await;
    assert_eq!(sync(&mut client, exported(&log).await.path()).unwrap(), 10);
    drop(client);

    // The runtime's folder wrapper: the policy may keep naming the first-use key, or name the
    // key the state follows now; any other key is refused.
    let mut local = LocalState::open(state_dir.path(), &[vkey(&old)]).unwrap();
    append(&log, &w, 9..10).await;
    let latest = exported(&log).await;
    let source = RevocationSource::parse(latest.path().to_str().unwrap()).unwrap();
    assert_eq!(local.sync(&source, now()).unwrap().new_size, 11);
    drop(local);
    for given in [vkey(&old), vkey(&new)] {
        let local = LocalState::open(state_dir.path(), &[given]).unwrap();
        assert_eq!(local.state().keys(), &[vkey(&new)]);
    }
    assert!(matches!(
        LocalState::open(state_dir.path(), &[vkey(&w.stranger)]),
        Err(LocalStateError::PinMismatch { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_that_no_pinned_key_announced_is_refused_by_name() {
    let w = World::new();
    let backend = sqlite();
    let (old, impostor, other) = (w.log_key.clone(), key(31), key(32));
    let log = open(&backend, &old, None).await.unwrap();
    append(&log, &w, 0..2).await;
    let first = exported(&log).await;
    drop(log);
    let mut client = RevocationState::in_memory(vec![vkey(&old)]);
    sync(&mut client, first.path()).unwrap();

    // The same log, now signed by a key the old key never announced.
    let log = open(&backend, &impostor, None).await.unwrap();
    append(&log, &w, 2..3).await;
    let unannounced = exported(&log).await;
    drop(log);
    match sync(&mut client, unannounced.path()) {
        Err(RevocationError::UnannouncedLogKey {
            what,
            signed_by,
            pinned,
        }) => {
            assert_eq!(what, "checkpoint");
            assert_eq!(signed_by, vec![LogKeyRef::of(&vkey(&impostor))]);
            assert_eq!(pinned, vec![LogKeyRef::of(&vkey(&old))]);
        }
        other => panic!("expected UnannouncedLogKey, got {other:?}"),
    }
    let message = sync(&mut client, unannounced.path()).unwrap_err().to_string();
    assert!(
        message.contains(&LogKeyRef::of(&vkey(&impostor)).to_string()),
        "{message}"
    );

    // A rotation statement in the log, but by a key this client does not follow: it
    // announces nothing to it.
    let log = open(&backend, &other, Some(&impostor)).await.unwrap();
    let rotated_by_stranger = exported(&log).await;
    assert!(matches!(
        sync(&mut client, rotated_by_stranger.path()),
        Err(RevocationError::UnannouncedLogKey { .. })
    ));
    assert_eq!(client.size(), 2);
    assert_eq!(client.keys(), &[vkey(&old)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn during_the_transition_clients_pinned_to_either_key_sync() {
    let w = World::new();
    let backend = sqlite();
    let (old, new) = (w.log_key.clone(), key(22));
    let log = open(&backend, &old, None).await.unwrap();
    append(&log, &w, 0..2).await;
    let before = exported(&log).await;
    drop(log);
    let mut held_old = RevocationState::in_memory(vec![vkey(&old)]);
    sync(&mut held_old, before.path()).unwrap();

    let log = open(&backend, &new, Some(&old)).await.unwrap();
    append(&log, &w, 2..4).await;
    let transition = exported(&log).await;
    // Both keys sign each note, so neither kind of client depends on reading the statement
    // before it can open the notes (§7.2 step 1).
    for k in [&old, &new] {
        open_checkpoint(&read(transition.path(), CHECKPOINT_PATH), &[vkey(k)]).unwrap();
        Snapshot::open(&read(transition.path(), SNAPSHOT_PATH), &[vkey(k)]).unwrap();
    }
    let mut fresh_old = RevocationState::in_memory(vec![vkey(&old)]);
    let mut fresh_new = RevocationState::in_memory(vec![vkey(&new)]);
    for (name, client) in [
        ("held, pinned old", &mut held_old),
        ("fresh, pinned old", &mut fresh_old),
        ("fresh, pinned new", &mut fresh_new),
    ] {
        assert_eq!(
            sync(client, transition.path()).unwrap_or_else(|e| panic!("{name}: {e}")),
            5
        );
        assert_eq!(client.keys(), &[vkey(&new)], "{name}");
    }
    // Only the clients that held the old key followed the statement.
    assert_eq!(held_old.rotations().len(), 1);
    assert_eq!(fresh_old.rotations().len(), 1);
    assert!(fresh_new.rotations().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_client_refuses_notes_signed_only_by_the_retired_key() {
    let w = World::new();
    let backend = sqlite();
    let (old, new) = (w.log_key.clone(), key(23));
    let log = open(&backend, &old, None).await.unwrap();
    append(&log, &w, 0..2).await;
    drop(log);
    let log = open(&backend, &new, Some(&old)).await.unwrap();
    append(&log, &w, 2..3).await;
    let transition = exported(&log).await;
    let mut rotated = RevocationState::in_memory(vec![vkey(&old)]);
    let mut not_yet = RevocationState::in_memory(vec![vkey(&old)]);
    sync(&mut rotated, transition.path()).unwrap();

    // The same tree under a newer snapshot, signed by the old key alone (a holder of the
    // retired key, or a replica still configured with it).
    let old_only = resigned(transition.path(), &[&signer(&old)], 10);
    match sync(&mut rotated, old_only.path()) {
        Err(RevocationError::RetiredLogKey {
            key, successor, index, ..
        }) => {
            assert_eq!(key, LogKeyRef::of(&vkey(&old)));
            assert_eq!(successor, LogKeyRef::of(&vkey(&new)));
            assert_eq!(index, 2);
        }
        other => panic!("expected RetiredLogKey, got {other:?}"),
    }
    // A client that has not seen the statement cannot follow it from notes the new key did
    // not sign: the first tree holding the statement must carry the new key's signature.
    match sync(&mut not_yet, old_only.path()) {
        Err(RevocationError::RotationNotSigned { index, key, .. }) => {
            assert_eq!(index, 2);
            assert_eq!(key, LogKeyRef::of(&vkey(&new)));
        }
        other => panic!("expected RotationNotSigned, got {other:?}"),
    }
    assert_eq!(not_yet.size(), 0);
    // Both signatures: accepted by both.
    sync(&mut not_yet, transition.path()).unwrap();
    assert_eq!(not_yet.keys(), &[vkey(&new)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_missed_the_transition_follows_the_statement_in_the_log() {
    let w = World::new();
    let backend = sqlite();
    let (old, new) = (w.log_key.clone(), key(24));
    let log = open(&backend, &old, None).await.unwrap();
    append(&log, &w, 0..300).await;
    let before = exported(&log).await;
    drop(log);
    let mut client = RevocationState::in_memory(vec![vkey(&old)]);
    sync(&mut client, before.path()).unwrap();
    // Rotate, and end the transition before the client syncs again.
    drop(open(&backend, &new, Some(&old)).await.unwrap());
    let log = open(&backend, &new, None).await.unwrap();
    append(&log, &w, 300..310).await;
    let after = exported(&log).await;
    assert!(open_checkpoint(&read(after.path(), CHECKPOINT_PATH), &[vkey(&old)]).is_err());
    assert_eq!(sync(&mut client, after.path()).unwrap(), 311);
    assert_eq!(client.keys(), &[vkey(&new)]);
    assert_eq!(client.rotations()[0].0, 300);
    // So does a new installation configured with the old key.
    let mut fresh = RevocationState::in_memory(vec![vkey(&old)]);
    assert_eq!(sync(&mut fresh, after.path()).unwrap(), 311);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_refuses_to_sign_with_a_key_it_rotated_away_from() {
    let w = World::new();
    let backend = sqlite();
    let (old, new, third) = (w.log_key.clone(), key(25), key(26));
    drop(open(&backend, &old, None).await.unwrap());
    drop(open(&backend, &new, Some(&old)).await.unwrap());
    // Opening the transition again appends nothing more.
    let log = open(&backend, &new, Some(&old)).await.unwrap();
    assert_eq!(log.published().size, 1);
    drop(log);
    match open(&backend, &old, None).await {
        Err(LogError::RetiredKey { key, successor }) => {
            assert_eq!(key, LogKeyRef::of(&vkey(&old)));
            assert_eq!(successor, LogKeyRef::of(&vkey(&new)));
        }
        other => panic!("expected RetiredKey, got {:?}", other.map(|_| ())),
    }
    // Rotating again must start from the current key.
    assert!(matches!(
        open(&backend, &third, Some(&old)).await,
        Err(LogError::RetiredKey { .. })
    ));
    let log = open(&backend, &third, Some(&new)).await.unwrap();
    assert_eq!(log.published().size, 2);
    let mut client = RevocationState::in_memory(vec![vkey(&old)]);
    sync(&mut client, exported(&log).await.path()).unwrap();
    assert_eq!(client.keys(), &[vkey(&third)]);
}

/// The binary: `serve --key NEW --previous-key OLD` signs with both keys and serves the
/// statement; `serve --key OLD` afterwards is refused with the reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_serve_with_previous_key() {
    let w = World::new();
    let db = w.dir.path().join("log.db");
    let database = format!("sqlite:{}", db.display());
    let new = key(27);
    let new_path = write_key(w.dir.path(), "new.pem", &new);
    drop(Server::start(&w, &database, &[]));
    let old_path = w.log_key_path.to_str().unwrap().to_owned();
    let mut w_new = World::new();
    w_new.log_key_path = new_path;
    w_new.issuers_path = w.issuers_path.clone();
    let server = Server::start(&w_new, &database, &["--previous-key", &old_path]);
    let (status, checkpoint) = server.get("/checkpoint");
    assert_eq!(status, 200);
    for k in [&w.log_key, &new] {
        assert_eq!(open_checkpoint(&checkpoint, &[vkey(k)]).unwrap().size, 1);
    }
    drop(server);
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_weightseal-server"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--origin",
            ORIGIN,
            "--key",
            &old_path,
        ])
        .arg("--issuers")
        .arg(&w.issuers_path)
        .args(["--database", &database])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // A server that accepted the retired key would run until killed: fail instead of hanging.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("serve --key OLD started after the log rotated away from OLD");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let run = child.wait_with_output().unwrap();
    assert!(!run.status.success());
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(stderr.contains("the log rotated from the key"), "{stderr}");
}
