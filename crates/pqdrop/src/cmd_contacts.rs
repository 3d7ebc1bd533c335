//! `pqdrop contacts`, and saving the other side of a transfer as a contact
//! (PROTOCOL.md §13.4).
//!
//! The book is `contacts` in the config folder, sealed under key 3 of the
//! identity, so reading or changing it opens the identity (with its
//! passphrase, if it has one). A name saved with one identity is never given
//! to another: a changed identity is refused with a warning, like SSH's
//! changed host key.

use std::io::{self, Read, Write};
use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use pqdrop_proto::contacts::{self, Added, Book, BookError, Contact, ContactName, Source, MAX_BOOK_LEN};
use pqdrop_proto::identity::{Identity, PublicIdentity};

use crate::store::{self, Unlock};

const BOOK: &str = "contacts";
const LOCK: &str = "contacts.lock";

/// Arguments of `pqdrop contacts`.
#[derive(Debug, Args)]
pub struct ContactsArgs {
    #[command(subcommand)]
    command: ContactsCommand,
    /// Read your identity's passphrase from the first line of this file (for
    /// scripts; also $PQDROP_PASSPHRASE_FILE).
    #[arg(long, value_name = "PATH", global = true)]
    passphrase_file: Option<std::path::PathBuf>,
}

#[derive(Debug, Subcommand)]
enum ContactsCommand {
    /// List your contacts.
    List {
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// Show a contact: fingerprint, safety number and keys.
    Show {
        /// The contact's name.
        name: String,
        /// One JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Give a contact another name.
    Rename {
        /// The current name.
        name: String,
        /// The new name.
        new_name: String,
    },
    /// Save someone from their invitation (`pqdrop id invite` on their
    /// side), pasted on standard input: then `send --to NAME` works without
    /// a code.
    Add {
        /// The name to save them under.
        name: String,
    },
    /// Forget a contact.
    Remove {
        /// The contact's name.
        name: String,
    },
}

/// Runs `pqdrop contacts ...`.
pub fn run(args: ContactsArgs) -> anyhow::Result<()> {
    let path = store::identity_path()?;
    let (me, _) = store::load_identity(&path, &Unlock::or_env(args.passphrase_file.clone()))?;
    let dir = path.parent().context("the identity path has no folder")?;
    match args.command {
        ContactsCommand::List { json } => {
            let book = read_book(dir, &me)?;
            let mut out = String::new();
            for c in book.contacts() {
                if json {
                    out.push_str(&format!("{}\n", contact_json(c, &me)));
                } else {
                    out.push_str(&format!("{:<24} {}  added {}\n", c.name, c.identity.fingerprint(), date(c.added)));
                }
            }
            if book.contacts().is_empty() && !json {
                say!("No contacts yet. Save one after a transfer with `--save-contact NAME` on either side.");
            }
            crate::cmd_id::print_stdout(&out)
        }
        ContactsCommand::Show { name, json } => {
            let book = read_book(dir, &me)?;
            let c = book.get(&name).ok_or_else(|| not_found(&name))?;
            let text = if json {
                format!("{}\n", contact_json(c, &me))
            } else {
                format!(
                    "Name:                  {}\nFingerprint:           {}\nSafety number:         {}\nSeed exchange (key 1): {}\nI/O exchange (key 2):  {}\nAdded:                 {} ({})\n\n\
                     Compare the fingerprint with what `pqdrop id show` prints on their side,\n\
                     or the safety number with `pqdrop contacts show` for you on their side.\n",
                    c.name,
                    c.identity.fingerprint(),
                    contacts::safety_number(me.public(), &c.identity),
                    hex::encode(c.identity.seed_exchange),
                    hex::encode(c.identity.io_exchange),
                    date(c.added),
                    source(&c.source),
                )
            };
            crate::cmd_id::print_stdout(&text)
        }
        ContactsCommand::Rename { name, new_name } => {
            let to = ContactName::new(&new_name).map_err(|e| crate::common::Usage(format!("{e}")))?;
            change_book(dir, &me, |book| book.rename(&name, to.clone()).map_err(book_error))?;
            say!("Renamed {name} to {to}.");
            Ok(())
        }
        ContactsCommand::Add { name } => crate::cmd_invite::add(dir, &me, &name),
        ContactsCommand::Remove { name } => {
            let gone = change_book(dir, &me, |book| book.remove(&name).map_err(book_error))?;
            say!("Removed {} ({}).", gone.name, gone.identity.fingerprint());
            Ok(())
        }
    }
}

fn not_found(name: &str) -> anyhow::Error {
    anyhow::anyhow!("no contact is named {name:?}; `pqdrop contacts list` shows them")
}

fn book_error(e: BookError) -> anyhow::Error {
    match e {
        BookError::NotFound(n) => not_found(&n),
        other => anyhow::anyhow!("{other}"),
    }
}

fn source(s: &Source) -> &'static str {
    match s {
        Source::CodeTransfer => "from a transfer with a code",
        Source::Invitation(_) => "by an invitation",
    }
}

/// `YYYY-MM-DD` (UTC) of Unix seconds.
/// A Unix time as `YYYY-MM-DD HH:MM UTC`.
pub fn date_time(secs: u64) -> String {
    format!("{} {:02}:{:02} UTC", date(secs), secs % 86_400 / 3_600, secs % 3_600 / 60)
}

fn date(secs: u64) -> String {
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = (secs / 86_400) as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

fn contact_json(c: &Contact, me: &Identity) -> serde_json::Value {
    serde_json::json!({
        "name": c.name.as_str(),
        "fingerprint": c.identity.fingerprint().to_string(),
        "safety_number": contacts::safety_number(me.public(), &c.identity),
        "seed_exchange_public": hex::encode(c.identity.seed_exchange),
        "io_exchange_public": hex::encode(c.identity.io_exchange),
        "added": c.added,
        "source": match c.source { Source::CodeTransfer => "code-transfer", Source::Invitation(_) => "invitation" },
    })
}

/// The book of `me` in `dir` (empty if there is none yet).
pub fn read_book(dir: &Path, me: &Identity) -> anyhow::Result<Book> {
    let path = dir.join(BOOK);
    let mut bytes = Vec::new();
    match std::fs::File::open(&path) {
        Ok(f) => {
            f.take(MAX_BOOK_LEN as u64 + 1).read_to_end(&mut bytes).with_context(|| format!("cannot read {}", path.display()))?;
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Book::default()),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
    contacts::open_book(&bytes, me.keys().state_ikm.as_bytes()).map_err(|e| {
        anyhow::anyhow!(
            "the contact book {} cannot be read: {e}. It was left as it is; if it belongs to an identity you replaced, \
             move it away to start a new one",
            path.display()
        )
    })
}

/// Applies `f` to the book under its lock and writes the result.
pub(crate) fn change_book<T>(dir: &Path, me: &Identity, f: impl FnOnce(&mut Book) -> anyhow::Result<T>) -> anyhow::Result<T> {
    let _lock = store::lock(dir, LOCK)?;
    let mut book = read_book(dir, me)?;
    let r = f(&mut book)?;
    let sealed = contacts::seal_book(&book, me.keys().state_ikm.as_bytes(), &mut rand_core::OsRng).context("sealing the contact book")?;
    store::replace_private(dir, BOOK, &sealed)?;
    Ok(r)
}

/// What the other side of a transfer is to this user.
#[derive(Debug, Clone)]
pub enum Known {
    /// A saved contact.
    Contact(ContactName),
    /// Not saved.
    Stranger,
    /// This side's identity is not open, so its book cannot be read.
    Locked,
}

/// Looks `peer` up in `me`'s book.
pub fn known(me: Option<&Identity>, peer: &PublicIdentity) -> Known {
    let (Some(me), Ok(path)) = (me, store::identity_path()) else { return Known::Locked };
    match path.parent().map(|d| read_book(d, me)) {
        Some(Ok(book)) => book.find(peer).map_or(Known::Stranger, |c| Known::Contact(c.name.clone())),
        _ => Known::Locked,
    }
}

/// Saves `peer`, the other side of a finished transfer, as `name` in `me`'s
/// book. `who` is "sender" or "receiver", for the messages.
fn save_peer(me: &Identity, name: &ContactName, peer: Option<&PublicIdentity>, who: &str, source: Source) -> anyhow::Result<()> {
    let Some(peer) = peer else {
        bail!(
            "the {who} did not show an identity (it has none, withheld it, or runs an older pqdrop), so {name} was not saved; \
             the {who} can make one with `pqdrop id init`"
        )
    };
    if *peer == *me.public() {
        bail!("{name} was not saved: the {who} holds your own identity (a linked device)");
    }
    let path = store::identity_path()?;
    let dir = path.parent().context("the identity path has no folder")?;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let contact = Contact { name: name.clone(), identity: peer.clone(), added: now, source };
    let added = change_book(dir, me, |book| match book.add(contact) {
        Ok(a) => Ok(a),
        Err(BookError::KeysChanged(old)) => {
            let was = book.get(old.as_str()).map(|c| c.identity.fingerprint().to_string()).unwrap_or_default();
            bail!(
                "WARNING: the contact {old} is saved with a different identity.\n  saved:     {was}\n  this {who}: {}\n\
                 Either {old} made a new identity, or the {who} is someone else. Nothing was changed.\n\
                 If you expect the change, check it with {old} (`pqdrop id show` on their side), then run \
                 `pqdrop contacts remove {old}` and save again.",
                peer.fingerprint()
            )
        }
        Err(e) => Err(book_error(e)),
    })?;
    match added {
        Added::New => say!("Saved the {who} as the contact {name} ({}).", peer.fingerprint()),
        Added::AlreadySaved(n) if n.same(name) => say!("The {who} is already your contact {n}."),
        Added::AlreadySaved(n) => {
            say!("The {who} is already saved as {n}; nothing changed (`pqdrop contacts rename {n} {name}` to rename).")
        }
    }
    Ok(())
}

/// The contact options of `send` and `receive`.
#[derive(Debug, Clone, Args)]
pub struct ContactArgs {
    /// After the transfer, save the other side as the contact NAME (it
    /// proves in the session that the identity it shows is its own).
    #[arg(long, value_name = "NAME")]
    pub save_contact: Option<String>,
    /// Do not show the other side your identity (then it cannot save you as
    /// a contact).
    #[arg(long, conflicts_with = "save_contact")]
    pub no_identity: bool,
}

impl ContactArgs {
    /// Before anyone waits: checks the name, and opens this side's identity
    /// to show it (and to save the other side). A passphrase is asked for
    /// only with `--save-contact`; otherwise a protected identity is shown
    /// only when `$PQDROP_PASSPHRASE_FILE` gives its passphrase.
    pub fn unlock(&self) -> anyhow::Result<Option<Arc<Identity>>> {
        if let Some(n) = &self.save_contact {
            ContactName::new(n).map_err(|e| crate::common::Usage(format!("--save-contact: {e}")))?;
        }
        if self.no_identity {
            return Ok(None);
        }
        let path = store::identity_path()?;
        if !path.exists() {
            if self.save_contact.is_some() {
                return Err(crate::common::Usage(
                    "--save-contact needs an identity of your own: make one with `pqdrop id init` (nothing was sent)".into(),
                )
                .into());
            }
            return Ok(None);
        }
        let unlock = Unlock::from_env();
        if self.save_contact.is_none() && unlock.passphrase_file.is_none() {
            return match store::identity_without_asking(&path) {
                Ok(Some(id)) => Ok(Some(Arc::new(id))),
                Ok(None) => {
                    say!("Your identity has a passphrase, so it is not shown in this transfer (--save-contact asks for it; or set $PQDROP_PASSPHRASE_FILE).");
                    Ok(None)
                }
                Err(e) => {
                    say!("warning: your identity is not shown in this transfer: {e:#}");
                    Ok(None)
                }
            };
        }
        Ok(Some(Arc::new(store::load_identity(&path, &unlock)?.0)))
    }

    /// After a finished transfer: saves the other side if asked, or, at a
    /// terminal, offers to. Returns the name saved under, if any.
    pub fn after(
        &self,
        me: Option<&Identity>,
        peer: Option<&PublicIdentity>,
        who: &str,
        interactive: bool,
        source: Source,
    ) -> anyhow::Result<Option<String>> {
        let Some(me) = me else { return Ok(None) };
        if let Some(name) = &self.save_contact {
            let name = ContactName::new(name).map_err(|e| crate::common::Usage(format!("--save-contact: {e}")))?;
            save_peer(me, &name, peer, who, source).context("the transfer itself completed")?;
            return Ok(Some(name.as_str().to_owned()));
        }
        let Some(peer) = peer else { return Ok(None) };
        if !interactive || !matches!(known(Some(me), peer), Known::Stranger) {
            return Ok(None);
        }
        let Ok(tty) = std::fs::OpenOptions::new().read(true).write(true).open("/dev/tty") else { return Ok(None) };
        for _ in 0..3 {
            let mut w = &tty;
            let _ = write!(w, "Save the {who} ({}) as a contact? Type a name, or press Enter to skip: ", peer.fingerprint());
            let _ = w.flush();
            let mut line = String::new();
            let _ = io::BufRead::read_line(&mut io::BufReader::new(&tty).take(256), &mut line);
            let typed = line.trim();
            if typed.is_empty() {
                return Ok(None);
            }
            match ContactName::new(typed) {
                Ok(name) => {
                    save_peer(me, &name, Some(peer), who, source.clone()).context("the transfer itself completed")?;
                    return Ok(Some(name.as_str().to_owned()));
                }
                Err(e) => say!("{e}; try again."),
            }
        }
        Ok(None)
    }
}

/// A line about the other side's identity, for the user.
pub fn describe(me: Option<&Identity>, peer: &PublicIdentity, who: &str) -> String {
    match known(me, peer) {
        Known::Contact(n) => format!("The {who} is your contact {n} ({}).", peer.fingerprint()),
        Known::Stranger => format!("The {who} proved the identity {} (not one of your contacts).", peer.fingerprint()),
        Known::Locked => format!("The {who} proved the identity {}.", peer.fingerprint()),
    }
}

/// The other side's identity in JSON events.
pub fn peer_json(me: Option<&Identity>, peer: Option<&PublicIdentity>) -> serde_json::Value {
    match peer {
        None => serde_json::Value::Null,
        Some(p) => serde_json::json!({
            "fingerprint": p.fingerprint().to_string(),
            "contact": match known(me, p) { Known::Contact(n) => Some(n.as_str().to_owned()), _ => None },
        }),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn dates() {
        assert_eq!(super::date(0), "1970-01-01");
        assert_eq!(super::date(951_782_400), "2000-02-29");
        assert_eq!(super::date(1_764_633_600), "2025-12-02");
    }
}
