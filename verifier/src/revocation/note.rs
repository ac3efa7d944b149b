//! C2SP signed notes (<https://c2sp.org/signed-note>) with Ed25519 keys, and
//! transparency-log checkpoints (<https://c2sp.org/tlog-checkpoint>).
//!
//! A signed note is a UTF-8 text body (every line ending in `\n`, no other
//! control characters), a blank line, and one or more signature lines
//! `— <key name> <base64(4-byte key ID || signature)>\n` (U+2014 EM DASH,
//! space). An Ed25519 key ID is the first 4 bytes of
//! `SHA-256(name || 0x0A || 0x01 || 32-byte public key)`, and the signature is
//! Ed25519 over the body including its final newline.
//!
//! [`open_note`] accepts a note only if at least one signature from a known
//! key (matching name *and* key ID) verifies; signatures from unknown keys are
//! ignored and a known key's failing signature rejects the whole note.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use ed25519_dalek::{Signature, VerifyingKey};
use sha2::{Digest, Sha256};
use std::fmt;
use std::str::FromStr;

/// The largest note [`open_note`] accepts, in bytes (1 MiB).
pub const MAX_NOTE_SIZE: usize = 1 << 20;
/// The most signature lines [`open_note`] accepts.
pub const MAX_SIGNATURES: usize = 100;

/// Signature type identifier byte for Ed25519 (c2sp.org/signed-note).
pub const ALG_ED25519: u8 = 0x01;
/// Every signature line starts with an em dash and a space.
pub const SIG_PREFIX: &str = "\u{2014} ";
/// Longest excerpt of untrusted input quoted in an error.
const EXCERPT_CHARS: usize = 64;

