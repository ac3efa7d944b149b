//! Issue 9 item 3, revocation by lineage, end to end: a hub revokes `--derivatives-of FORK
//! --base BASE`; descendants of the fork (the fork trained a little further, the fork cast to
//! F16) are refused by `check` and by `verify --revocations`, naming the entry and the score,
//! from the live server, its static export and a bundle; a sibling fine-tune of the same
//! base, and the base, pass. Models are generated here: four 64 x 64 F32 tensors each.
#![allow(clippy::unwrap_used, reason = "a test fails by panicking")]

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

use safetensors::tensor::TensorView;
use safetensors::Dtype;
use weightseal_e2e::revocation::{LogSetup, ServerProcess};
use weightseal_e2e::{keygen, sign, weightseal, Run};

fn os(args: &[&dyn AsRef<OsStr>]) -> Vec<OsString> {
    args.iter().map(|a| a.as_ref().to_os_string()).collect()
}

const SIDE: usize = 64;
const TENSORS: usize = 4;

/// Deterministic values in [-0.5, 0.5), `TENSORS` tensors of `SIDE * SIDE`.
fn values(seed: u64) -> Vec<Vec<f32>> {
    let mut x = seed;
    (0..TENSORS)
        .map(|_| {
            (0..SIDE * SIDE)
                .map(|_| {
                    x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    ((x >> 40) as f32 / (1u64 << 24) as f32) - 0.5
                })
                .collect()
        })
        .collect()
}

fn plus(a: &[Vec<f32>], d: &[Vec<f32>], k: f32) -> Vec<Vec<f32>> {
    a.iter()
        .zip(d)
        .map(|(t, dt)| t.iter().zip(dt).map(|(v, dv)| v + k * dv).collect())
        .collect()
}

/// f32 to IEEE half bits, rounding to nearest (ties away; enough for these test values, which
/// are all normal halves or flushed to zero).
fn f16_bits(v: f32) -> u16 {
    let b = v.to_bits();
    let sign = ((b >> 16) & 0x8000) as u16;
    let exp = ((b >> 23) & 0xff) as i32 - 127 + 15;
    if exp <= 0 {
        return sign;
    }
    let mantissa = b & 0x7f_ffff;
    let h = (u32::from(sign) | ((exp as u32) << 10) | (mantissa >> 13)) + ((mantissa >> 12) & 1);
    h as u16
}

/// Writes `dir/model.safetensors` holding the tensors, as F32 or F16.
fn write_model(dir: &Path, tensors: &[Vec<f32>], half: bool) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let bytes: Vec<Vec<u8>> = tensors
        .iter()
        .map(|t| {
            if half {
                t.iter().flat_map(|v| f16_bits(*v).to_le_bytes()).collect()
            } else {
                t.iter().flat_map(|v| v.to_le_bytes()).collect()
            }
        })
        .collect();
    let dtype = if half { Dtype::F16 } else { Dtype::F32 };
    let views: Vec<(String, TensorView<'_>)> = bytes
        .iter()
        .enumerate()
        .map(|(i, b)| {
            (
                format!("layers.{i}.weight"),
                TensorView::new(dtype, vec![SIDE, SIDE], b).unwrap(),
            )
        })
        .collect();
    std::fs::write(
        dir.join("model.safetensors"),
        safetensors::serialize(views, None).unwrap(),
    )
    .unwrap();
    dir.to_path_buf()
}

fn check(log: &LogSetup, state: &Path, model: &Path, src: &str) -> Run {
    weightseal(os(&[
        &"check",
        &model,
        &"--revocations",
        &src,
        &"--state",
        &state,
        &"--revocation-key",
        &log.note_key,
    ]))
}

