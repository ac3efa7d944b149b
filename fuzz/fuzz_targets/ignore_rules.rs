//! Ignore rules (the signer's and the signed ones a verifier applies): lines up to the first
//! empty line are rules, the lines after it are paths (a trailing `/` marks a folder).
#![no_main]

use libfuzzer_sys::fuzz_target;
use weightseal_verifier::walk::{IgnoreRule, IgnoreRules};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (rules, paths) = text.split_once("\n\n").unwrap_or((text, ""));
    let rules: Vec<&str> = rules.lines().collect();
    for r in &rules {
        let _ = IgnoreRule::parse(r);
    }
    let Ok(set) = IgnoreRules::new(&rules[..]) else { return };
    for p in paths.lines() {
        let (p, is_dir) = match p.strip_suffix('/') {
            Some(d) => (d, true),
            None => (p, false),
        };
        let _ = set.is_ignored(p, is_dir);
    }
});
