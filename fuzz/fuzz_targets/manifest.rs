//! The manifest decoder. An accepted manifest re-encodes to exactly its bytes, and what
//! it lists survives the round trip.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weightseal_verifier::Manifest;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = Manifest::from_bytes(data) {
        let again = m.to_bytes().expect("an accepted manifest encodes");
        assert_eq!(again, data, "an accepted manifest is not in its one encoding");
    }
});
