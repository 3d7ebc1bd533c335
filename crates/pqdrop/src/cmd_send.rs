//! `pqdrop send`.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use pqdrop_engine::send::{Payload, SendOptions, SendUi, Zstd};
use pqdrop_proto::code::{Code, DEFAULT_WORDS, MAX_WORDS};
use pqdrop_proto::contacts::Source;
use pqdrop_proto::transfer::{Offer, OfferKind};
use serde_json::json;

use crate::common::{self, human, json_event, NetArgs, Route};
use pqdrop_engine::transport::{RoomRequest, Waiting};

/// Send files, folders, text or stdin.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    pqdrop send photo.jpg                 # prints a code such as 7-lemon-tiger\n  \
    pqdrop send Documents/ notes.txt      # folders and several files\n  \
    pqdrop send --text 'meet at 6'        # a short text\n  \
    tar c dir | pqdrop send -             # stdin, size unknown in advance\n  \
    pqdrop send --relay relay.example.org:4733 big.iso\n\n\
The receiver runs `pqdrop receive` with the code. Without --relay, $PQDROP_RELAY\n\
or a config file, pqdrop finds the receiver on the local network (LAN mode).")]
pub struct SendArgs {
    /// Files or folders to send; `-` reads standard input.
    #[arg(value_name = "PATH", required_unless_present = "text")]
    pub paths: Vec<PathBuf>,
    /// Send this text instead of files.
    #[arg(long, conflicts_with = "paths")]
    pub text: Option<String>,
    /// Use your own code, `<number>-<word>-<word>…` (warned about if weaker than a generated one).
    /// Note: other local users can see argv; prefer a generated code.
    #[arg(long, value_name = "CODE")]
    pub code: Option<String>,
    /// Send to the saved contact NAME, without a code: it receives with
    /// `pqdrop receive --from-contacts` (or `--from` with your name).
    #[arg(long, value_name = "NAME", conflicts_with_all = ["code", "multiple", "qr", "save_contact", "no_identity"])]
    pub to: Option<String>,
    /// With --to on the local network: how long to look for the contact, in seconds.
    #[arg(long, default_value_t = 600, value_name = "SECS", requires = "to")]
    pub lan_timeout: u64,
    /// Number of secret words in a generated code.
    #[arg(long, default_value_t = DEFAULT_WORDS as u8, value_parser = clap::value_parser!(u8).range(1..=MAX_WORDS as i64))]
    pub words: u8,
    /// Also show the receive command as a QR code (to read it with a phone).
    #[arg(long)]
    pub qr: bool,
    /// Also print a link that opens the relay's browser page with the code, and its QR code, so the receiver needs nothing but a browser (needs --relay to a relay started with --web).
    #[arg(long, conflicts_with = "to")]
    pub web: bool,
    /// Serve the same files to N receivers, one after the other, with the
    /// same code. Each runs its own handshake; after 3 wrong codes the code
    /// is retired.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1000), conflicts_with = "save_contact")]
    pub multiple: u32,
    /// Compression: auto (only when a sample compresses), on or off.
    #[arg(long, default_value = "auto", value_parser = ["auto", "on", "off"])]
    pub zstd: String,
    #[command(flatten)]
    pub contact: crate::cmd_contacts::ContactArgs,
    #[command(flatten)]
    pub net: NetArgs,
}

struct Ui {
    json: bool,
    pb: Mutex<Option<indicatif::ProgressBar>>,
    last: Mutex<Instant>,
}

