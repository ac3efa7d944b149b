//! `weightseal revoke --server URL --key ISSUER_KEY SUBJECT --reason R`: sign revocation
//! (or reinstatement) entries with an issuer key and submit them to a revocation server.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::anyhow;
use clap::{ArgGroup, Args};
use serde_json::json;
use weightseal_signer::keys::public_key_of;
use weightseal_verifier::revocation::client::{self, SubmitError};
use weightseal_verifier::revocation::entry::{check_evidence, Action, Entry, Reason, SignedEntry, Subject};
use weightseal_verifier::revocation::tile::SubmitReceipt;
use weightseal_verifier::{ChunkRole, Digest, FileEntry, FileKind, KeyId, PublicKey, SignatureFile, Verifier};

use super::check::hash_model;
use super::common::load_signing_key;
use super::revstate::now;
use super::{exit, Ctx, Failure, Outcome, Report};

#[derive(Debug, Clone, Args)]
#[command(group(ArgGroup::new("subject").required(true).args(["manifest", "model", "digest", "key_id"])))]
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
                   digest BASE also has is left out, so the base keeps loading.
  --digest HEX     one content digest (a file or tensor digest, as `weightseal inspect` shows).
  --key-id ID      a signing key (key compromise): every signature by it is rejected. ID is
                   the 64-hex key id, or a public key file (KEY.pub).

The server decides what each issuer may do (a lab: manifests its keys signed and its own
keys; a hub: manifests and content). --reinstate issues a reinstatement instead: a later
entry that lifts the revocation (nothing is ever deleted).

Exit status: 0 every entry was accepted; 1 the server refused an entry or could not be
reached; 2 the command could not run (bad arguments, unreadable key or model).")]
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
}

fn parse_reason(s: &str) -> Result<Reason, String> {
    s.parse::<Reason>().map_err(|_| {
        format!(
            "unknown reason {s:?}; one of: {}",
            Reason::ALL.map(|r| r.as_str()).join(", ")
        )
    })
}

/// The content digests of a model worth revoking: tensors and whole weight files.
fn content_digests(files: &[FileEntry]) -> Vec<(Digest, String)> {
    let mut out = Vec::new();
    for f in files {
        if f.kind != FileKind::Raw {
            out.push((f.digest, format!("file {}", f.path)));
        }
        for c in &f.chunks {
            if matches!(c.role, ChunkRole::Tensor(_)) && c.len > 0 {
                out.push((c.digest, format!("{} in {}", c.label(), f.path)));
            }
        }
    }
    out
}

/// Every file and chunk digest of a base model (folder, weight file or signature file).
fn base_digests(base: &Path) -> Result<BTreeSet<Digest>, Failure> {
    let files = if base.is_file() && Verifier::read_signature_file(base).is_ok() {
        let sig = Verifier::read_signature_file(base).map_err(|e| Failure::usage(anyhow!("--except: {e}")))?;
        sig.manifest()
            .map_err(|e| Failure::usage(anyhow!("--except {}: {e}", base.display())))?
            .files
    } else {
        hash_model(base, false).map_err(|f| Failure::usage(anyhow!("--except: {}", f.message())))?
    };
    let mut set = BTreeSet::new();
    for f in files {
        set.insert(f.digest);
        set.extend(f.chunks.iter().map(|c| c.digest));
    }
    Ok(set)
}

/// The subjects to submit, with a description each, and the authority to attach.
/// The subjects to submit (each with a human label), and the authority file if any.
type Subjects = (Vec<(Subject, String)>, Option<SignatureFile>);

