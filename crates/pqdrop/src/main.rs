//! `pqdrop`: post-quantum, code-authenticated file transfer.
//!
//! This file only parses the command line and dispatches: each subcommand lives
//! in its own `cmd_*.rs` module with an `Args` type and a `run` function. To add
//! one (`send`, `receive`, `relay`), add a module, a variant to [`Command`], and
//! a match arm in [`run`].
//!
//! Secrets never come from argv (other local users can read it in the process
//! list); commands read them from standard input or a file.
#![deny(unsafe_code)]
#![warn(missing_docs)]

use std::process::ExitCode;

use clap::CommandFactory;
use clap::{Parser, Subcommand};

/// `eprintln!` that never panics: with a closed stderr (`pqdrop send F 2>&1 |
/// true`) a message that cannot be written is dropped instead of crashing.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

mod cmd_contacts;
mod cmd_direct;
mod cmd_id;
mod cmd_invite;
mod cmd_keys;
mod cmd_receive;
mod cmd_relay;
mod cmd_seal;
mod cmd_send;
mod common;
mod heap;
mod prompt;
mod store;

/// Post-quantum, code-authenticated file transfer.
#[derive(Debug, Parser)]
#[command(
    name = "pqdrop",
    version,
    about,
    propagate_version = true,
    after_help = "Examples:\n  \
        pqdrop send photo.jpg                 # prints a code such as 7-lemon-tiger\n  \
        pqdrop receive 7-lemon-tiger          # on the other computer\n  \
        pqdrop send --save-contact bob f.pdf  # and save the receiver as a contact\n  \
        pqdrop seal --to bob f.pdf            # a file only bob can open: pqdrop open f.pdf.pqdrop\n  \
        pqdrop relay --listen 0.0.0.0:4733    # self-hosted relay\n  \
        pqdrop completions bash > ~/.local/share/bash-completion/completions/pqdrop\n\n\
Exit codes: 0 ok, 1 other error, 2 usage, 3 wrong code, 4 refused by the receiver,\n\
5 relay or sender unreachable, 6 other side disconnected, 7 local I/O error,\n\
8 protocol violation or integrity failure, 9 file exists (use --overwrite/--rename)."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
enum Command {
    /// Send files, folders, text or stdin.
    Send(cmd_send::SendArgs),
    /// Receive with a code.
    Receive(cmd_receive::ReceiveArgs),
    /// Write files into one encrypted file that only a contact can open.
    Seal(cmd_seal::SealArgs),
    /// Open a sealed file made for you.
    Open(cmd_seal::OpenArgs),
    /// Your identity: make it, show it, back it up, restore it, link a device.
    Id(cmd_id::IdArgs),
    /// People you saved after a transfer: list, show, rename, remove.
    Contacts(cmd_contacts::ContactsArgs),
    /// Run a self-hostable relay.
    Relay(cmd_relay::RelayArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), e.g. `pqdrop man > pqdrop.1`.
    Man,
    /// Work with the deterministic key hierarchy derived from a 32-byte seed.
    // A developer's tool: reachable, but not in the top-level help.
    #[command(hide = true)]
    Keys(cmd_keys::KeysArgs),
}

/// Writes a generated document to stdout; a reader that went away (`| head`)
/// is not an error.
fn print_generated(write: impl FnOnce(&mut dyn std::io::Write) -> std::io::Result<()>) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match write(&mut out).and_then(|()| std::io::Write::flush(&mut out)) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(anyhow::Error::new(e).context("writing to stdout")),
        _ => Ok(()),
    }
}

/// Runs the parsed command. Errors go back to `main`, which prints them.
fn run(cli: Cli) -> anyhow::Result<()> {
    if matches!(cli.command, Command::Send(_) | Command::Receive(_)) {
        // Warnings from the engine (RUST_LOG=debug for more) on stderr.
        let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
        let _ = tracing_subscriber::fmt().with_writer(std::io::stderr).with_env_filter(filter).try_init();
    }
    let rt = || tokio::runtime::Builder::new_multi_thread().enable_all().build();
    match cli.command {
        Command::Send(args) => rt()?.block_on(common::until_interrupted("sender", cmd_send::run(args))),
        Command::Receive(args) => rt()?.block_on(common::until_interrupted("receiver", cmd_receive::run(args))),
        Command::Relay(args) => rt()?.block_on(cmd_relay::run(args)),
        Command::Keys(args) => cmd_keys::run(args),
        Command::Id(args) => cmd_id::run(args),
        Command::Contacts(args) => cmd_contacts::run(args),
        Command::Seal(args) => rt()?.block_on(common::until_interrupted("sealer", cmd_seal::seal(args))),
        Command::Open(args) => rt()?.block_on(common::until_interrupted("opener", cmd_seal::open(args))),
        Command::Completions { shell } => print_generated(|out| {
            // Into memory first: the generator panics on a failed write.
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "pqdrop", &mut script);
            out.write_all(&script)
        }),
        Command::Man => print_generated(|out| clap_mangen::Man::new(Cli::command()).render(out)),
    }
}

fn main() -> ExitCode {
    // clap prints its own usage errors and exits with status 2.
    let cli = Cli::parse();
    let json = match &cli.command {
        Command::Send(a) => a.net.json,
        Command::Receive(a) => a.net.json,
        _ => false,
    };
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // `{:#}` prints the whole context chain on one line:
            // "reading the seed: the seed must be ...".
            say!("pqdrop: error: {e:#}");
            let code = common::exit_code(&e);
            if json {
                // A script reading the events learns the outcome from them too.
                common::json_event(serde_json::json!({"event": "result", "ok": false, "exit_code": code, "error": format!("{e:#}")}));
            }
            ExitCode::from(code)
        }
    }
}