impl SendUi for Ui {
    fn connected(&self, offer: &Offer) {
        if self.json {
            json_event(json!({"event": "connected", "files": offer.files, "dirs": offer.dirs, "bytes": offer.bytes}));
        } else {
            let what = match offer.kind {
                OfferKind::Files => format!(
                    "{}, {}, {}",
                    common::count(offer.files, "file", "files"),
                    common::count(offer.dirs, "folder", "folders"),
                    human(offer.bytes)
                ),
                OfferKind::Text => "a text message".into(),
                OfferKind::Stream => "standard input".into(),
            };
            say!("Connected. Sending {what}.");
        }
        if let Ok(mut pb) = self.pb.lock() {
            *pb = Some(common::progress_bar(offer.bytes, self.json));
        }
    }
    fn file(&self, shown: &str) {
        if let Ok(pb) = self.pb.lock() {
            if let Some(pb) = pb.as_ref() {
                common::show_file(pb, shown);
            }
        }
    }
    fn progress(&self, done: u64, total: u64) {
        if let Ok(pb) = self.pb.lock() {
            if let Some(pb) = pb.as_ref() {
                common::advance(pb, done);
            }
        }
        if self.json {
            if let Ok(mut last) = self.last.lock() {
                if last.elapsed() >= Duration::from_millis(500) || done == total {
                    *last = Instant::now();
                    json_event(json!({"event": "progress", "done": done, "total": total}));
                }
            }
        }
    }
    fn warn(&self, msg: &str) {
        if self.json {
            json_event(json!({"event": "warning", "message": msg}));
        } else {
            say!("warning: {msg}");
        }
    }
}

/// Runs `pqdrop send`.
pub async fn run(args: SendArgs) -> anyhow::Result<()> {
    let payload = if let Some(t) = args.text.clone() {
        Payload::Text(t)
    } else if args.paths.len() == 1 && args.paths[0].as_os_str() == "-" {
        Payload::Stdin
    } else {
        if args.paths.iter().any(|p| p.as_os_str() == "-") {
            anyhow::bail!("`-` (stdin) cannot be combined with other paths");
        }
        Payload::Paths(args.paths.clone())
    };
    if let Some(name) = args.to.clone() {
        return send_to_contact(&args, &name, payload).await;
    }
    let code = match &args.code {
        Some(c) => {
            let code = Code::parse(c).map_err(|e| crate::common::Usage(format!("--code: {e}")))?;
            if code.is_weaker_than_generated() {
                say!(
                    "warning: this code has about {:.0} bits of secret, less than a generated one ({} words); anyone who guesses it in one try can take the transfer",
                    code.entropy_bits(),
                    DEFAULT_WORDS
                );
            }
            code
        }
        None => Code::generate(usize::from(args.words), &mut rand_core::OsRng).context("generating a code")?,
    };
    // Before anyone waits: the contact name, and this side's identity.
    let me = args.contact.unlock()?;
    let opts = SendOptions {
        zstd: match args.zstd.as_str() {
            "on" => Zstd::On,
            "off" => Zstd::Off,
            _ => Zstd::Auto,
        },
        cascade: args.net.cascade,
        idle_timeout: args.net.idle(),
        identity: me.clone(),
    };
    let multiple = args.multiple;
    if multiple > 1 && matches!(payload, Payload::Stdin) {
        return Err(crate::common::Usage("--multiple cannot send standard input (it can be read only once)".into()).into());
    }
    // Walk the paths now, so a missing file fails before anyone waits.
    let mut prepared = Some(pqdrop_engine::send::prepare(payload.clone())?);
    let route = args.net.route()?;
    if args.web && !matches!(route, Route::Relay(_)) {
        return Err(crate::common::Usage(
            "--web needs a relay that serves the browser page: add --relay HOST:PORT (a relay started with `pqdrop relay --web ADDR`)"
                .into(),
        )
        .into());
    }
    let json = args.net.json;
    let ui = Arc::new(Ui { json, pb: Mutex::new(None), last: Mutex::new(Instant::now()) });
    if let Some(p) = &prepared {
        for w in p.warnings() {
            ui.warn(w);
        }
    }
    // Through a relay, the code is shown once the room is ours: the relay
    // numbers it (unless --code), and a taken --code fails before this.
    let mut allocate = args.code.is_none();
    let mut code = code;
    let (mut served, mut wrong) = (0u32, 0u32);
    while served < multiple {
        let this = match prepared.take() {
            Some(p) => p,
            // Each receiver gets the files as they are now.
            None => pqdrop_engine::send::prepare(payload.clone())?,
        };
        let first = served == 0 && wrong == 0;
        let mut used = None;
        let result = pqdrop_engine::send::send_to(
            &route,
            &code,
            RoomRequest { allocate, page: args.web },
            this,
            opts.clone(),
            ui.clone(),
            |c, w| {
                used = Some(c.clone());
                if first {
                    announce(c, w, &route, json, args.qr);
                } else if !json {
                    say!("Waiting for receiver {} of {multiple} (same code)...", served + 1);
                }
            },
        )
        .await;
        if let Some(c) = used {
            // Later receivers use the same code, so its room is claimed again.
            code = c;
            allocate = false;
        }
        let report = match result {
            Ok(r) => r,
            Err(pqdrop_engine::Error::WrongCode) if multiple > 1 && wrong + 1 < MAX_WRONG_CODES => {
                wrong += 1;
                ui.warn(&format!(
                    "a receiver used a wrong code ({wrong} of {MAX_WRONG_CODES} allowed); nothing was sent to it. Waiting for the next one"
                ));
                continue;
            }
            Err(pqdrop_engine::Error::WrongCode) if multiple > 1 => {
                return Err(anyhow::Error::new(pqdrop_engine::Error::WrongCode)
                    .context(format!("{MAX_WRONG_CODES} receivers used a wrong code, so the code is retired (someone may be guessing it); {served} of {multiple} received the files")));
            }
            Err(e) => return Err(e.into()),
        };
        served += 1;
        let elapsed = common::finish_bar(&ui.pb);
        let (secs, rate) = common::rate(report.bytes_sent, elapsed);
        let of = if multiple > 1 { format!(" (receiver {served} of {multiple})") } else { String::new() };
        if json {
            // Saved first, so a failure to save is the one result printed.
            let saved = args.contact.after(me.as_deref(), report.peer.as_ref(), "receiver", false, Source::CodeTransfer)?;
            json_event(json!({
                "event": "result", "ok": true, "files": report.files, "bytes_sent": report.bytes_sent,
                "bytes_skipped": report.bytes_skipped, "elapsed_s": secs, "rate_bytes_per_s": rate,
                "receiver": served, "receivers": multiple, "peer": crate::cmd_contacts::peer_json(me.as_deref(), report.peer.as_ref()),
                "contact_saved": saved,
            }));
        } else {
            say_sent(&of, "", &report, secs, rate);
        }
        if !json {
            if let (Some(p), None) = (&report.peer, &args.contact.save_contact) {
                say!("{}", crate::cmd_contacts::describe(me.as_deref(), p, "receiver"));
            }
            args.contact.after(
                me.as_deref(),
                report.peer.as_ref(),
                "receiver",
                multiple == 1 && common::stderr_is_tty(),
                Source::CodeTransfer,
            )?;
        }
    }
    Ok(())
}

