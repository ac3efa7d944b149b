//! `weightseal demo`: a self-contained walk-through in a temporary folder. Every step
//! runs the real subcommand code and checks it behaved as expected, so the demo is also
//! a smoke test: it exits 1 if any step surprised it.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context as _};
use clap::Args;
use safetensors::tensor::{Dtype, TensorView};
use serde_json::json;
use weightseal_verifier::Verifier;

use super::demo_server::{find_server_binary, DemoServer};
use super::diff::DiffArgs;
use super::keygen::KeygenArgs;
use super::output::{self, bytes, indent};
use super::revoke::RevokeArgs;
use super::revstate::StateArgs;
use super::sign::SignArgs;
use super::verify::VerifyArgs;
use super::{diff, exit, keygen, revoke, sign, verify, Ctx, Failure, Outcome, Report};

#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// Keep the demo folder (its path is printed) instead of deleting it.
    #[arg(long)]
    pub keep: bool,
}

const MODEL: &str = "tiny-model";
const FORK: &str = "tiny-model-fork";
const WEIGHTS: &str = "model.safetensors";
const TAMPERED_TENSOR: &str = "model.layers.1.mlp.weight";
const FORK_CHANGES: [&str; 2] = ["lm_head.weight", "model.layers.0.mlp.weight"];
const STEPS: usize = 15;
const EVIDENCE: &str = "https://hub.example/reports/tiny-model-fork";

/// The demo model's tensors: name and shape (F32).
const TENSORS: [(&str, &[usize]); 5] = [
    ("model.embed_tokens.weight", &[32, 8]),
    ("model.layers.0.mlp.weight", &[8, 8]),
    ("model.layers.1.mlp.weight", &[8, 8]),
    ("model.norm.weight", &[8]),
    ("lm_head.weight", &[32, 8]),
];

/// Writes `dir/model.safetensors` (F32 tensors; those named in `changed` get other
/// values) and `dir/config.json`.
fn write_model(dir: &Path, changed: &[&str]) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let data: Vec<Vec<u8>> = TENSORS
        .iter()
        .enumerate()
        .map(|(i, (name, shape))| {
            let seed = i as f32 + if changed.contains(name) { 0.5 } else { 0.0 };
            let n: usize = shape.iter().product();
            (0..n)
                .flat_map(|j| ((j as f32 * 0.37 + seed).sin() * 0.1).to_le_bytes())
                .collect()
        })
        .collect();
    let mut views = Vec::new();
    for ((name, shape), bytes) in TENSORS.iter().zip(&data) {
        views.push((name.to_string(), TensorView::new(Dtype::F32, shape.to_vec(), bytes)?));
    }
    let weights = safetensors::serialize(views, None)?;
    std::fs::write(dir.join(WEIGHTS), weights).context("cannot write the weights")?;
    std::fs::write(
        dir.join("config.json"),
        "{\n  \"architectures\": [\"TinyForCausalLM\"],\n  \"hidden_size\": 8,\n  \"num_hidden_layers\": 2,\n  \"vocab_size\": 32\n}\n",
    )
    .context("cannot write config.json")?;
    Ok(())
}

/// The byte offset of the middle of a tensor, from the signed manifest.
fn middle_of_tensor(model: &Path, tensor: &str) -> anyhow::Result<u64> {
    let sig = Verifier::read_signature_file(&model.join("weightseal.sig"))?;
    let manifest = sig.manifest()?;
    let file = manifest
        .file(WEIGHTS)
        .ok_or_else(|| anyhow!("{WEIGHTS} is not in the manifest"))?;
    let chunk = file
        .tensors()
        .find(|c| c.tensor_name() == Some(tensor))
        .ok_or_else(|| anyhow!("tensor {tensor} is not in the manifest"))?;
    Ok(chunk.offset + chunk.len / 2)
}

/// XORs one byte of a file; returns nothing (XOR again to restore).
fn flip_byte(path: &Path, offset: u64) -> anyhow::Result<()> {
    let mut bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let i = usize::try_from(offset).context("offset too large")?;
    let b = bytes
        .get_mut(i)
        .ok_or_else(|| anyhow!("offset {offset} is past the end"))?;
    *b ^= 0x01;
    std::fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))
}