/// Why a note, key or checkpoint was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NoteError {
    /// The note is larger than the size limit.
    #[error("note is {size} bytes, more than the limit of {max}")]
    TooLarge {
        /// The note's size in bytes.
        size: usize,
        /// The limit in bytes.
        max: usize,
    },
    /// The input is not valid UTF-8.
    #[error("note is not valid UTF-8 (first bad byte at offset {offset})")]
    InvalidUtf8 {
        /// Byte offset of the first invalid sequence.
        offset: usize,
    },
    /// The text holds an ASCII control character other than newline.
    #[error("line {line}: control character U+{codepoint:04X} is not allowed")]
    ControlCharacter {
        /// 1-based line number.
        line: usize,
        /// The offending character.
        codepoint: u32,
    },
    /// The text does not end with a newline.
    #[error("text does not end with a newline")]
    MissingTrailingNewline,
    /// A note body to sign is empty.
    #[error("note body is empty")]
    EmptyBody,
    /// No blank line separates the body from the signatures.
    #[error("no blank line separates the note text from its signatures")]
    MissingBlankLine,
    /// The blank line is not followed by any signature line.
    #[error("note has no signature lines")]
    NoSignatures,
    /// The note has more signature lines than the limit.
    #[error("note has {found} signature lines, more than the limit of {max}")]
    TooManySignatures {
        /// The number of signature lines.
        found: usize,
        /// The limit.
        max: usize,
    },
    /// A line after the blank line is not a well-formed signature line.
    #[error("line {line}: malformed signature line ({reason}): {found:?}")]
    MalformedSignatureLine {
        /// 1-based line number in the note.
        line: usize,
        /// What is wrong with it.
        reason: &'static str,
        /// The start of the line.
        found: String,
    },
    /// A key name is empty or holds a space, a plus sign or a control
    /// character.
    #[error("invalid key name {name:?}: {reason}")]
    InvalidKeyName {
        /// The start of the name.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A verifier key string (`<name>+<key ID>+<base64 key>`) is malformed.
    #[error("invalid verifier key: {reason}")]
    InvalidVerifierKey {
        /// What is wrong with it.
        reason: String,
    },
    /// A signer key string (`PRIVATE+KEY+<name>+<key ID>+<base64 seed>`) is
    /// malformed. The message never quotes key material.
    #[error("invalid signer key: {reason}")]
    InvalidSignerKey {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A key's signature type is not Ed25519 (0x01).
    #[error("unsupported signature type 0x{alg:02x} (only Ed25519, 0x01, is supported)")]
    UnsupportedAlgorithm {
        /// The signature type byte found.
        alg: u8,
    },
    /// The key ID written in a key string is not the one its name and key
    /// give.
    #[error("key {name}: key ID {stated} does not match the computed key ID {computed}")]
    KeyIdMismatch {
        /// The key name.
        name: String,
        /// The key ID in the string, in hex.
        stated: String,
        /// The key ID computed from name and key, in hex.
        computed: String,
    },
    /// Two different known keys share a name and key ID.
    #[error("ambiguous key {name}+{key_id}: several known keys have this name and ID")]
    AmbiguousKey {
        /// The key name.
        name: String,
        /// The key ID, in hex.
        key_id: String,
    },
    /// A signature from a known key does not verify.
    #[error("line {line}: invalid signature for key {name}+{key_id}")]
    InvalidSignature {
        /// 1-based line number of the signature line.
        line: usize,
        /// The key name.
        name: String,
        /// The key ID, in hex.
        key_id: String,
    },
    /// No signature from a known key is present.
    #[error("note has no signature from a known key ({signatures} signatures from unknown keys)")]
    NoVerifiedSignature {
        /// How many signature lines were ignored as unknown.
        signatures: usize,
    },
    /// A checkpoint body has fewer than the three mandatory lines.
    #[error("checkpoint has {lines} lines, at least 3 are required")]
    CheckpointTooShort {
        /// The number of lines found.
        lines: usize,
    },
    /// The checkpoint's origin line is empty.
    #[error("line 1: checkpoint origin is empty")]
    EmptyOrigin,
    /// The checkpoint's tree size line is not a canonical decimal `u64`.
    #[error("line 2: invalid tree size {found:?}: {reason}")]
    InvalidTreeSize {
        /// The start of the line.
        found: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The checkpoint's root hash line is not the base64 of 32 bytes.
    #[error("line 3: invalid root hash {found:?}: {reason}")]
    InvalidRootHash {
        /// The start of the line.
        found: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A checkpoint extension line is empty.
    #[error("line {line}: checkpoint extension line is empty")]
    EmptyExtensionLine {
        /// 1-based line number.
        line: usize,
    },
    /// A checkpoint origin or extension line holds a newline or another
    /// control character.
    #[error("checkpoint {field} holds a control character")]
    InvalidCheckpointField {
        /// Which field (`origin` or `extension N`).
        field: String,
    },
}

/// At most [`EXCERPT_CHARS`] characters of untrusted input, for errors.
fn excerpt(s: &str) -> String {
    let mut out: String = s.chars().take(EXCERPT_CHARS).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out
}

/// A key ID as the 8 hex digits of key strings and error messages.
pub fn hex4(id: &[u8; 4]) -> String {
    format!("{:08x}", u32::from_be_bytes(*id))
}

/// Checks for ASCII control characters other than newline.
fn check_chars(text: &str) -> Result<(), NoteError> {
    let mut line = 1;
    for c in text.chars() {
        if c == '\n' {
            line += 1;
        } else if c < ' ' {
            return Err(NoteError::ControlCharacter {
                line,
                codepoint: u32::from(c),
            });
        }
    }
    Ok(())
}

/// Checks a key name: non-empty, no Unicode white space, no `+`, no control
/// characters.
pub fn check_name(name: &str) -> Result<(), NoteError> {
    let reason = if name.is_empty() {
        "empty"
    } else if name.contains('+') {
        "contains '+'"
    } else if name.chars().any(char::is_whitespace) {
        "contains white space"
    } else if name.chars().any(char::is_control) {
        "contains a control character"
    } else {
        return Ok(());
    };
    Err(NoteError::InvalidKeyName {
        name: excerpt(name),
        reason,
    })
}

/// The Ed25519 key ID: the first 4 bytes of
/// `SHA-256(name || 0x0A || 0x01 || public key)`.
pub fn key_id(name: &str, key: &VerifyingKey) -> [u8; 4] {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update([b'\n', ALG_ED25519]);
    h.update(key.as_bytes());
    let [a, b, c, d, ..] = <[u8; 32]>::from(h.finalize());
    [a, b, c, d]
}

/// Parses an 8-digit hex key ID.
pub fn parse_key_id(s: &str) -> Option<[u8; 4]> {
    if s.len() != 8 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(s, 16).ok().map(u32::to_be_bytes)
}

/// Decodes `base64(0x01 || 32 bytes)`.
fn decode_typed_key(s: &str) -> Result<[u8; 32], KeyBlobError> {
    decode_key_of_type(s, ALG_ED25519)
}

/// Decodes `base64(alg || 32 bytes)`, the key part of a key string, requiring type `alg_wanted`.
pub fn decode_key_of_type(s: &str, alg_wanted: u8) -> Result<[u8; 32], KeyBlobError> {
    let raw = BASE64.decode(s).map_err(|_| KeyBlobError::Base64)?;
    match raw.split_first() {
        Some((&alg, rest)) if alg == alg_wanted => {
            <[u8; 32]>::try_from(rest).map_err(|_| KeyBlobError::Length(rest.len()))
        }
        Some((&alg, _)) => Err(KeyBlobError::Algorithm(alg)),
        None => Err(KeyBlobError::Length(0)),
    }
}

fn encode_typed_key(key: &[u8; 32]) -> String {
    encode_key_of_type(key, ALG_ED25519)
}

/// `base64(alg || 32 bytes)`, the key part of a key string.
pub fn encode_key_of_type(key: &[u8; 32], alg: u8) -> String {
    let mut raw = Vec::with_capacity(33);
    raw.push(alg);
    raw.extend_from_slice(key);
    BASE64.encode(raw)
}

/// Why a typed key blob was refused by [`decode_key_of_type`]; each caller words its own
/// error (verifier key, signer key, witness key).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyBlobError {
    /// Not standard base64.
    Base64,
    /// The type byte is not the one wanted.
    Algorithm(u8),
    /// The key is this many bytes, not 32.
    Length(usize),
}

/// A note verifier key: a key name, its key ID and an Ed25519 public key.
///
/// Its string form is `<name>+<8 hex digit key ID>+<base64(0x01 || key)>`,
/// as produced by Go's `golang.org/x/mod/sumdb/note`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteVerifierKey {
    name: String,
    key_id: [u8; 4],
    key: VerifyingKey,
}

impl NoteVerifierKey {
    /// A verifier key for `name`, computing the key ID.
    pub fn new(name: &str, key: VerifyingKey) -> Result<Self, NoteError> {
        check_name(name)?;
        Ok(Self {
            name: name.to_owned(),
            key_id: key_id(name, &key),
            key,
        })
    }

    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key ID.
    pub fn key_id(&self) -> [u8; 4] {
        self.key_id
    }

    /// The Ed25519 public key.
    pub fn key(&self) -> &VerifyingKey {
        &self.key
    }
}

impl FromStr for NoteVerifierKey {
    type Err = NoteError;

    fn from_str(s: &str) -> Result<Self, NoteError> {
        let bad = |reason: &str| NoteError::InvalidVerifierKey {
            reason: reason.to_owned(),
        };
        let (name, rest) = s.split_once('+').ok_or_else(|| bad("expected <name>+<key ID>+<key>"))?;
        let (id_hex, key_b64) = rest
            .split_once('+')
            .ok_or_else(|| bad("expected <name>+<key ID>+<key>"))?;
        check_name(name)?;
        let stated = parse_key_id(id_hex).ok_or_else(|| bad("key ID is not 8 hex digits"))?;
        let bytes = decode_typed_key(key_b64).map_err(|e| match e {
            KeyBlobError::Base64 => bad("key is not valid base64"),
            KeyBlobError::Algorithm(alg) => NoteError::UnsupportedAlgorithm { alg },
            KeyBlobError::Length(n) => NoteError::InvalidVerifierKey {
                reason: format!("Ed25519 public key is {n} bytes, expected 32"),
            },
        })?;
        let key = VerifyingKey::from_bytes(&bytes).map_err(|_| bad("not a valid Ed25519 public key"))?;
        let computed = key_id(name, &key);
        if computed != stated {
            return Err(NoteError::KeyIdMismatch {
                name: name.to_owned(),
                stated: hex4(&stated),
                computed: hex4(&computed),
            });
        }
        Ok(Self {
            name: name.to_owned(),
            key_id: computed,
            key,
        })
    }
}

impl fmt::Display for NoteVerifierKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}+{}+{}",
            self.name,
            hex4(&self.key_id),
            encode_typed_key(self.key.as_bytes())
        )
    }
}

