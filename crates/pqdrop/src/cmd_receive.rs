//! `pqdrop receive`.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Args;
use pqdrop_engine::receive::{OfferSummary, ReceiveOptions, ReceiveUi, DEFAULT_MAX_ENTRIES};
use pqdrop_engine::sink::ConflictPolicy;
use pqdrop_proto::code::Code;
use pqdrop_proto::contacts::Source;
use pqdrop_proto::transfer::OfferKind;
use serde_json::json;

use crate::common::{self, human, json_event, NetArgs};
use pqdrop_engine::transport::Waiting;

/// Receive what `pqdrop send` offers.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    pqdrop receive                        # asks for the code (tab completes words)\n  \
    PQDROP_CODE=7-lemon-tiger pqdrop receive -o ~/Downloads\n  \
    pqdrop receive --yes --rename 7-lemon-tiger\n\n\
A code on the command line is visible to other users of this computer (ps);\n\
prefer the prompt or $PQDROP_CODE. Text and stdin transfers are printed on stdout.")]
pub struct ReceiveArgs {
    /// The code from the sender, e.g. 7-lemon-tiger (default: $PQDROP_CODE, else a prompt).
    pub code: Option<String>,
    /// Receive from the saved contact NAME, without a code (they run
    /// `pqdrop send --to <your name>`).
    #[arg(long, value_name = "NAME", conflicts_with_all = ["code", "from_contacts", "save_contact", "no_identity"])]
    pub from: Option<String>,
    /// Receive from any saved contact, or from anyone holding a valid
    /// invitation of yours (`pqdrop id invite`), without a code. Someone
    /// invited is saved afterwards with --save-contact NAME, or by the
    /// question at a terminal.
    #[arg(long, conflicts_with_all = ["code", "no_identity"])]
    pub from_contacts: bool,
    /// Folder to write into (created if missing).
    #[arg(short, long, value_name = "DIR", default_value = ".")]
    pub output: PathBuf,
    /// Accept the offer without asking.
    #[arg(short, long)]
    pub yes: bool,
    /// Replace files that already exist.
    #[arg(long, conflicts_with_all = ["rename", "skip_existing"])]
    pub overwrite: bool,
    /// Keep existing files and write new ones as `name (1).ext`.
    #[arg(long, conflicts_with = "skip_existing")]
    pub rename: bool,
    /// Keep existing files as they are and receive only the others (the
    /// sender is asked not to send them; nothing about them is revealed).
    #[arg(long)]
    pub skip_existing: bool,
    /// How long to search the local network for the sender, in seconds (LAN mode).
    #[arg(long, default_value_t = 60, value_name = "SECS")]
    pub lan_timeout: u64,
    #[command(flatten)]
    pub contact: crate::cmd_contacts::ContactArgs,
    #[command(flatten)]
    pub net: NetArgs,
}

pub(crate) struct Ui {
    yes: bool,
    /// Opening a sealed file: the offer is what the file holds, and this
    /// line says who sealed it (shown once the first record authenticated).
    sealed: Option<String>,
    /// This side's identity, to name the other side from its book.
    me: Option<Arc<pqdrop_proto::identity::Identity>>,
    json: bool,
    pb: Mutex<Option<indicatif::ProgressBar>>,
    /// The file being received, for the bar once it appears.
    current: Mutex<String>,
    last: Mutex<Instant>,
    text: Mutex<Option<String>>,
    /// A stream's bytes go to stdout, so JSON events move to stderr.
    stream_to_stdout: std::sync::atomic::AtomicBool,
}

