//! `weightseal-server`: the weightseal revocation service.
//!
//! ```text
//! weightseal-server serve --listen 127.0.0.1:8080 --key LOG_KEY.pem --issuers ISSUERS.json \
//!     [--previous-key OLD_LOG_KEY.pem] \
//!     [--database sqlite:PATH | postgres://USER@HOST:PORT/DB] [--origin NAME] \
//!     [--snapshot-ttl 24h] [--resign-interval 1h] [--sync-interval 1s] [--log-format text|json]
//!     [--witness URL=WITNESS_KEY …]
//! weightseal-server export DIR --key LOG_KEY.pem [--previous-key OLD_LOG_KEY.pem] [--database …] \
//!     [--origin NAME] [--fresh-snapshot]
//! weightseal-server pubkey --key LOG_KEY.pem [--origin NAME]
//! weightseal-server witness --listen ADDR --key WITNESS_KEY.pem --name NAME --log LOG_KEY… \
//!     --state WITNESS.db
//! ```
//!
//! `serve` answers the HTTP API of spec/revocation.md: the C2SP tlog-tiles `GET /checkpoint`,
//! `/tile/<L>/<N>[.p/<w>]` and `/tile/entries/<N>[.p/<w>]`, and `GET /v1/snapshot`,
//! `/v1/publication`, `/v1/proof/consistency/{old}/{new}`,
//! `/v1/proof/inclusion/{size}/{index}`, `/v1/health`, `/metrics`, and `POST /v1/submit`
//! (`Content-Type: application/cbor`, at most 1 MiB). The log key is an ed25519 PKCS#8 PEM
//! private key (`weightseal keygen` writes one) that only its owner may read; the issuers file
//! says which issuer keys may revoke what. The default database is the SQLite file
//! `weightseal-revocations.db` in the current folder, created on first start; with
//! `postgres://…` several replicas (same key, same origin) share one log. A snapshot is signed
//! after every append and every `--resign-interval`; it expires `--snapshot-ttl` after issue.
//! With `--listen 127.0.0.1:0` a free port is chosen; the first line on standard output is
//! always `listening on http://ADDR`. SIGTERM or Ctrl-C stops accepting, finishes the requests
//! in flight and exits. Logs go to standard error (`RUST_LOG` filters them, default `info`).
//!
//! Every new checkpoint is submitted to each `--witness` (C2SP tlog-witness) and published with
//! the cosignatures that verify under the given witness key.
//!
//! `witness` runs a C2SP tlog-witness witness for the logs whose note verifier keys are given
//! with `--log`, keeping the latest checkpoint it cosigned for each in the SQLite file
//! `--state`; its first output line is `listening on http://ADDR`, the second
//! `witness key <NAME+ID+KEY>` (what logs and clients configure).
//!
//! `export DIR` writes the current publication as static files with the same paths (serve DIR
//! with any static file server); `--fresh-snapshot` signs a new snapshot first (run it from a
//! scheduler so the static copy never expires). `pubkey` prints the note verifier key that
//! clients pin (`<origin>+<key id>+<base64 key>`).
//!
//! Key rotation (spec/revocation.md §5.2): `--key NEW --previous-key OLD` (on `serve` or
//! `export`) appends the rotation statement in which OLD announces NEW, unless the log holds it,
//! and signs every note with both keys: the transition period, during which clients pinned to
//! either key sync. Clients that synced the statement follow NEW. Restarting with `--key NEW`
//! alone ends the transition; a `--key` the log rotated away from is refused.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _};
use clap::{Parser, Subcommand, ValueEnum};
use weightseal_log::cosignature::WitnessSigner;
use weightseal_server::config::{parse_duration, DatabaseUrl, DEFAULT_DATABASE, DEFAULT_ORIGIN};
use weightseal_server::formats::Policy;
use weightseal_server::keys::load_note_signer;
use weightseal_server::witness::{self, Witness, WitnessEndpoint};
use weightseal_server::{app, export, open_store, AppState, Log, LogOptions};
use weightseal_verifier::revocation::note::NoteVerifierKey;