/// Checks a note body: non-empty, ends with a newline, no control characters
/// other than newline. What a signer must check before signing (the log's signer lives in
/// `weightseal-log`); [`open_note`] holds every note it opens to the same rules.
pub fn check_body(body: &str) -> Result<(), NoteError> {
    if body.is_empty() {
        return Err(NoteError::EmptyBody);
    }
    check_chars(body)?;
    if !body.ends_with('\n') {
        return Err(NoteError::MissingTrailingNewline);
    }
    Ok(())
}

/// A note whose signatures were checked by [`open_note`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenedNote {
    /// The note text, including its final newline.
    pub(crate) body: String,
    /// Names of the known keys whose signatures verified, in note order,
    /// without duplicates.
    pub(crate) verified_by: Vec<String>,
}

impl OpenedNote {
    /// The note text, including its final newline.
    pub fn body(&self) -> &str {
        &self.body
    }

    /// Names of the known keys whose signatures verified, in note order, without
    /// duplicates.
    pub fn verified_by(&self) -> &[String] {
        &self.verified_by
    }
}

/// [`open_note`] for raw bytes: checks the size limit, then UTF-8.
pub fn open_note_bytes(bytes: &[u8], verifiers: &[NoteVerifierKey]) -> Result<OpenedNote, NoteError> {
    if bytes.len() > MAX_NOTE_SIZE {
        return Err(NoteError::TooLarge {
            size: bytes.len(),
            max: MAX_NOTE_SIZE,
        });
    }
    let text = std::str::from_utf8(bytes).map_err(|e| NoteError::InvalidUtf8 {
        offset: e.valid_up_to(),
    })?;
    open_note(text, verifiers)
}

/// One signature line of a note, parsed but not verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SignatureLine<'a> {
    /// 1-based line number in the note.
    pub(crate) line: usize,
    /// The key name.
    pub(crate) name: &'a str,
    /// The key ID.
    pub(crate) key_id: [u8; 4],
    /// The signature bytes after the key ID.
    pub(crate) signature: Vec<u8>,
}

