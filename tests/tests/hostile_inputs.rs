//! Issue 10, F1–F6: inputs that only their size or shape makes hostile. Each is generated
//! here, fed to the CLI as a separate process, and must be refused (or handled) with a
//! clear message, within a memory bound (peak VmHWM from /proc) and a time bound that
//! only a hang or a blow-up would break. Bounds are generous multiples of what the fixed
//! code needs, so they hold on a busy machine; the unfixed code needed 9.2 GB (F1), 54 s
//! to hours (F3), 2.38 GB (F5), 1.15–2.1 GB (F6).
#![allow(clippy::unwrap_used, reason = "a test fails by panicking")]

use std::io::{Seek, SeekFrom, Write};
use std::path::Path;
use std::time::Duration;

use weightseal_e2e::revocation::LogSetup;
use weightseal_e2e::*;

const MIB: u64 = 1024;
/// The bound the issue names for F1, F5 and F6 (in KiB for ru_maxrss).
const BOUND_256_MIB: u64 = 256 * MIB;

fn gguf_prefix(tensor_count: u64, kv_count: u64) -> Vec<u8> {
    let mut out = b"GGUF".to_vec();
    out.extend_from_slice(&3u32.to_le_bytes());
    out.extend_from_slice(&tensor_count.to_le_bytes());
    out.extend_from_slice(&kv_count.to_le_bytes());
    out
}

fn gguf_key(out: &mut Vec<u8>, key: &str) {
    out.extend_from_slice(&(key.len() as u64).to_le_bytes());
    out.extend_from_slice(key.as_bytes());
}

/// A sparse file: `head` at offset 0, zeros up to `len`.
fn sparse(path: &Path, head: &[u8], len: u64) {
    let mut f = std::fs::File::create(path).unwrap();
    f.write_all(head).unwrap();
    f.set_len(len).unwrap();
}

#[track_caller]
fn within(usage: Usage, kib: u64, secs: u64, what: &str) {
    assert!(
        usage.peak_rss_kib <= kib,
        "{what}: peak memory {} MiB, over the bound of {} MiB",
        usage.peak_rss_kib / MIB,
        kib / MIB
    );
    assert!(
        usage.wall <= Duration::from_secs(secs),
        "{what}: took {:?}, over the bound of {secs} s",
        usage.wall
    );
}

fn sign_measured(model: &Path, key: &Key, extra: &[&str]) -> (Run, Usage) {
    let mut args: Vec<std::ffi::OsString> =
        vec!["sign".into(), model.into(), "--key".into(), key.private.clone().into()];
    args.extend(extra.iter().map(Into::into));
    weightseal_measured(args)
}

/// F1: a 3 GiB sparse GGUF whose metadata is one u64 array (and one whose metadata is a
/// 1 GiB string), no tensors. Skipped values count towards the 512 MiB header limit, so
/// both are refused before anything is copied.
#[test]
fn f1_gguf_metadata_claiming_gigabytes_is_refused_without_reading_it() {
    let dir = tempfile::tempdir().unwrap();
    let key = keygen(dir.path(), "lab.key");
    let len = 3u64 << 30;

    let mut head = gguf_prefix(0, 1);
    gguf_key(&mut head, "huge.array");
    head.extend_from_slice(&9u32.to_le_bytes()); // array
    head.extend_from_slice(&10u32.to_le_bytes()); // of u64
    head.extend_from_slice(&((len - 64) / 8).to_le_bytes());
    let array = dir.path().join("array.gguf");
    sparse(&array, &head, len);
    let (run, usage) = sign_measured(&array, &key, &[]);
    run.code(1)
        .stderr_has("array.gguf")
        .stderr_has("header size")
        .stderr_has("limit");
    within(usage, BOUND_256_MIB, 30, "F1 array");

    let mut head = gguf_prefix(0, 1);
    gguf_key(&mut head, "huge.string");
    head.extend_from_slice(&8u32.to_le_bytes()); // string
    head.extend_from_slice(&(1u64 << 30).to_le_bytes());
    let string = dir.path().join("string.gguf");
    sparse(&string, &head, len);
    let (run, usage) = sign_measured(&string, &key, &[]);
    run.code(1).stderr_has("string.gguf").stderr_has("header size");
    within(usage, BOUND_256_MIB, 30, "F1 string");
    assert!(!dir.path().join("string.gguf.weightseal.sig").exists());
}

