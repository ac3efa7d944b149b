//! `weightseal revoke --server URL --key ISSUER_KEY SUBJECT --reason R`: sign revocation
//! (or reinstatement) entries with an issuer key and submit them to a revocation server.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::anyhow;
use clap::{ArgGroup, Args};
use serde_json::json;
use weightseal_signer::keys::public_key_of;
use weightseal_verifier::fingerprint::{self, lineage::ForkDelta};
use weightseal_verifier::revocation::client::{self, ProvenReceipt, SubmitError};
use weightseal_verifier::revocation::entry::{
    check_evidence, select_content, Action, Entry, Reason, SignedEntry, Subject,
};
use weightseal_verifier::revocation::lineage::{LineageDoc, LineageDocError};
use weightseal_verifier::revocation::note::NoteVerifierKey;
use weightseal_verifier::revocation::tile::SubmitReceipt;
use weightseal_verifier::{default_signature_path, Digest, KeyId, PublicKey, SignatureFile, Verifier};

use super::check::hash_model;
use super::common::load_signing_key;
use super::revstate::now;
use super::{exit, Ctx, Failure, Outcome, Report};

#[derive(Debug, Clone, Args)]
#[command(group(ArgGroup::new("subject").required(true).args(["manifest", "model", "digest", "key_id", "derivatives_of"])))]
#[command(after_help = "\
Subjects (exactly one):
  --manifest SIG   the manifest digest of that signature file (a signed release or
                   derivative). The signature file is attached as \"authority\", so a lab can
                   prove one of its keys signed it.
  --model DIR      the CONTENT of an unsigned or re-packaged model: hashes DIR and revokes,
                   one entry each, the digest of every tensor and of every safetensors/GGUF
                   file. Plain files (config.json, tokenizer files, other raw files) are never
                   revoked this way, since many unrelated models share them. Pass the model it
                   was derived from with --except BASE (a folder or a signature file): every
                   digest BASE also has is left out (and listed), so the base keeps loading.
                   When DIR is signed and its manifest names parents (signed lineage), each
                   parent must be given with --except (its signature file, or its folder
                   holding one): content the fork shares with its parent is never revoked by
                   default. --include-shared revokes shared content too (the parent and every
                   other model holding it are then refused as well).
  --digest HEX     one content digest (a file or tensor digest, as `weightseal inspect` shows).
  --key-id ID      a signing key (key compromise): every signature by it is rejected. ID is
                   the 64-hex key id, or a public key file (KEY.pub).
  --derivatives-of FORK --base BASE
                   every model that carries FORK's change from BASE (a `lineage` entry):
                   FORK itself and its descendants however re-packaged (perturbed, cast,
                   quantized, renamed, re-sharded), but not other fine-tunes of BASE. Each of
                   FORK and BASE is a model folder, a weight file or a fingerprint file from
                   `weightseal fingerprint`. The lineage document (BASE's fingerprint and
                   FORK's change, content-addressed) is submitted with the entry.

The server decides what each issuer may do (a lab: manifests its keys signed and its own
keys; a hub: manifests, content and lineage). --reinstate issues a reinstatement instead: a later
entry that lifts the revocation (nothing is ever deleted). A revoked key signs nothing more:
its reinstatement must come from another of the lab's keys.

Every entry goes in one submission, appended all or nothing. Success is reported only once
each entry's inclusion proof verifies against a checkpoint signed by the pinned log key
(--revocation-key): an \"accepted\" without proof is a failure. --dry-run prints the entries
and submits nothing.

Exit status: 0 every entry was accepted and proven in the log (or --dry-run); 1 the server
refused, could not be reached, or its answer could not be proven; 2 the command could not run
(bad arguments, unreadable key or model, content shared with a parent).")]
pub struct RevokeArgs {
    /// The revocation server (http://HOST:PORT).
    #[arg(long, value_name = "URL")]
    pub server: String,
    /// The issuer's private key (PKCS#8 PEM, as written by `weightseal keygen`).
    #[arg(long, value_name = "ISSUER_KEY")]
    pub key: PathBuf,
    /// Revoke the signed manifest of this signature file.
    #[arg(long, value_name = "SIG")]
    pub manifest: Option<PathBuf>,
    /// Revoke the content (tensor and weight-file digests) of this model.
    #[arg(long, value_name = "DIR")]
    pub model: Option<PathBuf>,
    /// Revoke one content digest.
    #[arg(long, value_name = "HEX")]
    pub digest: Option<String>,
    /// Revoke a signing key (hex key id, or a public key file).
    #[arg(long, value_name = "ID")]
    pub key_id: Option<String>,
    /// Revoke every model that carries this fork's change from --base (model folder, weight
    /// file or fingerprint file).
    #[arg(long, value_name = "FORK", requires = "base")]
    pub derivatives_of: Option<PathBuf>,
    /// With --derivatives-of: the model the fork was made from.
    #[arg(long, value_name = "BASE", requires = "derivatives_of")]
    pub base: Option<PathBuf>,
    /// With --model: leave out every digest this base model (folder or signature file) has.
    #[arg(long, value_name = "BASE", requires = "model")]
    pub except: Vec<PathBuf>,
    /// Why: guardrails-removed, key-compromise, malicious-payload, superseded, legal, other.
    #[arg(long, value_name = "REASON", value_parser = parse_reason)]
    pub reason: Reason,
    /// A public http(s):// URL with the evidence.
    #[arg(long, value_name = "URL")]
    pub evidence: Option<String>,
    /// Issue a reinstatement (lift an earlier revocation) instead of a revocation.
    #[arg(long)]
    pub reinstate: bool,
    /// The log's note verifier key (`<origin>+<key id>+<base64>`, printed by
    /// `weightseal-server pubkey`): the receipt must be proven under it. Repeatable.
    #[arg(
        long = "revocation-key",
        value_name = "NOTE_KEY",
        required_unless_present = "dry_run"
    )]
    pub revocation_keys: Vec<String>,
    /// Print the entries that would be submitted, and submit nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// With --model: also revoke content the model shares with its parent or an --except
    /// model (those models are then refused too).
    #[arg(long, requires = "model")]
    pub include_shared: bool,
}

