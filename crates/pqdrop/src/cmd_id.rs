//! `pqdrop id`: your identity, one 32-byte seed (PROTOCOL.md §13.1–13.3).
//!
//! The seed lives in `identity` in the per-user config folder, sealed with a
//! passphrase (Argon2id) or, if the user chose none, only checked against
//! damage. The folder is made 0700 and the file 0600 before any byte of it
//! is written; a new file replaces an old one only by a rename, and only with
//! `--force`, which keeps the old one beside it. Secrets come from standard
//! input, a file or the terminal, never from argv, and are zeroized.

use std::fs;
use std::io::{self, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::{Args, Subcommand, ValueEnum};
use pqdrop_proto::identity::{self, Identity, KdfCost, Protection, IDENTITY_VARIANT};
use pqdrop_proto::keys::Seed;
use zeroize::Zeroizing;

use crate::store::{self, has_terminal, make_private_dir, private_file, read_capped, read_passphrase_file, Unlock, MAX_SECRET_INPUT};

/// Arguments of `pqdrop id`.
#[derive(Debug, Args)]
pub struct IdArgs {
    #[command(subcommand)]
    command: IdCommand,
}

#[derive(Debug, Subcommand)]
enum IdCommand {
    /// Make a new identity (asks for a passphrase on a terminal).
    Init(InitArgs),
    /// Print your public identity and its fingerprint.
    Show(ShowArgs),
    /// Print the seed, as a recovery phrase (default) or hex, for a backup.
    Export(ExportArgs),
    /// Restore an identity from a recovery phrase or hex on standard input.
    Import(ImportArgs),
    /// Print an invitation: whoever you give it to can save you as a
    /// contact (`pqdrop contacts add`) and send to you without a code.
    Invite(InviteArgs),
    /// Give this identity to a new device of yours (prints a code).
    Link(LinkArgs),
    /// Take the identity of your other device (with the code `id link` printed).
    Join(JoinArgs),
}

#[derive(Debug, Args)]
struct InviteArgs {
    /// How long it is valid: 30m, 12h, 7d (at most 30d; only the expiry
    /// revokes an invitation).
    #[arg(long, value_name = "DURATION", default_value = "7d", value_parser = crate::cmd_invite::parse_validity)]
    valid: u64,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    unlock: UnlockArgs,
}

#[derive(Debug, Args)]
struct LinkArgs {
    /// Use your own code instead of a generated one.
    #[arg(long, value_name = "CODE")]
    code: Option<String>,
    /// Give the identity without comparing the check the new device shows
    /// (only when no one else can have the code).
    #[arg(short, long)]
    yes: bool,
    #[command(flatten)]
    unlock: UnlockArgs,
    #[command(flatten)]
    net: crate::common::NetArgs,
}

#[derive(Debug, Args)]
struct JoinArgs {
    /// The code from `pqdrop id link` (default: $PQDROP_CODE, else a prompt).
    code: Option<String>,
    #[command(flatten)]
    protect: Protect,
    #[command(flatten)]
    net: crate::common::NetArgs,
}

#[derive(Debug, Args)]
struct Protect {
    /// Read the passphrase from the first line of this file (for scripts).
    #[arg(long, value_name = "PATH", conflicts_with = "no_passphrase")]
    passphrase_file: Option<PathBuf>,
    /// Keep the seed without a passphrase (the file's permissions alone protect it).
    #[arg(long)]
    no_passphrase: bool,
    /// Replace an existing identity (the old file is kept as identity.replaced-TIME).
    #[arg(long)]
    force: bool,
}

#[derive(Debug, Args)]
struct InitArgs {
    #[command(flatten)]
    protect: Protect,
}

/// The passphrase of an identity that has one.
#[derive(Debug, Args)]
pub struct UnlockArgs {
    /// Read the passphrase from the first line of this file (for scripts;
    /// also $PQDROP_PASSPHRASE_FILE).
    #[arg(long, value_name = "PATH")]
    passphrase_file: Option<PathBuf>,
}

impl UnlockArgs {
    /// Where the passphrase comes from.
    pub fn unlock(&self) -> Unlock {
        Unlock::or_env(self.passphrase_file.clone())
    }
}

#[derive(Debug, Args)]
struct ShowArgs {
    /// Print one JSON object (lowercase hex values).
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    unlock: UnlockArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    /// 24 BIP-39 English words (the last one carries a checksum)
    Phrase,
    /// 64 hexadecimal characters, the input of `pqdrop keys derive --variant enclave`
    Hex,
}

#[derive(Debug, Args)]
struct ExportArgs {
    /// How to write the seed.
    #[arg(long, value_enum, default_value_t = Format::Phrase)]
    format: Format,
    #[command(flatten)]
    unlock: UnlockArgs,
}

#[derive(Debug, Args)]
struct ImportArgs {
    /// What standard input holds (default: hex if it is 64 hex digits, else a phrase).
    #[arg(long, value_enum)]
    format: Option<Format>,
    #[command(flatten)]
    protect: Protect,
}

/// Runs `pqdrop id ...`.
pub fn run(args: IdArgs) -> anyhow::Result<()> {
    let path = store::identity_path()?;
    match args.command {
        IdCommand::Init(a) => {
            let id = Identity::generate(&mut rand_core::OsRng).context("making the identity")?;
            store(&path, &id, &a.protect)?;
            say!("Made a new identity: {}", id.public().fingerprint());
            say!("Back it up with `pqdrop id export` (24 words); without them a lost file cannot be recovered.");
            Ok(())
        }
        IdCommand::Invite(a) => {
            let (id, _) = store::load_identity(&path, &a.unlock.unlock())?;
            crate::cmd_invite::invite(&id, a.valid, a.json)
        }
        IdCommand::Show(a) => {
            let (id, protection) = store::load_identity(&path, &a.unlock.unlock())?;
            print_stdout(&if a.json { show_json(&id, protection, &path) } else { show_text(&id, protection, &path) })
        }
        IdCommand::Export(a) => {
            let (id, _) = store::load_identity(&path, &a.unlock.unlock())?;
            if io::stdout().is_terminal() {
                say!("This is your identity's secret: whoever has it can act as you. Keep it offline.");
            }
            let text = match a.format {
                Format::Phrase => Zeroizing::new(format!("{}\n", &*identity::recovery_phrase(id.seed()))),
                Format::Hex => {
                    let mut hexed = Zeroizing::new([0u8; 64]);
                    // Exact lengths: encoding cannot fail.
                    let _ = hex::encode_to_slice(id.seed().as_bytes(), &mut hexed[..]);
                    let mut line = Zeroizing::new(String::with_capacity(65));
                    line.extend(hexed.iter().map(|&b| char::from(b)));
                    line.push('\n');
                    line
                }
            };
            print_stdout(&text)
        }
        IdCommand::Link(a) => {
            let (id, _) = store::load_identity(&path, &a.unlock.unlock())?;
            let code = match &a.code {
                Some(c) => {
                    let code = pqdrop_proto::code::Code::parse(c).map_err(|e| crate::common::Usage(format!("--code: {e}")))?;
                    if code.is_weaker_than_generated() {
                        say!(
                            "warning: this code has about {:.0} bits of secret, less than a generated one; whoever guesses it can try to take your identity (the check below stops them)",
                            code.entropy_bits()
                        );
                    }
                    Some(code)
                }
                None => None,
            };
            let route = a.net.route()?;
            runtime()?.block_on(crate::common::until_interrupted("old device", link(&id, code, &route, a.yes)))
        }
        IdCommand::Join(a) => {
            let code = crate::cmd_receive::read_code(a.code.as_deref())?;
            // Before anyone waits: no identity is replaced without --force,
            // and the new one's passphrase is chosen now.
            let (exists, pass) = prepare_store(&path, &a.protect)?;
            let route = a.net.route()?;
            let id = runtime()?.block_on(crate::common::until_interrupted("new device", async {
                let lan = std::time::Duration::from_secs(60);
                let id = pqdrop_engine::link::join(
                    &route,
                    &code,
                    lan,
                    |_| say!("Looking for your other device..."),
                    |check| say!("Check: {check}. Your other device shows the same and asks you to confirm it."),
                )
                .await?;
                Ok(id)
            }))?;
            store_with(&path, &id, exists, pass)?;
            say!("Joined the identity {}. Check that your other device shows the same.", id.public().fingerprint());
            Ok(())
        }
        IdCommand::Import(a) => {
            let seed = read_backup(a.format)?;
            let id = Identity::from_seed(seed).context("deriving the identity")?;
            store(&path, &id, &a.protect)?;
            say!("Imported the identity {}", id.public().fingerprint());
            Ok(())
        }
    }
}

pub fn print_stdout(text: &str) -> anyhow::Result<()> {
    let mut out = io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        r => r.context("writing to standard output"),
    }
}

