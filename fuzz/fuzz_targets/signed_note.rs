//! Signed notes: the note envelope (signature lines, key names and ids), then checkpoint and
//! snapshot bodies. First byte even: the rest is a whole note, opened with the pinned test
//! key. Odd: the rest is a body, signed by the harness with that key, so parsing reaches the
//! checkpoint and snapshot rules behind the signature.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weightseal_verifier::revocation::note::{open_note_bytes, Checkpoint};
use weightseal_verifier::revocation::snapshot::{open_checkpoint, Snapshot};

fuzz_target!(|data: &[u8]| {
    let Some((mode, rest)) = data.split_first() else { return };
    let keys = [weightseal_fuzz::log_verifier()];
    let note = if mode % 2 == 0 {
        rest.to_vec()
    } else {
        let Ok(body) = std::str::from_utf8(rest) else { return };
        let _ = Checkpoint::parse_body(body);
        let _ = Snapshot::parse_body(body);
        match weightseal_fuzz::log_key().sign(body) {
            Ok(n) => n.into_bytes(),
            Err(_) => return,
        }
    };
    let _ = open_note_bytes(&note, &keys);
    if let Ok(c) = open_checkpoint(&note, &keys) {
        let again = Checkpoint::parse_body(&c.to_body()).expect("a checkpoint's own body parses");
        assert_eq!(again, c);
    }
    if let Ok(s) = Snapshot::open(&note, &keys) {
        let body = s.to_body().expect("an opened snapshot has a body");
        assert_eq!(Snapshot::parse_body(&body).expect("a snapshot's own body parses"), s);
    }
});