fn parse_reason(s: &str) -> Result<Reason, String> {
    s.parse::<Reason>().map_err(|_| {
        format!(
            "unknown reason {s:?}; one of: {}",
            Reason::ALL.map(|r| r.as_str()).join(", ")
        )
    })
}

/// A model whose content is left out: its file and chunk digests, and its manifest digest
/// when it is (or holds) a signature file.
struct Base {
    name: String,
    digests: BTreeSet<Digest>,
    manifest: Option<Digest>,
}

/// Every file and chunk digest of a base model (folder, weight file or signature file).
fn base_digests(base: &Path) -> Result<Base, Failure> {
    let (files, manifest) = if base.is_file() && Verifier::read_signature_file(base).is_ok() {
        let sig = Verifier::read_signature_file(base).map_err(|e| Failure::usage(anyhow!("--except: {e}")))?;
        let files = sig
            .manifest()
            .map_err(|e| Failure::usage(anyhow!("--except {}: {e}", base.display())))?
            .files;
        (files, Some(sig.manifest_digest()))
    } else {
        let files = hash_model(base, false).map_err(|f| Failure::usage(anyhow!("--except: {}", f.message())))?;
        let manifest = Verifier::read_signature_file(&default_signature_path(base))
            .ok()
            .map(|s| s.manifest_digest());
        (files, manifest)
    };
    let mut digests = BTreeSet::new();
    for f in files {
        digests.insert(f.digest);
        digests.extend(f.chunks.iter().map(|c| c.digest));
    }
    Ok(Base {
        name: base.display().to_string(),
        digests,
        manifest,
    })
}

/// The parents named by the signed lineage of `model`'s signature file, if it has one. The
/// signature is not verified here: lineage only ever makes the revocation smaller.
fn declared_parents(model: &Path) -> Vec<Digest> {
    Verifier::read_signature_file(&default_signature_path(model))
        .ok()
        .and_then(|s| s.manifest().ok())
        .map(|m| m.parents.iter().map(|p| p.digest).collect())
        .unwrap_or_default()
}