fn show_text(id: &Identity, protection: Protection, path: &Path) -> String {
    let p = id.public();
    format!(
        "Fingerprint:           {}\nSeed exchange (key 1): {}\nI/O exchange (key 2):  {}\nI/O ML-KEM-768 key:    {} bytes (in full with --json)\nProtection:            {}\nFile:                  {}\n",
        p.fingerprint(),
        hex::encode(p.seed_exchange),
        hex::encode(p.io_exchange),
        p.io_kem.len(),
        describe(protection),
        path.display()
    )
}

fn show_json(id: &Identity, protection: Protection, path: &Path) -> String {
    let p = id.public();
    let v = serde_json::json!({
        "variant": IDENTITY_VARIANT.as_str(),
        "fingerprint": p.fingerprint().to_string(),
        "seed_exchange_public": hex::encode(p.seed_exchange),
        "io_exchange_public": hex::encode(p.io_exchange),
        "io_kem_public": hex::encode(&p.io_kem),
        "passphrase": matches!(protection, Protection::Passphrase(_)),
        "file": path.display().to_string(),
    });
    format!("{v}\n")
}

fn describe(p: Protection) -> String {
    match p {
        Protection::None => "none (the file's permissions alone protect the seed)".into(),
        Protection::Passphrase(c) => format!("passphrase (Argon2id, {} MiB, {} passes, {} lanes)", c.m_kib / 1024, c.t, c.p),
    }
}