/// F2: a GGUF whose header is about 400 MiB (a skipped 400 MiB array, then a tensor
/// whose info must be read) is within the 512 MiB limit and is signed; growing the
/// prefix no longer overshoots the limit. Memory is bounded by the header: its copy,
/// plus the mapped pages it was copied from.
#[test]
fn f2_gguf_header_of_400_mib_is_within_the_limit_and_signed() {
    let dir = tempfile::tempdir().unwrap();
    let key = keygen(dir.path(), "lab.key");
    let array_len = 400u64 << 20;
    let mut head = gguf_prefix(1, 1);
    gguf_key(&mut head, "big.blob");
    head.extend_from_slice(&9u32.to_le_bytes());
    head.extend_from_slice(&0u32.to_le_bytes()); // of u8
    head.extend_from_slice(&array_len.to_le_bytes());
    let info_at = head.len() as u64 + array_len;
    let mut info = Vec::new();
    gguf_key(&mut info, "w");
    info.extend_from_slice(&1u32.to_le_bytes()); // n_dims
    info.extend_from_slice(&8u64.to_le_bytes()); // ne[0]
    info.extend_from_slice(&0u32.to_le_bytes()); // F32
    info.extend_from_slice(&0u64.to_le_bytes()); // offset
    let data_start = (info_at + info.len() as u64).div_ceil(32) * 32;
    let total = data_start + 32;
    let path = dir.path().join("big-header.gguf");
    sparse(&path, &head, total);
    let mut f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    f.seek(SeekFrom::Start(info_at)).unwrap();
    f.write_all(&info).unwrap();
    drop(f);
    let (run, usage) = sign_measured(&path, &key, &[]);
    run.ok();
    // The header (400 MiB) is copied once and the file pages it came from are mapped.
    within(usage, 2 * 420 * MIB + 64 * MIB, 120, "F2");
    verify(&path, &key, &[]).ok();
}

/// F3: a signed ignore rule of twelve `**` segments and a folder 25 deep. Matching is
/// polynomial, so signing and verifying finish at once (the exponential matcher took
/// over a minute at depth 25).
#[test]
fn f3_many_double_stars_against_a_deep_folder_do_not_hang() {
    let dir = tempfile::tempdir().unwrap();
    let key = keygen(dir.path(), "lab.key");
    let model = copy_fixture("safetensors/base-model", dir.path());
    let rule = format!("{}never-there", "**/".repeat(12));
    let deep: std::path::PathBuf = (0..25).map(|i| format!("d{i}")).collect();
    std::fs::create_dir_all(model.join(&deep)).unwrap();
    std::fs::write(model.join(&deep).join("notes.txt"), b"deep").unwrap();
    let (run, usage) = sign_measured(&model, &key, &["--ignore", &rule]);
    run.ok();
    within(usage, BOUND_256_MIB, 20, "F3 sign");
    // A deeper folder appears beside the signed model: the signed rule is applied to it.
    let deeper: std::path::PathBuf = (0..30).map(|i| format!("e{i}")).collect();
    std::fs::create_dir_all(model.join(&deeper)).unwrap();
    let started = std::time::Instant::now();
    // Empty folders are not files: the file set still matches.
    verify(&model, &key, &[]).ok();
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "F3 verify took {:?}",
        started.elapsed()
    );
}

