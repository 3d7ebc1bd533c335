//! `pqdrop id invite` and `pqdrop contacts add NAME`: becoming someone's
//! contact without a transfer first (PROTOCOL.md §13.8).
//!
//! The inviter prints an invitation: its public identity and a ticket, an
//! expiry MACed with key 4 of its seed. The person invited saves the inviter
//! from it and, on the first `send --to`, presents the ticket inside the
//! encrypted contact hello; the inviter's `receive --from-contacts` checks it
//! with its own key 4, so nothing is stored when the invitation is made. The
//! invitation is read from standard input, never from argv: whoever holds it
//! can send to the inviter until it expires.

use std::io::{self, IsTerminal, Write};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use data_encoding::BASE64URL_NOPAD;
use pqdrop_proto::contacts::{Added, BookError, Contact, ContactName, Source};
use pqdrop_proto::identity::Identity;
use pqdrop_proto::invite::Invitation;
use rand_core::RngCore;

use crate::common::Usage;

/// How an invitation starts, so that it is recognisable when pasted.
pub const PREFIX: &str = "pqdrop-invite:";
/// The longest an invitation may be valid: nothing but its expiry revokes it.
const MAX_VALID_SECS: u64 = 30 * 86_400;

/// The invitation as text: [`PREFIX`] and its bytes in base64url without padding.
pub fn encode(inv: &Invitation) -> String {
    format!("{PREFIX}{}", BASE64URL_NOPAD.encode(&inv.to_bytes()))
}

/// Reads an invitation pasted by a person: white space (line wrapping) is
/// ignored, and so is a missing prefix.
pub fn decode(text: &str) -> anyhow::Result<Invitation> {
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    let body = compact.strip_prefix(PREFIX).unwrap_or(&compact);
    if body.is_empty() {
        bail!("no invitation was given: paste the text `pqdrop id invite` printed (it starts with {PREFIX})");
    }
    let bytes = BASE64URL_NOPAD.decode(body.as_bytes()).map_err(|_| {
        anyhow::anyhow!("this is not an invitation: it should be the text `pqdrop id invite` printed, starting with {PREFIX}, copied whole")
    })?;
    Invitation::from_bytes(&bytes).map_err(|e| anyhow::anyhow!("this invitation cannot be used: {e}; ask for it again"))
}

/// `30m`, `12h` or `7d`: how long an invitation is valid, in seconds.
pub fn parse_validity(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (n, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let per = match unit {
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        _ => return Err(format!("{s:?}: write a number and m, h or d (for example 30m, 12h, 7d)")),
    };
    let secs =
        n.parse::<u64>().ok().and_then(|n| n.checked_mul(per)).filter(|&t| t > 0).ok_or_else(|| format!("{s:?} is not a duration"))?;
    if secs > MAX_VALID_SECS {
        return Err(format!("{s:?} is too long: an invitation is valid for at most 30d, as only its expiry revokes it"));
    }
    Ok(secs)
}

fn now() -> anyhow::Result<u64> {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).context("the system clock is before 1970; set the clock")
}

/// `pqdrop id invite`: prints `me`'s invitation valid for `valid` seconds.
pub fn invite(me: &Identity, valid: u64, json: bool) -> anyhow::Result<()> {
    let expires = now()? + valid;
    let mut nonce = [0u8; 16];
    rand_core::OsRng.fill_bytes(&mut nonce);
    let text = encode(&Invitation::new(me, expires, nonce));
    let until = crate::cmd_contacts::date_time(expires);
    if json {
        let v = serde_json::json!({
            "invitation": text, "expires": expires, "fingerprint": me.public().fingerprint().to_string(),
        });
        return crate::cmd_id::print_stdout(&format!("{v}\n"));
    }
    if io::stdout().is_terminal() {
        say!(
            "Give this invitation to the person who may send to you without a code. They run `pqdrop contacts add <your name>` and paste it. \
             Anyone who has it can send to you (you still accept each transfer) until {until}."
        );
    }
    crate::cmd_id::print_stdout(&format!("{text}\n"))?;
    if io::stdout().is_terminal() {
        say!("Your fingerprint, for them to compare: {}", me.public().fingerprint());
        say!("Then run `pqdrop receive --from-contacts` and they send with `pqdrop send --to <name they gave you> PATH…`.");
    }
    Ok(())
}