/// The passphrase for a new file: `None` for none.
fn passphrase_for_sealing(p: &Protect) -> anyhow::Result<Option<Zeroizing<String>>> {
    if p.no_passphrase {
        return Ok(None);
    }
    if let Some(f) = &p.passphrase_file {
        let pass = read_passphrase_file(f)?;
        if pass.is_empty() {
            bail!("the passphrase file {} starts with an empty line; for no passphrase say --no-passphrase", f.display());
        }
        return Ok(Some(pass));
    }
    if !has_terminal() {
        say!("No terminal to ask for a passphrase: the identity is kept without one (the file's permissions alone protect it).");
        say!("To add one later, run `pqdrop id export | pqdrop id import --force` at a terminal.");
        return Ok(None);
    }
    for _ in 0..3 {
        let first = Zeroizing::new(
            rpassword::prompt_password("Passphrase for your identity (empty for none): ").context("reading the passphrase")?,
        );
        if first.is_empty() {
            say!("No passphrase: the file's permissions alone protect the seed.");
            return Ok(None);
        }
        let again = Zeroizing::new(rpassword::prompt_password("The same passphrase again: ").context("reading the passphrase")?);
        if *first == *again {
            return Ok(Some(first));
        }
        say!("The two did not match; try again.");
    }
    bail!("the passphrases did not match three times; nothing was written")
}

/// The seed of a backup on standard input (or typed at the terminal).
fn read_backup(format: Option<Format>) -> anyhow::Result<Seed> {
    let stdin = io::stdin();
    let text = if stdin.is_terminal() {
        say!("Type your 24 words (or 64 hex characters) and press Enter:");
        let mut line = Zeroizing::new(String::with_capacity(MAX_SECRET_INPUT as usize));
        io::BufRead::read_line(&mut stdin.lock().take(MAX_SECRET_INPUT), &mut line).context("reading the backup")?;
        line
    } else {
        read_capped(&mut stdin.lock()).context("the backup on standard input")?
    };
    let trimmed = text.trim();
    let hex_like = trimmed.len() == 64 && trimmed.bytes().all(|b| b.is_ascii_hexdigit());
    match format.unwrap_or(if hex_like { Format::Hex } else { Format::Phrase }) {
        Format::Hex => Seed::from_hex(trimmed).map_err(|e| anyhow::anyhow!("the hex backup: {e}")),
        Format::Phrase => identity::seed_from_phrase(trimmed).map_err(|e| anyhow::anyhow!("{e}; nothing was written")),
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread().enable_all().build()?)
}