/// One step's result.
#[derive(Debug)]
struct Step {
    title: String,
    command: Option<String>,
    output: String,
    ok: bool,
    verdict: String,
}

struct Demo {
    ctx: Ctx,
    steps: Vec<Step>,
}

fn expect_ok(outcome: Outcome) -> (String, bool, String) {
    match outcome {
        Ok(r) if r.code == exit::OK => (r.human, true, "ok (exit status 0)".into()),
        Ok(r) => (r.human, false, format!("UNEXPECTED: exit status {}", r.code)),
        Err(f) => (
            format!("failed: {}\n", f.message()),
            false,
            format!("UNEXPECTED: failed with exit status {}", f.code),
        ),
    }
}

fn expect_refusal(outcome: Outcome, must_mention: &str) -> (String, bool, String) {
    match outcome {
        Err(f) => {
            let message = f.message();
            let ok = f.code == exit::REFUSED && message.contains(must_mention);
            let verdict = if ok {
                format!(
                    "as expected: refused, exit status {} (a runtime would not load it)",
                    f.code
                )
            } else {
                format!(
                    "UNEXPECTED: exit status {}, or the error does not name {must_mention}",
                    f.code
                )
            };
            (format!("refused: {message}\n"), ok, verdict)
        }
        Ok(r) => (r.human, false, "UNEXPECTED: the model was accepted".into()),
    }
}

impl Demo {
    fn step(&mut self, title: &str, command: Option<&str>, result: (String, bool, String)) {
        let (output, ok, verdict) = result;
        let step = Step {
            title: title.to_string(),
            command: command.map(str::to_string),
            output,
            ok,
            verdict,
        };
        if !self.ctx.json {
            let mut text = format!("[{}/{STEPS}] {}\n", self.steps.len() + 1, step.title);
            if let Some(c) = &step.command {
                text += &format!("  $ {c}\n");
            }
            text += &indent(&step.output, 4);
            if !text.ends_with('\n') {
                text.push('\n');
            }
            text += &format!("  => {}\n\n", step.verdict);
            // A reader that went away is not our problem; the exit status still counts.
            let _ = output::print_stdout(&text);
        }
        self.steps.push(step);
    }
}

/// `verify MODEL` trusting the lab and the fork author, against the revocation server.
fn verify_revocations_args(model: &str, server: &DemoServer) -> VerifyArgs {
    let mut a = verify_args(&[]);
    a.model = PathBuf::from(model);
    a.trusted_keys.push(PathBuf::from("fork.key.pub"));
    a.revocations = Some(server.url.clone());
    a.state = StateArgs {
        state: Some(PathBuf::from("runtime-revocations")),
        revocation_keys: vec![server.note_key.clone()],
    };
    a
}

fn verify_args(tensors: &[&str]) -> VerifyArgs {
    VerifyArgs {
        model: PathBuf::from(MODEL),
        policy: None,
        signature: None,
        trusted_keys: vec![PathBuf::from("lab.key.pub")],
        threshold: None,
        tensors: tensors.iter().map(|s| s.to_string()).collect(),
        allow_unsigned_files_unsafe: false,
        revocations: None,
        state: StateArgs::default(),
        unsafe_ignore_revocation_status: false,
        no_mmap: false,
    }
}

