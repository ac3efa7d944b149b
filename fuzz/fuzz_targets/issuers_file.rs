//! The issuers file (the server's policy, JSON), then the submission check of a fixed signed
//! entry against whatever policy it gave.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weightseal_log::policy::IssuerPolicy;
use weightseal_verifier::revocation::entry::{Action, Entry, Reason, SignedEntry, Subject};
use weightseal_verifier::Digest;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(policy) = IssuerPolicy::from_json(text) else {
        return;
    };
    let hub = weightseal_fuzz::hub();
    let entry = Entry {
        subject: Subject::manifest(Digest::of(b"fuzz")),
        action: Action::Revoke,
        reason: Reason::MaliciousPayload,
        issuer: weightseal_fuzz::public(&hub),
        time: weightseal_fuzz::NOW,
        evidence: None,
    };
    let signed = SignedEntry::sign(&entry, &hub).expect("a fixed entry signs");
    let _ = policy.check_submission(&signed, None, weightseal_fuzz::NOW, |_| false);
});