#[test]
fn lineage_revocation_refuses_descendants_of_the_fork_and_passes_siblings() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let base_values = values(1);
    let fork_values = plus(&base_values, &values(2), 0.02);
    let base = write_model(&dir.join("base"), &base_values, false);
    let fork = write_model(&dir.join("fork"), &fork_values, false);
    let trained = write_model(&dir.join("fork-trained"), &plus(&fork_values, &values(3), 0.01), false);
    let cast = write_model(&dir.join("fork-f16"), &fork_values, true);
    let sibling = write_model(&dir.join("sibling"), &plus(&base_values, &values(4), 0.02), false);

    let log = LogSetup::new(&dir.join("log"), &[]);
    let server = ServerProcess::start(&log, &[]);
    let url = server.url.as_str();

    // The base is no fork of itself: nothing to revoke, refused before anything is sent.
    weightseal(os(&[
        &"revoke",
        &"--server",
        &url,
        &"--key",
        &log.hub.private,
        &"--revocation-key",
        &log.note_key,
        &"--derivatives-of",
        &base,
        &"--base",
        &base,
        &"--reason",
        &"guardrails-removed",
    ]))
    .code(2)
    .stderr_has("holds no change");
    // A malformed fingerprint file as the fork: refused, naming the file.
    let bad = dir.join("bad.fingerprint");
    std::fs::write(&bad, b"\xa1\x61v\x02").unwrap();
    weightseal(os(&[
        &"revoke",
        &"--server",
        &url,
        &"--key",
        &log.hub.private,
        &"--revocation-key",
        &log.note_key,
        &"--derivatives-of",
        &bad,
        &"--base",
        &base,
        &"--reason",
        &"guardrails-removed",
    ]))
    .code(2)
    .stderr_has("bad.fingerprint");

    // The hub revokes the fork's derivatives; the entry is proven in the log.
    let r = weightseal(os(&[
        &"revoke",
        &"--server",
        &url,
        &"--key",
        &log.hub.private,
        &"--revocation-key",
        &log.note_key,
        &"--derivatives-of",
        &fork,
        &"--base",
        &base,
        &"--reason",
        &"guardrails-removed",
        &"--json",
    ]));
    r.ok();
    let j = r.json();
    assert_eq!(j["entries"][0]["subject"]["type"], "lineage", "{}", r.stdout);
    let digest = j["entries"][0]["subject"]["digest"].as_str().unwrap().to_string();

    // `check`: the fork and its descendants are refused, naming the entry and the score.
    let state = dir.join("state");
    for model in [&fork, &trained, &cast] {
        check(&log, &state, model, url)
            .code(1)
            .stderr_has("lineage")
            .stderr_has(&digest)
            .stderr_has("fork score")
            .stderr_has("guardrails-removed")
            .stderr_has(&log.hub.id);
    }
    // A sibling fine-tune of the same base, and the base, pass.
    check(&log, &state, &sibling, url).ok().stdout_has("not revoked");
    check(&log, &state, &base, url).ok();

    // `verify --revocations` (the load decision) decides the same for signed models.
    let uploader = keygen(dir, "uploader.key");
    sign(&trained, &uploader, &[]);
    sign(&sibling, &uploader, &[]);
    let verify = |model: &Path, src: &str, state: &Path| {
        weightseal(os(&[
            &"verify",
            &model,
            &"--trusted-key",
            &uploader.public,
            &"--revocations",
            &src,
            &"--state",
            &state,
            &"--revocation-key",
            &log.note_key,
        ]))
    };
    let vstate = dir.join("verify-state");
    verify(&trained, url, &vstate)
        .code(1)
        .stderr_has(&digest)
        .stderr_has("fork score");
    verify(&sibling, url, &vstate).ok();

    // The static export serves the document, and a fresh state synced from it decides alike.
    let export = dir.join("export");
    log.export(&export);
    assert!(export.join("v1/lineage").join(&digest).is_file());
    let export_src = export.display().to_string();
    let estate = dir.join("export-state");
    check(&log, &estate, &cast, &export_src).code(1).stderr_has(&digest);
    check(&log, &estate, &sibling, &export_src).ok();

    // A bundle carries the document to a machine with no server.
    let bundle = dir.join("revocations.bundle");
    weightseal(os(&[&"revocations", &"bundle", &"--out", &bundle, &"--state", &state])).ok();
    drop(server);
    let b = bundle.display().to_string();
    let offline = dir.join("offline-state");
    check(&log, &offline, &trained, &b).code(1).stderr_has("fork score");
    check(&log, &offline, &sibling, &b).ok();
}