pub fn run(args: &DemoArgs, ctx: Ctx) -> Outcome {
    let setup = |e: anyhow::Error| Failure::refused(e.context("demo setup failed"));
    let dir = tempfile::Builder::new()
        .prefix("weightseal-demo-")
        .tempdir()
        .map_err(|e| setup(e.into()))?;
    let root = dir.path().to_path_buf();
    // Work inside the folder so every path printed is short.
    std::env::set_current_dir(&root).map_err(|e| setup(e.into()))?;
    let quiet = Ctx {
        json: false,
        progress: false,
    };
    let mut demo = Demo { ctx, steps: Vec::new() };
    if !ctx.json {
        let _ = output::print_stdout(&format!(
            "weightseal demo: a lab signs a small model; a runtime verifies it before loading.\n\
             (working in {})\n\n",
            root.display()
        ));
    }

    // 1. A model.
    let made = write_model(Path::new(MODEL), &[]).map(|()| {
        let mut listing = String::new();
        for name in [WEIGHTS, "config.json"] {
            let size = std::fs::metadata(Path::new(MODEL).join(name))
                .map(|m| m.len())
                .unwrap_or(0);
            listing += &format!("{MODEL}/{name}  {}\n", bytes(size));
        }
        listing += &format!("tensors: {}\n", TENSORS.map(|(n, _)| n).join(", "));
        listing
    });
    demo.step(
        "Make a small model: a safetensors file with 5 F32 tensors, and config.json",
        None,
        match made {
            Ok(listing) => (listing, true, "ok".into()),
            Err(e) => (
                format!("failed: {e:#}\n"),
                false,
                "UNEXPECTED: could not write the model".into(),
            ),
        },
    );

    // 2. Keys.
    let r = keygen::run(
        &KeygenArgs {
            out: PathBuf::from("lab.key"),
        },
        quiet,
    );
    demo.step(
        "The lab creates its signing key",
        Some("weightseal keygen --out lab.key"),
        expect_ok(r),
    );

    // 3. Sign.
    let sign_args = SignArgs {
        model: PathBuf::from(MODEL),
        key: PathBuf::from("lab.key"),
        signature: None,
        name: Some("demo/tiny-model".into()),
        parent: vec![],
        relation: vec![],
        ignore: vec![],
        annotations: vec![],
        raw_chunk_size: None,
        no_mmap: false,
    };
    demo.step(
        "The lab signs the model (hashes every tensor and file, signs the manifest)",
        Some("weightseal sign tiny-model --key lab.key --name demo/tiny-model"),
        expect_ok(sign::run(&sign_args, quiet)),
    );

    // 4. Verify.
    let verify_cmd = "weightseal verify tiny-model --trusted-key lab.key.pub";
    demo.step(
        "A runtime verifies the model against the lab's public key",
        Some(verify_cmd),
        expect_ok(verify::run(&verify_args(&[]), quiet)),
    );

    // 5. Tamper with one byte of one tensor.
    let weights = Path::new(MODEL).join(WEIGHTS);
    let tamper = middle_of_tensor(Path::new(MODEL), TAMPERED_TENSOR)
        .and_then(|offset| flip_byte(&weights, offset).map(|()| offset));
    let result = match &tamper {
        Ok(_) => expect_refusal(verify::run(&verify_args(&[]), quiet), TAMPERED_TENSOR),
        Err(e) => (format!("failed: {e:#}\n"), false, "UNEXPECTED: could not tamper".into()),
    };
    demo.step(
        &format!("Someone flips one bit in tensor {TAMPERED_TENSOR}; the runtime verifies again"),
        Some(verify_cmd),
        result,
    );

    // 6. Restore.
    let result = match tamper.and_then(|offset| flip_byte(&weights, offset)) {
        Ok(()) => expect_ok(verify::run(&verify_args(&[]), quiet)),
        Err(e) => (
            format!("failed: {e:#}\n"),
            false,
            "UNEXPECTED: could not restore".into(),
        ),
    };
    demo.step(
        "The byte is restored; the model verifies again",
        Some(verify_cmd),
        result,
    );

    // 7. Only one tensor.
    demo.step(
        "A runtime that loads one tensor verifies just that tensor (and its file's header)",
        Some("weightseal verify tiny-model --trusted-key lab.key.pub --tensors lm_head.weight"),
        expect_ok(verify::run(&verify_args(&["lm_head.weight"]), quiet)),
    );

    // 8. A fork with two tensors changed.
    let result = match write_model(Path::new(FORK), &FORK_CHANGES) {
        Ok(()) => {
            let r = diff::run(
                &DiffArgs {
                    a: PathBuf::from(MODEL),
                    b: PathBuf::from(FORK),
                },
                quiet,
            );
            let expected: Vec<String> = FORK_CHANGES.iter().map(|s| s.to_string()).collect();
            match r {
                Ok(r) => {
                    let changed = r.json.get("changed").cloned().unwrap_or_default();
                    let added = r.json.get("added").and_then(|v| v.as_array()).map_or(0, Vec::len);
                    let removed = r.json.get("removed").and_then(|v| v.as_array()).map_or(0, Vec::len);
                    let ok = changed == json!(expected) && added == 0 && removed == 0;
                    let verdict = if ok {
                        format!(
                            "as expected: exactly {} changed (exit status {})",
                            expected.join(" and "),
                            r.code
                        )
                    } else {
                        format!("UNEXPECTED: changed tensors are {changed}")
                    };
                    (r.human, ok, verdict)
                }
                Err(f) => (
                    format!("failed: {}\n", f.message()),
                    false,
                    "UNEXPECTED: diff failed".into(),
                ),
            }
        }
        Err(e) => (
            format!("failed: {e:#}\n"),
            false,
            "UNEXPECTED: could not write the fork".into(),
        ),
    };
    demo.step(
        "Someone publishes a fork with two tensors retrained; diff shows which",
        Some("weightseal diff tiny-model tiny-model-fork"),
        result,
    );

    // 9. An unsigned code file beside the weights.
    let custom = Path::new(MODEL).join("modeling_custom.py");
    let result = match std::fs::write(&custom, "import os\n# code a loader with trust_remote_code would run\n") {
        Ok(()) => expect_refusal(verify::run(&verify_args(&[]), quiet), "modeling_custom.py"),
        Err(e) => (
            format!("failed: {e}\n"),
            false,
            "UNEXPECTED: could not write the file".into(),
        ),
    };
    demo.step(
        "Someone drops an unsigned modeling_custom.py beside the weights",
        Some(verify_cmd),
        result,
    );

    // The modeling file goes away again: the base must load in the revocation steps.
    let _ = std::fs::remove_file(&custom);
    revocation_steps(&mut demo, quiet);

    let failed = demo.steps.iter().filter(|s| !s.ok).count();
    let kept = if args.keep {
        let path = dir.keep();
        Some(path.display().to_string())
    } else {
        None
    };
    let mut human = if failed == 0 {
        format!("demo complete: all {STEPS} steps behaved as expected\n")
    } else {
        format!("demo FAILED: {failed} of {STEPS} steps did not behave as expected\n")
    };
    if let Some(k) = &kept {
        human += &format!("the demo folder was kept: {k}\n");
    }
    let json = json!({
        "ok": failed == 0,
        "folder": kept,
        "steps": demo.steps.iter().enumerate().map(|(i, s)| json!({
            "step": i + 1,
            "title": s.title,
            "command": s.command,
            "ok": s.ok,
            "verdict": s.verdict,
            "output": s.output,
        })).collect::<Vec<_>>(),
    });
    let mut report = Report::new(human, json);
    if failed > 0 {
        output::print_error(&format!("{failed} demo step(s) did not behave as expected"), None);
        report.code = exit::REFUSED;
    }
    Ok(report)
}

