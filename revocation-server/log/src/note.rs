//! The log's note signer (c2sp.org/signed-note, Ed25519): the signer key, its secret key
//! string, and signing. The note format, verifier keys and opening notes are
//! `weightseal_verifier::revocation::note`; a note signed here is exactly what
//! [`open_note`](weightseal_verifier::revocation::note::open_note) accepts.

use std::fmt;
use std::str::FromStr;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use ed25519_dalek::{Signature, Signer as _, SigningKey};
use weightseal_verifier::revocation::note::{
    check_body, check_name, decode_key_of_type, encode_key_of_type, hex4, parse_key_id, KeyBlobError, NoteError,
    NoteVerifierKey, ALG_ED25519, MAX_NOTE_SIZE, SIG_PREFIX,
};

/// A note signer key: a key name, its key ID and an Ed25519 signing key.
///
/// Its string form is `PRIVATE+KEY+<name>+<key ID>+<base64(0x01 || seed)>`.
/// `Debug` does not print the secret.
#[derive(Clone)]
pub struct NoteSignerKey {
    /// The public half: name, key ID and public key.
    verifier: NoteVerifierKey,
    key: SigningKey,
}

impl fmt::Debug for NoteSignerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NoteSignerKey")
            .field("name", &self.name())
            .field("key_id", &hex4(&self.key_id()))
            .finish_non_exhaustive()
    }
}

impl NoteSignerKey {
    /// A signer key for `name`, computing the key ID.
    pub fn new(name: &str, key: SigningKey) -> Result<Self, NoteError> {
        // The verifier key checks the name and computes the key ID: one rule for both halves.
        let verifier = NoteVerifierKey::new(name, key.verifying_key())?;
        Ok(Self { verifier, key })
    }

    /// The key name.
    pub fn name(&self) -> &str {
        self.verifier.name()
    }

    /// The key ID.
    pub fn key_id(&self) -> [u8; 4] {
        self.verifier.key_id()
    }

    /// The Ed25519 signing key.
    pub fn signing_key(&self) -> &SigningKey {
        &self.key
    }

    /// The matching verifier key.
    pub fn verifier_key(&self) -> NoteVerifierKey {
        self.verifier.clone()
    }

    /// The secret key string `PRIVATE+KEY+<name>+<key ID>+<base64 seed>`.
    /// Handle it as a secret.
    pub fn to_key_string(&self) -> String {
        format!(
            "PRIVATE+KEY+{}+{}+{}",
            self.name(),
            hex4(&self.key_id()),
            encode_key_of_type(&self.key.to_bytes(), ALG_ED25519)
        )
    }

    /// Signs `body` and returns the full signed note; see [`sign_note`].
    pub fn sign(&self, body: &str) -> Result<String, NoteError> {
        sign_note_by(body, &[self])
    }
}

impl FromStr for NoteSignerKey {
    type Err = NoteError;

    fn from_str(s: &str) -> Result<Self, NoteError> {
        let bad = |reason| NoteError::InvalidSignerKey { reason };
        let rest = s
            .strip_prefix("PRIVATE+KEY+")
            .ok_or(bad("expected PRIVATE+KEY+<name>+<key ID>+<key>"))?;
        let (name, rest) = rest
            .split_once('+')
            .ok_or(bad("expected PRIVATE+KEY+<name>+<key ID>+<key>"))?;
        let (id_hex, key_b64) = rest
            .split_once('+')
            .ok_or(bad("expected PRIVATE+KEY+<name>+<key ID>+<key>"))?;
        check_name(name)?;
        let stated = parse_key_id(id_hex).ok_or(bad("key ID is not 8 hex digits"))?;
        let seed = decode_key_of_type(key_b64, ALG_ED25519).map_err(|e| match e {
            KeyBlobError::Base64 => bad("key is not valid base64"),
            KeyBlobError::Algorithm(alg) => NoteError::UnsupportedAlgorithm { alg },
            KeyBlobError::Length(_) => bad("Ed25519 seed is not 32 bytes"),
        })?;
        let signer = Self::new(name, SigningKey::from_bytes(&seed))?;
        if signer.key_id() != stated {
            return Err(NoteError::KeyIdMismatch {
                name: name.to_owned(),
                stated: hex4(&stated),
                computed: hex4(&signer.key_id()),
            });
        }
        Ok(signer)
    }
}

/// Signs `body` with the Ed25519 `key` under key name `name` and returns the
/// signed note: `body`, a blank line and one signature line.
///
/// `body` must be non-empty, end with a newline and hold no control
/// characters other than newline; the result must fit in [`MAX_NOTE_SIZE`].
pub fn sign_note(body: &str, name: &str, key: &SigningKey) -> Result<String, NoteError> {
    sign_note_by(body, &[&NoteSignerKey::new(name, key.clone())?])
}

