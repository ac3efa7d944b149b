//! The load policy file (TOML, spec/policy.md) as `Policy::from_file` reads it; its folder
//! holds one key file, `lab.pub`, that `trusted_keys` may name.
#![no_main]

use std::sync::OnceLock;

use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::EncodePublicKey as _;
use libfuzzer_sys::fuzz_target;

fn base() -> &'static std::path::Path {
    static BASE: OnceLock<std::path::PathBuf> = OnceLock::new();
    BASE.get_or_init(|| {
        let dir = weightseal_fuzz::fresh_dir("policy");
        let pem = weightseal_fuzz::model_key()
            .verifying_key()
            .to_public_key_pem(LineEnding::LF)
            .expect("a key encodes");
        std::fs::write(dir.join("lab.pub"), pem).expect("the key file");
        dir
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = weightseal_verifier::fuzzing::policy_from_toml(text, base());
});
