//! Typed fields of a decoded CBOR value tree, for the small documents the crate reads that
//! way (revocation entries and submissions, fingerprint files, the state file, publication
//! documents; manifests have their own one-pass decoder). Errors are [`FieldError`], which
//! each format turns into its own error type, so a bad revocation entry is never reported
//! as a bad manifest.

use ciborium::Value;

use crate::digest::Digest;

/// A field of a CBOR document that is missing, of the wrong type, unknown, or over a limit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum FieldError {
    /// A field is missing, has the wrong type, or is unknown.
    #[error("field {field}: {problem}")]
    Field {
        /// Dotted location, e.g. `entry.subject.digest`.
        field: String,
        /// What is wrong with it.
        problem: String,
    },
    /// An array holds more items than its format allows.
    #[error("{what}: {found} is over the limit of {limit}")]
    Limit {
        /// What was counted.
        what: &'static str,
        /// The value found.
        found: usize,
        /// The limit.
        limit: usize,
    },
}

fn field(at: &str, problem: &str) -> FieldError {
    FieldError::Field {
        field: at.to_string(),
        problem: problem.to_string(),
    }
}

/// A decoded value and where it sits, for error messages.
pub(crate) struct At {
    pub(crate) value: Value,
    pub(crate) at: String,
}

impl At {
    pub(crate) fn uint(self) -> Result<u64, FieldError> {
        match self.value {
            Value::Integer(i) => {
                u64::try_from(i).map_err(|_| field(&self.at, "expected an unsigned integer that fits 64 bits"))
            }
            _ => Err(field(&self.at, "expected an unsigned integer")),
        }
    }
    pub(crate) fn text(self) -> Result<String, FieldError> {
        match self.value {
            Value::Text(s) => Ok(s),
            _ => Err(field(&self.at, "expected text")),
        }
    }
    pub(crate) fn text_max(self, max: usize) -> Result<String, FieldError> {
        let at = self.at.clone();
        let s = self.text()?;
        if s.len() > max {
            return Err(field(
                &at,
                &format!("text of {} bytes is over the limit of {max}", s.len()),
            ));
        }
        Ok(s)
    }
    pub(crate) fn byte_string(self) -> Result<Vec<u8>, FieldError> {
        match self.value {
            Value::Bytes(b) => Ok(b),
            _ => Err(field(&self.at, "expected a byte string")),
        }
    }
    pub(crate) fn fixed<const N: usize>(self) -> Result<[u8; N], FieldError> {
        let at = self.at.clone();
        let b = self.byte_string()?;
        let len = b.len();
        b.try_into()
            .map_err(|_| field(&at, &format!("expected {N} bytes, found {len}")))
    }
    pub(crate) fn digest(self) -> Result<Digest, FieldError> {
        Ok(Digest::from_bytes(self.fixed::<32>()?))
    }
    pub(crate) fn array(self) -> Result<Vec<At>, FieldError> {
        match self.value {
            Value::Array(items) => Ok(items
                .into_iter()
                .enumerate()
                .map(|(i, value)| At {
                    value,
                    at: format!("{}[{i}]", self.at),
                })
                .collect()),
            _ => Err(field(&self.at, "expected an array")),
        }
    }
    pub(crate) fn array_max(self, max: usize) -> Result<Vec<At>, FieldError> {
        let items = self.array()?;
        if items.len() > max {
            return Err(FieldError::Limit {
                what: "array length",
                found: items.len(),
                limit: max,
            });
        }
        Ok(items)
    }
}

/// The fields of a CBOR map with text keys; `finish` refuses any left unread.
pub(crate) struct Fields {
    entries: Vec<(String, Value)>,
    at: String,
}

impl Fields {
    pub(crate) fn new(value: Value, at: &str) -> Result<Self, FieldError> {
        Self::new_at(At {
            value,
            at: at.to_string(),
        })
    }
    pub(crate) fn new_at(value: At) -> Result<Self, FieldError> {
        let Value::Map(entries) = value.value else {
            return Err(field(&value.at, "expected a map"));
        };
        let entries = entries
            .into_iter()
            .map(|(k, v)| match k {
                Value::Text(k) => Ok((k, v)),
                _ => Err(field(&value.at, "map keys must be text")),
            })
            .collect::<Result<_, _>>()?;
        Ok(Fields { entries, at: value.at })
    }
    pub(crate) fn optional(&mut self, key: &str) -> Option<At> {
        let i = self.entries.iter().position(|(k, _)| k == key)?;
        let (_, value) = self.entries.swap_remove(i);
        Some(At {
            value,
            at: format!("{}.{key}", self.at),
        })
    }
    pub(crate) fn required(&mut self, key: &str) -> Result<At, FieldError> {
        let at = format!("{}.{key}", self.at);
        self.optional(key).ok_or_else(|| field(&at, "missing"))
    }
    pub(crate) fn finish(self) -> Result<(), FieldError> {
        match self.entries.first() {
            None => Ok(()),
            Some((k, _)) => Err(field(&format!("{}.{k}", self.at), "unknown field")),
        }
    }
}
