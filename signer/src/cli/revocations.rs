//! `weightseal revocations sync|status|bundle`: manage the local revocation state.

use std::path::PathBuf;

use anyhow::anyhow;
use clap::{Args, Subcommand};
use serde_json::json;

use super::output::{bytes, utc_time};
use weightseal_verifier::RevocationSource;

use super::revstate::{self, StateArgs};
use super::{exit, Ctx, Failure, Outcome, Report};

#[derive(Debug, Clone, Args)]
#[command(after_help = "\
Exit status: sync: 0 synced, 1 the sync was refused or failed (the held state is unchanged);
status: 0 the held state is fresh, 1 never synced or expired; bundle: 0 written, 1 nothing
fresh to bundle or the write failed; 2 the command could not run (bad arguments, no or a
different --revocation-key).")]
pub struct RevocationsArgs {
    #[command(subcommand)]
    pub command: RevocationsCommand,
}

#[derive(Debug, Clone, Subcommand)]
pub enum RevocationsCommand {
    /// Fetch the newest signed list into the state folder, verifying every rule.
    Sync(SyncArgs),
    /// Show what the state folder holds: size, snapshot version, expiry, freshness, counts.
    Status(StatusArgs),
    /// Write the held state as one bundle file, for machines without network access.
    Bundle(BundleArgs),
}

#[derive(Debug, Clone, Args)]
pub struct SyncArgs {
    /// An http:// URL (live server or static export), an export folder, or a bundle file.
    #[arg(long, value_name = "URL_OR_DIR_OR_BUNDLE")]
    pub revocations: String,
    #[command(flatten)]
    pub state: StateArgs,
}

#[derive(Debug, Clone, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub state: StateArgs,
}

#[derive(Debug, Clone, Args)]
pub struct BundleArgs {
    /// The bundle file to write.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    #[command(flatten)]
    pub state: StateArgs,
}

pub fn run(args: &RevocationsArgs, _ctx: Ctx) -> Outcome {
    match &args.command {
        RevocationsCommand::Sync(a) => sync(a),
        RevocationsCommand::Status(a) => status(a),
        RevocationsCommand::Bundle(a) => bundle(a),
    }
}

fn sync(args: &SyncArgs) -> Outcome {
    let source = RevocationSource::parse(&args.revocations).map_err(|e| revstate::state_failure(&e))?;
    let name = source.describe();
    let mut local = args.state.open()?;
    let now = revstate::now()?;
    let started = std::time::Instant::now();
    let report = local.sync(&source, now).map_err(|e| {
        Failure::refused(anyhow!("revocation sync from {name} refused: {e}"))
            .hint("the held revocation state is unchanged")
    })?;
    let dir = local.dir().to_path_buf();
    let elapsed = started.elapsed();
    let human = format!(
        "synced {name}\n  entries:         {} -> {} (+{})\n  snapshot:        version {}, fresh until {}\n  \
         fetched:         {} in {} requests, {:.0} ms\n  state:           {}\n",
        report.old_size,
        report.new_size,
        report.new_size - report.old_size,
        report.snapshot_version,
        utc_time(report.expires),
        bytes(report.bytes_fetched),
        report.requests,
        elapsed.as_secs_f64() * 1000.0,
        dir.display()
    );
    let json = json!({
        "synced": true,
        "source": name,
        "state": dir.display().to_string(),
        "old_size": report.old_size,
        "new_size": report.new_size,
        "snapshot_version": report.snapshot_version,
        "expires": report.expires,
        "requests": report.requests,
        "bytes_fetched": report.bytes_fetched,
        "seconds": elapsed.as_secs_f64(),
    });
    Ok(Report::new(human, json))
}

fn status(args: &StatusArgs) -> Outcome {
    let dir = args.state.dir()?;
    let local = match args.state.open() {
        Ok(l) => l,
        Err(_) if !dir.join(weightseal_verifier::revocation::state::STATE_FILE).exists() => {
            let human = format!("no revocation state at {} (never synced)\n", dir.display());
            let json = json!({"state": dir.display().to_string(), "synced": false, "fresh": false});
            let mut r = Report::new(human, json);
            r.code = exit::REFUSED;
            return Ok(r);
        }
        Err(f) => return Err(f),
    };
    let state = local.state();
    let now = revstate::now()?;
    let keys: Vec<String> = state.keys().iter().map(ToString::to_string).collect();
    let counts = revstate::counts(state);
    let Some(s) = state.snapshot() else {
        let human = format!("no revocation state at {} (never synced)\n", dir.display());
        let json = json!({"state": dir.display().to_string(), "synced": false, "fresh": false, "keys": keys});
        let mut r = Report::new(human, json);
        r.code = exit::REFUSED;
        return Ok(r);
    };
    let fresh = local.freshness(now, None).is_ok();
    let revoked = &counts["revoked_subjects"];
    let human = format!(
        "revocation state {}\n  log:             {} ({} entries)\n  snapshot:        version {}, issued {}\n  \
         expires:         {} ({})\n  entries:         {} revoke, {} reinstate\n  revoked now:     {} manifests, \
         {} content digests, {} keys\n  pinned key:      {}\n",
        dir.display(),
        s.origin,
        state.size(),
        s.version,
        utc_time(s.issued),
        utc_time(s.expires),
        if fresh { "fresh" } else { "EXPIRED: sync again" },
        counts["revoke_entries"],
        counts["reinstate_entries"],
        revoked["manifest"],
        revoked["content"],
        revoked["key"],
        keys.join(", ")
    );
    let json = json!({
        "state": dir.display().to_string(),
        "synced": true,
        "origin": s.origin,
        "size": state.size(),
        "snapshot_version": s.version,
        "issued": s.issued,
        "expires": s.expires,
        "fresh": fresh,
        "root": hex::encode(s.root),
        "counts": counts,
        "keys": keys,
    });
    let mut r = Report::new(human, json);
    if !fresh {
        r.code = exit::REFUSED;
    }
    Ok(r)
}

fn bundle(args: &BundleArgs) -> Outcome {
    let local = args.state.open()?;
    let state = local.state();
    let now = revstate::now()?;
    let snapshot = state.require_fresh(now).map_err(|e| {
        Failure::refused(anyhow!("nothing fresh to bundle: {e}")).hint("run `weightseal revocations sync` first")
    })?;
    let (version, expires) = (snapshot.version, snapshot.expires);
    state
        .export_bundle(&args.out)
        .map_err(|e| Failure::refused(anyhow!("cannot write the bundle {}: {e}", args.out.display())))?;
    let size = std::fs::metadata(&args.out).map(|m| m.len()).unwrap_or(0);
    let human = format!(
        "wrote {}\n  entries:         {}\n  snapshot:        version {version}, fresh until {}\n  size:            {}\n\
         carry it to the offline machine and pass it as --revocations {}\n",
        args.out.display(),
        state.size(),
        utc_time(expires),
        bytes(size),
        args.out.display()
    );
    let json = json!({
        "bundle": args.out.display().to_string(),
        "entries": state.size(),
        "snapshot_version": version,
        "expires": expires,
        "bytes": size,
    });
    Ok(Report::new(human, json))
}
