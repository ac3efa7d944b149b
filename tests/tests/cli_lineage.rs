//! `weightseal fingerprint` and `weightseal lineage` (issue 9): verdicts, exit statuses
//! (0 derived, 1 not derived, 2 could not run), JSON shape, fingerprint files as inputs.
#![allow(clippy::unwrap_used, reason = "a test fails by panicking")]

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

/// A Q8_0 suspect is also compared block by block with the fork re-quantized (spec
/// fingerprint.md §5); `--json` and the human report say how many blocks were compared and
/// how many the suspect reproduced exactly.
#[test]
fn lineage_reports_the_re_quantized_blocks_of_a_quantized_suspect() {
    let dir = tempfile::tempdir().unwrap();
    let base = copy_fixture("gguf/tiny-llama.gguf", dir.path());
    let fork = dir.path().join("fork.gguf");
    std::fs::copy(&base, &fork).unwrap();
    // The fork moves one quantized value by one step in every Q8_0 block of the two
    // `ffn_up` tensors (a block: an f16 scale, then 32 one-byte values). It picks a value
    // well inside ±127, so the block's largest magnitude, and so its scale, stay: the
    // block is then what the reference quantizer makes of its own decoded values, as in a
    // fork quantized by llama-quantize.
    let key = keygen(dir.path(), "k");
    sign(&base, &key, &[]);
    let mut bytes = std::fs::read(&base).unwrap();
    for layer in 0..2 {
        let c = chunk(
            &default_sig(&base),
            "tiny-llama.gguf",
            Some(&format!("blk.{layer}.ffn_up.weight")),
        );
        assert_eq!(c.len % 34, 0, "Q8_0 blocks are 34 bytes");
        for block in 0..c.len / 34 {
            let values = (c.offset + block * 34 + 2) as usize;
            let j = (0..32)
                .find(|&j| (bytes[values + j] as i8).unsigned_abs() <= 100)
                .expect("a block of a normal sample has small values");
            bytes[values + j] ^= 1;
        }
    }
    std::fs::write(&fork, &bytes).unwrap();
    let lineage = |suspect: &std::path::Path| {
        weightseal([
            "--json".as_ref(),
            "lineage".as_ref(),
            suspect.as_os_str(),
            "--base".as_ref(),
            base.as_os_str(),
            "--fork".as_ref(),
            fork.as_os_str(),
        ])
    };
    let run = lineage(&fork);
    run.code(0);
    let j = run.json();
    let compared = j["requantized_blocks"].as_u64().unwrap();
    assert!(compared > 0, "{j}");
    assert_eq!(j["reproduced_blocks"].as_u64().unwrap(), compared, "{j}");
    // The base holds none of the fork's blocks.
    let run = lineage(&base);
    run.code(1);
    let j = run.json();
    assert!(j["requantized_blocks"].as_u64().unwrap() > 0, "{j}");
    assert_eq!(j["reproduced_blocks"], 0, "{j}");
    weightseal([
        "lineage".as_ref(),
        fork.as_os_str(),
        "--base".as_ref(),
        base.as_os_str(),
        "--fork".as_ref(),
        fork.as_os_str(),
    ])
    .code(0)
    .stdout_has(&format!(
        "{compared} of {compared} re-quantized blocks reproduced exactly"
    ));
}
