//! The deterministic CBOR decoder (limits, forbidden types, one encoding per value).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = weightseal_verifier::fuzzing::cbor_decode(data);
});