fn failed_step(message: String) -> (String, bool, String) {
    (
        format!("failed: {message}\n"),
        false,
        "UNEXPECTED: could not run this step".into(),
    )
}

/// Steps 10-15: a hub revokes the fork on a real `weightseal-server`; the runtime refuses it.
fn revocation_steps(demo: &mut Demo, quiet: Ctx) {
    let first = demo.steps.len();
    let started = start_server(quiet);
    let (mut server, result) = match started {
        Ok((server, text)) => (
            Some(server),
            (text, true, "ok: the log is served on 127.0.0.1".to_string()),
        ),
        Err(e) => (None, failed_step(format!("{e:#}"))),
    };
    demo.step(
        "A revocation service starts: weightseal-server (SQLite), with a hub and the lab as issuers",
        Some("weightseal-server serve --listen 127.0.0.1:0 --key log.key --issuers issuers.json --database sqlite:revocations.db"),
        result,
    );
    let Some(srv) = server.as_mut() else {
        while demo.steps.len() < first + 6 {
            demo.step(
                "(skipped: no revocation server)",
                None,
                (String::new(), false, "not run".into()),
            );
        }
        return;
    };

    // 11. The fork's author signs it; the runtime checks it against the list: not revoked yet.
    let sign_fork = SignArgs {
        model: PathBuf::from(FORK),
        key: PathBuf::from("fork.key"),
        signature: None,
        name: Some("someone/tiny-model-fork".into()),
        parent: vec![],
        relation: vec![],
        ignore: vec![],
        annotations: vec![],
        raw_chunk_size: None,
        no_mmap: false,
    };
    let result = keygen::run(
        &KeygenArgs {
            out: PathBuf::from("fork.key"),
        },
        quiet,
    )
    .and_then(|_| sign::run(&sign_fork, quiet))
    .and_then(|_| verify::run(&verify_revocations_args(FORK, srv), quiet));
    demo.step(
        "The fork's author signs it; a runtime verifies it and checks the revocation list: not revoked (yet)",
        Some("weightseal verify tiny-model-fork --trusted-key fork.key.pub --revocations URL --revocation-key LOG_KEY"),
        expect_ok(result),
    );

    // 12. The hub revokes it.
    let revoke_args = RevokeArgs {
        server: srv.url.clone(),
        key: PathBuf::from("hub.key"),
        manifest: Some(Path::new(FORK).join("weightseal.sig")),
        model: None,
        digest: None,
        key_id: None,
        derivatives_of: None,
        base: None,
        except: vec![],
        reason: weightseal_verifier::revocation::entry::Reason::GuardrailsRemoved,
        evidence: Some(EVIDENCE.into()),
        reinstate: false,
        revocation_keys: vec![srv.note_key.clone()],
        dry_run: false,
        include_shared: false,
    };
    demo.step(
        "The hub finds the fork has its guardrails removed and revokes it (a signed entry in the log)",
        Some(&format!(
            "weightseal revoke --server URL --key hub.key --manifest tiny-model-fork/weightseal.sig \\\n      --reason guardrails-removed --evidence {EVIDENCE}"
        )),
        expect_ok(revoke::run(&revoke_args, quiet)),
    );

    // 13. The runtime syncs and refuses the fork.
    demo.step(
        "The runtime verifies the fork again: the signature is fine, but it is revoked",
        Some("weightseal verify tiny-model-fork --trusted-key fork.key.pub --revocations URL"),
        expect_refusal(
            verify::run(&verify_revocations_args(FORK, srv), quiet),
            "guardrails-removed",
        ),
    );

    // 14. The base still loads.
    demo.step(
        "The lab's base model still loads",
        Some("weightseal verify tiny-model --trusted-key lab.key.pub --revocations URL"),
        expect_ok(verify::run(&verify_revocations_args(MODEL, srv), quiet)),
    );

    // 15. Stop the server.
    let result = match srv.stop() {
        Ok(()) => ("stopped (SIGTERM, exit status 0)\n".to_string(), true, "ok".to_string()),
        Err(e) => failed_step(format!("{e:#}")),
    };
    demo.step("The revocation service stops cleanly", None, result);
    server.take();
}

