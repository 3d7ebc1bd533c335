//! `pqdrop`: post-quantum, code-authenticated file transfer.
//!
//! This file only parses the command line and dispatches: each subcommand lives
//! in its own `cmd_*.rs` module with an `Args` type and a `run` function. To add
//! one (`send`, `receive`, `relay`), add a module, a variant to [`Command`], and
//! a match arm in [`run`].
//!
//! Secrets never come from argv (other local users can read it in the process
//! list); commands read them from standard input or a file.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cmd_keys;

/// Post-quantum, code-authenticated file transfer.
#[derive(Debug, Parser)]
#[command(
    name = "pqdrop",
    version,
    about,
    propagate_version = true,
    after_help = "Examples:\n  \
        pqdrop keys derive < seed.hex\n  \
        pqdrop keys derive --variant enclave --json --seed-file seed.hex"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
enum Command {
    /// Work with the deterministic key hierarchy derived from a 32-byte seed.
    Keys(cmd_keys::KeysArgs),
}

/// Runs the parsed command. Errors go back to `main`, which prints them.
fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Keys(args) => cmd_keys::run(args),
    }
}

fn main() -> ExitCode {
    // clap prints its own usage errors and exits with status 2.
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // `{:#}` prints the whole context chain on one line:
            // "reading the seed: the seed must be ...".
            eprintln!("pqdrop: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