/// Splits a signed note into its body (with its final newline) and its signature lines,
/// checking the framing rules of c2sp.org/signed-note but no signature. Shared by
/// [`open_note`] and the cosignature checks, so both read a note the same way.
pub(crate) fn split_note(text: &str) -> Result<(&str, Vec<SignatureLine<'_>>), NoteError> {
    if text.len() > MAX_NOTE_SIZE {
        return Err(NoteError::TooLarge {
            size: text.len(),
            max: MAX_NOTE_SIZE,
        });
    }
    check_chars(text)?;
    if !text.ends_with('\n') {
        return Err(NoteError::MissingTrailingNewline);
    }
    // The body ends at the last blank line (the body may hold blank lines;
    // signature lines never are blank).
    let split = text.rfind("\n\n").ok_or(NoteError::MissingBlankLine)?;
    let body = text.get(..split + 1).ok_or(NoteError::MissingBlankLine)?;
    let sigs = text.get(split + 2..).ok_or(NoteError::NoSignatures)?;
    if sigs.is_empty() {
        return Err(NoteError::NoSignatures);
    }
    let count = sigs.matches('\n').count();
    if count > MAX_SIGNATURES {
        return Err(NoteError::TooManySignatures {
            found: count,
            max: MAX_SIGNATURES,
        });
    }
    // Line number of the first signature line: body lines, then the blank.
    let first_line = body.matches('\n').count() + 2;
    let mut lines = Vec::with_capacity(count);
    for (i, line) in sigs.split_terminator('\n').enumerate() {
        let line_no = first_line + i;
        let malformed = |reason| NoteError::MalformedSignatureLine {
            line: line_no,
            reason,
            found: excerpt(line),
        };
        let rest = line
            .strip_prefix(SIG_PREFIX)
            .ok_or_else(|| malformed("does not start with an em dash and a space"))?;
        let (name, b64) = rest
            .split_once(' ')
            .ok_or_else(|| malformed("expected a key name, a space and a signature"))?;
        if check_name(name).is_err() {
            return Err(malformed("invalid key name"));
        }
        let blob = BASE64
            .decode(b64)
            .map_err(|_| malformed("signature is not valid base64"))?;
        let (id, sig) = match blob.split_first_chunk::<4>() {
            Some((id, sig)) if !sig.is_empty() => (*id, sig),
            _ => return Err(malformed("signature is shorter than 5 bytes")),
        };
        lines.push(SignatureLine {
            line: line_no,
            name,
            key_id: id,
            signature: sig.to_vec(),
        });
    }
    Ok((body, lines))
}

/// Parses a signed note and checks its signatures against `verifiers`.
///
/// Succeeds only if at least one signature line is from a known key (same
/// name and key ID) and verifies. Signatures from unknown keys are ignored;
/// a signature from a known key that does not verify rejects the note. At
/// most [`MAX_NOTE_SIZE`] bytes and [`MAX_SIGNATURES`] signature lines are
/// accepted.
pub fn open_note(text: &str, verifiers: &[NoteVerifierKey]) -> Result<OpenedNote, NoteError> {
    let (body, lines) = split_note(text)?;
    let mut verified_by: Vec<String> = Vec::new();
    let mut unknown = 0;
    for SignatureLine {
        line: line_no,
        name,
        key_id: id,
        signature: sig,
    } in lines
    {
        let mut known = verifiers.iter().filter(|v| v.name == name && v.key_id == id);
        let Some(verifier) = known.next() else {
            unknown += 1;
            continue;
        };
        if known.any(|other| other.key != verifier.key) {
            return Err(NoteError::AmbiguousKey {
                name: name.to_owned(),
                key_id: hex4(&id),
            });
        }
        let invalid = || NoteError::InvalidSignature {
            line: line_no,
            name: name.to_owned(),
            key_id: hex4(&id),
        };
        let sig = <[u8; Signature::BYTE_SIZE]>::try_from(sig.as_slice()).map_err(|_| invalid())?;
        verifier
            .key
            .verify_strict(body.as_bytes(), &Signature::from_bytes(&sig))
            .map_err(|_| invalid())?;
        if !verified_by.iter().any(|n| n == name) {
            verified_by.push(name.to_owned());
        }
    }
    if verified_by.is_empty() {
        return Err(NoteError::NoVerifiedSignature { signatures: unknown });
    }
    Ok(OpenedNote {
        body: body.to_owned(),
        verified_by,
    })
}

/// A transparency-log checkpoint (c2sp.org/tlog-checkpoint): the note body
/// naming a log, a tree size and the RFC 6962 root hash at that size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's origin line (non-empty).
    pub origin: String,
    /// The number of leaves in the tree.
    pub size: u64,
    /// The RFC 6962 Merkle tree root at `size`.
    pub root: [u8; 32],
    /// Optional extension lines (each non-empty), kept verbatim.
    pub extensions: Vec<String>,
}

impl Checkpoint {
    /// The checkpoint note body:
    /// `<origin>\n<size>\n<base64 root>\n` then one line per extension.
    ///
    /// Use [`Checkpoint::validate`] first for values not built by
    /// [`Checkpoint::parse_body`]: an origin or extension holding a newline
    /// would otherwise produce a different checkpoint.
    pub fn to_body(&self) -> String {
        let mut body = format!("{}\n{}\n{}\n", self.origin, self.size, BASE64.encode(self.root));
        for ext in &self.extensions {
            body.push_str(ext);
            body.push('\n');
        }
        body
    }

    /// Checks that [`Checkpoint::to_body`] gives a body that parses back to
    /// `self`: non-empty origin and extensions, no control characters.
    pub fn validate(&self) -> Result<(), NoteError> {
        if self.origin.is_empty() {
            return Err(NoteError::EmptyOrigin);
        }
        if self.origin.chars().any(|c| c < ' ') {
            return Err(NoteError::InvalidCheckpointField {
                field: "origin".to_owned(),
            });
        }
        for (i, ext) in self.extensions.iter().enumerate() {
            if ext.is_empty() {
                return Err(NoteError::EmptyExtensionLine { line: i + 4 });
            }
            if ext.chars().any(|c| c < ' ') {
                return Err(NoteError::InvalidCheckpointField {
                    field: format!("extension {}", i + 1),
                });
            }
        }
        Ok(())
    }

