//! `pqdrop seal` and `pqdrop open`: files for a contact who is offline
//! (PROTOCOL.md §13.5).
//!
//! `seal` writes one file: a header to the contact's identity (X25519 and
//! ML-KEM-768) and then the same records a live transfer would carry,
//! streamed in constant memory. It is written under a temporary name and
//! takes its name only once complete, never over an existing file without
//! `--force`. `open` checks the header with your identity, says who sealed
//! it, and receives the records exactly as from a live sender: the same
//! name rules, the same verified placement, the same choices for files that
//! exist.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context};
use clap::Args;
use pqdrop_engine::receive::{ReceiveOptions, DEFAULT_MAX_ENTRIES};
use pqdrop_engine::send::{Payload, SendOptions, SendUi};
use pqdrop_engine::sink::ConflictPolicy;
use pqdrop_proto::sealed;
use pqdrop_proto::transfer::Offer;

use crate::common::{self, human};
use crate::store::{self, Unlock};

/// Arguments of `pqdrop seal`.
#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  pqdrop seal --to bob report.pdf photos/   # writes report.pdf.pqdrop; bob runs `pqdrop open report.pdf.pqdrop`"
)]
pub struct SealArgs {
    /// The contact who can open it (see `pqdrop contacts list`).
    #[arg(long, value_name = "NAME")]
    to: String,
    /// Files and folders to seal.
    #[arg(value_name = "PATH", required = true)]
    paths: Vec<PathBuf>,
    /// The file to write (default: the first PATH's name with `.pqdrop`, here).
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Replace FILE if it exists.
    #[arg(long)]
    force: bool,
    /// Read your identity's passphrase from this file (also $PQDROP_PASSPHRASE_FILE).
    #[arg(long, value_name = "PATH")]
    passphrase_file: Option<PathBuf>,
}

/// Arguments of `pqdrop open`.
#[derive(Debug, Args)]
pub struct OpenArgs {
    /// The sealed file.
    file: PathBuf,
    /// Folder to write into (created if missing).
    #[arg(short, long, value_name = "DIR", default_value = ".")]
    output: PathBuf,
    /// Replace files that already exist.
    #[arg(long, conflicts_with = "rename")]
    overwrite: bool,
    /// Keep existing files and write new ones as `name (1).ext`.
    #[arg(long)]
    rename: bool,
    /// Read your identity's passphrase from this file (also $PQDROP_PASSPHRASE_FILE).
    #[arg(long, value_name = "PATH")]
    passphrase_file: Option<PathBuf>,
}

struct Bar(std::sync::Mutex<Option<indicatif::ProgressBar>>);

impl SendUi for Bar {
    fn connected(&self, offer: &Offer) {
        if let Ok(mut pb) = self.0.lock() {
            *pb = Some(common::progress_bar(offer.bytes, false));
        }
    }
    fn progress(&self, done: u64, _total: u64) {
        if let Ok(pb) = self.0.lock() {
            if let Some(pb) = pb.as_ref() {
                common::advance(pb, done);
            }
        }
    }
    fn warn(&self, msg: &str) {
        say!("warning: {msg}");
    }
}

/// Runs `pqdrop seal`.
pub async fn seal(args: SealArgs) -> anyhow::Result<()> {
    let out = match &args.output {
        Some(o) => o.clone(),
        None => match (args.paths.as_slice(), args.paths.first().and_then(|p| p.file_name())) {
            ([_], Some(name)) => PathBuf::from(format!("{}.pqdrop", name.to_string_lossy())),
            _ => return Err(common::Usage("name the sealed file with -o FILE (there is more than one PATH)".into()).into()),
        },
    };
    if !args.force && out.symlink_metadata().is_ok() {
        bail!("{} exists; nothing was written. Pass --force to replace it, or choose another name with -o", out.display());
    }
    let path = store::identity_path()?;
    let (me, _) = store::load_identity(&path, &Unlock::or_env(args.passphrase_file.clone()))?;
    let dir = path.parent().context("the identity path has no folder")?;
    let book = crate::cmd_contacts::read_book(dir, &me)?;
    let Some(contact) = book.get(&args.to) else {
        bail!("no contact is named {:?}; `pqdrop contacts list` shows them (save one with --save-contact after a transfer)", args.to)
    };
    let (name, to) = (contact.name.clone(), contact.identity.clone());
    let prepared = pqdrop_engine::send::prepare(Payload::Paths(args.paths.clone()))?;
    for w in prepared.warnings() {
        say!("warning: {w}");
    }
    let (header, sealer) = sealed::seal(&me, &to, &mut rand_core::OsRng).context("sealing the header")?;
    drop(me);

    let folder = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let base = out.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "sealed".into());
    let temp = Temp(folder.join(format!(".{base}.{}.pqdrop-tmp", std::process::id())));
    // The guard removes the temporary file however this ends (an error,
    // Ctrl-C dropping this future): an incomplete file never stays behind.
    let report = write_sealed(&temp.0, header, sealer, prepared).await?;
    place(&temp.0, &out, args.force)?;
    let size = std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0);
    say!(
        "Sealed {} ({}) for {name} ({}) into {} ({}). Only {name}'s identity can open it: `pqdrop open {}`.",
        common::count(report.files, "file", "files"),
        human(report.bytes_sent),
        to.fingerprint(),
        out.display(),
        human(size),
        out.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
    );
    Ok(())
}

