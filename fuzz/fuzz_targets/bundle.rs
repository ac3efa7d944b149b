//! Offline bundles: decoding, then import into a state pinned to the test log key (which
//! checks the notes, the entries and the tree). First byte even: the rest is a bundle file.
//! Odd: the rest is a list of leaves; each that decodes as an entry is signed by the
//! harness, and the harness signs a checkpoint and snapshot over them, so the import gets
//! past the note signatures into leaf decoding and the entry rules.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weightseal_log::testing::Publisher;
use weightseal_verifier::revocation::bundle::Bundle;
use weightseal_verifier::revocation::entry::{Entry, SignedEntry};
use weightseal_verifier::revocation::state::RevocationState;

fuzz_target!(|data: &[u8]| {
    let Some((mode, rest)) = data.split_first() else { return };
    let bundle = if mode % 2 == 0 {
        match Bundle::from_bytes(rest) {
            Ok(b) => b,
            Err(_) => return,
        }
    } else {
        let issuer = weightseal_fuzz::hub();
        let mut log = Publisher::new(weightseal_fuzz::log_key());
        let mut input = weightseal_fuzz::Input::new(rest);
        for _ in 0..64 {
            let part = input.part();
            if part.is_empty() {
                break;
            }
            let leaf = match Entry::from_bytes(part) {
                Ok(e) => {
                    let e = Entry {
                        issuer: weightseal_fuzz::public(&issuer),
                        ..e
                    };
                    match SignedEntry::sign(&e, &issuer) {
                        Ok(s) => s.into_bytes(),
                        Err(_) => part.to_vec(),
                    }
                }
                Err(_) => part.to_vec(),
            };
            log.append_raw(leaf);
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
        let Ok(bytes) = bundle.to_bytes() else { return };
        Bundle::from_bytes(&bytes).expect("a bundle we encode decodes")
    };
    let mut state = RevocationState::in_memory(vec![weightseal_fuzz::log_verifier()]);
    if state.import_bundle(&bundle, weightseal_fuzz::NOW).is_ok() {
        assert_eq!(state.size(), bundle.leaves.len() as u64);
    }
});
