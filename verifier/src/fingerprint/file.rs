//! The fingerprint file (spec/fingerprint.md §4): deterministic CBOR, values as
//! little-endian f32 byte strings (the CBOR profile has no floats), strictly decoded.

use ciborium::Value;

use super::{plan, Fingerprint, TensorPrint, FINGERPRINT_VERSION};
use crate::cbor::{self, CborError, Limits};
use crate::fields::{FieldError, Fields};

/// Largest fingerprint file.
pub const MAX_FILE_BYTES: usize = 64 << 20;
/// Most tensors in one fingerprint.
pub const MAX_TENSORS: usize = 1 << 16;
/// Longest tensor name (file path and tensor name).
pub const MAX_NAME_BYTES: usize = 1024;
/// The value of the `format` field.
pub const FORMAT_NAME: &str = "weightseal-fingerprint";

const LIMITS: Limits = Limits {
    max_bytes: MAX_FILE_BYTES,
    max_items: 16 * MAX_TENSORS as u64 + 16,
    max_depth: 4,
};

/// Why a fingerprint file was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FingerprintFileError {
    /// The file is over [`MAX_FILE_BYTES`].
    #[error("fingerprint file is {size} bytes, over the limit of {limit}")]
    TooLarge {
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// Not deterministic CBOR within the limits.
    #[error("fingerprint file: {0}")]
    Cbor(#[from] CborError),
    /// A field is missing, unknown or of the wrong type.
    #[error("fingerprint file: field {field}: {problem}")]
    Field {
        /// Where.
        field: String,
        /// What is wrong.
        problem: String,
    },
    /// The `format` field names something else.
    #[error("not a fingerprint file: format is {found:?}, expected \"weightseal-fingerprint\"")]
    WrongFormat {
        /// What it says.
        found: String,
    },
    /// A version this code does not implement.
    #[error("fingerprint version {found} is not supported (this build reads version 1)")]
    UnsupportedVersion {
        /// The version found.
        found: u64,
    },
    /// More tensors than the limit (65,536; spec/fingerprint.md).
    #[error("fingerprint lists {found} tensors, over the limit of {limit}")]
    TooManyTensors {
        /// How many.
        found: usize,
        /// The limit.
        limit: usize,
    },
    /// A tensor's shape has no values or overflows.
    #[error("tensor {index}: shape {rows} x {cols} is empty or too large")]
    BadShape {
        /// Position in the list.
        index: usize,
        /// Rows.
        rows: u64,
        /// Columns.
        cols: u64,
    },
    /// The values do not fill the sampling plan of the tensor's shape.
    #[error("tensor {index}: {found} value bytes, but the plan for its shape samples {expected} values ({} bytes)", expected * 4)]
    ValueCount {
        /// Position in the list.
        index: usize,
        /// Bytes found.
        found: usize,
        /// Values expected.
        expected: usize,
    },
    /// A NaN other than the canonical quiet NaN 0x7fc00000 (two encodings of one sample
    /// would make two files for one fingerprint).
    #[error("tensor {index}: value {position} is a NaN other than 0x7fc00000")]
    NonCanonicalNan {
        /// Position in the list.
        index: usize,
        /// Value index.
        position: usize,
    },
}

impl From<FieldError> for FingerprintFileError {
    fn from(e: FieldError) -> Self {
        match e {
            FieldError::Field { field, problem } => FingerprintFileError::Field { field, problem },
            limit @ FieldError::Limit { .. } => FingerprintFileError::Field {
                field: "fingerprint".into(),
                problem: limit.to_string(),
            },
        }
    }
}

fn text(s: &str) -> Value {
    Value::Text(s.to_string())
}

impl Fingerprint {
    /// The file bytes (deterministic: one fingerprint, one encoding).
    pub fn to_bytes(&self) -> Result<Vec<u8>, FingerprintFileError> {
        if self.tensors.len() > MAX_TENSORS {
            return Err(FingerprintFileError::TooManyTensors {
                found: self.tensors.len(),
                limit: MAX_TENSORS,
            });
        }
        let tensors = self
            .tensors
            .iter()
            .map(|t| {
                let mut raw = Vec::with_capacity(t.values.len() * 4);
                for v in &t.values {
                    let v = if v.is_nan() { f32::NAN } else { *v };
                    raw.extend_from_slice(&v.to_le_bytes());
                }
                Value::Map(vec![
                    (text("name"), text(&t.name)),
                    (text("type"), text(&t.dtype)),
                    (text("rows"), Value::Integer(t.rows.into())),
                    (text("cols"), Value::Integer(t.cols.into())),
                    (text("values"), Value::Bytes(raw)),
                ])
            })
            .collect();
        let doc = Value::Map(vec![
            (text("format"), text(FORMAT_NAME)),
            (text("v"), Value::Integer(FINGERPRINT_VERSION.into())),
            (text("tensors"), Value::Array(tensors)),
        ]);
        let bytes = cbor::encode(&doc)?;
        if bytes.len() > MAX_FILE_BYTES {
            return Err(FingerprintFileError::TooLarge {
                size: bytes.len() as u64,
                limit: MAX_FILE_BYTES as u64,
            });
        }
        Ok(bytes)
    }

    /// Decodes file bytes strictly: deterministic CBOR, no unknown fields, every tensor's
    /// values exactly its shape's sampling plan.
    pub fn from_bytes(input: &[u8]) -> Result<Fingerprint, FingerprintFileError> {
        if input.len() > MAX_FILE_BYTES {
            return Err(FingerprintFileError::TooLarge {
                size: input.len() as u64,
                limit: MAX_FILE_BYTES as u64,
            });
        }
        let value = cbor::decode(input, LIMITS)?;
        let mut top = Fields::new(value, "fingerprint")?;
        let format = top.required("format")?.text_max(64)?;
        if format != FORMAT_NAME {
            return Err(FingerprintFileError::WrongFormat { found: format });
        }
        let version = top.required("v")?.uint()?;
        if version != FINGERPRINT_VERSION {
            return Err(FingerprintFileError::UnsupportedVersion { found: version });
        }
        let items = top.required("tensors")?.array()?;
        top.finish()?;
        if items.len() > MAX_TENSORS {
            return Err(FingerprintFileError::TooManyTensors {
                found: items.len(),
                limit: MAX_TENSORS,
            });
        }
        let mut tensors = Vec::with_capacity(items.len());
        for (index, item) in items.into_iter().enumerate() {
            let mut f = Fields::new_at(item)?;
            let name = f.required("name")?.text_max(MAX_NAME_BYTES)?;
            let dtype = f.required("type")?.text_max(16)?;
            let rows = f.required("rows")?.uint()?;
            let cols = f.required("cols")?.uint()?;
            let raw = f.required("values")?.byte_string()?;
            f.finish()?;
            if rows.checked_mul(cols).is_none_or(|n| n == 0) {
                return Err(FingerprintFileError::BadShape { index, rows, cols });
            }
            let expected = plan(rows, cols).len();
            if raw.len() != expected * 4 {
                return Err(FingerprintFileError::ValueCount {
                    index,
                    found: raw.len(),
                    expected,
                });
            }
            let mut values = Vec::with_capacity(expected);
            for (position, c) in raw.chunks_exact(4).enumerate() {
                let v = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
                if v.is_nan() && v.to_bits() != f32::NAN.to_bits() {
                    return Err(FingerprintFileError::NonCanonicalNan { index, position });
                }
                values.push(v);
            }
            tensors.push(TensorPrint {
                name,
                dtype,
                rows,
                cols,
                values,
            });
        }
        Ok(Fingerprint { tensors })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Fingerprint {
        Fingerprint {
            tensors: vec![TensorPrint {
                name: "m.safetensors/w".into(),
                dtype: "F16".into(),
                rows: 2,
                cols: 3,
                values: vec![1.0, -2.0, 0.5, f32::NAN, 0.0, 3.25],
            }],
        }
    }

    #[test]
    fn round_trip_is_exact() {
        let bytes = sample().to_bytes().expect("encode");
        let back = Fingerprint::from_bytes(&bytes).expect("decode");
        assert_eq!(back.to_bytes().expect("encode"), bytes);
        assert_eq!(back.tensors[0].values[5], 3.25);
    }

    #[test]
    fn values_must_fill_the_plan() {
        let mut fp = sample();
        fp.tensors[0].values.pop();
        let bytes = fp.to_bytes().expect("encode");
        assert!(matches!(
            Fingerprint::from_bytes(&bytes),
            Err(FingerprintFileError::ValueCount {
                index: 0,
                found: 20,
                expected: 6
            })
        ));
    }
}