/// The subjects to submit (each with a human label), the authority file if any, and the
/// content digests left out (or, with --include-shared, kept) because another model shares
/// them (label, the model).
struct Subjects {
    list: Vec<(Subject, String)>,
    authority: Option<SignatureFile>,
    shared: Vec<(Digest, String, String)>,
    lineage: Vec<LineageDoc>,
}

/// The lineage document of `--derivatives-of FORK --base BASE`.
fn lineage_subject(fork: &Path, base: &Path) -> Result<Subjects, Failure> {
    let load = |path: &Path, what: &str| {
        fingerprint::load(path).map_err(|e| {
            Failure::usage(anyhow!("cannot fingerprint {what} {}: {e}", path.display()))
                .hint("give a model folder, a .safetensors or .gguf file, or a file from `weightseal fingerprint`")
        })
    };
    let fork_print = load(fork, "--derivatives-of")?;
    let base_print = load(base, "--base")?;
    let delta = ForkDelta::new(&base_print, &fork_print);
    let doc = LineageDoc::new(&delta).map_err(|e| {
        let f = Failure::usage(anyhow!("--derivatives-of {} --base {}: {e}", fork.display(), base.display()));
        if matches!(e, LineageDocError::NoChange) {
            f.hint("no tensor of the fork matched a base tensor with a change: is --base the model the fork was made from?")
        } else {
            f
        }
    })?;
    let what = format!(
        "derivatives of {} (from {}): lineage document of {} bytes, {} of {} base tensors changed",
        fork.display(),
        base.display(),
        doc.as_bytes().len(),
        doc.fork_delta().deltas.len(),
        doc.fork_delta().base.tensors.len()
    );
    Ok(Subjects {
        list: vec![(doc.subject(), what)],
        authority: None,
        shared: Vec::new(),
        lineage: vec![doc],
    })
}

fn subjects(args: &RevokeArgs) -> Result<Subjects, Failure> {
    let simple = |list, authority| Subjects {
        list,
        authority,
        shared: Vec::new(),
        lineage: Vec::new(),
    };
    if let (Some(fork), Some(base)) = (&args.derivatives_of, &args.base) {
        return lineage_subject(fork, base);
    }
    if let Some(sig) = &args.manifest {
        let file = Verifier::read_signature_file(sig)
            .map_err(|e| Failure::usage(anyhow!("--manifest {}: {e}", sig.display())))?;
        let d = file.manifest_digest();
        return Ok(simple(
            vec![(Subject::manifest(d), format!("manifest of {}", sig.display()))],
            Some(file),
        ));
    }
    if let Some(hex) = &args.digest {
        let d: Digest = hex
            .trim()
            .parse()
            .map_err(|e| Failure::usage(anyhow!("--digest {hex:?}: {e}")))?;
        return Ok(simple(vec![(Subject::content(d), "content digest".into())], None));
    }
    if let Some(id) = &args.key_id {
        let key_id = match id.trim().parse::<KeyId>() {
            Ok(k) => k,
            Err(_) if Path::new(id).is_file() => PublicKey::from_pem_file(Path::new(id))
                .map_err(|e| Failure::usage(anyhow!("--key-id {id}: {e}")))?
                .id(),
            Err(e) => {
                return Err(Failure::usage(anyhow!("--key-id {id:?}: {e}"))
                    .hint("pass the 64-hex key id (`weightseal inspect SIG` shows signers' ids) or a KEY.pub file"))
            }
        };
        return Ok(simple(
            vec![(Subject::key(key_id), format!("signing key {key_id}"))],
            None,
        ));
    }
    let Some(model) = &args.model else {
        return Err(Failure::usage(anyhow!(
            "no subject: pass --manifest, --model, --digest, --key-id or --derivatives-of"
        )));
    };
    let files = hash_model(model, false).map_err(|f| Failure::usage(anyhow!("--model: {}", f.message())))?;
    let bases = args
        .except
        .iter()
        .map(|b| base_digests(b))
        .collect::<Result<Vec<_>, _>>()?;
    // The signed lineage: every declared parent must be among the bases, else what the fork
    // shares with it cannot be told apart and would be revoked in the parent too.
    let missing: Vec<String> = declared_parents(model)
        .into_iter()
        .filter(|p| !bases.iter().any(|b| b.manifest == Some(*p)))
        .map(|p| p.to_hex())
        .collect();
    if !missing.is_empty() && !args.include_shared {
        return Err(Failure::usage(anyhow!(
            "{}: its signed lineage names parent manifest {}, not given with --except; its content \
             shared with the parent would be revoked in the parent too",
            model.display(),
            missing.join(", ")
        ))
        .hint(
            "pass the parent's signature file (or its signed folder) with --except PARENT; or \
             --include-shared to revoke shared content as well",
        ));
    }
    let digests: Vec<BTreeSet<Digest>> = bases.iter().map(|b| b.digests.clone()).collect();
    let selection = select_content(&files, &digests, args.include_shared);
    let list: Vec<(Subject, String)> = selection
        .revoke
        .into_iter()
        .map(|(d, what)| (Subject::content(d), what))
        .collect();
    let shared = selection
        .shared
        .into_iter()
        .map(|(d, what, base)| (d, what, bases.get(base).map_or_else(String::new, |b| b.name.clone())))
        .collect();
    if list.is_empty() {
        return Err(Failure::usage(anyhow!(
            "{}: no tensor or weight-file digest to revoke{}",
            model.display(),
            if args.except.is_empty() {
                ""
            } else {
                " (every one is also in --except)"
            }
        )));
    }
    Ok(Subjects {
        list,
        authority: None,
        shared,
        lineage: Vec::new(),
    })
}