/// `pqdrop id link`: shows a code, then gives the identity to the device
/// that joins with it.
async fn link(id: &Identity, code: Option<pqdrop_proto::code::Code>, route: &crate::common::Route, yes: bool) -> anyhow::Result<()> {
    let allocate = code.is_none();
    let code = match code {
        Some(c) => c,
        None => pqdrop_proto::code::Code::generate(pqdrop_proto::code::DEFAULT_WORDS, &mut rand_core::OsRng)?,
    };
    let fp = id.public().fingerprint();
    pqdrop_engine::link::offer(
        route,
        &code,
        allocate,
        id,
        |c, _| {
            let relay = match route {
                crate::common::Route::Relay(r) => format!("--relay {r} "),
                crate::common::Route::Lan(_) => String::new(),
            };
            say!("On your new device, run:\n\n    pqdrop id join {relay}{}\n", &*c.expose());
            say!("It must then show {fp}. Waiting for it...");
        },
        |check| confirm_check(check, yes),
    )
    .await?;
    say!("Linked: your new device now holds the identity {fp}.");
    Ok(())
}

/// Asks the user whether the new device shows `check` (PROTOCOL.md §13.6).
fn confirm_check(check: &str, yes: bool) -> bool {
    if yes {
        return true;
    }
    let Ok(tty) = std::fs::OpenOptions::new().read(true).write(true).open("/dev/tty") else {
        say!("No terminal to compare the check {check} with the new device's; run with --yes if no one else can have the code.");
        return false;
    };
    let mut w = &tty;
    let _ = write!(w, "A device joined. Does your new device show the check {check}? [y/N] ");
    let _ = w.flush();
    let mut line = String::new();
    let _ = io::BufRead::read_line(&mut io::BufReader::new(&tty).take(64), &mut line);
    matches!(line.trim(), "y" | "Y" | "yes" | "YES" | "Yes")
}

/// Seals `id` and puts it at `path`: folder 0700, file 0600 from its first
/// byte, written in full and synced under a temporary name, then renamed.
fn store(path: &Path, id: &Identity, p: &Protect) -> anyhow::Result<()> {
    let (exists, pass) = prepare_store(path, p)?;
    store_with(path, id, exists, pass)
}

/// Before a new identity is made: refuses to replace one without `--force`,
/// and gets the passphrase. Returns whether one exists, and the passphrase.
fn prepare_store(path: &Path, p: &Protect) -> anyhow::Result<(bool, Option<Zeroizing<String>>)> {
    let dir = path.parent().context("the identity path has no folder")?;
    make_private_dir(dir)?;
    let exists = path.symlink_metadata().is_ok();
    if exists && !p.force {
        bail!(
            "an identity exists already ({}); nothing was changed. `pqdrop id show` prints it; pass --force to replace it (the old file is kept)",
            path.display()
        );
    }
    Ok((exists, passphrase_for_sealing(p)?))
}

/// Writes `id` as [`prepare_store`] decided.
fn store_with(path: &Path, id: &Identity, exists: bool, pass: Option<Zeroizing<String>>) -> anyhow::Result<()> {
    let dir = path.parent().context("the identity path has no folder")?;
    let protection = if pass.is_some() { Protection::Passphrase(KdfCost::DEFAULT) } else { Protection::None };
    let sealed = identity::seal_file(id.seed(), protection, pass.as_ref().map(|s| s.as_bytes()), &mut rand_core::OsRng)
        .context("sealing the identity")?;
    let temp = dir.join(format!(".identity.{}.tmp", std::process::id()));
    let write = || -> io::Result<()> {
        let mut f = private_file(&temp)?;
        f.write_all(&sealed)?;
        f.sync_all()
    };
    if let Err(e) = write() {
        let _ = fs::remove_file(&temp);
        return Err(e).with_context(|| format!("cannot write the identity to {}", dir.display()));
    }
    let placed = place(path, &temp, dir, exists);
    // Whatever happened, no second copy of the sealed seed stays behind.
    let _ = fs::remove_file(&temp);
    placed
}

/// Puts the written `temp` at `path`: a new identity never replaces one made
/// meanwhile by another run (it is linked, which fails if the name is
/// taken); a replaced one is kept beside it first.
fn place(path: &Path, temp: &Path, dir: &Path, exists: bool) -> anyhow::Result<()> {
    if !exists {
        return match fs::hard_link(temp, path) {
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                bail!("an identity was made meanwhile ({}); nothing was changed", path.display())
            }
            Ok(()) => Ok(()),
            // A file system without hard links: a plain rename.
            Err(_) => fs::rename(temp, path).with_context(|| format!("cannot put the identity in place at {}", path.display())),
        };
    }
    let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let old = dir.join(format!("identity.replaced-{stamp}"));
    fs::hard_link(path, &old).with_context(|| format!("cannot keep the old identity as {}", old.display()))?;
    say!("The old identity is kept as {}", old.display());
    fs::rename(temp, path).with_context(|| format!("cannot put the identity in place at {}", path.display()))
}