/// `pqdrop send --to NAME`: to a saved contact, without a code.
async fn send_to_contact(args: &SendArgs, name: &str, payload: Payload) -> anyhow::Result<()> {
    let (me, book) = crate::cmd_direct::identity_and_book("send --to")?;
    let (name, to, ticket) = crate::cmd_direct::contact(&book, name)?;
    let opts = SendOptions {
        zstd: match args.zstd.as_str() {
            "on" => Zstd::On,
            "off" => Zstd::Off,
            _ => Zstd::Auto,
        },
        cascade: args.net.cascade,
        idle_timeout: args.net.idle(),
        identity: None,
    };
    let prepared = pqdrop_engine::send::prepare(payload)?;
    let route = args.net.route()?;
    let json = args.net.json;
    let ui = Arc::new(Ui { json, pb: Mutex::new(None), last: Mutex::new(Instant::now()) });
    for w in prepared.warnings() {
        ui.warn(w);
    }
    let lan_timeout = Duration::from_secs(args.lan_timeout);
    let report =
        pqdrop_engine::contact::send_to_contact(&route, &me, &to, &name, lan_timeout, ticket.as_ref(), prepared, opts, ui.clone(), |w| {
            crate::cmd_direct::sender_waiting(&name, w, &route, json)
        })
        .await?;
    let elapsed = common::finish_bar(&ui.pb);
    let (secs, rate) = common::rate(report.bytes_sent, elapsed);
    if json {
        json_event(json!({
            "event": "result", "ok": true, "files": report.files, "bytes_sent": report.bytes_sent,
            "bytes_skipped": report.bytes_skipped, "elapsed_s": secs, "rate_bytes_per_s": rate, "to": name,
        }));
    } else {
        say_sent("", &format!(" to {name}"), &report, secs, rate);
    }
    Ok(())
}

