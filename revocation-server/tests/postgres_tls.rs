//! The PostgreSQL backend over TLS, as the connection string's `sslmode`/`sslrootcert` ask,
//! against the local server (127.0.0.1:5432) with a certificate made by this test.
//!
//! Setup (done here, once per server, and kept): a CA and a server certificate for
//! `localhost` (not for `127.0.0.1`) are generated with rcgen and installed in
//! `<data_directory>/weightseal-test-tls/` (key owned by the server's user, mode 0600);
//! `ssl_cert_file`/`ssl_key_file` are pointed at them with `ALTER SYSTEM` and the
//! configuration is reloaded. The files stay with the cluster, so a restart still finds
//! them; plain connections (`sslmode=disable`/`prefer`, trust auth) keep working. The
//! test must therefore run on the database host as root or as the server's user; when
//! it cannot, it fails saying what is missing (WEIGHTSEAL_SKIP_POSTGRES=1 skips it).
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test setup")]

mod common;

use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::PathBuf;
use std::time::Duration;

use weightseal_server::config::DatabaseUrl;
use weightseal_server::store::PostgresStore;

const BASE: &str = "postgres://postgres@127.0.0.1:5432/test";
const TLS_DIR: &str = "weightseal-test-tls";

/// A CA, and a server certificate and key for `localhost` signed by it (PEM).
fn make_pki() -> (String, String, String) {
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "weightseal test CA");
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, rcgen::KeyPair::generate().unwrap()).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    (ca.pem(), cert.pem(), key.serialize_pem())
}

async fn plain_client() -> tokio_postgres::Client {
    let connect = tokio_postgres::connect(BASE, tokio_postgres::NoTls);
    let (client, conn) = match tokio::time::timeout(Duration::from_secs(5), connect).await {
        Ok(Ok(pair)) => pair,
        Ok(Err(e)) => panic!("PostgreSQL not reachable at {BASE}: {e}; set WEIGHTSEAL_SKIP_POSTGRES=1 to skip"),
        Err(_) => panic!("PostgreSQL not reachable at {BASE}: timed out; set WEIGHTSEAL_SKIP_POSTGRES=1 to skip"),
    };
    tokio::spawn(conn);
    client
}

/// Installs the test certificate (once) and turns TLS on with it; returns the CA file.
/// Several test threads and binaries may race here: the files are written into a fresh
/// folder that is renamed into place, so one complete set wins.
async fn tls_server() -> PathBuf {
    let client = plain_client().await;
    let data_dir: String = client.query_one("SHOW data_directory", &[]).await.unwrap().get(0);
    let data_dir = PathBuf::from(data_dir);
    let missing = |what: &str, e: &dyn std::fmt::Display| -> ! {
        panic!(
            "cannot set up TLS on the PostgreSQL at {BASE}: {what}: {e}. This test installs a certificate in \
             the server's data directory ({}), so it must run on the database host as root or as the server's \
             user; set WEIGHTSEAL_SKIP_POSTGRES=1 to skip",
            data_dir.display()
        )
    };
    let owner = std::fs::metadata(&data_dir).unwrap_or_else(|e| missing("the data directory is not readable here", &e));
    let dir = data_dir.join(TLS_DIR);
    if !dir.join("server.key").exists() {
        let staging = data_dir.join(format!("{TLS_DIR}.{}", common::unique_name("new")));
        std::fs::create_dir(&staging).unwrap_or_else(|e| missing("cannot write to the data directory", &e));
        let (ca, cert, key) = make_pki();
        for (name, text, mode) in [
            ("ca.crt", &ca, 0o644),
            ("server.crt", &cert, 0o644),
            ("server.key", &key, 0o600),
        ] {
            let path = staging.join(name);
            std::fs::write(&path, text).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            std::os::unix::fs::chown(&path, Some(owner.uid()), Some(owner.gid()))
                .unwrap_or_else(|e| missing("cannot give the key to the server's user", &e));
        }
        std::os::unix::fs::chown(&staging, Some(owner.uid()), Some(owner.gid())).unwrap();
        if std::fs::rename(&staging, &dir).is_err() {
            // Another run installed its set first: use that one.
            let _ = std::fs::remove_dir_all(&staging);
        }
    }
    let cert_file = dir.join("server.crt").display().to_string();
    let current: String = client.query_one("SHOW ssl_cert_file", &[]).await.unwrap().get(0);
    let ssl: String = client.query_one("SHOW ssl", &[]).await.unwrap().get(0);
    if current != cert_file || ssl != "on" {
        let key_file = dir.join("server.key").display().to_string();
        for sql in [
            "ALTER SYSTEM SET ssl = on".to_owned(),
            format!("ALTER SYSTEM SET ssl_cert_file = '{cert_file}'"),
            format!("ALTER SYSTEM SET ssl_key_file = '{key_file}'"),
        ] {
            client
                .batch_execute(&sql)
                .await
                .unwrap_or_else(|e| missing("ALTER SYSTEM failed (is the user a superuser?)", &e));
        }
        client.batch_execute("SELECT pg_reload_conf()").await.unwrap();
    }
    dir.join("ca.crt")
}

