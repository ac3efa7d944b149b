//! Revocation entries: the entry, the signed entry (verified and unverified decoding).
//! An accepted entry re-encodes to its bytes; an accepted entry signed by the harness
//! (issuer replaced by the test key) decodes and verifies as the same entry.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weightseal_verifier::revocation::entry::{Entry, SignedEntry};

fuzz_target!(|data: &[u8]| {
    if let Ok(entry) = Entry::from_bytes(data) {
        assert_eq!(entry.to_bytes().expect("an accepted entry encodes"), data);
        let key = weightseal_fuzz::hub();
        let mine = Entry {
            issuer: weightseal_fuzz::public(&key),
            ..entry
        };
        let signed = SignedEntry::sign(&mine, &key).expect("an accepted entry signs");
        let back = SignedEntry::from_bytes(signed.as_bytes()).expect("what we sign decodes and verifies");
        assert_eq!(back.entry(), &mine);
    }
    let _ = SignedEntry::from_bytes(data);
    if let Ok(s) = SignedEntry::decode_unverified(data) {
        assert_eq!(s.as_bytes(), data);
        let _ = s.leaf_hash();
    }
});