/// Keys, issuers file and the server process.
fn start_server(quiet: Ctx) -> anyhow::Result<(DemoServer, String)> {
    let Some(binary) = find_server_binary() else {
        anyhow::bail!(
            "weightseal-server was not found beside this weightseal binary or on PATH; build it with \
             `cargo build --release --bins` and run ./target/release/weightseal demo"
        );
    };
    for name in ["hub.key", "log.key"] {
        keygen::run(
            &KeygenArgs {
                out: PathBuf::from(name),
            },
            quiet,
        )
        .map_err(|f| anyhow!(f.message()))?;
    }
    let pem = |p: &str| std::fs::read_to_string(p).with_context(|| format!("cannot read {p}"));
    let lab_id = weightseal_verifier::PublicKey::from_pem_file(Path::new("lab.key.pub"))?.id();
    let issuers = json!({"issuers": [
        {"name": "hub.example", "role": "hub", "public_key": pem("hub.key.pub")?},
        {"name": "lab.example", "role": "lab", "public_key": pem("lab.key.pub")?, "signing_keys": [lab_id.to_hex()]},
    ]});
    std::fs::write("issuers.json", serde_json::to_vec_pretty(&issuers)?).context("cannot write issuers.json")?;
    let root = std::env::current_dir()?;
    let server = DemoServer::start(
        &binary,
        &root.join("log.key"),
        &root.join("issuers.json"),
        &root.join("revocations.db"),
        &root.join("server.log"),
    )?;
    let text = format!(
        "{}\nlistening on {}\nissuers: hub.example (hub: may revoke any model or content), lab.example (lab: \
         its own releases and keys)\nlog key (runtimes pin it): {}\n",
        binary.display(),
        server.url,
        server.note_key
    );
    Ok((server, text))
}