    /// Parses a checkpoint note body (the text [`open_note`] returns).
    pub fn parse_body(body: &str) -> Result<Self, NoteError> {
        if body.len() > MAX_NOTE_SIZE {
            return Err(NoteError::TooLarge {
                size: body.len(),
                max: MAX_NOTE_SIZE,
            });
        }
        check_chars(body)?;
        let text = body.strip_suffix('\n').ok_or(NoteError::MissingTrailingNewline)?;
        let mut lines = text.split('\n');
        let origin = lines.next().unwrap_or_default();
        if origin.is_empty() {
            return Err(NoteError::EmptyOrigin);
        }
        let (Some(size_line), Some(root_line)) = (lines.next(), lines.next()) else {
            return Err(NoteError::CheckpointTooShort {
                lines: text.split('\n').count(),
            });
        };
        let size = parse_tree_size(size_line)?;
        let root = parse_root(root_line)?;
        let mut extensions = Vec::new();
        for (i, ext) in lines.enumerate() {
            if ext.is_empty() {
                return Err(NoteError::EmptyExtensionLine { line: i + 4 });
            }
            extensions.push(ext.to_owned());
        }
        Ok(Self {
            origin: origin.to_owned(),
            size,
            root,
            extensions,
        })
    }
}

/// ASCII decimal, no sign, no leading zeros unless exactly `0`, fits `u64`.
fn parse_tree_size(s: &str) -> Result<u64, NoteError> {
    let bad = |reason| NoteError::InvalidTreeSize {
        found: excerpt(s),
        reason,
    };
    if s.is_empty() {
        return Err(bad("empty"));
    }
    if !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad("not an unsigned decimal number"));
    }
    if s.len() > 1 && s.starts_with('0') {
        return Err(bad("leading zero"));
    }
    s.parse::<u64>().map_err(|_| bad("does not fit in 64 bits"))
}

/// Standard base64 (padded, canonical) of exactly 32 bytes.
fn parse_root(s: &str) -> Result<[u8; 32], NoteError> {
    let bad = |reason: String| NoteError::InvalidRootHash {
        found: excerpt(s),
        reason,
    };
    let raw = BASE64.decode(s).map_err(|e| bad(format!("not valid base64: {e}")))?;
    <[u8; 32]>::try_from(raw.as_slice()).map_err(|_| bad(format!("decodes to {} bytes, expected 32", raw.len())))
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test fails by panicking"
)]
mod tests {
    use super::*;
    use crate::revocation::test_signing::TestSigner;

    // Test vectors from golang.org/x/mod/sumdb/note note_test.go.
    const PETER_VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
    const ENOCH_VKEY: &str = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop";
    const TEXT: &str = "If you think cryptography is the answer to your problem,\n\
                        then you don't know what your problem is.\n";
    const PETER_SIG: &str = "\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
    const ENOCH_SIG: &str = "\u{2014} EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n";

    fn peter() -> NoteVerifierKey {
        PETER_VKEY.parse().unwrap()
    }
    fn enoch() -> NoteVerifierKey {
        ENOCH_VKEY.parse().unwrap()
    }
    fn test_signer(name: &str, seed: u8) -> TestSigner {
        TestSigner::new(name, seed)
    }

    #[test]
    fn go_verifier_key_parses_and_round_trips() {
        let v = peter();
        assert_eq!(v.name(), "PeterNeumann");
        assert_eq!(v.key_id(), [0xc7, 0x4f, 0x20, 0xa3]);
        assert_eq!(key_id("PeterNeumann", v.key()), [0xc7, 0x4f, 0x20, 0xa3]);
        assert_eq!(v.to_string(), PETER_VKEY);
        assert_eq!(NoteVerifierKey::new("PeterNeumann", *v.key()).unwrap(), v);
        assert_eq!(enoch().to_string(), ENOCH_VKEY);
        assert_eq!(enoch().key_id(), [0xaf, 0x0c, 0xfe, 0x78]);
    }

    #[test]
    fn key_string_manglings_are_rejected() {
        // As in Go's TestNewVerifier: every proper substring and every single-byte
        // increment must fail (the signer key string's half is in weightseal-log).
        {
            let good = PETER_VKEY;
            let parse = |k: &str| k.parse::<NoteVerifierKey>().is_ok();
            assert!(parse(good));
            let b = good.as_bytes();
            for i in 0..=b.len() {
                for j in i + 1..=b.len() {
                    if i != 0 || j != b.len() {
                        let k = std::str::from_utf8(&b[i..j]).unwrap();
                        assert!(!parse(k), "accepted {k:?}");
                    }
                }
            }
            for i in 0..b.len() {
                let mut m = b.to_vec();
                m[i] += 1;
                let k = String::from_utf8(m).unwrap();
                assert!(!parse(&k), "accepted {k:?}");
            }
        }
        // Wrong key length with adjusted key ID; unknown algorithm.
        assert!(matches!(
            "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==".parse::<NoteVerifierKey>(),
            Err(NoteError::InvalidVerifierKey { .. })
        ));
        assert_eq!(
            "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW".parse::<NoteVerifierKey>(),
            Err(NoteError::UnsupportedAlgorithm { alg: 0x65 })
        );
        assert!(matches!(
            "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW".parse::<NoteVerifierKey>(),
            Err(NoteError::KeyIdMismatch { .. })
        ));
        assert!(NoteVerifierKey::new("a b", *peter().key()).is_err());
        assert!(NoteVerifierKey::new("a+b", *peter().key()).is_err());
        assert!(NoteVerifierKey::new("", *peter().key()).is_err());
    }