/// Signs `body` with each of `keys` in order: the note carries one signature line per key.
/// A log in the middle of a key rotation signs with its new and its old key at once
/// (spec/revocation.md §5.2), so clients pinned to either accept the same note.
pub fn sign_note_by(body: &str, keys: &[&NoteSignerKey]) -> Result<String, NoteError> {
    check_body(body)?;
    if keys.is_empty() {
        return Err(NoteError::NoSignatures);
    }
    let mut note = format!("{body}\n");
    for k in keys {
        note.push_str(&signature_line(body, k));
    }
    finish_note(note)
}

/// `— <name> base64(key ID || signature)\n` over `body` (name and body already checked).
fn signature_line(body: &str, key: &NoteSignerKey) -> String {
    let signature = key.key.sign(body.as_bytes());
    let mut blob = Vec::with_capacity(4 + Signature::BYTE_SIZE);
    blob.extend_from_slice(&key.key_id());
    blob.extend_from_slice(&signature.to_bytes());
    format!("{SIG_PREFIX}{} {}\n", key.name(), BASE64.encode(blob))
}

fn finish_note(note: String) -> Result<String, NoteError> {
    if note.len() > MAX_NOTE_SIZE {
        return Err(NoteError::TooLarge {
            size: note.len(),
            max: MAX_NOTE_SIZE,
        });
    }
    Ok(note)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "test")]
mod tests {
    use super::*;
    use weightseal_verifier::revocation::note::open_note;

    // Test vectors from golang.org/x/mod/sumdb/note note_test.go.
    const PETER_VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
    const PETER_SKEY: &str = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
    const TEXT: &str = "If you think cryptography is the answer to your problem,\n\
                        then you don't know what your problem is.\n";
    const PETER_SIG: &str = "\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";

    fn test_signer(name: &str, seed: u8) -> NoteSignerKey {
        NoteSignerKey::new(name, SigningKey::from_bytes(&[seed; 32])).unwrap()
    }

    #[test]
    fn go_signer_key_reproduces_signature_byte_for_byte() {
        let s: NoteSignerKey = PETER_SKEY.parse().unwrap();
        assert_eq!(s.name(), "PeterNeumann");
        assert_eq!(s.key_id(), [0xc7, 0x4f, 0x20, 0xa3]);
        assert_eq!(s.verifier_key(), PETER_VKEY.parse().unwrap());
        assert_eq!(s.to_key_string(), PETER_SKEY);
        let want = format!("{TEXT}\n{PETER_SIG}");
        assert_eq!(s.sign(TEXT).unwrap(), want);
        assert_eq!(sign_note(TEXT, "PeterNeumann", s.signing_key()).unwrap(), want);
        assert_eq!(open_note(&want, &[s.verifier_key()]).unwrap().body(), TEXT);
        // Debug does not leak the seed.
        let dbg = format!("{s:?}");
        assert!(dbg.contains("PeterNeumann") && !dbg.contains("AYEKFA"));
    }

    #[test]
    fn signer_key_string_manglings_are_rejected() {
        // As in Go's TestNewSigner: every proper substring and every single-byte increment
        // must fail.
        let parse = |k: &str| k.parse::<NoteSignerKey>().is_ok();
        assert!(parse(PETER_SKEY));
        let b = PETER_SKEY.as_bytes();
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

    #[test]
    fn sign_rejects_bad_input() {
        let k = test_signer("x", 1);
        assert_eq!(k.sign(""), Err(NoteError::EmptyBody));
        assert_eq!(k.sign("abc"), Err(NoteError::MissingTrailingNewline));
        assert!(matches!(k.sign("a\tb\n"), Err(NoteError::ControlCharacter { .. })));
        assert!(matches!(
            sign_note("a\n", "bad name", k.signing_key()),
            Err(NoteError::InvalidKeyName { .. })
        ));
        assert!(matches!(
            sign_note("a\n", "a+b", k.signing_key()),
            Err(NoteError::InvalidKeyName { .. })
        ));
        assert_eq!(sign_note_by("a\n", &[]), Err(NoteError::NoSignatures));
        let big_body = "a".repeat(MAX_NOTE_SIZE) + "\n";
        assert!(matches!(k.sign(&big_body), Err(NoteError::TooLarge { .. })));
    }

    #[test]
    fn signer_key_round_trip_and_several_signers() {
        let s = test_signer("example.com/log", 42);
        let parsed: NoteSignerKey = s.to_key_string().parse().unwrap();
        assert_eq!(parsed.to_key_string(), s.to_key_string());
        assert_eq!(parsed.verifier_key(), s.verifier_key());
        let other = test_signer("witness.example/w", 43);
        let note = sign_note_by("body\n", &[&s, &other]).unwrap();
        assert_eq!(
            open_note(&note, &[s.verifier_key(), other.verifier_key()])
                .unwrap()
                .verified_by(),
            ["example.com/log", "witness.example/w"]
        );
    }
}
