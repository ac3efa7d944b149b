//! Checks spec/vectors/fingerprint/: dequantization against the `gguf` package's values
//! (dequant.json, made by dequant_vectors.py), re-quantization against its reference
//! quantizers (requant.json, the same script), the fingerprint of a fixture pinned byte
//! for byte, and malformed fingerprint files that each name the error they must produce.
//!
//! The fixture fingerprint and the negative vectors were written by this file with
//! `WEIGHTSEAL_WRITE_VECTORS=1 cargo test -p weightseal-verifier --test fingerprint_vectors`.

use std::path::{Path, PathBuf};

use weightseal_verifier::fingerprint::dequant::{decode, quantize_round_trip, ElementType};
use weightseal_verifier::fingerprint::lineage::{derived_from, Thresholds};
use weightseal_verifier::fingerprint::{fingerprint_model, Fingerprint, FingerprintFileError};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn vectors() -> PathBuf {
    root().join("spec/vectors/fingerprint")
}

fn writing() -> bool {
    std::env::var_os("WEIGHTSEAL_WRITE_VECTORS").is_some()
}

fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s).expect("vector hex")
}

#[test]
fn fingerprint_dequant_vectors() {
    let text = std::fs::read_to_string(vectors().join("dequant.json")).expect("dequant.json");
    let doc: serde_json::Value = serde_json::from_str(&text).expect("json");
    let cases = doc["cases"].as_array().expect("cases");
    assert!(cases.len() >= 13);
    let mut types = std::collections::BTreeSet::new();
    for case in cases {
        let name = case["type"].as_str().expect("type");
        let id = match name {
            "F32" => 0,
            "F16" => 1,
            "Q4_0" => 2,
            "Q4_1" => 3,
            "Q5_0" => 6,
            "Q5_1" => 7,
            "Q8_0" => 8,
            "Q2_K" => 10,
            "Q3_K" => 11,
            "Q4_K" => 12,
            "Q5_K" => 13,
            "Q6_K" => 14,
            "BF16" => 30,
            other => panic!("unexpected type {other}"),
        };
        let ty = ElementType::from_ggml(id).expect("decodable");
        types.insert(name);
        let mut got = Vec::new();
        decode(ty, &unhex(case["bytes"].as_str().expect("bytes")), &mut got);
        let want: Vec<u32> = unhex(case["values_f32_le"].as_str().expect("values"))
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        let got: Vec<u32> = got.iter().map(|v| v.to_bits()).collect();
        assert_eq!(got.len(), want.len(), "{}", case["name"]);
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert_eq!(
                g,
                w,
                "{}: value {i}: {} vs {}",
                case["name"],
                f32::from_bits(*g),
                f32::from_bits(*w)
            );
        }
    }
    assert_eq!(types.len(), 13, "every GGUF type the fingerprint reads has a vector");
}

fn f32_bits(hex_text: &str) -> Vec<u32> {
    unhex(hex_text)
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// The fork test re-quantizes blocks to Q4_0 and Q8_0 and compares them with the
/// suspect's bit for bit (spec/fingerprint.md §5), so its quantizers must be llama.cpp's
/// reference ones exactly, ties and rounding halves included.
#[test]
fn fingerprint_requant_vectors() {
    let text = std::fs::read_to_string(vectors().join("requant.json")).expect("requant.json");
    let doc: serde_json::Value = serde_json::from_str(&text).expect("json");
    let cases = doc["cases"].as_array().expect("cases");
    assert!(cases.len() >= 40, "{} cases", cases.len());
    let mut seen = std::collections::BTreeSet::new();
    for case in cases {
        let name = case["name"].as_str().expect("name");
        let ty = match case["type"].as_str().expect("type") {
            "Q4_0" => ElementType::Q4_0,
            "Q8_0" => ElementType::Q8_0,
            other => panic!("{name}: unexpected type {other}"),
        };
        seen.insert(case["type"].as_str().expect("type"));
        let block: Vec<f32> = f32_bits(case["block_f32_le"].as_str().expect("block"))
            .into_iter()
            .map(f32::from_bits)
            .collect();
        let block: [f32; 32] = block.try_into().expect("a block of 32 values");
        let want = f32_bits(case["round_trip_f32_le"].as_str().expect("round trip"));
        let got: Vec<u32> = quantize_round_trip(ty, &block)
            .unwrap_or_else(|| panic!("{name}: a finite block has a round trip"))
            .iter()
            .map(|v| v.to_bits())
            .collect();
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert_eq!(
                g,
                w,
                "{name}: value {i}: {} vs the reference's {}",
                f32::from_bits(*g),
                f32::from_bits(*w)
            );
        }
        assert_eq!(got.len(), want.len(), "{name}");
    }
    assert_eq!(seen.len(), 2, "both re-quantized types have vectors");
}