/// The end summary of a send: `Done{of}: sent N{to} in T (R)`, and what was
/// already there.
fn say_sent(of: &str, to: &str, report: &pqdrop_engine::send::SendReport, secs: f64, rate: f64) {
    let moved = format!("sent {}{to} in {}", human(report.bytes_sent), common::human_time_rate(secs, rate));
    if report.bytes_skipped > 0 {
        say!("Done{of}: {moved}, {} were already there (resumed).", human(report.bytes_skipped));
    } else {
        say!("Done{of}: {moved}.");
    }
}

/// With `--multiple`, how many receivers may fail the code before it is
/// retired: each failure is one online guess (PROTOCOL.md §5), so a few
/// typos are forgiven but guessing is not.
const MAX_WRONG_CODES: u32 = 3;

/// Prints the code and the receive command (and its QR code), once the room
/// is ours.
fn announce(code: &Code, w: Waiting, route: &Route, json: bool, qr: bool) {
    let shown = code.expose();
    // The relay is named even when it came from $PQDROP_RELAY or the
    // config file: the other computer may not have the same setting.
    let receive_cmd = match route {
        Route::Relay(r) => format!("pqdrop receive --relay {r} {}", &*shown),
        Route::Lan(_) => format!("pqdrop receive {}", &*shown),
    };
    // The code rides in the fragment, which browsers never send to the server.
    let link = match &w {
        Waiting::RelayPage(url) => Some(format!("{url}#{}", &*shown)),
        _ => None,
    };
    if json {
        json_event(json!({"event": "code", "code": &*shown, "command": receive_cmd, "url": link}));
        return;
    }
    say!("Code: {}\nOn the other computer, run:\n\n    {receive_cmd}\n", &*shown);
    if let Some(link) = &link {
        say!("Or open this link in a browser (nothing to install):\n\n    {link}\n");
        match qr_text(link) {
            Some(q) => say!("{q}"),
            None => say!("(the link is too long for a QR code)"),
        }
    } else if qr {
        match qr_text(&receive_cmd) {
            Some(q) => say!("{q}"),
            None => say!("(the receive command is too long for a QR code)"),
        }
    }
    match w {
        Waiting::LanListening(addr) => say!("Waiting for the receiver on the local network (listening on {addr})..."),
        _ => match route {
            Route::Relay(r) => say!("Waiting for the receiver (via the relay {r})..."),
            Route::Lan(_) => say!("Waiting for the receiver..."),
        },
    }
}

/// `text` as a QR code drawn with half-block characters (two modules per
/// character cell, dark on light, with the quiet zone), or `None` if it does
/// not fit one. The code travels in it: it is shown on this terminal only,
/// like the code itself.
fn qr_text(text: &str) -> Option<String> {
    let code = qrcode::QrCode::new(text.as_bytes()).ok()?;
    Some(
        code.render::<qrcode::render::unicode::Dense1x2>()
            .dark_color(qrcode::render::unicode::Dense1x2::Light)
            .light_color(qrcode::render::unicode::Dense1x2::Dark)
            .quiet_zone(true)
            .build(),
    )
}

#[cfg(test)]
mod qr_tests {
    #[test]
    fn a_receive_command_fits_and_draws() {
        let q = super::qr_text("pqdrop receive --relay relay.example.org:4733 7-lemon-tiger").expect("fits");
        let lines: Vec<&str> = q.lines().collect();
        assert!(lines.len() > 10 && lines.iter().all(|l| l.chars().count() == lines[0].chars().count()), "a square of cells");
        assert!(q.chars().all(|c| matches!(c, ' ' | '\u{2580}' | '\u{2584}' | '\u{2588}' | '\n')), "half blocks only");
    }
}