/// A temporary file, removed when dropped.
struct Temp(PathBuf);

impl Drop for Temp {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

async fn write_sealed(
    temp: &Path,
    header: Vec<u8>,
    sealer: pqdrop_proto::record::RecordSealer,
    prepared: pqdrop_engine::send::Prepared,
) -> anyhow::Result<pqdrop_engine::send::SendReport> {
    let mut f =
        std::fs::OpenOptions::new().write(true).create_new(true).open(temp).with_context(|| format!("cannot create {}", temp.display()))?;
    f.write_all(&header).with_context(|| format!("cannot write {}", temp.display()))?;
    let ui = Arc::new(Bar(std::sync::Mutex::new(None)));
    let file = tokio::fs::File::from_std(f);
    let opts = SendOptions::default();
    let report = pqdrop_engine::send::send_sealed(file, sealer, prepared, opts, ui.clone())
        .await
        .with_context(|| format!("writing {}", temp.display()))?;
    common::finish_bar(&ui.0);
    std::fs::File::open(temp).and_then(|f| f.sync_all()).with_context(|| format!("cannot sync {}", temp.display()))?;
    Ok(report)
}

/// Gives the complete `temp` its name: never over an existing file unless
/// `force` (a link fails if the name is taken; a rename replaces).
fn place(temp: &Path, out: &Path, force: bool) -> anyhow::Result<()> {
    if force {
        return std::fs::rename(temp, out).with_context(|| format!("cannot write {}", out.display()));
    }
    // A link fails if the name is taken meanwhile, where a rename would
    // replace it: without --force, only a link places the file.
    match std::fs::hard_link(temp, out) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            bail!("{} was created meanwhile; nothing was replaced (pass --force to replace it)", out.display())
        }
        Err(e) => Err(e).with_context(|| {
            format!(
                "cannot give the sealed file its name {} (this file system may not allow hard links; --force renames instead)",
                out.display()
            )
        }),
    }
}

/// Runs `pqdrop open`.
pub async fn open(args: OpenArgs) -> anyhow::Result<()> {
    let mut f = std::fs::File::open(&args.file).with_context(|| format!("cannot open {}", args.file.display()))?;
    let mut header = vec![0u8; sealed::HEADER_LEN];
    let mut got = 0;
    while got < header.len() {
        match f.read(&mut header[got..]).with_context(|| format!("cannot read {}", args.file.display()))? {
            0 => break,
            n => got += n,
        }
    }
    header.truncate(got);
    let path = store::identity_path()?;
    let (me, _) = store::load_identity(&path, &Unlock::or_env(args.passphrase_file.clone()))?;
    let (from, opener) = sealed::open(&me, &header).map_err(|e| anyhow::anyhow!("{}: {e}", args.file.display()))?;
    let dir = path.parent().context("the identity path has no folder")?;
    let book = crate::cmd_contacts::read_book(dir, &me)?;
    // Shown with the listing, once the first record authenticated: only
    // then is the sender proven (PROTOCOL.md §13.5).
    let sealed_by = match book.find(&from).map(|c| c.name.clone()) {
        Some(n) => format!("Sealed by your contact {n} ({}).", from.fingerprint()),
        None if from == *me.public() => format!("Sealed by you ({}).", from.fingerprint()),
        None => format!("Sealed by {} (not one of your contacts).", from.fingerprint()),
    };
    drop(me);
    let policy = if args.overwrite {
        ConflictPolicy::Overwrite
    } else if args.rename {
        ConflictPolicy::Rename
    } else {
        ConflictPolicy::Refuse
    };
    let ask = policy == ConflictPolicy::Refuse && store::has_terminal() && common::stderr_is_tty();
    let opts = ReceiveOptions {
        out_dir: args.output.clone(),
        policy,
        ask,
        sender_addr: None,
        max_entries: DEFAULT_MAX_ENTRIES,
        cascade: false,
        idle_timeout: std::time::Duration::from_secs(600),
        identity: None,
    };
    let ui = crate::cmd_receive::Ui::new(true, false, Some(sealed_by), None);
    let report = pqdrop_engine::receive::receive_sealed(tokio::fs::File::from_std(f), opener, opts, ui.clone())
        .await
        .with_context(|| format!("opening {}", args.file.display()))?;
    common::finish_bar(ui.bar());
    say!(
        "Opened {} and {} into {}: {}.",
        common::count(report.files, "file", "files"),
        common::count(report.dirs, "folder", "folders"),
        args.output.display(),
        human(report.bytes_received)
    );
    Ok(())
}