fn subject_json(subject: &Subject) -> serde_json::Value {
    json!({"type": subject.kind.as_str(), "digest": subject.digest.to_hex()})
}

pub fn run(args: &RevokeArgs, _ctx: Ctx) -> Outcome {
    if !(args.server.starts_with("http://") || args.server.starts_with("https://")) {
        return Err(Failure::usage(anyhow!(
            "--server {}: not an http:// or https:// URL",
            args.server
        )));
    }
    let base = args.server.trim_end_matches('/');
    if let Some(url) = &args.evidence {
        check_evidence(url).map_err(|e| Failure::usage(anyhow!("--evidence: {e}")))?;
    }
    let keys = args
        .revocation_keys
        .iter()
        .map(|t| {
            t.trim().parse::<NoteVerifierKey>().map_err(|e| {
                Failure::usage(anyhow!("--revocation-key {t:?}: {e}"))
                    .hint("pass the note verifier key printed by `weightseal-server pubkey --key LOG_KEY`")
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let key = load_signing_key(&args.key)?;
    let issuer = public_key_of(&key);
    let subjects = subjects(args)?;
    let action = if args.reinstate {
        Action::Reinstate
    } else {
        Action::Revoke
    };
    let time = now()?;
    let mut signed = Vec::with_capacity(subjects.list.len());
    for (subject, _) in &subjects.list {
        let entry = Entry {
            subject: *subject,
            action,
            reason: args.reason,
            issuer,
            time,
            evidence: args.evidence.clone(),
        };
        signed.push(
            entry
                .sign(&key)
                .map_err(|e| Failure::usage(anyhow!("cannot build the entry: {e}")))?,
        );
    }
    let mut human = String::new();
    for (d, what, model) in &subjects.shared {
        human += &if args.include_shared {
            format!("including content {d} ({what}), shared with {model}: that model is revoked too\n")
        } else {
            format!("left out content {d} ({what}): shared with {model}\n")
        };
    }
    let shared_json: Vec<_> = subjects
        .shared
        .iter()
        .map(|(d, what, model)| json!({"digest": d.to_hex(), "what": what, "shared_with": model}))
        .collect();
    let mut json = json!({
        "server": base,
        "issuer": issuer.id().to_hex(),
        "action": action.as_str(),
        "reason": args.reason.as_str(),
        "evidence": args.evidence,
        "shared": shared_json,
        "included_shared": args.include_shared,
    });
    if args.dry_run {
        let mut entries = Vec::new();
        for ((subject, what), s) in subjects.list.iter().zip(&signed) {
            human += &format!(
                "would {action} {subject} ({what}): leaf hash {}\n",
                hex::encode(s.leaf_hash())
            );
            entries
                .push(json!({"subject": subject_json(subject), "what": what, "leaf_hash": hex::encode(s.leaf_hash())}));
        }
        human += &format!("dry run: {} entries, nothing submitted\n", entries.len());
        json["dry_run"] = json!(true);
        json["entries"] = json!(entries);
        return Ok(Report::new(human, json));
    }
    // One submission: the log appends every entry or none.
    let submitted = if !subjects.lineage.is_empty() {
        client::submit_with_lineage(base, &signed, subjects.authority.as_ref(), &subjects.lineage)
    } else if signed.len() == 1 {
        client::submit(base, &signed[0], subjects.authority.as_ref())
    } else {
        client::submit_batch(base, &signed, subjects.authority.as_ref())
    };
    let proven = submitted
        .map_err(|e| submit_failure(e, signed.len()))
        .and_then(|receipt| prove(base, &keys, &signed, &receipt));
    match proven {
        Ok(p) => {
            let mut entries = Vec::new();
            for (i, ((subject, what), leaf)) in subjects.list.iter().zip(&p.leaf_hashes).enumerate() {
                let index = p.first_index + i as u64;
                human += &format!(
                    "{action} {subject} ({what}): logged as entry #{index} (leaf hash {})\n",
                    hex::encode(leaf)
                );
                entries.push(json!({
                    "subject": subject_json(subject),
                    "what": what,
                    "accepted": true,
                    "index": index,
                    "leaf_hash": hex::encode(leaf),
                    "size": p.checkpoint.size,
                }));
            }
            human += &format!(
                "proven: every entry is included in the log's signed checkpoint of size {}\n",
                p.checkpoint.size
            );
            json["entries"] = json!(entries);
            json["proven"] = json!({"size": p.checkpoint.size, "root": hex::encode(p.checkpoint.root)});
            Ok(Report::new(human, json))
        }
        Err(mut f) => {
            let entries: Vec<_> = subjects
                .list
                .iter()
                .map(|(subject, what)| json!({"subject": subject_json(subject), "what": what, "accepted": false}))
                .collect();
            json["entries"] = json!(entries);
            json["error"] = json!(f.message());
            if !human.is_empty() {
                let _ = super::output::print_stdout(&human);
            }
            f.json = Some(json);
            Err(f)
        }
    }
}

/// Checks the receipt; a receipt that cannot be proven is a failure (exit 1), whatever the
/// server said.
fn prove(
    base: &str,
    keys: &[NoteVerifierKey],
    signed: &[SignedEntry],
    receipt: &SubmitReceipt,
) -> Result<ProvenReceipt, Failure> {
    client::prove_receipt(base, keys, signed, receipt).map_err(|e| {
        Failure::refused(anyhow!(
            "the server answered that it accepted {} entries, but that cannot be proven: {e}",
            signed.len()
        ))
        .hint(
            "do not rely on this revocation: check --revocation-key, then `weightseal revocations sync` and \
             `weightseal revocations show DIGEST`; a log that gives receipts it cannot prove is misbehaving",
        )
    })
}

fn submit_failure(e: SubmitError, count: usize) -> Failure {
    let what = if count == 1 {
        "the entry".to_owned()
    } else {
        format!("the submission of {count} entries (none was appended)")
    };
    let message = anyhow!("{what}: {e}");
    let hint = match &e {
        SubmitError::Transport { .. } => Some("is the server running at that address? (`weightseal-server serve`)"),
        SubmitError::Refused { code, .. } => match code.as_str() {
            "unknown_issuer" => {
                Some("the server does not list this key as an issuer: its operator adds it to the issuers file")
            }
            "out_of_scope" => Some(
                "a lab may revoke only manifests its keys signed (--manifest SIG) and its own signing keys, and a key \
                 may not reinstate itself; a hub may revoke manifests, content and lineage, not keys",
            ),
            "revoked_issuer" => {
                Some("this issuer key is revoked in the log: another of the lab's keys must reinstate it first")
            }
            "replay" => Some("this exact entry is already in the log"),
            "bad_time" => Some("the entry's time is outside the server's window: check this machine's clock"),
            _ => None,
        },
        _ => None,
    };
    let f = Failure::with_code(exit::REFUSED, message);
    match hint {
        Some(h) => f.hint(h),
        None => f,
    }
}