#[test]
fn fixture_fingerprint_is_pinned() {
    let fp = fingerprint_model(&root().join("tests/fixtures/gguf/tiny-llama.gguf")).expect("fingerprint");
    let bytes = fp.to_bytes().expect("encode");
    let path = vectors().join("tiny-llama.fingerprint");
    if writing() {
        std::fs::write(&path, &bytes).expect("write");
    }
    assert_eq!(
        bytes,
        std::fs::read(&path).expect("pinned fingerprint"),
        "sampling or encoding changed"
    );
    assert_eq!(Fingerprint::from_bytes(&bytes).expect("decode"), fp);
    // The Q8_0 tensor was decoded, not skipped.
    assert!(fp.tensors.iter().any(|t| t.dtype == "Q8_0"));
}

#[test]
fn resharded_and_retrained_fixtures_are_derived() {
    let fx = root().join("tests/fixtures/safetensors");
    let base = fingerprint_model(&fx.join("base-model")).expect("base");
    let resharded = fingerprint_model(&fx.join("base-model-resharded")).expect("resharded");
    let derived = fingerprint_model(&fx.join("derived-model")).expect("derived");
    let r = derived_from(&resharded, &base, Thresholds::default());
    assert!(r.derived && r.score > 0.999, "resharded score {}", r.score);
    assert!(r
        .tensors
        .iter()
        .all(|t| t.matched.is_none() || t.relative_change == 0.0));
    let d = derived_from(&derived, &base, Thresholds::default());
    assert!(d.derived, "derived-model score {}", d.score);
}

fn error_name(e: &FingerprintFileError) -> &'static str {
    match e {
        FingerprintFileError::TooLarge { .. } => "TooLarge",
        FingerprintFileError::Cbor(_) => "Cbor",
        FingerprintFileError::Field { .. } => "Field",
        FingerprintFileError::WrongFormat { .. } => "WrongFormat",
        FingerprintFileError::UnsupportedVersion { .. } => "UnsupportedVersion",
        FingerprintFileError::TooManyTensors { .. } => "TooManyTensors",
        FingerprintFileError::BadShape { .. } => "BadShape",
        FingerprintFileError::ValueCount { .. } => "ValueCount",
        FingerprintFileError::NonCanonicalNan { .. } => "NonCanonicalNan",
        _ => "other",
    }
}

