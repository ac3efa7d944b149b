//! The server's request handling, through the real router (`oneshot`, no socket) over a
//! SQLite log in a scratch folder. First byte 0: POST /v1/submit with the rest as the body.
//! 1: GET of the rest as a path (tiles, proofs, notes). 2: the rest is an entry, which the
//! harness signs as the hub issuer and submits, so the body gets past the signature check
//! into the issuer policy and the append. No request may be answered with a 5xx (a panic
//! or an internal error on client input).
#![no_main]

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use axum::Router;
use libfuzzer_sys::fuzz_target;
use tower::ServiceExt as _;
use weightseal_log::policy::IssuerPolicy;
use weightseal_server::config::DatabaseUrl;
use weightseal_server::formats::Policy;
use weightseal_server::{app, open_store, AppState, Log, LogOptions};
use weightseal_verifier::revocation::entry::{Entry, SignedEntry, Submission};

struct Harness {
    rt: tokio::runtime::Runtime,
    router: Router,
}

fn harness() -> &'static Harness {
    static H: OnceLock<Harness> = OnceLock::new();
    H.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let hub = weightseal_fuzz::hub();
        let issuers = format!(
            r#"{{"issuers": [{{"name": "hub.example", "role": "hub", "public_key": "{}"}}]}}"#,
            hex_of(hub.verifying_key().as_bytes())
        );
        let policy = Policy::from(IssuerPolicy::from_json(&issuers).expect("the issuers file parses"));
        let dir = weightseal_fuzz::fresh_dir("server");
        let router = rt.block_on(async {
            let store = open_store(&DatabaseUrl::Sqlite(dir.join("log.db")))
                .await
                .expect("a SQLite store");
            let options = LogOptions {
                origin: weightseal_fuzz::ORIGIN.to_owned(),
                snapshot_ttl: Duration::from_secs(86_400),
            };
            let log = Log::open(store, weightseal_fuzz::log_key(), options, true)
                .await
                .expect("the log opens");
            app(AppState::new(Arc::new(log), policy))
        });
        Harness { rt, router }
    })
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fuzz_target!(|data: &[u8]| {
    let Some((mode, rest)) = data.split_first() else { return };
    let request = match mode % 3 {
        0 => Request::post("/v1/submit").body(Body::from(rest.to_vec())),
        1 => {
            let Ok(path) = std::str::from_utf8(rest) else { return };
            Request::get(format!("/{}", path.trim_start_matches('/'))).body(Body::empty())
        }
        _ => {
            let Ok(entry) = Entry::from_bytes(rest) else { return };
            let hub = weightseal_fuzz::hub();
            let entry = Entry {
                issuer: weightseal_fuzz::public(&hub),
                ..entry
            };
            let Ok(signed) = SignedEntry::sign(&entry, &hub) else {
                return;
            };
            let Ok(body) = (Submission {
                entry: signed,
                authority: None,
            })
            .to_bytes() else {
                return;
            };
            Request::post("/v1/submit").body(Body::from(body))
        }
    };
    let Ok(request) = request else { return };
    let h = harness();
    let response =
        h.rt.block_on(h.router.clone().oneshot(request))
            .expect("the router is infallible");
    assert!(
        !response.status().is_server_error(),
        "answered {} to client input",
        response.status()
    );
});