    #[test]
    fn go_note_opens() {
        let note = format!("{TEXT}\n{PETER_SIG}");
        let n = open_note(&note, &[peter()]).unwrap();
        assert_eq!(n.body, TEXT);
        assert_eq!(n.verified_by, ["PeterNeumann"]);
        assert_eq!(open_note_bytes(note.as_bytes(), &[peter()]).unwrap(), n);
    }

    #[test]
    fn known_and_unknown_signatures() {
        let note = format!("{TEXT}\n{PETER_SIG}{ENOCH_SIG}");
        // One known, one unknown (ignored).
        assert_eq!(open_note(&note, &[peter()]).unwrap().verified_by, ["PeterNeumann"]);
        assert_eq!(open_note(&note, &[enoch()]).unwrap().verified_by, ["EnochRoot"]);
        // Both known.
        assert_eq!(
            open_note(&note, &[enoch(), peter()]).unwrap().verified_by,
            ["PeterNeumann", "EnochRoot"]
        );
        // None known.
        assert_eq!(
            open_note(&note, &[]),
            Err(NoteError::NoVerifiedSignature { signatures: 2 })
        );
        let other = test_signer("PeterNeumann", 9).verifier_key();
        assert_eq!(
            open_note(&note, &[other]),
            Err(NoteError::NoVerifiedSignature { signatures: 2 })
        );
        // Duplicates of a known signature are fine and reported once.
        let dup = format!("{TEXT}\n{PETER_SIG}{PETER_SIG}{ENOCH_SIG}{ENOCH_SIG}");
        assert_eq!(open_note(&dup, &[peter()]).unwrap().verified_by, ["PeterNeumann"]);
        // A duplicated identical verifier is not ambiguous.
        assert!(open_note(&dup, &[peter(), peter()]).is_ok());
    }

    #[test]
    fn signature_limits() {
        let ok = format!("{TEXT}\n{}", PETER_SIG.repeat(MAX_SIGNATURES));
        assert!(open_note(&ok, &[peter()]).is_ok());
        let too_many = format!("{TEXT}\n{}", PETER_SIG.repeat(MAX_SIGNATURES + 1));
        assert_eq!(
            open_note(&too_many, &[peter()]),
            Err(NoteError::TooManySignatures { found: 101, max: 100 })
        );
        assert_eq!(
            open_note(&too_many, &[]),
            Err(NoteError::TooManySignatures { found: 101, max: 100 })
        );
        let big_body = "a".repeat(MAX_NOTE_SIZE) + "\n";
        assert!(matches!(
            open_note(&format!("{big_body}\n{PETER_SIG}"), &[peter()]),
            Err(NoteError::TooLarge { .. })
        ));
        assert!(matches!(
            open_note_bytes(big_body.as_bytes(), &[peter()]),
            Err(NoteError::TooLarge { .. })
        ));
    }

    #[test]
    fn invalid_known_signature_rejects_note() {
        // Go's mangling: "ABCD" inserted into the base64 (71-byte blob).
        let bad = format!("{}ABCD{}", &PETER_SIG[..60], &PETER_SIG[60..]);
        let note = format!("{TEXT}\n{bad}");
        assert_eq!(
            open_note(&note, &[peter()]),
            Err(NoteError::InvalidSignature {
                line: 4,
                name: "PeterNeumann".to_owned(),
                key_id: "c74f20a3".to_owned()
            })
        );
        // Even with another good signature present.
        let note = format!("{TEXT}\n{PETER_SIG}{bad}");
        assert!(matches!(
            open_note(&note, &[peter()]),
            Err(NoteError::InvalidSignature { line: 5, .. })
        ));
        // The same mangling of an unknown key's line is ignored.
        let bad_enoch = format!("{}ABCD{}", &ENOCH_SIG[..60], &ENOCH_SIG[60..]);
        let note = format!("{TEXT}\n{PETER_SIG}{ENOCH_SIG}{bad_enoch}");
        assert_eq!(open_note(&note, &[peter()]).unwrap().verified_by, ["PeterNeumann"]);
    }

    #[test]
    fn tampered_body_is_rejected() {
        let tampered = TEXT.replace("answer", "Answer");
        let note = format!("{tampered}\n{PETER_SIG}");
        assert!(matches!(
            open_note(&note, &[peter()]),
            Err(NoteError::InvalidSignature { .. })
        ));
        // Extra body line.
        let note = format!("extra\n{TEXT}\n{PETER_SIG}");
        assert!(matches!(
            open_note(&note, &[peter()]),
            Err(NoteError::InvalidSignature { .. })
        ));
    }

