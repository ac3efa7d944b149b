//! Key texts: PEM public keys (trusted keys, issuers) and note verifier keys (log keys in
//! policies and pinned-keys files).
#![no_main]

use libfuzzer_sys::fuzz_target;
use weightseal_verifier::revocation::local::parse_log_keys;
use weightseal_verifier::PublicKey;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(k) = PublicKey::from_pem(text, "fuzz input") {
        assert_eq!(PublicKey::from_raw(&k.to_raw()).expect("a parsed key is valid"), k);
    }
    let lines: Vec<&str> = text.lines().collect();
    let _ = parse_log_keys(&lines[..]);
});
