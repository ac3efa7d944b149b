//! TLS for the PostgreSQL backend, chosen by the connection string's `sslmode` and
//! `sslrootcert` with libpq's meanings (rustls on the `ring` provider):
//!
//! | `sslmode` | TLS | server certificate |
//! |---|---|---|
//! | `disable` | never | — |
//! | `prefer` (the default) | when the server offers it | not checked (guards against passive eavesdropping only) |
//! | `require` | always; refused if the server does not offer it | not checked — unless `sslrootcert` is given, then as `verify-ca` (as libpq does) |
//! | `verify-ca` | always | chain to a root in `sslrootcert` |
//! | `verify-full` | always | chain to a root in `sslrootcert`, and the host name |
//!
//! `sslrootcert` names a PEM file of root certificates; the verify modes refuse to start
//! without one (there is no implicit system store, so a missing setting cannot silently
//! trust every public CA). tokio-postgres itself knows only `disable`/`prefer`/`require`
//! and no `sslrootcert`, so both settings are taken out of the string before it parses it.

use std::path::PathBuf;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};

/// How a connection is protected (libpq's `sslmode` values).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// No TLS.
    Disable,
    /// TLS when the server offers it, certificate unchecked.
    Prefer,
    /// TLS always, certificate unchecked (unless a root file is given).
    Require,
    /// TLS always, chain checked against the root file.
    VerifyCa,
    /// TLS always, chain and host name checked.
    VerifyFull,
}

impl SslMode {
    fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "disable" => Self::Disable,
            "prefer" => Self::Prefer,
            "require" => Self::Require,
            "verify-ca" => Self::VerifyCa,
            "verify-full" => Self::VerifyFull,
            _ => return None,
        })
    }

    /// The value as written in a connection string.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Disable => "disable",
            Self::Prefer => "prefer",
            Self::Require => "require",
            Self::VerifyCa => "verify-ca",
            Self::VerifyFull => "verify-full",
        }
    }
}

/// Why the TLS settings of a connection string cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PgTlsError {
    /// `sslmode` has a value libpq does not define (`allow` is not supported either: it
    /// would fall back to plaintext after a TLS failure).
    #[error("sslmode={found} is not one of disable, prefer, require, verify-ca, verify-full")]
    UnknownMode {
        /// The value found.
        found: String,
    },
    /// A verify mode without a root certificate file.
    #[error("sslmode={} needs sslrootcert=FILE (a PEM file of the CA certificates to trust)", mode.as_str())]
    RootCertNeeded {
        /// The mode asked for.
        mode: SslMode,
    },
    /// A setting appears twice.
    #[error("{key} is given twice")]
    Repeated {
        /// The setting.
        key: &'static str,
    },
    /// A quoted `sslmode`/`sslrootcert` value in the key=value form.
    #[error("a quoted {key} value is not supported; use the postgres:// URL form")]
    Quoted {
        /// The setting.
        key: &'static str,
    },
    /// A `%` escape in the URL form that is not two hex digits, or not UTF-8 once decoded.
    #[error("{key} is not validly percent-encoded")]
    BadEscape {
        /// The setting.
        key: &'static str,
    },
    /// The root certificate file cannot be read as PEM certificates.
    #[error("sslrootcert {}: {reason}", path.display())]
    RootCertUnreadable {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The root certificate file holds no certificate that rustls accepts as a root.
    #[error("sslrootcert {}: no usable CA certificate in it", path.display())]
    NoRoots {
        /// The file.
        path: PathBuf,
    },
    /// rustls refused to build the configuration.
    #[error("TLS setup: {0}")]
    Setup(String),
}

/// The TLS settings taken out of a connection string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgTls {
    /// The protection asked for.
    pub mode: SslMode,
    /// The PEM file of trusted roots, if given.
    pub root_cert: Option<PathBuf>,
}

impl PgTls {
    /// The mode tokio-postgres enforces (it only decides whether TLS is used; the
    /// certificate checks are ours).
    pub fn tokio_mode(&self) -> tokio_postgres::config::SslMode {
        match self.mode {
            SslMode::Disable => tokio_postgres::config::SslMode::Disable,
            SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => tokio_postgres::config::SslMode::Require,
        }
    }