/// `pqdrop contacts add NAME`: saves the inviter of the invitation on
/// standard input (or pasted at the prompt) as `name`, with its ticket.
pub fn add(dir: &Path, me: &Identity, name: &str) -> anyhow::Result<()> {
    let name = ContactName::new(name).map_err(|e| Usage(format!("contacts add: {e}")))?;
    let stdin = io::stdin();
    if stdin.is_terminal() {
        eprint!("Paste the invitation, then press Enter: ");
        let _ = io::stderr().flush();
    }
    let mut line = String::new();
    io::BufRead::read_line(&mut io::Read::take(stdin.lock(), crate::store::MAX_SECRET_INPUT), &mut line)
        .context("reading the invitation from standard input")?;
    let inv = decode(&line)?;
    if inv.inviter == *me.public() {
        bail!("this is your own invitation: give it to the person who should send to you");
    }
    let now = now()?;
    if inv.ticket.expires() <= now {
        bail!(
            "this invitation expired on {}; ask {name} for a new one (`pqdrop id invite`). Nothing was saved",
            crate::cmd_contacts::date_time(inv.ticket.expires())
        );
    }
    let fp = inv.inviter.fingerprint();
    let contact = Contact { name: name.clone(), identity: inv.inviter, added: now, source: Source::Invitation(Some(inv.ticket)) };
    let added = crate::cmd_contacts::change_book(dir, me, |book| match book.add(contact) {
        Ok(a) => Ok(a),
        Err(BookError::KeysChanged(old)) => bail!(
            "WARNING: the contact {old} is saved with a different identity than this invitation's ({fp}). Nothing was changed. \
             If {old} made a new identity, check it with them, run `pqdrop contacts remove {old}`, then add again"
        ),
        Err(e) => bail!("{e}"),
    })?;
    match added {
        Added::New => {
            say!("Saved {name} ({fp}). Compare this fingerprint with the one {name} sees in `pqdrop id show`.");
            say!(
                "Send with `pqdrop send --to {name} PATH…`; the first transfer must start before {}, and {name} will be asked to save you.",
                crate::cmd_contacts::date_time(inv.ticket.expires())
            );
        }
        Added::AlreadySaved(n) => say!("{fp} is already your contact {n}; nothing changed."),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use pqdrop_proto::keys::Seed;

    #[test]
    fn validity() {
        assert_eq!(parse_validity("30m"), Ok(1_800));
        assert_eq!(parse_validity("12h"), Ok(43_200));
        assert_eq!(parse_validity("7d"), Ok(604_800));
        assert_eq!(parse_validity("30d"), Ok(2_592_000));
        for bad in ["", "0d", "7", "d", "31d", "1w", "-1d", "99999999999999999999d"] {
            assert!(parse_validity(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn text_round_trip_survives_wrapping_and_refuses_damage() {
        let me = Identity::from_seed(Seed::from_bytes([7; 32])).unwrap();
        let inv = Invitation::new(&me, 1_000, [1; 16]);
        let text = encode(&inv);
        assert!(text.starts_with(PREFIX));
        assert_eq!(decode(&text).unwrap(), inv);
        let wrapped: String = text.as_bytes().chunks(60).map(|c| format!("{}\n", String::from_utf8_lossy(c))).collect();
        assert_eq!(decode(&wrapped).unwrap(), inv);
        assert_eq!(decode(&text[PREFIX.len()..]).unwrap(), inv);
        assert!(decode("").is_err());
        assert!(decode(&text[..text.len() - 3]).is_err());
        let mut changed = text.clone().into_bytes();
        let i = changed.len() / 2;
        changed[i] = if changed[i] == b'A' { b'B' } else { b'A' };
        assert!(decode(std::str::from_utf8(&changed).unwrap()).is_err());
    }
}
