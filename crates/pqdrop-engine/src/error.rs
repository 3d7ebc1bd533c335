//! The one error type of the engine crate. User-facing wording beyond these
//! messages lives in the CLI.

use std::path::PathBuf;

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything the transfer engine can fail with. Messages say what happened and,
/// where there is one, what to do next. None of them contains a secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The protocol core rejected something (bad encoding, failed authentication).
    #[error(transparent)]
    Proto(pqdrop_proto::Error),
    /// The two sides typed different codes (key confirmation failed).
    #[error("the code is wrong: the other side typed a different code (or someone tried to intercept). Nothing was transferred; start again with a new code")]
    WrongCode,
    /// Contact transfer: the other side could not prove it holds the keys
    /// of the contact we expect (someone else in the contact's room, or a
    /// contact whose identity changed).
    #[error("the other side could not prove it is {0}: someone else may be using the contact's room, or their identity changed. Nothing was transferred")]
    NotProven(String),
    /// Contact transfer: the receiver does not accept our identity.
    #[error("the receiver does not accept you: it has not saved you as a contact (or not with your current identity), or it waits for someone else, or the invitation you were given has expired. Nothing was transferred")]
    NotAccepted,
    /// Contact transfer: someone valid but not accepted here tried to send.
    #[error("someone who is not among the contacts you receive from tried to send (identity {0}); nothing was received. Still waiting is not possible on this connection: run the command again")]
    Stranger(String),
    /// Contact transfer: someone not saved here presented an invitation
    /// that is not ours or has expired (PROTOCOL.md §13.8).
    #[error("someone who is not among your contacts tried to send (identity {fingerprint}), and {why}; nothing was received. Make a new invitation with `pqdrop id invite` if you want them to send to you")]
    BadInvitation {
        /// The caller's fingerprint.
        fingerprint: String,
        /// What is wrong with the invitation.
        why: &'static str,
    },
    /// Contact transfer on the LAN: the receiver was not found in time.
    #[error("{0} is not waiting on the local network (searched {1} s); ask them to run `pqdrop receive --from …`, or use --relay")]
    ContactNotFound(String, u64),
    /// The receiver declined the offer.
    #[error("the receiver declined the transfer")]
    Refused,
    /// The relay could not be reached or refused us.
    #[error("relay {addr}: {reason}")]
    Relay {
        /// The relay address.
        addr: String,
        /// What went wrong.
        reason: String,
    },
    /// LAN discovery found no sender with this nameplate in time.
    #[error("no sender with code number {nameplate} found on the local network within {secs} s; check that the sender is running and on the same network, or use --relay")]
    LanNotFound {
        /// The nameplate searched for.
        nameplate: String,
        /// How long we searched.
        secs: u64,
    },
    /// The peer was connected but did not complete the handshake in time.
    #[error("the other side did not complete the handshake within {secs} s; through a relay this can mean someone else took the code. Nothing was transferred; start again with a new code")]
    HandshakeTimeout {
        /// The limit.
        secs: u64,
    },
    /// The peer closed the connection or went silent.
    #[error("the other side disconnected before the transfer finished ({0}); run the same command again to resume")]
    PeerGone(String),
    /// The sender offered an entry the receiver will not write.
    #[error("refusing entry {name}: {reason}")]
    Hostile {
        /// The entry name, escaped for display.
        name: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// A file already exists and the user did not allow overwriting.
    #[error("{0} already exists; pass --overwrite to replace it or --rename to keep both")]
    Exists(String),
    /// A received file did not match the hash the sender computed.
    #[error("integrity check failed for {0}: the received data does not match the sender's BLAKE3 hash; the file was not kept")]
    Integrity(String),
    /// The other side broke the transfer protocol (a message out of order,
    /// too big, or not what the state allows). Its fault, never ours.
    #[error("protocol violation by the other side: {0}")]
    PeerViolation(String),
    /// Something that cannot happen did: a bug in pqdrop itself, never blamed
    /// on the other side.
    #[error("this is a bug in pqdrop ({0}); please report it with the command you ran")]
    Bug(std::borrow::Cow<'static, str>),
    /// The other side stopped the transfer for a reason of its own and said
    /// why (its text, escaped). `side` names it: "sender" or "receiver".
    #[error("the {side} stopped: {reason}")]
    Stopped {
        /// Who stopped.
        side: &'static str,
        /// Its reason code (`None` from a peer without stop codes).
        code: Option<pqdrop_proto::transfer::StopCode>,
        /// Its text.
        reason: String,
    },
    /// The offer goes beyond a limit this side sets.
    #[error("{0}")]
    Limit(String),
    /// Linking a device did not finish; nothing was stored.
    #[error("the identity was not linked: {0}; start again with `pqdrop id link`")]
    LinkFailed(String),
    /// A sealed file failed its checks: it was changed, cut short, reordered
    /// or extended. What completed before the damage was verified and kept.
    #[error("the sealed file is damaged: {0}; files completed before the damage are in place, nothing else was kept")]
    Damaged(String),
    /// The output folder has less free space than the transfer still needs.
    #[error("{}", no_space_message(dir, *need, *free, *kept))]
    NoSpace {
        /// The output folder.
        dir: PathBuf,
        /// Bytes still to come.
        need: u64,
        /// Bytes free there, when known.
        free: Option<u64>,
        /// A partial file was kept for resume.
        kept: bool,
    },
    /// The output folder cannot be written to (it is read-only, or a file).
    #[error("cannot receive into {}: {why}", dir.display())]
    OutputDir {
        /// The folder given.
        dir: PathBuf,
        /// What is wrong with it.
        why: &'static str,
    },
    /// A local I/O error, with the path involved when there is one.
    #[error("{}", match path { Some(p) => format!("{}: {err}", p.display()), None => err.to_string() })]
    Io {
        /// The path, if any.
        path: Option<PathBuf>,
        /// The OS error. Shown in the message and deliberately not exposed as
        /// `source()`, so that error reports do not print it twice.
        err: std::io::Error,
    },
}

impl From<pqdrop_proto::Error> for Error {
    /// Keeps the engine's variants (and so the CLI's exit codes) for what the
    /// protocol core decides: a wrong code, a refused entry, a peer that broke
    /// the rules or stopped, failed integrity.
    fn from(e: pqdrop_proto::Error) -> Self {
        use pqdrop_proto::Error as P;
        match e {
            P::WrongCode => Error::WrongCode,
            P::NotAccepted => Error::NotAccepted,
            P::StrangerIdentity(fp) => Error::Stranger(fp),
            P::InvitationRefused { fingerprint, why } => Error::BadInvitation { fingerprint, why },
            P::IdentityNotProven => Error::NotProven("the contact".into()),
            P::Hostile { name, reason } => Error::Hostile { name, reason },
            P::Violation(why) => Error::PeerViolation(why),
            P::PeerStopped { code, reason } => Error::Stopped { side: "other side", code, reason },
            P::Integrity(what) => Error::Integrity(what.into()),
            P::Limit(why) => Error::Limit(why),
            other => Error::Proto(other),
        }
    }
}

impl From<std::io::Error> for Error {
    fn from(source: std::io::Error) -> Self {
        Error::Io { path: None, err: source }
    }
}

/// Bytes for people: `1.5 GiB`, `12 KiB`, `900 bytes`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n == 1 {
        return "1 byte".into();
    }
    if n < 1024 {
        return format!("{n} bytes");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

fn no_space_message(dir: &std::path::Path, need: u64, free: Option<u64>, kept: bool) -> String {
    let free = free.map(|f| format!(", {} is free", human_bytes(f))).unwrap_or_default();
    if kept {
        format!(
            "the disk of {} is full: {} more are needed{free}. What arrived is kept: free some space and run the same command again (any new code) to resume",
            dir.display(),
            human_bytes(need)
        )
    } else {
        format!(
            "not enough free space in {}: the transfer needs {}{free}. Nothing was written; free some space, or choose another folder with -o",
            dir.display(),
            human_bytes(need)
        )
    }
}

impl Error {
    /// Names the side that stopped, for a [`Error::Stopped`] from the machine.
    pub(crate) fn stopped_by(self, who: &'static str) -> Self {
        match self {
            Error::Stopped { code, reason, .. } => Error::Stopped { side: who, code, reason },
            other => other,
        }
    }

    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: Some(path.into()), err: source }
    }
}