    /// The connector: rustls on `ring`, with the certificate check the mode asks for.
    pub fn connector(&self) -> Result<tokio_postgres_rustls::MakeRustlsConnect, PgTlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier: Arc<dyn ServerCertVerifier> = match (self.mode, &self.root_cert) {
            (SslMode::VerifyCa | SslMode::VerifyFull, None) => {
                return Err(PgTlsError::RootCertNeeded { mode: self.mode });
            }
            (SslMode::Disable | SslMode::Prefer, _) | (SslMode::Require, None) => {
                Arc::new(NoCertificateCheck(provider.clone()))
            }
            (SslMode::Require | SslMode::VerifyCa, Some(path)) => {
                Arc::new(ChainOnly(webpki_verifier(path, provider.clone())?))
            }
            (SslMode::VerifyFull, Some(path)) => webpki_verifier(path, provider.clone())?,
        };
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| PgTlsError::Setup(e.to_string()))?
            // rustls's door for a verifier other than its built-in one (both of ours are
            // above: the webpki one for the verify modes, none for prefer/require).
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
    }
}

fn webpki_verifier(path: &PathBuf, provider: Arc<CryptoProvider>) -> Result<Arc<WebPkiServerVerifier>, PgTlsError> {
    let unreadable = |reason: String| PgTlsError::RootCertUnreadable {
        path: path.clone(),
        reason,
    };
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(path).map_err(|e| unreadable(e.to_string()))? {
        let cert = cert.map_err(|e| unreadable(e.to_string()))?;
        // A certificate rustls cannot use as a root is skipped; none at all is an error.
        let _ = roots.add(cert);
    }
    if roots.is_empty() {
        return Err(PgTlsError::NoRoots { path: path.clone() });
    }
    WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
        .build()
        .map_err(|e| PgTlsError::Setup(e.to_string()))
}

/// `prefer` and `require` without roots: encryption without authentication, as libpq does
/// it. The handshake signature is still checked against the certificate presented.
#[derive(Debug)]
struct NoCertificateCheck(Arc<CryptoProvider>);

impl ServerCertVerifier for NoCertificateCheck {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `verify-ca`: the full webpki check, except that a certificate for another host name is
/// accepted (libpq's meaning of the mode).
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// Takes `sslmode` and `sslrootcert` out of a connection string (URL or key=value form);
/// returns the rest, unchanged otherwise, and the settings (`prefer` when none is given).
pub fn split_tls_settings(conn: &str) -> Result<(String, PgTls), PgTlsError> {
    let mut mode: Option<String> = None;
    let mut root: Option<String> = None;
    let mut take = |key: &str, value: String| -> Result<bool, PgTlsError> {
        let (slot, name) = match key {
            "sslmode" => (&mut mode, "sslmode"),
            "sslrootcert" => (&mut root, "sslrootcert"),
            _ => return Ok(false),
        };
        if slot.replace(value).is_some() {
            return Err(PgTlsError::Repeated { key: name });
        }
        Ok(true)
    };
    let rest = if conn.starts_with("postgres://") || conn.starts_with("postgresql://") {
        match conn.split_once('?') {
            None => conn.to_owned(),
            Some((head, query)) => {
                let mut kept = Vec::new();
                for pair in query.split('&') {
                    let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                    let key = static_key(k);
                    let value = match key {
                        Some(key) => percent_decode(v).ok_or(PgTlsError::BadEscape { key })?,
                        None => String::new(),
                    };
                    if !take(k, value)? {
                        kept.push(pair);
                    }
                }
                if kept.is_empty() {
                    head.to_owned()
                } else {
                    format!("{head}?{}", kept.join("&"))
                }
            }
        }
    } else {
        let mut out = String::with_capacity(conn.len());
        let mut last = 0;
        for (start, end) in kv_tokens(conn) {
            let token = &conn[start..end];
            let (k, v) = token.split_once('=').unwrap_or((token, ""));
            let k = k.trim();
            if let Some(key) = static_key(k) {
                if v.trim_start().starts_with('\'') {
                    return Err(PgTlsError::Quoted { key });
                }
                take(k, v.trim().to_owned())?;
                out.push_str(&conn[last..start]);
                last = end;
            }
        }
        out.push_str(&conn[last..]);
        out
    };
    let mode = match mode {
        None => SslMode::Prefer,
        Some(m) => SslMode::parse(&m).ok_or(PgTlsError::UnknownMode { found: m })?,
    };
    Ok((
        rest,
        PgTls {
            mode,
            root_cert: root.map(PathBuf::from),
        },
    ))
}

fn static_key(k: &str) -> Option<&'static str> {
    match k {
        "sslmode" => Some("sslmode"),
        "sslrootcert" => Some("sslrootcert"),
        _ => None,
    }
}

