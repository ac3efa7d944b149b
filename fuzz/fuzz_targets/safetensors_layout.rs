//! The safetensors layout: the JSON header parser directly, then the whole file through
//! `scan_file` (length prefix, header, tensor ranges, hashing).
#![no_main]

use libfuzzer_sys::fuzz_target;
use weightseal_verifier::fuzzing;
use weightseal_verifier::scan::{scan_file, ScanOptions};

fuzz_target!(|data: &[u8]| {
    let _ = fuzzing::safetensors_header(data);
    let path = weightseal_fuzz::scratch().join("model.safetensors");
    if std::fs::write(&path, data).is_ok() {
        if let Ok(entry) = scan_file(&path, "model.safetensors", ScanOptions::default()) {
            assert_eq!(entry.size, data.len() as u64);
        }
    }
});