#[derive(Debug, Parser)]
#[command(name = "weightseal-server", version, about = "The weightseal revocation service")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the revocation log over HTTP.
    Serve {
        /// Address to listen on (port 0 picks a free port).
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: String,
        /// The log's ed25519 private key (PKCS#8 PEM, mode 0600).
        #[arg(long)]
        key: PathBuf,
        /// During a key rotation: the key being retired (PKCS#8 PEM, mode 0600). The log
        /// appends the statement in which it announces --key and signs with both.
        #[arg(long)]
        previous_key: Option<PathBuf>,
        /// The issuers file (JSON): who may revoke what.
        #[arg(long)]
        issuers: PathBuf,
        /// sqlite:PATH or postgres://USER@HOST:PORT/DB.
        #[arg(long, default_value = DEFAULT_DATABASE)]
        database: String,
        /// Log origin, also the note key name clients pin.
        #[arg(long, default_value = DEFAULT_ORIGIN)]
        origin: String,
        /// How long a snapshot is valid after it is signed.
        #[arg(long, default_value = "24h", value_parser = parse_duration)]
        snapshot_ttl: Duration,
        /// How often to sign a fresh snapshot even when nothing changed.
        #[arg(long, default_value = "1h", value_parser = parse_duration)]
        resign_interval: Duration,
        /// How often to pick up what other replicas appended (shared PostgreSQL).
        #[arg(long, default_value = "1s", value_parser = parse_duration)]
        sync_interval: Duration,
        /// Log line format on standard error.
        #[arg(long, value_enum, default_value = "text")]
        log_format: LogFormat,
        /// A witness to have every checkpoint cosigned by: its URL and its key
        /// (`https://witness.example=NAME+ID+KEY`); repeat for several.
        #[arg(long = "witness", value_parser = WitnessEndpoint::parse)]
        witnesses: Vec<WitnessEndpoint>,
    },
    /// Run a witness (C2SP tlog-witness) for the given logs.
    Witness {
        /// Address to listen on (port 0 picks a free port).
        #[arg(long, default_value = "127.0.0.1:8081")]
        listen: String,
        /// The witness's ed25519 private key (PKCS#8 PEM, mode 0600).
        #[arg(long)]
        key: PathBuf,
        /// The witness's name (its key name, e.g. witness.example/w1).
        #[arg(long)]
        name: String,
        /// A log to witness: its note verifier key (`<origin>+<key id>+<base64>`); repeat.
        #[arg(long = "log", required = true)]
        logs: Vec<String>,
        /// The witness's state (SQLite file, created if needed).
        #[arg(long)]
        state: PathBuf,
    },
    /// Write the whole publication as static files under DIR.
    Export {
        /// The folder to write (created if needed).
        dir: PathBuf,
        /// The log's ed25519 private key (PKCS#8 PEM, mode 0600).
        #[arg(long)]
        key: PathBuf,
        /// During a key rotation: the key being retired, as for `serve`.
        #[arg(long)]
        previous_key: Option<PathBuf>,
        /// sqlite:PATH or postgres://USER@HOST:PORT/DB.
        #[arg(long, default_value = DEFAULT_DATABASE)]
        database: String,
        /// Log origin, also the note key name clients pin.
        #[arg(long, default_value = DEFAULT_ORIGIN)]
        origin: String,
        /// Lifetime of a snapshot signed by this command.
        #[arg(long, default_value = "24h", value_parser = parse_duration)]
        snapshot_ttl: Duration,
        /// Sign (and record) a new snapshot before exporting.
        #[arg(long)]
        fresh_snapshot: bool,
    },
    /// Print the note verifier key clients pin.
    Pubkey {
        /// The log's ed25519 private key (PKCS#8 PEM, mode 0600).
        #[arg(long)]
        key: PathBuf,
        /// Log origin, also the note key name.
        #[arg(long, default_value = DEFAULT_ORIGIN)]
        origin: String,
    },
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colour codes only when a person reads stderr: in a log file or a collector they are noise.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}

async fn open_log(
    key: &std::path::Path,
    previous_key: Option<&std::path::Path>,
    origin: &str,
    database: &str,
    snapshot_ttl: Duration,
    resign: bool,
) -> anyhow::Result<Arc<Log>> {
    let signer = load_note_signer(key, origin)?;
    let previous = previous_key
        .map(|p| load_note_signer(p, origin).with_context(|| format!("--previous-key {}", p.display())))
        .transpose()?;
    let db = DatabaseUrl::parse(database).map_err(anyhow::Error::msg)?;
    let store = open_store(&db)
        .await
        .with_context(|| format!("cannot open the database {}", db.describe()))?;
    let options = LogOptions {
        origin: origin.to_owned(),
        snapshot_ttl,
    };
    let log = Log::open_rotating(store, signer, previous, options, resign)
        .await
        .with_context(|| format!("cannot load the log from {}", db.describe()))?;
    Ok(Arc::new(log))
}