/// Byte ranges of the `key=value` tokens of libpq's key=value form: separated by
/// whitespace outside single quotes, `\` escaping inside them.
fn kv_tokens(s: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = None;
    let mut quoted = false;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' => escaped = true,
            '\'' => quoted = !quoted,
            c if c.is_whitespace() && !quoted => {
                if let Some(s0) = start.take() {
                    out.push((s0, i));
                }
                continue;
            }
            _ => {}
        }
        if start.is_none() {
            start = Some(i);
        }
    }
    if let Some(s0) = start {
        out.push((s0, s.len()));
    }
    out
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = s.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    fn split(s: &str) -> (String, SslMode, Option<PathBuf>) {
        let (rest, tls) = split_tls_settings(s).unwrap();
        (rest, tls.mode, tls.root_cert)
    }

    #[test]
    fn url_form() {
        assert_eq!(
            split("postgres://u@h/db"),
            ("postgres://u@h/db".into(), SslMode::Prefer, None)
        );
        assert_eq!(
            split("postgres://u@h/db?sslmode=verify-full&sslrootcert=%2Ftmp%2Fca%20x.pem&options=-c%20a%3Db"),
            (
                "postgres://u@h/db?options=-c%20a%3Db".into(),
                SslMode::VerifyFull,
                Some(PathBuf::from("/tmp/ca x.pem"))
            )
        );
        assert_eq!(
            split("postgresql://h/db?application_name=x&sslmode=disable"),
            ("postgresql://h/db?application_name=x".into(), SslMode::Disable, None)
        );
    }

    #[test]
    fn key_value_form() {
        assert_eq!(
            split("host=h password='a b  sslmode=x' sslmode=require dbname=t"),
            (
                "host=h password='a b  sslmode=x'  dbname=t".into(),
                SslMode::Require,
                None
            )
        );
        assert_eq!(
            split("sslrootcert=/r.pem host=h sslmode=verify-ca"),
            (" host=h ".into(), SslMode::VerifyCa, Some(PathBuf::from("/r.pem")))
        );
    }

    #[test]
    fn bad_settings_are_refused_by_name() {
        for (s, want) in [
            ("postgres://h/db?sslmode=allow", "sslmode=allow is not one of"),
            (
                "postgres://h/db?sslmode=require&sslmode=disable",
                "sslmode is given twice",
            ),
            ("host=h sslrootcert='/a b'", "quoted sslrootcert"),
            (
                "postgres://h/db?sslrootcert=%zz",
                "sslrootcert is not validly percent-encoded",
            ),
        ] {
            let err = split_tls_settings(s).unwrap_err().to_string();
            assert!(err.contains(want), "{s}: {err}");
        }
        for mode in ["verify-ca", "verify-full"] {
            let (_, tls) = split_tls_settings(&format!("postgres://h/db?sslmode={mode}")).unwrap();
            let err = tls.connector().err().unwrap().to_string();
            assert!(err.contains("needs sslrootcert=FILE"), "{err}");
        }
    }

    #[test]
    fn root_file_problems_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "no certificate here\n").unwrap();
        let missing = dir.path().join("missing.pem");
        for (path, want) in [(&empty, "no usable CA certificate"), (&missing, "missing.pem")] {
            let tls = PgTls {
                mode: SslMode::VerifyFull,
                root_cert: Some(path.clone()),
            };
            let err = tls.connector().err().unwrap().to_string();
            assert!(err.contains(want), "{err}");
        }
    }
}
