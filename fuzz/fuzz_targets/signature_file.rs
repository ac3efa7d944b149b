//! The signature file (envelope) and the manifest inside it, unsigned and signed.
//!
//! First byte even: the input is a signature file. Odd: the rest is manifest bytes, which
//! the harness signs with the trusted test key, so `Verifier::open` gets past the signature
//! check into manifest decoding and the comparison with the (empty) model folder.
#![no_main]

use ed25519_dalek::Signer as _;
use libfuzzer_sys::fuzz_target;
use weightseal_verifier::{signed_message, SignatureEntry, SignatureFile, Verifier};

fuzz_target!(|data: &[u8]| {
    let Some((mode, rest)) = data.split_first() else { return };
    let bytes = if mode % 2 == 0 {
        if let Ok(sig) = SignatureFile::from_bytes(rest) {
            let _ = sig.manifest();
            let again = sig.to_bytes().expect("an accepted signature file encodes");
            let back = SignatureFile::from_bytes(&again).expect("a re-encoded signature file decodes");
            assert_eq!(back.manifest_bytes(), sig.manifest_bytes());
        }
        rest.to_vec()
    } else {
        let key = weightseal_fuzz::model_key();
        let mut sig = SignatureFile::unsigned(rest.to_vec());
        let message = signed_message(&sig.manifest_digest());
        sig.add_signature(SignatureEntry {
            public_key: weightseal_fuzz::public(&key),
            signature: key.sign(&message).to_bytes(),
        });
        match sig.to_bytes() {
            Ok(b) => b,
            Err(_) => return,
        }
    };
    let dir = weightseal_fuzz::fresh_dir("model");
    let sig_path = weightseal_fuzz::scratch().join("weightseal.sig");
    if std::fs::write(&sig_path, &bytes).is_err() {
        return;
    }
    let verifier = Verifier::builder()
        .trust(weightseal_fuzz::public(&weightseal_fuzz::model_key()))
        .build()
        .expect("one trusted key is a valid policy");
    if let Ok(model) = verifier.open(&dir, &sig_path) {
        let _ = model.verify_all(None);
    }
});
