//! What `send` and `receive` share: where to connect, exit codes, output.

use std::io::IsTerminal;
use std::net::IpAddr;
use std::path::PathBuf;

use clap::Args;
use pqdrop_engine::lan::LanConfig;
pub use pqdrop_engine::transport::Route;
use pqdrop_proto::transfer::StopCode;

/// Exit codes (documented in the README).
pub mod exit {
    // 0 is success; 2 is clap's usage error.
    /// Any other error.
    pub const OTHER: u8 = 1;
    /// A usage error (also clap's).
    pub const USAGE: u8 = 2;
    /// Ctrl-C (128 + SIGINT, as shells report it).
    pub const INTERRUPTED: u8 = 130;
    /// The code was wrong: key confirmation failed.
    pub const WRONG_CODE: u8 = 3;
    /// The receiver declined the transfer.
    pub const REFUSED: u8 = 4;
    /// The relay could not be reached or refused us, or no LAN sender was found.
    pub const UNREACHABLE: u8 = 5;
    /// The other side disconnected before the end.
    pub const PEER_GONE: u8 = 6;
    /// A local file-system error, or (on the sender) a local problem or limit
    /// on the receiver's side that it reported.
    pub const IO: u8 = 7;
    /// The other side broke the protocol, sent a hostile entry, or data failed its integrity check.
    pub const PROTOCOL: u8 = 8;
    /// A file exists and neither --overwrite nor --rename was given (on the
    /// sender: the receiver reported this).
    pub const EXISTS: u8 = 9;
}

/// A mistake in how pqdrop was called (an invalid code in argv or the
/// environment): exit 2, like clap's own usage errors.
#[derive(Debug)]
pub struct Usage(pub String);

impl std::fmt::Display for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Usage {}

/// The user pressed Ctrl-C. Says what happened and how to resume, for the
/// side where it was pressed.
#[derive(Debug)]
pub struct Interrupted {
    /// "sender", "receiver", or "prompt" (the receiver's code prompt).
    pub side: &'static str,
}

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.side {
            "sender" => f.write_str(
                "interrupted (Ctrl-C). To resume, run the same command again: it prints a new code for the receiver, and what the receiver already has is not sent again",
            ),
            "prompt" => f.write_str("interrupted (Ctrl-C) at the code prompt; nothing was received"),
            "sealer" => f.write_str("interrupted (Ctrl-C); no sealed file was written"),
            "opener" => f.write_str(
                "interrupted (Ctrl-C); the files completed so far are in place. Open the file again to finish (it replaces any partial file this left)",
            ),
            "old device" | "new device" => f.write_str("interrupted (Ctrl-C); the identity was not linked"),
            _ => f.write_str(
                "interrupted (Ctrl-C). What already arrived is kept: to resume, the sender runs its command again (it prints a new code) and you receive with that code",
            ),
        }
    }
}

impl std::error::Error for Interrupted {}

/// Runs `fut` until it ends or Ctrl-C is pressed.
pub async fn until_interrupted<T>(side: &'static str, fut: impl std::future::Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
    tokio::select! {
        r = fut => r,
        _ = tokio::signal::ctrl_c() => Err(Interrupted { side }.into()),
    }
}

/// Maps an engine error to its exit code.
pub fn exit_code(e: &anyhow::Error) -> u8 {
    use pqdrop_engine::Error as E;
    if e.downcast_ref::<Usage>().is_some() {
        return exit::USAGE;
    }
    if e.downcast_ref::<Interrupted>().is_some() {
        return exit::INTERRUPTED;
    }
    match e.downcast_ref::<E>() {
        Some(E::WrongCode | E::NotProven(_) | E::NotAccepted | E::Stranger(_) | E::BadInvitation { .. }) => exit::WRONG_CODE,
        Some(E::Refused) => exit::REFUSED,
        Some(E::Relay { .. } | E::LanNotFound { .. } | E::ContactNotFound(..)) => exit::UNREACHABLE,
        Some(E::PeerGone(_) | E::HandshakeTimeout { .. } | E::LinkFailed(_)) => exit::PEER_GONE,
        Some(E::Io { .. } | E::NoSpace { .. } | E::OutputDir { .. }) => exit::IO,
        Some(E::Exists(_)) => exit::EXISTS,
        Some(E::Proto(_) | E::Hostile { .. } | E::Integrity(_) | E::PeerViolation(_) | E::Limit(_) | E::Damaged(_)) => exit::PROTOCOL,
        // The other side stopped for a reason of its own: its reason, not ours.
        Some(E::Stopped { code: Some(code), .. }) => match *code {
            StopCode::EXISTS => exit::EXISTS,
            StopCode::LOCAL_IO | StopCode::NO_SPACE | StopCode::LIMIT => exit::IO,
            StopCode::INTERRUPTED => exit::PEER_GONE,
            StopCode::PEER_VIOLATION | StopCode::INTEGRITY => exit::PROTOCOL,
            _ => exit::OTHER,
        },
        // A peer without stop codes (an Abort): as before.
        Some(E::Stopped { code: None, .. }) => exit::PROTOCOL,
        _ => exit::OTHER,
    }
}