    #[test]
    fn wrong_key_id_or_name_is_an_unknown_key() {
        // Go's probes: renamed signer, and a mangled key ID.
        let renamed = PETER_SIG.replace("PeterNeumann", "CarmenSandiego");
        assert_eq!(
            open_note(&format!("{TEXT}\n{renamed}"), &[peter()]),
            Err(NoteError::NoVerifiedSignature { signatures: 1 })
        );
        let wrong_id = PETER_SIG.replace("x08g", "xxxx");
        assert_eq!(
            open_note(&format!("{TEXT}\n{wrong_id}"), &[peter()]),
            Err(NoteError::NoVerifiedSignature { signatures: 1 })
        );
        // A signature by another key, labelled with a known name and key ID,
        // is checked against the known key and fails.
        let other = test_signer("PeterNeumann", 3);
        let signed = other.sign(TEXT);
        let sig_b64 = signed.rsplit(' ').next().unwrap().trim_end();
        let mut blob = BASE64.decode(sig_b64).unwrap();
        blob[..4].copy_from_slice(&peter().key_id());
        let forged = format!("{TEXT}\n\u{2014} PeterNeumann {}\n", BASE64.encode(&blob));
        assert!(matches!(
            open_note(&forged, &[peter()]),
            Err(NoteError::InvalidSignature { .. })
        ));
    }

    #[test]
    fn ambiguous_known_keys() {
        // Two different keys claiming the same name and key ID.
        let real = peter();
        let mut impostor = test_signer("PeterNeumann", 5).verifier_key();
        impostor.key_id = real.key_id;
        let note = format!("{TEXT}\n{PETER_SIG}");
        assert!(matches!(
            open_note(&note, &[real, impostor]),
            Err(NoteError::AmbiguousKey { .. })
        ));
    }

