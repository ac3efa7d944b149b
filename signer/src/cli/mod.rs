//! The command tree, the shared result types, and exit-status handling.
//!
//! Every subcommand is a module with an `Args` struct (clap derive) and a `run` function
//! returning a [`Report`] (what to print, human or JSON) or a [`Failure`] (an error, its
//! exit status and an optional hint). `main` prints exactly one of them, once.
//!
//! Adding a subcommand (`revoke`, `check`, ...): create `cli/NAME.rs` with a
//! `NameArgs` (clap `Args`) and `pub fn run(&NameArgs, Ctx) -> Outcome`, then add a
//! variant to [`Command`] and an arm in [`main`]. Shared pieces: `common` (key files,
//! signature locations, hints for `VerifyError`s) and `output` (stdout, progress bars,
//! formatting). Exit statuses are in [`exit`]; build failures with [`Failure::refused`]
//! (1) or [`Failure::usage`] (2).

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod check;
mod common;
mod cosign;
mod demo;
mod demo_server;
mod diff;
mod inspect;
mod keygen;
mod lineage;
mod output;
mod revocations;
mod revoke;
mod revstate;
mod sign;
mod verify;

/// Exit statuses shared by every subcommand.
pub(crate) mod exit {
    /// Success (verify: the model matched a trusted signature; diff: identical).
    pub const OK: u8 = 0;
    /// verify / cosign: the model must not be loaded; diff: the models differ; other
    /// commands: the operation failed.
    pub const REFUSED: u8 = 1;
    /// The command could not run: bad arguments, unreadable or invalid key files,
    /// unknown tensor names, an impossible threshold. (clap's usage errors are 2 too.)
    pub const USAGE: u8 = 2;
}

const EXIT_STATUS_HELP: &str = "\
Exit status:
  0  success (verify: the model matched a trusted signature and is not revoked; check:
     nothing revoked; diff: identical)
  1  verify, cosign, check: the model must NOT be loaded (any digest, file-set, signature
     or trust failure, a missing or malformed signature file, a revoked model, or a
     revocation status that cannot be established); diff: the models differ; other
     commands: the operation failed (revoke: the server refused or was unreachable)
  2  the command could not run: bad arguments, an unreadable or invalid key file, an
     unknown tensor name, an impossible threshold

Errors go to stderr as `error: ...`, sometimes followed by `hint: ...`. With --json,
stdout carries one pretty-printed JSON document.";

/// Sign model weights, and verify them before loading.
#[derive(Debug, Parser)]
#[command(name = "weightseal", version, after_help = EXIT_STATUS_HELP)]
pub(crate) struct Cli {
    /// Print one machine-readable JSON document on stdout instead of text.
    #[arg(long, global = true)]
    json: bool,
    /// Never draw a progress bar (one is drawn on stderr only when it is a terminal).
    #[arg(long, global = true)]
    no_progress: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Write a model's weight fingerprint (a bounded sample of each tensor) to a file.
    Fingerprint(lineage::FingerprintArgs),
    /// Test whether a model is derived from a base, or from a fork of it.
    Lineage(lineage::LineageArgs),
    /// Generate an ed25519 signing key (KEY, mode 0600) and its public key (KEY.pub).
    Keygen(keygen::KeygenArgs),
    /// Hash a model (folder or single file) and sign its manifest.
    Sign(sign::SignArgs),
    /// Add a signature to an existing signature file, after checking the model against it.
    Cosign(cosign::CosignArgs),
    /// Check a model against its signature and your trusted keys before loading it.
    Verify(verify::VerifyArgs),
    /// Show what a signature file says (manifest, signers, lineage); trust is not evaluated.
    Inspect(inspect::InspectArgs),
    /// Compare two models by tensor content (signature files, folders or weight files).
    Diff(diff::DiffArgs),
    /// Sign a revocation (or reinstatement) with an issuer key and submit it to a revocation server.
    Revoke(revoke::RevokeArgs),
    /// Check an unsigned model against a revocation list: every file and tensor digest.
    Check(check::CheckArgs),
    /// Manage the local revocation state: sync, status, bundle.
    Revocations(revocations::RevocationsArgs),
    /// Walk through signing, verifying and refusing tampered models in a temporary folder.
    Demo(demo::DemoArgs),
}