/// How to reach the other side.
#[derive(Debug, Clone, Args)]
pub struct NetArgs {
    /// Relay to use (HOST:PORT). Default: $PQDROP_RELAY, then the `relay` line of
    /// the config file, otherwise LAN mode (no server).
    #[arg(long, value_name = "HOST:PORT")]
    pub relay: Option<String>,
    /// LAN mode: the local address to listen and announce on (default every
    /// interface; also $PQDROP_LAN_BIND).
    #[arg(long, value_name = "ADDR")]
    pub lan_bind: Option<IpAddr>,
    /// Print machine-readable JSON events (one per line) instead of progress bars.
    #[arg(long)]
    pub json: bool,
    /// Ask for the AES-256-GCM + ChaCha20-Poly1305 cascade instead of one cipher.
    #[arg(long)]
    pub cascade: bool,
    /// Give up when the other side sends nothing for this many seconds after
    /// the handshake (both sides send a keepalive at least every 5 s while
    /// idle, so a person deciding at a prompt does not count; at least 10, and
    /// 60 or more with a pqdrop older than 2026-12, which sends one every 15 s).
    #[arg(long, value_name = "SECS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(10..=86_400))]
    pub idle_timeout: u64,
}

impl NetArgs {
    /// The idle timeout as a duration.
    pub fn idle(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.idle_timeout)
    }
}

/// The per-user config file: `$XDG_CONFIG_HOME/pqdrop/config` or `~/.config/pqdrop/config`.
pub fn config_path() -> Option<PathBuf> {
    std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .map(|d| d.join("pqdrop").join("config"))
}

/// Reads `relay = HOST:PORT` from the config file, if there is one.
fn relay_from_config() -> anyhow::Result<Option<String>> {
    let Some(path) = config_path() else { return Ok(None) };
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(anyhow::anyhow!("reading {}: {e}", path.display())),
    };
    parse_config(&text).map_err(|(n, why)| Usage(format!("{} line {n}: {why}", path.display())).into())
}

/// The `relay` of a config file's text: `key = value` lines, `#` comments and
/// blank lines. Anything else is an error with its (1-based) line number:
/// a typo must not silently send a transfer somewhere else.
fn parse_config(text: &str) -> Result<Option<String>, (usize, String)> {
    let mut relay = None;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            return Err((i + 1, "expected `key = value` (for example `relay = relay.example.org:4733`)".into()));
        };
        let value = value.trim().trim_matches('"').trim();
        match key.trim() {
            "relay" if value.is_empty() => return Err((i + 1, "`relay` needs a HOST[:PORT]".into())),
            "relay" => relay = Some(value.to_string()),
            other => {
                let shown = pqdrop_engine::names::escape(other.as_bytes());
                return Err((i + 1, format!("unknown setting `{shown}` (the only one is `relay`)")));
            }
        }
    }
    Ok(relay)
}

impl NetArgs {
    /// --relay, then $PQDROP_RELAY, then the config file, else LAN.
    pub fn route(&self) -> anyhow::Result<Route> {
        // A relay named without a port is on the default one (4733).
        let relay = |r: &str| Route::Relay(pqdrop_relay::with_default_port(r));
        if let Some(r) = &self.relay {
            return Ok(relay(r));
        }
        if let Some(r) = std::env::var("PQDROP_RELAY").ok().filter(|s| !s.trim().is_empty()) {
            return Ok(relay(&r));
        }
        if let Some(r) = relay_from_config()? {
            return Ok(relay(&r));
        }
        let mut cfg = LanConfig::from_env()?;
        if let Some(b) = self.lan_bind {
            cfg.bind = b;
        }
        Ok(Route::Lan(cfg))
    }
}

/// True when stderr is a terminal (progress bars are shown only then).
pub fn stderr_is_tty() -> bool {
    std::io::stderr().is_terminal()
}

/// "1 file", "2 files", "0 folders".
pub fn count(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Prints one JSON event line to stdout.
pub fn json_event(v: serde_json::Value) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{v}");
    let _ = out.flush();
}