fn subjects(args: &RevokeArgs) -> Result<Subjects, Failure> {
    if let Some(sig) = &args.manifest {
        let file = Verifier::read_signature_file(sig)
            .map_err(|e| Failure::usage(anyhow!("--manifest {}: {e}", sig.display())))?;
        let d = file.manifest_digest();
        return Ok((
            vec![(Subject::manifest(d), format!("manifest of {}", sig.display()))],
            Some(file),
        ));
    }
    if let Some(hex) = &args.digest {
        let d: Digest = hex
            .trim()
            .parse()
            .map_err(|e| Failure::usage(anyhow!("--digest {hex:?}: {e}")))?;
        return Ok((vec![(Subject::content(d), "content digest".into())], None));
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
        return Ok((vec![(Subject::key(key_id), format!("signing key {key_id}"))], None));
    }
    let Some(model) = &args.model else {
        return Err(Failure::usage(anyhow!(
            "no subject: pass --manifest, --model, --digest or --key-id"
        )));
    };
    let files = hash_model(model, false).map_err(|f| Failure::usage(anyhow!("--model: {}", f.message())))?;
    let mut except = BTreeSet::new();
    for base in &args.except {
        except.extend(base_digests(base)?);
    }
    let mut seen = BTreeSet::new();
    let list: Vec<(Subject, String)> = content_digests(&files)
        .into_iter()
        .filter(|(d, _)| !except.contains(d) && seen.insert(*d))
        .map(|(d, what)| (Subject::content(d), what))
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
    Ok((list, None))
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
    let key = load_signing_key(&args.key)?;
    let issuer = public_key_of(&key);
    let (subjects, authority) = subjects(args)?;
    let action = if args.reinstate {
        Action::Reinstate
    } else {
        Action::Revoke
    };
    let mut human = String::new();
    let mut results = Vec::new();
    let mut failed: Option<Failure> = None;
    for (subject, what) in &subjects {
        let entry = Entry {
            subject: *subject,
            action,
            reason: args.reason,
            issuer,
            time: now()?,
            evidence: args.evidence.clone(),
        };
        let signed = entry
            .sign(&key)
            .map_err(|e| Failure::usage(anyhow!("cannot build the entry: {e}")))?;
        match submit(base, &signed, authority.as_ref()) {
            Ok(receipt) => {
                human += &format!(
                    "{action} {subject} ({what}): accepted as entry #{} (leaf hash {}, log size {})\n",
                    receipt.index, receipt.leaf_hash, receipt.size
                );
                results.push(json!({
                    "subject": {"type": subject.kind.as_str(), "digest": subject.digest.to_hex()},
                    "what": what,
                    "accepted": true,
                    "index": receipt.index,
                    "leaf_hash": receipt.leaf_hash,
                    "size": receipt.size,
                }));
            }
            Err(f) => {
                human += &format!("{action} {subject} ({what}): REFUSED: {}\n", f.message());
                results.push(json!({
                    "subject": {"type": subject.kind.as_str(), "digest": subject.digest.to_hex()},
                    "what": what,
                    "accepted": false,
                    "error": f.message(),
                }));
                let unreachable = f.hint.as_deref().is_some_and(|h| h.contains("is the server running"));
                if failed.is_none() {
                    failed = Some(f);
                }
                if unreachable {
                    break;
                }
            }
        }
    }
    let json = json!({
        "server": base,
        "issuer": issuer.id().to_hex(),
        "action": action.as_str(),
        "reason": args.reason.as_str(),
        "evidence": args.evidence,
        "entries": results,
    });
    match failed {
        None => Ok(Report::new(human, json)),
        Some(mut f) => {
            if subjects.len() > 1 {
                let _ = super::output::print_stdout(&human);
            }
            f.json = Some(json);
            Err(f)
        }
    }
}

fn submit(base: &str, entry: &SignedEntry, authority: Option<&SignatureFile>) -> Result<SubmitReceipt, Failure> {
    client::submit(base, entry, authority).map_err(|e| {
        let hint = match &e {
            SubmitError::Transport { .. } => Some("is the server running at that address? (`weightseal-server serve`)"),
            SubmitError::Refused { code, .. } => match code.as_str() {
                "unknown_issuer" => {
                    Some("the server does not list this key as an issuer: its operator adds it to the issuers file")
                }
                "out_of_scope" => Some(
                    "a lab may revoke only manifests its keys signed (--manifest SIG) and its own signing keys; a \
                     hub may revoke manifests and content, not keys",
                ),
                "replay" => Some("this exact entry is already in the log"),
                "bad_time" => Some("the entry's time is outside the server's window: check this machine's clock"),
                _ => None,
            },
            _ => None,
        };
        let f = Failure::with_code(exit::REFUSED, e);
        match hint {
            Some(h) => f.hint(h),
            None => f,
        }
    })
}
