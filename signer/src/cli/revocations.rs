//! `weightseal revocations sync|status|bundle|list|show|clear-evidence`: manage the local
//! revocation state.

use std::path::PathBuf;

use anyhow::anyhow;
use clap::{Args, Subcommand};
use serde_json::json;

use weightseal_verifier::revocation::merkle::{self, MerkleTree};
use weightseal_verifier::revocation::state::{LogEntry, RevocationState, EVIDENCE_DIR};
use weightseal_verifier::Digest;

use super::output::{bytes, utc_time};
use weightseal_verifier::RevocationSource;

use super::revstate::{self, StateArgs};
use super::{exit, Ctx, Failure, Outcome, Report};

#[derive(Debug, Clone, Args)]
#[command(after_help = "\
Exit status: sync: 0 synced, 1 the sync was refused or failed (the held state is unchanged);
status: 0 the held state is fresh, 1 never synced, expired or marked as having caught the log
misbehaving; bundle: 0 written, 1 nothing fresh to bundle or the write failed; list: 0; show:
0 the digest has entries, 1 none; clear-evidence: 0 cleared or nothing to clear; 2 the command
could not run (bad arguments, no or a different --revocation-key).")]
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
    /// List every entry the state holds: subject, action, reason, issuer, time, evidence.
    List(ListArgs),
    /// Show the history of one digest (manifest, content or key id), with inclusion proofs.
    Show(ShowArgs),
    /// After investigating evidence of a misbehaving log (under STATE/evidence/), clear the
    /// mark that makes every verify refuse. The evidence files are kept.
    ClearEvidence(ClearEvidenceArgs),
}

#[derive(Debug, Clone, Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub state: StateArgs,
}

#[derive(Debug, Clone, Args)]
pub struct ShowArgs {
    /// The digest (64 hex digits): a manifest digest, a content digest or a key id.
    #[arg(value_name = "DIGEST")]
    pub digest: String,
    #[command(flatten)]
    pub state: StateArgs,
}

#[derive(Debug, Clone, Args)]
pub struct ClearEvidenceArgs {
    #[command(flatten)]
    pub state: StateArgs,
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
        RevocationsCommand::List(a) => list(a),
        RevocationsCommand::Show(a) => show(a),
        RevocationsCommand::ClearEvidence(a) => clear_evidence(a),
    }
}

fn entry_line(state: &RevocationState, e: &LogEntry) -> String {
    let mut line = weightseal_verifier::decision::entry_text(e);
    if let Some(why) = state.voided(e.index) {
        line += &format!(" [VOID: {why}]");
    }
    line
}

fn entry_value(state: &RevocationState, e: &LogEntry) -> serde_json::Value {
    let mut v = revstate::entry_json(e);
    v["time_utc"] = json!(utc_time(e.time));
    v["void"] = json!(state.voided(e.index).map(ToString::to_string));
    v
}

fn list(args: &ListArgs) -> Outcome {
    let local = args.state.open()?;
    let state = local.state();
    let mut human = format!("revocation state {}: {} entries\n", local.dir().display(), state.size());
    for e in state.entries() {
        human += &format!("  {}\n", entry_line(state, e));
    }
    let entries: Vec<_> = state.entries().iter().map(|e| entry_value(state, e)).collect();
    let json = json!({"state": local.dir().display().to_string(), "size": state.size(), "entries": entries});
    Ok(Report::new(human, json))
}

fn show(args: &ShowArgs) -> Outcome {
    let digest: Digest = args
        .digest
        .trim()
        .parse()
        .map_err(|e| Failure::usage(anyhow!("{:?}: {e}", args.digest)))?;
    let local = args.state.open()?;
    let state = local.state();
    let history: Vec<&LogEntry> = state.entries().iter().filter(|e| e.subject.digest == digest).collect();
    let Some(checkpoint) = state.checkpoint() else {
        let mut r = Report::new(
            format!("no revocation state at {} (never synced)\n", local.dir().display()),
            json!({"digest": digest.to_hex(), "synced": false, "entries": []}),
        );
        r.code = exit::REFUSED;
        return Ok(r);
    };
    // Inclusion proofs against the held (signed) checkpoint, from the held leaves.
    let leaves = state
        .leaves()
        .map_err(|e| Failure::usage(anyhow!("cannot read the held entries: {e}")))?;
    let mut tree = MerkleTree::new();
    for leaf in &leaves {
        tree.push(merkle::leaf_hash(leaf));
    }
    let mut human = format!(
        "{digest}: {} entries in the log {} (signed checkpoint size {}, root {})\n",
        history.len(),
        checkpoint.origin,
        checkpoint.size,
        hex::encode(checkpoint.root)
    );
    let mut entries = Vec::new();
    for e in &history {
        let proof = tree.inclusion_proof(e.index, checkpoint.size).unwrap_or_default();
        let leaf_hash = tree.leaf(e.index).map(hex::encode).unwrap_or_default();
        let proof_hex: Vec<String> = proof.iter().map(hex::encode).collect();
        human += &format!(
            "  {}\n    leaf hash {leaf_hash}\n    inclusion proof ({} hashes): {}\n",
            entry_line(state, e),
            proof_hex.len(),
            proof_hex.join(" ")
        );
        let mut v = entry_value(state, e);
        v["leaf_hash"] = json!(leaf_hash);
        v["inclusion_proof"] = json!(proof_hex);
        entries.push(v);
    }
    let status = state
        .status_of(&weightseal_verifier::revocation::entry::Subject {
            kind: history
                .last()
                .map_or(weightseal_verifier::revocation::entry::SubjectKind::Content, |e| {
                    e.subject.kind
                }),
            digest,
        })
        .map(|e| e.action.as_str());
    human += &format!(
        "  status now: {}\n",
        status.map_or("not revoked", |a| if a == "revoke" { "REVOKED" } else { "reinstated" })
    );
    let json = json!({
        "digest": digest.to_hex(),
        "checkpoint": {"size": checkpoint.size, "root": hex::encode(checkpoint.root)},
        "entries": entries,
        "status": status,
    });
    let mut r = Report::new(human, json);
    if history.is_empty() {
        r.code = exit::REFUSED;
    }
    Ok(r)
}

fn clear_evidence(args: &ClearEvidenceArgs) -> Outcome {
    let mut local = args.state.open()?;
    let evidence = local.dir().join(EVIDENCE_DIR);
    let cleared = local
        .clear_misbehaviour()
        .map_err(|e| Failure::usage(anyhow!("cannot clear the mark: {e}")))?;
    let human = match cleared {
        Some(kind) => format!(
            "cleared the misbehaviour mark ({kind}) of {}; the evidence is kept in {}\n",
            local.dir().display(),
            evidence.display()
        ),
        None => format!("{} is not marked: nothing to clear\n", local.dir().display()),
    };
    let json = json!({
        "state": local.dir().display().to_string(),
        "cleared": cleared.map(|k| k.as_str()),
        "evidence": evidence.display().to_string(),
    });
    Ok(Report::new(human, json))
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
    let misbehaved = state.misbehaviour();
    // The library's freshness rules: expiry, a clock before the snapshot, the mark.
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
        match (misbehaved, s.is_expired(now)) {
            (Some((kind, _)), _) => format!(
                "MARKED: the log misbehaved ({kind}); investigate {}/evidence, then `weightseal revocations clear-evidence`",
                dir.display()
            ),
            (None, true) => "EXPIRED: sync again".to_owned(),
            (None, false) => "fresh".to_owned(),
        },
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
        "misbehaved": misbehaved.map(|(k, _)| k.as_str()),
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