#[allow(
    clippy::too_many_arguments,
    reason = "one parameter per `serve` flag, handed over from the parsed command line"
)]
async fn serve(
    listen: String,
    key: PathBuf,
    previous_key: Option<PathBuf>,
    issuers: PathBuf,
    database: String,
    origin: String,
    snapshot_ttl: Duration,
    resign_interval: Duration,
    sync_interval: Duration,
    witnesses: Vec<WitnessEndpoint>,
) -> anyhow::Result<()> {
    if resign_interval >= snapshot_ttl {
        bail!("--resign-interval must be shorter than --snapshot-ttl, or snapshots expire between signings");
    }
    let policy = Policy::load(&issuers).map_err(anyhow::Error::msg)?;
    let log = open_log(&key, previous_key.as_deref(), &origin, &database, snapshot_ttl, true).await?;
    if !witnesses.is_empty() {
        log.set_witnesses(witnesses).await;
        let report = log
            .witness_now()
            .await
            .context("cannot submit the checkpoint to the witnesses")?;
        tracing::info!(cosigned_by = ?report.cosigned_by, failed = report.failed.len(), "checkpoint witnessed");
    }
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let addr = listener.local_addr()?;
    {
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening on http://{addr}")?;
        out.flush()?;
    }
    let published = log.published();
    tracing::info!(
        %addr,
        store = %log.store().describe(),
        origin = %origin,
        verifier_key = %log.verifier_key(),
        previous_key = ?log.previous_key().map(|k| k.to_string()),
        size = published.size,
        version = published.version,
        "serving"
    );
    let state = AppState::new(Arc::clone(&log), policy);
    let metrics = Arc::clone(&state.metrics);

    let resign_log = Arc::clone(&log);
    let resigner = tokio::spawn(async move {
        let mut tick = tokio::time::interval(resign_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            match resign_log.resign().await {
                Ok(p) => tracing::info!(
                    version = p.version,
                    size = p.size,
                    expires = p.expires,
                    "snapshot re-signed"
                ),
                Err(e) => {
                    metrics.resign_failed();
                    tracing::error!(error = %e, "scheduled re-signing failed");
                }
            }
        }
    });
    let sync_log = Arc::clone(&log);
    let syncer = tokio::spawn(async move {
        let mut tick = tokio::time::interval(sync_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = sync_log.refresh().await {
                tracing::warn!(error = %e, "cannot catch up with the store");
            }
        }
    });

    let result = axum::serve(listener, app(state))
        .with_graceful_shutdown(shutdown_signal())
        .await;
    resigner.abort();
    syncer.abort();
    result.context("server failed")?;
    tracing::info!("stopped");
    Ok(())
}

async fn run_witness(
    listen: String,
    key: PathBuf,
    name: String,
    logs: Vec<String>,
    state: PathBuf,
) -> anyhow::Result<()> {
    let signing = weightseal_server::keys::read_log_key(&key).map_err(anyhow::Error::msg)?;
    let signer = WitnessSigner::new(&name, signing).map_err(|e| anyhow::anyhow!("--name: {e}"))?;
    let logs = logs
        .iter()
        .map(|k| {
            k.parse::<NoteVerifierKey>()
                .map_err(|e| anyhow::anyhow!("--log {k:?}: {e} (hint: `weightseal-server pubkey` prints a log's key)"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let witness = Witness::open(signer, logs, &state).map_err(|e| anyhow::anyhow!("{e}"))?;
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let addr = listener.local_addr()?;
    {
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening on http://{addr}")?;
        writeln!(out, "witness key {}", witness.public())?;
        out.flush()?;
    }
    tracing::info!(%addr, key = %witness.public(), state = %state.display(), "witnessing");
    axum::serve(listener, witness::router(std::sync::Arc::new(witness)))
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("witness failed")?;
    Ok(())
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve {
            listen,
            key,
            previous_key,
            issuers,
            database,
            origin,
            snapshot_ttl,
            resign_interval,
            sync_interval,
            log_format,
            witnesses,
        } => {
            init_logging(log_format);
            serve(
                listen,
                key,
                previous_key,
                issuers,
                database,
                origin,
                snapshot_ttl,
                resign_interval,
                sync_interval,
                witnesses,
            )
            .await
        }
        Command::Witness {
            listen,
            key,
            name,
            logs,
            state,
        } => {
            init_logging(LogFormat::Text);
            run_witness(listen, key, name, logs, state).await
        }
        Command::Export {
            dir,
            key,
            previous_key,
            database,
            origin,
            snapshot_ttl,
            fresh_snapshot,
        } => {
            init_logging(LogFormat::Text);
            let log = open_log(
                &key,
                previous_key.as_deref(),
                &origin,
                &database,
                snapshot_ttl,
                fresh_snapshot,
            )
            .await?;
            let summary = export::export(&log, &dir)
                .await
                .with_context(|| format!("cannot export to {}", dir.display()))?;
            println!(
                "exported {} files to {}: size {}, snapshot version {}",
                summary.paths.len(),
                dir.display(),
                summary.size,
                summary.version
            );
            Ok(())
        }
        Command::Pubkey { key, origin } => {
            let signer = load_note_signer(&key, &origin)?;
            println!("{}", signer.verifier_key());
            Ok(())
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
