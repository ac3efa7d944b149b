//! `weightseal`: sign model weights, and verify them before loading.
//!
//! A thin layer over `weightseal_signer` and `weightseal_verifier`; every subcommand lives
//! in its own module under `cli/`.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