/// Hand-built documents (CBOR written out byte by byte, so no encoder can tidy them up).
fn negative_cases() -> Vec<(&'static str, &'static str, Vec<u8>)> {
    // A valid one-tensor document: {"v":1,"format":"weightseal-fingerprint","tensors":[t]}
    // with keys in deterministic order (shorter encodings first).
    fn text(s: &str) -> Vec<u8> {
        let mut out = vec![0x60 | s.len() as u8];
        if s.len() >= 24 {
            out = vec![0x78, s.len() as u8];
        }
        out.extend_from_slice(s.as_bytes());
        out
    }
    fn doc(format: &str, version: u8, tensor: Vec<u8>, extra: Option<(&str, u8)>) -> Vec<u8> {
        let mut d = vec![if extra.is_some() { 0xa4 } else { 0xa3 }];
        d.extend(text("v"));
        d.push(version);
        if let Some((k, v)) = extra {
            d.extend(text(k));
            d.push(v);
        }
        d.extend(text("format"));
        d.extend(text(format));
        d.extend(text("tensors"));
        d.push(0x81);
        d.extend(tensor);
        d
    }
    fn tensor(rows: u8, cols: u8, values: &[u8]) -> Vec<u8> {
        let mut t = vec![0xa5];
        t.extend(text("cols"));
        t.push(cols);
        t.extend(text("name"));
        t.extend(text("w"));
        t.extend(text("rows"));
        t.push(rows);
        t.extend(text("type"));
        t.extend(text("F32"));
        t.extend(text("values"));
        t.push(0x40 | values.len() as u8);
        t.extend_from_slice(values);
        t
    }
    let two = [0u8, 0, 0x80, 0x3f, 0, 0, 0, 0x40]; // 1.0, 2.0
    let fmt = "weightseal-fingerprint";
    vec![
        ("valid", "ok", doc(fmt, 1, tensor(1, 2, &two), None)),
        (
            "wrong format name",
            "WrongFormat",
            doc("weightseal-manifest000", 1, tensor(1, 2, &two), None),
        ),
        ("version 2", "UnsupportedVersion", doc(fmt, 2, tensor(1, 2, &two), None)),
        (
            "unknown top-level field",
            "Field",
            doc(fmt, 1, tensor(1, 2, &two), Some(("x", 0))),
        ),
        (
            "values short of the plan",
            "ValueCount",
            doc(fmt, 1, tensor(1, 2, &two[..4]), None),
        ),
        ("empty shape", "BadShape", doc(fmt, 1, tensor(0, 2, &[]), None)),
        (
            "signalling NaN",
            "NonCanonicalNan",
            doc(fmt, 1, tensor(1, 2, &[1, 0, 0x80, 0x7f, 0, 0, 0, 0x40]), None),
        ),
        (
            "truncated",
            "Cbor",
            doc(fmt, 1, tensor(1, 2, &two), None)[..40].to_vec(),
        ),
        ("trailing byte", "Cbor", {
            let mut d = doc(fmt, 1, tensor(1, 2, &two), None);
            d.push(0);
            d
        }),
    ]
}

#[test]
fn malformed_fingerprint_files_name_their_error() {
    let path = vectors().join("negative.json");
    let cases: Vec<serde_json::Value> = negative_cases()
        .into_iter()
        .map(|(name, error, bytes)| serde_json::json!({"name": name, "error": error, "hex": hex::encode(bytes)}))
        .collect();
    if writing() {
        let text = serde_json::to_string_pretty(&serde_json::json!({
            "comment": "Fingerprint files (spec/fingerprint.md §4) and the error each must produce; written by verifier/tests/fingerprint_vectors.rs",
            "cases": cases,
        }))
        .expect("json");
        std::fs::write(&path, text + "\n").expect("write");
    }
    let stored: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("negative.json")).expect("json");
    let stored = stored["cases"].as_array().expect("cases");
    assert_eq!(stored.len(), cases.len());
    for case in stored {
        let bytes = unhex(case["hex"].as_str().expect("hex"));
        let got = match Fingerprint::from_bytes(&bytes) {
            Ok(_) => "ok",
            Err(e) => error_name(&e),
        };
        assert_eq!(got, case["error"].as_str().expect("error"), "{}", case["name"]);
    }
    // The size limit is checked before decoding.
    let big = vec![0u8; weightseal_verifier::fingerprint::MAX_FILE_BYTES + 1];
    assert!(matches!(
        Fingerprint::from_bytes(&big),
        Err(FingerprintFileError::TooLarge { .. })
    ));
}
