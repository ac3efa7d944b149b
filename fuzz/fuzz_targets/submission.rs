//! Submission bodies as the verifier decodes them (`POST /v1/submit`: the one-entry form and
//! the batch form), and the authority signature file they may carry.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weightseal_verifier::revocation::entry::{BatchSubmission, Submission};
use weightseal_verifier::SignatureFile;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = Submission::from_bytes(data) {
        if let Some(a) = &s.authority {
            let _ = SignatureFile::from_bytes(a);
        }
    }
    if let Ok((batch, _)) = BatchSubmission::from_bytes_with_form(data) {
        assert!(!batch.entries.is_empty());
        let again = batch.to_bytes().expect("an accepted batch encodes");
        BatchSubmission::from_bytes(&again).expect("a re-encoded batch decodes");
    }
});