/// Finishes and clears the transfer's progress bar; returns how long it ran
/// (the transfer's time, from the first byte of the transfer).
pub fn finish_bar(pb: &std::sync::Mutex<Option<indicatif::ProgressBar>>) -> std::time::Duration {
    match pb.lock() {
        Ok(pb) => pb.as_ref().map_or(std::time::Duration::ZERO, |pb| {
            pb.finish_and_clear();
            pb.elapsed()
        }),
        Err(_) => std::time::Duration::ZERO,
    }
}

/// Seconds (rounded to ms) and the average rate in bytes per second.
pub fn rate(bytes: u64, elapsed: std::time::Duration) -> (f64, f64) {
    let secs = (elapsed.as_secs_f64() * 1000.0).round() / 1000.0;
    let rate = if secs > 0.0 { (bytes as f64 / secs).round() } else { 0.0 };
    (secs, rate)
}

/// "5.4 s (380 MiB/s)".
pub fn human_time_rate(secs: f64, rate: f64) -> String {
    format!("{secs:.1} s ({}/s)", pqdrop_engine::human_bytes(rate as u64))
}

/// A progress bar on stderr, hidden when stderr is not a terminal or JSON is on.
pub fn progress_bar(total: u64, json: bool) -> indicatif::ProgressBar {
    if json || !stderr_is_tty() {
        return indicatif::ProgressBar::hidden();
    }
    let pb = if total > 0 { indicatif::ProgressBar::new(total) } else { indicatif::ProgressBar::no_length() };
    // The current file has a line of its own, cut to the terminal's width
    // (`show_file`), and
    // the bar takes what the numbers leave, so both lines fit 40 columns.
    let style = if total > 0 {
        indicatif::ProgressStyle::with_template("{msg}\n{percent:>3}% {wide_bar} {binary_bytes_per_sec} ETA {eta}")
    } else {
        indicatif::ProgressStyle::with_template("{spinner} {bytes} {binary_bytes_per_sec}")
    };
    if let Ok(s) = style {
        pb.set_style(s);
    }
    pb
}

/// Moves the bar to `done`. The first move (resumed bytes that were already
/// there, or the first chunk) restarts the rate estimate, so that the rate and
/// ETA count only bytes that move in this run.
pub fn advance(pb: &indicatif::ProgressBar, done: u64) {
    let first = pb.position() == 0;
    pb.set_position(done);
    if first && done > 0 {
        pb.reset_eta();
    }
}

/// Shows `shown` (an escaped path) as the bar's current file. A path wider
/// than the terminal keeps its end, where the file's own name is.
pub fn show_file(pb: &indicatif::ProgressBar, shown: &str) {
    if pb.is_hidden() {
        // No terminal: skip asking its width, once per file.
        return;
    }
    // One column short of the width, so the terminal never wraps the line.
    let width = console::Term::stderr().size_checked().map_or(80, |(_, cols)| usize::from(cols)).max(8);
    pb.set_message(keep_end(shown, width - 1));
}

/// `text` if it fits in `width` columns, otherwise "…" and its last
/// `width - 1` characters. (This counts characters; indicatif measures the
/// display width and cuts what double-width characters still make too wide.)
pub fn keep_end(text: &str, width: usize) -> String {
    let n = text.chars().count();
    if n <= width {
        return text.to_string();
    }
    let tail: String = text.chars().skip(n - (width - 1)).collect();
    format!("…{tail}")
}

/// Human-readable size.
pub fn human(bytes: u64) -> String {
    format!("{}", indicatif::HumanBytes(bytes))
}

#[cfg(test)]
mod config_tests {
    use super::{keep_end, parse_config};

    #[test]
    fn long_names_keep_their_end() {
        assert_eq!(keep_end("photos/a.jpg", 40), "photos/a.jpg");
        assert_eq!(keep_end("abcdefghij", 5), "…ghij");
        assert_eq!(keep_end("abcdefghij", 10), "abcdefghij");
    }

    #[test]
    fn relay_lines_comments_and_errors_with_line_numbers() {
        assert_eq!(parse_config("# mine\n\nrelay = r.example.org:4733\n"), Ok(Some("r.example.org:4733".into())));
        assert_eq!(parse_config("relay=\"a:1\""), Ok(Some("a:1".into())));
        assert_eq!(parse_config(""), Ok(None));
        assert_eq!(parse_config("# c\nrelay r.example.org").map_err(|e| e.0), Err(2));
        assert_eq!(parse_config("relya = x").map_err(|e| e.0), Err(1));
        assert_eq!(parse_config("\n\nrelay =").map_err(|e| e.0), Err(3));
    }
}
