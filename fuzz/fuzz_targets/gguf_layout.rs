//! The GGUF layout: the header parser on the input as the whole file and as the prefix of
//! a larger one (the scanner calls it on a growing prefix), then the input as a file
//! through `scan_file`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weightseal_verifier::fuzzing;
use weightseal_verifier::scan::{scan_file, ScanOptions};

fuzz_target!(|data: &[u8]| {
    let len = data.len() as u64;
    let _ = fuzzing::gguf_header(data, len);
    // How much larger the file claims to be comes from the last byte (any value is a file
    // size some real file has).
    let extra = data.last().map_or(1, |b| u64::from(*b) << 12);
    let _ = fuzzing::gguf_header(data, len + extra);
    let path = weightseal_fuzz::scratch().join("model.gguf");
    if std::fs::write(&path, data).is_ok() {
        if let Ok(entry) = scan_file(&path, "model.gguf", ScanOptions::default()) {
            assert_eq!(entry.size, len);
        }
    }
});
