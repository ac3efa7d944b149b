//! `weightseal fingerprint` and `weightseal lineage` (issue 9): verdicts, exit statuses
//! (0 derived, 1 not derived, 2 could not run), JSON shape, fingerprint files as inputs.
#![allow(clippy::unwrap_used)]

use weightseal_e2e::*;

#[test]
fn lineage_verdicts_and_exit_statuses() {
    let dir = tempfile::tempdir().unwrap();
    let st = fixtures().join("safetensors");
    let base = st.join("base-model");
    let fp = dir.path().join("base.fingerprint");
    weightseal([
        "fingerprint".as_ref(),
        base.as_os_str(),
        "--out".as_ref(),
        fp.as_os_str(),
    ])
    .code(0)
    .stdout_has("fingerprint of 21 tensors");

    // A retrained copy is derived (against the model or its fingerprint file).
    let derived = st.join("derived-model");
    for b in [&base, &fp] {
        let run = weightseal([
            "--json".as_ref(),
            "lineage".as_ref(),
            derived.as_os_str(),
            "--base".as_ref(),
            b.as_os_str(),
        ]);
        run.code(0);
        let j = run.json();
        assert_eq!(j["derived"], true);
        assert!(j["score"].as_f64().unwrap() > 0.9);
        assert_eq!(j["threshold"], 0.5);
        let tensors = j["tensors"].as_array().unwrap();
        assert_eq!(tensors.len(), 21);
        assert!(tensors
            .iter()
            .any(|t| t["matched"].is_string() && t["relative_change"].as_f64().unwrap() > 0.0));
    }

    // An unrelated model of other shapes is not derived: exit 1.
    let gguf = fixtures().join("gguf/tiny-llama.gguf");
    weightseal([
        "lineage".as_ref(),
        gguf.as_os_str(),
        "--base".as_ref(),
        base.as_os_str(),
    ])
    .code(1)
    .stdout_has("not derived from the base");

    // With --fork: the fork itself carries its change; the base does not.
    weightseal([
        "lineage".as_ref(),
        derived.as_os_str(),
        "--base".as_ref(),
        fp.as_os_str(),
        "--fork".as_ref(),
        derived.as_os_str(),
    ])
    .code(0)
    .stdout_has("derived from the fork");
    weightseal([
        "lineage".as_ref(),
        base.as_os_str(),
        "--base".as_ref(),
        fp.as_os_str(),
        "--fork".as_ref(),
        derived.as_os_str(),
    ])
    .code(1)
    .stdout_has("not derived from the fork");

    // A malformed fingerprint file: exit 2, the error names the file and the problem.
    let bad = dir.path().join("bad.fingerprint");
    std::fs::write(&bad, b"\xa1\x61v\x02").unwrap();
    weightseal([
        "lineage".as_ref(),
        derived.as_os_str(),
        "--base".as_ref(),
        bad.as_os_str(),
    ])
    .code(2)
    .stderr_has("bad.fingerprint")
    .stderr_has("fingerprint file");
}
