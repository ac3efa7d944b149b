//! The revocation state folder (`state.cbor`, `entries.log`, `evidence/MISBEHAVED`,
//! `pinned-keys.txt`), opened as the runtime opens it.
//!
//! First byte even: the files are taken from the input as they are. Odd: the harness syncs a
//! real state (leaves from the input, notes signed with the test log key) into the folder,
//! then appends the rest of the input to `entries.log` (a torn or hostile append) and opens
//! the folder again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weightseal_log::testing::Publisher;
use weightseal_verifier::revocation::bundle::Bundle;
use weightseal_verifier::revocation::local::{LocalState, PINNED_KEYS_FILE};
use weightseal_verifier::revocation::state::{
    RevocationState, ENTRIES_FILE, EVIDENCE_DIR, MISBEHAVIOUR_MARK, STATE_FILE,
};

fuzz_target!(|data: &[u8]| {
    let Some((mode, rest)) = data.split_first() else { return };
    let keys = vec![weightseal_fuzz::log_verifier()];
    let dir = weightseal_fuzz::fresh_dir("state");
    let mut input = weightseal_fuzz::Input::new(rest);
    if mode % 2 == 0 {
        let evidence = dir.join(EVIDENCE_DIR);
        let _ = std::fs::create_dir_all(&evidence);
        for (name, bytes) in [
            (dir.join(STATE_FILE), input.part()),
            (dir.join(ENTRIES_FILE), input.part()),
            (evidence.join(MISBEHAVIOUR_MARK), input.part()),
            (dir.join(PINNED_KEYS_FILE), input.part()),
        ] {
            if !bytes.is_empty() && std::fs::write(name, bytes).is_err() {
                return;
            }
        }
    } else {
        let mut log = Publisher::new(weightseal_fuzz::log_key());
        for _ in 0..16 {
            let part = input.part();
            if part.is_empty() {
                break;
            }
            log.append_raw(part.to_vec());
        }
        let (Ok(snapshot_note), Ok(checkpoint_note)) =
            (log.snapshot_note(weightseal_fuzz::NOW - 60), log.checkpoint_note())
        else {
            return;
        };
        let bundle = Bundle {
            snapshot_note,
            checkpoint_note,
            leaves: log.leaves.clone(),
            lineage: Vec::new(),
        };
        let Ok(mut state) = RevocationState::open(&dir, keys.clone()) else {
            return;
        };
        if state.import_bundle(&bundle, weightseal_fuzz::NOW).is_err() {
            return;
        }
        drop(state);
        let tail = input.rest();
        if !tail.is_empty() {
            use std::io::Write as _;
            let Ok(mut f) = std::fs::OpenOptions::new().append(true).open(dir.join(ENTRIES_FILE)) else {
                return;
            };
            if f.write_all(tail).is_err() {
                return;
            }
        }
    }
    if let Ok(state) = RevocationState::open(&dir, keys.clone()) {
        let _ = state.require_fresh(weightseal_fuzz::NOW);
    }
    if let Ok(local) = LocalState::open(&dir, &keys) {
        let _ = local.freshness(weightseal_fuzz::NOW, None);
    }
});