impl Ui {
    /// The receiver's interface; `sealed` when opening a sealed file.
    pub(crate) fn new(yes: bool, json: bool, sealed: Option<String>, me: Option<Arc<pqdrop_proto::identity::Identity>>) -> Arc<Ui> {
        Arc::new(Ui {
            yes,
            sealed,
            me,
            json,
            pb: Mutex::new(None),
            current: Mutex::new(String::new()),
            last: Mutex::new(Instant::now()),
            text: Mutex::new(None),
            stream_to_stdout: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// The progress bar, for the caller to finish.
    pub(crate) fn bar(&self) -> &Mutex<Option<indicatif::ProgressBar>> {
        &self.pb
    }

    fn streaming(&self) -> bool {
        self.stream_to_stdout.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// A JSON event: on stdout, except during a stream, whose bytes own stdout.
    fn emit(&self, ev: serde_json::Value) {
        if self.streaming() {
            say!("{ev}");
        } else {
            json_event(ev);
        }
    }
}

impl ReceiveUi for Ui {
    fn consent(&self, o: &OfferSummary) -> bool {
        if o.kind == OfferKind::Stream {
            self.stream_to_stdout.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        let what = match o.kind {
            OfferKind::Files => format!(
                "{} and {}, {} in total",
                common::count(o.files, "file", "files"),
                common::count(o.dirs, "folder", "folders"),
                human(o.bytes)
            ),
            OfferKind::Text => format!("a text message ({})", human(o.bytes)),
            OfferKind::Stream => "a stream of unknown size (it will be written to standard output)".into(),
        };
        if self.json {
            self.emit(json!({"event": "offer", "kind": format!("{:?}", o.kind).to_lowercase(), "files": o.files, "dirs": o.dirs, "bytes": o.bytes, "names": o.preview, "peer": crate::cmd_contacts::peer_json(self.me.as_deref(), o.peer.as_ref())}));
        } else {
            if let Some(by) = &self.sealed {
                say!("{by}");
            }
            match o.from {
                _ if self.sealed.is_some() => say!("The file holds {what}:"),
                Some(addr) => say!("The sender at {} offers {what}:", addr.ip()),
                None => say!("The sender offers {what}:"),
            }
            for name in &o.preview {
                say!("  {name}");
            }
            if (o.files + o.dirs) as usize > o.preview.len() && o.kind == OfferKind::Files {
                say!("  (and the contents of the folders above)");
            }
            if let Some(p) = &o.peer {
                say!("{}", crate::cmd_contacts::describe(self.me.as_deref(), p, "sender"));
            }
        }
        if self.yes {
            return true;
        }
        // Ask on the terminal, not on stdin (stdin may be a pipe).
        let Ok(tty) = std::fs::OpenOptions::new().read(true).write(true).open("/dev/tty") else {
            say!("No terminal to ask for consent; re-run with --yes to accept.");
            return false;
        };
        let mut w = &tty;
        let _ = write!(w, "Accept? [y/N] ");
        let _ = w.flush();
        let mut line = String::new();
        let _ = std::io::BufReader::new(&tty).read_line(&mut line);
        matches!(line.trim(), "y" | "Y" | "yes" | "YES" | "Yes")
    }
    fn conflict(&self, shown: &str) -> Option<(ConflictPolicy, bool)> {
        let tty = std::fs::OpenOptions::new().read(true).write(true).open("/dev/tty").ok()?;
        let mut reader = std::io::BufReader::new(&tty);
        for _ in 0..5 {
            let mut w = &tty;
            // A sealed file holds the data anyway: skipping is not offered.
            let _ = if self.sealed.is_some() {
                write!(w, "{shown} already exists here. [o]verwrite it, [r]ename the new one, or [q]uit? (O, R: the same for every file that exists) ")
            } else {
                write!(
                    w,
                    "{shown} already exists here. [o]verwrite it, [r]ename the new one, [s]kip it, or [q]uit? (O, R, S: the same for every file that exists) "
                )
            };
            let _ = w.flush();
            let mut line = String::new();
            if reader.read_line(&mut line).ok()? == 0 {
                return None;
            }
            match line.trim() {
                "o" | "overwrite" => return Some((ConflictPolicy::Overwrite, false)),
                "r" | "rename" => return Some((ConflictPolicy::Rename, false)),
                "s" | "skip" if self.sealed.is_none() => return Some((ConflictPolicy::Skip, false)),
                "O" => return Some((ConflictPolicy::Overwrite, true)),
                "R" => return Some((ConflictPolicy::Rename, true)),
                "S" if self.sealed.is_none() => return Some((ConflictPolicy::Skip, true)),
                "q" | "Q" | "quit" => return None,
                _ => {}
            }
        }
        None
    }
    fn file(&self, shown: &str) {
        if let Ok(mut current) = self.current.lock() {
            shown.clone_into(&mut current);
        }
        if let Ok(pb) = self.pb.lock() {
            if let Some(pb) = pb.as_ref() {
                common::show_file(pb, shown);
            }
        }
    }
    fn progress(&self, done: u64, total: u64) {
        if let Ok(mut pb) = self.pb.lock() {
            let pb = pb.get_or_insert_with(|| {
                let pb = common::progress_bar(total, self.json);
                if let Ok(current) = self.current.lock() {
                    common::show_file(&pb, &current);
                }
                pb
            });
            common::advance(pb, done);
        }
        if self.json {
            if let Ok(mut last) = self.last.lock() {
                if last.elapsed() >= Duration::from_millis(500) || done == total {
                    *last = Instant::now();
                    self.emit(json!({"event": "progress", "done": done, "total": total}));
                }
            }
        }
    }
    fn output(&self, data: &[u8]) -> std::io::Result<()> {
        let mut out = std::io::stdout().lock();
        if self.json && !self.streaming() {
            if let Ok(mut t) = self.text.lock() {
                *t = Some(String::from_utf8_lossy(data).into_owned());
            }
            return Ok(());
        }
        if out.is_terminal() {
            let shown = pqdrop_engine::names::escape_text(data);
            out.write_all(shown.as_bytes())?;
            // A text ends its line on a terminal, so the prompt starts on a new one.
            if !self.streaming() && !shown.ends_with('\n') {
                out.write_all(b"\n")?;
            }
        } else {
            out.write_all(data)?;
        }
        out.flush()
    }
    fn warn(&self, msg: &str) {
        say!("warning: {msg}");
    }
}

/// Reads the code: argument, then $PQDROP_CODE, then a prompt with completion.
pub(crate) fn read_code(arg: Option<&str>) -> anyhow::Result<Code> {
    if let Some(c) = arg {
        return Code::parse(c).map_err(|e| crate::common::Usage(format!("the code: {e}")).into());
    }
    if let Ok(c) = std::env::var("PQDROP_CODE") {
        if !c.trim().is_empty() {
            return Code::parse(&c).map_err(|e| crate::common::Usage(format!("$PQDROP_CODE: {e}")).into());
        }
    }
    let line = match crate::prompt::read_code_line() {
        Ok(l) => l,
        // Ctrl-C at the prompt (the terminal is in raw mode there).
        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => return Err(crate::common::Interrupted { side: "prompt" }.into()),
        Err(e) => return Err(anyhow::Error::new(e).context("reading the code")),
    };
    Ok(Code::parse(&line)?)
}

/// Runs `pqdrop receive`.
pub async fn run(args: ReceiveArgs) -> anyhow::Result<()> {
    // Without a code: from one saved contact, or any of them.
    let direct = if args.from.is_some() || args.from_contacts {
        let (me, book) =
            crate::cmd_direct::identity_and_book(if args.from_contacts { "receive --from-contacts" } else { "receive --from" })?;
        let accept = match &args.from {
            Some(n) => vec![crate::cmd_direct::contact(&book, n)?.1],
            None => book.contacts().iter().map(|c| c.identity.clone()).collect(),
        };
        // A name to save an invited sender under is checked before waiting.
        if let Some(n) = &args.contact.save_contact {
            pqdrop_proto::contacts::ContactName::new(n).map_err(|e| common::Usage(format!("--save-contact: {e}")))?;
        }
        Some((me, book, accept))
    } else {
        None
    };
    // Before anyone waits: the contact name, and this side's identity.
    let me = match &direct {
        Some((me, ..)) => Some(me.clone()),
        None => args.contact.unlock()?,
    };
    let code = match direct {
        Some(_) => None,
        None => Some(read_code(args.code.as_deref())?),
    };
    let policy = if args.overwrite {
        ConflictPolicy::Overwrite
    } else if args.rename {
        ConflictPolicy::Rename
    } else if args.skip_existing {
        ConflictPolicy::Skip
    } else {
        ConflictPolicy::Refuse
    };
    // With no flag for taken names, a person at a terminal is asked about
    // each (croc does the same); without one, taken names stop the transfer.
    let ask = policy == ConflictPolicy::Refuse && !args.net.json && std::fs::File::open("/dev/tty").is_ok() && common::stderr_is_tty();
    let opts = ReceiveOptions {
        out_dir: args.output.clone(),
        policy,
        ask,
        sender_addr: None,
        max_entries: DEFAULT_MAX_ENTRIES,
        cascade: args.net.cascade,
        idle_timeout: args.net.idle(),
        identity: me.clone(),
    };
    let ui = Ui::new(args.yes, args.net.json, None, me.clone());
    let json = args.net.json;
    let route = args.net.route()?;
    let (Some(code), None) = (code, &direct) else {
        let Some((me, book, accept)) = direct else { unreachable!("a code or contacts") };
        let from = args.from.clone();
        let (mut report, caller) = pqdrop_engine::contact::receive_from_contacts(
            &route,
            &me,
            accept,
            args.from_contacts,
            opts,
            ui.clone(),
            |w| crate::cmd_direct::receiver_waiting(from.as_deref(), w, &route, json),
            |c| {
                if json {
                } else if c.invited {
                    say!("Connected to {}, who has your invitation (not yet a contact).", c.identity.fingerprint())
                } else {
                    say!("Connected to {}.", crate::cmd_direct::name_of(&book, &c.identity))
                }
            },
        )
        .await?;
        if caller.invited {
            // Someone new, by our invitation: offer to save them as after a code transfer.
            report.peer = Some(caller.identity.clone());
            return summary(&args, &ui, report, Some(caller.identity.fingerprint().to_string()), Some(me), Source::Invitation(None));
        }
        let name = crate::cmd_direct::name_of(&book, &caller.identity);
        return summary(&args, &ui, report, Some(name), None, Source::CodeTransfer);
    };
    let report = pqdrop_engine::receive::receive_from(&route, &code, Duration::from_secs(args.lan_timeout), opts, ui.clone(), |w| {
        if !json {
            match w {
                Waiting::LanSearching => say!("Looking for the sender on the local network..."),
                Waiting::Relay | Waiting::RelayPage(_) => match &route {
                    pqdrop_engine::transport::Route::Relay(r) => say!("Waiting for the sender (via the relay {r})..."),
                    pqdrop_engine::transport::Route::Lan(_) => say!("Waiting for the sender..."),
                },
                Waiting::LanListening(_) => {}
            }
        }
    })
    .await?;
    summary(&args, &ui, report, None, me, Source::CodeTransfer)
}

/// The end of a receive: the result event or the summary, and the
/// question to save the sender (after a code transfer). `from`: the
/// contact it came from, for a contact transfer.
fn summary(
    args: &ReceiveArgs,
    ui: &Ui,
    report: pqdrop_engine::receive::ReceiveReport,
    from: Option<String>,
    me: Option<Arc<pqdrop_proto::identity::Identity>>,
    source: Source,
) -> anyhow::Result<()> {
    let elapsed = common::finish_bar(&ui.pb);
    let (secs, rate) = common::rate(report.bytes_received, elapsed);
    let text = ui.text.lock().ok().and_then(|mut t| t.take());
    let from_text = from.as_ref().map(|n| format!(" from {n}")).unwrap_or_default();
    if args.net.json {
        // Saved first, so a failure to save is the one result printed.
        let saved = args.contact.after(me.as_deref(), report.peer.as_ref(), "sender", false, source.clone())?;
        ui.emit(json!({
            "from": from,
            "event": "result", "ok": true, "files": report.files, "dirs": report.dirs, "bytes_received": report.bytes_received,
            "bytes_resumed": report.bytes_resumed, "text": text, "elapsed_s": secs, "rate_bytes_per_s": rate,
            "kept": report.kept.items, "kept_count": report.kept.total,
            "renamed": report.renamed.items.iter().map(|(from, to)| json!({"offered": from, "saved_as": to})).collect::<Vec<_>>(),
            "renamed_count": report.renamed.total, "peer": crate::cmd_contacts::peer_json(me.as_deref(), report.peer.as_ref()),
            "contact_saved": saved,
        }));
    } else if report.kind == Some(OfferKind::Files) {
        let resumed =
            if report.bytes_resumed > 0 { format!(" ({} were already there)", human(report.bytes_resumed)) } else { String::new() };
        say!(
            "Received {} and {}{from_text} into {}{resumed}: {} in {}.",
            common::count(report.files, "file", "files"),
            common::count(report.dirs, "folder", "folders"),
            args.output.display(),
            human(report.bytes_received),
            common::human_time_rate(secs, rate)
        );
        const SHOWN: usize = 10;
        if report.renamed.total > 0 {
            say!("Saved {} under a new name, as the name was taken:", common::count(report.renamed.total, "file", "files"));
            for (from, to) in report.renamed.items.iter().take(SHOWN) {
                say!("  {from} -> {to}");
            }
            if report.renamed.total > SHOWN as u64 {
                say!("  and {} more", report.renamed.total - SHOWN as u64);
            }
        }
        if report.kept.total > 0 {
            say!("Kept {} that already existed here, unchanged:", common::count(report.kept.total, "file", "files"));
            for name in report.kept.items.iter().take(SHOWN) {
                say!("  {name}");
            }
            if report.kept.total > SHOWN as u64 {
                say!("  and {} more", report.kept.total - SHOWN as u64);
            }
        }
    }
    if !args.net.json {
        args.contact.after(me.as_deref(), report.peer.as_ref(), "sender", common::stderr_is_tty(), source)?;
    }
    Ok(())
}