/// A fresh schema's URL (plain), or `None` when PostgreSQL tests are skipped.
async fn backend() -> Option<(common::Backend, String)> {
    let backend = common::postgres().await?;
    let DatabaseUrl::Postgres(url) = &backend.url else {
        unreachable!()
    };
    let url = url.clone();
    Some((backend, url))
}

async fn connect(url: &str) -> Result<PostgresStore, String> {
    PostgresStore::connect(url).await.map_err(|e| e.to_string())
}

/// The server reloads its configuration asynchronously: wait until the test CA's
/// certificate is served.
async fn connect_when_ready(url: &str) -> PostgresStore {
    let mut last = String::new();
    for _ in 0..50 {
        match connect(url).await {
            Ok(store) => return store,
            Err(e) => last = e,
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("a verify-full connection with the test CA never succeeded: {last}")
}

#[tokio::test]
async fn each_sslmode_does_what_it_says() {
    let Some((_guard, url)) = backend().await else { return };
    let ca = tls_server().await;
    let ca_param = format!("sslrootcert={}", ca.display());
    let localhost = url.replacen("127.0.0.1", "localhost", 1);

    // verify-full: chain to our CA and the host name `localhost` — encrypted.
    let store = connect_when_ready(&format!("{localhost}&sslmode=verify-full&{ca_param}")).await;
    let version = store.tls_version().await.unwrap();
    assert!(
        version.as_deref().is_some_and(|v| v.starts_with("TLSv1.")),
        "{version:?}"
    );

    // require and prefer (the default) encrypt when the server offers TLS; disable does not.
    for (mode, encrypted) in [("&sslmode=require", true), ("", true), ("&sslmode=disable", false)] {
        let store = connect(&format!("{url}{mode}")).await.unwrap();
        assert_eq!(store.tls_version().await.unwrap().is_some(), encrypted, "{mode:?}");
    }

    // verify-ca checks the chain only: 127.0.0.1 is not the certificate's name, yet accepted.
    let store = connect(&format!("{url}&sslmode=verify-ca&{ca_param}")).await.unwrap();
    assert!(store.tls_version().await.unwrap().is_some());
}

#[tokio::test]
async fn verify_full_refuses_another_host_name_and_an_untrusted_ca() {
    let Some((_guard, url)) = backend().await else { return };
    let ca = tls_server().await;
    let localhost = url.replacen("127.0.0.1", "localhost", 1);
    connect_when_ready(&format!("{localhost}&sslmode=verify-full&sslrootcert={}", ca.display())).await;

    // The certificate names `localhost`; connecting to 127.0.0.1 must fail the name check.
    let err = connect(&format!("{url}&sslmode=verify-full&sslrootcert={}", ca.display()))
        .await
        .expect_err("verify-full accepted a certificate for another host name");
    assert!(err.contains("certificate not valid for name \"127.0.0.1\""), "{err}");

    // A CA the server's certificate does not chain to.
    let other = tempfile::tempdir().unwrap();
    let other_ca = other.path().join("other-ca.crt");
    std::fs::write(&other_ca, make_pki().0).unwrap();
    for mode in ["verify-full", "verify-ca", "require"] {
        let err = connect(&format!(
            "{localhost}&sslmode={mode}&sslrootcert={}",
            other_ca.display()
        ))
        .await
        .err()
        .unwrap_or_else(|| panic!("{mode} accepted a certificate from an untrusted CA"));
        assert!(err.contains("invalid peer certificate"), "{mode}: {err}");
    }
}

/// A server that answers the TLS request with `N` (no TLS), then hangs up.
async fn server_without_tls() -> u16 {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let mut request = [0u8; 8];
            if sock.read_exact(&mut request).await.is_ok() {
                let _ = sock.write_all(b"N").await;
            }
        }
    });
    port
}

#[tokio::test]
async fn require_refuses_a_server_that_does_not_offer_tls() {
    let port = server_without_tls().await;
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.crt");
    std::fs::write(&ca, make_pki().0).unwrap();
    let base = format!("postgres://postgres@127.0.0.1:{port}/test");
    for query in [
        "sslmode=require".to_owned(),
        format!("sslmode=verify-full&sslrootcert={}", ca.display()),
    ] {
        let err = connect(&format!("{base}?{query}"))
            .await
            .expect_err("connected without TLS");
        assert!(err.contains("server does not support TLS"), "{query}: {err}");
    }
}