    #[test]
    fn malformed_notes() {
        let v = [peter()];
        assert_eq!(open_note(TEXT, &v), Err(NoteError::MissingBlankLine));
        assert_eq!(open_note(&format!("{TEXT}\n"), &v), Err(NoteError::NoSignatures));
        let no_nl = format!("{TEXT}\n{}", PETER_SIG.trim_end_matches('\n'));
        assert_eq!(open_note(&no_nl, &v), Err(NoteError::MissingTrailingNewline));
        assert_eq!(
            open_note(&format!("\x01{TEXT}\n{PETER_SIG}"), &v),
            Err(NoteError::ControlCharacter { line: 1, codepoint: 1 })
        );
        assert_eq!(
            open_note(&format!("{TEXT}\n{}", PETER_SIG.replace('\n', "\r\n")), &v),
            Err(NoteError::ControlCharacter { line: 4, codepoint: 13 })
        );
        let mut bytes = format!("{TEXT}\n{PETER_SIG}").into_bytes();
        bytes.insert(0, 0xff);
        assert_eq!(open_note_bytes(&bytes, &v), Err(NoteError::InvalidUtf8 { offset: 0 }));
        for (bad_sig, reason) in [
            (
                "\u{2014} Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n",
                "signature is not valid base64",
            ),
            ("Unexpected line.\n", "does not start with an em dash and a space"),
            ("- PeterNeumann x08go/ZJku\n", "does not start with an em dash and a space"),
            ("\u{2014} PeterNeumann\n", "expected a key name, a space and a signature"),
            ("\u{2014}  x08go/ZJku\n", "invalid key name"),
            ("\u{2014} Peter+Neumann x08go/ZJku\n", "invalid key name"),
            ("\u{2014} PeterNeumann x08go/ZJku!\n", "signature is not valid base64"),
            ("\u{2014} PeterNeumann AAAAAA==\n", "signature is shorter than 5 bytes"),
        ] {
            let note = format!("{TEXT}\n{PETER_SIG}{bad_sig}");
            match open_note(&note, &v) {
                Err(NoteError::MalformedSignatureLine { line: 5, reason: r, .. }) => {
                    assert_eq!(r, reason, "{bad_sig:?}");
                }
                other => panic!("{bad_sig:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn body_may_contain_blank_lines_and_dash_lines() {
        // The C2SP signed-note example: the body holds a blank line; the
        // signature (key not published) is parsed and ignored as unknown.
        let example = "Ognuno sta solo sul cuor della terra\n\
                       trafitto da un raggio di sole:\n\
                       \n\
                       ed è subito sera.\n\
                       \n\
                       \u{2014} quasimodo.example/salvatore NnugSzTjtVAewIS+Z/iJhUPeFDkO/5QQ2i5ddnGITLlC+EhfLW9oJKONrMouFSQU0xMcXxj99ihAQwaqP3ZekRwNtIc=\n";
        assert_eq!(
            open_note(example, &[peter()]),
            Err(NoteError::NoVerifiedSignature { signatures: 1 })
        );
        let s = test_signer("quasimodo.example/salvatore", 7);
        let body = "Ognuno sta solo sul cuor della terra\n\n\u{2014} not a signature\n\n";
        let note = s.sign(body);
        let opened = open_note(&note, &[s.verifier_key()]).unwrap();
        assert_eq!(opened.body, body);
        assert_eq!(opened.verified_by, ["quasimodo.example/salvatore"]);
    }

    #[test]
    fn verifier_key_round_trip() {
        let s = test_signer("example.com/log", 42);
        let vk: NoteVerifierKey = s.verifier_key().to_string().parse().unwrap();
        assert_eq!(vk, s.verifier_key());
    }

    fn sample_checkpoint() -> Checkpoint {
        Checkpoint {
            origin: "example.com/behind-the-sofa".to_owned(),
            size: 20852163,
            root: BASE64
                .decode("CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=")
                .unwrap()
                .try_into()
                .unwrap(),
            extensions: vec![],
        }
    }

    #[test]
    fn checkpoint_spec_example() {
        // The c2sp.org/tlog-checkpoint example body.
        let body = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";
        let c = Checkpoint::parse_body(body).unwrap();
        assert_eq!(c, sample_checkpoint());
        assert_eq!(c.to_body(), body);
        // The example's signature is from an unpublished key: ignored.
        let note = format!("{body}\n\u{2014} example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n");
        assert_eq!(
            open_note(&note, &[peter()]),
            Err(NoteError::NoVerifiedSignature { signatures: 1 })
        );
    }

    #[test]
    fn checkpoint_round_trips_and_signs() {
        let mut c = sample_checkpoint();
        for ext in [vec![], vec!["— extension ✓".to_owned(), "x".to_owned()]] {
            c.extensions = ext;
            c.validate().unwrap();
            assert_eq!(Checkpoint::parse_body(&c.to_body()).unwrap(), c);
            let s = test_signer(&c.origin, 11);
            let note = s.sign(&c.to_body());
            let opened = open_note(&note, &[s.verifier_key()]).unwrap();
            assert_eq!(Checkpoint::parse_body(&opened.body).unwrap(), c);
            // Another log's key does not open it.
            assert!(open_note(&note, &[test_signer(&c.origin, 12).verifier_key()]).is_err());
        }
        for size in [0, 1, u64::MAX] {
            c.size = size;
            assert_eq!(Checkpoint::parse_body(&c.to_body()).unwrap().size, size);
        }
    }

    #[test]
    fn checkpoint_validate_rejects_unrepresentable_values() {
        let mut c = sample_checkpoint();
        c.origin = String::new();
        assert_eq!(c.validate(), Err(NoteError::EmptyOrigin));
        c.origin = "a\nb".to_owned();
        assert!(matches!(c.validate(), Err(NoteError::InvalidCheckpointField { .. })));
        let mut c = sample_checkpoint();
        c.extensions = vec!["ok".to_owned(), String::new()];
        assert_eq!(c.validate(), Err(NoteError::EmptyExtensionLine { line: 5 }));
        c.extensions = vec!["a\nb".to_owned()];
        assert!(matches!(c.validate(), Err(NoteError::InvalidCheckpointField { .. })));
    }

    #[test]
    fn malformed_checkpoints() {
        let root = "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=";
        let parse = |size: &str, root: &str| Checkpoint::parse_body(&format!("o\n{size}\n{root}\n"));
        for size in ["007", "00", "01", "-1", "+1", "1a", "0x10", " 1", "1 ", "", "1.0", "١"] {
            assert!(
                matches!(parse(size, root), Err(NoteError::InvalidTreeSize { .. })),
                "size {size:?}"
            );
        }
        assert!(matches!(
            parse("18446744073709551616", root),
            Err(NoteError::InvalidTreeSize {
                reason: "does not fit in 64 bits",
                ..
            })
        ));
        assert_eq!(parse("0", root).unwrap().size, 0);
        assert_eq!(parse("18446744073709551615", root).unwrap().size, u64::MAX);
        for bad_root in [
            "",
            "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I",   // unpadded
            "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2J=",  // non-canonical
            "CsUYapGGPo4dkMgIAUqom_Xajj7h2fB2MPA3j2jxq2I=",  // URL alphabet
            "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxqw==",  // 31 bytes
            "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2IA",  // 33 bytes
            "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I= ", // trailing space
        ] {
            assert!(
                matches!(parse("1", bad_root), Err(NoteError::InvalidRootHash { .. })),
                "root {bad_root:?}"
            );
        }
        let b = |s: &str| Checkpoint::parse_body(s);
        assert_eq!(b(&format!("\n1\n{root}\n")), Err(NoteError::EmptyOrigin));
        assert_eq!(b(""), Err(NoteError::MissingTrailingNewline));
        assert_eq!(b(&format!("o\n1\n{root}")), Err(NoteError::MissingTrailingNewline));
        assert_eq!(b("o\n1\n"), Err(NoteError::CheckpointTooShort { lines: 2 }));
        assert_eq!(b("o\n"), Err(NoteError::CheckpointTooShort { lines: 1 }));
        assert_eq!(
            b(&format!("o\n1\n{root}\n\n")),
            Err(NoteError::EmptyExtensionLine { line: 4 })
        );
        assert_eq!(
            b(&format!("o\n1\n{root}\next\n\nmore\n")),
            Err(NoteError::EmptyExtensionLine { line: 5 })
        );
        assert!(matches!(
            b(&format!("o\r\n1\n{root}\n")),
            Err(NoteError::ControlCharacter { line: 1, codepoint: 13 })
        ));
        let c = b(&format!("o\n1\n{root}\nfirst ext\nsecond\n")).unwrap();
        assert_eq!(c.extensions, ["first ext", "second"]);
    }

    #[test]
    fn errors_quote_bounded_excerpts() {
        let long = "9".repeat(10_000);
        let err = Checkpoint::parse_body(&format!("o\n{long}\nAA==\n")).unwrap_err();
        assert!(err.to_string().len() < 200, "{err}");
        assert!(err.to_string().starts_with("line 2: invalid tree size"));
    }
}