/// F4: a model with more tensors than a manifest can list. `sign` refuses it, naming the
/// limit, and writes nothing — it can never write a signature file `verify` refuses.
#[test]
fn f4_sign_refuses_a_manifest_over_the_decoding_limits() {
    let dir = tempfile::tempdir().unwrap();
    let key = keygen(dir.path(), "lab.key");
    // 700,000 empty tensors with 40-byte names: under the parser's tensor limit, but the
    // manifest would be about 80 MB, over the 64 MiB that verifiers accept.
    let mut json = String::from("{");
    for i in 0..700_000u32 {
        if i > 0 {
            json.push(',');
        }
        json.push_str(&format!(
            r#""model.layers.{i:07}.mlp.experts.proj.w":{{"dtype":"F32","shape":[0],"data_offsets":[0,0]}}"#
        ));
    }
    json.push('}');
    let mut bytes = (json.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(json.as_bytes());
    let path = dir.path().join("many.safetensors");
    std::fs::write(&path, &bytes).unwrap();
    let (run, usage) = sign_measured(&path, &key, &[]);
    run.code(1)
        .stderr_has("encoded size in bytes")
        .stderr_has("over the limit");
    within(usage, 1024 * MIB, 120, "F4 safetensors");
    assert!(!dir.path().join("many.safetensors.weightseal.sig").exists());

    // 1,000,000 tensors: refused while parsing, before any hashing.
    let mut json = String::from("{");
    for i in 0..1_000_000u32 {
        if i > 0 {
            json.push(',');
        }
        json.push_str(&format!(r#""t{i}":{{"dtype":"F32","shape":[0],"data_offsets":[0,0]}}"#));
    }
    json.push('}');
    let mut bytes = (json.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(json.as_bytes());
    let path = dir.path().join("more.safetensors");
    std::fs::write(&path, &bytes).unwrap();
    let (run, usage) = sign_measured(&path, &key, &[]);
    run.code(1)
        .stderr_has("more.safetensors")
        .stderr_has("more than 888000 tensors");
    // The 52 MB header is mapped and copied (the bytes hashed are the bytes parsed), and
    // up to 888,000 tensors are held before the limit trips: 218-280 MiB measured.
    within(usage, 384 * MIB, 60, "F4 parse");
}

/// F5: a 16.8 MB bundle claiming 2^24 empty entries is refused before any entry is
/// built (each entry is at least a signature long).
#[test]
fn f5_bundle_of_empty_leaves_is_refused_up_front() {
    let dir = tempfile::tempdir().unwrap();
    let lab = keygen(dir.path(), "lab.key");
    let log = LogSetup::new(dir.path(), &[&lab]);
    let model = copy_fixture("safetensors/base-model", dir.path());
    let count: u32 = 1 << 24;
    let mut bundle = vec![0xa4, 0x61, b'v', 0x01, 0x67];
    bundle.extend_from_slice(b"entries");
    bundle.push(0x9a);
    bundle.extend_from_slice(&count.to_be_bytes());
    bundle.extend(std::iter::repeat_n(0x40u8, count as usize));
    for (key, note) in [("snapshot", "x"), ("checkpoint", "y")] {
        bundle.push(0x60 | key.len() as u8);
        bundle.extend_from_slice(key.as_bytes());
        bundle.push(0x61);
        bundle.extend_from_slice(note.as_bytes());
    }
    let path = dir.path().join("empty-leaves.bundle");
    std::fs::write(&path, &bundle).unwrap();
    let state = dir.path().join("state");
    let (run, usage) = weightseal_measured([
        "check".as_ref(),
        model.as_os_str(),
        "--revocations".as_ref(),
        path.as_os_str(),
        "--state".as_ref(),
        state.as_os_str(),
        "--revocation-key".as_ref(),
        log.note_key.as_ref(),
    ]);
    run.code(1).stderr_has("bundle is malformed").stderr_has("cannot fit");
    within(usage, BOUND_256_MIB, 30, "F5");
}

/// F6: large but bounded inputs stay bounded: a valid safetensors file whose header is
/// 100 MB (of metadata) signs within a small multiple of its header; `inspect` of an
/// untrusted 64 MB manifest holds it once, not three times; a bundle's 100 MB note is
/// refused before it is copied.
#[test]
fn f6_large_headers_manifests_and_notes_stay_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let key = keygen(dir.path(), "lab.key");

    // A valid file with a header of 100,000,000 bytes, nearly all `__metadata__`.
    let tensor = r#","w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#;
    let prefix = r#"{"__metadata__":{"notes":""#;
    let filler = 100_000_000 - prefix.len() - 2 - tensor.len();
    let json = format!("{prefix}{}\"}}{tensor}", "n".repeat(filler));
    assert_eq!(json.len(), 100_000_000);
    let mut bytes = (json.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(json.as_bytes());
    bytes.extend_from_slice(&[0u8; 8]);
    let big = dir.path().join("big-header.safetensors");
    std::fs::write(&big, &bytes).unwrap();
    drop(bytes);
    let (run, usage) = sign_measured(&big, &key, &[]);
    run.ok();
    // The header is read once into memory (the bytes hashed are the bytes parsed).
    within(usage, 300 * MIB, 60, "F6 header");

    // inspect: a 64 MB untrusted signature file, its manifest one raw file of 8-byte
    // chunks (valid, so it is decoded in full).
    let chunks = 1_100_000u64;
    let raw = dir.path().join("blob.bin");
    std::fs::File::create(&raw).unwrap().set_len(chunks * 8).unwrap();
    let (run, _) = sign_measured(&raw, &key, &["--raw-chunk-size", "8"]);
    run.ok();
    let sig = dir.path().join("blob.bin.weightseal.sig");
    let sig_len = std::fs::metadata(&sig).unwrap().len();
    assert!(sig_len > 60_000_000, "the signature file is only {sig_len} bytes");
    let (run, usage) = weightseal_measured(["inspect".as_ref(), sig.as_os_str()]);
    run.ok();
    within(usage, 256 * MIB, 60, "F6 inspect");

    // A bundle whose snapshot note is 100 MB.
    let note = "n".repeat(100_000_000);
    let mut bundle = vec![0xa4, 0x61, b'v', 0x01, 0x67];
    bundle.extend_from_slice(b"entries");
    bundle.push(0x80);
    bundle.push(0x68);
    bundle.extend_from_slice(b"snapshot");
    bundle.push(0x7a);
    bundle.extend_from_slice(&(note.len() as u32).to_be_bytes());
    bundle.extend_from_slice(note.as_bytes());
    bundle.push(0x6a);
    bundle.extend_from_slice(b"checkpoint");
    bundle.push(0x61);
    bundle.push(b'y');
    let path = dir.path().join("big-note.bundle");
    std::fs::write(&path, &bundle).unwrap();
    drop(bundle);
    let lab = keygen(dir.path(), "hub.key");
    let log = LogSetup::new(dir.path(), &[&lab]);
    let state = dir.path().join("state");
    let model = copy_fixture("safetensors/base-model", dir.path());
    let (run, usage) = weightseal_measured([
        "check".as_ref(),
        model.as_os_str(),
        "--revocations".as_ref(),
        path.as_os_str(),
        "--state".as_ref(),
        state.as_os_str(),
        "--revocation-key".as_ref(),
        log.note_key.as_ref(),
    ]);
    run.code(1).stderr_has("snapshot note is 100000000 bytes");
    // The bundle file itself (100 MB) is read; its note is not copied again.
    within(usage, 256 * MIB, 30, "F6 note");
}