/// Settings every subcommand sees.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ctx {
    /// `--json`.
    pub json: bool,
    /// Draw progress bars (stderr is a terminal and `--no-progress` was not given).
    pub progress: bool,
}

/// What a successful run prints, and its exit status (diff exits 1 for "different").
#[derive(Debug)]
pub(crate) struct Report {
    pub human: String,
    pub json: serde_json::Value,
    pub code: u8,
}

impl Report {
    pub fn new(human: String, json: serde_json::Value) -> Self {
        Report {
            human,
            json,
            code: exit::OK,
        }
    }
}

/// An error, with its exit status and an optional hint.
#[derive(Debug)]
pub(crate) struct Failure {
    pub code: u8,
    pub error: anyhow::Error,
    pub hint: Option<String>,
    /// Printed on stdout with `--json` (verify reports refusals as JSON too).
    pub json: Option<serde_json::Value>,
}

impl Failure {
    /// Exit 1: refused / the operation failed.
    pub fn refused(error: impl Into<anyhow::Error>) -> Self {
        Self::with_code(exit::REFUSED, error)
    }
    /// Exit 2: the command could not run as asked.
    pub fn usage(error: impl Into<anyhow::Error>) -> Self {
        Self::with_code(exit::USAGE, error)
    }
    pub fn with_code(code: u8, error: impl Into<anyhow::Error>) -> Self {
        Failure {
            code,
            error: error.into(),
            hint: None,
            json: None,
        }
    }
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
    pub fn maybe_hint(mut self, hint: Option<String>) -> Self {
        if hint.is_some() {
            self.hint = hint;
        }
        self
    }
    /// The error as one line: the context chain, each message once.
    pub fn message(&self) -> String {
        output::error_text(&self.error)
    }
}

pub(crate) type Outcome = Result<Report, Failure>;

/// Parses the command line, runs the subcommand, prints its result once.
pub(crate) fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // Help and version go to stdout (a closed pipe is fine); usage errors exit 2.
            let _ = e.print();
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(exit::USAGE));
        }
    };
    let ctx = Ctx {
        json: cli.json,
        progress: !cli.no_progress && output::stderr_is_terminal(),
    };
    let outcome = match &cli.command {
        Command::Keygen(args) => keygen::run(args, ctx),
        Command::Fingerprint(args) => lineage::run_fingerprint(args, ctx),
        Command::Lineage(args) => lineage::run_lineage(args, ctx),
        Command::Sign(args) => sign::run(args, ctx),
        Command::Cosign(args) => cosign::run(args, ctx),
        Command::Verify(args) => verify::run(args, ctx),
        Command::Inspect(args) => inspect::run(args, ctx),
        Command::Diff(args) => diff::run(args, ctx),
        Command::Revoke(args) => revoke::run(args, ctx),
        Command::Check(args) => check::run(args, ctx),
        Command::Revocations(args) => revocations::run(args, ctx),
        Command::Demo(args) => demo::run(args, ctx),
    };
    finish(outcome, ctx)
}

/// Prints a report or a failure and turns it into the exit status.
fn finish(outcome: Outcome, ctx: Ctx) -> ExitCode {
    match outcome {
        Ok(report) => {
            let written = if ctx.json {
                output::print_json(&report.json)
            } else {
                output::print_stdout(&report.human)
            };
            if let Err(e) = written {
                output::print_error(&format!("cannot write to stdout: {e}"), None);
                // A verification whose result could not be reported must not read as success.
                return ExitCode::from(exit::REFUSED.max(report.code));
            }
            ExitCode::from(report.code)
        }
        Err(failure) => {
            if ctx.json {
                if let Some(json) = &failure.json {
                    let _ = output::print_json(json);
                }
            }
            output::print_error(&failure.message(), failure.hint.as_deref());
            ExitCode::from(failure.code)
        }
    }
}
